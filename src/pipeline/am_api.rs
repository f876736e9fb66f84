//! Alertmanager's API v2 silences on `ward up`, so `amtool silence add|query|update|expire` (and
//! other Alertmanager clients) work against Ward: `GET|POST /api/v2/silences`,
//! `GET|DELETE /api/v2/silence/{id}` and a minimal `GET /api/v2/status`.
//!
//! Every change is an action (`silence_create`, `silence_expire`) run through the policy and
//! audited with origin `api`, the actor being the silence's `createdBy`. A changed silence is a
//! new one and the one it replaces expires (Alertmanager edits some in place; Ward never does).
//! When `ingest.api_keys` is set, every request needs a key without a tenant: silences hide
//! every tenant's alerts.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::actions::{
    Action, ActionError, Actions, Actor, Origin, Outcome, Policy, Report, Settings,
};
use crate::engine::matcher::parse_one;
use crate::model::time::{format_rfc3339_ms, parse_rfc3339_ms};
use crate::model::{LabelMatcher, MatchOp, Silence, SilenceState, sanitize};

/// Longest `createdBy` accepted: it becomes the audit record's user.
const MAX_CREATED_BY: usize = 256;

/// What Alertmanager's silences API needs: the shared part, the silence rules, the channels and
/// the keys and body limit of the ingest server it is served by.
#[derive(Debug)]
pub struct SilencesApi {
    pub(super) shared: Arc<Shared>,
    pub(super) silence_policy: crate::engine::silence::SilencePolicy,
    pub(super) channels: Vec<String>,
    pub(super) api_keys: Vec<crate::config::ApiKey>,
    pub(super) body_limit_bytes: usize,
}

/// What the handlers share.
#[derive(Clone)]
struct Api {
    am: Arc<SilencesApi>,
    /// When this server started (`uptime` in the status).
    started_ms: i64,
}

/// The Alertmanager API v2 routes (silences and status).
pub fn app(am: Arc<SilencesApi>) -> Router {
    let started_ms = am.shared.store.now_ms();
    Router::new()
        .route("/api/v2/silences", get(list).post(post))
        .route("/api/v2/silence/{id}", get(one).delete(expire))
        .route("/api/v2/status", get(status))
        .with_state(Api { am, started_ms })
}

/// A refusal as Alertmanager answers one: the status, the message as a JSON string.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("silence {:?} not found", sanitize(id)),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.message)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ActionError> for ApiError {
    fn from(error: ActionError) -> Self {
        let status = match &error {
            ActionError::Refused(_) => StatusCode::FORBIDDEN,
            ActionError::Invalid(_) => StatusCode::BAD_REQUEST,
            ActionError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

/// The key a request presents, when keys are configured: it must not be bound to a tenant.
fn authorize<'a>(
    am: &'a SilencesApi,
    headers: &HeaderMap,
) -> Result<Option<&'a crate::config::ApiKey>, ApiError> {
    let key = super::ingest::api_key(&am.api_keys, headers)
        .map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, why))?;
    if let Some(tenant) = key.and_then(|k| k.tenant.as_deref()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this API key is bound to tenant {tenant:?}: silences hide every tenant's alerts, \
                 so the silences API takes a key without a tenant"
            ),
        ));
    }
    Ok(key)
}

/// A matcher in Alertmanager's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiMatcher {
    name: String,
    value: String,
    is_regex: bool,
    #[serde(default = "default_is_equal")]
    is_equal: bool,
}

fn default_is_equal() -> bool {
    true
}

impl From<&LabelMatcher> for ApiMatcher {
    fn from(m: &LabelMatcher) -> Self {
        Self {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.op.is_regex(),
            is_equal: m.op.is_equal(),
        }
    }
}

#[derive(Debug, Serialize)]
struct SilenceStatus {
    state: SilenceState,
}

/// `gettableSilence`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: SilenceStatus,
    updated_at: String,
    matchers: Vec<ApiMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

