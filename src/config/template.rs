//! `ward print-config-template`: a config file documenting every key, all commented out.
//!
//! Key lines look like `# key = default` and section headers like `# [section]`; prose lines
//! never do. Removing the leading `# ` from the key and header lines gives a valid file that
//! loads to exactly the defaults (tested). The values are rendered from [`Config::default`], so
//! they cannot drift from the code.

use std::fmt::Write as _;

use super::{Config, OVERRIDE_SPECS};

/// Documentation of one key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    pub key: &'static str,
    /// Meaning, one comment line per entry.
    pub doc: &'static [&'static str],
    /// For keys without a default: an example `key = value` line, shown indented.
    pub example: Option<&'static str>,
}

/// Documentation of one `[section]`.
#[derive(Debug, Clone, Copy)]
pub struct SectionDoc {
    pub name: &'static str,
    pub doc: &'static [&'static str],
    pub keys: &'static [KeyDoc],
}

const fn key(key: &'static str, doc: &'static [&'static str]) -> KeyDoc {
    KeyDoc {
        key,
        doc,
        example: None,
    }
}

/// Every section and key, in file order.
pub const SECTIONS: &[SectionDoc] = &[
    SectionDoc {
        name: "store",
        doc: &["Where pipeline state (queues, leases, DLQ, flags, audit) lives."],
        keys: &[
            key(
                "backend",
                &[
                    "Store implementation: \"memory\" (in-process, lost on exit; demos and tests)",
                    "or \"redis\" (the server at redis_url).",
                ],
            ),
            key(
                "redis_url",
                &[
                    "Redis server: redis://host:port/db, rediss://… for TLS, or",
                    "redis+unix:///path/to/socket; a Redis Cluster by its seed nodes:",
                    "redis+cluster://host:port,host:port (rediss+cluster:// for TLS).",
                    "Only used when backend = \"redis\".",
                ],
            ),
            key(
                "profile",
                &[
                    "Key-schema profile: \"ward\" (Ward's partitioned layout) or \"mutt\"",
                    "(an existing MUTT deployment's keys).",
                ],
            ),
            key(
                "key_prefix",
                &["Prefix of every Redis key: 1-64 of A-Z a-z 0-9 _ - . :"],
            ),
            key(
                "partitions",
                &[
                    "Number of partitions each queue is split into, 1 to 1024. All workers",
                    "sharing a store must agree on it. On a Redis Cluster each partition is",
                    "one hash slot: use a few per primary so the load spreads over them.",
                ],
            ),
            key(
                "response_timeout_ms",
                &[
                    "How long to wait for a Redis reply, in milliseconds. Keep it above the",
                    "slowest script (a full DLQ replay batch).",
                ],
            ),
            key(
                "connect_timeout_ms",
                &["How long to wait for a Redis connection, in milliseconds."],
            ),
            KeyDoc {
                key: "replica_acks",
                doc: &[
                    "Replicas that must have a new alert before it is accepted (WAIT), 0 to 5.",
                    "Default: unset, meaning 1 on a Redis Cluster and 0 on a single server. Only",
                    "the replicas its primary has connected are waited for. When they do not",
                    "confirm within half of response_timeout_ms the request is refused with 503",
                    "and the sender retries: the alert may arrive twice, never be lost by a",
                    "failover. Example:",
                ],
                example: Some("replica_acks = 1"),
            },
        ],
    },
    SectionDoc {
        name: "queues",
        doc: &["Work queues, leases and retry limits."],
        keys: &[
            key(
                "names",
                &["Queues the pipeline uses: lowercase a-z 0-9 _ -, at most 64 characters each."],
            ),
            key(
                "lease_ms",
                &[
                    "How long a leased envelope stays invisible to other workers before the",
                    "janitor requeues it, in milliseconds. Must be greater than heartbeat_ms.",
                ],
            ),
            key(
                "heartbeat_ms",
                &["How often a worker extends the leases it holds, in milliseconds."],
            ),
            key(
                "janitor_interval_ms",
                &["How often the janitor looks for expired leases, in milliseconds."],
            ),
            key(
                "max_attempts",
                &[
                    "Delivery attempts before an envelope goes to the dead-letter queue (>= 1),",
                    "counting the first: the ceiling of every retry policy. A delivery gives up",
                    "at the lower of this and its policy's max_attempts; a retry policy asking",
                    "for more is a configuration error (the built-in ones are capped).",
                ],
            ),
            key(
                "max_replays",
                &["How many times one envelope may be replayed out of the dead-letter queue."],
            ),
            key(
                "batch_size",
                &["Envelopes leased per store call, 1 to 500."],
            ),
        ],
    },
    SectionDoc {
        name: "dlq",
        doc: &["Dead-letter queue replay limits."],
        keys: &[
            key(
                "replay_batch",
                &["Entries moved per replay call, 1 to 500."],
            ),
            key(
                "replay_rate_per_s",
                &["Most entries replayed per second (>= 1)."],
            ),
        ],
    },
    SectionDoc {
        name: "ingest",
        doc: &[
            "The HTTP endpoint alerts arrive on (`ward up`): POST /v1/alerts, POST /v1/alertmanager.",
        ],
        keys: &[
            key(
                "bind",
                &["Address to listen on. Loopback by default: expose it deliberately."],
            ),
            key(
                "api_keys",
                &[
                    "Accepted keys, sent as X-API-Key or Authorization: Bearer; empty = no auth.",
                    "Each: { name = \"grafana\", key = \"<at least 16 chars>\", tenant = \"acme\" }",
                    "(tenant optional: a bound key may only post for its tenant).",
                ],
            ),
            key(
                "body_limit_bytes",
                &["Largest request body; bigger ones get 413."],
            ),
            key(
                "max_alerts_per_request",
                &["Most alerts in one request (1 to 10000)."],
            ),
            key(
                "rate_limit",
                &[
                    "Per-tenant limit on alerts (GCRA): count per period_ms, bursts up to burst.",
                    "Over it: 429 with Retry-After, RateLimit and RateLimit-Policy headers.",
                    "With N store partitions each keeps its own share: count per N × period_ms,",
                    "bursts up to ceil(burst / N) (a request goes to one partition).",
                ],
            ),
            key(
                "queue_cap",
                &[
                    "503 once the ingest queue holds this many alerts; with N partitions, once",
                    "the request's partition holds ceil(queue_cap / N).",
                ],
            ),
            key(
                "default_tenant",
                &["Tenant of alerts that name none (with a key bound to none)."],
            ),
            key(
                "header_timeout_ms",
                &[
                    "Longest wait for a request's headers, and for the next request on a",
                    "kept-alive connection; a client that takes longer is disconnected.",
                ],
            ),
            key(
                "body_timeout_ms",
                &["Longest wait for a request's body once its headers are in; then 408."],
            ),
            key(
                "max_connections",
                &["Connections open at once; more are closed as they arrive (503 when possible)."],
            ),
            key(
                "max_requests_per_connection",
                &["Requests one kept-alive connection may carry; the last answer closes it."],
            ),
            key(
                "max_labels_per_alert",
                &["Most labels one alert may carry; more is refused with 413."],
            ),
            key(
                "max_annotations_per_alert",
                &["Most annotations one alert may carry; more is refused with 413."],
            ),
            key(
                "max_alert_text_bytes",
                &[
                    "Most bytes of one alert's label and annotation names and values together",
                    "(at least 256); more is refused with 413.",
                ],
            ),
        ],
    },
    SectionDoc {
        name: "workers",
        doc: &["How each worker process runs (`ward up`)."],
        keys: &[
            key("concurrency", &["Deliveries in flight at once per worker."]),
            key(
                "send_timeout_ms",
                &["Longest a backend's send may take before it counts as a timeout."],
            ),
            key(
                "dedup_ttl_ms",
                &[
                    "How long a delivered alert is remembered (from its claim), so a duplicate is not sent again.",
                ],
            ),
            key("idle_poll_ms", &["Pause when a queue is empty."]),
            key(
                "scheduler_interval_ms",
                &["How often due retries move back to their queue."],
            ),
            key(
                "stats_interval_ms",
                &["How often workers read queue figures and operator flags."],
            ),
            key(
                "control_interval_ms",
                &[
                    "How often workers re-read operator controls (flags, shedding thresholds) and",
                    "check queue depths against them; a change announced by the store is read at once.",
                ],
            ),
            key(
                "recheck_ms",
                &["When a channel is stopped or its breaker open, look again after this long."],
            ),
            key(
                "remediation_interval_ms",
                &[
                    "How often DLQ entries of channels whose breaker is closed are replayed",
                    "(with the poison guard: see queues.max_replays); 0 turns remediation off.",
                ],
            ),
            key(
                "remediation_min_age_ms",
                &["Only entries that failed at least this long ago are replayed."],
            ),
            key(
                "remediation_batch",
                &["Entries per store call when remediation replays (at most 500)."],
            ),
            key(
                "remediation_max_per_run",
                &["Entries one remediation run replays at most, per channel."],
            ),
            key(
                "remediation_cooldown_ms",
                &[
                    "After replaying a channel's entries, leave it alone this long; 0 = no cooldown.",
                ],
            ),
            key(
                "automatic_actions_per_hour",
                &["Automatic actions of every kind allowed per hour across every worker."],
            ),
            key(
                "automatic_replays_per_hour",
                &["Automatic replays (one remediation run of one channel) allowed per hour."],
            ),
            key(
                "dry_run",
                &["Automatic actions are planned and audited but change nothing."],
            ),
            key(
                "deliver_on_route",
                &[
                    "The router sends each alert it routes itself, under its lease on the alert:",
                    "only a delivery that must wait (retry, deferral, dead letter) is stored on the",
                    "delivery queue. Off, every delivery is stored there for the delivery workers.",
                ],
            ),
            KeyDoc {
                key: "events_log",
                doc: &[
                    "Append one JSON line per delivery attempt to this file. Default: unset. Example:",
                ],
                example: Some("events_log = \"/var/log/ward/deliveries.jsonl\""),
            },
        ],
    },
    SectionDoc {
        name: "breaker",
        doc: &[
            "Circuit breakers, one per channel, shared by every worker through the store.",
            "Open when the failure rate over the window reaches the threshold (once there are",
            "minimum_calls); half-open after open_wait_ms; closed again after half_open_probes successes.",
        ],
        keys: &[
            key(
                "failure_rate_threshold",
                &["Failures / calls that open the breaker (0 < r <= 1)."],
            ),
            key(
                "minimum_calls",
                &["Below this many calls in the window the rate is unknown and cannot trip."],
            ),
            key("window_ms", &["The sliding window of the failure rate."]),
            key(
                "buckets",
                &["The window's resolution (buckets of window_ms / buckets)."],
            ),
            key(
                "open_wait_ms",
                &["How long the breaker stays open before probing."],
            ),
            key(
                "half_open_probes",
                &["Probes let through while half-open; all must succeed to close."],
            ),
        ],
    },
    SectionDoc {
        name: "routing",
        doc: &[
            "Which channels an alert goes to. An alert's directive (label `directive`: alert, retry,",
            "skip, tune or none; default alert) selects the routes that apply; routes are tried in order",
            "and the first match ends the search unless it has continue = true.",
        ],
        keys: &[
            key(
                "routes",
                &[
                    "Each: { name, labels = { team = \"dba\", service = \"~pg-.*\" } (\"!v\", \"~re\", \"!~re\"),",
                    "also severity = \">=major\", tenant, directives = [\"tune\"], channels = [\"slack-ops\"],",
                    "and recipients = [\"dba\"], recipient_label = \"team\", retry_policy, continue }.",
                ],
            ),
            key(
                "recipients",
                &[
                    "Channel preferences by severity. Each: { name = \"dba\", tiers = [",
                    "{ min_severity = \"critical\", channels = [\"pager\"] }, { min_severity = \"info\", channels = [\"email-dba\"] } ] }.",
                ],
            ),
            key(
                "default_channels",
                &["Channels for deliverable alerts no route matched."],
            ),
            key(
                "default_retry_policy",
                &["Retry policy of routes that name none."],
            ),
        ],
    },
    SectionDoc {
        name: "delivery",
        doc: &["Delivery channels and retry policies."],
        keys: &[
            key(
                "channels",
                &[
                    "Where alerts can go, as [[delivery.channels]] tables, each with a name and a kind:",
                    "kind \"slack\": webhook_url (secret), timeout_ms, connect_timeout_ms;",
                    "kind \"smtp\": host, port, mode (starttls | tls | plain), username, password, from, to, subject;",
                    "kind \"webhook\": url, bearer_token, format (ward | moog); kind \"stdout\" or \"null\".",
                    "A misconfigured channel falls back to stdout under its name, with an error logged once.",
                ],
            ),
            key(
                "retry_policies",
                &[
                    "Named policies beside the built-in \"exponential\" and \"schedule\" (5m,30m,2h,12h,24h). Each:",
                    "{ name, max_attempts (counting the first call), jitter = none|full|equal|decorrelated|\"20%\",",
                    "with backoff = { kind = \"exponential\", base = \"1s\", factor = 2.0, cap = \"5m\" }",
                    "or { kind = \"schedule\", delays = \"5m,30m,2h\" } or { kind = \"fixed\", delay = \"30s\" } }.",
                ],
            ),
        ],
    },
    SectionDoc {
        name: "tui",
        doc: &["The control room (`ward tui`, `ward demo`)."],
        keys: &[
            key(
                "refresh_ms",
                &["How often the control room reads the store, in milliseconds (at least 250)."],
            ),
            key(
                "lock_refresh",
                &["Operators cannot change the refresh interval from the keyboard."],
            ),
            key(
                "timeout_ms",
                &[
                    "Time allowed for one read before it counts as failed, in milliseconds",
                    "(100 to 60000).",
                ],
            ),
            key(
                "stale_after_polls",
                &[
                    "Missed reads after which figures are dimmed (>= 1); after twice as many the",
                    "STALE banner shows.",
                ],
            ),
            key(
                "theme",
                &[
                    "Theme name: a builtin (\"default\", \"dark\", \"light\", \"high-contrast\") or a",
                    "file <config dir>/themes/<name>.toml. A name, not a path: no / or \\.",
                ],
            ),
            key(
                "read_only",
                &[
                    "Refuse every action, in the control room (the header shows READ-ONLY)",
                    "and as headless subcommands (`--write` overrides this for one run).",
                ],
            ),
            key(
                "label",
                &[
                    "The deployment's name in the header, every plan and the audit (empty: the",
                    "key prefix in the header, the server and key prefix in plans and audit).",
                ],
            ),
            key(
                "accent",
                &["The label's colour, e.g. \"red\" for production (empty: the theme's accent)."],
            ),
            key(
                "wall_cycle_s",
                &["Wall display: seconds between views when cycling (0: no cycling)."],
            ),
            key(
                "no_exit_on_ctrl_c",
                &[
                    "ctrl-c does not quit (q and :q still do); useful when ctrl-c is muscle memory",
                    "for \"cancel\".",
                ],
            ),
            key(
                "audit_rows",
                &["Rows of audit history read on each refresh, 1 to 500."],
            ),
            key(
                "bindings",
                &[
                    "Key → command overrides (see `ward keys`), as an inline table such as",
                    "{ \"ctrl-x\" = \"quit\" } or a [tui.bindings] table. A command keeps its default",
                    "keys; a key another command has is an error unless that command is given a",
                    "key here too (then the key moves).",
                ],
            ),
        ],
    },
    SectionDoc {
        name: "slo",
        doc: &[
            "Service level objectives: shown in the control room, served at /api/v1/slo, written",
            "as Prometheus rules by `ward slo rules`.",
        ],
        keys: &[
            key(
                "prometheus_url",
                &[
                    "Prometheus HTTP API to read SLO figures from, e.g. \"http://127.0.0.1:9090\"",
                    "(empty: this process's own counters, whole only for `ward demo` and a single `ward up`).",
                ],
            ),
            key(
                "api_url",
                &[
                    "`ward up`'s HTTP address, e.g. \"http://10.0.0.7:8080\": without prometheus_url,",
                    "`ward tui` and `ward status` read the figures it serves at /api/v1/slo/section",
                    "(empty: ingest.bind on this host).",
                ],
            ),
            key(
                "timeout_ms",
                &["Time allowed for one Prometheus query, in milliseconds (100 to 60000)."],
            ),
            key(
                "builtin",
                &[
                    "Ward's own SLOs: ingest-success (99.9 %), delivery-success-<backend> for each",
                    "backend in use (99 %) and delivery-latency (99 % within 2.5 s), over 30 days.",
                ],
            ),
            KeyDoc {
                key: "objectives",
                doc: &[
                    "Your objectives (one of the same name replaces a builtin). Each: { name, description,",
                    "target (a fraction below 1: 0.999 is 99.9 %), period = \"30d\" | \"28d\", sli }, where sli is",
                    "{ kind = \"availability\", total = '<selector>', errors = '<selector>' (or good = …) }",
                    "or { kind = \"latency\", histogram = '<name{labels}>', threshold_s = <a bucket bound> }.",
                    "Selectors are PromQL: metric{label=\"value\", other=~\"a|b\"}.",
                ],
                example: Some(
                    "objectives = [{ name = \"checkout\", target = 0.995, sli = { kind = \"availability\", total = 'ward_deliveries_total{channel=\"checkout\"}', errors = 'ward_deliveries_total{channel=\"checkout\",outcome=\"dead_lettered\"}' } }]",
                ),
            },
        ],
    },
    SectionDoc {
        name: "alerting",
        doc: &[
            "Noise control: the rules new silences follow, inhibition, and maintenance windows.",
            "Silences themselves are created at run time (ward silence add, the control room's S,",
            "or Alertmanager's API v2 on ward up) and shared by every worker through the store.",
        ],
        keys: &[
            key(
                "silences",
                &[
                    "max_duration_h: the longest silence an operator may create (default 7 days);",
                    "min_comment_chars: the shortest comment (a silence says why); comment_pattern:",
                    "a regex the comment must contain, e.g. a ticket reference '[A-Z]+-[0-9]+'.",
                ],
            ),
            KeyDoc {
                key: "inhibit_rules",
                doc: &[
                    "Alertmanager's inhibit_rules: while an alert matching source_matchers fires, alerts",
                    "matching target_matchers that agree with it on every `equal` label are held back",
                    "(an alert never inhibits itself). Matchers use Alertmanager's syntax.",
                ],
                example: Some(
                    "inhibit_rules = [{ name = \"node-down\", source_matchers = ['alertname=\"NodeDown\"', 'severity=\"critical\"'], target_matchers = ['severity=\"warning\"'], equal = [\"instance\"] }]",
                ),
            },
            KeyDoc {
                key: "maintenance",
                doc: &[
                    "Recurring windows of planned work: while one is open, matching alerts are held",
                    "back (counted as muted). `every` is weekdays, a time range and an IANA zone; or",
                    "give Alertmanager's time_intervals (times, weekdays, days_of_month, months, years,",
                    "location). The control room lists each with its current or next opening.",
                ],
                example: Some(
                    "maintenance = [{ name = \"db-patching\", every = \"Sun 02:00-04:00 Europe/Berlin\", matchers = ['cluster=\"db\"'], comment = \"weekly kernel updates\" }]",
                ),
            },
        ],
    },
    SectionDoc {
        name: "mutt",
        doc: &[
            "An existing MUTT deployment, attached with --profile mutt (store.profile = \"mutt\").",
            "Each MUTT key is named here as MUTT v2.5 names it; change one only if the deployment",
            "renamed it through MUTT's own environment variables.",
        ],
        keys: &[
            key(
                "ingest_queue",
                &["The ingestor's queue (MUTT's INGEST_QUEUE_NAME)."],
            ),
            key(
                "alert_queue",
                &["The alerter's output queue (ALERT_QUEUE_NAME)."],
            ),
            key(
                "alerter_dlq",
                &["The alerter's DLQ (ALERTER_DLQ_NAME); replays go to ingest_queue."],
            ),
            key(
                "moog_dlq",
                &["The forwarder's DLQ (MOOG_DLQ_NAME); replays go to alert_queue."],
            ),
            key(
                "dead_letter_queue",
                &["The terminal dead list (DEAD_LETTER_QUEUE)."],
            ),
            key(
                "alerter_processing_prefix",
                &["Prefix of the alerter pods' processing lists (<prefix><pod>)."],
            ),
            key(
                "moog_processing_prefix",
                &["Prefix of the forwarder pods' processing lists (<prefix><pod>)."],
            ),
            key(
                "heartbeat_prefix",
                &["Prefix of pod heartbeats (<prefix><service>:<pod> or <prefix><pod>)."],
            ),
            key(
                "breaker_prefix",
                &["Prefix of circuit breaker keys (<prefix><name>:state|failures|open_time)."],
            ),
            key(
                "breakers",
                &["Breakers listed even before MUTT first writes them."],
            ),
            key(
                "breaker_timeout_s",
                &["MUTT's CIRCUIT_BREAKER_TIMEOUT: seconds from open_time to half-open."],
            ),
            key(
                "config_prefix",
                &["Prefix of dynamic config keys (<prefix><setting>)."],
            ),
            key(
                "config_channel",
                &["Pub/sub channel announcing config changes."],
            ),
            key(
                "metrics_prefix",
                &["Prefix of the ingestor's per-minute, hour and day counters."],
            ),
            key(
                "audit_prefix",
                &[
                    "Where Ward audits its actions on MUTT: the stream <prefix>log, the only key",
                    "Ward ever writes outside MUTT's own lists and settings. Must not be in MUTT's",
                    "namespace.",
                ],
            ),
            key(
                "alerter_max_retries",
                &["MUTT's ALERTER_MAX_RETRIES (an event over it is dead-lettered)."],
            ),
            key(
                "moog_max_retries",
                &["MUTT's MOOG_MAX_RETRIES (an alert over it is dead-lettered)."],
            ),
        ],
    },
    SectionDoc {
        name: "log",
        doc: &["Diagnostics."],
        keys: &[
            key(
                "level",
                &[
                    "Level (trace, debug, info, warn, error, off) or tracing directives such as",
                    "\"info,ward::store=debug\". RUST_LOG, when set, takes precedence.",
                ],
            ),
            key(
                "format",
                &["Log line format: \"text\" or \"json\" (one object per line)."],
            ),
            KeyDoc {
                key: "file",
                doc: &[
                    "Append logs to this file instead of writing them to stderr.",
                    "Default: unset (stderr). Example:",
                ],
                example: Some("file = \"/var/log/ward/ward.log\""),
            },
        ],
    },
];

const HEADER: &[&str] = &[
    "Ward configuration file (TOML), generated by `ward print-config-template`.",
    "",
    "Every setting is optional. Each key line below is commented out and shows the built-in",
    "default; uncomment it together with its section header to change it.",
    "Precedence: command-line flag > WARD_* environment variable > this file > default.",
    "Ward looks for this file at $WARD_CONFIG (or --config), else",
    "$XDG_CONFIG_HOME/ward/config.toml, else $HOME/.config/ward/config.toml;",
    "`ward config path` shows which one applies.",
];

/// The template text.
pub fn render() -> String {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let mut out = String::new();
    for line in HEADER {
        push_comment(&mut out, line);
    }
    for section in SECTIONS {
        out.push('\n');
        for line in section.doc {
            push_comment(&mut out, line);
        }
        let _ = writeln!(out, "# [{}]", section.name);
        let values = defaults.get(section.name).and_then(toml::Value::as_table);
        for key in section.keys {
            out.push('\n');
            for line in key.doc {
                push_comment(&mut out, line);
            }
            let dotted = format!("{}.{}", section.name, key.key);
            if let Some(spec) = OVERRIDE_SPECS.iter().find(|s| s.key == dotted) {
                let _ = writeln!(
                    out,
                    "# Override: flag {}, environment {}.",
                    spec.flag, spec.env
                );
            }
            match values.and_then(|t| t.get(key.key)) {
                Some(value) => {
                    let _ = writeln!(out, "# {} = {value}", key.key);
                }
                None => {
                    if let Some(example) = key.example {
                        let _ = writeln!(out, "#   {example}");
                    }
                }
            }
        }
    }
    out
}

fn push_comment(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        let _ = writeln!(out, "# {line}");
    }
}
