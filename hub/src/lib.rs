//! edgecd hub: fleet store, spoke streams, command fan-out, the fleet API and the console.
//!
//! ```text
//!   spokes ──Connect (mTLS)──► link   (SpokeService: handshake, seq/ack, ingest)
//!   CLI/SDK/console ─────────► api    (HubService)          [grows with issue 6]
//!                               │
//!                               ▼
//!                             store   (SQLite | Postgres)   [grows with issue 6]
//! ```

pub mod access;
pub mod console;
pub mod link;
pub mod store;
