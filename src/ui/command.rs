//! The `:` command line and the `/` filter: typed text to a named command, a view, or an
//! `Action` with its run settings. Errors are one line for a toast.

use super::app::View;
use super::keymap::Command;
use crate::actions::{Action, Scope};
use crate::model::{DlqFilter, FailedSet, QueueName, ShedMode, Threshold, sanitize};

/// Overrides of the run settings for one action (`max=500 rate=50/s batch=100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSettings {
    pub max_items: Option<u64>,
    pub rate_per_s: Option<u32>,
    pub batch_size: Option<usize>,
}

impl RunSettings {
    pub fn apply(&self, settings: &mut crate::actions::Settings) {
        if let Some(max) = self.max_items {
            settings.max_items = Some(max);
        }
        if let Some(rate) = self.rate_per_s {
            settings.rate_per_s = (rate > 0).then_some(rate);
        }
        if let Some(batch) = self.batch_size {
            settings.batch_size = batch.clamp(1, crate::model::MAX_BATCH);
        }
    }
}

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Quit,
    Run(Command),
    View(View),
    /// Browse this queue's DLQ or dead list.
    Browse {
        queue: QueueName,
        set: FailedSet,
    },
    Action {
        action: Action,
        settings: RunSettings,
    },
    /// Open the silence editor, with these matchers or prefilled from the selection.
    Silence(Option<String>),
    /// Expire the selected silence.
    Expire,
}

/// What a command line is read against.
#[derive(Debug, Clone)]
pub struct Context {
    pub now_ms: i64,
    pub dlq_queue: QueueName,
    /// The DLQ browser's scope (marked rows or filter) when it is the current view.
    pub dlq_scope: Option<Scope>,
}

/// The commands `:` knows, for help and completion.
pub const VERBS: &[(&str, &str)] = &[
    (
        "replay",
        "[filter as / (error=… since=1h …)] [queue=… dead] [max=N rate=N/s batch=N]",
    ),
    (
        "purge",
        "[filter as replay] [dead]: delete for good (type the count to confirm)",
    ),
    (
        "bury",
        "[filter as replay]: move DLQ entries to the dead list",
    ),
    ("shed", "off|dlq|defer [for=1h] [reason=…]"),
    ("stop", "on|off [channel=…] [for=1h] [reason=…]"),
    ("test", "[channel]: send a test alert"),
    ("breaker", "open|reset|disable CHANNEL [for=15m] [reason=…]"),
    ("threshold", "QUEUE warn|shed N|none [reason=…]"),
    ("set", "KEY=VALUE [reason=…]: a dynamic config value"),
    ("unset", "KEY [reason=…]"),
    ("dlq", "[QUEUE] [dead]: browse a queue's DLQ or dead list"),
    (
        "silence",
        "[MATCHERS]: the silence editor (alertname=\"Disk\" instance=~\"db-.*\"), else from the selection",
    ),
    ("expire", "[ID]: expire the selected silence, or silence ID"),
    (
        "overview|queues|breakers|overrides|audit|silences|alerts",
        "switch view",
    ),
    ("refresh|freeze|help|q", ""),
];

const DEFAULT_REASON: &str = "set from the control room";

