//! Slack incoming webhook (DOMAIN.md §7.1): one POST of `text` + `blocks` per job.
//!
//! A grouped route's job ([`GroupNotification`]) is one message for the whole group: the group
//! title and reason in `blocks`, then a red "Firing" and a green "Resolved" attachment listing
//! up to 20 of its alerts ("… and N more" for the rest).
//!
//! Success is any 2xx. Failures are classified by `delivery::http`: 429 is rate-limited with
//! `Retry-After` (header, else body `retry_after`), 5xx/timeouts/connection errors retry,
//! 400/403/404/410 (and every other 4xx) are permanent with Slack's error string
//! (`channel_not_found`, `invalid_payload`, …) in the message.

use async_trait::async_trait;
use serde_json::{Value, json};
use std::fmt::{self, Write as _};

use super::config::SlackConfig;
use super::http::{self, HttpTimeouts, Reply};
use super::payload::time_text;
use super::{Backend, BackendKind, BuildError, Secret, SendError, redact_url};
use crate::model::{Alert, AlertStatus, DeliveryJob, GroupNotification};

/// Slack's limits: header text 150 characters, section text 3000, a field 2000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FALLBACK_MAX: usize = 300;
/// Alerts listed in a group message: keeps it far below Slack's 50 blocks.
const GROUP_LISTED_MAX: usize = 20;
/// A listed alert's description, cut so twenty of them stay readable.
const GROUP_TEXT_MAX: usize = 500;
/// Slack's own danger and good colours.
const FIRING_COLOR: &str = "#E01E5A";
const RESOLVED_COLOR: &str = "#2EB67D";

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
        let body = match &job.group {
            Some(group) => group_message(group),
            None => message(&job.alert),
        };
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

/// One message for a whole group, capped at [`GROUP_LISTED_MAX`] listed alerts (module docs).
pub fn group_message(group: &GroupNotification) -> Value {
    let test = if group.alerts.iter().any(|a| a.test) {
        "[TEST] "
    } else {
        ""
    };
    let icon = match group.status {
        AlertStatus::Firing => ":rotating_light:",
        AlertStatus::Resolved => ":white_check_mark:",
    };
    let title = group.title();
    let text = escape(&http::one_line(
        &format!("{test}{title} ({})", group.reason),
        FALLBACK_MAX,
    ));
    let mut context = vec![
        format!("*{}*", inline(&group.reason, 200)),
        format!("route `{}`", code(&http::one_line(&group.route, 200))),
    ];
    context.extend(group.group_labels.iter().map(|(k, v)| label(k, v)));
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": http::one_line(&format!("{icon} {test}{title}"), HEADER_MAX - 1),
                "emoji": true,
            },
        }),
        context_block(&context.join(" · ")),
    ];
    if !test.is_empty() {
        blocks.push(context_block(
            ":test_tube: *[TEST]* alerts sent by an operator through the real path; no action needed.",
        ));
    }
    let firing: Vec<&Alert> = group.firing().collect();
    let resolved: Vec<&Alert> = group.resolved().collect();
    let firing_listed = firing.len().min(GROUP_LISTED_MAX);
    let resolved_listed = resolved.len().min(GROUP_LISTED_MAX - firing_listed);
    let mut attachments = Vec::new();
    if !firing.is_empty() {
        attachments.push(group_part(
            group,
            "Firing",
            &firing,
            firing_listed,
            FIRING_COLOR,
        ));
    }
    if !resolved.is_empty() {
        attachments.push(group_part(
            group,
            "Resolved",
            &resolved,
            resolved_listed,
            RESOLVED_COLOR,
        ));
    }
    json!({ "text": text, "blocks": blocks, "attachments": attachments })
}

