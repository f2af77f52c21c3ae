//! Exit codes a script can rely on, derived from the error that ended the command.

use edgecd_proto::client::{Error as SdkError, ErrorKind};

/// Success.
pub const OK: u8 = 0;
/// Any other failure (a command failed, a file is invalid, the hub refused the request, ...).
pub const FAILURE: u8 = 1;
/// Bad flags or arguments (also what clap exits with).
pub const USAGE: u8 = 2;
/// The application, cluster, project or application set does not exist.
pub const NOT_FOUND: u8 = 3;
/// Not logged in, token expired, or permission denied.
pub const AUTH: u8 = 4;
/// The hub cannot be reached.
pub const UNREACHABLE: u8 = 5;
/// A wait timed out, or an app ended up not Synced and Healthy (or its operation failed).
pub const NOT_READY: u8 = 6;

/// A failure that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }
}

/// The exit code for an error chain.
pub fn code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if cause.is::<crate::config::NoContext>() {
            return USAGE;
        }
        if let Some(sdk) = cause.downcast_ref::<SdkError>() {
            return match sdk.kind() {
                ErrorKind::NotFound => NOT_FOUND,
                ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => AUTH,
                ErrorKind::Unreachable => UNREACHABLE,
                ErrorKind::Config => USAGE,
                ErrorKind::Timeout => NOT_READY,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

/// Whether the command ended because stdout was closed (a pipe whose reader exited).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_cause() {
        let not_found = anyhow::Error::new(SdkError::NotFound {
            what: "application default/x".into(),
            message: String::new(),
        })
        .context("getting the app");
        assert_eq!(code(&not_found), NOT_FOUND);
        let unreachable = anyhow::Error::new(SdkError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            message: "connection refused".into(),
        });
        assert_eq!(code(&unreachable), UNREACHABLE);
        let denied = anyhow::Error::new(SdkError::PermissionDenied("sync".into()));
        assert_eq!(code(&denied), AUTH);
        assert_eq!(
            code(&anyhow::Error::new(Exit::new(NOT_READY, "timed out"))),
            NOT_READY
        );
        assert_eq!(code(&anyhow::anyhow!("bad file")), FAILURE);
        assert_eq!(code(&anyhow::Error::new(crate::config::NoContext)), USAGE);
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("printing the table");
        assert!(is_broken_pipe(&pipe));
        assert!(!is_broken_pipe(&unreachable));
    }
}
