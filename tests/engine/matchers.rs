//! Label matchers against Alertmanager's documented semantics: a table of the documented examples
//! (docs/configuration.md, "Matchers" and "Label matchers"; amtool's README), and properties that
//! must hold for any label value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use ward::engine::matcher::{Matcher, matches_all, parse_matchers};
use ward::model::{LabelMatcher, MatchOp};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn matches(text: &str, set: &BTreeMap<String, String>) -> bool {
    let specs = parse_matchers(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let compiled: Vec<Matcher> = specs.iter().map(|s| Matcher::compile(s).unwrap()).collect();
    matches_all(&compiled, set)
}

/// Matchers as documented, the alert's labels, and whether they match.
type Case = (&'static str, &'static [(&'static str, &'static str)], bool);

const DOCUMENTED: &[Case] = &[
    // "The name of the label, the operator and the value": the four operators.
    ("alertname = Watchdog", &[("alertname", "Watchdog")], true),
    ("alertname = Watchdog", &[("alertname", "WatchdogX")], false),
    ("severity != critical", &[("severity", "warning")], true),
    ("severity != critical", &[("severity", "critical")], false),
    (
        r#"severity =~ "warning|critical""#,
        &[("severity", "critical")],
        true,
    ),
    (
        r#"severity =~ "warning|critical""#,
        &[("severity", "info")],
        false,
    ),
    (r#"instance !~ "db-.*""#, &[("instance", "web-1")], true),
    (r#"instance !~ "db-.*""#, &[("instance", "db-1")], false),
    // Regexes are fully anchored.
    (r#"job =~ "node""#, &[("job", "node-exporter")], false),
    (r#"job =~ "exporter""#, &[("job", "node-exporter")], false),
    (r#"job =~ "node.*""#, &[("job", "node-exporter")], true),
    (r#"job =~ ".*exporter""#, &[("job", "node-exporter")], true),
    // A missing label has the empty value.
    (r#"team = """#, &[("alertname", "A")], true),
    (r#"team != """#, &[("alertname", "A")], false),
    (r#"team =~ ".*""#, &[("alertname", "A")], true),
    (r#"team =~ ".+""#, &[("alertname", "A")], false),
    (r#"team !~ ".+""#, &[("alertname", "A")], true),
    // Several matchers: all must match (the braces form and amtool's words).
    (
        r#"{foo="bar", dog!="cat"}"#,
        &[("foo", "bar"), ("dog", "bat")],
        true,
    ),
    (
        r#"{foo="bar", dog!="cat"}"#,
        &[("foo", "bar"), ("dog", "cat")],
        false,
    ),
    ("foo=bar dog!=cat", &[("foo", "bar")], true),
    // amtool: a first word without an operator is the alertname.
    ("Watchdog", &[("alertname", "Watchdog")], true),
    (
        "Watchdog env=prod",
        &[("alertname", "Watchdog"), ("env", "dev")],
        false,
    ),
    // Quoted values keep their commas, quotes and escapes.
    (r#"msg = "a, \"b\"""#, &[("msg", r#"a, "b""#)], true),
    // Label names and values are case-sensitive; a regex may ignore case itself.
    ("env = Prod", &[("env", "prod")], false),
    (r#"env =~ "(?i)prod""#, &[("env", "PROD")], true),
];

#[test]
fn alertmanagers_documented_examples_match_as_documented() {
    for (text, pairs, want) in DOCUMENTED {
        assert_eq!(matches(text, &labels(pairs)), *want, "{text} on {pairs:?}");
    }
}

fn any_op() -> impl Strategy<Value = MatchOp> {
    prop_oneof![
        Just(MatchOp::Equal),
        Just(MatchOp::NotEqual),
        Just(MatchOp::Regex),
        Just(MatchOp::NotRegex),
    ]
}

proptest! {
    /// `=` is string equality and `!=` its negation, for any value.
    #[test]
    fn equality_is_exact(value in ".{0,12}", other in ".{0,12}") {
        let eq = Matcher::compile(&LabelMatcher::new("l", MatchOp::Equal, value.clone())).unwrap();
        let ne = Matcher::compile(&LabelMatcher::new("l", MatchOp::NotEqual, value.clone())).unwrap();
        let set = labels(&[("l", &other)]);
        prop_assert_eq!(eq.matches(&set), value == other);
        prop_assert_eq!(ne.matches(&set), value != other);
    }

    /// An escaped literal as a regex matches exactly that value: anchoring leaves no
    /// substring match, and `!~` is the negation.
    #[test]
    fn regexes_are_anchored(value in ".{1,8}", prefix in ".{0,4}", suffix in ".{0,4}") {
        let re = regex::escape(&value);
        let on = Matcher::compile(&LabelMatcher::new("l", MatchOp::Regex, re.clone())).unwrap();
        let off = Matcher::compile(&LabelMatcher::new("l", MatchOp::NotRegex, re)).unwrap();
        let padded = format!("{prefix}{value}{suffix}");
        let set = labels(&[("l", &padded)]);
        let exact = prefix.is_empty() && suffix.is_empty();
        prop_assert_eq!(on.matches(&set), exact);
        prop_assert_eq!(off.matches(&set), !exact);
    }

    /// A label the alert lacks reads as the empty value, for every operator.
    #[test]
    fn a_missing_label_is_the_empty_value(op in any_op(), value in "[a-z]{0,3}") {
        let spec = LabelMatcher::new("missing", op, value);
        let m = Matcher::compile(&spec).unwrap();
        prop_assert_eq!(m.matches(&labels(&[("other", "x")])), m.matches(&labels(&[("missing", "")])));
    }

    /// What a matcher displays parses back to itself, whatever its value holds.
    #[test]
    fn display_parses_back(name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}", op in any_op(), value in "[ -~]{0,12}") {
        let spec = LabelMatcher::new(name, op, if op.is_regex() { regex::escape(&value) } else { value });
        let text = spec.to_string();
        prop_assert_eq!(parse_matchers(&text).unwrap(), vec![spec.clone()]);
        let braces = format!("{{{text}, {text}}}");
        prop_assert_eq!(parse_matchers(&braces).unwrap(), vec![spec.clone(), spec]);
    }
}
