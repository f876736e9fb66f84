//! PTY acceptance test of the control room: `ward demo` runs in a 160x48 pseudo-terminal, is
//! driven by keys (wait for DLQ entries, replay them, read the audit, quit), and is asserted on
//! the screen a terminal would show (every byte goes through `vt100`), including the restore of
//! the terminal and the farewell line after it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup step should panic the test

use std::num::NonZeroU16;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use regex::Regex;
use rexpect::error::Error;
use rexpect::process::WaitStatus;
use rexpect::session::{Options, PtySession, spawn_with_options};
use ward::config::OVERRIDE_SPECS;

const ROWS: NonZeroU16 = NonZeroU16::new(48).unwrap();
const COLS: NonZeroU16 = NonZeroU16::new(160).unwrap();
const LEAVE_ALT_SCREEN: &[u8] = b"\x1b[?1049l";
const SHOW_CURSOR: &[u8] = b"\x1b[?25h";
/// crossterm's EndSynchronizedUpdate: the control room closes every frame with it.
const END_OF_FRAME: &[u8] = b"\x1b[?2026l";
const FAREWELL: &[u8] = b"control room closed";

/// The child in its pty, the terminal it paints (`vt100`) and every raw byte it wrote.
struct Pty {
    session: PtySession,
    parser: vt100::Parser,
    raw: Vec<u8>,
    eof: bool,
}

impl Pty {
    /// `ward demo` with a clean environment: no WARD_* variables and HOME pointing at an empty
    /// directory so the developer's own config never leaks in (as in tests/cli.rs).
    fn demo(home: &Path) -> Self {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("stty cols {COLS} rows {ROWS} && exec \"$0\" demo"))
            .arg(env!("CARGO_BIN_EXE_ward"));
        for spec in OVERRIDE_SPECS {
            cmd.env_remove(spec.env);
        }
        cmd.env_remove("WARD_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("COLUMNS")
            .env_remove("LINES")
            .env("HOME", home)
            .env("TERM", "xterm-256color");
        // The timeout bounds each read in `pump`, not a whole step: steps have their own deadlines.
        let session = spawn_with_options(cmd, Options::new().timeout_ms(Some(100))).expect("spawn");
        Self {
            session,
            parser: vt100::Parser::new(ROWS, COLS, 0),
            raw: Vec::new(),
            eof: false,
        }
    }

    /// Reads whatever the child wrote (waiting at most the read timeout) into the terminal.
    fn pump(&mut self) {
        match self.session.exp_regex("(?s).+") {
            Ok((_, chunk)) => {
                // rexpect maps each byte to one Latin-1 char.
                let bytes: Vec<u8> = chunk.chars().map(|c| u8::try_from(c).unwrap()).collect();
                self.parser.process(&bytes);
                self.raw.extend_from_slice(&bytes);
            }
            Err(Error::Timeout { .. }) => {}
            Err(Error::EOF { .. }) => self.eof = true,
            Err(e) => panic!("reading the pty: {e}\nscreen:\n{}", self.screen()),
        }
    }

    fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// Reads until `found` returns something for the screen, or fails with the screen shown.
    fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if let Some(value) = found(&screen) {
                return value;
            }
            assert!(
                !self.eof && Instant::now() < deadline,
                "gave up waiting {timeout:?} for {what} (child closed the pty: {}); screen:\n{screen}",
                self.eof
            );
            self.pump();
        }
    }

    fn press(&mut self, keys: &str) {
        self.session.send(keys).expect("send keys");
        self.session.flush().expect("flush keys");
    }
}

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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
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
            s.contains("┌ replay")
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
        (!s.contains("┌ replay")).then_some(())
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

    pty.press("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pty.eof {
        assert!(
            Instant::now() < deadline,
            "the control room did not exit within 10 s of `q`; screen:\n{}",
            pty.screen()
        );
        pty.pump();
    }
    let status = loop {
        match pty.session.process().status() {
            Some(WaitStatus::StillAlive) | None if Instant::now() < deadline => {
                // The pty is closed, so the exit is imminent: poll its status briefly.
                std::thread::sleep(Duration::from_millis(10));
            }
            other => break other,
        }
    };
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
