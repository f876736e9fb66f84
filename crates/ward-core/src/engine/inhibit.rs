//! Inhibition (Alertmanager semantics): a firing source alert mutes target alerts that agree
//! with it on the rule's `equal` labels, unless the two would mute each other.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::matcher::{Matcher, MatcherError, matches_all, parse_matchers};
use crate::model::{SeenAlert, Suppression};

/// An inhibition rule as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default)]
    pub name: String,
    /// Matchers in Alertmanager's syntax, e.g. `["alertname=\"NodeDown\"", "severity=\"critical\""]`.
    pub source_matchers: Vec<String>,
    pub target_matchers: Vec<String>,
    /// Labels source and target must agree on (a label missing on both counts as equal).
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("inhibit rule {rule:?}, {field}: {source}")]
pub struct InhibitRuleError {
    pub rule: String,
    pub field: &'static str,
    #[source]
    pub source: MatcherError,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub name: String,
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

impl InhibitRule {
    /// A rule without a name is called after its position, `rule-1` onwards.
    pub fn new(config: &InhibitRuleConfig, position: usize) -> Result<Self, InhibitRuleError> {
        let name = if config.name.is_empty() {
            format!("rule-{}", position + 1)
        } else {
            config.name.clone()
        };
        let compile = |field: &'static str, texts: &[String]| {
            let mut out = Vec::new();
            for text in texts {
                let specs = parse_matchers(text).map_err(|source| InhibitRuleError {
                    rule: name.clone(),
                    field,
                    source,
                })?;
                for spec in specs {
                    out.push(Matcher::compile(&spec).map_err(|source| InhibitRuleError {
                        rule: name.clone(),
                        field,
                        source,
                    })?);
                }
            }
            Ok(out)
        };
        Ok(Self {
            source: compile("source_matchers", &config.source_matchers)?,
            target: compile("target_matchers", &config.target_matchers)?,
            equal: config.equal.clone(),
            name,
        })
    }

    fn equal_values(&self, labels: &BTreeMap<String, String>) -> Vec<String> {
        self.equal
            .iter()
            .map(|name| labels.get(name).cloned().unwrap_or_default())
            .collect()
    }
}

pub fn compile_rules(configs: &[InhibitRuleConfig]) -> Result<Vec<InhibitRule>, InhibitRuleError> {
    configs
        .iter()
        .enumerate()
        .map(|(at, config)| InhibitRule::new(config, at))
        .collect()
}

struct Source {
    fingerprint: String,
    /// The source also matches the rule's target side (rule 4 needs it).
    is_target_too: bool,
}

/// A rule's firing sources, by the values of its `equal` labels.
type SourcesByEqual = HashMap<Vec<String>, Vec<Source>>;

/// The rules with their firing sources.
#[derive(Default)]
pub struct Inhibitor {
    rules: Vec<(InhibitRule, SourcesByEqual)>,
}

impl std::fmt::Debug for Inhibitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inhibitor")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Inhibitor {
    /// Sources are the alerts firing at `now_ms`, whatever their route (a silenced source still
    /// inhibits).
    pub fn new(rules: &[InhibitRule], alerts: &[SeenAlert], now_ms: i64) -> Self {
        let rules = rules
            .iter()
            .map(|rule| {
                let mut sources = SourcesByEqual::new();
                for alert in alerts.iter().filter(|a| a.is_firing(now_ms)) {
                    if matches_all(&rule.source, &alert.labels) {
                        sources
                            .entry(rule.equal_values(&alert.labels))
                            .or_default()
                            .push(Source {
                                fingerprint: alert.fingerprint.clone(),
                                is_target_too: matches_all(&rule.target, &alert.labels),
                            });
                    }
                }
                (rule.clone(), sources)
            })
            .collect();
        Self { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.iter().all(|(_, sources)| sources.is_empty())
    }

    /// The first rule and source that mute this alert, if any.
    pub fn inhibited_by(
        &self,
        fingerprint: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Suppression> {
        for (rule, sources) in &self.rules {
            if sources.is_empty() || !matches_all(&rule.target, labels) {
                continue;
            }
            let Some(candidates) = sources.get(&rule.equal_values(labels)) else {
                continue;
            };
            let target_is_source_too = matches_all(&rule.source, labels);
            if let Some(source) = candidates.iter().find(|s| {
                s.fingerprint != fingerprint && !(target_is_source_too && s.is_target_too)
            }) {
                return Some(Suppression::Inhibited {
                    rule: rule.name.clone(),
                    source: source.fingerprint.clone(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlertStatus;

    fn seen(fp: &str, pairs: &[(&str, &str)], status: AlertStatus) -> SeenAlert {
        SeenAlert {
            fingerprint: fp.to_owned(),
            labels: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            status,
            starts_at_ms: 0,
            ends_at_ms: None,
            last_seen_ms: 0,
        }
    }

    fn node_down_rule() -> Vec<InhibitRule> {
        compile_rules(&[InhibitRuleConfig {
            name: "node-down".to_owned(),
            source_matchers: vec![r#"alertname="NodeDown", severity="critical""#.to_owned()],
            target_matchers: vec![r#"severity="warning""#.to_owned()],
            equal: vec!["instance".to_owned()],
        }])
        .unwrap()
    }

    #[test]
    fn a_critical_node_down_inhibits_warnings_of_its_instance_only() {
        let rules = node_down_rule();
        let source = seen(
            "src",
            &[
                ("alertname", "NodeDown"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            AlertStatus::Firing,
        );
        let inhibitor = Inhibitor::new(&rules, &[source], 1);
        let warning_a = seen(
            "t1",
            &[("severity", "warning"), ("instance", "a")],
            AlertStatus::Firing,
        );
        let warning_b = seen(
            "t2",
            &[("severity", "warning"), ("instance", "b")],
            AlertStatus::Firing,
        );
        let critical_a = seen(
            "t3",
            &[("severity", "critical"), ("instance", "a")],
            AlertStatus::Firing,
        );
        assert_eq!(
            inhibitor.inhibited_by("t1", &warning_a.labels),
            Some(Suppression::Inhibited {
                rule: "node-down".to_owned(),
                source: "src".to_owned()
            })
        );
        assert_eq!(inhibitor.inhibited_by("t2", &warning_b.labels), None);
        assert_eq!(inhibitor.inhibited_by("t3", &critical_a.labels), None);
    }

    #[test]
    fn a_resolved_source_inhibits_nothing_and_nothing_inhibits_itself() {
        let rules = compile_rules(&[InhibitRuleConfig {
            name: String::new(),
            source_matchers: vec!["team=db".to_owned()],
            target_matchers: vec!["team=db".to_owned()],
            equal: vec!["cluster".to_owned()],
        }])
        .unwrap();
        let a = seen("a", &[("team", "db")], AlertStatus::Firing);
        let b = seen("b", &[("team", "db")], AlertStatus::Firing);
        let inhibitor = Inhibitor::new(&rules, &[a.clone(), b.clone()], 1);
        assert_eq!(
            inhibitor.inhibited_by("a", &a.labels),
            None,
            "rule 4: peers on both sides"
        );
        let resolved = seen(
            "src",
            &[
                ("alertname", "NodeDown"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            AlertStatus::Resolved,
        );
        let inhibitor = Inhibitor::new(&node_down_rule(), &[resolved], 1);
        assert!(inhibitor.is_empty());
    }
}
