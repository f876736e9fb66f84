//! Silences: what makes one valid, and an index that finds the active silences matching an
//! alert without trying each one (candidates are looked up by one equality matcher).

use std::collections::BTreeMap;

/// Looked up for every delivery: foldhash, not SipHash (the keys are the operator's labels).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::matcher::{Matcher, MatcherError, compile_all, matches_all};
use crate::model::{MatchOp, Silence, SilenceState};

/// The operator's rules for new silences.
#[derive(Debug, Clone)]
pub struct SilencePolicy {
    /// Longest a silence may last (default 7 days).
    pub max_duration_ms: i64,
    /// Shortest comment accepted (default 1: a silence says why).
    pub min_comment_chars: usize,
    /// A pattern the comment must contain, e.g. a ticket reference.
    pub comment_pattern: Option<regex::Regex>,
}

pub const DEFAULT_MAX_SILENCE_MS: i64 = 7 * 24 * 3_600_000;

impl Default for SilencePolicy {
    fn default() -> Self {
        Self {
            max_duration_ms: DEFAULT_MAX_SILENCE_MS,
            min_comment_chars: 1,
            comment_pattern: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error(
        "every matcher also matches alerts without the label (an empty value): the silence would hide every alert; add a matcher like alertname=\"…\""
    )]
    MatchesEverything,
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    #[error("the end must come after the start")]
    EndsBeforeStart,
    #[error("the end is in the past")]
    EndsInPast,
    #[error("{hours} h is longer than the longest silence allowed ({max_hours} h)")]
    TooLong { hours: i64, max_hours: i64 },
    #[error("say who creates the silence (created_by)")]
    NoOwner,
    #[error("the comment must say why, in at least {min} characters")]
    CommentTooShort { min: usize },
    #[error("the comment must match {pattern:?} (e.g. a ticket reference)")]
    CommentPattern { pattern: String },
}

/// Check a silence about to be created, and return it as it will be stored: a start in the
/// past becomes now.
pub fn validate_new(
    silence: &Silence,
    now_ms: i64,
    policy: &SilencePolicy,
) -> Result<Silence, SilenceError> {
    let mut out = silence.clone();
    if out.starts_at_ms < now_ms {
        out.starts_at_ms = now_ms;
    }
    if out.matchers.is_empty() {
        return Err(SilenceError::NoMatchers);
    }
    let compiled = compile_all(&out.matchers)?;
    if compiled.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::MatchesEverything);
    }
    if out.ends_at_ms < now_ms {
        return Err(SilenceError::EndsInPast);
    }
    if out.ends_at_ms <= out.starts_at_ms {
        return Err(SilenceError::EndsBeforeStart);
    }
    let length = out.ends_at_ms - out.starts_at_ms;
    if length > policy.max_duration_ms {
        return Err(SilenceError::TooLong {
            hours: (length + 3_599_999) / 3_600_000,
            max_hours: policy.max_duration_ms / 3_600_000,
        });
    }
    if out.created_by.trim().is_empty() {
        return Err(SilenceError::NoOwner);
    }
    validate_comment(&out.comment, policy)?;
    out.updated_at_ms = now_ms;
    Ok(out)
}

/// Check a silence's comment against the policy: long enough, and matching its pattern.
pub fn validate_comment(comment: &str, policy: &SilencePolicy) -> Result<(), SilenceError> {
    if comment.trim().chars().count() < policy.min_comment_chars.max(1) {
        return Err(SilenceError::CommentTooShort {
            min: policy.min_comment_chars.max(1),
        });
    }
    if let Some(pattern) = &policy.comment_pattern
        && !pattern.is_match(comment)
    {
        return Err(SilenceError::CommentPattern {
            pattern: pattern.as_str().to_owned(),
        });
    }
    Ok(())
}

struct Indexed {
    silence: Silence,
    matchers: Vec<Matcher>,
}

