//! The `[[channels]]` list and turning it into backends.
//!
//! ```toml
//! [[channels]]
//! name = "slack-ops"
//! kind = "slack"
//! webhook_url = "https://hooks.slack.com/services/T0/B0/XYZ"
//! # timeout_ms = 10000          # whole request (default 10 s)
//! # connect_timeout_ms = 3000   # connect (default 3 s)
//!
//! [[channels]]
//! name = "mail-ops"
//! kind = "smtp"
//! host = "smtp.example.com"
//! mode = "starttls"             # starttls (default, 587) | tls (465) | plain (25)
//! # port = 587
//! username = "ward"             # optional; then password is required
//! password = "…"
//! from = "Ward <ward@example.com>"
//! to = ["oncall@example.com"]
//! # subject = "[{severity}] {title}"
//! # timeout_ms = 30000          # whole send (default 30 s)
//! # connect_timeout_ms = 5000   # TCP connect (default 5 s)
//!
//! [[channels]]
//! name = "moog"
//! kind = "webhook"
//! url = "https://moog.example/events"
//! bearer_token = "…"            # optional: `Authorization: Bearer …`
//! format = "moog"               # ward (default) | moog
//! # timeout_ms / connect_timeout_ms as for slack
//!
//! [[channels]]
//! name = "debug"
//! kind = "stdout"               # or "null"
//! ```
//!
//! Unknown keys and unknown kinds are parse errors. Settings that parse but cannot work (an
//! empty or unparsable URL, no recipients, a zero timeout, a username without a password) are
//! not: [`build_backends`] puts a stdout backend of the same name in that channel's place and
//! returns a [`ConfigProblem`] for the caller to log once ([`ConfigProblem::log`]).

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::http::scrub;
use super::null::NullBackend;
use super::slack::SlackBackend;
use super::smtp::{SmtpBackend, SmtpMode};
use super::stdout::StdoutBackend;
use super::webhook::{WebhookBackend, WebhookFormat};
use super::{Backend, BackendKind, BuildError, Secret};

/// A TOML document (or table) holding `[[channels]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChannelsSection {
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
}

/// One `[[channels]]` entry; `kind` picks the variant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    Slack(SlackConfig),
    Smtp(SmtpConfig),
    Webhook(WebhookConfig),
    Stdout(StdoutConfig),
    Null(NullConfig),
}

impl ChannelConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Slack(c) => &c.name,
            Self::Smtp(c) => &c.name,
            Self::Webhook(c) => &c.name,
            Self::Stdout(c) => &c.name,
            Self::Null(c) => &c.name,
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Self::Slack(_) => BackendKind::Slack,
            Self::Smtp(_) => BackendKind::Smtp,
            Self::Webhook(_) => BackendKind::Webhook,
            Self::Stdout(_) => BackendKind::Stdout,
            Self::Null(_) => BackendKind::Null,
        }
    }

    /// The secrets this channel holds, for scrubbing messages about it.
    fn secrets(&self) -> Vec<&Secret> {
        match self {
            Self::Slack(c) => vec![&c.webhook_url],
            Self::Smtp(c) => c.password.iter().collect(),
            Self::Webhook(c) => std::iter::once(&c.url)
                .chain(c.bearer_token.as_ref())
                .collect(),
            Self::Stdout(_) | Self::Null(_) => Vec::new(),
        }
    }

    /// The backend these settings describe.
    pub fn build(&self) -> Result<Arc<dyn Backend>, BuildError> {
        if self.name().trim().is_empty() {
            return Err(BuildError::Empty { field: "name" });
        }
        Ok(match self {
            Self::Slack(c) => Arc::new(SlackBackend::from_config(c)?),
            Self::Smtp(c) => Arc::new(SmtpBackend::from_config(c)?),
            Self::Webhook(c) => Arc::new(WebhookBackend::from_config(c)?),
            Self::Stdout(c) => Arc::new(StdoutBackend::new(c.name.clone())),
            Self::Null(c) => Arc::new(NullBackend::new(c.name.clone())),
        })
    }
}

/// `kind = "slack"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub name: String,
    /// Missing counts as empty: a problem at build time, not a parse error.
    #[serde(default)]
    pub webhook_url: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
}

