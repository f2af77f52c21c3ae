//! edgecd protocol v1: generated protobuf messages and gRPC stubs, plus protocol constants.
//!
//! The `.proto` files under `edgecd/v1/` are the contract; `docs/protocol.md`
//! explains them. Only this crate and the gRPC edges of the hub and spoke
//! see these types: domain code converts at the edge.

#[cfg(feature = "client")]
pub mod client;
pub mod convert;
pub mod retry;

/// Generated code for package `edgecd.v1`.
pub mod v1 {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        missing_debug_implementations
    )]
    tonic::include_proto!("edgecd.v1");
}

/// Major version of the wire protocol; a different major is refused.
pub const PROTOCOL_MAJOR: u32 = 1;
/// Minor version; peers one minor apart interoperate through capabilities.
pub const PROTOCOL_MINOR: u32 = 0;

pub use prost_types::{Duration, Timestamp};
