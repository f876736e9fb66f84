//! A small SMTP server written here with tokio, shared by the SMTP backend tests and the
//! pipeline end-to-end test: it records every accepted mail and can answer scripted failures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Where the stub answers something other than success.
#[derive(Debug, Clone, Copy, Default)]
pub struct Script {
    /// Reply to every RCPT TO.
    pub rcpt: Option<u16>,
    /// Reply to the DATA command instead of 354.
    pub data: Option<u16>,
    /// Reply after the final `.` instead of 250.
    pub end_of_data: Option<u16>,
    /// Accept connections but never say anything.
    pub silent: bool,
    /// Reply 451 after the final `.` to every n-th mail, counted across connections.
    pub refuse_every: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub auth: Option<String>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

impl Received {
    /// Forget the transaction but keep the login (RSET, or a refused mail).
    fn reset(&mut self) {
        *self = Self {
            auth: self.auth.take(),
            ..Self::default()
        };
    }
}

/// What the stub saw, shared by its sessions.
#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
    /// Mails whose data was complete, accepted or not.
    mails: AtomicUsize,
    refused: AtomicUsize,
}

pub struct SmtpStub {
    pub port: u16,
    log: Arc<Log>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpStub {
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Log::default());
        let shared = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, script, Arc::clone(&shared)));
            }
        });
        Self { port, log, task }
    }

    /// The mails accepted (250 after the data), in order.
    pub fn received(&self) -> Vec<Received> {
        self.log.received.lock().unwrap().clone()
    }

    /// How many mails `refuse_every` turned away.
    pub fn refused(&self) -> usize {
        self.log.refused.load(Ordering::SeqCst)
    }
}

/// One SMTP session: 220, EHLO/HELO, AUTH, MAIL, RCPT, DATA … `.`, RSET, NOOP, QUIT.
async fn session(stream: TcpStream, script: Script, log: Arc<Log>) {
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
                let n = log.mails.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(code) = script.end_of_data {
                    reply(code)
                } else if script
                    .refuse_every
                    .is_some_and(|every| n.is_multiple_of(every))
                {
                    log.refused.fetch_add(1, Ordering::SeqCst);
                    current.reset();
                    reply(451)
                } else {
                    log.received
                        .lock()
                        .unwrap()
                        .push(std::mem::take(&mut current));
                    reply(250)
                }
            }
        } else if upper == "RSET" {
            current.reset();
            reply(250)
        } else if upper == "QUIT" {
            let _ = write.write_all(reply(221).as_bytes()).await;
            return;
        } else {
            reply(502)
        };
    }
}
