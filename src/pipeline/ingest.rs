//! HTTP ingest: `POST /v1/alerts` (Ward JSON), `POST /v1/alertmanager` (webhook v4),
//! `GET /healthz`, `GET /metrics`. Every accepted alert is in the store before the reply; a
//! refused request enqueues nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::Shared;
use crate::engine::ratelimit;
use crate::model::time::parse_rfc3339_ms;
use crate::model::{Alert, AlertStatus, Envelope, Payload, Severity, fingerprint, new_ulid};
use crate::store::{IngestLimits, IngestOutcome, MAX_BATCH};
use crate::telemetry::OPENMETRICS_CONTENT_TYPE;

const CORRELATION_HEADER: &str = "x-correlation-id";
const MAX_LABEL_VALUE: usize = 2048;
const MAX_ANNOTATION_VALUE: usize = 16 * 1024;
const MAX_KEY: usize = 256;

/// What the ingest endpoints need: the shared part and the ingest settings.
#[derive(Debug)]
pub struct IngestApi {
    pub(super) shared: Arc<Shared>,
    pub(super) ingest: crate::config::IngestConfig,
}

/// The ingest HTTP application.
pub fn app(api: Arc<IngestApi>) -> Router {
    Router::new()
        .route("/v1/alerts", post(post_alerts))
        .route("/v1/alertmanager", post(post_alertmanager))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(api)
}

/// A refusal: status, a stable reason (metric label), a message naming the problem.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: &'static str,
    message: String,
    headers: Vec<(&'static str, String)>,
    extra: serde_json::Value,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
            headers: Vec::new(),
            extra: serde_json::Value::Null,
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation", message)
    }
}

/// The answer to alerts accepted (built straight into the reply, not through a JSON value).
#[derive(Serialize)]
struct Queued<'a> {
    status: &'static str,
    correlation_id: &'a str,
    accepted: usize,
    ids: &'a [String],
}

fn respond(
    status: StatusCode,
    correlation_id: &str,
    body: &impl Serialize,
    headers: &[(&'static str, String)],
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let map = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        map.insert(HeaderName::from_static(CORRELATION_HEADER), value);
    }
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(*name), HeaderValue::from_str(value)) {
            map.insert(name, value);
        }
    }
    response
}

fn refusal_response(refusal: Refusal, correlation_id: &str) -> Response {
    let mut body = json!({
        "status": "error",
        "error": refusal.reason,
        "message": refusal.message,
        "correlation_id": correlation_id,
    });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), refusal.extra) {
        body.extend(extra);
    }
    respond(refusal.status, correlation_id, &body, &refusal.headers)
}

/// The caller's correlation id if it is sane, else a new one.
fn correlation_id(headers: &HeaderMap, now_ms: i64) -> String {
    headers
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| new_ulid(now_ms), str::to_owned)
}

/// The tenant a key speaks for: `Ok(None)` when any tenant may be named.
fn authenticate(api: &IngestApi, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    match api_key(&api.ingest.api_keys, headers) {
        Ok(key) => Ok(key.and_then(|k| k.tenant.clone())),
        Err(message) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "auth", message)),
    }
}

/// The configured key the request presents (`X-API-Key` or `Authorization: Bearer`): `Ok(None)`
/// when no keys are configured, else why it is refused.
pub(super) fn api_key<'a>(
    keys: &'a [crate::config::ApiKey],
    headers: &HeaderMap,
) -> Result<Option<&'a crate::config::ApiKey>, &'static str> {
    if keys.is_empty() {
        return Ok(None);
    }
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    let Some(presented) = presented else {
        return Err("missing API key: send X-API-Key or Authorization: Bearer");
    };
    let presented = key_digest(presented);
    // Fixed-length digests, every key compared: the time says nothing of any key's length.
    let mut matched = None;
    for key in keys {
        let same = key_digest(key.key.expose()).ct_eq(&presented);
        if bool::from(same) && matched.is_none() {
            matched = Some(key);
        }
    }
    matched.map(Some).ok_or("unknown API key")
}

/// The fixed-length form a key is compared in.
fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The request body, if it is plain, arrives in time and fits the limit.
async fn read_body(
    api: &IngestApi,
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, Refusal> {
    check_encoding(headers)?;
    let limit = api.ingest.body_limit_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if super::server::BodyTimeout::caused(&error) {
            let mut refusal = Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request body did not arrive within ingest.body_timeout_ms = {}",
                    api.ingest.body_timeout_ms
                ),
            );
            refusal.headers = vec![("Connection", "close".to_owned())];
            refusal
        } else {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body is over the limit of {limit} bytes"),
            )
        }
    })
}