impl GettableSilence {
    fn of(silence: &Silence, now_ms: i64) -> Self {
        Self {
            id: silence.id.clone(),
            status: SilenceStatus {
                state: silence.state(now_ms),
            },
            updated_at: format_rfc3339_ms(silence.updated_at_ms),
            matchers: silence.matchers.iter().map(ApiMatcher::from).collect(),
            starts_at: format_rfc3339_ms(silence.starts_at_ms),
            ends_at: format_rfc3339_ms(silence.ends_at_ms),
            created_by: silence.created_by.clone(),
            comment: silence.comment.clone(),
        }
    }
}

/// `postableSilence`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Vec<ApiMatcher>,
    starts_at: String,
    ends_at: String,
    created_by: String,
    comment: String,
}

/// Alertmanager's filter: for every filter matcher the silence has one with the same name,
/// operator and value (equal as written, not matched: `api/v2` `CheckSilenceMatchesFilterLabels`).
fn passes_filters(silence: &Silence, filters: &[LabelMatcher]) -> bool {
    filters.iter().all(|f| silence.matchers.contains(f))
}

/// Alertmanager's order: active (ending soonest first), pending (starting soonest first), then
/// expired (most recently ended first).
fn alertmanager_order(a: &Silence, b: &Silence, now_ms: i64) -> Ordering {
    let rank = |s: &Silence| match s.state(now_ms) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    rank(a)
        .cmp(&rank(b))
        .then_with(|| match a.state(now_ms) {
            SilenceState::Active => a.ends_at_ms.cmp(&b.ends_at_ms),
            SilenceState::Pending => a.starts_at_ms.cmp(&b.starts_at_ms),
            SilenceState::Expired => b.ends_at_ms.cmp(&a.ends_at_ms),
        })
        .then_with(|| a.id.cmp(&b.id))
}

/// `filter` (repeatable matchers) and the `active`, `pending`, `expired` switches (default true).
struct ListQuery {
    filters: Vec<LabelMatcher>,
    states: Vec<SilenceState>,
}

impl ListQuery {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut filters = Vec::new();
        let mut states = vec![
            SilenceState::Active,
            SilenceState::Pending,
            SilenceState::Expired,
        ];
        for (name, value) in pairs {
            let state = match name.as_str() {
                "filter" => {
                    filters.push(
                        parse_one(value)
                            .map_err(|e| ApiError::bad_request(format!("filter: {e}")))?,
                    );
                    continue;
                }
                "active" => SilenceState::Active,
                "pending" => SilenceState::Pending,
                "expired" => SilenceState::Expired,
                _ => continue,
            };
            match value.as_str() {
                "true" => {}
                "false" => states.retain(|s| *s != state),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "{name}: {:?} is not true or false",
                        sanitize(other)
                    )));
                }
            }
        }
        Ok(Self { filters, states })
    }
}

async fn list(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    authorize(&api.am, &headers)?;
    let query = ListQuery::parse(&pairs)?;
    let now = api.am.shared.store.now_ms();
    let mut silences: Vec<Silence> = api
        .am
        .shared
        .store
        .silences()
        .await?
        .into_iter()
        .filter(|s| query.states.contains(&s.state(now)) && passes_filters(s, &query.filters))
        .collect();
    silences.sort_by(|a, b| alertmanager_order(a, b, now));
    let body: Vec<GettableSilence> = silences
        .iter()
        .map(|s| GettableSilence::of(s, now))
        .collect();
    Ok(axum::Json(body).into_response())
}

async fn one(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&api.am, &headers)?;
    let silence = api
        .am
        .shared
        .store
        .silence_get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(&id))?;
    let now = api.am.shared.store.now_ms();
    Ok(axum::Json(GettableSilence::of(&silence, now)).into_response())
}

