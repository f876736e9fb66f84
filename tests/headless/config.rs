//! The typed config: fixtures, layering, locations and the template.
#![allow(clippy::expect_used)] // a failed setup step should panic the test

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use ward::config::{
    Backend, Config, ConfigError, ConfigLocation, LocationSource, LogFormat, MAX_BATCH_SIZE,
    Origin, Overrides, TuiConfig, template,
};
use ward::model::{Profile, QueueName};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load_with(name: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    Config::load(
        &ConfigLocation::explicit(fixture(name), LocationSource::Flag),
        overrides,
    )
}

fn load(name: &str) -> Result<Config, ConfigError> {
    load_with(name, &Overrides::default())
}

fn queues(names: &[&str]) -> Vec<QueueName> {
    names
        .iter()
        .map(|n| QueueName::new(n).expect("valid queue name"))
        .collect()
}

#[test]
fn defaults_are_as_documented() {
    let c = Config::default();
    assert_eq!(c.store.backend, Backend::Memory);
    assert_eq!(c.store.redis_url, "redis://127.0.0.1:6379");
    assert_eq!(c.store.profile, Profile::Ward);
    assert_eq!(c.store.key_prefix, "ward");
    assert_eq!(c.store.partitions, 1);
    assert_eq!(c.store.response_timeout_ms, 2000);
    assert_eq!(c.store.connect_timeout_ms, 1000);
    assert_eq!(
        c.store.replica_acks, None,
        "1 on a cluster, 0 on a single server"
    );
    assert_eq!(c.queues.names, queues(&["ingest", "delivery"]));
    assert_eq!(c.queues.lease_ms, 30_000);
    assert_eq!(c.queues.heartbeat_ms, 5_000);
    assert_eq!(c.queues.janitor_interval_ms, 5_000);
    assert_eq!(c.queues.max_attempts, 8);
    assert_eq!(c.queues.max_replays, 3);
    assert_eq!(c.queues.batch_size, 100);
    assert_eq!(c.dlq.replay_batch, 50);
    assert_eq!(c.dlq.replay_rate_per_s, 1000);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.file, None);
    assert_eq!(
        c.store.response_timeout(),
        std::time::Duration::from_secs(2)
    );
    assert_eq!(c.queues.lease(), std::time::Duration::from_secs(30));
    assert_eq!(c.tui.refresh_ms, 1000);
    assert!(!c.tui.lock_refresh);
    assert_eq!(c.tui.timeout_ms, 2000);
    assert_eq!(c.tui.stale_after_polls, 2);
    assert_eq!(c.tui.theme, "default");
    assert!(!c.tui.read_only);
    assert_eq!(c.tui.label, "");
    assert_eq!(c.tui.accent, "");
    assert_eq!(c.tui.wall_cycle_s, 0);
    assert!(!c.tui.no_exit_on_ctrl_c);
    assert_eq!(c.tui.audit_rows, 50);
    assert!(c.tui.bindings.is_empty());
    assert_eq!(c.tui.refresh(), std::time::Duration::from_secs(1));
    assert_eq!(c.tui.timeout(), std::time::Duration::from_secs(2));
    assert_eq!(c.tui.wall_cycle(), None);
}

#[test]
fn batch_limit_matches_the_store() {
    assert_eq!(MAX_BATCH_SIZE, ward::store::MAX_BATCH);
}

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(load("valid_empty.toml").expect("loads"), Config::default());
}

#[test]
fn full_file_sets_every_key() {
    let c = load("valid_full.toml").expect("loads");
    assert_eq!(c.store.backend, Backend::Redis);
    assert_eq!(
        c.store.redis_url,
        "rediss://user:secret@redis.example.com:6380/2"
    );
    assert_eq!(c.store.profile, Profile::Mutt);
    assert_eq!(c.store.key_prefix, "mutt");
    assert_eq!(c.store.partitions, 16);
    assert_eq!(c.store.response_timeout_ms, 5000);
    assert_eq!(c.store.connect_timeout_ms, 1500);
    assert_eq!(c.store.replica_acks, Some(2));
    assert_eq!(
        c.queues.names,
        queues(&["ingest", "delivery", "remediation"])
    );
    assert_eq!(c.queues.lease_ms, 60_000);
    assert_eq!(c.queues.heartbeat_ms, 10_000);
    assert_eq!(c.queues.janitor_interval_ms, 2_000);
    assert_eq!(c.queues.max_attempts, 10);
    assert_eq!(c.queues.max_replays, 0);
    assert_eq!(c.queues.batch_size, 500);
    assert_eq!(c.dlq.replay_batch, 250);
    assert_eq!(c.dlq.replay_rate_per_s, 50);
    assert_eq!(c.log.level, "info,ward::store=debug");
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.file, Some(PathBuf::from("/var/log/ward/ward.log")));
}