/// Bodies are read as sent: a compressed one would be refused as bad JSON, so say why instead.
fn check_encoding(headers: &HeaderMap) -> Result<(), Refusal> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let unsupported = text
            .split(',')
            .map(str::trim)
            .find(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("identity"));
        if let Some(coding) = unsupported {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "encoding",
                format!(
                    "Content-Encoding {:?} is not supported: send the body uncompressed",
                    crate::model::sanitize(coding)
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses a JSON object that names a key twice, at any depth (serde would keep the last).
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        // Keys borrowed from the body where they have no escapes; a scan while the object is
        // small (alerts' are), a hash set once it is not.
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: std::collections::HashSet<Cow<'de, str>> = std::collections::HashSet::new();
        while let Some(KeyText(key)) = map.next_key::<KeyText<'de>>()? {
            let repeated = if many.is_empty() {
                few.contains(&key)
            } else {
                many.contains(&key)
            };
            if repeated {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {:?}",
                    crate::model::sanitize(&key)
                )));
            }
            map.next_value::<UniqueKeys>()?;
            if !many.is_empty() {
                many.insert(key);
            } else if few.len() < SCANNED_KEYS {
                few.push(key);
            } else {
                many.extend(few.drain(..));
                many.insert(key);
            }
        }
        Ok(self)
    }
}

/// Keys an object may have before duplicates are looked up in a hash set instead of a scan.
const SCANNED_KEYS: usize = 16;

