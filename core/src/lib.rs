//! Domain model and pure logic of edgecd: names, statuses, connection states, and the delivery state machines of the hub-spoke link. No IO here.
//!
//! ```text
//!  names ── AppRef, ClusterName, ProjectName (validated newtypes)
//!  access ─ Principal, Action, decide (RBAC)
//!  deployment ─ the fleet's deployment record, derived from app history
//!  secrets ── Secret values masked wherever an object is shown
//!  status ─ SyncStatus, Health (roll-up), ConnectionState (+ tracker)
//!  link ─── capabilities (negotiation), outbox/inbox (seq, ack, window,
//!           coalescing, dedup), backoff (jittered exponential), digest
//! ```
//!
//! Everything here is deterministic given its inputs (time is passed in,
//! randomness is injected), so the hub and spoke share one tested
//! implementation of the protocol rules.

pub mod access;
pub mod app;
pub mod appset;
pub mod argo;
pub mod argo_spec;
pub mod deployment;
pub mod duration;
pub mod ignore;
pub mod link;
pub mod names;
pub mod project;
pub mod secrets;
pub mod selector;
pub mod status;
pub mod status_budget;

pub use names::{AppRef, ClusterName, NameError, ProjectName, edge_app_name, split_edge_app_name};
pub use status::{ConnectionState, Health, SyncStatus};