/// Parse a command line. One arm per verb.
pub fn parse(text: &str, context: &Context) -> Result<Parsed, String> {
    // Matchers keep their quotes: the rest of the line is the editor's text, as typed.
    let line = text.trim().trim_start_matches(':');
    if let Some(rest) = line.strip_prefix("silence")
        && (rest.is_empty() || rest.starts_with(char::is_whitespace))
    {
        let rest = rest.trim();
        return Ok(Parsed::Silence((!rest.is_empty()).then(|| rest.to_owned())));
    }
    let words = split(text)?;
    let Some((verb, rest)) = words.split_first() else {
        return Err("type a command, e.g. replay error=timeout max=500".to_owned());
    };
    let mut args = Args::new(rest)?;
    let parsed = match verb.as_str() {
        "q" | "quit" | "q!" => Parsed::Quit,
        "help" | "?" => Parsed::Run(Command::Help),
        "refresh" => Parsed::Run(Command::Refresh),
        "freeze" => Parsed::Run(Command::ToggleFreeze),
        "overview" => Parsed::View(View::Overview),
        "queues" => Parsed::View(View::Queues),
        "dlq" => parse_dlq(&mut args, context)?,
        "breakers" => Parsed::View(View::Breakers),
        "overrides" => Parsed::View(View::Overrides),
        "audit" => Parsed::View(View::Audit),
        "silences" => Parsed::View(View::Silences),
        "alerts" => Parsed::View(View::Alerts),
        "expire" => match args.optional_positional() {
            Some(id) => immediate(Action::SilenceExpire { id }),
            None => Parsed::Expire,
        },
        "replay" | "purge" | "bury" => parse_failed_action(verb, &mut args, context)?,
        "shed" => parse_shed(&mut args, context)?,
        "stop" => parse_stop(&mut args, context)?,
        "test" => immediate(Action::SendTestAlert {
            channel: args.optional_positional().filter(|c| c != "stdout"),
            tenant: args.take("tenant").unwrap_or_else(|| "default".to_owned()),
            summary: "Ward test alert from the control room".to_owned(),
        }),
        "breaker" => parse_breaker(&mut args, context)?,
        "threshold" => parse_threshold(&mut args)?,
        "set" => {
            let reason = reason(&mut args);
            let (key, value) = args
                .pairs
                .pop()
                .ok_or_else(|| "set: write KEY=VALUE".to_owned())?;
            immediate(Action::SetConfig {
                key,
                value: Some(value),
                reason,
            })
        }
        "unset" => immediate(Action::SetConfig {
            key: args.positional("a config key")?,
            value: None,
            reason: reason(&mut args),
        }),
        other => return Err(format!("{other:?} is not a command (press ? for the list)")),
    };
    args.finish(verb)?;
    Ok(parsed)
}

/// An action that runs in one step, with the default run settings.
fn immediate(action: Action) -> Parsed {
    Parsed::Action {
        action,
        settings: RunSettings::default(),
    }
}

/// `dlq [QUEUE] [dead]`: browse a queue's failed set, or switch to the DLQ view.
fn parse_dlq(args: &mut Args, context: &Context) -> Result<Parsed, String> {
    let dead = args.flag("dead");
    let set = failed_set(dead);
    Ok(match args.optional_positional() {
        Some(queue) => Parsed::Browse {
            queue: QueueName::new(&queue).map_err(|e| format!("dlq: {e}"))?,
            set,
        },
        None if dead => Parsed::Browse {
            queue: context.dlq_queue.clone(),
            set,
        },
        None => Parsed::View(View::Dlq),
    })
}

/// `replay|purge|bury [queue=…] [dead] [filter…]`: over the filter typed, else the browsed scope.
fn parse_failed_action(verb: &str, args: &mut Args, context: &Context) -> Result<Parsed, String> {
    let queue = match args.take("queue") {
        Some(q) => QueueName::new(&q).map_err(|e| e.to_string())?,
        None => context.dlq_queue.clone(),
    };
    let dead = args.flag("dead");
    let filter = filter_from(args, context.now_ms)?;
    let scope = match (filter, &context.dlq_scope) {
        (Some(filter), _) => Scope::Filter(filter),
        (None, Some(scope)) => scope.clone(),
        (None, None) => Scope::Filter(DlqFilter::default()),
    };
    let set = failed_set(dead);
    let action = match verb {
        "replay" => Action::Replay {
            queue,
            from: set,
            scope,
            reset_attempts: !args.flag("keep-attempts"),
        },
        "purge" => Action::Purge { queue, set, scope },
        _ => Action::MoveToDead { queue, scope },
    };
    Ok(Parsed::Action {
        action,
        settings: settings(args)?,
    })
}

/// The dead list when `dead` was typed, else the DLQ.
fn failed_set(dead: bool) -> FailedSet {
    if dead {
        FailedSet::Dead
    } else {
        FailedSet::Dlq
    }
}

