//! SLO figures for the control room and `/api/v1/slo`: the counts of each objective over every
//! window, read from a Prometheus HTTP API (one query per objective) or from this process's own
//! counters sampled over time, then evaluated by `engine::slo`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::slo::{Events, Selector, SloDefinition};
use crate::engine::slo::{Measurement, Measurements, SloFigures, WINDOWS_S, evaluate, window_name};
pub use crate::sources::snapshot::{
    BurnTrend, SloReading, SloSection, TREND_POINTS, TREND_RANGE_S,
};

/// The label that tags each part of an objective's combined query.
const TAG: &str = "ward_q";

/// Every window of an objective, then its period, as PromQL ranges.
fn ranges(slo: &SloDefinition) -> Vec<String> {
    WINDOWS_S
        .iter()
        .map(|&w| window_name(w))
        .chain([slo.objective.period.as_str().to_owned()])
        .collect()
}

/// One instant query for all of an objective's counts: `increase` of its bad and total events
/// over each window and the period, each part tagged `ward_q="bad_5m"`, `"total_5m"`, ….
pub fn measurement_query(slo: &SloDefinition) -> String {
    let mut parts = Vec::new();
    for range in ranges(slo) {
        let (bad, total) = slo.events.promql("increase", &range);
        for (what, expr) in [("total", total), ("bad", bad)] {
            parts.push(format!(
                "label_replace({expr}, \"{TAG}\", \"{what}_{range}\", \"\", \"\")"
            ));
        }
    }
    // When the total series first appears within the last two minutes (to the second), the
    // hour and the period (ever more coarsely): how much data backs a window.
    let [_, total] = slo.events.selectors();
    let period = slo.objective.period.as_str();
    for (tag, range, step) in [
        ("first_2m", "2m", "1s"),
        ("first_1h", "1h", "15s"),
        ("first_period", period, "1h"),
    ] {
        parts.push(format!(
            "label_replace(min_over_time(timestamp(sum({total}))[{range}:{step}]), \"{TAG}\", \
             \"{tag}\", \"\", \"\")"
        ));
    }
    parts.join(" or ")
}

/// The measurements in the answer to [`measurement_query`], given as tag → value. A missing
/// total is absent (the series is not there); a missing bad count next to a total is 0 (the
/// query already counts a missing errors series as none).
pub fn measurements_from_tagged(
    slo: &SloDefinition,
    values: &BTreeMap<String, f64>,
    now_ms: i64,
) -> Measurements {
    let measure = |range: &str| match values.get(&format!("total_{range}")) {
        None => Measurement::Absent,
        Some(&total) => {
            let bad = values.get(&format!("bad_{range}")).copied().unwrap_or(0.0);
            Measurement::events(bad, total)
        }
    };
    let ranges = ranges(slo);
    let mut measured = Measurements::absent();
    for (slot, range) in measured.windows.iter_mut().zip(&ranges) {
        *slot = measure(range);
    }
    if let Some(period) = ranges.last() {
        measured.period = measure(period);
    }
    measured.history_s = history_s(values, now_ms, slo.objective.period.seconds());
    measured
}

/// Seconds of data behind the figures, from when the total series first appears in the last
/// two minutes (1 s steps), hour (15 s steps) or period (1 h steps); `None` when it goes back
/// further than all three.
fn history_s(values: &BTreeMap<String, f64>, now_ms: i64, period_s: u64) -> Option<u64> {
    let now = now_ms as f64 / 1_000.0;
    let since = |first: f64| Some((now - first).max(0.0).round() as u64);
    for (tag, span) in [("first_2m", 120.0), ("first_1h", 3_600.0)] {
        if let Some(&first) = values.get(tag)
            && first > now - span + 30.0
        {
            return since(first);
        }
    }
    match values.get("first_period") {
        Some(&first) if first > now - period_s as f64 + 3_600.0 => since(first),
        _ => None,
    }
}