/// An object key, borrowed from the body when it can be.
struct KeyText<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyText<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeyText<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(KeyText(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(KeyText(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The body as `T`, refused with the path of its first problem. Parsed without tracking the
/// path (which allocates per key); a body that fails is parsed again with it, for the message.
fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, Refusal> {
    if UniqueKeys::deserialize(&mut serde_json::Deserializer::from_slice(bytes)).is_err() {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        json_refusal(serde_path_to_error::deserialize::<_, UniqueKeys>(
            &mut deserializer,
        ))?;
    }
    if let Ok(value) = T::deserialize(&mut serde_json::Deserializer::from_slice(bytes)) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    json_refusal(serde_path_to_error::deserialize(&mut deserializer))
}

fn json_refusal<T>(
    result: Result<T, serde_path_to_error::Error<serde_json::Error>>,
) -> Result<T, Refusal> {
    result.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let reason = if inner.is_syntax() || inner.is_eof() {
            "json"
        } else {
            "validation"
        };
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        Refusal::new(StatusCode::BAD_REQUEST, reason, format!("{at}{inner}"))
    })
}

fn check_text(
    field: std::fmt::Arguments<'_>,
    value: &str,
    max: usize,
    allow_newlines: bool,
) -> Result<(), Refusal> {
    if value.len() > max {
        return Err(Refusal::invalid(format!(
            "{field}: longer than {max} bytes"
        )));
    }
    let bad = value.chars().any(|c| {
        (c.is_control() && !(allow_newlines && matches!(c, '\n' | '\t' | '\r')))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    if bad {
        return Err(Refusal::invalid(format!(
            "{field}: control characters are not allowed"
        )));
    }
    Ok(())
}

fn check_labels(
    api: &IngestApi,
    at: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    if labels.is_empty() {
        return Err(Refusal::invalid(format!(
            "{at}labels: at least one label is required"
        )));
    }
    check_size(api, at, labels, annotations)?;
    for (name, value) in labels {
        let valid_name = !name.is_empty()
            && name.len() <= 128
            && name.bytes().enumerate().all(|(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            });
        if !valid_name {
            return Err(Refusal::invalid(format!(
                "{at}labels: {name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        check_text(
            format_args!("{at}labels.{name}"),
            value,
            MAX_LABEL_VALUE,
            false,
        )?;
    }
    for (name, value) in annotations {
        check_text(format_args!("{at}annotations"), name, 128, false)?;
        check_text(
            format_args!("{at}annotations.{name}"),
            value,
            MAX_ANNOTATION_VALUE,
            true,
        )?;
    }
    Ok(())
}

/// One alert's labels and annotations within the configured counts and bytes.
fn check_size(
    api: &IngestApi,
    at: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let ingest = &api.ingest;
    let too_large = |message: String| {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{at}{message}"),
        )
    };
    if labels.len() > ingest.max_labels_per_alert {
        return Err(too_large(format!(
            "labels: {} labels; the limit is ingest.max_labels_per_alert = {}",
            labels.len(),
            ingest.max_labels_per_alert
        )));
    }
    if annotations.len() > ingest.max_annotations_per_alert {
        return Err(too_large(format!(
            "annotations: {} annotations; the limit is ingest.max_annotations_per_alert = {}",
            annotations.len(),
            ingest.max_annotations_per_alert
        )));
    }
    let bytes: usize = labels
        .iter()
        .chain(annotations)
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if bytes > ingest.max_alert_text_bytes {
        let field = at.trim_end_matches('.');
        let field = if field.is_empty() { "alert" } else { field };
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "{field}: labels and annotations take {bytes} bytes; the limit is \
                 ingest.max_alert_text_bytes = {}",
                ingest.max_alert_text_bytes
            ),
        ));
    }
    Ok(())
}

fn parse_time(field: std::fmt::Arguments<'_>, value: Option<&str>) -> Result<Option<i64>, Refusal> {
    value
        .map(|text| {
            parse_rfc3339_ms(text).ok_or_else(|| {
                Refusal::invalid(format!("{field}: {text:?} is not an RFC 3339 time"))
            })
        })
        .transpose()
}

/// The tenant of one alert: the key's, else the one named, else the default.
fn resolve_tenant(
    api: &IngestApi,
    bound: Option<&str>,
    named: Option<&str>,
    at: &str,
) -> Result<String, Refusal> {
    match (bound, named) {
        (Some(bound), Some(named)) if bound != named => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "auth",
            format!("{at}tenant: this API key posts for tenant {bound:?}, not {named:?}"),
        )),
        (Some(bound), _) => Ok(bound.to_owned()),
        (None, Some(named)) => {
            check_text(format_args!("{at}tenant"), named, 128, false)?;
            if named.is_empty() {
                return Err(Refusal::invalid(format!("{at}tenant: must not be empty")));
            }
            Ok(named.to_owned())
        }
        (None, None) => Ok(api.ingest.default_tenant.clone()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WardAlertIn {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    status: Option<AlertStatus>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default)]
    generator_url: Option<String>,
    #[serde(default)]
    test: bool,
}

/// An accepted alert with the idempotency key its envelope carries.
struct Accepted {
    alert: Alert,
    idempotency_key: String,
}

fn ward_alerts(
    api: &IngestApi,
    bytes: &[u8],
    bound: Option<&str>,
    correlation_id: &str,
    now: i64,
) -> Result<Vec<Accepted>, Refusal> {
    // Straight into the typed alerts (one pass, no intermediate JSON value).
    let (items, many) = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => (parse_json::<Vec<WardAlertIn>>(bytes)?, true),
        Some(b'{') => (vec![parse_json::<WardAlertIn>(bytes)?], false),
        // Not JSON at all says so; JSON of another type is the wrong shape.
        _ => {
            parse_json::<serde::de::IgnoredAny>(bytes)?;
            return Err(Refusal::invalid(
                "the body must be an alert object or an array of them",
            ));
        }
    };
    check_count(api, items.len())?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let at = if many {
                format!("[{i}].")
            } else {
                String::new()
            };
            check_labels(api, &at, &input.labels, &input.annotations)?;
            let severity = match input.severity.as_deref() {
                Some(s) => s
                    .parse::<Severity>()
                    .map_err(|e| Refusal::invalid(format!("{at}severity: {e}")))?,
                None => Severity::default(),
            };
            let tenant = resolve_tenant(api, bound, input.tenant.as_deref(), &at)?;
            let given_start =
                parse_time(format_args!("{at}starts_at"), input.starts_at.as_deref())?;
            let starts_at_ms = given_start.unwrap_or(now);
            let ends_at_ms = parse_time(format_args!("{at}ends_at"), input.ends_at.as_deref())?;
            if let Some(url) = &input.generator_url {
                check_text(
                    format_args!("{at}generator_url"),
                    url,
                    MAX_LABEL_VALUE,
                    false,
                )?;
            }
            let status = input.status.unwrap_or_default();
            let fingerprint = fingerprint(&input.labels);
            let idempotency_key = match input.idempotency_key {
                Some(key) => {
                    check_text(format_args!("{at}idempotency_key"), &key, MAX_KEY, false)?;
                    key
                }
                // Without a start time, the same labels and status are the same alert: posting
                // it again within the dedup TTL does not notify twice.
                None => format!(
                    "{fingerprint}:{}:{}",
                    given_start.map_or_else(String::new, |t| t.to_string()),
                    status_str(status)
                ),
            };
            Ok(Accepted {
                alert: Alert {
                    labels: input.labels,
                    annotations: input.annotations,
                    severity,
                    status,
                    tenant,
                    fingerprint,
                    starts_at_ms,
                    ends_at_ms,
                    generator_url: input.generator_url,
                    correlation_id: correlation_id.to_owned(),
                    test: input.test,
                },
                idempotency_key,
            })
        })
        .collect()
}

