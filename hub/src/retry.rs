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

/// The message of a refusal because the database did not serve in time.
pub(crate) const DATABASE_UNAVAILABLE: &str = "the hub's database is unavailable; retry later";

/// A refusal because the database did not serve in time (a transient store error): UNAVAILABLE with
/// `retry-after: 1`, never the driver's details. The API, the link and the PKI answer with it alike.
pub(crate) fn database_unavailable() -> Status {
    with_retry_after(
        Status::unavailable(DATABASE_UNAVAILABLE),
        Duration::from_secs(1),
    )
}
