//! The `ward` binary: help, version, config commands, exit codes, broken pipes.
#![allow(clippy::expect_used)] // a failed setup step should panic the test

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::CommandFactory;
use predicates::prelude::*;
use ward::cli::Cli;
use ward::config::{Config, OVERRIDE_SPECS, Overrides};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn ward(home: &Path) -> assert_cmd::Command {
    common::ward_command(home)
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// `text` as the config file `config.toml` in `dir`.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write the config");
    path
}

/// A store nobody serves: an action that got past the policy exits 3 (unreachable) here, so
/// exit 4 shows it was refused before any I/O.
const NO_STORE: [&str; 2] = ["--redis", "redis://127.0.0.1:1"];

#[test]
fn help_lists_subcommands_and_env_overrides() {
    let home = home();
    ward(home.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("config"))
        .stdout(predicate::str::contains("print-config-template"))
        .stdout(predicate::str::contains("WARD_PARTITIONS"))
        .stdout(predicate::str::contains("--redis"));
}

#[test]
fn version() {
    let home = home();
    ward(home.path())
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    let home = home();
    ward(home.path()).assert().code(2);
    ward(home.path()).arg("frobnicate").assert().code(2);
    ward(home.path())
        .args(["config", "show", "--partitions", "many"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--partitions"));
    ward(home.path())
        .args(["config", "show"])
        .env("WARD_STORE_BACKEND", "postgres")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("postgres"));
}

#[test]
fn bad_rust_log_is_a_usage_error() {
    let home = home();
    ward(home.path())
        .args(["config", "path"])
        .env("RUST_LOG", "ward=loud[")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("RUST_LOG"));
}

#[test]
fn config_path_with_ward_config() {
    let home = home();
    let path = fixture("valid_redis.toml");
    ward(home.path())
        .args(["config", "path"])
        .env("WARD_CONFIG", &path)
        .assert()
        .success()
        .stdout(predicate::str::contains(path.display().to_string()))
        .stdout(predicate::str::contains("exists:    yes"))
        .stdout(predicate::str::contains("chosen by: WARD_CONFIG"));
}

#[test]
fn config_path_flag_beats_env() {
    let home = home();
    let flag = fixture("valid_full.toml");
    ward(home.path())
        .args(["config", "path", "--config"])
        .arg(&flag)
        .env("WARD_CONFIG", fixture("valid_redis.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains(flag.display().to_string()))
        .stdout(predicate::str::contains("chosen by: --config"));
}

#[test]
fn config_path_xdg_defaults() {
    let home = home();
    let expected = home.path().join(".config/ward/config.toml");
    ward(home.path())
        .args(["config", "path"])
        .assert()
        .success()
        .stdout(predicate::str::contains(expected.display().to_string()))
        .stdout(predicate::str::contains("exists:    no"))
        .stdout(predicate::str::contains("$HOME/.config"));

    let xdg = home.path().join("xdg");
    ward(home.path())
        .args(["config", "path"])
        .env("XDG_CONFIG_HOME", &xdg)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            xdg.join("ward/config.toml").display().to_string(),
        ))
        .stdout(predicate::str::contains("$XDG_CONFIG_HOME"));
}

#[test]
fn xdg_default_file_is_loaded() {
    let home = home();
    let dir = home.path().join(".config/ward");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "[store]\npartitions = 9\n").expect("write");
    ward(home.path())
        .args(["config", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("partitions = 9"));
}

#[test]
fn print_config_template_parses_to_defaults() {
    let home = home();
    let out = ward(home.path())
        .arg("print-config-template")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(text, ward::config::template::render());
    let c = Config::from_toml_str(&text, Path::new("template.toml"), &Overrides::default())
        .expect("template parses");
    assert_eq!(c, Config::default());
}

#[test]
fn bad_config_file_exits_2_naming_file_line_and_key() {
    let home = home();
    let path = fixture("invalid_unknown_key.toml");
    ward(home.path())
        .args(["config", "show", "--config"])
        .arg(&path)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::starts_with("error: config error in "))
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains("line 7"))
        .stderr(predicate::str::contains("partitons"));

    let path = fixture("invalid_partitions_zero.toml");
    ward(home.path())
        .args(["config", "show"])
        .env("WARD_CONFIG", &path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(path.display().to_string()))
        .stderr(predicate::str::contains("line 4"))
        .stderr(predicate::str::contains("store.partitions"));
}