/// One coloured attachment: heading with the count, `listed` alerts, the rest counted.
fn group_part(
    group: &GroupNotification,
    heading: &str,
    alerts: &[&Alert],
    listed: usize,
    color: &str,
) -> Value {
    let heading = format!("{heading} ({})", alerts.len());
    let mut blocks = vec![section(&format!("*{heading}*"))];
    blocks.extend(
        alerts
            .iter()
            .take(listed)
            .map(|alert| section(&group_alert_text(group, alert))),
    );
    if alerts.len() > listed {
        blocks.push(context_block(&format!(
            "… and {} more",
            alerts.len() - listed
        )));
    }
    json!({ "color": color, "fallback": heading, "blocks": blocks })
}

/// One listed alert; only the labels that tell it apart from the group's others.
fn group_alert_text(group: &GroupNotification, alert: &Alert) -> String {
    let mut text = format!("*{}*", inline(alert.title(), 200));
    if alert.test {
        text.push_str(" [TEST]");
    }
    match alert.status {
        AlertStatus::Firing => {
            let _ = write!(
                text,
                " · {} · since {}",
                alert.severity,
                time_text(alert.starts_at_ms)
            );
        }
        AlertStatus::Resolved => {
            if group.resolved_after_notified.contains(&alert.fingerprint) {
                text.push_str(" · resolved (was notified firing)");
            } else {
                text.push_str(" · resolved");
            }
            if let Some(ends) = alert.ends_at_ms {
                let _ = write!(text, " at {}", time_text(ends));
            }
        }
    }
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname" && !group.group_labels.contains_key(*k))
        .map(|(k, v)| label(k, v))
        .collect();
    if !labels.is_empty() {
        text.push('\n');
        text.push_str(&labels.join(" · "));
    }
    if !alert.description().is_empty() {
        text.push('\n');
        text.push_str(&inline(alert.description(), GROUP_TEXT_MAX));
    }
    if let Some(url) = alert.generator_url.as_deref().filter(|u| is_http(u)) {
        let _ = write!(text, " <{}|source>", link_target(url));
    }
    text
}

/// `key` = value on one line, escaped: a label cannot add lines or mrkdwn.
fn label(key: &str, value: &str) -> String {
    format!(
        "`{}` = {}",
        code(&http::one_line(key, 100)),
        inline(value, 200)
    )
}

/// User text on one line (control characters become spaces), cut and escaped.
fn inline(text: &str, max: usize) -> String {
    escape(&http::one_line(text, max))
}