/// The next step for an objective in `figures`' state: page and ticket name where to look.
pub fn next_step(slo: &SloDefinition, figures: &SloFigures) -> String {
    use crate::engine::slo::SloState;
    let short_data = figures
        .windows
        .iter()
        .find_map(|w| w.covered_s)
        .map(|s| {
            format!(
                " (the figures cover {} of data)",
                crate::model::time::short_duration(s * 1_000)
            )
        })
        .unwrap_or_default();
    match figures.state {
        SloState::Critical => format!(
            "page: fast burn, act now: look at {}{short_data}",
            slo.where_to_look()
        ),
        SloState::Warning => format!(
            "ticket: slow burn, fix within the day: look at {}{short_data}",
            slo.where_to_look()
        ),
        SloState::Unknown
            if figures
                .windows
                .iter()
                .all(|w| w.measurement == Measurement::Absent) =>
        {
            "no data: the metric is not there; check that the source scrapes ward up".to_owned()
        }
        SloState::Unknown => "no traffic in the windows: nothing to judge yet".to_owned(),
        SloState::Ok => String::new(),
    }
}

/// The fast page's windows (5 m and 1 h) and threshold for `slo`.
fn fast_page(slo: &SloDefinition) -> (u64, u64, f64) {
    let page = crate::engine::slo::ALERT_WINDOWS[0];
    (page.short_s, page.long_s, page.factor(slo.objective.period))
}

/// The running totals of one objective's bad and total events, sampled from counters, so
/// windows can be measured without Prometheus: what `ward demo` and a lone `ward up` show.
#[derive(Debug, Clone, Default)]
pub struct CounterHistory {
    /// (time ms, bad so far, total so far); `None` totals while the series do not exist yet.
    samples: VecDeque<(i64, f64, Option<f64>)>,
}

/// Samples closer together than this are thinned once they are older than [`DENSE_MS`].
const SPARSE_STEP_MS: i64 = 60_000;
const DENSE_MS: i64 = 15 * 60_000;

