//! SMTP through lettre's pooled `AsyncSmtpTransport<Tokio1Executor>` (rustls with aws-lc-rs).
//!
//! Modes: `starttls` (default, port 587), `tls` (implicit TLS, port 465), `plain` (no TLS, port
//! 25: local relays and tests). One plain-text mail per job, to every recipient, subject from a
//! template (`[{severity}] {title}` by default), `Message-ID` derived from the idempotency key.
//!
//! Classification: a 4xx reply is retryable (`smtp_451`), a 5xx reply permanent (`smtp_550`);
//! no connection (refused, reset, DNS) is retryable `connect`, a TLS failure retryable `tls`,
//! and no complete exchange within `timeout_ms` retryable `timeout`. lettre bounds only the TCP
//! connect, so the whole send runs under a timeout of its own; after it fires the connection
//! pool is discarded, since a connection abandoned mid-exchange must not be reused.

use std::fmt::{self, Write as _};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, Error as SmtpError};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::config::SmtpConfig;
use super::http::{error_chain, one_line, scrub};
use super::payload::time_text;
use super::{Backend, BackendKind, BuildError, Secret, SendError};
use crate::model::{Alert, AlertStatus, DeliveryJob, GroupNotification, Severity};

/// The subject template when a channel sets none.
pub const DEFAULT_SUBJECT: &str = "[{severity}] {title}";
/// Whole-send timeout when a channel sets none: connect, greeting, TLS, auth, envelope, data.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP connect timeout when a channel sets none.
pub const DEFAULT_SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpMode {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: local relays and tests only (port 25).
    Plain,
}

impl SmtpMode {
    pub fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::Tls => 465,
            Self::Plain => 25,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starttls => "starttls",
            Self::Tls => "tls",
            Self::Plain => "plain",
        }
    }
}

/// Sends each job as one mail.
pub struct SmtpBackend {
    name: String,
    host: String,
    port: u16,
    mode: SmtpMode,
    username: Option<String>,
    password: Option<Secret>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    timeout: Duration,
    connect_timeout: Duration,
    builder: AsyncSmtpTransportBuilder,
    /// Built on first use (the pool spawns a task, so it needs the runtime), dropped after a
    /// timeout.
    transport: Mutex<Option<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl SmtpBackend {
    /// Validates host, addresses, credentials and timeouts. Needs no runtime: the connection
    /// pool starts on the first send.
    pub fn from_config(config: &SmtpConfig) -> Result<Self, BuildError> {
        let host = config.host.trim().to_owned();
        if host.is_empty() {
            return Err(BuildError::Empty { field: "host" });
        }
        let mode = config.mode;
        let port = match config.port {
            Some(0) => {
                return Err(BuildError::Invalid {
                    field: "port",
                    reason: "port 0".to_owned(),
                });
            }
            Some(port) => port,
            None => mode.default_port(),
        };
        let from = parse_mailbox("from", &config.from)?;
        if config.to.is_empty() {
            return Err(BuildError::Empty { field: "to" });
        }
        let mut to = Vec::with_capacity(config.to.len());
        for address in &config.to {
            to.push(parse_mailbox("to", address)?);
        }
        let timeout = positive_ms("timeout_ms", config.timeout_ms, DEFAULT_SMTP_TIMEOUT)?;
        let connect_timeout = positive_ms(
            "connect_timeout_ms",
            config.connect_timeout_ms,
            DEFAULT_SMTP_CONNECT_TIMEOUT,
        )?;
        let username = config.username.as_deref().map(str::trim).map(str::to_owned);
        let password = config.password.clone();
        let credentials = match (&username, &password) {
            (Some(user), Some(pass)) if !user.is_empty() => {
                Some(Credentials::new(user.clone(), pass.expose().to_owned()))
            }
            (Some(_), Some(_)) => return Err(BuildError::Empty { field: "username" }),
            (Some(_), None) => {
                return Err(BuildError::Incomplete {
                    field: "username",
                    missing: "password",
                });
            }
            (None, Some(_)) => {
                return Err(BuildError::Incomplete {
                    field: "password",
                    missing: "username",
                });
            }
            (None, None) => None,
        };

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(connect_timeout));
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned()).map_err(|err| BuildError::Tls {
                host: host.to_owned(),
                reason: error_chain(&err),
            })
        };
        builder = match mode {
            SmtpMode::Starttls => builder.tls(Tls::Required(tls(&host)?)),
            SmtpMode::Tls => builder.tls(Tls::Wrapper(tls(&host)?)),
            SmtpMode::Plain => builder.tls(Tls::None),
        };
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        Ok(Self {
            name: config.name.clone(),
            host,
            port,
            mode,
            username,
            password,
            from,
            to,
            subject: config
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            timeout,
            connect_timeout,
            builder,
            transport: Mutex::new(None),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        let mut slot = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert_with(|| self.builder.clone().build())
            .clone()
    }

    /// Forgets the pool: its connections may be mid-exchange.
    fn discard_transport(&self) {
        let old = self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(old);
    }

    fn secrets(&self) -> Vec<&Secret> {
        self.password.iter().collect()
    }

    /// The mail for one job.
    pub fn message(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<Message, SendError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(&self.subject, job))
            .message_id(Some(message_id(idempotency_key)));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(body(job))
            .map_err(|err| SendError::permanent("invalid_payload", err.to_string()))
    }
}

