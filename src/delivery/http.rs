//! HTTP plumbing shared by the Slack and webhook backends: a client with explicit timeouts,
//! URL validation, and one classification of replies and transport errors.
//!
//! | What happened | Disposition | Class |
//! |---|---|---|
//! | 429 | rate limited: `Retry-After` (seconds or HTTP-date), else body `retry_after` | `http_429` |
//! | 5xx | retryable | `http_500`, `http_503`, … |
//! | other 4xx (400, 403, 404, 410, …), 3xx | permanent, with the receiver's error string | `http_404`, … |
//! | no connection or no complete answer within the timeouts | retryable | `timeout` |
//! | connection refused, DNS, TLS handshake | retryable | `connect` |
//! | a reply that is not valid HTTP (bad status line or headers) | permanent | `protocol` |
//! | connection lost mid-request | retryable | `network` |
//! | request could not be built | permanent | `invalid_payload` |

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{BuildError, Secret, SendError};

/// Whole-request timeout when a channel sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP (and TLS) connect timeout when a channel sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Error bodies are read up to this many bytes: enough for any error string, bounded memory.
const MAX_ERROR_BODY: usize = 8 * 1024;
/// The receiver's error detail is cut to this many characters in a `SendError` message.
const MAX_DETAIL_CHARS: usize = 300;

/// The two timeouts of an HTTP backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From sending the request to the end of the response.
    pub request: Duration,
    /// Establishing the connection (TCP and TLS).
    pub connect: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            request: DEFAULT_TIMEOUT,
            connect: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl HttpTimeouts {
    /// From configured milliseconds, defaults where absent; zero is refused.
    pub(crate) fn from_ms(request: Option<u64>, connect: Option<u64>) -> Result<Self, BuildError> {
        let pick = |value: Option<u64>, default: Duration, field| match value {
            None => Ok(default),
            Some(0) => Err(BuildError::ZeroTimeout { field }),
            Some(ms) => Ok(Duration::from_millis(ms)),
        };
        Ok(Self {
            request: pick(request, DEFAULT_TIMEOUT, "timeout_ms")?,
            connect: pick(connect, DEFAULT_CONNECT_TIMEOUT, "connect_timeout_ms")?,
        })
    }
}

/// A client for one channel. Redirects are not followed: a webhook that moved is a
/// configuration problem, and following it could carry the bearer token elsewhere.
pub(crate) fn build_client(timeouts: HttpTimeouts) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .timeout(timeouts.request)
        .connect_timeout(timeouts.connect)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ward/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| BuildError::HttpClient(error_chain(&err.without_url())))
}

/// Checks that a secret URL is a usable http(s) URL without ever echoing it.
pub(crate) fn validate_url(field: &'static str, url: &Secret) -> Result<reqwest::Url, BuildError> {
    let raw = url.expose().trim();
    if raw.is_empty() {
        return Err(BuildError::Empty { field });
    }
    let parsed = reqwest::Url::parse(raw).map_err(|err| BuildError::InvalidUrl {
        field,
        reason: err.to_string(),
    })?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(BuildError::UnsupportedScheme {
                field,
                scheme: other.to_owned(),
            });
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(BuildError::InvalidUrl {
            field,
            reason: "no host".to_owned(),
        });
    }
    Ok(parsed)
}

/// The secret without surrounding whitespace (a pasted URL often has a trailing newline).
pub(crate) fn trimmed(secret: Secret) -> Secret {
    let trimmed = secret.expose().trim();
    if trimmed.len() == secret.expose().len() {
        secret
    } else {
        Secret::new(trimmed)
    }
}

/// What a non-successful response said, read once and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub status: StatusCode,
    /// `Retry-After`, when present and readable.
    pub retry_after: Option<Duration>,
    /// The first [`MAX_ERROR_BODY`] bytes of the body, lossily decoded.
    pub body: String,
}