impl CounterHistory {
    /// Record the totals at `at_ms`. History is kept for `keep_ms` (the objective's period),
    /// every sample of the last quarter hour and one a minute before that.
    pub fn record(&mut self, at_ms: i64, bad: Option<f64>, total: Option<f64>, keep_ms: i64) {
        self.samples.push_back((at_ms, bad.unwrap_or(0.0), total));
        while self
            .samples
            .front()
            .is_some_and(|(t, _, _)| *t < at_ms - keep_ms)
        {
            self.samples.pop_front();
        }
        // Thin the sample that just aged past the dense part: keep it only a minute after the
        // one before it.
        let dense_from = at_ms - DENSE_MS;
        let aged = self.samples.iter().rposition(|(t, _, _)| *t < dense_from);
        if let Some(i) = aged
            && i > 0
            && self.samples[i].0 - self.samples[i - 1].0 < SPARSE_STEP_MS
            && i + 1 < self.samples.len()
        {
            self.samples.remove(i);
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// When the total series was last in a sample.
    pub fn seen_at(&self) -> Option<i64> {
        self.samples
            .iter()
            .rev()
            .find(|(_, _, total)| total.is_some())
            .map(|(t, _, _)| *t)
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Events over the `window_ms` before the newest sample, from the oldest sample inside it
    /// (or the oldest there is, when the history is shorter than the window). A counter that
    /// went down restarted from 0 (DOMAIN §1.6).
    pub fn measure(&self, window_ms: i64) -> Measurement {
        match self.samples.back() {
            Some(&(now, _, Some(_))) => self.measure_between(now - window_ms, now),
            _ => Measurement::Absent,
        }
    }

    /// The burn rate over `window_ms` ending at each of `points` times a step apart, the last
    /// at the newest sample.
    pub fn trend(
        &self,
        slo: &SloDefinition,
        window_ms: i64,
        points: u16,
        step_ms: i64,
    ) -> Vec<Option<f64>> {
        let Some(&(now, _, _)) = self.samples.back() else {
            return vec![None; usize::from(points)];
        };
        (0..i64::from(points))
            .rev()
            .map(|k| {
                let end = now - k * step_ms;
                self.measure_between(end - window_ms, end)
                    .error_ratio()
                    .map(|e| slo.objective.burn_rate(e))
            })
            .collect()
    }

    /// Events between `from_ms` and `to_ms`, from the samples nearest inside that span.
    fn measure_between(&self, from_ms: i64, to_ms: i64) -> Measurement {
        // Samples are in time order: binary searches keep a month of history cheap to read.
        let end = self.samples.partition_point(|(t, _, _)| *t <= to_ms);
        let start = self
            .samples
            .partition_point(|(t, _, _)| *t < from_ms)
            .min(end);
        let Some(&(_, bad_end, Some(total_end))) = self
            .samples
            .range(..end)
            .rev()
            .find(|(_, _, total)| total.is_some())
        else {
            return Measurement::Absent;
        };
        let Some(&(_, bad_start, total_start)) = self
            .samples
            .range(start..end)
            .find(|(_, _, total)| total.is_some())
        else {
            return Measurement::NoTraffic;
        };
        let total_start = total_start.unwrap_or(0.0);
        // A counter that went down restarted from 0 (DOMAIN §1.6).
        let grown = |end: f64, start: f64| if end >= start { end - start } else { end };
        Measurement::events(grown(bad_end, bad_start), grown(total_end, total_start))
    }

    /// Every window of `slo` and its period.
    pub fn measurements(&self, slo: &SloDefinition) -> Measurements {
        let mut measured = Measurements::absent();
        let first = self.samples.iter().find(|(_, _, total)| total.is_some());
        measured.history_s = match (first, self.samples.back()) {
            (Some(&(from, _, _)), Some(&(to, _, _))) => u64::try_from((to - from) / 1_000).ok(),
            _ => None,
        };
        for (slot, &window_s) in measured.windows.iter_mut().zip(&WINDOWS_S) {
            *slot = self.measure(window_s as i64 * 1_000);
        }
        measured.period = self.measure(slo.objective.period.seconds() as i64 * 1_000);
        measured
    }
}

/// Sum of the samples a selector picks from a scrape, `None` when it picks none.
pub fn select_sum(
    samples: &[crate::sources::scrape::ScrapedSample],
    selector: &Selector,
) -> Option<f64> {
    crate::sources::scrape::sum(samples, &selector.metric, |labels| {
        // The scraper writes bucket bounds in their shortest form (`1`); selectors as
        // exporters do (`1.0`).
        selector.matches(&|name: &str| {
            let value = labels.get(name)?;
            match (name, value.parse::<f64>()) {
                ("le", Ok(bound)) if bound.is_finite() => Some(crate::config::slo::le_label(bound)),
                _ => Some(value.clone()),
            }
        })
    })
}

/// An objective's running (bad, total) in one scrape of counters.
pub fn bad_and_total(
    events: &Events,
    samples: &[crate::sources::scrape::ScrapedSample],
) -> (Option<f64>, Option<f64>) {
    match events {
        Events::Errors { errors, total } => {
            let total = select_sum(samples, total);
            (select_sum(samples, errors).or(total.map(|_| 0.0)), total)
        }
        Events::Good { good, total } => {
            let total = select_sum(samples, total);
            let good = select_sum(samples, good).unwrap_or(0.0);
            (total.map(|t| (t - good).max(0.0)), total)
        }
    }
}

/// Objectives evaluated from this process's counters: sample with [`LocalSlos::sample`] (the
/// exposition text of the process's registry), read with [`LocalSlos::readings`].
#[derive(Debug, Clone)]
pub struct LocalSlos {
    slos: Vec<(SloDefinition, CounterHistory)>,
}

impl LocalSlos {
    pub fn new(slos: Vec<SloDefinition>) -> Self {
        Self {
            slos: slos
                .into_iter()
                .map(|s| (s, CounterHistory::default()))
                .collect(),
        }
    }

    /// Take one sample of every objective's counters from an exposition text.
    pub fn sample(&mut self, exposition: &str, at_ms: i64) -> Result<(), String> {
        let samples =
            crate::sources::scrape::parse_exposition(exposition).map_err(|e| e.to_string())?;
        for (slo, history) in &mut self.slos {
            let (bad, total) = bad_and_total(&slo.events, &samples);
            let keep = slo.objective.period.seconds() as i64 * 1_000;
            history.record(at_ms, bad, total, keep);
        }
        Ok(())
    }

    pub fn readings(&self) -> Vec<SloReading> {
        self.slos
            .iter()
            .map(|(slo, history)| {
                let (short_s, long_s, threshold) = fast_page(slo);
                let step_ms = (TREND_RANGE_S / u64::from(TREND_POINTS)) as i64 * 1_000;
                let figures = evaluate(&slo.objective, &history.measurements(slo));
                SloReading {
                    name: slo.name.clone(),
                    description: slo.description.clone(),
                    next_step: next_step(slo, &figures),
                    figures,
                    trend: BurnTrend {
                        short: history.trend(slo, short_s as i64 * 1_000, TREND_POINTS, step_ms),
                        long: history.trend(slo, long_s as i64 * 1_000, TREND_POINTS, step_ms),
                        threshold,
                    },
                    seen_at_ms: history.seen_at(),
                }
            })
            .collect()
    }
}

/// How often SLO figures are read from Prometheus: each read is one query per objective over
/// windows up to the whole period, heavier than a store read.
pub const PROMETHEUS_INTERVAL: Duration = Duration::from_secs(5);

/// How often this process's own counters are sampled.
pub const LOCAL_INTERVAL: Duration = Duration::from_secs(1);

/// The SLO source a config names: its Prometheus when `slo.prometheus_url` is set, else, when
/// `render` gives this process's metrics, its own counters; `None` when there is neither.
pub fn from_config(
    config: &crate::config::Config,
    render: Option<Box<dyn Fn() -> String + Send>>,
    stop: &CancellationToken,
) -> Result<Option<SloFeed>, String> {
    let slos = config
        .slo
        .definitions(&config.delivery)
        .map_err(|(key, message)| format!("{key}: {message}"))?;
    if !config.slo.prometheus_url.is_empty() {
        let client = crate::sources::prometheus::PrometheusClient::new(
            &config.slo.prometheus_url,
            Duration::from_millis(config.slo.timeout_ms),
        )
        .map_err(|e| format!("slo.prometheus_url: {e}"))?;
        return Ok(Some(spawn_prometheus(
            client,
            slos,
            PROMETHEUS_INTERVAL,
            stop.child_token(),
        )));
    }
    if let Some(render) = render {
        return Ok(Some(spawn_local(
            render,
            slos,
            LOCAL_INTERVAL,
            stop.child_token(),
        )));
    }
    // Attached without Prometheus: the figures the ward up it attaches to serves.
    let Some(url) = config.slo.api_section_url(&config.ingest.bind) else {
        return Ok(None);
    };
    let reader = ApiReader::new(&url, Duration::from_millis(config.slo.timeout_ms))?;
    Ok(Some(spawn_api(
        reader,
        PROMETHEUS_INTERVAL,
        stop.child_token(),
    )))
}

/// The fast page's burn rates over the last hour from Prometheus: one range query per window,
/// a point per column (the step never below the scrape interval). A failed query leaves its
/// line unknown rather than failing the reading.
async fn prometheus_trend(
    client: &crate::sources::prometheus::PrometheusClient,
    slo: &SloDefinition,
    now_ms: i64,
) -> BurnTrend {
    let (short_s, long_s, threshold) = fast_page(slo);
    let end = now_ms as f64 / 1_000.0;
    let start = end - TREND_RANGE_S as f64;
    let step = crate::sources::prometheus::range_step(TREND_RANGE_S as f64, TREND_POINTS, 1.0);
    let line = |window_s: u64| async move {
        let (bad, total) = slo.events.promql("increase", &window_name(window_s));
        let series = client
            .query_range(&format!("{bad} / {total}"), start, end, step)
            .await
            .unwrap_or_default();
        let points: BTreeMap<i64, f64> = series
            .first()
            .map(|s| {
                s.points
                    .iter()
                    .map(|&(t, v)| (t.round() as i64, v))
                    .collect()
            })
            .unwrap_or_default();
        (0..i64::from(TREND_POINTS))
            .rev()
            .map(|k| {
                let t = (end - k as f64 * step).round() as i64;
                points
                    .range(t - step as i64..=t)
                    .next_back()
                    .map(|(_, &ratio)| ratio)
                    .filter(|r| r.is_finite())
                    .map(|r| slo.objective.burn_rate(r))
            })
            .collect()
    };
    let (short, long) = tokio::join!(line(short_s), line(long_s));
    BurnTrend {
        short,
        long,
        threshold,
    }
}

/// The latest SLO section, for the poller to put in every snapshot.
pub type SloFeed = watch::Receiver<Option<Arc<SloSection>>>;

/// Milliseconds since the epoch by the system clock (SLO windows are wall-clock windows).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One way of reading SLO figures into a section, run by [`spawn_feed`].
trait SectionReader: Send + 'static {
    fn read(&mut self, section: &mut SloSection, at_ms: i64) -> impl Future<Output = ()> + Send;
}

/// Read into a section every `interval` until `stop`, publishing it after each read.
fn spawn_feed(
    source: String,
    interval: Duration,
    stop: CancellationToken,
    mut reader: impl SectionReader,
) -> SloFeed {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut section = SloSection {
            source,
            read_at_ms: None,
            error: None,
            readings: Vec::new(),
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = reader.read(&mut section, now_ms()) => {}
            }
            if tx.send(Some(Arc::new(section.clone()))).is_err() {
                return;
            }
        }
    });
    rx
}

