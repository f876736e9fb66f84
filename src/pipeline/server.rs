//! The ingest HTTP server: the axum application served by hyper's HTTP/1 connection directly,
//! because `axum::serve` has no header timeout. A client that sends its headers too slowly is
//! disconnected, one that sends its body too slowly gets 408, connections past the cap are
//! closed as they arrive, and a keep-alive connection serves a bounded number of requests.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::IngestConfig;
use crate::telemetry::Metrics;

/// What the server allows each client (the `ingest` settings of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// From the connection's start (or the end of its last response) to a complete request head.
    pub header_timeout: Duration,
    /// From the end of the request head to the end of its body.
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_requests_per_connection: u32,
}

impl ServerLimits {
    pub fn from_config(ingest: &IngestConfig) -> Self {
        Self {
            header_timeout: Duration::from_millis(ingest.header_timeout_ms),
            body_timeout: Duration::from_millis(ingest.body_timeout_ms),
            max_connections: ingest.max_connections,
            max_requests_per_connection: ingest.max_requests_per_connection,
        }
    }
}

/// A request body that did not arrive within the body timeout.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

impl BodyTimeout {
    /// Whether `error` (or one of its sources) is a body timeout.
    pub fn caused(error: &(dyn StdError + 'static)) -> bool {
        let mut next = Some(error);
        while let Some(error) = next {
            if error.is::<Self>() {
                return true;
            }
            next = error.source();
        }
        false
    }
}

/// Serve `app` within `limits` until `stop`, then let open requests finish (timeouts bound them).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ServerLimits,
    metrics: Metrics,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_failed(&error, &stop).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.ingest_connections_refused.inc();
            refuse(&stream);
            continue;
        };
        let served = Arc::new(AtomicU32::new(0));
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let number = served.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            let last = number >= limits.max_requests_per_connection;
            handle(app.clone(), request, limits.body_timeout, last)
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "ingest connection ended with an error");
            }
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One request, its body under the deadline; the connection's last answer says `Connection: close`.
async fn handle(
    app: axum::Router,
    request: Request<Incoming>,
    body_timeout: Duration,
    last: bool,
) -> Result<Response, Infallible> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Instant::now() + body_timeout,
            limit: body_timeout,
            sleep: None,
            timed_out: timed_out.clone(),
        })
    });
    let mut response = app.oneshot(request).await?;
    let timed_out = timed_out.load(Ordering::Relaxed);
    if timed_out && response.status() != StatusCode::REQUEST_TIMEOUT {
        // A handler that does not tell a timeout from other body errors still answers 408.
        response = (
            StatusCode::REQUEST_TIMEOUT,
            axum::Json(serde_json::json!({
                "status": "error",
                "error": "timeout",
                "message": BodyTimeout(body_timeout).to_string(),
            })),
        )
            .into_response();
    }
    if last || timed_out {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// A connection over the cap: told 503 if its socket takes it at once, then closed.
fn refuse(stream: &TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
        retry-after: 1\r\ncontent-length: 0\r\n\r\n";
    let _ = stream.try_write(BUSY);
    tracing::debug!("ingest: connection refused, the server is at ingest.max_connections");
}

/// Out of file descriptors (most likely) pauses accepting a moment rather than spinning.
async fn accept_failed(error: &std::io::Error, stop: &CancellationToken) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "ingest: cannot accept a connection");
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    limit: Duration,
    /// Made on the first wait only: most bodies arrive with their head.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTimeout(this.limit)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
