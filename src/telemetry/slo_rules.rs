//! `ward slo rules`: Prometheus recording and alerting rules for the configured SLOs, named as
//! Sloth names them (`slo:sli_error:ratio_rate5m` … `slo:period_error_budget_remaining:ratio`),
//! so dashboards made for Sloth work. The period ratio is Σbad/Σtotal over the whole period, not
//! Sloth's default mean of 5-minute ratios, which mis-weights quiet hours (DOMAIN §1.4).

use std::fmt::Write as _;

use crate::config::slo::SloDefinition;
use crate::engine::slo::{ALERT_WINDOWS, Severity, WINDOWS_S, window_name};

/// The `sloth_service` label of every rule.
pub const SERVICE: &str = "ward";

/// A YAML double-quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A factor as PromQL reads it: `14.4`, `0.9333333333`.
fn number(value: f64) -> String {
    let text = format!("{value:.10}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

struct Labels<'a> {
    id: String,
    slo: &'a str,
}

impl<'a> Labels<'a> {
    fn of(slo: &'a SloDefinition) -> Self {
        Self {
            id: format!("{SERVICE}-{}", slo.name),
            slo: &slo.name,
        }
    }

    /// The label matchers that pick this SLO's series.
    fn selector(&self) -> String {
        format!(
            "{{sloth_id=\"{}\", sloth_service=\"{SERVICE}\", sloth_slo=\"{}\"}}",
            self.id, self.slo
        )
    }

    fn write(&self, out: &mut String, indent: &str, extra: &[(&str, &str)]) {
        let _ = writeln!(out, "{indent}labels:");
        let _ = writeln!(out, "{indent}  sloth_id: {}", quoted(&self.id));
        let _ = writeln!(out, "{indent}  sloth_service: {}", quoted(SERVICE));
        let _ = writeln!(out, "{indent}  sloth_slo: {}", quoted(self.slo));
        for (name, value) in extra {
            let _ = writeln!(out, "{indent}  {name}: {}", quoted(value));
        }
    }
}

fn record(out: &mut String, labels: &Labels<'_>, name: &str, expr: &str, extra: &[(&str, &str)]) {
    let _ = writeln!(out, "      - record: {}", quoted(name));
    let _ = writeln!(out, "        expr: {}", quoted(expr));
    labels.write(out, "        ", extra);
}

/// The rule file (YAML) for `slos`.
pub fn prometheus_rules(slos: &[SloDefinition]) -> String {
    let mut out = String::from(
        "# Prometheus rules for Ward's SLOs, written by `ward slo rules`: recording rules for the\n\
         # error ratio over each window and the budget, and multiwindow multi-burn-rate alerts\n\
         # (SRE Workbook ch. 5). Check with `promtool check rules <file>`.\n",
    );
    if slos.is_empty() {
        out.push_str("groups: []\n");
        return out;
    }
    out.push_str("groups:\n");
    for slo in slos {
        let labels = Labels::of(slo);
        ratio_group(&mut out, slo, &labels);
        meta_group(&mut out, slo, &labels);
        alert_group(&mut out, slo, &labels);
    }
    out
}

fn group(out: &mut String, kind: &str, slo: &SloDefinition) {
    let _ = writeln!(
        out,
        "  - name: {}",
        quoted(&format!("ward-slo-{kind}-{}", slo.name))
    );
    out.push_str("    rules:\n");
}

/// The error ratio over every window and the period (Σbad/Σtotal, never a mean of ratios).
fn ratio_group(out: &mut String, slo: &SloDefinition, labels: &Labels<'_>) {
    group(out, "sli-recordings", slo);
    let period = slo.objective.period.as_str().to_owned();
    for window in WINDOWS_S.iter().map(|&w| window_name(w)).chain([period]) {
        record(
            out,
            labels,
            &format!("slo:sli_error:ratio_rate{window}"),
            &slo.events.ratio_promql(&window),
            &[("sloth_window", &window)],
        );
    }
}

/// The objective, budget, period and the burn rates derived from the ratios.
fn meta_group(out: &mut String, slo: &SloDefinition, labels: &Labels<'_>) {
    group(out, "meta-recordings", slo);
    let period = slo.objective.period;
    let target = number(slo.objective.target);
    let selector = labels.selector();
    let burn = |ratio_window: &str| {
        format!(
            "max without (sloth_window) (slo:sli_error:ratio_rate{ratio_window}{selector}) / on(sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio{selector}"
        )
    };
    let meta = [
        ("slo:objective:ratio", format!("vector({target})")),
        ("slo:error_budget:ratio", format!("vector(1 - {target})")),
        ("slo:time_period:days", format!("vector({})", period.days())),
        ("slo:current_burn_rate:ratio", burn("5m")),
        ("slo:period_burn_rate:ratio", burn(period.as_str())),
        (
            "slo:period_error_budget_remaining:ratio",
            format!("1 - slo:period_burn_rate:ratio{selector}"),
        ),
    ];
    for (name, expr) in meta {
        record(out, labels, name, &expr, &[]);
    }
    record(
        out,
        labels,
        "sloth_slo_info",
        "vector(1)",
        &[
            ("sloth_objective", &number(slo.objective.target * 100.0)),
            ("sloth_mode", "cli-gen-ward"),
        ],
    );
}

/// One page and one ticket alert, each firing while both windows of a pair burn too fast.
fn alert_group(out: &mut String, slo: &SloDefinition, labels: &Labels<'_>) {
    group(out, "alerts", slo);
    let period = slo.objective.period;
    let budget = format!("(1 - {})", number(slo.objective.target));
    let selector = labels.selector();
    for severity in [Severity::Page, Severity::Ticket] {
        let clauses: Vec<String> = ALERT_WINDOWS
            .iter()
            .filter(|a| a.severity == severity)
            .map(|a| {
                let threshold = format!("({} * {budget})", number(a.factor(period)));
                let over = |w: u64| {
                    format!(
                        "max(slo:sli_error:ratio_rate{}{selector} > {threshold}) without (sloth_window)",
                        window_name(w)
                    )
                };
                format!("({} and {})", over(a.short_s), over(a.long_s))
            })
            .collect();
        let (alert, level) = match severity {
            Severity::Page => ("WardSloBurnRatePage", "critical"),
            Severity::Ticket => ("WardSloBurnRateTicket", "warning"),
        };
        let _ = writeln!(out, "      - alert: {}", quoted(alert));
        let _ = writeln!(out, "        expr: {}", quoted(&clauses.join(" or ")));
        labels.write(
            out,
            "        ",
            &[("sloth_severity", severity.as_str()), ("severity", level)],
        );
        out.push_str("        annotations:\n");
        let _ = writeln!(
            out,
            "          summary: {}",
            quoted(&format!(
                "SLO {} ({}% over {}) is burning its error budget too fast",
                slo.name,
                number(slo.objective.target * 100.0),
                period.as_str()
            ))
        );
        if !slo.description.is_empty() {
            let _ = writeln!(out, "          description: {}", quoted(&slo.description));
        }
    }
}