impl fmt::Debug for SmtpBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpBackend")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("mode", &self.mode)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .field("subject", &self.subject)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for SmtpBackend {
    fn drop(&mut self) {
        // lettre's pool spawns its clean-up on drop, which panics outside a runtime: leak the
        // idle connections instead (this only happens at process exit).
        if tokio::runtime::Handle::try_current().is_err() {
            let transport = self
                .transport
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            std::mem::forget(transport);
        }
    }
}

#[async_trait]
impl Backend for SmtpBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Smtp
    }

    async fn send(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<(), SendError> {
        let message = self.message(job, idempotency_key)?;
        let transport = self.transport();
        let result = tokio::time::timeout(self.timeout, transport.send(message)).await;
        drop(transport);
        let err = match result {
            Ok(Ok(_)) => {
                tracing::debug!(channel = %self.name, "smtp accepted");
                return Ok(());
            }
            Ok(Err(err)) => classify(&err, &self.secrets()),
            Err(_elapsed) => {
                self.discard_transport();
                SendError::retryable(
                    "timeout",
                    format!(
                        "no complete SMTP exchange with {}:{} within {} ms",
                        self.host,
                        self.port,
                        self.timeout.as_millis()
                    ),
                )
            }
        };
        tracing::debug!(channel = %self.name, class = %err.class, error = %err.message, "smtp delivery failed");
        Err(err)
    }
}

/// Classifies a lettre error (see the module docs).
pub fn classify(err: &SmtpError, secrets: &[&Secret]) -> SendError {
    let message = scrub(&one_line(&error_chain(err), 1000), secrets);
    if let Some(code) = err.status() {
        let class = format!("smtp_{}", u16::from(code));
        return if err.is_permanent() {
            SendError::permanent(class, message)
        } else {
            SendError::retryable(class, message)
        };
    }
    if err.is_timeout() {
        SendError::retryable("timeout", message)
    } else if err.is_tls() {
        SendError::retryable("tls", message)
    } else if err.is_client() {
        SendError::permanent("smtp_client", message)
    } else if err.is_response() {
        SendError::retryable("smtp_protocol", message)
    } else {
        SendError::retryable("connect", message)
    }
}

fn parse_mailbox(field: &'static str, value: &str) -> Result<Mailbox, BuildError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(BuildError::Empty { field });
    }
    value.parse().map_err(
        |err: lettre::address::AddressError| BuildError::InvalidAddress {
            field,
            value: value.to_owned(),
            reason: err.to_string(),
        },
    )
}