/// Silences that are not yet expired, ready to match. Candidates for a label set are found by
/// one `=` matcher per silence (its rarest), so matching cost follows the alert's labels, not
/// the number of silences; silences without a usable `=` matcher are tried one by one.
#[derive(Default)]
pub struct SilenceIndex {
    silences: Vec<Indexed>,
    /// Label name → value → silences indexed by that `name="value"` matcher.
    by_equal: HashMap<String, HashMap<String, Vec<usize>>>,
    scanned: Vec<usize>,
    /// Silences left out because a matcher did not compile (stored by an older or foreign writer).
    pub unreadable: usize,
    /// What the index was built from (see [`SilenceIndex::digest_of`]).
    pub digest: u64,
}

impl std::fmt::Debug for SilenceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SilenceIndex")
            .field("silences", &self.silences.len())
            .field("scanned", &self.scanned.len())
            .finish_non_exhaustive()
    }
}

impl SilenceIndex {
    /// A digest of what decides matching (ids, matchers, times): equal digests, equal indexes,
    /// so a worker re-reading unchanged silences keeps its index (regexes are costly to build).
    pub fn digest_of(silences: &[Silence]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for silence in silences {
            silence.id.hash(&mut hasher);
            silence.matchers.hash(&mut hasher);
            silence.starts_at_ms.hash(&mut hasher);
            silence.ends_at_ms.hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Index every silence not expired at `now_ms`.
    pub fn new(silences: Vec<Silence>, now_ms: i64) -> Self {
        let mut out = Self {
            digest: Self::digest_of(&silences),
            ..Self::default()
        };
        for silence in silences {
            if silence.state(now_ms) == SilenceState::Expired {
                continue;
            }
            match compile_all(&silence.matchers) {
                Ok(matchers) if !matchers.is_empty() => {
                    out.silences.push(Indexed { silence, matchers });
                }
                _ => out.unreadable += 1,
            }
        }
        let mut frequency: HashMap<(&str, &str), usize> = HashMap::default();
        for indexed in &out.silences {
            for key in equality_keys(&indexed.matchers) {
                *frequency.entry(key).or_default() += 1;
            }
        }
        let mut by_equal: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::default();
        let mut scanned = Vec::new();
        for (at, indexed) in out.silences.iter().enumerate() {
            let rarest = equality_keys(&indexed.matchers)
                .min_by_key(|key| frequency.get(key).copied().unwrap_or_default());
            match rarest {
                Some((name, value)) => by_equal
                    .entry(name.to_owned())
                    .or_default()
                    .entry(value.to_owned())
                    .or_default()
                    .push(at),
                None => scanned.push(at),
            }
        }
        out.by_equal = by_equal;
        out.scanned = scanned;
        out
    }

    pub fn len(&self) -> usize {
        self.silences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }

    /// The silences (any state but expired) whose matchers all match, in index order.
    pub fn matching<'a>(
        &'a self,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a Silence> + 'a {
        let candidates = labels
            .iter()
            .filter_map(|(name, value)| {
                self.by_equal
                    .get(name.as_str())
                    .and_then(|values| values.get(value.as_str()))
            })
            .flatten()
            .chain(self.scanned.iter());
        candidates
            .map(|&at| &self.silences[at])
            .filter(|indexed| matches_all(&indexed.matchers, labels))
            .map(|indexed| &indexed.silence)
    }

    /// Whether any silence could match: some `name="value"` it is indexed by is among the labels
    /// (or `extra`), or a silence must be tried one by one. Cheap, and borrows only.
    pub fn has_candidates<'a>(&self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        !self.scanned.is_empty()
            || labels.into_iter().any(|(name, value)| {
                self.by_equal
                    .get(name)
                    .is_some_and(|values| values.contains_key(value))
            })
    }

    /// Ids of the silences active at `now_ms` that hide this label set, sorted.
    pub fn silenced_by(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> Vec<String> {
        if self.silences.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<String> = self
            .matching(labels)
            .filter(|s| s.is_active(now_ms))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The `name="value"` matchers that can index a silence: an empty value also matches a missing
/// label, which no lookup by the alert's labels would find.
fn equality_keys(matchers: &[Matcher]) -> impl Iterator<Item = (&str, &str)> {
    matchers
        .iter()
        .map(Matcher::spec)
        .filter(|m| m.op == MatchOp::Equal && !m.value.is_empty())
        .map(|m| (m.name.as_str(), m.value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::matcher::parse_matchers;

    fn silence(id: &str, matchers: &str, starts: i64, ends: i64) -> Silence {
        Silence {
            id: id.to_owned(),
            matchers: parse_matchers(matchers).unwrap(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            created_by: "ann".to_owned(),
            comment: "disk swap, OPS-12".to_owned(),
            updated_at_ms: 0,
            kind: crate::model::SilenceKind::Silence,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn validation_refuses_what_alertmanager_and_ward_refuse() {
        let policy = SilencePolicy {
            comment_pattern: Some(regex::Regex::new("OPS-[0-9]+").unwrap()),
            ..SilencePolicy::default()
        };
        let now = 1_000_000;
        let ok = silence("a", "alertname=Disk", now - 5, now + 60_000);
        let stored = validate_new(&ok, now, &policy).unwrap();
        assert_eq!(stored.starts_at_ms, now, "a past start becomes now");
        let cases = [
            (silence("a", "", now, now + 1), SilenceError::NoMatchers),
            (
                silence("a", "team=~\".*\"", now, now + 1),
                SilenceError::MatchesEverything,
            ),
            (
                silence("a", "x=Disk", now - 10, now - 1),
                SilenceError::EndsInPast,
            ),
            (
                silence("a", "x=Disk", now + 10, now + 5),
                SilenceError::EndsBeforeStart,
            ),
            (
                silence("a", "x=Disk", now, now + 8 * 24 * 3_600_000),
                SilenceError::TooLong {
                    hours: 192,
                    max_hours: 168,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(validate_new(&input, now, &policy), Err(want));
        }
        let mut no_owner = ok.clone();
        no_owner.created_by = " ".to_owned();
        assert_eq!(
            validate_new(&no_owner, now, &policy),
            Err(SilenceError::NoOwner)
        );
        let mut no_ticket = ok.clone();
        no_ticket.comment = "swap".to_owned();
        assert!(matches!(
            validate_new(&no_ticket, now, &policy),
            Err(SilenceError::CommentPattern { .. })
        ));
        no_ticket.comment = String::new();
        assert_eq!(
            validate_new(&no_ticket, now, &policy),
            Err(SilenceError::CommentTooShort { min: 1 })
        );
    }

    #[test]
    fn the_index_finds_what_a_scan_finds() {
        let now = 100;
        let silences = vec![
            silence("eq", "alertname=Disk instance=db-1", 0, 1_000),
            silence("re", "instance=~\"db-.*\"", 0, 1_000),
            silence("ne", "alertname=Disk env!=prod", 0, 1_000),
            silence("empty", "alertname=Disk team=\"\"", 0, 1_000),
            silence("pending", "alertname=Disk", 500, 1_000),
            silence("expired", "alertname=Disk", 0, 50),
        ];
        let index = SilenceIndex::new(silences, now);
        assert_eq!(index.len(), 5, "expired silences are not indexed");
        let alert = labels(&[("alertname", "Disk"), ("instance", "db-1"), ("env", "dev")]);
        assert_eq!(
            index.silenced_by(&alert, now),
            vec!["empty", "eq", "ne", "re"]
        );
        let matching: Vec<&str> = index.matching(&alert).map(|s| s.id.as_str()).collect();
        assert!(
            matching.contains(&"pending"),
            "pending ones match but do not silence"
        );
        assert!(
            index.has_candidates(alert.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            "what matches has candidates"
        );
        let only_eq = SilenceIndex::new(
            vec![silence("eq", "alertname=Disk instance=db-1", 0, 1_000)],
            now,
        );
        assert!(!only_eq.has_candidates([("alertname", "Cpu"), ("instance", "db-1")]));
        assert!(only_eq.has_candidates([
            ("alertname", "Cpu"),
            ("instance", "db-1"),
            ("alertname", "Disk")
        ]));
        let prod = labels(&[
            ("alertname", "Disk"),
            ("instance", "web-1"),
            ("env", "prod"),
        ]);
        assert_eq!(index.silenced_by(&prod, now), vec!["empty"]);
        assert!(
            index
                .silenced_by(&prod, 600)
                .contains(&"pending".to_owned())
        );
    }
}
