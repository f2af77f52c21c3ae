//! The `retry-after` hint on gRPC statuses: how long a client should wait before trying again (used by the API, the link and the PKI, so it lives below all three).

use std::time::Duration;

use tonic::Status;

/// Adds `retry-after` (whole seconds, at least 1) to a status.
pub(crate) fn with_retry_after(mut status: Status, after: Duration) -> Status {
    let seconds = after.as_secs().max(1).to_string();
    if let Ok(value) = seconds.parse() {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}
