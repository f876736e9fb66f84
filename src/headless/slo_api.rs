//! `GET /api/v1/slo` on `ward up`: every objective's target, availability, burn rates, budget
//! remaining and state (`ok | warning | critical | unknown`), from the same SLO source and
//! engine as the control room.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::engine::slo::{Exhaustion, SloState, window_name};
use crate::model::time::format_rfc3339_ms;
use crate::sources::slo::{SloFeed, SloReading};

/// The answer's shape; `version` changes when a field changes meaning or goes away.
#[derive(Debug, Serialize)]
pub struct SloReport {
    pub version: u32,
    /// Where the figures come from.
    pub source: String,
    /// When they were read (RFC 3339); `null` before the first good read.
    pub read_at: Option<String>,
    /// Why the last read failed, if it did; the figures are then the last good ones.
    pub error: Option<String>,
    pub slos: Vec<SloEntry>,
}

#[derive(Debug, Serialize)]
pub struct SloEntry {
    pub name: String,
    pub description: String,
    pub target: f64,
    pub period: &'static str,
    /// Availability over the period; `null` without traffic or series.
    pub actual: Option<f64>,
    /// Burn rate per window (`5m` … `3d`); `null` where unknown.
    pub burn_rates: BTreeMap<String, Option<f64>>,
    /// Fraction of the period's budget left; negative when overspent.
    pub budget_remaining: Option<f64>,
    /// Seconds until the budget runs out at the 1 h burn rate (0: already spent; `null`: not
    /// burning or unknown).
    pub exhaustion_s: Option<f64>,
    pub state: SloState,
    /// The multiwindow alerts: severity, windows, threshold and whether each fires.
    pub alerts: Vec<crate::engine::slo::AlertFigures>,
}

impl SloEntry {
    fn from_reading(reading: &SloReading) -> Self {
        let f = &reading.figures;
        Self {
            name: reading.name.clone(),
            description: reading.description.clone(),
            target: f.target,
            period: f.period.as_str(),
            actual: f.availability,
            burn_rates: f
                .windows
                .iter()
                .map(|w| (window_name(w.window_s), w.burn_rate))
                .collect(),
            budget_remaining: f.budget_remaining,
            exhaustion_s: match f.exhaustion {
                Exhaustion::Exhausted => Some(0.0),
                Exhaustion::In { seconds } => Some(seconds),
                Exhaustion::NotBurning | Exhaustion::Unknown => None,
            },
            state: f.state,
            alerts: f.alerts.clone(),
        }
    }
}

/// The report for the feed's latest section.
pub fn report(feed: &SloFeed) -> SloReport {
    let section = feed.borrow().clone();
    match section {
        None => SloReport {
            version: 1,
            source: String::new(),
            read_at: None,
            error: Some("not read yet".to_owned()),
            slos: Vec::new(),
        },
        Some(section) => SloReport {
            version: 1,
            source: section.source.clone(),
            read_at: section.read_at_ms.map(format_rfc3339_ms),
            error: section.error.clone(),
            slos: section
                .readings
                .iter()
                .map(SloEntry::from_reading)
                .collect(),
        },
    }
}

async fn slo(State(feed): State<SloFeed>) -> Response {
    axum::Json(report(&feed)).into_response()
}

/// The whole section as the control room reads it (every figure, trends, next steps).
async fn section(State(feed): State<SloFeed>) -> Response {
    let section = feed.borrow().clone();
    match section {
        Some(section) => axum::Json(section.as_ref().clone()).into_response(),
        None => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "SLO figures not read yet",
        )
            .into_response(),
    }
}

/// `GET /api/v1/slo` (the report) and `/api/v1/slo/section` (everything the control room
/// shows), served from `feed`.
pub fn router(feed: SloFeed) -> Router {
    Router::new()
        .route("/api/v1/slo", get(slo))
        .route("/api/v1/slo/section", get(section))
        .with_state(feed)
}