/// `kind = "smtp"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub name: String,
    #[serde(default)]
    pub host: String,
    /// Defaults by mode: 587, 465, 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub mode: SmtpMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    /// Default `[{severity}] {title}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
}

/// `kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    #[serde(default)]
    pub url: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
}

/// `kind = "stdout"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    pub name: String,
}

/// `kind = "null"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NullConfig {
    pub name: String,
}

/// A channel that could not be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel:?} ({kind}): {message}")]
pub struct ConfigProblem {
    pub channel: String,
    pub kind: BackendKind,
    /// Secret-free.
    pub message: String,
    /// Whether a stdout backend took the channel's place (false: the channel was dropped, as a
    /// second channel of the same name is).
    pub fell_back_to_stdout: bool,
}

impl ConfigProblem {
    /// One `tracing::error!` for this problem.
    pub fn log(&self) {
        let action = if self.fell_back_to_stdout {
            "falling back to stdout"
        } else {
            "channel ignored"
        };
        tracing::error!(
            channel = %self.channel,
            kind = %self.kind,
            problem = %self.message,
            "misconfigured delivery channel, {action}"
        );
    }
}

/// One backend per channel, in order. A channel whose settings cannot work is replaced by a
/// stdout backend of the same name (jobs stay visible, nothing is lost) and reported; a
/// second channel with an already-used name is reported and left out. Logs nothing: the caller
/// logs each problem once ([`ConfigProblem::log`]).
pub fn build_backends(channels: &[ChannelConfig]) -> (Vec<Arc<dyn Backend>>, Vec<ConfigProblem>) {
    let mut backends: Vec<Arc<dyn Backend>> = Vec::with_capacity(channels.len());
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for channel in channels {
        let name = channel.name();
        if !seen.insert(name) {
            problems.push(ConfigProblem {
                channel: name.to_owned(),
                kind: channel.kind(),
                message: "another channel already has this name".to_owned(),
                fell_back_to_stdout: false,
            });
            continue;
        }
        match channel.build() {
            Ok(backend) => backends.push(backend),
            Err(err) => {
                problems.push(ConfigProblem {
                    channel: name.to_owned(),
                    kind: channel.kind(),
                    message: scrub(&err.to_string(), &channel.secrets()),
                    fell_back_to_stdout: true,
                });
                backends.push(Arc::new(StdoutBackend::new(name)));
            }
        }
    }
    (backends, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<ChannelsSection, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn every_kind_parses() {
        let section = parse(
            r#"
            [[channels]]
            name = "slack-ops"
            kind = "slack"
            webhook_url = "https://hooks.slack.com/services/T0/B0/XYZ"

            [[channels]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            mode = "tls"
            username = "ward"
            password = "pw-secret"
            from = "Ward <ward@example.com>"
            to = ["a@example.com", "b@example.com"]
            subject = "{SEVERITY}: {title}"
            timeout_ms = 20000

            [[channels]]
            name = "moog"
            kind = "webhook"
            url = "https://moog.example/events"
            bearer_token = "tok-secret"
            format = "moog"
            connect_timeout_ms = 1000

            [[channels]]
            name = "debug"
            kind = "stdout"

            [[channels]]
            name = "bench"
            kind = "null"
            "#,
        )
        .unwrap();
        let kinds: Vec<BackendKind> = section.channels.iter().map(ChannelConfig::kind).collect();
        assert_eq!(
            kinds,
            [
                BackendKind::Slack,
                BackendKind::Smtp,
                BackendKind::Webhook,
                BackendKind::Stdout,
                BackendKind::Null
            ]
        );
        let ChannelConfig::Smtp(smtp) = &section.channels[1] else {
            panic!("not smtp")
        };
        assert_eq!(smtp.mode, SmtpMode::Tls);
        assert_eq!(smtp.to.len(), 2);
        assert_eq!(smtp.timeout_ms, Some(20000));
        let ChannelConfig::Webhook(hook) = &section.channels[2] else {
            panic!("not webhook")
        };
        assert_eq!(hook.format, WebhookFormat::Moog);

        let debug = format!("{section:?}");
        for secret in ["XYZ", "pw-secret", "tok-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let shown = toml::to_string(&section).unwrap();
        for secret in ["XYZ", "pw-secret", "tok-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn unknown_keys_and_kinds_are_parse_errors() {
        let err = parse(
            r#"
            [[channels]]
            name = "x"
            kind = "slack"
            webhook = "https://hooks.slack.com/services/T0/B0/XYZ"
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("webhook"), "{err}");
        let err = parse(
            r#"
            [[channels]]
            name = "x"
            kind = "pager"
            "#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("pager"), "{err}");
    }

    #[tokio::test]
    async fn good_channels_build_their_backends() {
        let section = parse(
            r#"
            [[channels]]
            name = "slack-ops"
            kind = "slack"
            webhook_url = "https://hooks.slack.com/services/T0/B0/XYZ"

            [[channels]]
            name = "mail"
            kind = "smtp"
            host = "smtp.example.com"
            from = "ward@example.com"
            to = ["a@example.com"]

            [[channels]]
            name = "hook"
            kind = "webhook"
            url = "http://127.0.0.1:9/x"

            [[channels]]
            name = "bench"
            kind = "null"
            "#,
        )
        .unwrap();
        let (backends, problems) = build_backends(&section.channels);
        assert!(problems.is_empty(), "{problems:?}");
        let got: Vec<(&str, BackendKind)> = backends.iter().map(|b| (b.name(), b.kind())).collect();
        assert_eq!(
            got,
            [
                ("slack-ops", BackendKind::Slack),
                ("mail", BackendKind::Smtp),
                ("hook", BackendKind::Webhook),
                ("bench", BackendKind::Null)
            ]
        );
    }

    #[test]
    fn misconfigured_channels_fall_back_to_stdout() {
        let section = parse(
            r#"
            [[channels]]
            name = "empty-url"
            kind = "slack"
            webhook_url = ""

            [[channels]]
            name = "missing-url"
            kind = "slack"

            [[channels]]
            name = "bad-url"
            kind = "webhook"
            url = "hooks.example.com/services/SECRET-PATH"
            bearer_token = "tok-secret"

            [[channels]]
            name = "no-recipients"
            kind = "smtp"
            host = "smtp.example.com"
            from = "ward@example.com"

            [[channels]]
            name = "half-auth"
            kind = "smtp"
            host = "smtp.example.com"
            from = "ward@example.com"
            to = ["a@example.com"]
            password = "pw-secret"

            [[channels]]
            name = "zero-timeout"
            kind = "slack"
            webhook_url = "https://hooks.slack.com/services/T0/B0/XYZ"
            timeout_ms = 0

            [[channels]]
            name = "bad-address"
            kind = "smtp"
            host = "smtp.example.com"
            mode = "plain"
            from = "not an address"
            to = ["a@example.com"]
            "#,
        )
        .unwrap();
        let (backends, problems) = build_backends(&section.channels);
        assert_eq!(backends.len(), section.channels.len());
        for (backend, channel) in backends.iter().zip(&section.channels) {
            assert_eq!(backend.name(), channel.name());
            assert_eq!(backend.kind(), BackendKind::Stdout, "{}", channel.name());
        }
        let messages: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.channel.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                ("empty-url", "`webhook_url` is empty"),
                ("missing-url", "`webhook_url` is empty"),
                (
                    "bad-url",
                    "`url` is not a valid URL: relative URL without a base"
                ),
                ("no-recipients", "`to` is empty"),
                ("half-auth", "`password` is set but `username` is not"),
                ("zero-timeout", "`timeout_ms` must be greater than zero"),
                (
                    "bad-address",
                    "`from` \"not an address\" is not a valid mail address: Invalid input"
                ),
            ]
        );
        assert!(problems.iter().all(|p| p.fell_back_to_stdout));
        let all = format!("{problems:?} {backends:?}");
        for secret in ["SECRET-PATH", "tok-secret", "pw-secret"] {
            assert!(!all.contains(secret), "{all}");
        }
        assert_eq!(
            problems[0].to_string(),
            "channel \"empty-url\" (slack): `webhook_url` is empty"
        );
    }

    #[test]
    fn duplicate_names_keep_the_first() {
        let section = parse(
            r#"
            [[channels]]
            name = "a"
            kind = "null"

            [[channels]]
            name = "a"
            kind = "stdout"
            "#,
        )
        .unwrap();
        let (backends, problems) = build_backends(&section.channels);
        assert_eq!(backends.len(), 1);
        assert_eq!(backends[0].kind(), BackendKind::Null);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].fell_back_to_stdout);
    }
}
