//! The SDK's error type: what went wrong, in words an operator can act on, mapped from gRPC status codes.

use std::error::Error as _;

use tonic::Code;

/// Everything a [`Client`](super::Client) call can fail with.
///
/// Each variant says what went wrong; [`Error::kind`] gives a coarse category for
/// programs (the CLI maps it to exit codes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is unusable (bad endpoint, bad CA, token over plaintext, ...).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// No connection to the hub could be made, or it broke.
    #[error("hub unreachable at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    /// The hub answered but is not serving (shutting down, overloaded, a dependency down).
    #[error("hub unavailable: {0}")]
    Unavailable(String),
    /// No token, or an expired or revoked one.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller's roles do not allow the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The object does not exist; `what` names it, e.g. `application team-a/nginx`. Shown as the hub's
    /// message when that names the object (it says why), else as `{what} not found`, with the message after.
    #[error("{}", not_found_text(.what, .message))]
    NotFound { what: String, message: String },
    /// The object exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request was refused as invalid; the server's message names the field.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A precondition failed: a concurrent change (version mismatch) or a state that forbids the call.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The hub does not implement this call (yet).
    #[error("not supported by this hub: {method} is not implemented{}", detail(.message))]
    Unimplemented {
        method: &'static str,
        message: String,
    },
    /// The call's deadline passed (e.g. a spoke did not answer a diff in time).
    #[error("timed out: {0}")]
    Timeout(String),
    /// Any other gRPC status.
    #[error("hub error ({code:?}): {message}")]
    Status { code: Code, message: String },
    /// The hub answered with a message missing something the protocol requires.
    #[error("protocol error: {0}")]
    Protocol(String),
}

fn not_found_text(what: &str, message: &str) -> String {
    if message.is_empty() {
        format!("{what} not found")
    } else if message.contains(what) {
        message.to_owned()
    } else {
        format!("{what} not found ({message})")
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() || message.eq_ignore_ascii_case("unimplemented") {
        String::new()
    } else {
        format!(" ({message})")
    }
}

/// Coarse category of an [`Error`], stable for programs to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    Config,
    Unreachable,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Conflict,
    Unimplemented,
    Timeout,
    Other,
}

impl Error {
    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) => ErrorKind::Config,
            Self::Unreachable { .. } | Self::Unavailable(_) => ErrorKind::Unreachable,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Unimplemented { .. } => ErrorKind::Unimplemented,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::Status { .. } | Self::Protocol(_) => ErrorKind::Other,
        }
    }

    /// Maps a status returned by `method` on `endpoint`; `what` names the object the call is about
    /// (used for NOT_FOUND), if the call is about one.
    pub(crate) fn from_status(
        status: tonic::Status,
        method: &'static str,
        endpoint: &str,
        what: Option<String>,
    ) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unavailable if is_transport(&status) => Self::Unreachable {
                endpoint: endpoint.to_owned(),
                message: transport_message(&status),
            },
            Code::Unknown if is_transport(&status) => Self::Unreachable {
                endpoint: endpoint.to_owned(),
                message: transport_message(&status),
            },
            Code::Unavailable => Self::Unavailable(message),
            Code::Unauthenticated => Self::Unauthenticated(or(message, "no valid token")),
            Code::PermissionDenied => Self::PermissionDenied(or(message, method)),
            Code::NotFound => Self::NotFound {
                what: what.unwrap_or_else(|| or(message.clone(), "object")),
                message,
            },
            Code::AlreadyExists => Self::AlreadyExists(or(message, "already exists")),
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument(message),
            Code::Aborted | Code::FailedPrecondition => Self::Conflict(message),
            Code::Unimplemented => Self::Unimplemented { method, message },
            Code::DeadlineExceeded | Code::Cancelled => {
                Self::Timeout(or(message, &format!("{method} did not finish in time")))
            }
            code => Self::Status { code, message },
        }
    }

    /// Maps a failure to build or open the channel.
    pub(crate) fn from_transport(error: &tonic::transport::Error, endpoint: &str) -> Self {
        Self::Unreachable {
            endpoint: endpoint.to_owned(),
            message: chain(error),
        }
    }
}

fn or(message: String, fallback: &str) -> String {
    if message.is_empty() {
        fallback.to_owned()
    } else {
        message
    }
}

/// Whether the status was produced by the client's transport (no answer from the hub).
fn is_transport(status: &tonic::Status) -> bool {
    let mut source = status.source();
    while let Some(error) = source {
        if error.is::<tonic::transport::Error>() || error.is::<std::io::Error>() {
            return true;
        }
        source = error.source();
    }
    // Tonic reports connect failures as Unavailable with this text and no typed source.
    status.message().contains("error trying to connect")
        || status.message().contains("tcp connect error")
}

fn transport_message(status: &tonic::Status) -> String {
    match status.source() {
        Some(source) => chain(source),
        None => status.message().to_owned(),
    }
}

/// `error: cause: cause` without repeating identical layers.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_object() {
        let error = Error::from_status(
            tonic::Status::not_found("no such app"),
            "GetApplication",
            "http://127.0.0.1:1",
            Some("application team-a/nginx".into()),
        );
        assert_eq!(
            error.to_string(),
            "application team-a/nginx not found (no such app)"
        );
        assert_eq!(error.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn not_found_says_it_once() {
        // Without a name from the call, the hub's message is the name: never "... not found not found".
        let error = Error::from_status(
            tonic::Status::not_found("application team-a/nginx not found"),
            "SyncApplication",
            "http://127.0.0.1:1",
            None,
        );
        assert_eq!(error.to_string(), "application team-a/nginx not found");
        // A message naming the object says why, and is shown as it is.
        let error = Error::from_status(
            tonic::Status::not_found(
                "application team-a/nginx has no history entry 9 (known: 1, 2)",
            ),
            "RollbackApplication",
            "http://127.0.0.1:1",
            Some("application team-a/nginx".into()),
        );
        assert_eq!(
            error.to_string(),
            "application team-a/nginx has no history entry 9 (known: 1, 2)"
        );
    }

    #[test]
    fn unimplemented_names_the_method() {
        let error = Error::from_status(
            tonic::Status::unimplemented(""),
            "ApplyManifests",
            "http://127.0.0.1:1",
            None,
        );
        assert_eq!(
            error.to_string(),
            "not supported by this hub: ApplyManifests is not implemented"
        );
    }

    #[test]
    fn invalid_argument_keeps_the_server_message() {
        let error = Error::from_status(
            tonic::Status::invalid_argument("spec.source.path: must be relative"),
            "CreateApplication",
            "http://127.0.0.1:1",
            None,
        );
        assert_eq!(
            error.to_string(),
            "invalid argument: spec.source.path: must be relative"
        );
    }

    #[test]
    fn plain_unavailable_is_the_hub_speaking() {
        let error = Error::from_status(
            tonic::Status::unavailable("shutting down"),
            "ListApplications",
            "http://127.0.0.1:1",
            None,
        );
        assert_eq!(error.to_string(), "hub unavailable: shutting down");
        assert_eq!(error.kind(), ErrorKind::Unreachable);
    }
}
