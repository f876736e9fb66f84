//! `ward silence add|ls|expire` and `ward check --silences-ending` through the real binary on a
//! real redis-server: the plan's preview, JSON output, the audit, read-only refusal, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use crate::common;

use std::path::Path;

use common::{RedisServer, output};
use serde_json::Value;
use ward::model::{AlertStatus, SeenAlert, SilenceState, fingerprint};

fn ward(redis: &RedisServer, home: &Path) -> assert_cmd::Command {
    let mut cmd = common::ward_command(home);
    cmd.args(["--redis", &redis.url()]);
    cmd
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn silences_are_added_listed_checked_and_expired_from_the_command_line() {
    let redis = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let store = common::default_redis_store(&redis).await;
    let now = store.now_ms();
    let labels: std::collections::BTreeMap<String, String> = [
        ("alertname".to_owned(), "Disk".to_owned()),
        ("instance".to_owned(), "db-1".to_owned()),
    ]
    .into();
    store
        .alerts_note(&[SeenAlert {
            fingerprint: fingerprint(&labels),
            labels,
            status: AlertStatus::Firing,
            starts_at_ms: now - 60_000,
            ends_at_ms: None,
            last_seen_ms: now,
        }])
        .await
        .unwrap();

    // Read-only refuses before anything is written.
    let (code, _, err) = output(ward(&redis, home.path()).args([
        "--read-only",
        "silence",
        "add",
        "alertname=Disk",
        "--comment",
        "disk swap",
        "--yes",
    ]));
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert!(store.silences().await.unwrap().is_empty());

    // A dry run shows the plan and its preview, and writes nothing.
    let (code, out, err) = output(ward(&redis, home.path()).args([
        "silence",
        "add",
        "alertname=Disk",
        "instance=~db-.*",
        "--comment",
        "disk swap, OPS-12",
        "--duration",
        "2h",
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("would have hidden 1 alerts seen in the last hour (1 firing now)"),
        "{out}"
    );
    assert!(store.silences().await.unwrap().is_empty());

    let (code, out, err) = output(ward(&redis, home.path()).args([
        "silence",
        "add",
        "alertname=Disk",
        "instance=~db-.*",
        "--comment",
        "disk swap, OPS-12",
        "--duration",
        "2h",
        "--yes",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "{err}");
    let created = json_of(&out);
    let id = created["report"]["silence_id"].as_str().unwrap().to_owned();
    assert_eq!(created["plan"]["preview"]["last_hour"]["matched"], 1);
    let stored = store.silence_get(&id).await.unwrap().unwrap();
    assert_eq!(stored.matchers.len(), 2);
    let length = stored.ends_at_ms - stored.starts_at_ms;
    assert!((7_195_000..=7_200_000).contains(&length), "{length}");
    let audit = store.audit_recent(1).await.unwrap();
    assert_eq!(audit[0].record.action, "silence_create");

    // Listed with what it matches now; text and JSON agree.
    let (code, out, _) =
        output(ward(&redis, home.path()).args(["silence", "ls", "--format", "json"]));
    assert_eq!(code, 0);
    let listing = json_of(&out);
    assert_eq!(listing["silences"][0]["silence"]["id"], id.as_str());
    assert_eq!(listing["silences"][0]["matched_now"], 1);
    assert_eq!(listing["silenced_now"], 1);
    let (_, text, _) = output(ward(&redis, home.path()).args(["silence", "ls"]));
    assert!(
        text.contains(&id) && text.contains("disk swap, OPS-12"),
        "{text}"
    );
    assert!(text.contains("1 firing alerts: 1 silenced"), "{text}");

    // `status` says what is held back.
    let (_, out, _) = output(ward(&redis, home.path()).args(["status"]));
    assert!(
        out.contains("alerting: 1 firing, 1 silenced, 0 inhibited; silences 1 active"),
        "{out}"
    );

    // `check` warns of a silence ending soon only when asked.
    let (code, out, _) = output(ward(&redis, home.path()).args(["check"]));
    assert_eq!(code, 0, "{out}");
    let (code, out, _) =
        output(ward(&redis, home.path()).args(["check", "--silences-ending", "3h"]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("silence {id}")) && out.contains("ends in"),
        "{out}"
    );

    // Expire: the silence ends now and stays listed as expired.
    let (code, out, err) =
        output(ward(&redis, home.path()).args(["silence", "expire", &id, "--yes"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("completed"), "{out}");
    let ended = store.silence_get(&id).await.unwrap().unwrap();
    assert_eq!(ended.state(store.now_ms() + 1), SilenceState::Expired);
    let (_, out, _) =
        output(ward(&redis, home.path()).args(["silence", "ls", "--state", "expired"]));
    assert!(out.contains(&id), "{out}");

    // Bad input is a usage error that changes nothing.
    let before = store.silences().await.unwrap();
    for args in [
        vec!["silence", "add", "team=~\".*\"", "--comment", "x", "--yes"],
        vec![
            "silence",
            "add",
            "alertname=Disk",
            "--comment",
            "x",
            "--duration",
            "soon",
            "--yes",
        ],
        vec![
            "silence",
            "add",
            "{alertname=\"Disk\"",
            "--comment",
            "x",
            "--yes",
        ],
        vec!["silence", "expire", "nope", "--yes"],
    ] {
        let (code, _, err) = output(ward(&redis, home.path()).args(&args));
        assert_ne!(code, 0, "{args:?}");
        assert!(!err.is_empty(), "{args:?} says why");
    }
    assert_eq!(store.silences().await.unwrap(), before);
}