impl Reply {
    /// Reads the status, `Retry-After` and the start of the body. A body that cannot be read
    /// (the connection dropped, the timeout hit) counts as empty: the status already decides.
    pub(crate) async fn read(mut response: reqwest::Response) -> Self {
        let status = response.status();
        let retry_after = retry_after_header(response.headers(), SystemTime::now());
        let mut bytes = Vec::new();
        while bytes.len() < MAX_ERROR_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        bytes.truncate(MAX_ERROR_BODY);
        Self {
            status,
            retry_after,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// Classifies a response that was not a success. `service` names the receiver in the message
/// (`slack`, `webhook`); every secret in `secrets` is scrubbed from it.
pub(crate) fn classify_reply(service: &str, reply: &Reply, secrets: &[&Secret]) -> SendError {
    let code = reply.status.as_u16();
    let reason = reply
        .status
        .canonical_reason()
        .map_or_else(String::new, |r| format!(" {r}"));
    let detail = error_detail(&reply.body);
    let message = scrub(
        &format!("{service} answered {code}{reason}: {detail}"),
        secrets,
    );
    match code {
        429 => SendError::rate_limited(
            message,
            reply.retry_after.or_else(|| body_retry_after(&reply.body)),
        ),
        500..=599 => SendError::retryable(format!("http_{code}"), message),
        _ => SendError::permanent(format!("http_{code}"), message),
    }
}

/// Classifies a transport failure: the request got no (complete) response.
pub(crate) fn classify_transport(err: reqwest::Error, secrets: &[&Secret]) -> SendError {
    let err = err.without_url();
    let message = scrub(&error_chain(&err), secrets);
    if err.is_timeout() {
        SendError::retryable("timeout", message)
    } else if err.is_connect() {
        SendError::retryable("connect", message)
    } else if err.is_builder() {
        SendError::permanent("invalid_payload", message)
    } else if unparsable_reply(&err) {
        // The receiver is not speaking HTTP: sending the same request again will not change it.
        SendError::permanent("protocol", message)
    } else {
        SendError::retryable("network", message)
    }
}

/// The receiver answered, but not in HTTP the client can read (a status line or header that
/// does not parse, or a head too large).
fn unparsable_reply(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// A `Retry-After` value: delay-seconds (a fractional value is accepted too) or an HTTP-date,
/// which counts from `now` (a date in the past means "now": zero). `None` when unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn retry_after_header(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// Slack's 429 body: `{"ok":false,"error":"rate_limited","retry_after":1}`.
fn body_retry_after(body: &str) -> Option<Duration> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let value = json.get("retry_after")?;
    if let Some(secs) = value.as_u64() {
        return Some(Duration::from_secs(secs));
    }
    if let Some(secs) = value.as_f64() {
        return (secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).ok())
            .flatten();
    }
    value
        .as_str()
        .and_then(|s| parse_retry_after(s, SystemTime::now()))
}

/// The receiver's own words: Slack answers a bare `channel_not_found`, JSON APIs an `error` or
/// `message` field; anything else is shown trimmed, on one line, cut short.
pub(crate) fn error_detail(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(body) {
        for key in ["error", "message", "error_description", "detail"] {
            if let Some(serde_json::Value::String(text)) = map.get(key) {
                return one_line(text, MAX_DETAIL_CHARS);
            }
        }
    }
    one_line(body, MAX_DETAIL_CHARS)
}

/// Control characters become spaces, runs of whitespace collapse, and the text is cut to
/// `max` characters with a trailing `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut count = 0;
    let mut last_space = false;
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// An error and its sources, `": "`-joined, skipping a source that repeats its parent.
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut last = out.clone();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        source = inner.source();
    }
    out
}

