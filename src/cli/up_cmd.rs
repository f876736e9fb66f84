//! `ward up`: run the pipeline workers (and the ingest endpoint) until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use clap::builder::TypedValueParser as _;
use tokio_util::sync::CancellationToken;

use super::UsageError;
use crate::config::{Backend, Config};
use crate::delivery::build_backends;
use crate::pipeline::{Pipeline, PipelineParts, Role};
use crate::telemetry::{EventLog, Metrics};

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// What this process runs: the ingest endpoint and the consumers (all), only the endpoint
    /// (ingest), or only the consumers (workers); processes of any roles share one store
    #[arg(
        long,
        default_value_t = Role::All,
        env = "WARD_ROLE",
        value_parser = clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str))
            .map(|name| name.parse::<Role>().unwrap_or_default())
    )]
    pub role: Role,
    /// Threads of the async runtime (default: one per core; 1 runs everything on the main
    /// thread); on a box shared with Redis and the senders, fewer threads spend less CPU
    /// waking each other
    #[arg(long, env = "WARD_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

pub fn run(config: &Config, args: &UpArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.role != Role::All && config.store.backend == Backend::Memory {
        return Err(UsageError(format!(
            "ward up --role {}: the memory store lives in this process, so no other process \
             could {}; split roles on a shared store (store.backend = \"redis\")",
            args.role.as_str(),
            if args.role == Role::Ingest {
                "consume what it accepts"
            } else {
                "feed its workers"
            }
        ))
        .into());
    }
    // One thread is the current-thread scheduler: no hand-offs between a worker and the main
    // thread, +5 % ingest requests/s over a one-worker pool in the ingest bench.
    let mut builder = match args.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(threads));
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, args.role, out))
}

async fn serve(config: &Config, role: Role, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = crate::store::open(&config.store)
        .await
        .with_context(|| format!("cannot open the {} store", config.store.backend.as_str()))?;
    let (backends, problems) = build_backends(&config.delivery.channels);
    for problem in &problems {
        problem.log();
    }
    let (events, writer) = match &config.workers.events_log {
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
        queues: config.queues.clone(),
        workers: config.workers.clone(),
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
        .spawn_serving(&stop, role, crate::headless::slo_api::router(slo))
        .await?;
    if role == Role::Workers {
        writeln!(out, "ward up: workers only (no ingest endpoint)")?;
        out.flush()?;
    }
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