fn context_block(text: &str) -> Value {
    json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(text, FIELD_MAX)}],
    })
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
    use crate::delivery::test_support::{disk_alert, group_job, group_of_three};
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

    fn part_texts(part: &Value) -> Vec<String> {
        part["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                b["text"]["text"]
                    .as_str()
                    .or_else(|| b["elements"][0]["text"].as_str())
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_group_is_one_message_listing_firing_then_resolved() {
        let job = group_of_three("slack");
        let msg = group_message(job.group.as_ref().unwrap());
        assert_eq!(
            msg["text"],
            "[FIRING:2] ops:{alertname=\"DiskFull\"} (new alerts added)"
        );
        let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(
            header,
            ":rotating_light: [FIRING:2] ops:{alertname=\"DiskFull\"}"
        );
        let context = msg["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert_eq!(
            context,
            "*new alerts added* · route `ops` · `alertname` = DiskFull"
        );
        let parts = msg["attachments"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0]["color"], FIRING_COLOR);
        assert_eq!(parts[1]["color"], RESOLVED_COLOR);
        let firing = part_texts(&parts[0]);
        assert_eq!(firing[0], "*Firing (2)*");
        assert!(
            firing[1].starts_with("*DiskFull* · major · since "),
            "{firing:?}"
        );
        assert!(firing[1].contains("\n`instance` = db-1 · `team` = storage\ndb-1 disk above 90%"));
        assert!(firing[1].ends_with(" <https://prom.example/graph?g0.expr=disk|source>"));
        assert!(firing[2].contains("`instance` = db-2"), "{firing:?}");
        let resolved = part_texts(&parts[1]);
        assert_eq!(resolved[0], "*Resolved (1)*");
        assert!(
            resolved[1].starts_with("*DiskFull* · resolved (was notified firing) at "),
            "{resolved:?}"
        );
        assert!(resolved[1].contains("`instance` = db-3"), "{resolved:?}");
    }

    #[test]
    fn a_resolved_group_is_green_and_tells_unnotified_resolutions_apart() {
        let mut job = group_job(
            "slack",
            vec![
                disk_alert("db-1", AlertStatus::Resolved),
                disk_alert("db-2", AlertStatus::Resolved),
            ],
        );
        let group = job.group.as_mut().unwrap();
        group.resolved_after_notified.truncate(1);
        let msg = group_message(group);
        assert!(msg["text"].as_str().unwrap().starts_with("[RESOLVED] ops:"));
        let parts = msg["attachments"].as_array().unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0]["color"], RESOLVED_COLOR);
        let texts = part_texts(&parts[0]);
        assert!(
            texts[1].contains("resolved (was notified firing)"),
            "{texts:?}"
        );
        assert!(texts[2].contains("· resolved at "), "{texts:?}");
        assert!(!texts[2].contains("was notified"), "{texts:?}");
    }

    #[test]
    fn a_big_group_lists_twenty_and_counts_the_rest() {
        let alerts = (0..25)
            .map(|i| disk_alert(&format!("db-{i}"), AlertStatus::Firing))
            .chain((0..5).map(|i| disk_alert(&format!("old-{i}"), AlertStatus::Resolved)))
            .collect();
        let msg = group_message(group_job("slack", alerts).group.as_ref().unwrap());
        let parts = msg["attachments"].as_array().unwrap();
        let firing = part_texts(&parts[0]);
        assert_eq!(firing[0], "*Firing (25)*");
        assert_eq!(firing.len(), 1 + GROUP_LISTED_MAX + 1);
        assert_eq!(firing.last().unwrap(), "… and 5 more");
        let resolved = part_texts(&parts[1]);
        assert_eq!(resolved, ["*Resolved (5)*", "… and 5 more"]);
        let blocks = msg["blocks"].as_array().unwrap().len()
            + parts
                .iter()
                .map(|p| p["blocks"].as_array().unwrap().len())
                .sum::<usize>();
        assert!(blocks <= 50, "{blocks} blocks");
    }

    #[test]
    fn group_labels_cannot_add_lines_or_mrkdwn() {
        let mut evil = disk_alert("db-1", AlertStatus::Firing);
        evil.labels.insert(
            "instance".to_owned(),
            "db-1\n\r\u{7}*bold* <!channel> & <http://evil|x>".to_owned(),
        );
        evil.labels
            .insert("alertname".to_owned(), "Disk\nFull <!here>".to_owned());
        let mut job = group_job("slack", vec![evil]);
        let group = job.group.as_mut().unwrap();
        group.reason = "new\nalerts <!channel>".to_owned();
        group.route = "ops`\n".to_owned();
        let msg = group_message(group);
        let all = msg.to_string();
        assert!(
            !all.contains("<!channel>") && !all.contains("<!here>"),
            "{all}"
        );
        assert!(!all.contains("<http://evil"), "{all}");
        assert!(!all.contains('\u{7}'), "{all}");
        let line = &part_texts(&msg["attachments"][0])[1];
        assert!(line.starts_with("*Disk Full &lt;!here&gt;*"), "{line}");
        let labels = line.lines().nth(1).unwrap();
        assert_eq!(
            labels,
            "`instance` = db-1 *bold* &lt;!channel&gt; &amp; &lt;http://evil|x&gt; · `team` = storage"
        );
        let context = msg["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(
            context.starts_with("*new alerts &lt;!channel&gt;* · route `ops'`"),
            "{context}"
        );
    }
}
