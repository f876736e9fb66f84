//! Redis commands per control-room refresh do not grow with the DLQ: one `read_once` of the
//! poller (the control read alone, with the DLQ browser's first page, and with a filtered page)
//! is counted on a real redis-server holding 10, 1 000 and 20 000 DLQ entries.
//!
//! Counts come from the server: `total_commands_processed` (INFO stats) and the per-command
//! calls of INFO commandstats, read just before and just after the refresh (the first INFO
//! itself is subtracted), which include the commands scripts run. MONITOR, bracketed by two
//! ECHO markers, splits them into commands the client sent and commands run inside scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Harness, Kind};
use ward::model::QueueName;
use ward::sources::poller::{PollerConfig, read_once};
use ward::sources::{DlqQuery, Target};
use ward::store::{DlqCursor, DlqFilter, FailedSet, Store};

/// DLQ sizes the refresh is counted at, filled one after the other.
const SIZES: [usize; 3] = [10, 1_000, 20_000];
/// The DLQ browser's page size.
const PAGE: usize = 100;

/// What one refresh cost the server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cost {
    /// `total_commands_processed` delta, the bracketing INFO taken out.
    total: u64,
    /// Commands the client sent (MONITOR lines of a client connection).
    client: u64,
    /// Commands run inside scripts (MONITOR lines marked `lua`).
    in_scripts: u64,
    /// INFO commandstats delta by command, INFO taken out.
    by_command: BTreeMap<String, u64>,
    /// What `read_once` reported.
    round_trips: u32,
}

/// INFO stats and commandstats: the processed total and calls by command.
fn counters(conn: &mut redis::Connection) -> (u64, BTreeMap<String, u64>) {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .arg("commandstats")
        .query(conn)
        .unwrap();
    let mut total = None;
    let mut calls = BTreeMap::new();
    for line in info.lines() {
        if let Some(n) = line.strip_prefix("total_commands_processed:") {
            total = Some(n.trim().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("cmdstat_")
            && let Some((name, fields)) = rest.split_once(':')
        {
            let n = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))
                .unwrap()
                .parse()
                .unwrap();
            calls.insert(name.to_owned(), n);
        }
    }
    (
        total.expect("INFO stats has total_commands_processed"),
        calls,
    )
}

/// A MONITOR connection: every command the server runs, as it runs it.
struct Monitor {
    conn: redis::Connection,
    marker: u64,
}

impl Monitor {
    fn start(server: &common::RedisServer) -> Self {
        let mut conn = server.connection();
        // A bound on every read: a lost marker fails the test instead of hanging it.
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reply: String = redis::cmd("MONITOR").query(&mut conn).unwrap();
        assert_eq!(reply, "OK");
        Self { conn, marker: 0 }
    }

    fn next_marker(&mut self) -> String {
        self.marker += 1;
        format!("ward-round-trips-marker-{}", self.marker)
    }

    /// The lines after the `begin` marker up to the `end` marker (both sent with ECHO once
    /// MONITOR was on, so both arrive).
    fn between(&mut self, begin: &str, end: &str) -> Vec<String> {
        let quoted = |m: &str| format!("\"{m}\"");
        let (begin, end) = (quoted(begin), quoted(end));
        let mut lines = Vec::new();
        let mut started = false;
        loop {
            let line = match self.conn.recv_response().unwrap() {
                redis::Value::SimpleString(s) => s,
                redis::Value::Okay => continue,
                other => panic!("unexpected MONITOR reply {other:?}"),
            };
            if line.contains(&end) {
                assert!(started, "the end marker came before the begin marker");
                return lines;
            }
            if started {
                lines.push(line);
            } else if line.contains(&begin) {
                started = true;
            }
        }
    }
}

/// `1700000000.123456 [0 127.0.0.1:5000] "LLEN" "key"` → (`127.0.0.1:5000`, `llen`).
fn parse_monitor_line(line: &str) -> (String, String) {
    let open = line.find('[').unwrap();
    let close = line[open..].find(']').unwrap() + open;
    let source = line[open + 1..close]
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let command = line[close + 1..]
        .split('"')
        .nth(1)
        .unwrap_or_default()
        .to_lowercase();
    (source, command)
}

