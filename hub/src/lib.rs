//! edgecd hub: fleet store, spoke streams, command fan-out, the fleet API and the console.
//!
//! ```text
//!   spokes ──Connect (mTLS)──► link   (SpokeService: handshake, seq/ack, ingest)
//!   CLI/SDK/console ─────────► api    (HubService: authz, audit, pushback, Watch)
//!                               │
//!                               ▼
//!                             store   (SQLite | Postgres)
//!   server: `edgecd-hub serve` as a library (gRPC + admin HTTP, drain); metrics: Prometheus
//! ```

pub mod access;
pub mod admin;
pub mod api;
pub mod appsets;
pub mod auth;
pub mod console;
pub mod limit;
pub mod link;
pub mod metrics;
pub mod pki;
mod retry;
pub mod security;
pub mod server;
pub mod store;
