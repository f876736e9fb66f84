//! Routing: which channels an alert goes to, with which retry policy (pure).
//!
//! Every alert carries a **directive** (label `directive`, default `alert`): what the upstream
//! system asks of it. Routes are tried in order; a route matches when all its matchers do, and
//! the first match ends the search unless it says `continue = true`. A route names channels
//! directly and/or recipients, whose preferences pick channels by severity. Directives `skip`
//! and `none` deliver nothing unless a route explicitly gives them channels.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::model::{Alert, Severity, TEST_CHANNEL_LABEL};

/// What the sender of an alert asks Ward to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Directive {
    /// Deliver it.
    #[default]
    Alert,
    /// A remediation is being retried: deliver with the route's retry policy.
    Retry,
    /// Deliberately not acted on: counted, not delivered.
    Skip,
    /// Noisy and under tuning: delivered only where a route sends tuning traffic.
    Tune,
    /// No action needed: counted, not delivered.
    None,
}

impl Directive {
    pub fn of(alert: &Alert) -> Result<Self, String> {
        alert
            .labels
            .get("directive")
            .map_or(Ok(Self::Alert), |d| d.parse())
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::Retry => "retry",
            Self::Skip => "skip",
            Self::Tune => "tune",
            Self::None => "none",
        }
    }
    /// Directives that deliver when a route matches without naming channels for them.
    fn delivers_by_default(self) -> bool {
        matches!(self, Self::Alert | Self::Retry)
    }
}

impl FromStr for Directive {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alert" => Ok(Self::Alert),
            "retry" => Ok(Self::Retry),
            "skip" => Ok(Self::Skip),
            "tune" => Ok(Self::Tune),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown directive {other:?}: use alert, retry, skip, tune or none"
            )),
        }
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Label matchers: `value` (equal), `!value` (not equal), `~regex`, `!~regex` (anchored).
    /// A missing label reads as the empty string.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `critical`, or a floor like `>=major`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Directives this route applies to; empty = the delivering ones (`alert`, `retry`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directives: Vec<Directive>,
    #[serde(default)]
    pub channels: Vec<String>,
    /// Recipients whose preferences add channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// A label naming the recipient (e.g. `team`), resolved per alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Alertmanager's grouping (`group_by`, `group_wait_ms`, `group_interval_ms`,
    /// `repeat_interval_ms`): with `group_by` set, this route's alerts are gathered into groups
    /// and each group is notified once per flush; without it, every alert is sent on its own.
    #[serde(flatten)]
    pub grouping: crate::engine::grouping::GroupingConfig,
    /// With grouping: notify resolved alerts too (Alertmanager's send_resolved; default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resolved: Option<bool>,
}

/// One recipient's channel preferences: the first tier whose floor the severity reaches wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    pub name: String,
    pub tiers: Vec<RecipientTier>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientTier {
    pub min_severity: Severity,
    pub channels: Vec<String>,
}

/// The whole routing table as written in config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
    /// Channels for deliverable alerts no route matched.
    #[serde(default)]
    pub default_channels: Vec<String>,
    #[serde(default = "default_policy")]
    pub default_retry_policy: String,
}

fn default_policy() -> String {
    "exponential".to_owned()
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            recipients: Vec::new(),
            default_channels: Vec::new(),
            default_retry_policy: default_policy(),
        }
    }
}

#[derive(Debug, Clone)]
enum LabelMatcher {
    Equal(String),
    NotEqual(String),
    Matches(Regex),
    NotMatches(Regex),
}

impl LabelMatcher {
    fn parse(spec: &str) -> Result<Self, regex::Error> {
        let anchored = |re: &str| Regex::new(&format!("^(?:{re})$"));
        Ok(if let Some(re) = spec.strip_prefix("!~") {
            Self::NotMatches(anchored(re)?)
        } else if let Some(re) = spec.strip_prefix('~') {
            Self::Matches(anchored(re)?)
        } else if let Some(value) = spec.strip_prefix('!') {
            Self::NotEqual(value.to_owned())
        } else {
            Self::Equal(spec.to_owned())
        })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Equal(v) => v == value,
            Self::NotEqual(v) => v != value,
            Self::Matches(re) => re.is_match(value),
            Self::NotMatches(re) => !re.is_match(value),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum SeverityMatcher {
    Exactly(Severity),
    AtLeast(Severity),
}

#[derive(Debug, Clone)]
struct Route {
    config: RouteConfig,
    labels: Vec<(String, LabelMatcher)>,
    severity: Option<SeverityMatcher>,
}

/// A mistake in the routing table, naming the route and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route {route:?}, {field}: {message}")]
pub struct RoutingError {
    pub route: String,
    pub field: String,
    pub message: String,
}

/// A validated routing table, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
    known_channels: Vec<String>,
    recipients: BTreeMap<String, RecipientConfig>,
    default_channels: Vec<String>,
    default_retry_policy: String,
}

/// One delivery the router asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub channel: String,
    pub retry_policy: String,
    pub route: String,
    /// The route groups its alerts: the alert joins a group instead of being sent alone.
    pub grouped: bool,
}

