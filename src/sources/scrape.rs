//! Reading a `/metrics` endpoint in the Prometheus text format. The parsing is `prometheus-parse`'s
//! and stays in this module: its known defects are pinned by the contract tests below, so a later
//! hand-written tokenizer is a drop-in change that the tests notice.

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};
use reqwest::Url;
use reqwest::header::ACCEPT;

use super::prometheus::{BodyError, one_line, read_bounded, root_cause, shown_url};

/// A `/metrics` body larger than this is refused rather than buffered.
pub const MAX_EXPOSITION_BYTES: usize = 16 * 1024 * 1024;
/// Server error text quoted in a message is cut to this many characters.
const MAX_DETAIL_CHARS: usize = 200;

/// One sample under its exposition name (`x_bucket` with `le`, `x_sum`, `x_count`, or a summary's
/// `x` with `quantile`), as the text format itself writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Why a scrape gave no samples; `Display` is one line meant for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The URL cannot be used.
    #[error("invalid metrics URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// No connection, or the connection broke before the body arrived.
    #[error("cannot scrape {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The client's timeout passed before the whole body arrived.
    #[error("{url} did not answer in time")]
    Timeout { url: String },
    /// A non-2xx status.
    #[error("{url} answered HTTP {status}: {detail}")]
    Http {
        url: String,
        status: u16,
        detail: String,
    },
    /// The body passed [`MAX_EXPOSITION_BYTES`].
    #[error("{url} sent more than {limit_mib} MiB of metrics")]
    TooLarge { url: String, limit_mib: usize },
    /// The body is not UTF-8 (protobuf, compressed, binary).
    #[error("{url} did not send UTF-8 text: is it a Prometheus /metrics endpoint?")]
    NotText { url: String },
    /// The text has sample-like lines but none of them parsed (HTML, JSON, a wrong endpoint).
    #[error(
        "not the Prometheus text format (first line: {first_line:?}): is this a /metrics endpoint?"
    )]
    NotExposition { first_line: String },
}

/// Every sample of a text-format exposition. Lines the parser cannot read are skipped (see the
/// contract tests); a body in which no line at all reads is an error, not an empty scrape.
pub fn parse_exposition(text: &str) -> Result<Vec<ScrapedSample>, ScrapeError> {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    // The lines never fail to read, so neither does the parse.
    let parsed = Scrape::parse(lines).map_err(|_| ScrapeError::NotExposition {
        first_line: String::new(),
    })?;
    let mut samples = Vec::with_capacity(parsed.samples.len());
    for sample in parsed.samples {
        let labels: BTreeMap<String, String> = sample.labels.iter().map(clone_pair).collect();
        match sample.value {
            Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => {
                samples.push(ScrapedSample {
                    name: sample.metric,
                    labels,
                    value,
                });
            }
            Value::Histogram(buckets) => {
                let name = format!("{}_bucket", sample.metric);
                samples.extend(buckets.into_iter().map(|bucket| ScrapedSample {
                    name: name.clone(),
                    labels: with_label(&labels, "le", bucket.less_than),
                    value: bucket.count,
                }));
            }
            Value::Summary(quantiles) => {
                samples.extend(quantiles.into_iter().map(|quantile| ScrapedSample {
                    name: sample.metric.clone(),
                    labels: with_label(&labels, "quantile", quantile.quantile),
                    value: quantile.count,
                }));
            }
        }
    }
    if samples.is_empty()
        && let Some(first_line) = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
    {
        return Err(ScrapeError::NotExposition {
            first_line: one_line(first_line, 80),
        });
    }
    Ok(samples)
}

/// GETs `url` with `client` (whose timeouts bound the call) and parses the body.
pub async fn scrape(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<ScrapedSample>, ScrapeError> {
    let parsed = Url::parse(url.trim()).map_err(|err| ScrapeError::InvalidUrl {
        url: one_line(url, 80),
        reason: err.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ScrapeError::InvalidUrl {
            url: shown_url(&parsed),
            reason: "use http:// or https://".to_owned(),
        });
    }
    let shown = shown_url(&parsed);
    let response = client
        .get(parsed)
        .header(ACCEPT, "text/plain;version=0.0.4;q=1,*/*;q=0.1")
        .send()
        .await
        .map_err(|err| transport_error(&err, &shown))?;
    let status = response.status();
    let body = read_bounded(response, MAX_EXPOSITION_BYTES)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => ScrapeError::TooLarge {
                url: shown.clone(),
                limit_mib: MAX_EXPOSITION_BYTES / (1024 * 1024),
            },
            BodyError::Transport(err) => transport_error(&err, &shown),
        })?;
    if !status.is_success() {
        let text = one_line(&String::from_utf8_lossy(&body), MAX_DETAIL_CHARS);
        let reason = status.canonical_reason().unwrap_or("no reason given");
        return Err(ScrapeError::Http {
            url: shown,
            status: status.as_u16(),
            detail: if text.is_empty() {
                reason.to_owned()
            } else {
                format!("{reason}: {text}")
            },
        });
    }
    let text = String::from_utf8(body).map_err(|_| ScrapeError::NotText { url: shown })?;
    parse_exposition(&text)
}