fn parse_shed(args: &mut Args, context: &Context) -> Result<Parsed, String> {
    let mode = args.positional("off|dlq|defer")?;
    let mode =
        ShedMode::parse(&mode).ok_or_else(|| format!("shed: {mode:?} is not off, dlq or defer"))?;
    let expires = expiry(
        args,
        context.now_ms,
        (mode != ShedMode::Off).then_some(3_600_000),
    )?;
    Ok(immediate(Action::Shedding {
        mode,
        reason: reason(args),
        expires_at_ms: expires,
    }))
}

fn parse_stop(args: &mut Args, context: &Context) -> Result<Parsed, String> {
    let on = match args.positional("on|off")?.as_str() {
        "on" => true,
        "off" => false,
        other => return Err(format!("stop: {other:?} is not on or off")),
    };
    let expires = expiry(args, context.now_ms, on.then_some(3_600_000))?;
    Ok(immediate(Action::EmergencyStop {
        backend: args.take("channel"),
        on,
        reason: reason(args),
        expires_at_ms: expires,
    }))
}

fn parse_breaker(args: &mut Args, context: &Context) -> Result<Parsed, String> {
    let what = args.positional("open|reset|disable")?;
    let backend = args.positional("a channel")?;
    let reason = reason(args);
    Ok(immediate(match what.as_str() {
        "open" => Action::BreakerForceOpen {
            backend,
            until_ms: expiry(args, context.now_ms, Some(15 * 60_000))?.unwrap_or(context.now_ms),
            reason,
        },
        "reset" => Action::BreakerReset { backend, reason },
        "disable" => Action::BreakerDisable { backend, reason },
        other => return Err(format!("breaker: {other:?} is not open, reset or disable")),
    }))
}

fn parse_threshold(args: &mut Args) -> Result<Parsed, String> {
    let queue = QueueName::new(&args.positional("a queue")?).map_err(|e| e.to_string())?;
    let threshold = match args.positional("warn|shed")?.as_str() {
        "warn" => Threshold::Warn,
        "shed" => Threshold::Shed,
        other => return Err(format!("threshold: {other:?} is not warn or shed")),
    };
    let value = match args.positional("a depth or none")?.as_str() {
        "none" => None,
        n => Some(
            n.parse::<u64>()
                .map_err(|_| format!("threshold: {n:?} is not a depth"))?,
        ),
    };
    Ok(immediate(Action::SetThreshold {
        queue,
        threshold,
        value,
        reason: reason(args),
    }))
}

/// A `/` filter: `error=… stage=… tenant=… channel=… since=… until=…` and free words, all
/// applied by the store (the words are its text search). Returns the filter and the words in
/// lowercase (MUTT's entries, which the store cannot search, match them on the page).
pub fn parse_filter(text: &str, now_ms: i64) -> Result<(DlqFilter, Option<String>), String> {
    let mut args = Args::new(&split(text)?)?;
    let mut filter = filter_from(&mut args, now_ms)?.unwrap_or_default();
    if let Some((key, _)) = args.pairs.first() {
        return Err(format!(
            "filter: {key:?} is not error, stage, tenant, channel, since or until"
        ));
    }
    let words = (!args.words.is_empty()).then(|| args.words.join(" "));
    let needle = words.as_deref().map(str::to_lowercase);
    filter.text = words;
    Ok((filter, needle))
}

/// A filter as `/` reads it back (times in RFC 3339, values with spaces quoted).
pub fn filter_text(filter: &DlqFilter) -> String {
    let quote = |v: &str| {
        if v.contains(char::is_whitespace) {
            format!("\"{v}\"")
        } else {
            v.to_owned()
        }
    };
    let mut parts = Vec::new();
    for (name, value) in [
        ("error", &filter.error_class),
        ("stage", &filter.stage),
        ("tenant", &filter.tenant),
        ("channel", &filter.channel),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name}={}", quote(value)));
        }
    }
    for (name, at) in [
        ("since", filter.failed_at_or_after_ms),
        ("until", filter.failed_before_ms),
    ] {
        if let Some(at) = at {
            parts.push(format!(
                "{name}={}",
                crate::model::time::format_rfc3339_ms(at)
            ));
        }
    }
    if let Some(text) = filter.text.as_deref() {
        parts.push(text.to_owned());
    }
    parts.join(" ")
}

