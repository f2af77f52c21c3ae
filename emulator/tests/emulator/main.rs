//! Conformance tests of the Kubernetes API emulator, one per case of spec section A.5, driven through kube-rs.

// Helpers shared by the tests unwrap like the tests do (clippy only exempts `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod crud;
mod delete;
mod discovery;
mod exec;
mod extra;
mod patch;
mod ssa;
mod status;
mod support;
mod watch;
