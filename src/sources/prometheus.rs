//! A client of the Prometheus HTTP API for the SLO views: instant and range queries sent as form
//! POSTs (long PromQL never hits URL limits), answers decoded into plain samples and series, and
//! every failure turned into one line an operator can act on (the SLO widget shows it as is).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Connecting gives up after this long even when the request timeout is longer: a host that
/// does not answer a SYN in 3 s is down, not slow.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Answers are read up to this size; a query returning more is refused, not buffered.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Prometheus refuses range queries of more than 11,000 points per series.
const MAX_POINTS_PER_SERIES: f64 = 11_000.0;
/// Step floor when the scrape interval is unknown (zero, negative or not a number).
const DEFAULT_STEP_FLOOR_S: f64 = 1.0;
/// Prometheus timestamps have millisecond resolution: a smaller step would round to zero.
const MIN_STEP_S: f64 = 0.001;
/// Error text quoted from a server is cut to this many characters.
const MAX_DETAIL_CHARS: usize = 300;

/// Why a query gave no numbers; `Display` is one line meant for the operator.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// The configured base URL cannot be used.
    #[error("invalid Prometheus URL: {0}")]
    InvalidUrl(String),
    /// No connection could be made (refused, DNS, TLS, no route).
    #[error("Prometheus unreachable: {0}")]
    Unreachable(String),
    /// Connected, but the whole answer did not arrive in time.
    #[error("Prometheus did not answer within {ms} ms: raise the timeout or simplify the query")]
    Timeout { ms: u64 },
    /// A non-2xx status, with Prometheus's `errorType: error` when it sent one.
    #[error("Prometheus answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// A 2xx answer whose `status` is `error`.
    #[error("Prometheus refused the query ({kind}): {message}")]
    Api { kind: String, message: String },
    /// The answer is not the JSON the API documents.
    #[error("unreadable answer from Prometheus: {0}")]
    Decode(String),
    /// Well-formed, but not something the caller can use (a matrix from an instant query…).
    #[error("unexpected answer from Prometheus: {0}")]
    Unexpected(String),
}

/// One series of an instant query (or the single value of a scalar expression).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub timestamp_s: f64,
    pub value: f64,
}

/// One series of a range query: `(timestamp_s, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

/// A Prometheus server's query API, with one timeout bounding every call end to end.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    query_url: Url,
    query_range_url: Url,
    /// The base URL without credentials or query, for messages.
    shown_url: String,
    timeout: Duration,
    connect_timeout: Duration,
}

impl PrometheusClient {
    /// A client of the server at `base_url` (its root, possibly under a path prefix).
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, PromError> {
        let base = parse_base_url(base_url)?;
        let connect_timeout = timeout.min(MAX_CONNECT_TIMEOUT);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .user_agent(concat!("ward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| PromError::Unexpected(format!("cannot build an HTTP client: {err}")))?;
        Ok(Self {
            http,
            query_url: endpoint(&base, "api/v1/query")?,
            query_range_url: endpoint(&base, "api/v1/query_range")?,
            shown_url: shown_url(&base),
            timeout,
            connect_timeout,
        })
    }

    /// The base URL as messages show it (no credentials).
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Evaluates `promql` now: one sample per series of a vector, one unlabelled sample for a
    /// scalar.
    pub async fn query(&self, promql: &str) -> Result<Vec<Sample>, PromError> {
        let body = self.post(&self.query_url, &[("query", promql)]).await?;
        decode_instant(&body)
    }

    /// Evaluates `promql` at every `step_s` from `start_s` to `end_s` (Unix seconds).
    pub async fn query_range(
        &self,
        promql: &str,
        start_s: f64,
        end_s: f64,
        step_s: f64,
    ) -> Result<Vec<Series>, PromError> {
        let (start, end, step) = (start_s.to_string(), end_s.to_string(), step_s.to_string());
        let form = [
            ("query", promql),
            ("start", &start),
            ("end", &end),
            ("step", &step),
        ];
        let body = self.post(&self.query_range_url, &form).await?;
        decode_range(&body)
    }

    /// POSTs `form` to `url` and returns the body of a 2xx answer.
    async fn post(&self, url: &Url, form: &[(&str, &str)]) -> Result<Vec<u8>, PromError> {
        let response = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form_body(url, form))
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let body = read_bounded(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|err| match err {
                BodyError::TooLarge => PromError::Unexpected(format!(
                    "the answer is larger than {} MiB: narrow the query or raise the step",
                    MAX_RESPONSE_BYTES / (1024 * 1024)
                )),
                BodyError::Transport(err) => self.transport_error(&err),
            })?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(http_error(status, &body, &self.shown_url))
        }
    }