/// The filter fields of a command line; `None` when none is given.
fn filter_from(args: &mut Args, now_ms: i64) -> Result<Option<DlqFilter>, String> {
    let filter = DlqFilter {
        error_class: args.take("error"),
        stage: args.take("stage"),
        tenant: args.take("tenant"),
        channel: args.take("channel"),
        failed_at_or_after_ms: args
            .take("since")
            .map(|t| point_in_time("since", &t, now_ms))
            .transpose()?,
        failed_before_ms: args
            .take("until")
            .map(|t| point_in_time("until", &t, now_ms))
            .transpose()?,
        text: None,
    };
    Ok((filter != DlqFilter::default()).then_some(filter))
}

/// `since=`/`until=`: an age back from now (`90s`, `15m`, `2h`, `1d`) or an RFC 3339 time.
pub fn point_in_time(name: &str, text: &str, now_ms: i64) -> Result<i64, String> {
    duration_ms(text)
        .map(|ms| now_ms.saturating_sub(ms))
        .or_else(|| crate::model::time::parse_rfc3339_ms(text))
        .ok_or_else(|| {
            format!(
                "{name}={}: write an age (90s, 15m, 2h, 1d) or a time (2026-11-30T14:00:00Z)",
                sanitize(text)
            )
        })
}

fn settings(args: &mut Args) -> Result<RunSettings, String> {
    let number = |name: &str, text: Option<String>| -> Result<Option<u64>, String> {
        text.map(|t| {
            t.trim_end_matches("/s")
                .parse::<u64>()
                .map_err(|_| format!("{name}={t} is not a number"))
        })
        .transpose()
    };
    Ok(RunSettings {
        max_items: number("max", args.take("max"))?,
        rate_per_s: number("rate", args.take("rate"))?.map(|r| r.min(u64::from(u32::MAX)) as u32),
        batch_size: number("batch", args.take("batch"))?.map(|b| b as usize),
    })
}

fn reason(args: &mut Args) -> String {
    args.take("reason")
        .map_or_else(|| DEFAULT_REASON.to_owned(), |r| sanitize(&r).into_owned())
}

/// `for=15m` (or the default) as an expiry time.
fn expiry(args: &mut Args, now_ms: i64, default_ms: Option<i64>) -> Result<Option<i64>, String> {
    match args.take("for") {
        Some(text) => {
            let ms =
                duration_ms(&text).ok_or_else(|| format!("for={text}: write 90s, 15m or 2h"))?;
            Ok(Some(now_ms.saturating_add(ms)))
        }
        None => Ok(default_ms.map(|d| now_ms + d)),
    }
}

/// `90s`, `15m`, `2h`, `1d`.
pub fn duration_ms(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|ms| *ms > 0)
}

/// Words, with `"…"` quoting for values with spaces (`reason="disk full"`).
fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.trim().trim_start_matches(':').chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".to_owned());
    }
    if !current.is_empty() {
        words.push(current);
    }
    Ok(words)
}

/// The words after the verb: `key=value` pairs and plain words, each taken once.
struct Args {
    pairs: Vec<(String, String)>,
    words: Vec<String>,
}

