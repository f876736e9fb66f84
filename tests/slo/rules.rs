//! `ward slo rules` against the real `promtool` (Debian's `prometheus` package): the generated
//! file passes `promtool check rules`, and `promtool test rules` evaluates it on synthetic series
//! with Prometheus's own engine: the recorded ratios and budget equal Ward's burn-rate engine,
//! the page fires while both windows burn and stops once the short windows are clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use ward::config::DeliveryConfig;
use ward::config::slo::{Sli, SloConfig, SloDefinition, SloSpec, builtin_objectives};
use ward::engine::slo::{Measurement, Measurements, Objective, Period, WINDOWS_S, evaluate};
use ward::telemetry::slo_rules::prometheus_rules;

fn promtool() -> std::path::PathBuf {
    common::which("promtool").unwrap_or_else(|| {
        panic!(
            "promtool is not installed: the SLO rule tests need it \
             (apt-get install -y prometheus, or run `bash .ci/test`)"
        )
    })
}

fn run_promtool(args: &[&str], dir: &Path) -> String {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Every builtin (two backends) and custom objectives of both periods and both SLI kinds.
fn definitions() -> Vec<SloDefinition> {
    let mut objectives = builtin_objectives(&["slack", "smtp"]);
    objectives.push(SloSpec {
        name: "checkout_28d".to_owned(),
        description: "Checkout alerts delivered; \"quoted\" and \\ escaped".to_owned(),
        target: 0.995,
        period: Period::Days28,
        sli: Sli::Availability {
            total: r#"ward_deliveries_total{channel="checkout"}"#.to_owned(),
            errors: None,
            good: Some(
                r#"ward_deliveries_total{channel="checkout",outcome="delivered"}"#.to_owned(),
            ),
        },
    });
    objectives.push(SloSpec {
        name: "pager-latency".to_owned(),
        description: String::new(),
        target: 0.9,
        period: Period::Days30,
        sli: Sli::Latency {
            histogram: r#"ward_delivery_duration_seconds{channel="pager"}"#.to_owned(),
            threshold_s: 1.0,
        },
    });
    SloConfig {
        builtin: false,
        objectives,
        ..SloConfig::default()
    }
    .definitions(&DeliveryConfig::default())
    .expect("valid objectives")
}

#[test]
fn generated_rules_pass_promtool_check() {
    let dir = tempfile::tempdir().unwrap();
    let slos = definitions();
    std::fs::write(dir.path().join("rules.yml"), prometheus_rules(&slos)).unwrap();
    let report = run_promtool(&["check", "rules", "rules.yml"], dir.path());
    // Per SLO: 8 ratio windows, 7 meta records and 2 alerts.
    let expected = slos.len() * 17;
    assert!(
        report.contains(&format!("SUCCESS: {expected} rules found")),
        "{report}"
    );
}

#[test]
fn the_ward_command_writes_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from-cli.yml");
    assert_cmd::Command::cargo_bin("ward")
        .unwrap()
        .env_remove("WARD_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path())
        .args(["slo", "rules", "--output"])
        .arg(&out)
        .assert()
        .success();
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("slo:period_error_budget_remaining:ratio"));
    assert!(written.contains("WardSloBurnRatePage"));
    run_promtool(&["check", "rules", "from-cli.yml"], dir.path());
}

/// Ward's engine on the same counts: the figures promtool must find in the recorded series.
fn engine_figures(errors_per_min: f64, total_per_min: f64, minutes: f64) -> (f64, f64) {
    let objective = Objective::new(0.999, Period::Days30).unwrap();
    let m = Measurement::events(errors_per_min * minutes, total_per_min * minutes);
    let figures = evaluate(
        &objective,
        &Measurements {
            windows: [m; WINDOWS_S.len()],
            period: m,
            history_s: None,
        },
    );
    (
        figures.windows[2].error_ratio.unwrap(),
        figures.budget_remaining.unwrap(),
    )
}

#[test]
fn prometheus_evaluates_the_rules_as_wards_engine_does() {
    let dir = tempfile::tempdir().unwrap();
    let ingest: Vec<SloDefinition> = definitions()
        .into_iter()
        .filter(|s| s.name == "ingest-success")
        .collect();
    std::fs::write(dir.path().join("rules.yml"), prometheus_rules(&ingest)).unwrap();
    // 2 % of ingest requests refused by Ward (store) for the first hour, then none: burn 20
    // against a page threshold of 14.4.
    let (ratio, remaining) = engine_figures(20.0, 1_000.0, 60.0);
    assert!((ratio - 0.02).abs() < 1e-12);
    assert!((remaining - -19.0).abs() < 1e-9);
    let labels = "sloth_id: ward-ingest-success, sloth_service: ward, sloth_slo: ingest-success";
    let page = format!("{{{labels}, sloth_severity: page, severity: critical}}");
    let annotations = "summary: \"SLO ingest-success (99.9% over 30d) is burning its error budget too fast\"\n              description: \"Alerts accepted by the ingest endpoint, unless the sender was at fault\"";
    let tests = format!(
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ward_ingest_requests_total{{endpoint="v1",status="accepted",reason=""}}'
        values: '0+980x60 58800+1000x60'
      - series: 'ward_ingest_requests_total{{endpoint="v1",status="rejected",reason="store"}}'
        values: '0+20x60 1200+0x60'
      - series: 'ward_ingest_requests_total{{endpoint="v1",status="rejected",reason="auth"}}'
        values: '0+500x120'
    promql_expr_test:
      - expr: 'round(slo:sli_error:ratio_rate1h{{sloth_slo="ingest-success"}} * 1e9)'
        eval_time: 60m
        exp_samples:
          - labels: '{{{labels_eq}, sloth_window="1h"}}'
            value: {ratio_with_auth}
      - expr: 'round(slo:period_error_budget_remaining:ratio{{sloth_slo="ingest-success"}} * 1e9)'
        eval_time: 60m
        exp_samples:
          - labels: '{{{labels_eq}}}'
            value: {remaining_with_auth}
    alert_rule_test:
      - eval_time: 60m
        alertname: WardSloBurnRatePage
        exp_alerts:
          - exp_labels: {page}
            exp_annotations:
              {annotations}
      - eval_time: 70m
        alertname: WardSloBurnRatePage
        exp_alerts:
          - exp_labels: {page}
            exp_annotations:
              {annotations}
      - eval_time: 100m
        alertname: WardSloBurnRatePage
        exp_alerts: []
"#,
        labels_eq =
            r#"sloth_id="ward-ingest-success", sloth_service="ward", sloth_slo="ingest-success""#,
        // A sender's bad requests (auth) are events but not Ward's errors: 20 of 1 500 a minute.
        // Compared to 1e-9: Prometheus and Ward round the last binary digit differently.
        ratio_with_auth = (engine_figures(20.0, 1_500.0, 60.0).0 * 1e9).round(),
        remaining_with_auth = (engine_figures(20.0, 1_500.0, 60.0).1 * 1e9).round(),
    );
    std::fs::write(dir.path().join("tests.yml"), tests).unwrap();
    let report = run_promtool(&["test", "rules", "tests.yml"], dir.path());
    assert!(report.contains("SUCCESS"), "{report}");
}
