//! edgecd spoke: the GitOps reconcile engine that runs on each edge cluster and links to the hub.
//!
//! ```text
//!   git ──► render ──► apply (SSA) ──► health/diff ──► status in the CR
//!                                                       │
//!   hub ◄──────────── link (outbound Connect stream) ◄──┘
//! ```

pub mod admin;
pub mod appset;
pub mod argo;
pub mod cluster;
pub mod crd;
pub mod credentials;
pub mod decide;
pub use edgecd_git as git;
pub mod health;
mod helm_charts;
pub mod link;
pub mod live;
pub mod metrics;
pub mod orphans;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod runtime;
pub mod sources;
pub mod sync;
