//! Shared by the benchmarks: a private `redis-server` (or `WARD_BENCH_REDIS_URL`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server the benchmark started, killed when dropped.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Redis to measure against: `WARD_BENCH_REDIS_URL`, else a private server on a free port.
pub fn start_redis() -> (Option<Server>, String) {
    if let Ok(url) = std::env::var("WARD_BENCH_REDIS_URL") {
        return (None, url);
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Server(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the Redis half of the benchmark"),
    );
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .is_ok()
        {
            return (Some(child), url);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child);
    panic!("redis-server did not start");
}

/// `WARD_BENCH_ITEMS`, else `default`.
pub fn items(default: usize) -> usize {
    std::env::var("WARD_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `redis-benchmark -t lpush` against the Redis at `url` (host and port only): the unpipelined
/// LPUSH rate of this machine, measured in the same run as Ward's figures. `None` when
/// redis-benchmark is not installed or the URL has no port.
pub fn lpush_rate(url: &str) -> Option<f64> {
    let authority = url.strip_prefix("redis://")?.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-t", "lpush", "-n", "200000", "-q"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The last progress line reads "LPUSH: 64516.13 requests per second, p50=…".
    let line = text
        .rsplit('\r')
        .next()?
        .lines()
        .find(|l| l.contains("requests per second"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds this process has used (user + system), from /proc; `None` off Linux.
pub fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ, which Linux fixes at 100 for /proc.
    Some(ticks / 100.0)
}

/// CPU seconds the Redis server at `url` has used, from `INFO cpu`.
pub fn redis_cpu_seconds(url: &str) -> Option<f64> {
    let mut conn = redis::Client::open(url).ok()?.get_connection().ok()?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut conn).ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}
