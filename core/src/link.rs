//! The rules of the hub-spoke link, shared by both ends: capability negotiation, sequencing and acknowledgement, flow control, backoff and digests.

pub mod backoff;
pub mod capabilities;
pub mod digest;
pub mod inbox;
pub mod outbox;
pub mod skew;

pub use backoff::Backoff;
pub use capabilities::{Capabilities, NegotiationError, ProtocolVersion};
pub use inbox::{Inbox, Receipt};
pub use outbox::{Outbox, OutboxError};
pub use skew::{Skew, SkewPolicy};
