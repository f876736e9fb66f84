//! A pseudo-terminal driver for the control room: runs `ward` in a pty, feeds every byte through
//! `vt100` and waits on what the screen shows.

use std::num::NonZeroU16;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rexpect::error::Error;
use rexpect::process::WaitStatus;
use rexpect::session::{Options, PtySession, spawn_with_options};
use ward::config::OVERRIDE_SPECS;

pub const ROWS: NonZeroU16 = NonZeroU16::new(48).unwrap();
pub const COLS: NonZeroU16 = NonZeroU16::new(160).unwrap();
pub const LEAVE_ALT_SCREEN: &[u8] = b"\x1b[?1049l";
pub const SHOW_CURSOR: &[u8] = b"\x1b[?25h";
/// crossterm's EndSynchronizedUpdate: the control room closes every frame with it.
pub const END_OF_FRAME: &[u8] = b"\x1b[?2026l";
pub const FAREWELL: &[u8] = b"control room closed";

/// The child in its pty, the terminal it paints (`vt100`) and every raw byte it wrote.
pub struct Pty {
    pub session: PtySession,
    pub parser: vt100::Parser,
    pub raw: Vec<u8>,
    pub eof: bool,
}

impl Pty {
    /// `ward demo` with a clean environment: no WARD_* variables and HOME pointing at an empty
    /// directory so the developer's own config never leaks in (as in tests/headless/cli.rs).
    pub fn demo(home: &Path) -> Self {
        Self::ward(home, &["demo"])
    }

    /// `ward ARGS…` in the pty, with the same clean environment.
    pub fn ward(home: &Path, args: &[&str]) -> Self {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "stty cols {COLS} rows {ROWS} && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_ward"))
            .args(args);
        for spec in OVERRIDE_SPECS {
            cmd.env_remove(spec.env);
        }
        cmd.env_remove("WARD_CONFIG")
            .env_remove(ward::cli::READ_ONLY_ENV)
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
    pub fn pump(&mut self) {
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

    pub fn screen(&self) -> String {
        self.parser.screen().contents()
    }

    /// Reads until `found` returns something for the screen, or fails with the screen shown.
    pub fn wait_for<T>(
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

    pub fn press(&mut self, keys: &str) {
        self.session.send(keys).expect("send keys");
        self.session.flush().expect("flush keys");
    }

    /// `q`, then wait for the exit: its status and that the pty closed within 10 s.
    pub fn quit(&mut self) -> Option<WaitStatus> {
        self.press("q");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.eof {
            assert!(
                Instant::now() < deadline,
                "the control room did not exit within 10 s of `q`; screen:\n{}",
                self.screen()
            );
            self.pump();
        }
        loop {
            match self.session.process().status() {
                Some(WaitStatus::StillAlive) | None if Instant::now() < deadline => {
                    // The pty is closed, so the exit is imminent: poll its status briefly.
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}