#[test]
fn missing_explicit_file_exits_2_but_config_path_still_works() {
    let home = home();
    let missing = home.path().join("nope.toml");
    ward(home.path())
        .args(["config", "show"])
        .env("WARD_CONFIG", &missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(missing.display().to_string()))
        .stderr(predicate::str::contains("does not exist"));
    ward(home.path())
        .args(["config", "path"])
        .env("WARD_CONFIG", &missing)
        .assert()
        .success()
        .stdout(predicate::str::contains("exists:    no"));
}

#[test]
fn layering_through_the_binary() {
    let home = home();
    let file = fixture("layering.toml");
    // file: 2
    ward(home.path())
        .args(["config", "show", "--config"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("partitions = 2"));
    // env over file: 3
    ward(home.path())
        .args(["config", "show", "--config"])
        .arg(&file)
        .env("WARD_PARTITIONS", "3")
        .assert()
        .success()
        .stdout(predicate::str::contains("partitions = 3"))
        .stdout(predicate::str::contains("key_prefix = \"fromfile\""));
    // flag over env: 4
    ward(home.path())
        .args(["--partitions", "4", "config", "show", "--config"])
        .arg(&file)
        .env("WARD_PARTITIONS", "3")
        .assert()
        .success()
        .stdout(predicate::str::contains("partitions = 4"));
    // an invalid env value names the variable
    ward(home.path())
        .args(["config", "show"])
        .env("WARD_PARTITIONS", "0")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "environment variable WARD_PARTITIONS",
        ));
    ward(home.path())
        .args(["config", "show", "--redis", "http://x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("flag --redis"));
}

#[test]
fn config_show_redacts_passwords_and_survives_an_unopenable_log_file() {
    let home = home();
    // valid_full.toml logs to /var/log/ward/ward.log, which usually cannot be opened here.
    ward(home.path())
        .args(["config", "show", "--config"])
        .arg(fixture("valid_full.toml"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "rediss://user:***@redis.example.com",
        ))
        .stdout(predicate::str::contains("secret").not());
}

#[test]
fn empty_environment_variables_count_as_unset() {
    let home = home();
    ward(home.path())
        .args(["config", "show"])
        .env("WARD_PARTITIONS", "")
        .env("WARD_CONFIG", "")
        .assert()
        .success()
        .stdout(predicate::str::contains("partitions = 1"));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .arg("print-config-template")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Close the read end before ward writes anything: every write gets EPIPE.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    assert!(status.success(), "exit {status}, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn override_table_matches_the_clap_arguments() {
    let cmd = Cli::command();
    for spec in OVERRIDE_SPECS {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == spec.name)
            .unwrap_or_else(|| panic!("no clap argument {}", spec.name));
        assert_eq!(
            arg.get_long().map(|l| format!("--{l}")).as_deref(),
            Some(spec.flag)
        );
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some(spec.env),
            "{}",
            spec.name
        );
        assert!(arg.is_global_set(), "{} should be global", spec.name);
    }
    let config = cmd
        .get_arguments()
        .find(|a| a.get_id() == "config")
        .expect("--config");
    assert_eq!(
        config.get_env().and_then(|e| e.to_str()),
        Some(ward::config::CONFIG_ENV)
    );
}

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn read_only_is_a_global_flag_before_or_after_the_subcommand() {
    let home = home();
    let refused = "refused: replay is not allowed (read-only: --read-only)";
    for args in [
        &["--read-only", "replay", "--yes"][..],
        &["replay", "--read-only", "--yes"],
        &["replay", "--yes", "--read-only"],
        // --write lifts tui.read_only for a run, never --read-only.
        &["--read-only", "replay", "--write", "--yes"],
        &["replay", "--write", "--read-only", "--yes"],
    ] {
        ward(home.path())
            .args(NO_STORE)
            .args(args)
            .assert()
            .code(4)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(refused));
    }
    ward(home.path())
        .args(NO_STORE)
        .args(["--read-only", "stop", "on", "--reason", "storm", "--yes"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "emergency_stop is not allowed (read-only: --read-only)",
        ));

    // The environment fallback, named as the reason.
    ward(home.path())
        .args(NO_STORE)
        .args(["replay", "--yes"])
        .env(ward::cli::READ_ONLY_ENV, "1")
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "(read-only: environment variable WARD_READ_ONLY)",
        ));
    ward(home.path())
        .args(NO_STORE)
        .args(["replay", "--yes"])
        .env(ward::cli::READ_ONLY_ENV, "false")
        .assert()
        .code(3);

    // With tui.read_only in the config: --write lifts it, --read-only still wins over --write.
    let config = config_file(home.path(), "[tui]\nread_only = true\n");
    let with_config = || {
        let mut cmd = ward(home.path());
        cmd.args(NO_STORE).arg("--config").arg(&config);
        cmd
    };
    with_config()
        .args(["replay", "--yes"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("(read-only in config)"));
    with_config()
        .args(["replay", "--write", "--yes"])
        .assert()
        .code(3);
    with_config()
        .args(["--read-only", "replay", "--write", "--yes"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(refused));

    // The pipeline writes by design: asking it to be read-only is a mistake, not a no-op.
    ward(home.path())
        .args(["--read-only", "up"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--read-only: ward up runs the pipeline",
        ));
    // A role apart from the others needs a store the other processes share.
    for (role, why) in [
        ("ingest", "could consume what it accepts"),
        ("workers", "could feed its workers"),
    ] {
        ward(home.path())
            .args(["--store", "memory", "up", "--role", role])
            .timeout(std::time::Duration::from_secs(30))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(why))
            .stderr(predicate::str::contains("store.backend = \"redis\""));
    }

    // The control room needs a terminal (tests/control_room/pty.rs drives one): here, the parse.
    for argv in [
        ["ward", "--read-only", "tui"],
        ["ward", "tui", "--read-only"],
        ["ward", "demo", "--read-only"],
    ] {
        let cli = ward::cli::parse_from(argv).expect("parses");
        assert_eq!(
            cli.global.read_only_reason().as_deref(),
            Some("--read-only"),
            "{argv:?}"
        );
    }
    ward(home.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("--read-only"))
        .stdout(predicate::str::contains("WARD_READ_ONLY"));
}