#[test]
fn tui_file_sets_every_key_and_bindings_parse() {
    let c = load("valid_tui.toml").expect("loads");
    let bindings: BTreeMap<String, String> =
        [("ctrl-x", "quit"), ("?", "help"), ("f2", "view-queues")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(
        c.tui,
        TuiConfig {
            refresh_ms: 250,
            lock_refresh: true,
            timeout_ms: 5000,
            stale_after_polls: 3,
            theme: "high-contrast".to_owned(),
            read_only: true,
            label: "prod-eu".to_owned(),
            accent: "red".to_owned(),
            wall_cycle_s: 30,
            no_exit_on_ctrl_c: true,
            audit_rows: 200,
            bindings,
        }
    );
    assert_eq!(c.tui.wall_cycle(), Some(std::time::Duration::from_secs(30)));
    assert_eq!(c.store, Config::default().store, "other sections untouched");

    // The same bindings as an inline table; names are not checked here (the CLI checks them
    // against the control room's keymap when it loads the config).
    let text = "[tui]\nbindings = { \"ctrl-x\" = \"quit\", \"not-a-key\" = \"x\" }\n";
    let c = Config::from_toml_str(text, Path::new("inline.toml"), &Overrides::default())
        .expect("inline bindings parse");
    assert_eq!(c.tui.bindings.len(), 2);
    assert_eq!(
        c.tui.bindings.get("ctrl-x").map(String::as_str),
        Some("quit")
    );

    // A binding must map to a command name.
    let err = Config::from_toml_str(
        "[tui.bindings]\nx = 1\n",
        Path::new("bad.toml"),
        &Overrides::default(),
    )
    .expect_err("a number is not a command");
    assert_eq!(err.key(), Some("tui.bindings.x"));
}

#[test]
fn invalid_tui_values_name_their_key() {
    let cases = [
        (
            "refresh_ms = 249",
            "tui.refresh_ms",
            "loads Redis for nothing",
        ),
        ("timeout_ms = 99", "tui.timeout_ms", "between 100 and 60000"),
        (
            "timeout_ms = 60001",
            "tui.timeout_ms",
            "between 100 and 60000",
        ),
        (
            "stale_after_polls = 0",
            "tui.stale_after_polls",
            "at least 1",
        ),
        ("theme = \"\"", "tui.theme", "theme name"),
        ("theme = \"../../etc/x\"", "tui.theme", "theme name"),
        ("theme = 'dark\\x'", "tui.theme", "theme name"),
        ("audit_rows = 0", "tui.audit_rows", "between 1 and 500"),
        ("audit_rows = 501", "tui.audit_rows", "between 1 and 500"),
        ("refesh_ms = 1000", "tui.refesh_ms", "unknown field"),
    ];
    for (line, key, fragment) in cases {
        let text = format!("[tui]\n{line}\n");
        let err = Config::from_toml_str(&text, Path::new("tui.toml"), &Overrides::default())
            .expect_err(line);
        assert_eq!(err.key(), Some(key), "{line}: {err}");
        assert!(err.to_string().contains(fragment), "{line}: {err}");
    }
}

#[test]
fn redis_file_overrides_only_what_it_names() {
    let c = load("valid_redis.toml").expect("loads");
    assert_eq!(c.store.backend, Backend::Redis);
    assert_eq!(c.store.redis_url, "redis://10.0.0.5:6379/0");
    assert_eq!(c.store.partitions, 4);
    assert_eq!(c.store.profile, Profile::Ward);
    assert_eq!(c.queues, Config::default().queues);
    assert_eq!(c.log, Config::default().log);
}

/// (fixture, line, column, key, fragment of the message)
const INVALID: &[(&str, usize, usize, &str, &str)] = &[
    (
        "invalid_unknown_key.toml",
        7,
        1,
        "queues.partitons",
        "unknown field `partitons`",
    ),
    (
        "invalid_unknown_section.toml",
        3,
        2,
        "stor",
        "unknown field `stor`",
    ),
    (
        "invalid_wrong_type.toml",
        4,
        14,
        "store.partitions",
        "invalid type",
    ),
    (
        "invalid_bad_enum.toml",
        3,
        11,
        "store.backend",
        "unknown variant `postgres`",
    ),
    (
        "invalid_partitions_zero.toml",
        4,
        14,
        "store.partitions",
        "between 1 and 1024, got 0",
    ),
    (
        "invalid_replica_acks.toml",
        4,
        16,
        "store.replica_acks",
        "between 0 and 5, got 9",
    ),
    (
        "invalid_bad_redis_url.toml",
        3,
        13,
        "store.redis_url",
        "must start with redis://",
    ),
    (
        "invalid_queue_name.toml",
        4,
        3,
        "queues.names",
        "Delivery Queue",
    ),
    (
        "invalid_lease_heartbeat.toml",
        3,
        12,
        "queues.lease_ms",
        "must be greater than `queues.heartbeat_ms`",
    ),
    (
        "invalid_batch_size.toml",
        2,
        14,
        "queues.batch_size",
        "between 1 and 500, got 501",
    ),
    (
        "invalid_tui_refresh.toml",
        2,
        1,
        "tui.refresh_ms",
        "must be at least 250, got 100",
    ),
    (
        "invalid_syntax.toml",
        2,
        18,
        "store.backend",
        "invalid basic string",
    ),
];

#[test]
fn invalid_files_name_file_line_and_key() {
    for &(name, line, column, key, fragment) in INVALID {
        let path = fixture(name);
        let err = load(name).expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "{name}: no path in {msg}"
        );
        assert!(
            msg.contains(&format!("line {line} column {column}")),
            "{name}: expected line {line} column {column} in {msg}"
        );
        assert!(msg.contains(key), "{name}: expected key {key} in {msg}");
        assert!(
            msg.contains(fragment),
            "{name}: expected {fragment:?} in {msg}"
        );
        assert_eq!(err.key(), Some(key), "{name}");
        assert_eq!(
            err.origin(),
            Some(&Origin::File {
                path: path.clone(),
                line: Some(line),
                column: Some(column),
            }),
            "{name}"
        );
    }
}