/// How a grouped route notifies.
#[derive(Debug, Clone, Copy)]
pub struct RouteGrouping<'a> {
    pub config: &'a crate::engine::grouping::GroupingConfig,
    pub send_resolved: bool,
    pub retry_policy: &'a str,
}

/// The router's answer for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub directive: Directive,
    /// One entry per channel (deduplicated, first route wins).
    pub targets: Vec<Target>,
    /// Routes that matched, in order.
    pub matched: Vec<String>,
}

impl Router {
    /// Validate a routing table: regexes compile, severities parse, names are known.
    pub fn new(config: &RoutingConfig, known_channels: &[String]) -> Result<Self, RoutingError> {
        let recipients: BTreeMap<_, _> = config
            .recipients
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        let check_channels = |route: &str, field: &str, channels: &[String]| {
            channels
                .iter()
                .find(|c| !known_channels.contains(c))
                .map_or(Ok(()), |c| {
                    Err(RoutingError {
                        route: route.to_owned(),
                        field: field.to_owned(),
                        message: format!("unknown channel {c:?}"),
                    })
                })
        };
        check_channels("(default)", "default_channels", &config.default_channels)?;
        for recipient in &config.recipients {
            for tier in &recipient.tiers {
                check_channels(&recipient.name, "recipients.tiers.channels", &tier.channels)?;
            }
        }
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in &config.routes {
            let error = |field: &str, message: String| RoutingError {
                route: route.name.clone(),
                field: field.to_owned(),
                message,
            };
            check_channels(&route.name, "channels", &route.channels)?;
            route
                .grouping
                .validate()
                .map_err(|e| error(e.field, e.message))?;
            if let Some(unknown) = route
                .recipients
                .iter()
                .find(|r| !recipients.contains_key(*r))
            {
                return Err(error(
                    "recipients",
                    format!("unknown recipient {unknown:?}"),
                ));
            }
            let labels = route
                .labels
                .iter()
                .map(|(name, spec)| {
                    LabelMatcher::parse(spec)
                        .map(|m| (name.clone(), m))
                        .map_err(|e| error(&format!("labels.{name}"), e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let severity = route
                .severity
                .as_deref()
                .map(|spec| match spec.strip_prefix(">=") {
                    Some(floor) => floor.trim().parse().map(SeverityMatcher::AtLeast),
                    None => spec.parse().map(SeverityMatcher::Exactly),
                })
                .transpose()
                .map_err(|e| error("severity", e))?;
            routes.push(Route {
                config: route.clone(),
                labels,
                severity,
            });
        }
        Ok(Self {
            known_channels: known_channels.to_vec(),
            routes,
            recipients,
            default_channels: config.default_channels.clone(),
            default_retry_policy: config.default_retry_policy.clone(),
        })
    }

    fn route_matches(route: &Route, alert: &Alert, directive: Directive) -> bool {
        let labels_match = route.labels.iter().all(|(name, matcher)| {
            matcher.matches(alert.labels.get(name).map_or("", String::as_str))
        });
        let severity_match = match route.severity {
            None => true,
            Some(SeverityMatcher::Exactly(s)) => alert.severity == s,
            Some(SeverityMatcher::AtLeast(s)) => alert.severity >= s,
        };
        labels_match
            && severity_match
            && route
                .config
                .tenant
                .as_ref()
                .is_none_or(|t| *t == alert.tenant)
            && if route.config.directives.is_empty() {
                directive.delivers_by_default()
            } else {
                route.config.directives.contains(&directive)
            }
    }

    fn recipient_channels(&self, name: &str, severity: Severity) -> Vec<String> {
        self.recipients
            .get(name)
            .and_then(|r| r.tiers.iter().find(|t| severity >= t.min_severity))
            .map(|t| t.channels.clone())
            .unwrap_or_default()
    }

    /// How a grouped route notifies (`None` for a route that does not group, or is gone).
    pub fn grouping(&self, route: &str) -> Option<RouteGrouping<'_>> {
        self.routes
            .iter()
            .find(|r| r.config.name == route && r.config.grouping.is_enabled())
            .map(|r| RouteGrouping {
                config: &r.config.grouping,
                send_resolved: r.config.send_resolved.unwrap_or(true),
                retry_policy: r
                    .config
                    .retry_policy
                    .as_deref()
                    .unwrap_or(&self.default_retry_policy),
            })
    }

    /// Where an alert goes.
    pub fn route(&self, alert: &Alert) -> Result<Decision, String> {
        let directive = Directive::of(alert)?;
        if alert.test {
            return Ok(self.route_test(alert, directive));
        }
        let mut decision = Decision {
            directive,
            targets: Vec::new(),
            matched: Vec::new(),
        };
        let add = |targets: &mut Vec<Target>,
                   channel: String,
                   policy: &str,
                   route: &str,
                   grouped: bool| {
            if !targets.iter().any(|t| t.channel == channel) {
                targets.push(Target {
                    channel,
                    retry_policy: policy.to_owned(),
                    route: route.to_owned(),
                    grouped,
                });
            }
        };
        for route in &self.routes {
            if !Self::route_matches(route, alert, directive) {
                continue;
            }
            decision.matched.push(route.config.name.clone());
            {
                let policy = route
                    .config
                    .retry_policy
                    .as_deref()
                    .unwrap_or(&self.default_retry_policy);
                let mut channels = route.config.channels.clone();
                for recipient in &route.config.recipients {
                    channels.extend(self.recipient_channels(recipient, alert.severity));
                }
                if let Some(label) = &route.config.recipient_label
                    && let Some(recipient) = alert.labels.get(label)
                {
                    channels.extend(self.recipient_channels(recipient, alert.severity));
                }
                let grouped = route.config.grouping.is_enabled();
                for channel in channels {
                    add(
                        &mut decision.targets,
                        channel,
                        policy,
                        &route.config.name,
                        grouped,
                    );
                }
            }
            if !route.config.continue_matching {
                break;
            }
        }
        if decision.matched.is_empty() && directive.delivers_by_default() {
            for channel in &self.default_channels {
                add(
                    &mut decision.targets,
                    channel.clone(),
                    &self.default_retry_policy,
                    "(default)",
                    false,
                );
            }
        }
        Ok(decision)
    }

    /// A test alert skips the rules: it goes to the channel the operator picked, else to
    /// `stdout`, so it never pages anyone real by accident.
    fn route_test(&self, alert: &Alert, directive: Directive) -> Decision {
        let channel = alert
            .labels
            .get(TEST_CHANNEL_LABEL)
            .map_or("stdout", String::as_str);
        let targets = self
            .known_channels
            .iter()
            .filter(|c| c.as_str() == channel)
            .map(|c| Target {
                channel: c.clone(),
                retry_policy: self.default_retry_policy.clone(),
                route: "(test)".to_owned(),
                grouped: false,
            })
            .collect();
        Decision {
            directive,
            targets,
            matched: vec!["(test)".to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AlertStatus, fingerprint};

    fn alert(labels: &[(&str, &str)], severity: Severity) -> Alert {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: BTreeMap::new(),
            severity,
            status: AlertStatus::Firing,
            tenant: "acme".to_owned(),
            starts_at_ms: 0,
            ends_at_ms: None,
            generator_url: None,
            correlation_id: "c".to_owned(),
            test: false,
        }
    }

    fn channels() -> Vec<String> {
        [
            "slack-ops",
            "slack-dba",
            "email-dba",
            "pager",
            "tuning",
            "stdout",
        ]
        .map(String::from)
        .to_vec()
    }

    fn router(toml_text: &str) -> Router {
        let config: RoutingConfig = toml::from_str(toml_text).unwrap();
        Router::new(&config, &channels()).unwrap()
    }

    fn targets(decision: &Decision) -> Vec<&str> {
        decision
            .targets
            .iter()
            .map(|t| t.channel.as_str())
            .collect()
    }

    const TABLE: &str = r#"
        default_channels = ["stdout"]
        [[routes]]
        name = "db"
        labels = { team = "dba", service = "~pg-.*" }
        severity = ">=major"
        channels = ["email-dba"]
        recipients = ["dba"]
        retry_policy = "schedule"
        continue = true
        [[routes]]
        name = "all-critical"
        severity = "critical"
        channels = ["pager"]
        [[routes]]
        name = "rest"
        labels = { team = "!dba" }
        channels = ["slack-ops"]
        [[routes]]
        name = "tuning"
        directives = ["tune"]
        channels = ["tuning"]
        [[recipients]]
        name = "dba"
        tiers = [
          { min_severity = "critical", channels = ["pager", "slack-dba"] },
          { min_severity = "info", channels = ["slack-dba"] },
        ]
    "#;

    #[test]
    fn test_alerts_skip_the_rules_and_page_no_one_by_accident() {
        let r = router(TABLE);
        let mut test = alert(
            &[("team", "dba"), ("service", "pg-main")],
            Severity::Critical,
        );
        test.test = true;
        let d = r.route(&test).unwrap();
        assert_eq!(targets(&d), ["stdout"], "no channel picked: stdout only");
        assert_eq!(d.matched, ["(test)"]);
        test.labels
            .insert(TEST_CHANNEL_LABEL.to_owned(), "slack-ops".to_owned());
        assert_eq!(targets(&r.route(&test).unwrap()), ["slack-ops"]);
        test.labels
            .insert(TEST_CHANNEL_LABEL.to_owned(), "nowhere".to_owned());
        assert!(
            r.route(&test).unwrap().targets.is_empty(),
            "an unknown channel delivers nowhere"
        );
    }

    #[test]
    fn first_match_wins_unless_continue() {
        let r = router(TABLE);
        let d = r
            .route(&alert(
                &[("team", "dba"), ("service", "pg-main")],
                Severity::Critical,
            ))
            .unwrap();
        assert_eq!(d.matched, ["db", "all-critical"]);
        assert_eq!(
            targets(&d),
            ["email-dba", "pager", "slack-dba"],
            "deduplicated, in order"
        );
        assert_eq!(d.targets[0].retry_policy, "schedule");
        assert_eq!(
            d.targets[1].retry_policy, "schedule",
            "the first route to name a channel wins"
        );

        let d = r
            .route(&alert(
                &[("team", "dba"), ("service", "pg-main")],
                Severity::Major,
            ))
            .unwrap();
        assert_eq!(targets(&d), ["email-dba", "slack-dba"]);
        assert_eq!(
            d.matched,
            ["db"],
            "no later route matched: team=dba fails `rest`"
        );
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_read_empty() {
        let r = router(TABLE);
        let d = r
            .route(&alert(
                &[("team", "dba"), ("service", "xpg-main")],
                Severity::Critical,
            ))
            .unwrap();
        assert_eq!(d.matched, ["all-critical"]);
        let d = r.route(&alert(&[], Severity::Warning)).unwrap();
        assert_eq!(
            d.matched,
            ["rest"],
            "a missing team is \"\", which is not dba"
        );
    }

    #[test]
    fn directives_decide_what_is_delivered() {
        let r = router(TABLE);
        let skip = r
            .route(&alert(
                &[("directive", "skip"), ("team", "web")],
                Severity::Critical,
            ))
            .unwrap();
        assert_eq!(skip.directive, Directive::Skip);
        assert!(
            skip.targets.is_empty(),
            "skip delivers nothing unless a route names it"
        );
        let tune = r
            .route(&alert(&[("directive", "tune")], Severity::Critical))
            .unwrap();
        assert_eq!(targets(&tune), ["tuning"]);
        assert!(
            r.route(&alert(&[("directive", "later")], Severity::Info))
                .is_err()
        );
    }

    #[test]
    fn unmatched_alerts_use_the_default_channels() {
        let r = router(r#"default_channels = ["stdout"]"#);
        let d = r.route(&alert(&[], Severity::Info)).unwrap();
        assert_eq!(targets(&d), ["stdout"]);
        assert_eq!(d.targets[0].route, "(default)");
        let none = r
            .route(&alert(&[("directive", "none")], Severity::Info))
            .unwrap();
        assert!(none.targets.is_empty());
    }

    #[test]
    fn recipient_labels_pick_preferences_per_alert() {
        let r = router(
            r#"
            [[routes]]
            name = "by-team"
            recipient_label = "team"
            [[recipients]]
            name = "dba"
            tiers = [{ min_severity = "major", channels = ["pager"] }, { min_severity = "info", channels = ["email-dba"] }]
        "#,
        );
        assert_eq!(
            targets(
                &r.route(&alert(&[("team", "dba")], Severity::Critical))
                    .unwrap()
            ),
            ["pager"]
        );
        assert_eq!(
            targets(
                &r.route(&alert(&[("team", "dba")], Severity::Minor))
                    .unwrap()
            ),
            ["email-dba"]
        );
        assert!(
            r.route(&alert(&[("team", "web")], Severity::Critical))
                .unwrap()
                .targets
                .is_empty()
        );
    }

    #[test]
    fn mistakes_name_the_route_and_field() {
        let config: RoutingConfig = toml::from_str(
            r#"
            [[routes]]
            name = "broken"
            labels = { service = "~pg-(" }
        "#,
        )
        .unwrap();
        let err = Router::new(&config, &channels()).unwrap_err();
        assert_eq!(
            (err.route.as_str(), err.field.as_str()),
            ("broken", "labels.service")
        );
        let config: RoutingConfig = toml::from_str(
            r#"
            [[routes]]
            name = "typo"
            channels = ["slak-ops"]
        "#,
        )
        .unwrap();
        let err = Router::new(&config, &channels()).unwrap_err();
        assert!(
            err.to_string().contains("unknown channel \"slak-ops\""),
            "{err}"
        );
        assert!(toml::from_str::<RoutingConfig>("[[routes]]\nname = \"x\"\nchanels = []").is_err());
    }
}
