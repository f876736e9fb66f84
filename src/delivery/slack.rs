//! Slack incoming webhook (DOMAIN.md §7.1): one POST of `text` + `blocks` per job.
//!
//! Success is any 2xx. Failures are classified by `delivery::http`: 429 is rate-limited with
//! `Retry-After` (header, else body `retry_after`), 5xx/timeouts/connection errors retry,
//! 400/403/404/410 (and every other 4xx) are permanent with Slack's error string
//! (`channel_not_found`, `invalid_payload`, …) in the message.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::fmt;

use super::config::SlackConfig;
use super::http::{self, HttpTimeouts, Reply};
use super::payload::time_text;
use super::{Backend, BackendKind, BuildError, Secret, SendError, redact_url};
use crate::model::{Alert, AlertStatus, DeliveryJob};

/// Slack's limits: header text 150 characters, section text 3000, a field 2000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FALLBACK_MAX: usize = 300;

/// Posts to one Slack incoming webhook.
pub struct SlackBackend {
    name: String,
    webhook_url: Secret,
    timeouts: HttpTimeouts,
    client: reqwest::Client,
}

impl SlackBackend {
    /// Validates the URL and builds the client; the URL never appears in an error.
    pub fn new(
        name: impl Into<String>,
        webhook_url: Secret,
        timeouts: HttpTimeouts,
    ) -> Result<Self, BuildError> {
        http::validate_url("webhook_url", &webhook_url)?;
        let client = http::build_client(timeouts)?;
        Ok(Self {
            name: name.into(),
            webhook_url: http::trimmed(webhook_url),
            timeouts,
            client,
        })
    }

    pub fn from_config(config: &SlackConfig) -> Result<Self, BuildError> {
        let timeouts = HttpTimeouts::from_ms(config.timeout_ms, config.connect_timeout_ms)?;
        Self::new(config.name.clone(), config.webhook_url.clone(), timeouts)
    }

    pub fn timeouts(&self) -> HttpTimeouts {
        self.timeouts
    }
}

impl fmt::Debug for SlackBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackBackend")
            .field("name", &self.name)
            .field("webhook_url", &redact_url(self.webhook_url.expose()))
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Backend for SlackBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Slack
    }

    async fn send(&self, job: &DeliveryJob, _idempotency_key: &str) -> Result<(), SendError> {
        let secrets = [&self.webhook_url];
        let body = message(&job.alert);
        let result = self
            .client
            .post(self.webhook_url.expose())
            .json(&body)
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(err) => return Err(logged(&self.name, http::classify_transport(err, &secrets))),
        };
        if response.status().is_success() {
            tracing::debug!(channel = %self.name, status = response.status().as_u16(), "slack accepted");
            return Ok(());
        }
        let reply = Reply::read(response).await;
        Err(logged(
            &self.name,
            http::classify_reply("slack", &reply, &secrets),
        ))
    }
}

fn logged(channel: &str, err: SendError) -> SendError {
    tracing::debug!(channel, class = %err.class, error = %err.message, "slack delivery failed");
    err
}