    fn transport_error(&self, err: &reqwest::Error) -> PromError {
        let cause = root_cause(err);
        if err.is_connect() && err.is_timeout() {
            PromError::Unreachable(format!(
                "no connection to {} within {} ms: check the host and any firewall",
                self.shown_url,
                self.connect_timeout.as_millis()
            ))
        } else if err.is_timeout() {
            PromError::Timeout {
                ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        } else if err.is_connect() {
            PromError::Unreachable(format!(
                "cannot connect to {} ({cause}): check the URL and that Prometheus is running",
                self.shown_url
            ))
        } else {
            PromError::Unreachable(format!(
                "connection to {} failed mid-request ({cause})",
                self.shown_url
            ))
        }
    }
}

/// `range_s / columns` (one point per drawn column), never finer than the scrape interval
/// (finer steps only repeat samples), never more than Prometheus's 11,000 points, never zero.
pub fn range_step(range_s: f64, columns: u16, scrape_interval_s: f64) -> f64 {
    let range = if range_s.is_finite() && range_s > 0.0 {
        range_s
    } else {
        0.0
    };
    let floor = if scrape_interval_s.is_finite() && scrape_interval_s > 0.0 {
        scrape_interval_s
    } else {
        DEFAULT_STEP_FLOOR_S
    };
    let per_column = range / f64::from(columns.max(1));
    per_column
        .max(range / MAX_POINTS_PER_SERIES)
        .max(floor)
        .max(MIN_STEP_S)
}

fn parse_base_url(raw: &str) -> Result<Url, PromError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(PromError::InvalidUrl(
            "empty: expected e.g. http://localhost:9090".to_owned(),
        ));
    }
    let mut url = Url::parse(raw).map_err(|err| {
        PromError::InvalidUrl(format!(
            "{raw:?} ({err}): expected e.g. http://localhost:9090"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PromError::InvalidUrl(format!(
            "scheme {:?} is not supported: use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(PromError::InvalidUrl(format!("{raw:?} has no host")));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// `base` + `path`, keeping any path prefix of `base` (`http://h/prom` → `http://h/prom/api/…`).
fn endpoint(base: &Url, path: &str) -> Result<Url, PromError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let with_slash = format!("{}/", base.path());
        base.set_path(&with_slash);
    }
    base.join(path)
        .map_err(|err| PromError::InvalidUrl(format!("cannot append {path}: {err}")))
}

/// A URL for messages: scheme, host, port and path; never credentials or a query.
pub(super) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both only fail on URLs that cannot have credentials, which is fine to ignore.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `application/x-www-form-urlencoded` text of `pairs`, built with the URL crate's serializer
/// (reqwest's `form` feature is not enabled). `any_url` only lends its query string.
fn form_body(any_url: &Url, pairs: &[(&str, &str)]) -> String {
    let mut scratch = any_url.clone();
    scratch.query_pairs_mut().clear().extend_pairs(pairs);
    scratch.query().unwrap_or_default().to_owned()
}

/// Why a body could not be read whole.
pub(super) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// The body of `response`, refused as soon as it passes `limit` bytes.
pub(super) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The innermost error of a chain (`Connection refused (os error 111)`, a DNS or TLS failure):
/// the part an operator can act on, without reqwest's and hyper's wrapping.
pub(super) fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut innermost = err;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// `text` on one line (control characters and runs of whitespace become one space), cut to
/// `max` characters with a trailing `…`.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let collapsed = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.chars().count() <= max {
        collapsed
    } else {
        let mut cut: String = collapsed.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// The error of a non-2xx answer: Prometheus's own `errorType: error` when the body is its JSON,
/// else the start of the body, with a hint for the statuses that mean "wrong URL or credentials".
fn http_error(status: StatusCode, body: &[u8], shown_url: &str) -> PromError {
    let code = status.as_u16();
    let quoted = serde_json::from_slice::<ApiResponse>(body)
        .ok()
        .and_then(|response| Some((response.error_type, response.error?)));
    let detail = if let Some((kind, error)) = quoted {
        match kind {
            Some(kind) => format!("{kind}: {}", one_line(&error, MAX_DETAIL_CHARS)),
            None => one_line(&error, MAX_DETAIL_CHARS),
        }
    } else {
        let text = one_line(&String::from_utf8_lossy(body), MAX_DETAIL_CHARS);
        let reason = status.canonical_reason().unwrap_or("no reason given");
        let text = if text.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}: {text}")
        };
        match code {
            404 => format!("{text} (is {shown_url} the Prometheus root?)"),
            401 | 403 => format!("{text} (check the credentials in the URL)"),
            _ => text,
        }
    };
    PromError::Http {
        status: code,
        message: detail,
    }
}

/// The envelope of every API answer.
#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

/// `data` of a query answer, tagged by `resultType`.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSeries>),
    Scalar((f64, String)),
    Matrix(Vec<MatrixSeries>),
    String(IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
}

#[derive(Deserialize)]
struct MatrixSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Option<Vec<(f64, String)>>,
}

/// The samples of an instant-query answer.
fn decode_instant(body: &[u8]) -> Result<Vec<Sample>, PromError> {
    match decode_data(body)? {
        QueryData::Vector(series) => series
            .into_iter()
            .map(|series| {
                let Some((timestamp_s, value)) = series.value else {
                    return Err(native_histogram(&series.metric));
                };
                Ok(Sample {
                    value: parse_value(&value)?,
                    labels: series.metric,
                    timestamp_s,
                })
            })
            .collect(),
        QueryData::Scalar((timestamp_s, value)) => Ok(vec![Sample {
            labels: BTreeMap::new(),
            timestamp_s,
            value: parse_value(&value)?,
        }]),
        QueryData::Matrix(_) => Err(PromError::Unexpected(
            "the expression is a range vector: wrap it in a function such as rate() or \
             max_over_time()"
                .to_owned(),
        )),
        QueryData::String(_) => Err(PromError::Unexpected(
            "the expression is a string, not a number".to_owned(),
        )),
    }
}

/// The series of a range-query answer.
fn decode_range(body: &[u8]) -> Result<Vec<Series>, PromError> {
    match decode_data(body)? {
        QueryData::Matrix(series) => series
            .into_iter()
            .map(|series| {
                let Some(values) = series.values else {
                    return Err(native_histogram(&series.metric));
                };
                let points = values
                    .into_iter()
                    .map(|(timestamp_s, value)| Ok((timestamp_s, parse_value(&value)?)))
                    .collect::<Result<_, PromError>>()?;
                Ok(Series {
                    labels: series.metric,
                    points,
                })
            })
            .collect(),
        QueryData::Vector(_) | QueryData::Scalar(_) | QueryData::String(_) => {
            Err(PromError::Unexpected(
                "a range query answered with something else than a matrix".to_owned(),
            ))
        }
    }
}

/// The `data` of a successful answer; a 2xx `status: error` is [`PromError::Api`].
fn decode_data(body: &[u8]) -> Result<QueryData, PromError> {
    let response: ApiResponse = serde_json::from_slice(body).map_err(|err| {
        let start = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        if start.trim_start().starts_with('{') {
            PromError::Decode(format!("malformed JSON ({err})"))
        } else {
            PromError::Decode(format!(
                "not JSON (starts with {:?}): is the URL a Prometheus server?",
                one_line(&start, 40)
            ))
        }
    })?;
    match (response.status.as_str(), response.data) {
        ("success", Some(data)) => Ok(data),
        ("success", None) => Err(PromError::Decode(
            "status is success but there is no data".to_owned(),
        )),
        ("error", _) => Err(PromError::Api {
            kind: response.error_type.unwrap_or_else(|| "unknown".to_owned()),
            message: response.error.map_or_else(
                || "(no message)".to_owned(),
                |error| one_line(&error, MAX_DETAIL_CHARS),
            ),
        }),
        (other, _) => Err(PromError::Unexpected(format!(
            "status {:?} (expected success or error)",
            one_line(other, 40)
        ))),
    }
}

/// A sample value: Prometheus sends numbers as strings, including `NaN`, `+Inf` and `-Inf`.
fn parse_value(text: &str) -> Result<f64, PromError> {
    text.parse::<f64>().map_err(|_| {
        PromError::Decode(format!(
            "sample value {:?} is not a number",
            one_line(text, 40)
        ))
    })
}

fn native_histogram(labels: &BTreeMap<String, String>) -> PromError {
    PromError::Unexpected(format!(
        "series {labels:?} is a native histogram: query a float such as histogram_quantile() \
         or histogram_count()"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> PrometheusClient {
        PrometheusClient::new(url, Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn urls_are_validated() {
        for bad in [
            "",
            "  ",
            "localhost:9090",
            "ftp://h/",
            "file:///tmp/x",
            "http://",
        ] {
            let err = PrometheusClient::new(bad, Duration::from_secs(1)).unwrap_err();
            assert!(matches!(err, PromError::InvalidUrl(_)), "{bad:?}: {err:?}");
        }
        assert!(PrometheusClient::new("https://prom.example:9090", Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn endpoints_keep_a_path_prefix_and_drop_query_and_credentials() {
        let plain = client("http://127.0.0.1:9090");
        assert_eq!(
            plain.query_url.as_str(),
            "http://127.0.0.1:9090/api/v1/query"
        );
        assert_eq!(
            plain.query_range_url.as_str(),
            "http://127.0.0.1:9090/api/v1/query_range"
        );
        for prefixed in ["http://h/prom", "http://h/prom/", "http://h/prom?x=1#frag"] {
            assert_eq!(
                client(prefixed).query_url.as_str(),
                "http://h/prom/api/v1/query",
                "{prefixed}"
            );
        }
        let secret = client("https://user:hunter2@h:9090/p");
        assert_eq!(secret.url(), "https://h:9090/p");
        assert!(!secret.url().contains("hunter2"));
    }

    #[test]
    fn form_bodies_are_url_encoded() {
        let url = Url::parse("http://h/api/v1/query").unwrap();
        assert_eq!(
            form_body(
                &url,
                &[("query", r#"sum(rate(x{a="b c"}[5m])) / 2 & more+"#)]
            ),
            "query=sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29%29+%2F+2+%26+more%2B"
        );
        assert_eq!(
            form_body(&url, &[("query", "up"), ("start", "1.5"), ("step", "2")]),
            "query=up&start=1.5&step=2"
        );
    }

    #[test]
    fn steps_follow_columns_but_never_undercut_the_scrape_interval() {
        assert!((range_step(3600.0, 120, 15.0) - 30.0).abs() < 1e-9);
        assert!((range_step(600.0, 120, 15.0) - 15.0).abs() < 1e-9);
        assert!((range_step(10.0, 5, 1.0) - 2.0).abs() < 1e-9);
        // Zero columns, a zero or unknown range or interval: still a positive step.
        assert!((range_step(100.0, 0, 1.0) - 100.0).abs() < 1e-9);
        assert!((range_step(0.0, 100, 0.0) - DEFAULT_STEP_FLOOR_S).abs() < 1e-9);
        assert!((range_step(f64::NAN, 100, f64::NAN) - DEFAULT_STEP_FLOOR_S).abs() < 1e-9);
        assert!(range_step(-5.0, 100, -1.0) > 0.0);
        assert!((range_step(0.01, 100, 1e-9) - MIN_STEP_S).abs() < 1e-12);
        // 65,535 columns over 30 days would be more points than Prometheus serves.
        let month = 30.0 * 86_400.0;
        assert!(month / range_step(month, u16::MAX, 1.0) <= MAX_POINTS_PER_SERIES + 1e-6);
    }

    #[test]
    fn vectors_decode_one_sample_per_series_with_special_values() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1700000000.5,"1"]},
            {"metric":{"job":"b"},"value":[1700000000.5,"NaN"]},
            {"metric":{"job":"c"},"value":[1700000000.5,"+Inf"]},
            {"metric":{"job":"d"},"value":[1700000000.5,"-Inf"]},
            {"metric":{},"value":[1700000000.5,"-2.5e-3"]}]},"warnings":["w"]}"#;
        let samples = decode_instant(body).unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[0].labels["job"], "a");
        assert_eq!(samples[0].labels["__name__"], "up");
        assert!((samples[0].timestamp_s - 1_700_000_000.5).abs() < 1e-6);
        assert!((samples[0].value - 1.0).abs() < f64::EPSILON);
        assert!(samples[1].value.is_nan());
        assert!(samples[2].value.is_infinite() && samples[2].value > 0.0);
        assert!(samples[3].value.is_infinite() && samples[3].value < 0.0);
        assert!(samples[4].labels.is_empty());
        assert!((samples[4].value + 0.0025).abs() < 1e-12);
    }

    #[test]
    fn an_empty_vector_is_no_samples() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(decode_instant(body).unwrap().is_empty());
    }

    #[test]
    fn a_scalar_is_one_unlabelled_sample() {
        let body =
            br#"{"status":"success","data":{"resultType":"scalar","result":[12.25,"0.999"]}}"#;
        assert_eq!(
            decode_instant(body).unwrap(),
            vec![Sample {
                labels: BTreeMap::new(),
                timestamp_s: 12.25,
                value: 0.999
            }]
        );
    }

    #[test]
    fn an_instant_query_refuses_matrices_and_strings() {
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = decode_instant(matrix).unwrap_err();
        assert!(matches!(err, PromError::Unexpected(_)), "{err:?}");
        assert!(err.to_string().contains("range vector"), "{err}");
        let string = br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#;
        let err = decode_instant(string).unwrap_err();
        assert!(matches!(err, PromError::Unexpected(_)), "{err:?}");
    }

    #[test]
    fn matrices_decode_to_series_of_points() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"a"},"values":[[10,"1"],[20,"2.5"],[30,"NaN"]]},
            {"metric":{"job":"b"},"values":[]}]}}"#;
        let series = decode_range(body).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["job"], "a");
        assert_eq!(&series[0].points[..2], &[(10.0, 1.0), (20.0, 2.5)]);
        assert!(series[0].points[2].1.is_nan());
        assert!(series[1].points.is_empty());
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            decode_range(vector).unwrap_err(),
            PromError::Unexpected(_)
        ));
    }

    #[test]
    fn native_histograms_are_named_not_misread() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"job":"a"},"histogram":[1,{"count":"3","sum":"4","buckets":[]}]}]}}"#;
        let err = decode_instant(body).unwrap_err();
        assert!(matches!(err, PromError::Unexpected(_)), "{err:?}");
        assert!(err.to_string().contains("native histogram"), "{err}");
    }

    #[test]
    fn an_error_status_in_a_success_answer_is_an_api_error() {
        let body = br#"{"status":"error","errorType":"execution","error":"query timed out"}"#;
        match decode_instant(body).unwrap_err() {
            PromError::Api { kind, message } => {
                assert_eq!(kind, "execution");
                assert_eq!(message, "query timed out");
            }
            other => panic!("{other:?}"),
        }
        let bare = br#"{"status":"error"}"#;
        assert!(matches!(
            decode_instant(bare).unwrap_err(),
            PromError::Api { ref kind, .. } if kind == "unknown"
        ));
    }

    #[test]
    fn malformed_answers_are_decode_errors() {
        for body in [
            &br#"{"status":"success","data":"#[..],
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"one"]}]}}"#,
            br#"{"status":"success","data":{"resultType":"banana","result":[]}}"#,
            br#"{"status":"success"}"#,
            b"<html><body>Grafana</body></html>",
            b"",
        ] {
            let err = decode_instant(body).unwrap_err();
            assert!(
                matches!(err, PromError::Decode(_)),
                "{}: {err:?}",
                String::from_utf8_lossy(body)
            );
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let html = decode_instant(b"<html>").unwrap_err().to_string();
        assert!(html.contains("not JSON"), "{html}");
    }

    #[test]
    fn http_errors_quote_prometheus() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#;
        let err = http_error(StatusCode::BAD_REQUEST, body, "http://h/");
        match &err {
            PromError::Http { status, message } => {
                assert_eq!(*status, 400);
                assert!(
                    message.starts_with("bad_data: invalid parameter"),
                    "{message}"
                );
                assert!(message.contains("parse error"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let not_found = http_error(StatusCode::NOT_FOUND, b"404 page not found\n", "http://h/");
        assert!(
            not_found.to_string().contains("Prometheus root"),
            "{not_found}"
        );
        let empty = http_error(StatusCode::BAD_GATEWAY, b"", "http://h/");
        assert_eq!(
            empty.to_string(),
            "Prometheus answered HTTP 502: Bad Gateway"
        );
        let long = http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "x\n".repeat(1000).as_bytes(),
            "",
        );
        assert!(
            long.to_string().chars().count() < MAX_DETAIL_CHARS + 60,
            "{long}"
        );
    }

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("  a\n\tb  c \r\n", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }
}
