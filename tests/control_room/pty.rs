//! PTY acceptance test of the control room: `ward demo` runs in a 160x48 pseudo-terminal, is
//! driven by keys (wait for DLQ entries, replay them, read the audit, quit), and is asserted on
//! the screen a terminal would show (every byte goes through `vt100`), including the restore of
//! the terminal and the farewell line after it; and `ward --read-only demo` refusing a key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should panic the test

use crate::common;

use std::time::Duration;

use common::RedisServer;
use common::pty::{END_OF_FRAME, FAREWELL, LEAVE_ALT_SCREEN, Pty, SHOW_CURSOR, find};
use regex::Regex;
use rexpect::process::WaitStatus;

/// The delivery row's count in the Queues table's "DLQ" column (read by column position).
fn delivery_dlq(screen: &str) -> Option<u64> {
    let header = screen.lines().find(|l| l.contains("warn/shed"))?;
    let column = header[..header.find(" DLQ ")?].chars().count() + 1;
    let row = screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with("delivery "))?;
    let cell: String = row
        .chars()
        .skip(column)
        .take_while(|c| !c.is_whitespace())
        .collect();
    cell.parse().ok()
}

/// The first capture of `pattern` on the screen, as a number.
fn capture(pattern: &Regex, screen: &str) -> Option<u64> {
    pattern.captures(screen)?[1].parse().ok()
}

#[test]
fn replay_from_the_dlq_is_audited_and_quit_restores_the_terminal() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::demo(home.path());

    // Each wait is the assertion: it fails with the screen shown if its deadline passes.
    pty.wait_for(
        "a DLQ count > 0 on the Overview's delivery row",
        Duration::from_secs(60),
        |s| delivery_dlq(s).filter(|&n| n > 0),
    );

    pty.press("3");
    let entries = Regex::new(r"DLQ of delivery · (\d+) entries").unwrap();
    pty.wait_for(
        "the DLQ view listing entries",
        Duration::from_secs(10),
        |s| capture(&entries, s).filter(|&n| n > 0),
    );

    pty.press("r");
    let plan = Regex::new(r"count (\d+) · batch \S+ · rate \S+ · ETA \S+").unwrap();
    pty.wait_for(
        "a replay dialog planning > 0",
        Duration::from_secs(10),
        |s| {
            s.contains("┌ Replay")
                .then(|| capture(&plan, s).filter(|&n| n > 0))
                .flatten()
        },
    );

    pty.press("\r");
    let done = Regex::new(r"completed · moved (\d+)").unwrap();
    let moved = pty.wait_for("the replay to complete", Duration::from_secs(20), |s| {
        capture(&done, s)
    });
    assert!(moved > 0, "the replay moved nothing:\n{}", pty.screen());

    pty.press("\r");
    pty.wait_for("the replay dialog to close", Duration::from_secs(10), |s| {
        (!s.contains("┌ Replay")).then_some(())
    });

    pty.press("6");
    let row = Regex::new(r"(?m)^│\d\d:\d\d:\d\d .*\sreplay\s.*\scompleted: (\d+)\s").unwrap();
    let audited = pty.wait_for(
        "the Audit view with a completed replay row",
        Duration::from_secs(10),
        |s| s.contains("┌ Audit").then(|| capture(&row, s)).flatten(),
    );
    assert_eq!(
        audited,
        moved,
        "audit and dialog disagree:\n{}",
        pty.screen()
    );

    let status = pty.quit();
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "exit status {status:?}; screen:\n{}",
        pty.screen()
    );

    let screen = pty.parser.screen();
    let tail = &pty.raw[find(&pty.raw, END_OF_FRAME).expect("no frame was drawn")..];
    let left = find(tail, LEAVE_ALT_SCREEN);
    let farewell = find(tail, FAREWELL);
    let shown = String::from_utf8_lossy(tail);
    assert!(left.is_some(), "no ?1049l after the last frame: {shown:?}");
    assert!(
        find(tail, SHOW_CURSOR).is_some(),
        "no ?25h after the last frame: {shown:?}"
    );
    assert!(
        farewell > left,
        "farewell missing or not after ?1049l: {shown:?}"
    );
    assert!(!screen.alternate_screen(), "still on the alternate screen");
    assert!(!screen.hide_cursor(), "the cursor is still hidden");
    assert!(
        screen.contents().contains("control room closed"),
        "no farewell on the main screen:\n{}",
        screen.contents()
    );
}

/// Redis down at start: the diagnostic screen (what was tried, the error, retrying) instead of
/// an exit; no action runs before a good read nor while STALE; the dashboard opens by itself
/// once Redis answers.
#[test]
fn an_unreachable_store_shows_the_diagnostic_and_refuses_actions_until_it_answers() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut redis = RedisServer::start();
    redis.kill();
    let url = redis.url();
    let mut pty = Pty::ward(home.path(), &["--redis", &url, "tui"]);
    pty.wait_for("the diagnostic screen", Duration::from_secs(20), |s| {
        (s.contains("Waiting for the store") && s.contains(&format!("127.0.0.1:{}", redis.port)))
            .then_some(())
    });
    let screen = pty.screen();
    assert!(screen.contains("error"), "{screen}");
    assert!(screen.contains("q quits"), "{screen}");

    // A shedding toggle before any good read changes nothing and says why.
    pty.press("s");
    pty.wait_for("the refusal", Duration::from_secs(10), |s| {
        s.contains("refused, nothing changed").then_some(())
    });
    assert!(!pty.screen().contains("┌ Shedding"), "{}", pty.screen());

    redis.restart();
    pty.wait_for(
        "the dashboard once Redis answers",
        Duration::from_secs(30),
        |s| (!s.contains("Waiting for the store") && s.contains("Queues")).then_some(()),
    );

    // Redis goes away again: STALE, and actions are refused with the reason.
    redis.kill();
    pty.wait_for("the STALE banner", Duration::from_secs(30), |s| {
        s.contains("STALE").then_some(())
    });
    pty.press("s");
    pty.wait_for("the refusal while STALE", Duration::from_secs(10), |s| {
        s.contains("refused, nothing changed: redis is STALE")
            .then_some(())
    });

    let status = pty.quit();
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "exit status {status:?}; screen:\n{}",
        pty.screen()
    );
}

#[test]
fn read_only_before_the_subcommand_makes_the_control_room_read_only() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::ward(home.path(), &["--read-only", "demo"]);
    pty.wait_for("the READ-ONLY badge", Duration::from_secs(30), |s| {
        s.contains("READ-ONLY").then_some(())
    });
    pty.press("r");
    pty.wait_for(
        "the refusal, with its reason",
        Duration::from_secs(10),
        |s| s.contains("read-only: --read-only").then_some(()),
    );
    let status = pty.quit();
    assert!(
        matches!(status, Some(WaitStatus::Exited(_, 0))),
        "exit status {status:?}; screen:\n{}",
        pty.screen()
    );
}