#[test]
fn unknown_key_message_lists_the_valid_keys() {
    let msg = load("invalid_unknown_key.toml")
        .expect_err("unknown key")
        .to_string();
    assert!(msg.contains("expected one of"), "{msg}");
    assert!(msg.contains("`lease_ms`"), "{msg}");
}

#[test]
fn loading_never_modifies_the_file() {
    for name in ["valid_full.toml", "invalid_unknown_key.toml"] {
        let before = std::fs::read(fixture(name)).expect("read");
        let _ = load(name);
        assert_eq!(std::fs::read(fixture(name)).expect("read"), before);
    }
}

#[test]
fn layering_flag_over_env_over_file_over_default() {
    // File alone: 2 (and the file's key_prefix beats the default).
    let c = load("layering.toml").expect("file");
    assert_eq!(c.store.partitions, 2);
    assert_eq!(c.store.key_prefix, "fromfile");
    assert_eq!(
        c.store.backend,
        Backend::Memory,
        "default where nothing is set"
    );

    // The env layer arrives as Overrides (clap merges WARD_PARTITIONS into it): 3.
    let env = Overrides {
        partitions: Some(3),
        ..Overrides::default()
    };
    let c = load_with("layering.toml", &env).expect("env");
    assert_eq!(c.store.partitions, 3);
    assert_eq!(
        c.store.key_prefix, "fromfile",
        "untouched keys keep the file value"
    );

    // A flag on the real command line: 4.
    let path = fixture("layering.toml");
    let cli = ward::cli::parse_from([
        OsString::from("ward"),
        "--config".into(),
        path.into_os_string(),
        "--partitions".into(),
        "4".into(),
        "config".into(),
        "show".into(),
    ])
    .expect("parses");
    let c = cli.global.load_config().expect("flag");
    assert_eq!(c.store.partitions, 4);
    assert_eq!(c.store.key_prefix, "fromfile");
}

#[test]
fn global_flags_work_after_the_subcommand() {
    let cli = ward::cli::parse_from([
        "ward",
        "config",
        "show",
        "--partitions",
        "7",
        "--store",
        "redis",
        "--profile",
        "mutt",
    ])
    .expect("parses");
    let overrides = cli.global.overrides();
    assert_eq!(overrides.partitions, Some(7));
    assert_eq!(overrides.store_backend, Some(Backend::Redis));
    assert_eq!(overrides.profile, Some(Profile::Mutt));
    assert_eq!(
        overrides.labels.get("store.partitions").map(String::as_str),
        Some("flag --partitions")
    );
}

