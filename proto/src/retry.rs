//! The `retry-after` hint a hub puts on a refusal (UNAVAILABLE, RESOURCE_EXHAUSTED): how long a client should wait before it tries again.

use std::time::Duration;

/// The longest hint honoured: a hub that asks for more (or a forged header) is taken as asking for this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The `retry-after` metadata of `status`, whole seconds as the hub writes them, at most
/// [`MAX_RETRY_AFTER`]; `None` when absent or not a number.
pub fn retry_after(status: &tonic::Status) -> Option<Duration> {
    let value = status.metadata().get("retry-after")?.to_str().ok()?;
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> tonic::Status {
        let mut status = tonic::Status::unavailable("busy");
        status
            .metadata_mut()
            .insert("retry-after", value.parse().expect("ASCII"));
        status
    }

    #[test]
    fn whole_seconds_are_read_and_capped_and_anything_else_is_no_hint() {
        assert_eq!(retry_after(&with("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&with("99999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&with("soon")), None);
        assert_eq!(retry_after(&with("-1")), None);
        assert_eq!(retry_after(&tonic::Status::unavailable("busy")), None);
    }
}