#[test]
fn a_bad_key_binding_is_a_config_error_naming_the_setting() {
    let home = home();
    let cases = [
        (
            "[tui.bindings]\n\"ctrl-\" = \"quit\"\n",
            "line 2 column 1",
            "`tui.bindings` \"ctrl-\" is not a key",
        ),
        (
            "[tui]\nbindings = { x = \"explode\" }\n",
            "line 2 column 14",
            "`tui.bindings` \"x\" names \"explode\", which is not a command",
        ),
    ];
    for (text, at, message) in cases {
        let path = config_file(home.path(), text);
        for command in [&["keys"][..], &["tui"], &["demo"], &["config", "show"]] {
            ward(home.path())
                .arg("--config")
                .arg(&path)
                .args(command)
                .assert()
                .code(2)
                .stdout(predicate::str::is_empty())
                .stderr(predicate::str::starts_with(format!(
                    "error: config error in {} {at}: ",
                    path.display()
                )))
                .stderr(predicate::str::contains(message));
        }
    }
}

#[test]
fn a_key_already_bound_to_another_command_is_reported() {
    let home = home();
    let taken = config_file(home.path(), "[tui.bindings]\nr = \"refresh\"\n");
    for command in ["keys", "tui"] {
        ward(home.path())
            .arg("--config")
            .arg(&taken)
            .arg(command)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "{} line 2 column 1: `tui.bindings` key \"r\" for refresh is already bound to \
                 replay; bind replay to another key as well (then \"r\" moves to refresh)",
                taken.display()
            )));
    }

    // Two spellings of one key, for two commands.
    let twice = config_file(
        home.path(),
        "[tui.bindings]\n\"alt-ctrl-x\" = \"help\"\n\"ctrl-alt-x\" = \"quit\"\n",
    );
    ward(home.path())
        .arg("--config")
        .arg(&twice)
        .arg("keys")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 3 column 1"))
        .stderr(predicate::str::contains(
            "key \"ctrl-alt-x\" for quit is already bound to help (as \"alt-ctrl-x\")",
        ));

    // Giving replay a key of its own too moves r to refresh.
    let moved = config_file(
        home.path(),
        "[tui.bindings]\nr = \"refresh\"\nf5 = \"replay\"\n",
    );
    ward(home.path())
        .arg("--config")
        .arg(&moved)
        .arg("keys")
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^refresh +ctrl-r r +no ").expect("regex"))
        .stdout(predicate::str::is_match(r"(?m)^replay +f5 +yes ").expect("regex"));
}