/// Count one `read_once` against `store`.
async fn cost(
    store: &dyn Store,
    config: &PollerConfig,
    query: Option<&DlqQuery>,
    info: &mut redis::Connection,
    monitor: &mut Monitor,
) -> Cost {
    let (begin, end) = (monitor.next_marker(), monitor.next_marker());
    let _: String = redis::cmd("ECHO").arg(&begin).query(info).unwrap();
    let (total_before, calls_before) = counters(info);
    let read = read_once(store, config, query).await;
    let (total_after, calls_after) = counters(info);
    let _: String = redis::cmd("ECHO").arg(&end).query(info).unwrap();

    let control = read.control.as_ref().expect("the control read succeeds");
    assert!(control.stats.queues.iter().any(|q| q.dlq > 0));
    if let Some(query) = query {
        let page = read.page.as_ref().expect("a page when the browser is open");
        assert_eq!(page.error, None, "the page read fails");
        if query.filter == DlqFilter::default() {
            let total: u64 = control.stats.queues.iter().map(|q| q.dlq).sum();
            assert_eq!(page.entries.len() as u64, total.min(PAGE as u64));
            assert_eq!(page.matching, Some(total));
        }
    }

    let mut by_command = BTreeMap::new();
    for (name, after) in calls_after {
        let delta = after - calls_before.get(&name).copied().unwrap_or(0);
        if delta > 0 && name != "info" {
            by_command.insert(name, delta);
        }
    }
    // The first INFO is counted once it has answered, so it falls inside the bracket.
    let total = total_after - total_before - 1;
    assert_eq!(total, by_command.values().sum::<u64>(), "{by_command:?}");
    let (mut client, mut in_scripts) = (0, 0);
    for line in monitor.between(&begin, &end) {
        let (source, command) = parse_monitor_line(&line);
        if command == "info" {
            continue;
        }
        if source == "lua" {
            in_scripts += 1;
        } else {
            client += 1;
        }
    }
    assert_eq!(client + in_scripts, total, "MONITOR and INFO disagree");
    Cost {
        total,
        client,
        in_scripts,
        by_command,
        round_trips: read.round_trips,
    }
}

