//! The SMTP backend against the small tokio SMTP server of `smtp_common`: delivery in plain
//! mode, transient and permanent replies, refused and silent servers, and the password never
//! showing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::delivery_common;
use crate::smtp_common;

use std::time::{Duration, Instant};

use delivery_common::{
    assert_hidden, assert_permanent, assert_retryable, group_job, job, refused_addr,
};
use smtp_common::{Script, SmtpStub};
use ward::delivery::config::SmtpConfig;
use ward::delivery::smtp::SmtpMode;
use ward::delivery::{Backend, BackendKind, Secret, SmtpBackend};

const PASSWORD: &str = "pw-secret-123";
/// base64("\0ward\0pw-secret-123"): what AUTH PLAIN carries.
const AUTH_PLAIN: &str = "AHdhcmQAcHctc2VjcmV0LTEyMw==";

fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        name: "mail-ops".to_owned(),
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        mode: SmtpMode::Plain,
        username: None,
        password: None,
        from: "Ward <ward@example.com>".to_owned(),
        to: vec![
            "oncall@example.com".to_owned(),
            "lead@example.com".to_owned(),
        ],
        subject: None,
        timeout_ms: Some(2000),
        connect_timeout_ms: Some(500),
    }
}

#[tokio::test]
async fn plain_mode_delivers_subject_and_body() {
    let stub = SmtpStub::start(Script::default()).await;
    let backend = SmtpBackend::from_config(&config(stub.port)).unwrap();
    assert_eq!(backend.kind(), BackendKind::Smtp);
    backend.send(&job("mail-ops"), "01JD8X-mail").await.unwrap();

    let received = stub.received();
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.mail_from, "<ward@example.com>");
    assert_eq!(mail.rcpt_to, ["<oncall@example.com>", "<lead@example.com>"]);
    assert!(mail.auth.is_none());
    let data = &mail.data;
    for expected in [
        "Subject: [critical] HighLatency\n",
        "From: Ward <ward@example.com>\n",
        "Message-ID: <01JD8X-mail@ward>\n",
        "Content-Type: text/plain; charset=utf-8\n",
        "FIRING: HighLatency\n",
        "Severity:  critical\n",
        "Tenant:    acme\n",
        "p99 latency above 2 s for 10 minutes\n",
        "  service = checkout\n",
        "  runbook = https://runbooks.example/latency\n",
        "Correlation ID: corr-42\n",
    ] {
        assert!(
            data.contains(expected),
            "{expected:?} missing from:\n{data}"
        );
    }

    // A second mail reuses the pooled connection or opens a new one; either way it arrives.
    let mut test = job("mail-ops");
    test.alert.test = true;
    backend.send(&test, "01JD8Y-mail").await.unwrap();
    let received = stub.received();
    assert_eq!(received.len(), 2);
    assert!(
        received[1]
            .data
            .contains("Subject: [TEST] [critical] HighLatency\n"),
        "{}",
        received[1].data
    );
}

#[tokio::test]
async fn a_group_is_one_mail_listing_every_alert() {
    let stub = SmtpStub::start(Script::default()).await;
    let mut config = config(stub.port);
    config.subject = Some("{SEVERITY} {title} ({tenant})".to_owned());
    let backend = SmtpBackend::from_config(&config).unwrap();
    backend
        .send(&group_job("mail-ops"), "01JD8G-mail")
        .await
        .unwrap();

    let received = stub.received();
    assert_eq!(received.len(), 1);
    let data = &received[0].data;
    for expected in [
        "Subject: CRITICAL [FIRING:2] payments:{alertname=\"HighLatency\"} (acme)\n",
        "Message-ID: <01JD8G-mail@ward>\n",
        "Reason:  new alerts added\n",
        "Group:   alertname=HighLatency\n",
        "FIRING (2):\n",
        "RESOLVED (1):\n",
        "Resolved after an earlier mail said it was firing.\n",
        "   Ended:       ",
    ] {
        assert!(
            data.contains(expected),
            "{expected:?} missing from:\n{data}"
        );
    }
    let at = |instance: &str| {
        data.find(&format!("     instance = {instance}:9090\n"))
            .unwrap_or_else(|| panic!("{instance} missing from:\n{data}"))
    };
    let resolved = data.find("RESOLVED (1):").unwrap();
    assert!(at("api-7") < at("api-8") && at("api-8") < resolved && resolved < at("api-9"));
}

#[tokio::test]
async fn credentials_are_used_and_never_shown() {
    let stub = SmtpStub::start(Script::default()).await;
    let mut config = config(stub.port);
    config.username = Some("ward".to_owned());
    config.password = Some(Secret::new(PASSWORD));
    let backend = SmtpBackend::from_config(&config).unwrap();
    backend.send(&job("mail-ops"), "k").await.unwrap();
    assert_eq!(stub.received()[0].auth.as_deref(), Some(AUTH_PLAIN));
    assert_hidden(PASSWORD, &[format!("{backend:?}"), format!("{config:?}")]);
}

#[tokio::test]
async fn transient_reply_is_retryable() {
    let stub = SmtpStub::start(Script {
        rcpt: Some(451),
        ..Script::default()
    })
    .await;
    let backend = SmtpBackend::from_config(&config(stub.port)).unwrap();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    assert_retryable(&err, "smtp_451");
    assert!(stub.received().is_empty());
}

#[tokio::test]
async fn permanent_reply_is_permanent() {
    let stub = SmtpStub::start(Script {
        rcpt: Some(550),
        ..Script::default()
    })
    .await;
    let backend = SmtpBackend::from_config(&config(stub.port)).unwrap();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    assert_permanent(&err, "smtp_550");

    let stub = SmtpStub::start(Script {
        end_of_data: Some(552),
        ..Script::default()
    })
    .await;
    let backend = SmtpBackend::from_config(&config(stub.port)).unwrap();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    assert_permanent(&err, "smtp_552");

    let stub = SmtpStub::start(Script {
        data: Some(554),
        ..Script::default()
    })
    .await;
    let backend = SmtpBackend::from_config(&config(stub.port)).unwrap();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    assert_permanent(&err, "smtp_554");
}

#[tokio::test]
async fn connection_refused_is_retryable_connect() {
    let mut config = config(refused_addr().port());
    config.password = Some(Secret::new(PASSWORD));
    config.username = Some("ward".to_owned());
    let backend = SmtpBackend::from_config(&config).unwrap();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    assert_retryable(&err, "connect");
    assert_hidden(PASSWORD, &[format!("{err}"), format!("{err:?}")]);
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let stub = SmtpStub::start(Script {
        silent: true,
        ..Script::default()
    })
    .await;
    let mut config = config(stub.port);
    config.timeout_ms = Some(300);
    let backend = SmtpBackend::from_config(&config).unwrap();
    let started = Instant::now();
    let err = backend.send(&job("mail-ops"), "k").await.unwrap_err();
    let elapsed = started.elapsed();
    assert_retryable(&err, "timeout");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "took {elapsed:?}"
    );
}
