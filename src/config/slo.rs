//! `[slo]`: the service level objectives Ward shows, alerts on and writes Prometheus rules for,
//! and where their figures come from (a Prometheus HTTP API, or this process's own counters).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::slo::{Objective, Period};

/// `[slo]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SloConfig {
    /// Prometheus HTTP API to read SLO figures from, e.g. "http://127.0.0.1:9090" (empty: this
    /// process's own counters, whole only for `ward demo` and a single `ward up`).
    pub prometheus_url: String,
    /// `ward up`'s HTTP address, whose /api/v1/slo/section the control room and `ward status`
    /// read when no prometheus_url is set (empty: derived from ingest.bind, on this host).
    pub api_url: String,
    /// Time allowed for one Prometheus query, in milliseconds.
    pub timeout_ms: u64,
    /// Ward's own SLOs: ingest success, delivery success per backend and delivery latency.
    pub builtin: bool,
    /// Your objectives, besides Ward's (or instead, with builtin = false).
    pub objectives: Vec<SloSpec>,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            prometheus_url: String::new(),
            api_url: String::new(),
            timeout_ms: 2_000,
            builtin: true,
            objectives: Vec::new(),
        }
    }
}

/// One objective as written in the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    /// Letters, digits, `-` and `_`: it names rules, alerts and API entries.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A fraction: 0.999 is 99.9 %. 1.0 is refused: it leaves no error budget.
    pub target: f64,
    /// "30d" (the default) or "28d", rolling.
    #[serde(default = "default_period")]
    pub period: Period,
    pub sli: Sli,
}

fn default_period() -> Period {
    Period::Days30
}

/// What is counted, as PromQL selectors of counters: `metric` or `metric{label="value",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sli {
    /// Bad events among all: give `errors`, or `good` (then errors = total − good).
    Availability {
        total: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errors: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        good: Option<String>,
    },
    /// Events slower than `threshold_s` seconds are bad. `histogram` is the histogram's name
    /// (without `_bucket`) with optional labels; `threshold_s` must be one of its bucket bounds.
    Latency { histogram: String, threshold_s: f64 },
}

/// A checked objective, ready to evaluate and to write rules for.
#[derive(Debug, Clone, PartialEq)]
pub struct SloDefinition {
    pub name: String,
    pub description: String,
    pub objective: Objective,
    pub events: Events,
}

impl SloConfig {
    /// Where a process attached to a `ward up` reads its SLO figures without Prometheus:
    /// `api_url`, else `ingest.bind` on this host; `None` when the port is not fixed.
    pub fn api_section_url(&self, ingest_bind: &str) -> Option<String> {
        let base = if self.api_url.is_empty() {
            let (host, port) = ingest_bind.rsplit_once(':')?;
            if port == "0" || port.is_empty() {
                return None;
            }
            let host = match host.trim_matches(['[', ']']) {
                "0.0.0.0" | "" => "127.0.0.1",
                "::" => "[::1]",
                _ => host,
            };
            format!("http://{host}:{port}")
        } else {
            self.api_url.trim_end_matches('/').to_owned()
        };
        Some(format!("{base}/api/v1/slo/section"))
    }
}

impl SloDefinition {
    /// Where an operator looks when this objective burns: the channel its events name, else
    /// the stage its metric measures.
    pub fn where_to_look(&self) -> String {
        let [_, total] = self.events.selectors();
        let label = |name: &str| {
            total
                .matchers
                .iter()
                .find(|m| m.label == name && m.op == MatchOp::Equal)
                .map(|m| m.value.clone())
        };
        if let Some(channel) = label("channel") {
            format!("breaker {channel} (4) and the DLQ filtered channel={channel} (3)")
        } else if let Some(backend) = label("backend") {
            format!("the breakers of the {backend} channels (4) and the DLQ by channel (3)")
        } else if total.metric.contains("ingest") {
            "ingest: the ingest queue and rejects (2), the ingest DLQ (3)".to_owned()
        } else if total.metric.contains("duration") || total.metric.contains("latency") {
            "slow channels: breakers (4) and what waits to retry (2)".to_owned()
        } else {
            "the DLQ by error (3) and the breakers (4)".to_owned()
        }
    }
}

/// The SLI as two counter expressions, each a sum over its selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Events {
    /// errors / total.
    Errors { errors: Selector, total: Selector },
    /// (total − good) / total.
    Good { good: Selector, total: Selector },
}

