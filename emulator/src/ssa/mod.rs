//! Server-side apply: field sets ([`fieldpath`]), schema-aware merging ([`walk`]) and `managedFields` ([`managed`]).
//!
//! This is our own implementation of the algorithm described for structured-merge-diff:
//! an Apply merges the configuration into the live object, prunes what the applier stopped
//! applying (unless someone else owns it), and fails on fields owned by other managers unless forced.
//! An Update (create, replace, non-apply patch) never conflicts; it takes over whatever it changed.

pub mod fieldpath;
pub mod managed;
pub mod walk;

pub use managed::{ManagedEntry, Operation, Writer, apply, update};