struct LocalReader<R> {
    local: LocalSlos,
    render: R,
}

impl<R: Fn() -> String + Send + 'static> SectionReader for LocalReader<R> {
    async fn read(&mut self, section: &mut SloSection, at_ms: i64) {
        match self.local.sample(&(self.render)(), at_ms) {
            Ok(()) => {
                section.readings = self.local.readings();
                section.read_at_ms = Some(at_ms);
                section.error = None;
            }
            Err(error) => section.error = Some(error),
        }
    }
}

/// Evaluate `slos` from this process's counters (`render` gives the exposition text of its
/// registry) every `interval` until `stop`.
pub fn spawn_local(
    render: impl Fn() -> String + Send + 'static,
    slos: Vec<SloDefinition>,
    interval: Duration,
    stop: CancellationToken,
) -> SloFeed {
    let reader = LocalReader {
        local: LocalSlos::new(slos),
        render,
    };
    spawn_feed("this process's counters".to_owned(), interval, stop, reader)
}

/// Reads every objective from a Prometheus HTTP API.
pub struct PrometheusReader {
    client: crate::sources::prometheus::PrometheusClient,
    slos: Vec<SloDefinition>,
}

impl PrometheusReader {
    pub fn new(
        client: crate::sources::prometheus::PrometheusClient,
        slos: Vec<SloDefinition>,
    ) -> Self {
        Self { client, slos }
    }