fn status_str(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

fn check_count(api: &IngestApi, count: usize) -> Result<(), Refusal> {
    let max = api.ingest.max_alerts_per_request.min(MAX_BATCH * 20);
    if count == 0 {
        return Err(Refusal::invalid("no alerts in the request"));
    }
    if count > max {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{count} alerts in one request; the limit is {max}"),
        ));
    }
    Ok(())
}

/// The Alertmanager webhook body (version 4); unknown fields are accepted.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmPayload {
    #[serde(default)]
    version: Option<String>,
    alerts: Vec<AmAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmAlert {
    #[serde(default)]
    status: Option<AlertStatus>,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// Alertmanager's zero time, which firing alerts carry as `endsAt`.
const AM_ZERO_TIME: i64 = -62_135_596_800_000;

fn alertmanager_alerts(
    api: &IngestApi,
    bytes: &[u8],
    bound: Option<&str>,
    correlation_id: &str,
    now: i64,
) -> Result<Vec<Accepted>, Refusal> {
    let payload: AmPayload = parse_json(bytes)?;
    if let Some(version) = &payload.version
        && version != "4"
    {
        return Err(Refusal::invalid(format!(
            "version: {version:?} is not supported (Alertmanager webhook version 4)"
        )));
    }
    check_count(api, payload.alerts.len())?;
    payload
        .alerts
        .into_iter()
        .enumerate()
        .map(|(i, am)| {
            let at = format!("alerts[{i}].");
            check_labels(api, &at, &am.labels, &am.annotations)?;
            let severity = am
                .labels
                .get("severity")
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            let tenant =
                resolve_tenant(api, bound, am.labels.get("tenant").map(String::as_str), &at)?;
            let starts_at_ms =
                parse_time(format_args!("{at}startsAt"), am.starts_at.as_deref())?.unwrap_or(now);
            let ends_at_ms = parse_time(format_args!("{at}endsAt"), am.ends_at.as_deref())?
                .filter(|t| *t > AM_ZERO_TIME);
            if let Some(url) = &am.generator_url {
                check_text(
                    format_args!("{at}generatorURL"),
                    url,
                    MAX_LABEL_VALUE,
                    false,
                )?;
            }
            let fingerprint = match am.fingerprint {
                Some(f) => {
                    check_text(format_args!("{at}fingerprint"), &f, MAX_KEY, false)?;
                    f
                }
                None => fingerprint(&am.labels),
            };
            let status = am.status.unwrap_or_default();
            Ok(Accepted {
                idempotency_key: format!("{fingerprint}:{starts_at_ms}:{}", status_str(status)),
                alert: Alert {
                    labels: am.labels,
                    annotations: am.annotations,
                    severity,
                    status,
                    tenant,
                    fingerprint,
                    starts_at_ms,
                    ends_at_ms,
                    generator_url: am.generator_url,
                    correlation_id: correlation_id.to_owned(),
                    test: false,
                },
            })
        })
        .collect()
}

type Parser = fn(&IngestApi, &[u8], Option<&str>, &str, i64) -> Result<Vec<Accepted>, Refusal>;

async fn accept(
    api: Arc<IngestApi>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Body,
    parse: Parser,
) -> Response {
    let started = Instant::now();
    let correlation_id = correlation_id(&headers, api.shared.store.now_ms());
    let result = accept_inner(&api, &headers, body, parse, &correlation_id).await;
    api.shared
        .metrics
        .ingest_latency
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok((count, ids)) => {
            api.shared.metrics.ingest(endpoint, "", 1);
            let body = Queued {
                status: "queued",
                correlation_id: &correlation_id,
                accepted: count,
                ids: &ids,
            };
            respond(StatusCode::ACCEPTED, &correlation_id, &body, &[])
        }
        Err(refusal) => {
            api.shared.metrics.ingest(endpoint, refusal.reason, 1);
            if refusal.reason == "rate_limit" {
                api.shared.metrics.rate_limit_hits.inc();
            }
            refusal_response(refusal, &correlation_id)
        }
    }
}

