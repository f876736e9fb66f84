//! `ward up`: run the pipeline workers (and the ingest endpoint) until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::build_backends;
use crate::pipeline::{Pipeline, PipelineParts, WorkerConfig};
use crate::telemetry::{EventLog, Metrics};

pub fn run(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, out))
}

async fn serve(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = crate::store::open(&config.store)
        .await
        .with_context(|| format!("cannot open the {} store", config.store.backend.as_str()))?;
    let (backends, problems) = build_backends(&config.delivery.channels);
    for problem in &problems {
        problem.log();
    }
    let workers = WorkerConfig::from_config(config);
    let (events, writer) = match &workers.events_log {
        Some(path) => {
            let (log, task) = EventLog::to_file(path)
                .await
                .with_context(|| format!("cannot open the events log {}", path.display()))?;
            (log, Some(task))
        }
        None => (EventLog::disabled(), None),
    };
    let metrics = Metrics::new();
    let pipeline = Pipeline::new(PipelineParts {
        store,
        backends,
        routing: config.routing.clone(),
        policies: config.delivery.retry_policies.clone(),
        breaker: config.breaker.clone(),
        ingest: config.ingest.clone(),
        workers,
        metrics: metrics.clone(),
        events,
        alerting: config.alerting.clone(),
    })?;
    let stop = CancellationToken::new();
    // SLOs from Prometheus when configured, else from this process's own counters.
    let render: Box<dyn Fn() -> String + Send> = Box::new(move || metrics.render());
    let slo = crate::sources::slo::from_config(config, Some(render), &stop)
        .map_err(anyhow::Error::msg)?
        .context("no SLO source")?;
    let running = pipeline
        .spawn_serving(&stop, true, crate::telemetry::slo_api::router(slo))
        .await?;
    if let Some(address) = running.address {
        writeln!(
            out,
            "ward up: ingest on http://{address} (POST /v1/alerts, /v1/alertmanager; GET /healthz, /metrics, /api/v1/slo; Alertmanager API /api/v2/silences)"
        )?;
        out.flush()?;
    }
    shutdown_signal().await;
    tracing::info!("stopping: finishing in-flight deliveries, handing the rest back");
    stop.cancel();
    running.join().await;
    drop(pipeline);
    if let Some(writer) = writer {
        let _ = writer.await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