#[test]
fn invalid_overrides_name_their_source() {
    let mut labels = BTreeMap::new();
    labels.insert(
        "store.partitions".to_owned(),
        "environment variable WARD_PARTITIONS".to_owned(),
    );
    let overrides = Overrides {
        partitions: Some(0),
        labels,
        ..Overrides::default()
    };
    let msg = load_with("valid_empty.toml", &overrides)
        .expect_err("0 partitions")
        .to_string();
    assert!(msg.contains("WARD_PARTITIONS"), "{msg}");
    assert!(msg.contains("store.partitions"), "{msg}");

    let overrides = Overrides {
        redis_url: Some("localhost:6379".to_owned()),
        ..Overrides::default()
    };
    let err = Config::from_overrides(&overrides).expect_err("bad url");
    assert_eq!(err.key(), Some("store.redis_url"));
    assert!(err.to_string().contains("--redis"), "{err}");

    let overrides = Overrides {
        log_level: Some("loud".to_owned()),
        ..Overrides::default()
    };
    let err = Config::from_overrides(&overrides).expect_err("bad level");
    assert_eq!(err.key(), Some("log.level"));
}

#[test]
fn explicit_missing_file_is_an_error_default_missing_file_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");

    for source in [LocationSource::Flag, LocationSource::Env] {
        let err = Config::load(
            &ConfigLocation::explicit(&missing, source),
            &Overrides::default(),
        )
        .expect_err("explicit file must exist");
        assert!(matches!(err, ConfigError::Missing { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains(&source.to_string()), "{msg}");
    }

    let home = dir.path().as_os_str().to_owned();
    let location = ConfigLocation::resolve(None, |k| (k == "HOME").then(|| home.clone()));
    assert_eq!(location.chosen_by, LocationSource::Home);
    assert!(!location.exists());
    let c = Config::load(&location, &Overrides::default()).expect("defaults");
    assert_eq!(c, Config::default());
}

#[test]
fn unreadable_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory where the file should be.
    let err = Config::load(
        &ConfigLocation::explicit(dir.path(), LocationSource::Flag),
        &Overrides::default(),
    )
    .expect_err("a directory is not a file");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn location_lookup_order() {
    let env = |pairs: &[(&str, &str)]| {
        let map: BTreeMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k: &str| map.get(k).cloned()
    };

    let l = ConfigLocation::resolve(
        Some((PathBuf::from("/etc/ward.toml"), LocationSource::Env)),
        env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]),
    );
    assert_eq!(l.path, Some(PathBuf::from("/etc/ward.toml")));
    assert_eq!(l.chosen_by, LocationSource::Env);

    let l = ConfigLocation::resolve(
        None,
        env(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]),
    );
    assert_eq!(l.path, Some(PathBuf::from("/xdg/ward/config.toml")));
    assert_eq!(l.chosen_by, LocationSource::XdgConfigHome);

    // A relative or empty XDG_CONFIG_HOME is ignored, as the XDG spec requires.
    for xdg in ["relative/dir", ""] {
        let l =
            ConfigLocation::resolve(None, env(&[("XDG_CONFIG_HOME", xdg), ("HOME", "/home/u")]));
        assert_eq!(
            l.path,
            Some(PathBuf::from("/home/u/.config/ward/config.toml"))
        );
        assert_eq!(l.chosen_by, LocationSource::Home);
    }

    let l = ConfigLocation::resolve(None, env(&[]));
    assert_eq!(l.path, None);
    assert_eq!(l.chosen_by, LocationSource::Nowhere);
    assert_eq!(
        Config::load(&l, &Overrides::default()).expect("defaults"),
        Config::default()
    );
}