impl Args {
    fn new(words: &[String]) -> Result<Self, String> {
        let mut args = Self {
            pairs: Vec::new(),
            words: Vec::new(),
        };
        for word in words {
            match word.split_once('=') {
                Some(("", _)) => return Err(format!("{word:?}: a name is missing before '='")),
                Some((k, v)) => args.pairs.push((k.to_owned(), v.to_owned())),
                None => args.words.push(word.clone()),
            }
        }
        Ok(args)
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(at).1)
    }

    fn flag(&mut self, word: &str) -> bool {
        let at = self.words.iter().position(|w| w == word);
        at.map(|at| self.words.remove(at)).is_some()
    }

    fn positional(&mut self, what: &str) -> Result<String, String> {
        self.optional_positional()
            .ok_or_else(|| format!("missing {what}"))
    }

    fn optional_positional(&mut self) -> Option<String> {
        (!self.words.is_empty()).then(|| self.words.remove(0))
    }

    /// Anything not taken is a mistake worth saying.
    fn finish(self, verb: &str) -> Result<(), String> {
        if let Some((key, _)) = self.pairs.first() {
            return Err(format!("{verb}: unknown option {key:?}"));
        }
        if let Some(word) = self.words.first() {
            return Err(format!("{verb}: unexpected {word:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        Context {
            now_ms: 1_000,
            dlq_queue: QueueName::new("delivery").unwrap(),
            dlq_scope: None,
        }
    }

    #[test]
    fn replay_with_filter_and_settings() {
        let parsed = parse(":replay error=timeout max=500 rate=50/s", &context()).unwrap();
        let Parsed::Action { action, settings } = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(
            settings,
            RunSettings {
                max_items: Some(500),
                rate_per_s: Some(50),
                batch_size: None
            }
        );
        let Action::Replay {
            scope: Scope::Filter(filter),
            from,
            ..
        } = action
        else {
            panic!("{action:?}")
        };
        assert_eq!(filter.error_class.as_deref(), Some("timeout"));
        assert_eq!(from, FailedSet::Dlq);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("replay colour=red", "colour"),
            ("shed sometimes", "sometimes"),
            ("explode", "explode"),
            ("stop on for=soon", "for=soon"),
            ("threshold delivery warn lots", "lots"),
            ("set reason=\"x", "quote"),
        ] {
            let error = parse(text, &context()).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn stop_and_shed_get_expiries_and_reasons() {
        let Parsed::Action { action, .. } =
            parse("stop on for=30m reason=\"disk full\"", &context()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            action,
            Action::EmergencyStop {
                backend: None,
                on: true,
                reason: "disk full".to_owned(),
                expires_at_ms: Some(1_000 + 30 * 60_000)
            }
        );
    }

    #[test]
    fn silence_keeps_its_matchers_as_typed_and_expire_takes_an_id() {
        let context = context();
        assert_eq!(
            parse(":silence alertname=Disk instance=~\"db-.*\"", &context),
            Ok(Parsed::Silence(Some(
                "alertname=Disk instance=~\"db-.*\"".to_owned()
            )))
        );
        assert_eq!(parse("silence", &context), Ok(Parsed::Silence(None)));
        assert_eq!(
            parse("silences", &context),
            Ok(Parsed::View(View::Silences))
        );
        assert_eq!(parse("alerts", &context), Ok(Parsed::View(View::Alerts)));
        assert_eq!(parse("expire", &context), Ok(Parsed::Expire));
        assert_eq!(
            parse("expire 01abc", &context),
            Ok(Parsed::Action {
                action: Action::SilenceExpire {
                    id: "01abc".to_owned()
                },
                settings: RunSettings::default(),
            })
        );
        assert!(parse("expire a b", &context).is_err());
    }

    #[test]
    fn filters_split_into_store_fields_and_words() {
        let (filter, needle) = parse_filter("error=timeout db-1 Disk", 0).unwrap();
        assert_eq!(filter.error_class.as_deref(), Some("timeout"));
        assert_eq!(filter.text.as_deref(), Some("db-1 Disk"));
        assert_eq!(needle.as_deref(), Some("db-1 disk"));
        assert!(parse_filter("colour=red", 0).is_err());
    }

    #[test]
    fn since_and_until_take_ages_or_times() {
        let now = 1_796_047_320_000;
        let (filter, _) = parse_filter("since=1h until=2026-11-30T14:00:00Z", now).unwrap();
        assert_eq!(filter.failed_at_or_after_ms, Some(now - 3_600_000));
        assert_eq!(filter.failed_before_ms, Some(1_796_047_200_000));
        let error = parse_filter("since=yesterday", now).unwrap_err();
        assert!(error.contains("since=yesterday"), "{error}");
    }
}
