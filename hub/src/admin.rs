//! The hub's HTTP admin port (axum): `/live`, `/ready` (the database answers and its file is intact) and `/metrics` (Prometheus text), and the port's server loop with bounds on slow and idle clients.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::link::SpokeLink;
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct AdminState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub link: SpokeLink,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/live", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[tracing::instrument(skip_all)]
async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    // A removed or replaced database file still answers queries (the open
    // connections read the old file), so it is checked on its own.
    if let Err(error) = state.store.check_intact() {
        tracing::error!(%error, "Not ready: the database file is gone.");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database file removed or replaced while the hub ran: writes are refused; \
             restore it and restart the hub (see the hub's log)",
        );
    }
    let check = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.store.get_project("default"),
    )
    .await;
    match check {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "Not ready: database check failed.");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database check timed out"),
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let connected = state.link.registry().connected().len();
    state
        .metrics
        .connected_spokes
        .set(i64::try_from(connected).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Bounds on the HTTP port's connections, so that slow or idle clients
/// cannot hold file descriptors (and with them `/live` and the gRPC port).
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A connection must send a request's complete headers within this,
    /// counted from its start or, when kept alive, from the previous
    /// response; otherwise it is closed. Bodies and responses (the
    /// console's event streams) are not bounded by it.
    pub header_read_timeout: Duration,
    /// Connections served at once; a connection beyond it is closed as
    /// soon as it is accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serves `router` on `listener` over HTTP/1.1 (with `ConnectInfo<SocketAddr>`)
/// within `limits` until `shutdown` resolves, then lets each connection finish
/// its request in flight and returns when all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, 1 << 20);
    let permits = Arc::new(Semaphore::new(max));
    // HTTP/1 only: browsers, probes and Prometheus speak it, and hyper's
    // header timer (which also closes idle connections) is an HTTP/1 one.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (closing_tx, closing) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(%error, "Cannot accept an HTTP connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, max, "Too many HTTP connections: closing a new one.");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let builder = builder.clone();
        let mut closing = closing.clone();
        tokio::spawn(async move {
            let service = TowerToHyperService::new(router);
            let service = hyper::service::service_fn(move |mut request| {
                request.extensions_mut().insert(ConnectInfo(peer));
                service.call(request)
            });
            // Upgrades for the console's terminal (a WebSocket).
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "HTTP connection ended.");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
    Ok(())
}