/// Removes the leading `# ` from key lines (`# key = value`) and section headers (`# [name]`).
fn uncomment(template: &str) -> String {
    template
        .lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix("# ") else {
                return line.to_owned();
            };
            let is_header = rest.starts_with('[') && rest.ends_with(']');
            let is_key = rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            });
            if is_header || is_key {
                rest.to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn template_as_printed_is_valid_and_yields_defaults() {
    let text = template::render();
    assert!(
        text.lines().all(|l| l.is_empty() || l.starts_with('#')),
        "every line is a comment"
    );
    let c = Config::from_toml_str(&text, Path::new("template.toml"), &Overrides::default())
        .expect("template parses");
    assert_eq!(c, Config::default());
}

#[test]
fn uncommented_template_yields_defaults_and_covers_every_key() {
    let text = uncomment(&template::render());
    let c = Config::from_toml_str(&text, Path::new("template.toml"), &Overrides::default())
        .unwrap_or_else(|e| panic!("uncommented template does not load: {e}\n{text}"));
    assert_eq!(c, Config::default());

    // Every key the resolved config has (with its default value) is in the template.
    let table: toml::Table = toml::from_str(&text).expect("toml");
    let defaults = toml::Table::try_from(Config::default()).expect("serialises");
    assert_eq!(table, defaults);

    // Keys without a default are still documented, with an example.
    assert!(template::render().contains("#   file = \""));
    assert!(template::render().contains("# [tui]\n"));
    assert!(
        table.contains_key("tui"),
        "the template sets every [tui] key"
    );

    // The documentation lists exactly the keys the file layer accepts.
    for section in template::SECTIONS {
        for key in section.keys {
            let one = format!("[{}]\n{} = 0\n", section.name, key.key);
            let err = Config::from_toml_str(&one, Path::new("probe.toml"), &Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                !err.contains("unknown field"),
                "template documents {}.{} which the loader rejects: {err}",
                section.name,
                key.key
            );
        }
    }
}

#[test]
fn resolved_config_round_trips_through_toml() {
    let c = load("valid_full.toml").expect("loads");
    let text = c.to_toml().expect("renders");
    let again = Config::from_toml_str(&text, Path::new("shown.toml"), &Overrides::default())
        .expect("config show output is a valid config file");
    assert_eq!(again, c);
}

#[test]
fn tui_section_round_trips_through_toml() {
    let c = load("valid_tui.toml").expect("loads");
    let text = c.to_toml().expect("renders");
    let again = Config::from_toml_str(&text, Path::new("shown.toml"), &Overrides::default())
        .expect("config show output is a valid config file");
    assert_eq!(again.tui, c.tui);
}

#[test]
fn redaction_hides_redis_passwords() {
    use ward::config::redact_url;
    assert_eq!(
        redact_url("rediss://user:secret@host:6380/2"),
        "rediss://user:***@host:6380/2"
    );
    assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
    assert_eq!(redact_url("redis://host:6379/0"), "redis://host:6379/0");
    assert_eq!(
        redact_url("redis+unix:///run/redis.sock"),
        "redis+unix:///run/redis.sock"
    );
    let c = load("valid_full.toml").expect("loads").redacted();
    assert!(!c.to_toml().expect("renders").contains("secret"));
}

#[test]
fn a_redis_url_flag_implies_the_redis_backend_unless_the_backend_is_given() {
    let load = |args: &[&str]| {
        let mut argv = vec!["ward"];
        argv.extend_from_slice(args);
        argv.extend(["config", "show"]);
        ward::cli::parse_from(argv)
            .expect("parses")
            .global
            .load_config()
            .expect("loads")
    };
    let c = load(&["--redis", "redis://10.0.0.5:6379/0"]);
    assert_eq!(c.store.backend, Backend::Redis);
    assert_eq!(c.store.redis_url, "redis://10.0.0.5:6379/0");
    let c = load(&["--store", "memory", "--redis", "redis://10.0.0.5:6379/0"]);
    assert_eq!(c.store.backend, Backend::Memory, "an explicit --store wins");
    assert_eq!(load(&[]).store.backend, Backend::Memory);
}

#[test]
fn slo_objectives_load_and_a_100_percent_target_is_refused_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("slo.toml");
    let write_and_load = |text: &str| {
        std::fs::write(&path, text).expect("write");
        Config::load(
            &ConfigLocation::explicit(&path, LocationSource::Flag),
            &Overrides::default(),
        )
    };
    let config = write_and_load(
        r#"
[slo]
prometheus_url = "http://127.0.0.1:9090"

[[slo.objectives]]
name = "checkout"
target = 0.995
period = "28d"
sli = { kind = "availability", total = 'ward_deliveries_total{channel="checkout"}', errors = 'ward_deliveries_total{channel="checkout",outcome="dead_lettered"}' }

[[slo.objectives]]
name = "delivery-latency"
target = 0.9
sli = { kind = "latency", histogram = 'ward_delivery_duration_seconds{channel="pager"}', threshold_s = 1.0 }
"#,
    )
    .expect("loads");
    let slos = config
        .slo
        .definitions(&config.delivery)
        .expect("definitions");
    let names: Vec<&str> = slos.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ingest-success", "checkout", "delivery-latency"]);
    assert_eq!(slos[1].objective.period.days(), 28);
    assert!(
        (slos[2].objective.target - 0.9).abs() < 1e-12,
        "the builtin was replaced"
    );

    let error = write_and_load(
        "[[slo.objectives]]\nname = \"x\"\ntarget = 1.0\nsli = { kind = \"availability\", total = \"t\", errors = \"e\" }\n",
    )
    .expect_err("100 % has no budget");
    assert_eq!(error.key(), Some("slo.objectives.x.target"));
    let message = error.to_string();
    assert!(message.contains("no error budget"), "{message}");
    assert!(message.contains("slo.toml"), "{message}");
}