    /// One read into a new section (headless commands read once, with no earlier figures).
    pub async fn read_once(&self, at_ms: i64) -> SloSection {
        let mut section = SloSection {
            source: format!("prometheus {}", self.client.url()),
            read_at_ms: None,
            error: None,
            readings: Vec::new(),
        };
        self.read_into(&mut section, at_ms).await;
        section
    }

    /// One objective's reading; `last` is its previous one (for when its series went away).
    async fn reading(
        &self,
        slo: &SloDefinition,
        last: Option<&SloReading>,
        at_ms: i64,
    ) -> Result<SloReading, crate::sources::prometheus::PromError> {
        let query = measurement_query(slo);
        let (samples, trend) = tokio::join!(
            self.client.query(&query),
            prometheus_trend(&self.client, slo, at_ms)
        );
        let values: BTreeMap<String, f64> = samples?
            .into_iter()
            .filter_map(|s| Some((s.labels.get(TAG)?.clone(), s.value)))
            .collect();
        let measured = measurements_from_tagged(slo, &values, at_ms);
        let seen_at_ms = if measured.windows[0] == Measurement::Absent {
            last.and_then(|r| r.seen_at_ms)
        } else {
            Some(at_ms)
        };
        let figures = evaluate(&slo.objective, &measured);
        Ok(SloReading {
            name: slo.name.clone(),
            description: slo.description.clone(),
            next_step: next_step(slo, &figures),
            figures,
            trend,
            seen_at_ms,
        })
    }
}

