//! `ward replay` by filter over 1 000 000 DLQ entries on a real redis-server: interrupted with
//! ctrl-c (exact counts), killed with SIGKILL mid-run, restarted to the end — nothing lost,
//! nothing duplicated, no batch over the limit. Prints the replay time and the slowest Redis
//! command (SLOWLOG) for the issue note.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, queue};
use redis::Commands;
use serde_json::Value;
use ward::store::KeySchema;

const ENTRIES: u64 = 1_000_000;
const OTHERS: u64 = 10_000;
const BATCH: u64 = 50;

/// Entries written straight into the store's layout, 20 000 per script call.
const FILL: &str = r#"
local bodies, meta, dlq = KEYS[1], KEYS[2], KEYS[3]
local first, n, class, now = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
for i = first, first + n - 1 do
  local id = string.format('%026d', i)
  local key = now .. ':' .. id
  redis.call('HSET', bodies, id, '1:0:{"id":"' .. id .. '","idempotency_key":"' .. id ..
    '","tenant":"acme","payload":{"n":' .. i .. '},"created_at_ms":' .. now .. '}')
  redis.call('HSET', meta, id, '{"id":"' .. id .. '","queue":"delivery","tenant":"acme",' ..
    '"error_class":"' .. class .. '","error_message":"boom","stage":"deliver",' ..
    '"channel":"slack","attempts":1,"replays":0,"first_failure_ms":' .. now ..
    ',"last_failure_ms":' .. now .. ',"key":"' .. key .. '"}')
  redis.call('ZADD', dlq, 0, key)
end
return n
"#;

struct Layout {
    keys: KeySchema,
}

impl Layout {
    fn queue_key(&self) -> String {
        self.keys.queue(0, &queue("delivery"))
    }
    fn dlq_key(&self) -> String {
        self.keys.dlq(0, &queue("delivery"))
    }
}

fn fill(conn: &mut redis::Connection, layout: &Layout, first: u64, n: u64, class: &str) {
    let script = redis::Script::new(FILL);
    let now = "1795564800000";
    let mut at = first;
    while at < first + n {
        let step = (first + n - at).min(20_000);
        let _: u64 = script
            .key(layout.keys.bodies(0))
            .key(layout.keys.dlq_meta(0))
            .key(layout.dlq_key())
            .arg(at)
            .arg(step)
            .arg(class)
            .arg(now)
            .invoke(conn)
            .unwrap();
        at += step;
    }
}

