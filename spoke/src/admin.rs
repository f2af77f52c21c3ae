//! The admin HTTP server: `/live` (the process runs), `/ready` (CRD served and controller started) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
}

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
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), AdminError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(AdminError::Serve)
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