async fn accept_inner(
    api: &IngestApi,
    headers: &HeaderMap,
    body: Body,
    parse: Parser,
    correlation_id: &str,
) -> Result<(usize, Vec<String>), Refusal> {
    let bound = authenticate(api, headers)?;
    let bytes = read_body(api, headers, body).await?;
    let now = api.shared.store.now_ms();
    let accepted = parse(api, &bytes, bound.as_deref(), correlation_id, now)?;

    if api.shared.deferring(&api.shared.ingest_queue) {
        let mut refusal = Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shedding",
            format!(
                "the {} queue is over its shed depth and defers new alerts; retry later",
                api.shared.ingest_queue
            ),
        );
        refusal.headers = vec![("Retry-After", "1".to_owned())];
        return Err(refusal);
    }

    let envelopes: Vec<Envelope> = accepted
        .into_iter()
        .map(|a| {
            let payload = Payload::encode(&a.alert).unwrap_or_else(|_| Payload::null());
            Envelope::with_payload(&a.alert.tenant, payload, now)
                .with_idempotency_key(a.idempotency_key)
        })
        .collect();
    // Rate limits, queue cap and enqueue: one store call, one round trip on Redis.
    let limits = IngestLimits {
        limiter: "ingest",
        rate_limit: api.ingest.rate_limit,
        queue_cap: api.ingest.queue_cap,
    };
    let outcome = api
        .shared
        .store
        .ingest(&api.shared.ingest_queue, &limits, &envelopes)
        .await
        .map_err(|e| store_unavailable(&e))?;
    match outcome {
        IngestOutcome::Accepted { ids, .. } => {
            Ok((ids.len(), ids.into_iter().map(|id| id.0).collect()))
        }
        IngestOutcome::RateLimited {
            tenant,
            limit,
            verdict,
        } => {
            let mut refusal = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit",
                format!(
                    "tenant {tenant:?} is over its limit of {} alerts per {} ms",
                    limit.count, limit.period_ms
                ),
            );
            refusal.headers = ratelimit::headers(&tenant, &limit, &verdict);
            refusal.extra = json!({ "retry_after": verdict.retry_after.as_secs_f64().ceil() });
            Err(refusal)
        }
        IngestOutcome::Full { depth, cap, .. } => {
            let mut refusal = Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_full",
                format!("the ingest queue holds {depth} alerts; the limit is {cap}"),
            );
            refusal.extra = json!({ "queue_depth": depth, "queue_limit": cap });
            refusal.headers = vec![("Retry-After", "1".to_owned())];
            Err(refusal)
        }
    }
}

fn store_unavailable(error: &crate::store::StoreError) -> Refusal {
    let mut refusal = if let crate::store::StoreError::NotReplicated { .. } = error {
        tracing::warn!(%error, "ingest refused alerts their replicas did not confirm");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "replication",
            format!(
                "not accepted: {error}, so a failover could lose it; send it again (it may \
                 then be delivered twice)"
            ),
        )
    } else {
        tracing::warn!(%error, "ingest could not reach the store");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store",
            "the store is unavailable; nothing was accepted, try again",
        )
    };
    refusal.headers = vec![("Retry-After", "1".to_owned())];
    refusal
}

async fn post_alerts(
    State(api): State<Arc<IngestApi>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(api, "alerts", headers, body, ward_alerts).await
}

async fn post_alertmanager(
    State(api): State<Arc<IngestApi>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(api, "alertmanager", headers, body, alertmanager_alerts).await
}

async fn healthz(State(api): State<Arc<IngestApi>>) -> Response {
    match api.shared.store.stats(&[]).await {
        Ok(_) => (StatusCode::OK, axum::Json(json!({ "status": "ok", "store": api.shared.store.backend_name() }))).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "degraded", "store": api.shared.store.backend_name(), "error": error.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics(State(api): State<Arc<IngestApi>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        api.shared.metrics.render(),
    )
        .into_response()
}