/// The actions context of one request: `user@api`, or `user@api:<key name>` with a key.
fn actions_for(am: &SilencesApi, user: &str, key: Option<&crate::config::ApiKey>) -> Actions {
    Actions {
        store: am.shared.store.clone(),
        policy: Policy::writable(),
        actor: Actor {
            user: user.to_owned(),
            host: key.map_or_else(|| "api".to_owned(), |k| format!("api:{}", k.name)),
        },
        origin: Origin::Api,
        target: am.shared.store.backend_name().to_owned(),
        // An operator's explicit request: `workers.dry_run` is for automatic actions only.
        settings: Settings {
            dry_run: false,
            ..Settings::default()
        },
        channels: am.channels.clone(),
        silences: am.silence_policy.clone(),
    }
}

/// Plan and run one action; its report once it completed.
async fn run(actions: &Actions, action: Action) -> Result<Report, ApiError> {
    let plan = actions.plan(action).await?;
    let report = actions
        .execute(
            &plan,
            &tokio_util::sync::CancellationToken::new(),
            &mut |_| {},
        )
        .await?;
    match &report.outcome {
        Outcome::Completed => Ok(report),
        Outcome::Indeterminate(error) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change may or may not have been written: {error}"),
        )),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the change was not made ({})", other.as_str()),
        )),
    }
}

fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
}

/// The create action a posted silence asks for (validated further by the action's plan).
fn create_action(posted: PostableSilence) -> Result<(Action, String), ApiError> {
    let mut matchers = Vec::with_capacity(posted.matchers.len());
    for (at, m) in posted.matchers.iter().enumerate() {
        if !is_label_name(&m.name) {
            return Err(ApiError::bad_request(format!(
                "matchers[{at}]: {:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                sanitize(&m.name)
            )));
        }
        matchers.push(LabelMatcher::new(
            &m.name,
            MatchOp::from_flags(m.is_regex, m.is_equal),
            &m.value,
        ));
    }
    let time = |field: &str, text: &str| {
        parse_rfc3339_ms(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{field}: {:?} is not an RFC 3339 time",
                sanitize(text)
            ))
        })
    };
    let starts_at_ms = time("startsAt", &posted.starts_at)?;
    let ends_at_ms = time("endsAt", &posted.ends_at)?;
    let created_by = posted.created_by.trim().to_owned();
    if created_by.len() > MAX_CREATED_BY || created_by.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "createdBy: at most {MAX_CREATED_BY} bytes, without control characters"
        )));
    }
    let action = Action::SilenceCreate {
        matchers,
        starts_at_ms,
        ends_at_ms,
        comment: posted.comment,
        replaces: posted.id.filter(|id| !id.is_empty()),
    };
    Ok((action, created_by))
}

fn parse_body(bytes: &[u8]) -> Result<PostableSilence, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request(format!("{at}{}", error.into_inner()))
    })
}

async fn post(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let am = &api.am;
    let key = authorize(am, &headers)?;
    let limit = am.body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is over the limit of {limit} bytes"),
        )
    })?;
    let (action, created_by) = create_action(parse_body(&bytes)?)?;
    if let Action::SilenceCreate {
        replaces: Some(id), ..
    } = &action
        && am.shared.store.silence_get(id).await?.is_none()
    {
        return Err(ApiError::not_found(id));
    }
    let actions = actions_for(am, &created_by, key);
    let report = run(&actions, action).await?;
    let id = report.silence_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the silence was written but its id was not reported",
        )
    })?;
    tracing::info!(silence = %id, who = %actions.actor, "silence created through the API");
    Ok(axum::Json(serde_json::json!({ "silenceID": id })).into_response())
}

async fn expire(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let am = &api.am;
    let key = authorize(am, &headers)?;
    if am.shared.store.silence_get(&id).await?.is_none() {
        return Err(ApiError::not_found(&id));
    }
    // Alertmanager's DELETE names no author: the audit keeps the key's name, if any.
    let actions = actions_for(am, "anonymous", key);
    run(&actions, Action::SilenceExpire { id: id.clone() }).await?;
    tracing::info!(silence = %id, who = %actions.actor, "silence expired through the API");
    Ok(StatusCode::OK.into_response())
}

