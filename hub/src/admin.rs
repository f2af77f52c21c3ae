//! The hub's HTTP admin port (axum): `/live`, `/ready` (the database answers) and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

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
