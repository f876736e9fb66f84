//! The `ward` binary: help, version, config commands, exit codes, broken pipes.
#![allow(clippy::expect_used)] // a failed setup step should panic the test

mod common;

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