fn positive_ms(
    field: &'static str,
    ms: Option<u64>,
    default: Duration,
) -> Result<Duration, BuildError> {
    match ms {
        None => Ok(default),
        Some(0) => Err(BuildError::ZeroTimeout { field }),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

/// `<key@ward>` with anything outside `[A-Za-z0-9._-]` replaced, so receivers can dedup.
fn message_id(idempotency_key: &str) -> String {
    let key: String = idempotency_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("<{key}@ward>")
}

/// The subject: `[TEST] ` and `[RESOLVED] ` markers, then the template with `{severity}`,
/// `{SEVERITY}`, `{title}`, `{status}`, `{tenant}`, `{channel}` and `{fingerprint}` filled in
/// (unknown placeholders stay as written), on one line. For a group, `{title}` is the group's
/// (`[FIRING:2] ops:{alertname="Disk"}`, which carries the status, so no `[RESOLVED] `),
/// `{severity}` the highest of its firing alerts (of all when none fires), `{status}` the
/// group's and `{fingerprint}` the group key.
pub fn subject(template: &str, job: &DeliveryJob) -> String {
    let alert = &job.alert;
    let (status, severity, title, fingerprint, test) = match &job.group {
        Some(group) => (
            group.status,
            group_severity(group),
            group.title(),
            group.group_key.as_str(),
            group.alerts.iter().any(|a| a.test),
        ),
        None => (
            alert.status,
            alert.severity,
            alert.title().to_owned(),
            alert.fingerprint.as_str(),
            alert.test,
        ),
    };
    let mut out = String::new();
    if test {
        out.push_str("[TEST] ");
    }
    if status == AlertStatus::Resolved && job.group.is_none() {
        out.push_str("[RESOLVED] ");
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            rest = after;
            break;
        };
        let value = match &after[1..close] {
            "severity" => Some(severity.as_str().to_owned()),
            "SEVERITY" => Some(severity.as_str().to_uppercase()),
            "title" => Some(title.clone()),
            "status" => Some(status_text(status).to_owned()),
            "tenant" => Some(alert.tenant.clone()),
            "channel" => Some(job.channel.clone()),
            "fingerprint" => Some(fingerprint.to_owned()),
            _ => None,
        };
        if let Some(value) = value {
            out.push_str(&value);
            rest = &after[close + 1..];
        } else {
            out.push('{');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    one_line(&out, 250)
}

fn status_text(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// The highest severity among the firing alerts, else among all: what the group pages for.
fn group_severity(group: &GroupNotification) -> Severity {
    group
        .firing()
        .map(|a| a.severity)
        .max()
        .or_else(|| group.alerts.iter().map(|a| a.severity).max())
        .unwrap_or_default()
}

/// The plain-text body: what, how bad, where, since when, labels, annotations, links.
pub fn body(job: &DeliveryJob) -> String {
    if let Some(group) = &job.group {
        return group_body(job, group);
    }
    let alert = &job.alert;
    let mut out = String::new();
    if alert.test {
        out.push_str(
            "[TEST] This is a test alert sent by an operator through the real path. \
             No action is needed.\n\n",
        );
    }
    let status = match alert.status {
        AlertStatus::Firing => "FIRING",
        AlertStatus::Resolved => "RESOLVED",
    };
    let _ = writeln!(out, "{status}: {}", alert.title());
    let _ = writeln!(out);
    let _ = writeln!(out, "Severity:  {}", alert.severity);
    let _ = writeln!(out, "Tenant:    {}", alert.tenant);
    let _ = writeln!(out, "Started:   {}", time_text(alert.starts_at_ms));
    if let Some(ends) = alert.ends_at_ms {
        let _ = writeln!(out, "Ended:     {}", time_text(ends));
    }
    if !alert.description().is_empty() {
        let _ = writeln!(out, "\n{}", alert.description());
    }
    if !alert.labels.is_empty() {
        let _ = writeln!(out, "\nLabels:");
        for (key, value) in &alert.labels {
            let _ = writeln!(out, "  {key} = {value}");
        }
    }
    if !alert.annotations.is_empty() {
        let _ = writeln!(out, "\nAnnotations:");
        for (key, value) in &alert.annotations {
            let _ = writeln!(out, "  {key} = {value}");
        }
    }
    let _ = writeln!(out);
    if let Some(url) = &alert.generator_url {
        let _ = writeln!(out, "Source:         {url}");
    }
    let _ = writeln!(out, "Fingerprint:    {}", alert.fingerprint);
    let _ = writeln!(out, "Correlation ID: {}", alert.correlation_id);
    let _ = writeln!(out, "Channel:        {}", job.channel);
    out
}

/// Every firing then resolved alert; each value on one line so a label cannot forge mail lines.
pub fn group_body(job: &DeliveryJob, group: &GroupNotification) -> String {
    let mut out = String::new();
    if group.alerts.iter().any(|a| a.test) {
        out.push_str(
            "[TEST] These are test alerts sent by an operator through the real path. \
             No action is needed.\n\n",
        );
    }
    let _ = writeln!(out, "{}", one_line(&group.title(), 1000));
    let _ = writeln!(out);
    let _ = writeln!(out, "Reason:  {}", one_line(&group.reason, 200));
    let _ = writeln!(out, "Route:   {}", one_line(&group.route, 200));
    if !group.group_labels.is_empty() {
        let labels: Vec<String> = group
            .group_labels
            .iter()
            .map(|(k, v)| format!("{}={}", one_line(k, 200), one_line(v, 200)))
            .collect();
        let _ = writeln!(out, "Group:   {}", labels.join(", "));
    }
    for (heading, alerts) in [
        ("FIRING", group.firing().collect::<Vec<_>>()),
        ("RESOLVED", group.resolved().collect()),
    ] {
        if alerts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{heading} ({}):", alerts.len());
        for (n, alert) in alerts.into_iter().enumerate() {
            group_alert(&mut out, n + 1, group, alert);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Group key: {}", one_line(&group.group_key, 1000));
    let _ = writeln!(out, "Channel:   {}", job.channel);
    out
}

/// One alert of a group body, numbered, its details indented.
fn group_alert(out: &mut String, n: usize, group: &GroupNotification, alert: &Alert) {
    let test = if alert.test { " [TEST]" } else { "" };
    let _ = writeln!(
        out,
        "\n{n}. {} [{}]{test}",
        one_line(alert.title(), 200),
        alert.severity
    );
    if alert.status == AlertStatus::Resolved
        && group.resolved_after_notified.contains(&alert.fingerprint)
    {
        let _ = writeln!(out, "   Resolved after an earlier mail said it was firing.");
    }
    let _ = writeln!(out, "   Started:     {}", time_text(alert.starts_at_ms));
    if let Some(ends) = alert.ends_at_ms {
        let _ = writeln!(out, "   Ended:       {}", time_text(ends));
    }
    if !alert.description().is_empty() {
        let _ = writeln!(out, "   {}", one_line(alert.description(), 1000));
    }
    for (heading, map) in [
        ("Labels", &alert.labels),
        ("Annotations", &alert.annotations),
    ] {
        if map.is_empty() {
            continue;
        }
        let _ = writeln!(out, "   {heading}:");
        for (key, value) in map {
            let _ = writeln!(
                out,
                "     {} = {}",
                one_line(key, 200),
                one_line(value, 1000)
            );
        }
    }
    if let Some(url) = &alert.generator_url {
        let _ = writeln!(out, "   Source:      {}", one_line(url, 1000));
    }
    let _ = writeln!(out, "   Fingerprint: {}", alert.fingerprint);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::delivery::test_support::{disk_alert, group_job, group_of_three};

    fn job() -> DeliveryJob {
        DeliveryJob {
            alert: Alert {
                labels: [("alertname".to_owned(), "QueueBacklog {x}".to_owned())].into(),
                annotations: BTreeMap::new(),
                severity: Severity::Major,
                status: AlertStatus::Firing,
                tenant: "acme".to_owned(),
                fingerprint: "0123456789abcdef".to_owned(),
                starts_at_ms: 0,
                ends_at_ms: None,
                generator_url: None,
                correlation_id: "c".to_owned(),
                test: false,
            },
            channel: "mail".to_owned(),
            retry_policy: "default".to_owned(),
            previous_delay_ms: None,
            group: None,
        }
    }

    #[test]
    fn subject_template_fills_known_placeholders_once() {
        let job = job();
        assert_eq!(subject(DEFAULT_SUBJECT, &job), "[major] QueueBacklog {x}");
        assert_eq!(
            subject("{SEVERITY} {tenant}/{channel} {unknown} {title", &job),
            "MAJOR acme/mail {unknown} {title"
        );
        let mut test = job.clone();
        test.alert.test = true;
        test.alert.status = AlertStatus::Resolved;
        test.alert
            .labels
            .insert("alertname".to_owned(), "a\r\nBcc: x@example.com".to_owned());
        assert_eq!(
            subject(DEFAULT_SUBJECT, &test),
            "[TEST] [RESOLVED] [major] a Bcc: x@example.com"
        );
    }

    #[test]
    fn message_ids_are_safe() {
        assert_eq!(message_id("01J/ops hook"), "<01J_ops_hook@ward>");
    }

    #[test]
    fn body_lists_labels() {
        let text = body(&job());
        assert!(text.starts_with("FIRING: QueueBacklog {x}\n"), "{text}");
        assert!(text.contains("  alertname = QueueBacklog {x}\n"), "{text}");
        assert!(text.contains("Severity:  major\n"), "{text}");
    }

    #[test]
    fn a_group_subject_carries_the_group_title() {
        let mut job = group_of_three("mail");
        job.group.as_mut().unwrap().alerts[1].severity = Severity::Critical;
        job.group.as_mut().unwrap().alerts[2].severity = Severity::Critical;
        assert_eq!(
            subject(DEFAULT_SUBJECT, &job),
            "[critical] [FIRING:2] ops:{alertname=\"DiskFull\"}"
        );
        assert_eq!(
            subject("{status} {fingerprint} {tenant}", &job),
            "firing ops:{alertname=\"DiskFull\"} acme"
        );
        let resolved = group_job("mail", vec![disk_alert("db-3", AlertStatus::Resolved)]);
        assert_eq!(
            subject(DEFAULT_SUBJECT, &resolved),
            "[major] [RESOLVED] ops:{alertname=\"DiskFull\"}"
        );
    }

    #[test]
    fn a_group_body_lists_firing_then_resolved_with_labels_and_times() {
        let text = body(&group_of_three("mail"));
        assert!(
            text.starts_with(
                "[FIRING:2] ops:{alertname=\"DiskFull\"}\n\nReason:  new alerts added\n"
            ),
            "{text}"
        );
        assert!(text.contains("Group:   alertname=DiskFull\n"), "{text}");
        let firing = text.find("\nFIRING (2):\n").unwrap();
        let resolved = text.find("\nRESOLVED (1):\n").unwrap();
        let db = |name: &str| text.find(&format!("     instance = {name}\n")).unwrap();
        assert!(firing < db("db-1") && db("db-1") < db("db-2") && db("db-2") < resolved);
        assert!(resolved < db("db-3"), "{text}");
        let tail = &text[resolved..];
        assert!(
            tail.contains("Resolved after an earlier mail said it was firing.\n"),
            "{tail}"
        );
        assert!(
            tail.contains("   Ended:       Mon, 24 Nov 2025 16:10:00 GMT\n"),
            "{tail}"
        );
        assert!(text.contains("   Started:     Mon, 24 Nov 2025 16:00:00 GMT\n"));
        assert!(
            text.contains("     summary = db-2 disk above 90%\n"),
            "{text}"
        );
        assert!(text.ends_with("Channel:   mail\n"), "{text}");
    }

    #[test]
    fn group_labels_cannot_forge_mail_lines() {
        let mut evil = disk_alert("db-1", AlertStatus::Firing);
        evil.labels.insert(
            "instance".to_owned(),
            "db-1\r\n\r\nFIRING\u{7}(0):".to_owned(),
        );
        let text = body(&group_job("mail", vec![evil]));
        assert!(
            text.contains("     instance = db-1 FIRING (0):\n"),
            "{text}"
        );
        assert!(!text.contains('\r') && !text.contains('\u{7}'), "{text:?}");
    }
}