async fn status(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&api.am, &headers)?;
    let version = env!("CARGO_PKG_VERSION");
    Ok(axum::Json(serde_json::json!({
        "cluster": { "status": "disabled", "peers": [] },
        "versionInfo": {
            "version": version,
            "revision": "",
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        },
        "config": {
            "original": format!(
                "# ward {version}: Alertmanager's API v2 silences only; Ward's configuration is \
                 its own TOML (ward config show)\n"
            ),
        },
        "uptime": format_rfc3339_ms(api.started_ms),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(id: &str, matchers: &[LabelMatcher], starts: i64, ends: i64) -> Silence {
        Silence {
            id: id.to_owned(),
            matchers: matchers.to_vec(),
            starts_at_ms: starts,
            ends_at_ms: ends,
            created_by: "ann".to_owned(),
            comment: "disk swap".to_owned(),
            updated_at_ms: starts,
            kind: crate::model::SilenceKind::Silence,
        }
    }

    #[test]
    fn filters_keep_silences_holding_each_matcher_as_written() {
        let disk = LabelMatcher::new("alertname", MatchOp::Equal, "Disk");
        let db = LabelMatcher::new("instance", MatchOp::Regex, "db-.*");
        let s = silence("a", &[disk.clone(), db.clone()], 0, 10);
        assert!(passes_filters(&s, &[]));
        assert!(passes_filters(&s, std::slice::from_ref(&disk)));
        assert!(passes_filters(&s, &[disk, db]));
        assert!(
            !passes_filters(&s, &[LabelMatcher::new("instance", MatchOp::Equal, "db-1")]),
            "a value the silence's regex matches is not the same matcher"
        );
        assert!(!passes_filters(
            &s,
            &[LabelMatcher::new("alertname", MatchOp::NotEqual, "Disk")]
        ));
    }

    #[test]
    fn silences_sort_as_alertmanager_lists_them() {
        let m = [LabelMatcher::new("alertname", MatchOp::Equal, "Disk")];
        let now = 100;
        let mut all = [
            silence("expired-early", &m, 0, 10),
            silence("pending-late", &m, 300, 400),
            silence("active-late", &m, 0, 500),
            silence("expired-late", &m, 0, 50),
            silence("active-soon", &m, 0, 200),
            silence("pending-soon", &m, 150, 400),
        ];
        all.sort_by(|a, b| alertmanager_order(a, b, now));
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "active-soon",
                "active-late",
                "pending-soon",
                "pending-late",
                "expired-late",
                "expired-early"
            ]
        );
    }

    #[test]
    fn posted_matchers_take_alertmanagers_flags_and_default_is_equal() {
        let posted: PostableSilence = serde_json::from_str(
            r#"{"matchers":[{"name":"alertname","value":"Disk","isRegex":false},
                {"name":"env","value":"dev","isRegex":false,"isEqual":false},
                {"name":"instance","value":"db-.*","isRegex":true,"isEqual":true}],
                "startsAt":"2026-11-25T00:00:00.000Z","endsAt":"2026-11-25T02:00:00Z",
                "createdBy":" ann ","comment":"disk swap","id":""}"#,
        )
        .unwrap();
        let (action, who) = create_action(posted).unwrap();
        assert_eq!(who, "ann");
        let Action::SilenceCreate {
            matchers,
            ends_at_ms,
            starts_at_ms,
            replaces,
            ..
        } = action
        else {
            panic!("a create action");
        };
        assert_eq!(
            matchers.iter().map(|m| m.op).collect::<Vec<_>>(),
            [MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex]
        );
        assert_eq!(ends_at_ms - starts_at_ms, 7_200_000);
        assert_eq!(replaces, None, "an empty id is no id");
    }
}