/// The Slack message for an alert: a one-line `text` fallback (notifications, old clients) and
/// `blocks` with title, severity, status, tenant, description, labels and the generator link.
pub fn message(alert: &Alert) -> Value {
    let test = if alert.test { "[TEST] " } else { "" };
    let status = match alert.status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    };
    let icon = match alert.status {
        AlertStatus::Firing => ":rotating_light:",
        AlertStatus::Resolved => ":white_check_mark:",
    };
    let text = http::one_line(
        &format!(
            "{test}[{}] {} {} ({})",
            alert.severity.as_str().to_uppercase(),
            status.to_uppercase(),
            alert.title(),
            alert.tenant,
        ),
        FALLBACK_MAX,
    );

    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": http::one_line(&format!("{icon} {test}{}", alert.title()), HEADER_MAX - 1),
                "emoji": true,
            },
        }),
        json!({
            "type": "section",
            "fields": [
                field("Severity", alert.severity.as_str()),
                field("Status", status),
                field("Tenant", &alert.tenant),
                field("Started", &time_text(alert.starts_at_ms)),
            ],
        }),
    ];
    if alert.test {
        blocks.push(json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": ":test_tube: *[TEST]* alert sent by an operator through the real path; no action needed.",
            }],
        }));
    }
    if !alert.description().is_empty() {
        blocks.push(section(&escape(alert.description())));
    }
    if !alert.labels.is_empty() {
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(k, v)| format!("`{}` = {}", code(k), escape(v)))
            .collect();
        blocks.push(section(&format!("*Labels*\n{}", labels.join("\n"))));
    }
    let mut context = vec![format!(
        "fingerprint `{}` · correlation `{}`",
        code(&alert.fingerprint),
        code(&alert.correlation_id)
    )];
    if let Some(url) = alert.generator_url.as_deref().filter(|u| is_http(u)) {
        context.insert(0, format!("<{}|Open in source>", link_target(url)));
    }
    blocks.push(json!({
        "type": "context",
        "elements": context
            .into_iter()
            .map(|text| json!({"type": "mrkdwn", "text": truncate(&text, FIELD_MAX)}))
            .collect::<Vec<_>>(),
    }));
    json!({ "text": text, "blocks": blocks })
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": truncate(&format!("*{label}*\n{}", escape(value)), FIELD_MAX)})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}})
}

/// Slack mrkdwn control characters (`&`, `<`, `>`) escaped, so alert text cannot ping
/// `<!channel>` or forge links.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text for inside backticks: escaped, and without backticks that would end the span.
fn code(text: &str) -> String {
    escape(&text.replace('`', "'"))
}

/// A URL inside `<url|label>`: the characters that would end it are percent-encoded.
fn link_target(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('<', "%3C")
        .replace('>', "%3E")
        .replace('|', "%7C")
}

fn is_http(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Severity;

    fn alert() -> Alert {
        Alert {
            labels: [("alertname".to_owned(), "HighLatency".to_owned())].into(),
            annotations: BTreeMap::new(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            tenant: "acme".to_owned(),
            fingerprint: "f".repeat(16),
            starts_at_ms: 0,
            ends_at_ms: None,
            generator_url: Some("https://prom.example/graph?a=1&b=<2>|x".to_owned()),
            correlation_id: "c-1".to_owned(),
            test: false,
        }
    }

    #[test]
    fn text_is_a_one_line_fallback() {
        let msg = message(&alert());
        assert_eq!(msg["text"], "[CRITICAL] FIRING HighLatency (acme)");
        let mut test = alert();
        test.test = true;
        test.status = AlertStatus::Resolved;
        let msg = message(&test);
        assert_eq!(msg["text"], "[TEST] [CRITICAL] RESOLVED HighLatency (acme)");
        assert!(
            msg["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("[TEST] HighLatency")
        );
    }

    #[test]
    fn user_text_cannot_break_out_of_mrkdwn() {
        let mut a = alert();
        a.annotations.insert(
            "description".to_owned(),
            "<!channel> & <http://evil|x>".to_owned(),
        );
        let msg = message(&a).to_string();
        assert!(!msg.contains("<!channel>"), "{msg}");
        assert!(msg.contains("&lt;!channel&gt; &amp;"), "{msg}");
        assert!(msg.contains("<https://prom.example/graph?a=1&amp;b=%3C2%3E%7Cx|Open in source>"));
    }

    #[test]
    fn long_text_is_cut_to_slack_limits() {
        let mut a = alert();
        a.labels.insert("alertname".to_owned(), "x".repeat(500));
        a.annotations
            .insert("description".to_owned(), "y".repeat(5000));
        let msg = message(&a);
        let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= HEADER_MAX);
        for block in msg["blocks"].as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= SECTION_MAX);
            }
        }
    }
}
