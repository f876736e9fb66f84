//! Test harness: a real `prometheus` server on a free loopback port, scraping the given targets,
//! killed when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, which};

/// How long one start attempt may take before the next port is tried.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A private Prometheus (config and TSDB in a temp dir), killed when dropped.
pub struct PrometheusServer {
    /// `http://127.0.0.1:<port>`, the base URL for the API client.
    pub url: String,
    pub port: u16,
    child: Child,
    /// Holds the config, the TSDB and the log; removed on drop, after the child is killed.
    dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every
    /// `scrape_interval`, and waits until `/-/ready` answers 200.
    pub fn start(targets: &[String], scrape_interval: Duration) -> Self {
        let binary = which("prometheus").unwrap_or_else(|| {
            panic!(
                "prometheus is not installed: the Prometheus API tests need the real server \
                 (apt-get install -y prometheus, or run `bash .ci/test`)"
            )
        });
        let dir = tempfile::tempdir().expect("temp dir for prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(targets, scrape_interval)).unwrap();
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let data = dir.path().join(format!("data-{attempt}"));
            let log = dir.path().join(format!("prometheus-{attempt}.log"));
            let mut child = spawn_prometheus(&binary, &config, &data, &log, port);
            if wait_ready(&mut child, port, READY_WITHIN) {
                return Self {
                    url: format!("http://127.0.0.1:{port}"),
                    port,
                    child,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("prometheus did not become ready on any of 5 free ports; last log:\n{last_log}");
    }

    /// The directory holding the config, TSDB and logs (for a failing test to inspect).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One job scraping every target; the scrape timeout must not exceed the interval.
fn config_yaml(targets: &[String], scrape_interval: Duration) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis().max(1));
    let targets = targets
        .iter()
        .map(|target| format!("\"{target}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "global:\n  \
           scrape_interval: {interval}\n  \
           scrape_timeout: {interval}\n  \
           evaluation_interval: {interval}\n\
         scrape_configs:\n  \
           - job_name: ward_test\n    \
             static_configs:\n      \
               - targets: [{targets}]\n"
    )
}

/// Prometheus on `port`, loopback only, logging warnings and errors to `log`.
fn spawn_prometheus(binary: &Path, config: &Path, data: &Path, log: &Path, port: u16) -> Child {
    let log = std::fs::File::create(log).expect("prometheus log file");
    Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn prometheus")
}

/// Polls `GET /-/ready` until it answers 200; `false` when the child exits (its port was
/// taken, most likely) or `within` passes.
fn wait_ready(child: &mut Child, port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if ready_status(port) == Some(200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The status of `GET /-/ready`, by hand over HTTP/1.0 (the test crate has no blocking client).
fn ready_status(port: u16) -> Option<u16> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut head = [0_u8; 64];
    let read = stream.read(&mut head).ok()?;
    let status_line = std::str::from_utf8(&head[..read]).ok()?;
    status_line.split_whitespace().nth(1)?.parse().ok()
}