impl Events {
    /// PromQL for the bad and the total events over `range` (`5m`, `30d`) with `function`
    /// (`rate` for rules, `increase` for counts).
    /// Client libraries create a labelled series at its first event, so a missing errors (or
    /// good) series next to a present total counts as 0; a missing total stays missing.
    pub fn promql(&self, function: &str, range: &str) -> (String, String) {
        let sum = |s: &Selector| format!("sum({function}({s}[{range}]))");
        let lazy = |s: &Selector| format!("({} or on() vector(0))", sum(s));
        match self {
            Self::Errors { errors, total } => (lazy(errors), sum(total)),
            Self::Good { good, total } => {
                (format!("({} - {})", sum(total), lazy(good)), sum(total))
            }
        }
    }

    /// The error ratio over `range`, as a recording rule computes it.
    pub fn ratio_promql(&self, range: &str) -> String {
        let (bad, total) = self.promql("rate", range);
        format!("{bad} / {total}")
    }

    pub fn selectors(&self) -> [&Selector; 2] {
        match self {
            Self::Errors { errors, total } => [errors, total],
            Self::Good { good, total } => [good, total],
        }
    }
}

/// A PromQL instant-vector selector: a metric name and label matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if self.matchers.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}\"", m.label, m.op.as_str())?;
            for c in m.value.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

fn is_name(text: &str, colons: bool) -> bool {
    let mut chars = text.chars();
    let head = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(head) && chars.all(|c| head(c) || c.is_ascii_digit())
}

impl Selector {
    /// `metric` or `metric{label="value", other!~"a|b"}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (metric, rest) = match text.find('{') {
            Some(at) => (text[..at].trim(), Some(&text[at + 1..])),
            None => (text, None),
        };
        if !is_name(metric, true) {
            return Err(format!("{metric:?} is not a metric name"));
        }
        let mut matchers = Vec::new();
        if let Some(rest) = rest {
            let mut chars = rest.char_indices().peekable();
            loop {
                while chars
                    .next_if(|(_, c)| c.is_whitespace() || *c == ',')
                    .is_some()
                {}
                match chars.peek() {
                    Some((_, '}')) => {
                        chars.next();
                        break;
                    }
                    None => return Err("the label matchers are not closed with }".to_owned()),
                    _ => {}
                }
                let mut label = String::new();
                while let Some((_, c)) =
                    chars.next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                {
                    label.push(c);
                }
                if !is_name(&label, false) {
                    return Err(format!("expected a label name in {text:?}"));
                }
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                let op = match (chars.next().map(|(_, c)| c), chars.peek().map(|(_, c)| *c)) {
                    (Some('='), Some('~')) => {
                        chars.next();
                        MatchOp::Regex
                    }
                    (Some('='), _) => MatchOp::Equal,
                    (Some('!'), Some('=')) => {
                        chars.next();
                        MatchOp::NotEqual
                    }
                    (Some('!'), Some('~')) => {
                        chars.next();
                        MatchOp::NotRegex
                    }
                    _ => return Err(format!("expected =, !=, =~ or !~ after {label:?}")),
                };
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("the value of {label:?} must be in double quotes"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => return Err("unfinished escape".to_owned()),
                        },
                        Some(c) => value.push(c),
                        None => return Err(format!("the value of {label:?} is not closed")),
                    }
                }
                if matches!(op, MatchOp::Regex | MatchOp::NotRegex) {
                    regex::Regex::new(&format!("^(?:{value})$"))
                        .map_err(|e| format!("the regex of {label:?} is invalid: {e}"))?;
                }
                matchers.push(Matcher { label, op, value });
            }
            if let Some((at, _)) = chars.next() {
                return Err(format!("unexpected {:?} after the matchers", &rest[at..]));
            }
        }
        Ok(Self {
            metric: metric.to_owned(),
            matchers,
        })
    }

    /// The same labels on another metric of the family (`_bucket`, `_count`), plus `extra`.
    #[must_use]
    pub fn family(&self, suffix: &str, extra: Option<Matcher>) -> Self {
        let mut matchers = self.matchers.clone();
        matchers.extend(extra);
        Self {
            metric: format!("{}{suffix}", self.metric),
            matchers,
        }
    }

    /// Whether a series with these labels is selected (the metric name is compared apart).
    pub fn matches(&self, labels: &dyn Fn(&str) -> Option<String>) -> bool {
        self.matchers.iter().all(|m| {
            let have = labels(&m.label).unwrap_or_default();
            let full = |v: &str| {
                regex::Regex::new(&format!("^(?:{})$", m.value)).is_ok_and(|r| r.is_match(v))
            };
            match m.op {
                MatchOp::Equal => have == m.value,
                MatchOp::NotEqual => have != m.value,
                MatchOp::Regex => full(&have),
                MatchOp::NotRegex => !full(&have),
            }
        })
    }
}

/// A bucket bound as exporters write the `le` label (and Prometheus 3 normalises it): `1.0`,
/// `0.25`, `2.5`.
pub fn le_label(bound: f64) -> String {
    if bound.fract() == 0.0 {
        format!("{bound:.1}")
    } else {
        format!("{bound}")
    }
}