impl SectionReader for PrometheusReader {
    async fn read(&mut self, section: &mut SloSection, at_ms: i64) {
        self.read_into(section, at_ms).await;
    }
}

impl PrometheusReader {
    async fn read_into(&self, section: &mut SloSection, at_ms: i64) {
        let mut errors = Vec::new();
        let mut readings = Vec::with_capacity(self.slos.len());
        let last = |slo: &SloDefinition| section.readings.iter().find(|r| r.name == slo.name);
        // Every objective at once: a read costs one Prometheus round trip, not one per objective.
        let results = futures::future::join_all(
            self.slos
                .iter()
                .map(|slo| self.reading(slo, last(slo), at_ms)),
        )
        .await;
        for (slo, result) in self.slos.iter().zip(results) {
            let last = last(slo);
            match result {
                Ok(reading) => readings.push(reading),
                Err(error) => {
                    errors.push(format!("{}: {error}", slo.name));
                    readings.extend(last.cloned());
                }
            }
        }
        if errors.len() < self.slos.len() || self.slos.is_empty() {
            section.read_at_ms = Some(at_ms);
        }
        section.readings = readings;
        section.error = (!errors.is_empty()).then(|| errors.join("; "));
    }
}

/// Evaluate `slos` from a Prometheus HTTP API every `interval` until `stop`: one query per
/// objective; a failed query keeps that objective's last figures and reports the error.
pub fn spawn_prometheus(
    client: crate::sources::prometheus::PrometheusClient,
    slos: Vec<SloDefinition>,
    interval: Duration,
    stop: CancellationToken,
) -> SloFeed {
    let source = format!("prometheus {}", client.url());
    spawn_feed(source, interval, stop, PrometheusReader { client, slos })
}

/// Reads the figures a `ward up` serves at `/api/v1/slo/section`: what a control room attached
/// to it shows when there is no Prometheus.
pub struct ApiReader {
    client: reqwest::Client,
    url: String,
}

impl ApiReader {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| format!("slo.api_url: {e}"))?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    fn source(&self) -> String {
        format!("ward up {}", self.url)
    }

    async fn fetch(&self) -> Result<SloSection, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("{}: {e} (is ward up running? set slo.api_url)", self.url))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.url, response.status()));
        }
        response
            .json::<SloSection>()
            .await
            .map_err(|e| format!("{}: not an SLO section: {e}", self.url))
    }

    /// One read (headless commands read once).
    pub async fn read_once(&self) -> SloSection {
        let mut section = SloSection {
            source: self.source(),
            read_at_ms: None,
            error: None,
            readings: Vec::new(),
        };
        self.read_into(&mut section).await;
        section
    }

    async fn read_into(&self, section: &mut SloSection) {
        match self.fetch().await {
            Ok(read) => {
                // Whose figures these are: this ward up's, from its own source.
                section.source = format!("{} via {}", self.source(), read.source);
                section.read_at_ms = read.read_at_ms;
                section.error = read.error;
                section.readings = read.readings;
            }
            // The last good figures stay, with the error beside them.
            Err(error) => section.error = Some(error),
        }
    }
}

