//! The SMTP backend against a small SMTP server written here with tokio: delivery in plain
//! mode, transient and permanent replies, refused and silent servers, and the password never
//! showing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use delivery_common::{assert_hidden, assert_permanent, assert_retryable, job, refused_addr};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use ward::delivery::config::SmtpConfig;
use ward::delivery::smtp::SmtpMode;
use ward::delivery::{Backend, BackendKind, Secret, SmtpBackend};

const PASSWORD: &str = "pw-secret-123";
/// base64("\0ward\0pw-secret-123"): what AUTH PLAIN carries.
const AUTH_PLAIN: &str = "AHdhcmQAcHctc2VjcmV0LTEyMw==";

/// Where the stub answers something other than success.
#[derive(Debug, Clone, Copy, Default)]
struct Script {
    /// Reply to every RCPT TO.
    rcpt: Option<u16>,
    /// Reply to the DATA command instead of 354.
    data: Option<u16>,
    /// Reply after the final `.` instead of 250.
    end_of_data: Option<u16>,
    /// Accept connections but never say anything.
    silent: bool,
}

#[derive(Debug, Clone, Default)]
struct Received {
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

struct SmtpStub {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpStub {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, script, Arc::clone(&sink)));
            }
        });
        Self {
            port,
            received,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// One SMTP session: 220, EHLO/HELO, AUTH, MAIL, RCPT, DATA … `.`, RSET, NOOP, QUIT.
async fn session(stream: TcpStream, script: Script, sink: Arc<Mutex<Vec<Received>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if script.silent {
        while let Ok(Some(_)) = lines.next_line().await {}
        return;
    }
    let reply = |code: u16| format!("{code} stub says {code}\r\n");
    let mut current = Received::default();
    let mut out = "220 stub ESMTP\r\n".to_owned();
    loop {
        if write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        let Ok(Some(line)) = lines.next_line().await else {
            return;
        };
        let upper = line.to_ascii_uppercase();
        out = if upper.starts_with("EHLO") {
            "250-stub\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".to_owned()
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            reply(250)
        } else if upper.starts_with("AUTH PLAIN") {
            current.auth = Some(line["AUTH PLAIN".len()..].trim().to_owned());
            reply(235)
        } else if upper.starts_with("MAIL FROM:") {
            current.mail_from = line["MAIL FROM:".len()..].trim().to_owned();
            reply(250)
        } else if upper.starts_with("RCPT TO:") {
            if let Some(code) = script.rcpt {
                reply(code)
            } else {
                current
                    .rcpt_to
                    .push(line["RCPT TO:".len()..].trim().to_owned());
                reply(250)
            }
        } else if upper == "DATA" {
            if let Some(code) = script.data {
                reply(code)
            } else {
                if write.write_all(b"354 go ahead\r\n").await.is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    let Ok(Some(line)) = lines.next_line().await else {
                        return;
                    };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push('\n');
                }
                current.data = data;
                if let Some(code) = script.end_of_data {
                    reply(code)
                } else {
                    sink.lock().unwrap().push(std::mem::take(&mut current));
                    reply(250)
                }
            }
        } else if upper == "RSET" {
            let auth = current.auth.take();
            current = Received {
                auth,
                ..Received::default()
            };
            reply(250)
        } else if upper == "QUIT" {
            let _ = write.write_all(reply(221).as_bytes()).await;
            return;
        } else {
            reply(502)
        };
    }
}

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