impl SloSpec {
    pub fn definition(&self) -> Result<SloDefinition, (String, String)> {
        let key = |k: &str| format!("slo.objectives.{}.{k}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "slo.objectives.name".to_owned(),
                format!("{:?}: use letters, digits, - and _", self.name),
            ));
        }
        let objective =
            Objective::new(self.target, self.period).map_err(|e| (key("target"), e.to_string()))?;
        let parse = |field: &str, text: &str| {
            Selector::parse(text).map_err(|e| (key(&format!("sli.{field}")), e))
        };
        let events = match &self.sli {
            Sli::Availability {
                total,
                errors,
                good,
            } => {
                let total = parse("total", total)?;
                match (errors, good) {
                    (Some(errors), None) => Events::Errors {
                        errors: parse("errors", errors)?,
                        total,
                    },
                    (None, Some(good)) => Events::Good {
                        good: parse("good", good)?,
                        total,
                    },
                    _ => {
                        return Err((key("sli"), "give exactly one of errors and good".to_owned()));
                    }
                }
            }
            Sli::Latency {
                histogram,
                threshold_s,
            } => {
                let histogram = parse("histogram", histogram)?;
                if !(threshold_s.is_finite() && *threshold_s > 0.0) {
                    return Err((
                        key("sli.threshold_s"),
                        format!("{threshold_s} is not a number of seconds above 0"),
                    ));
                }
                Events::Good {
                    good: histogram.family(
                        "_bucket",
                        Some(Matcher {
                            label: "le".to_owned(),
                            op: MatchOp::Equal,
                            value: le_label(*threshold_s),
                        }),
                    ),
                    total: histogram.family("_count", None),
                }
            }
        };
        Ok(SloDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            objective,
            events,
        })
    }
}

/// The delivery latency Ward's own SLO holds to: 99 % of sends within this many seconds.
pub const BUILTIN_LATENCY_S: f64 = 2.5;

/// Ward's own objectives: ingest success, delivery success for each backend in use, and
/// delivery latency. Ingest counts only the refusals that are Ward's doing (a full queue,
/// shedding, an unavailable store), not a sender's bad request.
pub fn builtin_objectives(backends: &[&str]) -> Vec<SloSpec> {
    let mut specs = vec![SloSpec {
        name: "ingest-success".to_owned(),
        description: "Alerts accepted by the ingest endpoint, unless the sender was at fault"
            .to_owned(),
        target: 0.999,
        period: Period::Days30,
        sli: Sli::Availability {
            total: "ward_ingest_requests_total".to_owned(),
            errors: Some(
                r#"ward_ingest_requests_total{status="rejected",reason=~"queue_full|shedding|store"}"#
                    .to_owned(),
            ),
            good: None,
        },
    }];
    for backend in backends {
        specs.push(SloSpec {
            name: format!("delivery-success-{backend}"),
            description: format!("Alerts delivered by {backend} channels rather than dead-lettered"),
            target: 0.99,
            period: Period::Days30,
            sli: Sli::Availability {
                total: format!(
                    r#"ward_deliveries_total{{backend="{backend}",outcome=~"delivered|dead_lettered",test="false"}}"#
                ),
                errors: Some(format!(
                    r#"ward_deliveries_total{{backend="{backend}",outcome="dead_lettered",test="false"}}"#
                )),
                good: None,
            },
        });
    }
    specs.push(SloSpec {
        name: "delivery-latency".to_owned(),
        description: format!("Sends that took at most {BUILTIN_LATENCY_S} s"),
        target: 0.99,
        period: Period::Days30,
        sli: Sli::Latency {
            histogram: "ward_delivery_duration_seconds".to_owned(),
            threshold_s: BUILTIN_LATENCY_S,
        },
    });
    specs
}