fn replay(url: &str) -> Child {
    let config_home = std::env::temp_dir().join("ward-replay-million-no-config");
    Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["--store", "redis", "--redis", url, "--partitions", "1"])
        .args(["--key-prefix", "ward", "replay", "--error", "timeout"])
        .args(["--batch", &BATCH.to_string(), "--rate", "0", "--yes"])
        .args(["--format", "json"])
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("WARD_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Entries of class `timeout` still in the DLQ (the others sort after them).
fn timeouts_left(conn: &mut redis::Connection, layout: &Layout) -> u64 {
    let total: u64 = conn.zcard(layout.dlq_key()).unwrap();
    total - OTHERS
}

fn wait_until(conn: &mut redis::Connection, layout: &Layout, below: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while timeouts_left(conn, layout) >= below {
        assert!(Instant::now() < deadline, "the replay made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Exit code, the JSON report, and whether progress lines were written to stderr.
fn finish(child: Child) -> (Option<i32>, Value, bool) {
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let report = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    let progress = String::from_utf8_lossy(&output.stderr)
        .lines()
        .any(|l| l.starts_with("ward replay: ") && l.contains(" entries, "));
    (output.status.code(), report, progress)
}

fn check_batches(report: &Value) {
    let moved = report["report"]["moved"].as_u64().unwrap();
    let batches = report["report"]["batches"].as_u64().unwrap();
    assert!(
        batches * BATCH >= moved,
        "{moved} moved in {batches} batches of {BATCH}"
    );
}

#[test]
fn a_million_entries_replay_through_interrupt_and_kill_without_loss_or_duplicates() {
    let server = RedisServer::start();
    let mut conn = server.connection();
    let layout = Layout {
        keys: KeySchema::ward("ward", 1),
    };
    fill(&mut conn, &layout, 0, ENTRIES, "timeout");
    // Sorted after the timeouts (same failure time, larger ids): a scan passes them last.
    fill(&mut conn, &layout, ENTRIES, OTHERS, "http_500");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(1_000_000)
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut conn).unwrap();
    let mut replay_ms = 0;
    let mut replay_moved = 0;

    // 1. ctrl-c: the run stops between batches and its counts are exact.
    let child = replay(&server.url());
    wait_until(&mut conn, &layout, ENTRIES * 8 / 10);
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let (code, report, progress) = finish(child);
    assert_eq!(code, Some(130), "an interrupted replay exits 130");
    assert!(progress, "no progress was reported");
    assert_eq!(report["report"]["outcome"]["outcome"], "cancelled");
    check_batches(&report);
    let moved = report["report"]["moved"].as_u64().unwrap();
    let remaining = report["report"]["remaining"].as_u64().unwrap();
    replay_ms += report["report"]["duration_ms"].as_u64().unwrap();
    replay_moved += moved;
    let queued: u64 = conn.llen(layout.queue_key()).unwrap();
    assert_eq!(queued, moved, "the report counts exactly what moved");
    assert_eq!(timeouts_left(&mut conn, &layout), remaining);
    assert_eq!(moved + remaining, ENTRIES);

    // 2. SIGKILL mid-run: whatever it did is either done or not; nothing in between.
    let child = replay(&server.url());
    wait_until(&mut conn, &layout, remaining - remaining / 3);
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let queued: u64 = conn.llen(layout.queue_key()).unwrap();
    assert_eq!(
        queued + timeouts_left(&mut conn, &layout),
        ENTRIES,
        "an entry was lost or doubled by the kill"
    );

    // 3. Restarted, it finishes what is left.
    let child = replay(&server.url());
    let (code, report, progress) = finish(child);
    assert_eq!(code, Some(0), "{report}");
    assert!(progress, "no progress was reported");
    check_batches(&report);
    assert_eq!(report["report"]["remaining"], 0);
    replay_ms += report["report"]["duration_ms"].as_u64().unwrap();
    replay_moved += report["report"]["moved"].as_u64().unwrap();

    let slow = slow_commands(&mut conn);
    let ids: Vec<String> = conn.lrange(layout.queue_key(), 0, -1).unwrap();
    assert_eq!(
        ids.len() as u64,
        ENTRIES,
        "every entry is back in the queue"
    );
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an entry was queued twice");
    assert_eq!(timeouts_left(&mut conn, &layout), 0);
    let others: u64 = conn.zcard(layout.dlq_key()).unwrap();
    assert_eq!(others, OTHERS, "entries outside the filter were touched");

    println!(
        "replay by filter: {replay_moved} entries in {:.1} s in the runs that reported ({:.0}/s, \
         debug build)",
        replay_ms as f64 / 1000.0,
        replay_moved as f64 * 1000.0 / replay_ms.max(1) as f64,
    );
    print_slowlog(&slow);
}

/// Every SLOWLOG entry: (microseconds, arguments).
fn slow_commands(conn: &mut redis::Connection) -> Vec<(u64, Vec<String>)> {
    redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(1_000_000)
        .query::<Vec<redis::Value>>(conn)
        .unwrap()
        .into_iter()
        .filter_map(|entry| {
            let redis::Value::Array(fields) = entry else {
                return None;
            };
            let micros = redis::from_redis_value::<u64>(fields.get(2)?.clone()).ok()?;
            let args = redis::from_redis_value::<Vec<String>>(fields.get(3)?.clone()).ok()?;
            Some((micros, args))
        })
        .collect()
}

/// Commands over 1 ms by script operation, those over 5 ms, and the slowest.
fn print_slowlog(slow: &[(u64, Vec<String>)]) {
    let mut by_op: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (micros, args) in slow {
        // EVALSHA, sha, key count, five keys, then the operation.
        let op = args.get(8).map_or("?", String::as_str);
        let entry = by_op.entry(op).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(*micros);
    }
    let over_5ms = slow.iter().filter(|s| s.0 > 5000).count();
    let slowest = slow.iter().map(|s| s.0).max().unwrap_or(0);
    println!(
        "SLOWLOG: {} commands over 1 ms (by op: count, slowest µs: {by_op:?}); {over_5ms} over \
         5 ms; the slowest {slowest} µs",
        slow.len()
    );
}