#[test]
fn a_retry_policy_above_queues_max_attempts_is_refused_saying_which_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("attempts.toml");
    let write_and_load = |text: &str| {
        std::fs::write(&path, text).expect("write");
        Config::load(
            &ConfigLocation::explicit(&path, LocationSource::Flag),
            &Overrides::default(),
        )
    };
    let policy = "[[delivery.retry_policies]]\nname = \"patient\"\nmax_attempts = 12\njitter = \"none\"\nbackoff = { kind = \"fixed\", delay = \"1s\" }\n";
    let error = write_and_load(policy).expect_err("12 is above the default ceiling of 8");
    assert_eq!(error.key(), Some("delivery.retry_policies[0].max_attempts"));
    let message = error.to_string();
    assert!(
        message.contains(
            "above queues.max_attempts = 8, which caps every retry policy (the lower wins"
        ),
        "{message}"
    );
    assert!(
        message.contains("attempts.toml line 1"),
        "points at the policies: {message}"
    );
    // Raising the ceiling resolves it.
    let config = write_and_load(&format!("[queues]\nmax_attempts = 12\n\n{policy}"))
        .expect("the ceiling now allows it");
    assert_eq!(config.queues.max_attempts, 12);
}

#[test]
fn ingest_limits_default_and_are_validated_at_load() {
    let ingest = Config::default().ingest;
    assert_eq!(ingest.header_timeout_ms, 10_000);
    assert_eq!(ingest.body_timeout_ms, 30_000);
    assert_eq!(ingest.max_connections, 4096);
    assert_eq!(ingest.max_requests_per_connection, 1000);
    assert_eq!(ingest.max_labels_per_alert, 64);
    assert_eq!(ingest.max_annotations_per_alert, 64);
    assert_eq!(ingest.max_alert_text_bytes, 16 * 1024);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ingest.toml");
    let write_and_load = |text: &str| {
        std::fs::write(&path, format!("[ingest]\n{text}\n")).expect("write");
        Config::load(
            &ConfigLocation::explicit(&path, LocationSource::Flag),
            &Overrides::default(),
        )
    };
    for (line, key, fragment) in [
        (
            "header_timeout_ms = 0",
            "ingest.header_timeout_ms",
            "at least 1",
        ),
        (
            "body_timeout_ms = 0",
            "ingest.body_timeout_ms",
            "at least 1",
        ),
        (
            "max_connections = 0",
            "ingest.max_connections",
            "at least 1",
        ),
        (
            "max_connections = 2000000",
            "ingest.max_connections",
            "at most 1000000",
        ),
        (
            "max_requests_per_connection = 0",
            "ingest.max_requests_per_connection",
            "at least 1",
        ),
        (
            "max_labels_per_alert = 0",
            "ingest.max_labels_per_alert",
            "at least 1",
        ),
        (
            "max_alert_text_bytes = 100",
            "ingest.max_alert_text_bytes",
            "at least 256",
        ),
    ] {
        let error = write_and_load(line).expect_err(line);
        assert_eq!(error.key(), Some(key), "{line}: {error}");
        assert!(error.to_string().contains(fragment), "{line}: {error}");
    }
    let config = write_and_load(
        "header_timeout_ms = 200\nbody_timeout_ms = 300\nmax_connections = 2\n\
         max_requests_per_connection = 1\nmax_labels_per_alert = 1\n\
         max_annotations_per_alert = 0\nmax_alert_text_bytes = 256",
    )
    .expect("the smallest limits are valid");
    assert_eq!(config.ingest.max_annotations_per_alert, 0);
    assert_eq!(config.ingest.header_timeout_ms, 200);
}