/// The sum of the samples named `name` whose labels pass `keep`; `None` when none did (an absent
/// series is unknown, not zero).
pub fn sum(
    samples: &[ScrapedSample],
    name: &str,
    keep: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Option<f64> {
    samples
        .iter()
        .filter(|sample| sample.name == name && keep(&sample.labels))
        .fold(None, |total, sample| {
            Some(total.unwrap_or(0.0) + sample.value)
        })
}

fn transport_error(err: &reqwest::Error, shown: &str) -> ScrapeError {
    if err.is_timeout() {
        ScrapeError::Timeout {
            url: shown.to_owned(),
        }
    } else {
        ScrapeError::Unreachable {
            url: shown.to_owned(),
            reason: root_cause(err),
        }
    }
}

fn clone_pair((key, value): (&String, &String)) -> (String, String) {
    (key.clone(), value.clone())
}

/// `labels` plus `key` set to `bound` as the text format writes it (`+Inf`, `0.5`, `1`).
fn with_label(
    labels: &BTreeMap<String, String>,
    key: &str,
    bound: f64,
) -> BTreeMap<String, String> {
    let mut labels = labels.clone();
    labels.insert(key.to_owned(), format_bound(bound));
    labels
}

/// A bucket or quantile bound as text. The parser keeps only the float, so the original spelling
/// (`1.0` or `1`, `1e+06`) is lost; this is the shortest form that reads back to the same float.
fn format_bound(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_owned()
    } else if bound == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if bound.is_nan() {
        "NaN".to_owned()
    } else {
        bound.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;

    fn parse(text: &str) -> Vec<ScrapedSample> {
        parse_exposition(text).unwrap()
    }

    /// What prometheus-parse itself makes of `text`, before this module's corrections.
    fn raw(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    /// The raw value prometheus-parse gives the sample named `metric`.
    fn raw_value(parsed: &Scrape, metric: &str) -> Option<Value> {
        parsed
            .samples
            .iter()
            .find(|s| s.metric == metric)
            .map(|s| s.value.clone())
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn named<'a>(samples: &'a [ScrapedSample], name: &str) -> Vec<&'a ScrapedSample> {
        samples.iter().filter(|s| s.name == name).collect()
    }

    fn all(_: &BTreeMap<String, String>) -> bool {
        true
    }

    // ---- normal cases ----

    #[test]
    fn counters_and_gauges_read_with_their_labels() {
        let text = "# HELP ward_jobs_total Jobs.\n\
                    # TYPE ward_jobs_total counter\n\
                    ward_jobs_total{queue=\"ingest\",outcome=\"ok\"} 41\n\
                    ward_jobs_total{queue=\"ingest\",outcome=\"failed\"} 1\n\
                    # TYPE ward_depth gauge\n\
                    ward_depth{queue=\"ingest\"} -3.5\n\
                    ward_depth{queue=\"mail\"} NaN\n\
                    ward_up 1\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 5);
        assert_eq!(
            named(&samples, "ward_jobs_total")[0],
            &ScrapedSample {
                name: "ward_jobs_total".to_owned(),
                labels: labels(&[("queue", "ingest"), ("outcome", "ok")]),
                value: 41.0,
            }
        );
        assert_eq!(sum(&samples, "ward_jobs_total", all), Some(42.0));
        assert_eq!(
            sum(&samples, "ward_jobs_total", |l| l
                .get("outcome")
                .is_some_and(|o| o == "failed")),
            Some(1.0)
        );
        assert_eq!(
            sum(&samples, "ward_depth", |l| l["queue"] == "ingest"),
            Some(-3.5)
        );
        assert!(sum(&samples, "ward_depth", all).unwrap().is_nan());
        assert_eq!(sum(&samples, "ward_up", BTreeMap::is_empty), Some(1.0));
    }

    #[test]
    fn special_values_parse() {
        let samples = parse("a +Inf\nb -Inf\nc NaN\nd 1e3\ne -0.5\n");
        let value = |name: &str| named(&samples, name)[0].value;
        assert!(value("a").is_infinite() && value("a") > 0.0);
        assert!(value("b").is_infinite() && value("b") < 0.0);
        assert!(value("c").is_nan());
        assert!((value("d") - 1000.0).abs() < f64::EPSILON);
        assert!((value("e") + 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn absent_is_not_zero() {
        let samples = parse("ward_jobs_total{queue=\"a\"} 0\n");
        assert_eq!(sum(&samples, "ward_jobs_total", all), Some(0.0));
        assert_eq!(sum(&samples, "ward_missing_total", all), None);
        assert_eq!(
            sum(&samples, "ward_jobs_total", |l| l["queue"] == "b"),
            None
        );
        assert_eq!(sum(&[], "ward_jobs_total", all), None);
    }

    #[test]
    fn a_hand_written_histogram_flattens_to_exposition_names() {
        let text = "# TYPE lat histogram\n\
                    lat_bucket{route=\"/a\",le=\"0.5\"} 2\n\
                    lat_bucket{route=\"/a\",le=\"1\"} 3\n\
                    lat_bucket{route=\"/a\",le=\"+Inf\"} 4\n\
                    lat_sum{route=\"/a\"} 5.25\n\
                    lat_count{route=\"/a\"} 4\n";
        let samples = parse(text);
        let buckets = named(&samples, "lat_bucket");
        assert_eq!(buckets.len(), 3);
        let bucket = |le: &str| {
            sum(&samples, "lat_bucket", |l| {
                l["le"] == le && l["route"] == "/a"
            })
        };
        assert_eq!(bucket("0.5"), Some(2.0));
        assert_eq!(bucket("1"), Some(3.0));
        assert_eq!(bucket("+Inf"), Some(4.0));
        assert_eq!(sum(&samples, "lat_sum", all), Some(5.25));
        assert_eq!(sum(&samples, "lat_count", all), Some(4.0));
        assert!(named(&samples, "lat").is_empty());
    }

    #[test]
    fn a_summary_flattens_to_quantile_samples() {
        let text = "# TYPE rpc summary\n\
                    rpc{quantile=\"0.5\"} 0.01\n\
                    rpc{quantile=\"0.99\"} 0.2\n\
                    rpc_sum 12\n\
                    rpc_count 300\n";
        let samples = parse(text);
        assert_eq!(sum(&samples, "rpc", |l| l["quantile"] == "0.99"), Some(0.2));
        assert_eq!(sum(&samples, "rpc", |l| l["quantile"] == "0.5"), Some(0.01));
        assert_eq!(sum(&samples, "rpc_sum", all), Some(12.0));
        assert_eq!(sum(&samples, "rpc_count", all), Some(300.0));
    }

    #[test]
    fn prometheus_client_output_round_trips() {
        let mut registry = Registry::default();
        let jobs = Family::<Vec<(String, String)>, Counter>::default();
        registry.register("ward_jobs", "Jobs processed.", jobs.clone());
        let latency = Histogram::new([0.1, 0.5, 1.0]);
        registry.register("ward_latency_seconds", "Latency.", latency.clone());
        jobs.get_or_create(&vec![("queue".to_owned(), "ingest".to_owned())])
            .inc_by(7);
        jobs.get_or_create(&vec![("queue".to_owned(), "mail".to_owned())])
            .inc_by(3);
        for seconds in [0.05, 0.2, 0.3, 0.7, 2.0] {
            latency.observe(seconds);
        }
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();

        let samples = parse(&text);
        // prometheus-client writes `# TYPE ward_jobs counter` over `ward_jobs_total` samples.
        assert_eq!(sum(&samples, "ward_jobs_total", all), Some(10.0));
        assert_eq!(
            sum(&samples, "ward_jobs_total", |l| l["queue"] == "mail"),
            Some(3.0)
        );
        let bucket = |le: &str| sum(&samples, "ward_latency_seconds_bucket", |l| l["le"] == le);
        assert_eq!(bucket("0.1"), Some(1.0), "{text}");
        assert_eq!(bucket("0.5"), Some(3.0), "{text}");
        assert_eq!(bucket("1"), Some(4.0), "{text}");
        assert_eq!(bucket("+Inf"), Some(5.0), "{text}");
        let total = sum(&samples, "ward_latency_seconds_sum", all).unwrap();
        assert!((total - 3.25).abs() < 1e-9, "{total}");
        assert_eq!(sum(&samples, "ward_latency_seconds_count", all), Some(5.0));
    }

    #[test]
    fn text_that_is_not_an_exposition_is_refused() {
        for body in ["<html><body>login</body></html>", "{\"status\":\"ok\"}"] {
            let err = parse_exposition(body).unwrap_err();
            assert!(
                matches!(err, ScrapeError::NotExposition { .. }),
                "{body}: {err:?}"
            );
        }
        // Nothing but comments, or nothing at all, is an empty scrape.
        assert!(parse("").is_empty());
        assert!(parse("# HELP x y\n# TYPE x counter\n# EOF\n").is_empty());
    }

    // ---- contract: prometheus-parse 0.2.5's known defects, as measured ----

    #[test]
    fn contract_a_comma_inside_a_label_value_truncates_it() {
        let samples = parse("q{queue=\"a,b\"} 1\n");
        assert_eq!(samples[0].labels, labels(&[("queue", "a")]));
    }

    #[test]
    fn contract_an_equals_sign_inside_a_label_value_drops_the_label() {
        // The sample survives without labels: it collides with the unlabelled series.
        let samples = parse("q{queue=\"x=y\"} 1\nq 2\n");
        assert_eq!(samples.len(), 2);
        assert!(samples.iter().all(|s| s.labels.is_empty()));
        assert_eq!(sum(&samples, "q", BTreeMap::is_empty), Some(3.0));
    }

    #[test]
    fn contract_escaped_quotes_stay_escaped() {
        let samples = parse("q{queue=\"a\\\"b\"} 1\n");
        assert_eq!(samples[0].labels["queue"], "a\\\"b");
        // Measured beyond the brief: quotes are trimmed from both ends, so an escaped quote at
        // the end of a value loses its quote and keeps the backslash.
        let samples = parse("q{queue=\"say \\\"hi\\\"\"} 1\n");
        assert_eq!(samples[0].labels["queue"], "say \\\"hi\\");
    }

    #[test]
    fn contract_a_closing_brace_inside_a_label_value_drops_the_sample() {
        let samples = parse("q{queue=\"brace}\"} 1\nq{queue=\"fine\"} 2\n");
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].labels["queue"], "fine");
    }

    #[test]
    fn contract_empty_braces_drop_the_sample() {
        let samples = parse("q{} 1\nr 2\n");
        assert!(named(&samples, "q").is_empty());
        assert_eq!(sum(&samples, "r", all), Some(2.0));
    }

    #[test]
    fn contract_colon_names_are_missing() {
        let text = "# TYPE slo:burn_rate:ratio_rate5m gauge\n\
                    slo:burn_rate:ratio_rate5m{slo=\"ingest\"} 0.5\n\
                    ward_up 1\n";
        let samples = parse(text);
        assert_eq!(sum(&samples, "slo:burn_rate:ratio_rate5m", all), None);
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].name, "ward_up");
    }

    #[test]
    fn contract_a_space_after_a_comma_stays_in_the_label_name() {
        let samples = parse("q{a=\"1\", b=\"2\"} 1\n");
        assert_eq!(samples[0].labels, labels(&[("a", "1"), (" b", "2")]));
    }

    #[test]
    fn contract_sum_and_count_are_separate_untyped_samples() {
        // They are returned under their own names whatever the family's TYPE says; a type-aware
        // parser must keep returning them as `x_sum` / `x_count` samples.
        let text = "# TYPE h histogram\n\
                    h_bucket{le=\"+Inf\"} 2\n\
                    h_sum 3\n\
                    h_count 2\n";
        let parsed = raw(text);
        let value_of = |metric: &str| raw_value(&parsed, metric);
        assert_eq!(value_of("h_sum"), Some(Value::Untyped(3.0)));
        assert_eq!(value_of("h_count"), Some(Value::Untyped(2.0)));
        assert!(matches!(value_of("h"), Some(Value::Histogram(_))));
        let samples = parse(text);
        assert_eq!(sum(&samples, "h_sum", all), Some(3.0));
        assert_eq!(sum(&samples, "h_count", all), Some(2.0));
    }

    #[test]
    fn contract_total_counters_typed_under_the_family_name_come_back_untyped() {
        // OpenMetrics (and prometheus-client) type the family `events` and name the sample
        // `events_total`: the parser does not connect the two.
        let text =
            "# TYPE events counter\nevents_total 4\n# TYPE jobs_total counter\njobs_total 5\n";
        let parsed = raw(text);
        let value_of = |metric: &str| raw_value(&parsed, metric);
        assert_eq!(value_of("events_total"), Some(Value::Untyped(4.0)));
        assert_eq!(value_of("jobs_total"), Some(Value::Counter(5.0)));
        // Either way the value reads the same through this module.
        let samples = parse(text);
        assert_eq!(sum(&samples, "events_total", all), Some(4.0));
        assert_eq!(sum(&samples, "jobs_total", all), Some(5.0));
    }

    #[test]
    fn contract_eof_exemplars_and_float_timestamps_are_ignored() {
        let text = "# TYPE e counter\n\
                    e_total{q=\"a\"} 3 # {trace_id=\"abc\"} 1.0 1700000000.5\n\
                    f 2 1700000000.250\n\
                    g 1 1700000000000\n\
                    # EOF\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(sum(&samples, "e_total", all), Some(3.0));
        assert_eq!(sum(&samples, "f", all), Some(2.0));
        assert_eq!(sum(&samples, "g", all), Some(1.0));
        assert!(samples.iter().all(|s| !s.labels.contains_key("trace_id")));
    }

    #[test]
    fn contract_labels_come_unordered_and_this_module_orders_them() {
        let text = "q{z=\"1\",a=\"2\",m=\"3\",b=\"4\",y=\"5\",c=\"6\"} 1\n";
        let parsed = raw(text);
        // A HashMap underneath: only lookups are promised, not order.
        let raw: &std::collections::HashMap<String, String> = &parsed.samples[0].labels;
        assert_eq!(raw.len(), 6);
        let keys: Vec<_> = parse(text)[0].labels.keys().cloned().collect();
        assert_eq!(keys, ["a", "b", "c", "m", "y", "z"]);
    }

    #[test]
    fn contract_histogram_buckets_missing_le_are_dropped() {
        let text = "# TYPE h histogram\nh_bucket{route=\"/a\"} 2\nh_sum 1\n";
        let samples = parse(text);
        assert!(named(&samples, "h_bucket").is_empty());
        assert_eq!(sum(&samples, "h_sum", all), Some(1.0));
    }

    #[test]
    fn bounds_are_written_the_way_they_read_back() {
        assert_eq!(format_bound(f64::INFINITY), "+Inf");
        assert_eq!(format_bound(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_bound(f64::NAN), "NaN");
        assert_eq!(format_bound(1.0), "1");
        assert_eq!(format_bound(0.005), "0.005");
        assert_eq!(format_bound(1e6), "1000000");
    }

    // ---- scrape over HTTP ----

    /// Serves `/metrics` with `status` and `body` on a free loopback port.
    async fn metrics_server(status: u16, body: String) -> (String, tokio::task::JoinHandle<()>) {
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || async move { (status, body) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, server)
    }

    fn http_client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn scrape_reads_a_metrics_endpoint() {
        let (url, server) = metrics_server(
            200,
            "# TYPE jobs_total counter\njobs_total{q=\"a\"} 9\n".into(),
        )
        .await;
        let samples = scrape(&http_client(), &url).await.unwrap();
        server.abort();
        assert_eq!(sum(&samples, "jobs_total", |l| l["q"] == "a"), Some(9.0));
    }

    #[tokio::test]
    async fn scrape_failures_are_named() {
        let client = http_client();
        let (url, server) = metrics_server(503, "overloaded".into()).await;
        let err = scrape(&client, &url).await.unwrap_err();
        assert!(
            matches!(&err, ScrapeError::Http { status: 503, detail, .. } if detail.contains("overloaded")),
            "{err:?}"
        );
        server.abort();

        let (url, server) = metrics_server(200, "x".repeat(MAX_EXPOSITION_BYTES + 1)).await;
        let err = scrape(&client, &url).await.unwrap_err();
        assert!(matches!(err, ScrapeError::TooLarge { .. }), "{err:?}");
        server.abort();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = scrape(
            &client,
            &format!("http://user:hunter2@127.0.0.1:{port}/metrics"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ScrapeError::Unreachable { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        for bad in ["not a url", "ftp://h/metrics"] {
            let err = scrape(&client, bad).await.unwrap_err();
            assert!(
                matches!(err, ScrapeError::InvalidUrl { .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
