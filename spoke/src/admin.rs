//! The admin HTTP server: `/live` (the process runs), `/ready` (CRD served and controller started) and `/metrics` (Prometheus text), over HTTP/1.1 with a header-read timeout and a connection cap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Whether the spoke is ready; shared by the runtime (writer) and the server.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

struct AdminState {
    readiness: Readiness,
    registry: Registry,
}

/// Errors of the admin server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("binding the admin address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving admin HTTP: {0}")]
    Serve(#[source] std::io::Error),
}

/// A bound admin server, not yet serving.
#[derive(Debug)]
pub struct AdminServer {
    listener: tokio::net::TcpListener,
    router: Router,
    header_read_timeout: Duration,
    max_connections: usize,
}

/// A connection must send a request's complete headers within this (from
/// its start, or from the previous response when kept alive).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections served at once; more are closed when accepted.
pub const MAX_CONNECTIONS: usize = 64;

impl AdminServer {
    /// Binds `addr` (so the port is known before serving).
    pub async fn bind(
        addr: SocketAddr,
        readiness: Readiness,
        registry: Registry,
    ) -> Result<Self, AdminError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        Ok(Self {
            listener,
            router: router(readiness, registry),
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        })
    }

    /// Overrides [`HEADER_READ_TIMEOUT`] and [`MAX_CONNECTIONS`].
    pub fn with_limits(mut self, header_read_timeout: Duration, max_connections: usize) -> Self {
        self.header_read_timeout = header_read_timeout;
        self.max_connections = max_connections;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets connections finish their
    /// request in flight. A slow or idle client is closed after the header
    /// timeout, so it cannot hold descriptors (and `/live`) forever.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AdminError> {
        let max = self.max_connections.clamp(1, 1 << 20);
        let permits = Arc::new(Semaphore::new(max));
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let (closing_tx, closing) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "Cannot accept an admin connection.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                tracing::warn!(%peer, max, "Too many admin connections: closing a new one.");
                continue;
            };
            let service = TowerToHyperService::new(self.router.clone());
            let builder = builder.clone();
            let mut closing = closing.clone();
            tokio::spawn(async move {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let mut connection = std::pin::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "Admin connection ended.");
                }
                drop(permit);
            });
        }
        drop(self.listener);
        let _ = closing_tx.send(true);
        let _ = permits
            .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
            .await
            .map_err(|_| AdminError::Serve(std::io::Error::other("admin server closed")))?;
        Ok(())
    }
}

/// The admin routes.
pub fn router(readiness: Readiness, registry: Registry) -> Router {
    let state = Arc::new(AdminState {
        readiness,
        registry,
    });
    Router::new()
        .route("/live", get(|| async { "live\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<Arc<AdminState>>) -> axum::response::Response {
    match crate::metrics::encode(&state.registry) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "Encoding metrics failed.");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
