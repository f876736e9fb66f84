//! Generic webhook: a JSON POST of the job ([`super::payload`]), with the `Idempotency-Key`
//! header and an optional bearer token.
//!
//! `format = "ward"` (default) sends [`WebhookPayload`]; `format = "moog"` sends
//! [`MoogPayload`] (DOMAIN.md §8.4). 200, 201, 202 and 204 are success; any other 2xx is
//! permanent (`http_203`, …: the receiver did something unexpected, a retry could duplicate
//! it). Failures are classified like Slack's (see `delivery::http`).

use std::fmt;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};

use super::config::WebhookConfig;
use super::http::{self, HttpTimeouts, Reply};
use super::payload::{MoogPayload, WebhookPayload};
use super::{Backend, BackendKind, BuildError, Secret, SendError, redact_url};
use crate::model::DeliveryJob;

/// The header carrying the idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Which body a webhook channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// [`WebhookPayload`], version 1.
    #[default]
    Ward,
    /// [`MoogPayload`].
    Moog,
}

/// Posts jobs to one URL.
pub struct WebhookBackend {
    name: String,
    url: Secret,
    bearer_token: Option<Secret>,
    format: WebhookFormat,
    timeouts: HttpTimeouts,
    client: reqwest::Client,
}

impl WebhookBackend {
    /// Validates the URL and the token and builds the client; neither appears in an error.
    pub fn new(
        name: impl Into<String>,
        url: Secret,
        bearer_token: Option<Secret>,
        format: WebhookFormat,
        timeouts: HttpTimeouts,
    ) -> Result<Self, BuildError> {
        http::validate_url("url", &url)?;
        let bearer_token = match bearer_token {
            Some(token) if token.expose().trim().is_empty() => {
                return Err(BuildError::Empty {
                    field: "bearer_token",
                });
            }
            Some(token) => {
                let token = http::trimmed(token);
                if HeaderValue::from_str(&format!("Bearer {}", token.expose())).is_err() {
                    return Err(BuildError::Invalid {
                        field: "bearer_token",
                        reason: "not a valid HTTP header value".to_owned(),
                    });
                }
                Some(token)
            }
            None => None,
        };
        let client = http::build_client(timeouts)?;
        Ok(Self {
            name: name.into(),
            url: http::trimmed(url),
            bearer_token,
            format,
            timeouts,
            client,
        })
    }

    pub fn from_config(config: &WebhookConfig) -> Result<Self, BuildError> {
        let timeouts = HttpTimeouts::from_ms(config.timeout_ms, config.connect_timeout_ms)?;
        Self::new(
            config.name.clone(),
            config.url.clone(),
            config.bearer_token.clone(),
            config.format,
            timeouts,
        )
    }

    pub fn format(&self) -> WebhookFormat {
        self.format
    }

    pub fn timeouts(&self) -> HttpTimeouts {
        self.timeouts
    }

    fn secrets(&self) -> Vec<&Secret> {
        std::iter::once(&self.url)
            .chain(self.bearer_token.as_ref())
            .collect()
    }
}

impl fmt::Debug for WebhookBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookBackend")
            .field("name", &self.name)
            .field("url", &redact_url(self.url.expose()))
            .field("bearer_token", &self.bearer_token)
            .field("format", &self.format)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Backend for WebhookBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Webhook
    }

    async fn send(&self, job: &DeliveryJob, idempotency_key: &str) -> Result<(), SendError> {
        let secrets = self.secrets();
        let mut request = self.client.post(self.url.expose());
        request = match self.format {
            WebhookFormat::Ward => request.json(&WebhookPayload::new(job, idempotency_key)),
            WebhookFormat::Moog => request.json(&MoogPayload::new(job, idempotency_key)),
        };
        match HeaderValue::from_str(idempotency_key) {
            Ok(value) => request = request.header(IDEMPOTENCY_KEY_HEADER, value),
            Err(_) => {
                return Err(SendError::permanent(
                    "invalid_payload",
                    "the idempotency key is not a valid header value",
                ));
            }
        }
        if let Some(token) = &self.bearer_token {
            // Checked in `new`; marked sensitive so hyper never logs it.
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| SendError::permanent("invalid_payload", "invalid bearer token"))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Err(logged(&self.name, http::classify_transport(err, &secrets))),
        };
        let status = response.status().as_u16();
        if matches!(status, 200 | 201 | 202 | 204) {
            tracing::debug!(channel = %self.name, status, "webhook accepted");
            return Ok(());
        }
        let reply = Reply::read(response).await;
        let err = if reply.status.is_success() {
            SendError::permanent(
                format!("http_{status}"),
                format!(
                    "webhook answered {status}, not 200/201/202/204: {}",
                    http::scrub(&http::error_detail(&reply.body), &secrets)
                ),
            )
        } else {
            http::classify_reply("webhook", &reply, &secrets)
        };
        Err(logged(&self.name, err))
    }
}

fn logged(channel: &str, err: SendError) -> SendError {
    tracing::debug!(channel, class = %err.class, error = %err.message, "webhook delivery failed");
    err
}