impl SectionReader for ApiReader {
    async fn read(&mut self, section: &mut SloSection, _at_ms: i64) {
        self.read_into(section).await;
    }
}

/// Read `ward up`'s SLO section every `interval` until `stop`.
pub fn spawn_api(reader: ApiReader, interval: Duration, stop: CancellationToken) -> SloFeed {
    spawn_feed(reader.source(), interval, stop, reader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::slo::{Sli, SloSpec, builtin_objectives};
    use crate::engine::slo::{Period, SloState};

    fn ingest() -> SloDefinition {
        builtin_objectives(&[])[0].definition().unwrap()
    }

    #[test]
    fn one_query_tags_every_window_and_the_period() {
        let query = measurement_query(&ingest());
        for range in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
            assert!(query.contains(&format!("\"total_{range}\"")), "{range}");
            assert!(query.contains(&format!("\"bad_{range}\"")), "{range}");
            assert!(query.contains(&format!("[{range}]")), "{range}");
        }
        assert_eq!(query.matches(" or label_replace(").count(), 18);
        assert!(query.contains("min_over_time(timestamp(sum("), "{query}");
    }

    #[test]
    fn the_data_behind_the_figures_is_read_at_the_finest_step_that_saw_its_start() {
        let now_ms = 1_000_000_000;
        let now = now_ms as f64 / 1_000.0;
        let at = |pairs: &[(&str, f64)]| {
            let values: BTreeMap<String, f64> =
                pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            history_s(&values, now_ms, 30 * 86_400)
        };
        // Ten seconds of data: the 1 s steps see it; the coarser ones may not have a step yet.
        assert_eq!(at(&[("first_2m", now - 10.0)]), Some(10));
        assert_eq!(
            at(&[("first_2m", now - 119.0), ("first_1h", now - 1_000.0)]),
            Some(1_000)
        );
        assert_eq!(
            at(&[
                ("first_2m", now - 119.0),
                ("first_1h", now - 3_599.0),
                ("first_period", now - 7_200.0)
            ]),
            Some(7_200)
        );
        assert_eq!(
            at(&[("first_period", now - 30.0 * 86_400.0)]),
            None,
            "the whole period"
        );
    }

    #[test]
    fn tagged_answers_become_measurements() {
        let slo = ingest();
        let mut values = BTreeMap::new();
        values.insert("total_5m".to_owned(), 1_000.0);
        values.insert("bad_5m".to_owned(), 20.0);
        values.insert("total_1h".to_owned(), 0.0);
        values.insert("total_30d".to_owned(), 50_000.0);
        let m = measurements_from_tagged(&slo, &values, 0);
        assert_eq!(
            m.windows[0],
            Measurement::Events {
                bad: 20.0,
                total: 1_000.0
            }
        );
        assert_eq!(m.windows[1], Measurement::Absent, "30m total missing");
        assert_eq!(m.windows[2], Measurement::NoTraffic);
        assert_eq!(
            m.period,
            Measurement::Events {
                bad: 0.0,
                total: 50_000.0
            }
        );
    }

    #[test]
    fn counter_history_measures_windows_and_restarts() {
        let mut h = CounterHistory::default();
        let keep = Period::Days30.seconds() as i64 * 1_000;
        assert_eq!(h.measure(60_000), Measurement::Absent);
        h.record(0, None, None, keep);
        assert_eq!(h.measure(60_000), Measurement::Absent, "no series yet");
        for s in 1..=600i64 {
            // 100 events a second, 2 of them bad.
            h.record(
                s * 1_000,
                Some(2.0 * s as f64),
                Some(100.0 * s as f64),
                keep,
            );
        }
        assert_eq!(
            h.measure(300_000),
            Measurement::Events {
                bad: 600.0,
                total: 30_000.0
            }
        );
        // Longer than the history: everything since the first sample with the series.
        assert_eq!(
            h.measure(3_600_000),
            Measurement::Events {
                bad: 1_198.0,
                total: 59_900.0
            }
        );
        // A restart: the counters start again from 0.
        h.record(601_000, Some(1.0), Some(50.0), keep);
        let Measurement::Events { total, .. } = h.measure(1_000) else {
            panic!("{:?}", h.measure(1_000))
        };
        assert!((total - 50.0).abs() < 1e-9);
        // Quiet: nothing new in the window.
        h.record(700_000, Some(1.0), Some(50.0), keep);
        assert_eq!(h.measure(1_000), Measurement::NoTraffic);
    }

    #[test]
    fn history_is_thinned_to_a_sample_a_minute_after_a_quarter_hour() {
        let mut h = CounterHistory::default();
        let keep = Period::Days30.seconds() as i64 * 1_000;
        for s in 0..3_600i64 {
            h.record(s * 1_000, Some(0.0), Some(s as f64), keep);
        }
        // 15 minutes of seconds and 45 minutes of minutes, give or take the edges.
        assert!(h.len() < 900 + 50, "{} samples kept", h.len());
        assert!(h.len() > 900, "{} samples kept", h.len());
    }

    #[test]
    fn a_latency_objective_reads_its_bucket_whatever_the_spelling_of_le() {
        let spec = SloSpec {
            name: "fast".to_owned(),
            description: String::new(),
            target: 0.9,
            period: Period::Days30,
            sli: Sli::Latency {
                histogram: "ward_delivery_duration_seconds".to_owned(),
                threshold_s: 1.0,
            },
        };
        let slo = spec.definition().unwrap();
        let metrics = crate::telemetry::Metrics::new();
        for seconds in [0.2, 0.4, 0.9, 3.0] {
            metrics
                .delivery_latency
                .get_or_create(&crate::telemetry::metrics::ChannelLabels {
                    channel: "pager".to_owned(),
                })
                .observe(seconds);
        }
        let samples = crate::sources::scrape::parse_exposition(&metrics.render()).unwrap();
        assert_eq!(bad_and_total(&slo.events, &samples), (Some(1.0), Some(4.0)));
    }

    #[test]
    fn local_objectives_read_the_processs_own_counters() {
        let spec = SloSpec {
            name: "delivery".to_owned(),
            description: String::new(),
            target: 0.99,
            period: Period::Days30,
            sli: Sli::Availability {
                total: r#"ward_deliveries_total{outcome=~"delivered|dead_lettered"}"#.to_owned(),
                errors: Some(r#"ward_deliveries_total{outcome="dead_lettered"}"#.to_owned()),
                good: None,
            },
        };
        let mut local = LocalSlos::new(vec![spec.definition().unwrap()]);
        let metrics = crate::telemetry::Metrics::new();
        local.sample(&metrics.render(), 0).unwrap();
        assert_eq!(
            local.readings()[0].figures.state,
            SloState::Unknown,
            "no series yet"
        );
        for s in 1..=400i64 {
            for _ in 0..20 {
                metrics.delivery(
                    "slack-ops",
                    "slack",
                    crate::telemetry::DeliveryOutcome::delivered,
                    false,
                );
            }
            if s > 100 {
                metrics.delivery(
                    "slack-ops",
                    "slack",
                    crate::telemetry::DeliveryOutcome::dead_lettered,
                    false,
                );
            }
            local.sample(&metrics.render(), s * 1_000).unwrap();
        }
        let figures = &local.readings()[0].figures;
        // The last 5 minutes: 1 bad of 21 a second. Over the 400 s there are: 300 of 8 280, burn 3.6,
        // over the ticket's 3 and under the pages' 6 and 14.4.
        let five = figures.windows[0].error_ratio.unwrap();
        assert!((five - 1.0 / 21.0).abs() < 1e-9, "{five}");
        assert_eq!(figures.state, SloState::Warning);
    }
}
