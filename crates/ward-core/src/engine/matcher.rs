//! Alertmanager label matchers: `=`, `!=`, `=~`, `!~`, regexes fully anchored, a missing label
//! read as `""`. Parsing accepts both `{a="b", c=~"d"}` and amtool's `a=b c=~d`.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};

use crate::model::{LabelMatcher, MatchOp};

/// Compiled regexes larger than this are refused: a silence must not cost the pipeline.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("matcher {text:?}: {message}")]
    Syntax { text: String, message: String },
    #[error("matcher {matcher}: the regex does not compile: {message}")]
    Regex { matcher: String, message: String },
}

fn syntax(text: &str, message: impl Into<String>) -> MatcherError {
    MatcherError::Syntax {
        text: text.to_owned(),
        message: message.into(),
    }
}

/// A matcher ready to evaluate.
#[derive(Debug, Clone)]
pub struct Matcher {
    spec: LabelMatcher,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Matcher {
    pub fn compile(spec: &LabelMatcher) -> Result<Self, MatcherError> {
        let regex = if spec.op.is_regex() {
            let anchored = format!("^(?:{})$", spec.value);
            Some(
                RegexBuilder::new(&anchored)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| MatcherError::Regex {
                        matcher: spec.to_string(),
                        message: e.to_string(),
                    })?,
            )
        } else {
            None
        };
        Ok(Self {
            spec: spec.clone(),
            regex,
        })
    }

    pub fn spec(&self) -> &LabelMatcher {
        &self.spec
    }

    pub fn matches_value(&self, value: &str) -> bool {
        match (self.spec.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.spec.value,
            (MatchOp::NotEqual, _) => value != self.spec.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Against a label set: a label the set lacks reads as `""`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.spec.name).map_or("", String::as_str))
    }
}

pub fn compile_all(specs: &[LabelMatcher]) -> Result<Vec<Matcher>, MatcherError> {
    specs.iter().map(Matcher::compile).collect()
}

/// Every matcher matches (an empty list matches everything, as a route's does).
pub fn matches_all(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Parse matchers written as `{a="b", c=~"d"}`, `a="b",c=~"d"` or amtool's `a=b c=~d`; an
/// amtool-style first word without an operator is the `alertname`.
pub fn parse_matchers(text: &str) -> Result<Vec<LabelMatcher>, MatcherError> {
    let trimmed = text.trim();
    let inner = match (trimmed.strip_prefix('{'), trimmed.ends_with('}')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (Some(_), false) => return Err(syntax(text, "a `{` without its closing `}`")),
        (None, _) => trimmed,
    };
    let mut out = Vec::new();
    for (index, part) in split_outside_quotes(inner)
        .map_err(|m| syntax(text, m))?
        .into_iter()
        .enumerate()
    {
        if index == 0 && !part.contains(['=', '!', '~']) && !part.starts_with('"') {
            out.push(LabelMatcher::new("alertname", MatchOp::Equal, part));
            continue;
        }
        out.push(parse_one(&part)?);
    }
    Ok(out)
}

/// One matcher: `name op value`, the value quoted (`\"`, `\\`, `\n` escapes) or bare.
pub fn parse_one(text: &str) -> Result<LabelMatcher, MatcherError> {
    let text = text.trim();
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| syntax(text, "no operator: use =, !=, =~ or !~"))?;
    let name = &text[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(syntax(
            text,
            "a label name starts with a letter or `_` and holds letters, digits and `_`",
        ));
    }
    let rest = text[name_end..].trim_start();
    let (op, value) = [
        ("=~", MatchOp::Regex),
        ("!~", MatchOp::NotRegex),
        ("!=", MatchOp::NotEqual),
        ("=", MatchOp::Equal),
    ]
    .into_iter()
    .find_map(|(token, op)| rest.strip_prefix(token).map(|v| (op, v.trim())))
    .ok_or_else(|| syntax(text, "no operator: use =, !=, =~ or !~"))?;
    let value = if let Some(quoted) = value.strip_prefix('"') {
        unquote(quoted).map_err(|m| syntax(text, m))?
    } else {
        if value.contains(['"', ',', '{', '}']) {
            return Err(syntax(text, "quote a value that holds `\"`, `,` or braces"));
        }
        value.to_owned()
    };
    let spec = LabelMatcher::new(name, op, value);
    Matcher::compile(&spec)?;
    Ok(spec)
}