impl SloConfig {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if !self.prometheus_url.is_empty() {
            let ok = reqwest::Url::parse(&self.prometheus_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err((
                    "slo.prometheus_url".to_owned(),
                    format!(
                        "{:?} is not an http:// or https:// URL",
                        self.prometheus_url
                    ),
                ));
            }
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err((
                "slo.timeout_ms".to_owned(),
                format!("must be between 100 and 60000, got {}", self.timeout_ms),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for spec in &self.objectives {
            spec.definition()?;
            if !seen.insert(spec.name.as_str()) {
                return Err((
                    format!("slo.objectives.{}", spec.name),
                    "two objectives have this name".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// Every objective to evaluate: Ward's own (for the backends `delivery` uses) unless
    /// `builtin = false`, then the configured ones (which replace a builtin of the same name).
    pub fn definitions(
        &self,
        delivery: &super::DeliveryConfig,
    ) -> Result<Vec<SloDefinition>, (String, String)> {
        let mut backends: Vec<&str> = delivery
            .channels
            .iter()
            .map(|c| c.kind().as_str())
            .filter(|b| *b != "null")
            .collect();
        backends.sort_unstable();
        backends.dedup();
        let mut specs = if self.builtin {
            builtin_objectives(&backends)
        } else {
            Vec::new()
        };
        specs.retain(|b| self.objectives.iter().all(|o| o.name != b.name));
        specs.extend(self.objectives.iter().cloned());
        specs.iter().map(SloSpec::definition).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_print_back() {
        for text in [
            "up",
            r#"ward_deliveries_total{backend="slack",outcome=~"delivered|dead_lettered"}"#,
            r#"x{a!="1",b!~"c.*",q="with \"quote\" and \\"}"#,
            "job:slo_errors_per_request:ratio_rate5m",
        ] {
            let parsed = Selector::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(Selector::parse(&parsed.to_string()).unwrap(), parsed);
        }
        let spaced = Selector::parse(r#" x { a = "1" , b =~ "2" , } "#).unwrap();
        assert_eq!(spaced.to_string(), r#"x{a="1",b=~"2"}"#);
        for (bad, says) in [
            ("", "not a metric name"),
            ("1x", "not a metric name"),
            (r#"x{a="1""#, "not closed"),
            ("x{a=1}", "double quotes"),
            (r#"x{a=="1"}"#, "double quotes"),
            (r#"x{a<"1"}"#, "expected ="),
            (r#"x{a=~"("}"#, "regex"),
            (r#"x{a="1"} extra"#, "unexpected"),
        ] {
            let error = Selector::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
    }

    #[test]
    fn selectors_match_labels_as_prometheus_does() {
        let s = Selector::parse(r#"m{a="1",b!="2",c=~"x|y",d!~"z.*"}"#).unwrap();
        let labels = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(s.matches(&labels(&[("a", "1"), ("b", "3"), ("c", "y"), ("d", "q")])));
        assert!(
            s.matches(&labels(&[("a", "1"), ("c", "x")])),
            "absent labels are empty"
        );
        assert!(
            !s.matches(&labels(&[("a", "1"), ("c", "xy")])),
            "regexes are anchored"
        );
        assert!(!s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "x")])));
        assert!(!s.matches(&labels(&[("a", "1"), ("c", "x"), ("d", "zz")])));
    }

    #[test]
    fn builtins_cover_ingest_each_backend_in_use_and_latency() {
        let specs = builtin_objectives(&["slack", "smtp"]);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ingest-success",
                "delivery-success-slack",
                "delivery-success-smtp",
                "delivery-latency"
            ]
        );
        for spec in &specs {
            spec.definition().unwrap();
        }
        let latency = specs[3].definition().unwrap();
        let (bad, total) = latency.events.promql("increase", "5m");
        assert_eq!(
            total,
            "sum(increase(ward_delivery_duration_seconds_count[5m]))"
        );
        assert!(
            bad.contains(r#"ward_delivery_duration_seconds_bucket{le="2.5"}"#),
            "{bad}"
        );
        assert!(crate::telemetry::metrics::DELIVERY_DURATION_BUCKETS.contains(&BUILTIN_LATENCY_S));
    }

    #[test]
    fn bad_objectives_are_refused_with_the_key() {
        let spec = |target: f64, sli: Sli| SloSpec {
            name: "x".to_owned(),
            description: String::new(),
            target,
            period: Period::Days30,
            sli,
        };
        let availability = || Sli::Availability {
            total: "t".to_owned(),
            errors: Some("e".to_owned()),
            good: None,
        };
        let (key, message) = spec(1.0, availability()).definition().unwrap_err();
        assert_eq!(key, "slo.objectives.x.target");
        assert!(message.contains("no error budget"), "{message}");
        let both = Sli::Availability {
            total: "t".to_owned(),
            errors: Some("e".to_owned()),
            good: Some("g".to_owned()),
        };
        assert_eq!(
            spec(0.99, both).definition().unwrap_err().0,
            "slo.objectives.x.sli"
        );
        let latency = Sli::Latency {
            histogram: "h".to_owned(),
            threshold_s: 0.0,
        };
        assert_eq!(
            spec(0.99, latency).definition().unwrap_err().0,
            "slo.objectives.x.sli.threshold_s"
        );
        let mut named = spec(0.99, availability());
        named.name = "has space".to_owned();
        assert!(named.definition().is_err());
    }

    #[test]
    fn le_labels_are_written_as_exporters_write_them() {
        assert_eq!(le_label(1.0), "1.0");
        assert_eq!(le_label(2.5), "2.5");
        assert_eq!(le_label(0.005), "0.005");
        assert_eq!(le_label(30.0), "30.0");
    }
}