/// Every secret replaced by `***`.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    secrets
        .iter()
        .fold(text.to_owned(), |acc, secret| secret.scrub(&acc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Disposition;

    fn reply(code: u16, retry_after: Option<Duration>, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after,
            body: body.to_owned(),
        }
    }

    #[test]
    fn statuses_classify() {
        let secret = Secret::new("https://hooks.example/very-secret");
        let err = classify_reply("slack", &reply(500, None, "rollup_error"), &[&secret]);
        assert_eq!(err.class, "http_500");
        assert_eq!(err.disposition, Disposition::Retryable);
        assert!(err.message.contains("rollup_error"), "{err}");

        let err = classify_reply("slack", &reply(503, None, ""), &[&secret]);
        assert_eq!(
            (err.class.as_str(), err.disposition),
            ("http_503", Disposition::Retryable)
        );

        for (code, text) in [
            (400, "invalid_payload"),
            (403, "action_prohibited"),
            (404, "channel_not_found"),
            (410, "channel_is_archived"),
            (401, "invalid_token"),
            (301, ""),
        ] {
            let err = classify_reply("slack", &reply(code, None, text), &[&secret]);
            assert_eq!(err.class, format!("http_{code}"));
            assert_eq!(err.disposition, Disposition::Permanent);
            assert!(err.message.contains(text), "{err}");
        }
    }

    #[test]
    fn rate_limits_prefer_the_header_then_the_body() {
        let body = r#"{"ok":false,"error":"rate_limited","retry_after":2}"#;
        let err = classify_reply(
            "slack",
            &reply(429, Some(Duration::from_secs(1)), body),
            &[],
        );
        assert_eq!(
            err.disposition,
            Disposition::RateLimited(Some(Duration::from_secs(1)))
        );
        assert_eq!(err.class, "http_429");
        assert!(err.message.contains("rate_limited"));

        let err = classify_reply("slack", &reply(429, None, body), &[]);
        assert_eq!(
            err.disposition,
            Disposition::RateLimited(Some(Duration::from_secs(2)))
        );

        let err = classify_reply("slack", &reply(429, None, r#"{"retry_after":0.5}"#), &[]);
        assert_eq!(
            err.disposition,
            Disposition::RateLimited(Some(Duration::from_millis(500)))
        );

        let err = classify_reply("slack", &reply(429, None, "slow down"), &[]);
        assert_eq!(err.disposition, Disposition::RateLimited(None));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("1e400", now), None);
    }

    #[test]
    fn secrets_are_scrubbed_from_details() {
        let secret = Secret::new("tok-123456");
        let err = classify_reply(
            "webhook",
            &reply(400, None, r#"{"error":"bad token tok-123456"}"#),
            &[&secret],
        );
        assert!(!err.message.contains("tok-123456"), "{err}");
        assert!(err.message.contains("bad token ***"), "{err}");
    }

    #[test]
    fn details_are_one_short_line() {
        assert_eq!(one_line("a\n\tb\r\n  c", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(error_detail("   "), "(empty body)");
        assert_eq!(error_detail(r#"{"message":"nope"}"#), "nope");
        assert_eq!(
            error_detail("<html>\n<b>Bad</b></html>"),
            "<html> <b>Bad</b></html>"
        );
    }

    #[test]
    fn urls_are_validated_without_echoing_them() {
        let ok = Secret::new("https://hooks.slack.com/services/T0/B0/XYZ");
        assert!(validate_url("webhook_url", &ok).is_ok());
        for (raw, expected) in [
            ("", "`webhook_url` is empty"),
            ("   ", "`webhook_url` is empty"),
            ("not a url SECRET", "not a valid URL"),
            ("ftp://host/SECRET", "must be an http or https URL"),
        ] {
            let err = validate_url("webhook_url", &Secret::new(raw)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("SECRET"), "{text}");
        }
    }

    #[test]
    fn zero_timeouts_are_refused() {
        assert_eq!(
            HttpTimeouts::from_ms(None, None).unwrap(),
            HttpTimeouts::default()
        );
        assert_eq!(
            HttpTimeouts::from_ms(Some(0), None),
            Err(BuildError::ZeroTimeout {
                field: "timeout_ms"
            })
        );
        let t = HttpTimeouts::from_ms(Some(300), Some(100)).unwrap();
        assert_eq!(t.request, Duration::from_millis(300));
        assert_eq!(t.connect, Duration::from_millis(100));
    }
}