/// The rest of a quoted value (after the opening quote), which must end at its closing quote.
fn unquote(quoted: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return Err("a value ends in a lone `\\`".to_owned()),
            },
            '"' => {
                return if chars.as_str().trim().is_empty() {
                    Ok(out)
                } else {
                    Err("text after the closing quote".to_owned())
                };
            }
            c => out.push(c),
        }
    }
    Err("a quoted value without its closing quote".to_owned())
}

/// Split on commas and whitespace that sit outside double quotes.
fn split_outside_quotes(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if quoted {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                current.push(c);
            }
            ',' => parts.push(std::mem::take(&mut current)),
            c if c.is_whitespace() => {
                // Whitespace around an operator belongs to the matcher; between matchers it splits.
                let ends_with_op = current.ends_with(['=', '~', '!']);
                if !current.is_empty() && !ends_with_op {
                    parts.push(std::mem::take(&mut current));
                }
            }
            c => {
                let starts_op = matches!(c, '=' | '!' | '~');
                if starts_op
                    && current.is_empty()
                    && let Some(previous) = parts.pop()
                {
                    current = previous;
                }
                current.push(c);
            }
        }
    }
    if quoted {
        return Err("a quoted value without its closing quote".to_owned());
    }
    parts.push(current);
    Ok(parts.into_iter().filter(|p| !p.trim().is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn braces_commas_spaces_and_amtool_words_parse_alike() {
        let want = vec![
            LabelMatcher::new("alertname", MatchOp::Equal, "Disk"),
            LabelMatcher::new("env", MatchOp::NotEqual, "dev"),
            LabelMatcher::new("instance", MatchOp::Regex, "db-.*"),
        ];
        for text in [
            r#"{alertname="Disk", env!="dev", instance=~"db-.*"}"#,
            r#"alertname="Disk",env!="dev",instance=~"db-.*""#,
            "alertname=Disk env!=dev instance=~db-.*",
            "Disk env!=dev instance=~db-.*",
            r#"{ alertname = "Disk" , env != "dev", instance =~ "db-.*" }"#,
        ] {
            assert_eq!(parse_matchers(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn quoted_values_keep_commas_quotes_and_escapes() {
        let got = parse_matchers(r#"{msg="a, \"b\" \\ c", x=~"a|b"}"#).unwrap();
        assert_eq!(got[0].value, r#"a, "b" \ c"#);
        assert_eq!(got[1].value, "a|b");
        assert_eq!(
            parse_matchers(&got[0].to_string()).unwrap()[0],
            got[0],
            "display parses back"
        );
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        for (text, says) in [
            ("{a=\"b\"", "closing `}`"),
            ("a=\"b", "closing quote"),
            ("1a=b", "label name"),
            ("a=~\"(\"", "does not compile"),
            ("x y", "no operator"),
        ] {
            let error = parse_matchers(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let m = |s: &str| Matcher::compile(&parse_one(s).unwrap()).unwrap();
        let set = labels(&[("job", "node-exporter")]);
        assert!(m("job=~\"node.*\"").matches(&set));
        assert!(
            !m("job=~\"node\"").matches(&set),
            "anchored: no substring match"
        );
        assert!(!m("job=~\"exporter\"").matches(&set));
        assert!(m("team=\"\"").matches(&set), "a missing label is empty");
        assert!(m("team!~\".+\"").matches(&set));
        assert!(!m("team=~\".+\"").matches(&set));
        assert!(m("job!=\"x\"").matches(&set));
    }
}