fn poller_config() -> PollerConfig {
    PollerConfig {
        queues: vec![QueueName::ingest(), QueueName::delivery()],
        breaker: ward::engine::breaker::BreakerConfig::default(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
        stale_after: 2,
        audit_rows: 50,
        heartbeat_interval: Duration::from_secs(1),
        rules: ward::engine::suppress::Rules::default(),
        target: Target::default(),
    }
}

fn query(filter: DlqFilter) -> DlqQuery {
    DlqQuery {
        queue: QueueName::delivery().as_str().to_owned(),
        set: FailedSet::Dlq,
        filter,
        cursor: DlqCursor::start(),
        limit: PAGE,
        grouped: false,
    }
}

/// The refreshes counted: the control read alone, the browser's first page, and a page under
/// a field filter that matches nothing (the scan's worst case).
fn queries() -> Vec<(&'static str, Option<DlqQuery>)> {
    vec![
        ("control read", None),
        ("+ DLQ page", Some(query(DlqFilter::default()))),
        (
            "+ filtered page",
            Some(query(DlqFilter {
                error_class: Some("no-such-class".to_owned()),
                ..DlqFilter::default()
            })),
        ),
    ]
}

/// Costs by query, one per size in `SIZES`.
async fn costs_by_size(partitions: u16) -> Vec<(&'static str, Vec<Cost>)> {
    let h = Harness::new(Kind::Redis, partitions).await;
    let server = h.server.as_ref().unwrap();
    let mut info = server.connection();
    let mut monitor = Monitor::start(server);
    let config = poller_config();
    let queries = queries();
    let mut costs: Vec<(&'static str, Vec<Cost>)> = queries
        .iter()
        .map(|(name, _)| (*name, Vec::new()))
        .collect();
    let mut filled = 0;
    for size in SIZES {
        common::fill_dlq(&h, "delivery", size - filled, "acme", "http_500", "deliver").await;
        filled = size;
        for ((name, query), (_, out)) in queries.iter().zip(costs.iter_mut()) {
            // Once unmeasured (first use of a script on this connection), then counted.
            let _ = read_once(h.store.as_ref(), &config, query.as_ref()).await;
            let cost = cost(
                h.store.as_ref(),
                &config,
                query.as_ref(),
                &mut info,
                &mut monitor,
            )
            .await;
            println!(
                "partitions {partitions}, DLQ {size:>6}, {name:<15}: {:>2} commands ({:>2} sent, \
                 {:>2} in scripts), read_once round_trips {}; {:?}",
                cost.total, cost.client, cost.in_scripts, cost.round_trips, cost.by_command
            );
            out.push(cost);
        }
    }
    costs
}

/// What every refresh must keep, on any number of partitions: `read_once` reports no more round
/// trips for a larger DLQ (at most the control read, one page step per partition and the count); the client sends no more commands at 1 000 and 20 000
/// entries than at 10; and from 1 000 to 20 000 entries (twenty times the DLQ, each more than a
/// page) not one command more runs, scripts included.
fn assert_no_growth(partitions: u16, costs: &[(&'static str, Vec<Cost>)]) {
    for (name, by_size) in costs {
        let small = &by_size[0];
        for (cost, size) in by_size.iter().zip(SIZES).skip(1) {
            // A small DLQ may spread one page over every partition; a large one never needs more.
            assert!(
                cost.round_trips <= small.round_trips,
                "{partitions} partition(s), {name}: read_once's round trips at {size} entries: {}, \
                 at {}: {}",
                cost.round_trips,
                SIZES[0],
                small.round_trips
            );
            assert!(
                cost.round_trips <= 2 + u32::from(partitions),
                "{partitions} partition(s), {name}: {} round trips",
                cost.round_trips
            );
            assert!(
                cost.client <= small.client,
                "{partitions} partition(s), {name}: {} commands sent at {size} entries, {} at {}",
                cost.client,
                small.client,
                SIZES[0]
            );
        }
        let (mid, large) = (&by_size[1], &by_size[2]);
        assert_eq!(
            (large.client, large.total),
            (mid.client, mid.total),
            "{partitions} partition(s), {name}: commands at {} entries {:?}, at {} {:?}",
            SIZES[2],
            large.by_command,
            SIZES[1],
            mid.by_command
        );
    }
}

/// The default layout (`store.partitions` = 1): exactly the same commands at every size, but
/// for the page script at 10 entries, which reads one chunk fewer (a short page).
#[tokio::test]
async fn commands_per_refresh_do_not_grow_with_the_dlq() {
    let costs = costs_by_size(1).await;
    assert_no_growth(1, &costs);
    for (name, by_size) in &costs {
        let small = &by_size[0];
        for (cost, size) in by_size.iter().zip(SIZES).skip(1) {
            assert_eq!(
                cost.client, small.client,
                "{name}: commands sent at {size} entries"
            );
            assert!(
                cost.total <= small.total + 2,
                "{name}: {} commands at {size} entries, {} at {}",
                cost.total,
                small.total,
                SIZES[0]
            );
        }
    }
    // The control read alone is one pipeline whose length depends on the queues only; its
    // scripts (one scheduled-work summary per queue: a ZRANGE, and an HMGET of at most 100
    // bodies when anything is scheduled) are bounded the same way.
    let control = &costs[0].1;
    assert!(control.iter().all(|c| c == &control[0]), "{control:?}");
    assert_eq!(control[0].round_trips, 1);
    assert!(control[0].in_scripts <= 2 * 2, "{:?}", control[0]);
}

/// Three partitions: a page walks partitions until it is full, so a small DLQ spread over all
/// of them costs more commands than a large one; none grows with the DLQ.
#[tokio::test]
async fn commands_per_refresh_do_not_grow_with_the_dlq_on_partitions() {
    let costs = costs_by_size(3).await;
    assert_no_growth(3, &costs);
}

/// Grouping in the control room: each refresh lets the store count the whole filtered set — far
/// more than the page — in at most `GROUP_STEPS` bounded steps (round trips), carrying on where
/// the last refresh stopped; the counts say how much they cover until a pass is complete, and
/// then equal the entries' own, on memory and on Redis.
async fn grouping_counts_the_whole_set_across_refreshes(kind: Kind, partitions: u16) {
    use ward::sources::poller::{GROUP_STEPS, GroupScan, read_groups};
    use ward::store::{DlqGroup, GROUP_BUCKET_MS, GROUP_SCAN_BUDGET, merge_groups};
    let h = Harness::new(kind, partitions).await;
    common::fill_dlq(&h, "delivery", 2_400, "acme", "timeout", "deliver").await;
    h.clock.advance(Duration::from_secs(600));
    common::fill_dlq(&h, "delivery", 300, "globex", "http_500", "deliver").await;
    let config = poller_config();
    let entries =
        common::failed_entries(h.store.as_ref(), &QueueName::delivery(), FailedSet::Dlq).await;
    let expected = |keep: &dyn Fn(&ward::model::DlqMeta) -> bool| {
        let mut groups = Vec::new();
        merge_groups(
            &mut groups,
            entries
                .iter()
                .filter(|e| keep(&e.meta))
                .map(|e| DlqGroup {
                    error_class: e.meta.error_class.clone(),
                    bucket_ms: e.meta.last_failure_ms - e.meta.last_failure_ms % GROUP_BUCKET_MS,
                    count: 1,
                })
                .collect(),
        );
        groups
    };
    let all = expected(&|_| true);
    let globex = expected(&|m| m.tenant == "globex");
    for (filter, want) in [
        (DlqFilter::default(), all),
        (
            DlqFilter {
                tenant: Some("globex".to_owned()),
                ..DlqFilter::default()
            },
            globex,
        ),
    ] {
        let query = DlqQuery {
            grouped: true,
            ..query(filter.clone())
        };
        let mut scan = GroupScan::default();
        let mut refreshes = 0;
        let view = loop {
            refreshes += 1;
            let read = read_once(h.store.as_ref(), &config, Some(&query)).await;
            let page = read.page.unwrap();
            assert!(page.entries.len() <= PAGE, "the page stays a page");
            let trips = read_groups(h.store.as_ref(), config.timeout, &query, &mut scan).await;
            assert!(
                (1..=GROUP_STEPS).contains(&trips),
                "{kind:?}/{partitions}: {trips} grouping round trips in one refresh"
            );
            let view = scan.view().unwrap();
            if view.complete {
                break view;
            }
            assert!(
                view.examined <= u64::from(GROUP_STEPS) * GROUP_SCAN_BUDGET as u64 * refreshes,
                "{view:?}"
            );
            assert!(view.counted() <= view.examined);
            assert!(refreshes < 50, "a pass ends");
        };
        if filter == DlqFilter::default() {
            assert!(refreshes >= 2, "2 700 entries take more than one refresh");
        }
        assert_eq!(view.groups, want, "{kind:?}/{partitions} {filter:?}");
        assert_eq!(view.examined, 2_700);
        assert!(view.finished_ms.is_some());
        // The next refresh starts a new pass and keeps showing the finished one meanwhile.
        read_groups(h.store.as_ref(), config.timeout, &query, &mut scan).await;
        assert_eq!(scan.view().unwrap().groups, want);
    }
}

#[tokio::test]
async fn grouping_counts_the_whole_set_across_refreshes_on_memory() {
    grouping_counts_the_whole_set_across_refreshes(Kind::Memory, 1).await;
    grouping_counts_the_whole_set_across_refreshes(Kind::Memory, 3).await;
}

#[tokio::test]
async fn grouping_counts_the_whole_set_across_refreshes_on_redis() {
    grouping_counts_the_whole_set_across_refreshes(Kind::Redis, 1).await;
    grouping_counts_the_whole_set_across_refreshes(Kind::Redis, 3).await;
}
