//! Exit codes a script can rely on, derived from the error that ended the command; how an error is worded, and hints for where users get stuck.

use edgecd_proto::client::{Error as SdkError, ErrorKind};

/// Success.
pub const OK: u8 = 0;
/// Any other failure (a command failed, a file is invalid, the hub refused the request, ...).
pub const FAILURE: u8 = 1;
/// Bad flags or arguments (also what clap exits with).
pub const USAGE: u8 = 2;
/// The application, cluster, project, application set, context or revision does not exist.
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

/// The exit code of a command run elsewhere (`app exec`), passed through as the CLI's own, as kubectl does:
/// not an error of edgecd's, so nothing more is printed (the command's own stderr and the one line
/// `command terminated with exit code N` were).
#[derive(Debug, thiserror::Error)]
#[error("command terminated with exit code {0}")]
pub struct PassThrough(pub u8);

/// An error with a hint on what to do next, printed on its own line after the error.
#[derive(Debug)]
pub struct Hinted {
    pub error: anyhow::Error,
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&render(&self.error))
    }
}

impl std::error::Error for Hinted {}

/// Whether a message says that a git revision does not exist (the git cache's `revision "x" not
/// found in repository …`, as relayed by a spoke or the hub).
pub fn is_unknown_revision(message: &str) -> bool {
    message.split("revision \"").skip(1).any(|rest| {
        rest.split_once('"')
            .is_some_and(|(_, after)| after.starts_with(" not found"))
    })
}

/// The exit code for an error chain.
pub fn code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(hinted) = cause.downcast_ref::<Hinted>() {
            return code(&hinted.error);
        }
        if let Some(exit) = cause.downcast_ref::<Exit>() {
            return exit.code;
        }
        if cause.is::<crate::config::NoContext>() {
            return USAGE;
        }
        if let Some(sdk) = cause.downcast_ref::<SdkError>() {
            if let SdkError::Conflict(message) = sdk
                && is_unknown_revision(message)
            {
                return NOT_FOUND;
            }
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

/// One layer of an error chain in words: the SDK's wording, except that a NOT_FOUND whose hub
/// message already says what is missing is printed as the hub said it (never "… not found not
/// found", and a missing history entry is not reported as a missing application), and a refusal
/// (FAILED_PRECONDITION, ABORTED) is the hub's message alone, which says why.
fn layer(cause: &(dyn std::error::Error + 'static)) -> String {
    match cause.downcast_ref::<SdkError>() {
        Some(SdkError::NotFound { what, message }) => {
            let message = message.trim();
            if message.ends_with("not found") {
                message.to_owned()
            } else if message.is_empty() || message == what {
                format!("{what} not found")
            } else {
                message.to_owned()
            }
        }
        Some(SdkError::Conflict(message)) if !message.trim().is_empty() => {
            message.trim().to_owned()
        }
        _ => cause.to_string(),
    }
}

/// The error as `main` prints it: every layer of the chain, outermost first, joined by `: `.
pub fn render(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        if let Some(hinted) = cause.downcast_ref::<Hinted>() {
            parts.push(render(&hinted.error));
            break;
        }
        let text = layer(cause);
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The hint attached to an error, if any.
pub fn hint(error: &anyhow::Error) -> Option<&str> {
    error
        .chain()
        .find_map(|c| c.downcast_ref::<Hinted>())
        .map(|h| h.hint.as_str())
}

/// The SDK error in a chain, if any.
pub fn sdk_error(error: &anyhow::Error) -> Option<&SdkError> {
    error.chain().find_map(|c| {
        c.downcast_ref::<Hinted>()
            .and_then(|h| sdk_error(&h.error))
            .or_else(|| c.downcast_ref::<SdkError>())
    })
}

/// Whether the command ended because stdout was closed (a pipe whose reader exited).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<Hinted>()
                .is_some_and(|h| is_broken_pipe(&h.error))
    })
}

/// Whether the error is a TLS failure to verify the hub's certificate against the trusted CAs.
pub fn is_unknown_issuer(error: &anyhow::Error) -> bool {
    let text = render(error).to_ascii_lowercase();
    text.contains("unknownissuer")
        || text.contains("unknown issuer")
        || text.contains("invalid peer certificate")
        || text.contains("certificate verify failed")
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
        // A refusal the hub knows up front (FAILED_PRECONDITION) is a failure, exit 1.
        let refused = anyhow::Error::new(SdkError::Conflict(
            "rollback of default/x is refused while automated sync is on".into(),
        ));
        assert_eq!(code(&refused), FAILURE);
        // An unknown revision, relayed by the hub from the spoke, is "not found".
        let revision = anyhow::Error::new(SdkError::Conflict(
            "cluster cluster-1 could not answer for application default/x: revision \"nope\" not found in repository git://h/r".into(),
        ));
        assert_eq!(code(&revision), NOT_FOUND);
        assert!(!is_unknown_revision(
            "path \"deploy/x\" is not a directory at commit abc of repository r: not found"
        ));
        assert!(!is_unknown_revision(
            "repository r not found: revision HEAD"
        ));
    }

    #[test]
    fn not_found_is_said_once() {
        // The hub's message already names the object (a call whose request names none).
        let error = anyhow::Error::new(SdkError::NotFound {
            what: "project team-x not found".into(),
            message: "project team-x not found".into(),
        });
        assert_eq!(render(&error), "project team-x not found");
        // The hub names what is missing more precisely than the request does.
        let error = anyhow::Error::new(SdkError::NotFound {
            what: "application default/x".into(),
            message: "default/x has no history entry 9 (known: 1, 2)".into(),
        })
        .context("rolling back");
        assert_eq!(
            render(&error),
            "rolling back: default/x has no history entry 9 (known: 1, 2)"
        );
        let error = anyhow::Error::new(SdkError::NotFound {
            what: "API token t1".into(),
            message: "API token t1".into(),
        });
        assert_eq!(render(&error), "API token t1 not found");
        assert_eq!(code(&error), NOT_FOUND);
    }

    #[test]
    fn refusals_are_the_hubs_words() {
        let error = anyhow::Error::new(SdkError::Conflict(
            "application default/x is owned by ApplicationSet default/s; change that instead"
                .into(),
        ));
        assert_eq!(
            render(&error),
            "application default/x is owned by ApplicationSet default/s; change that instead"
        );
        assert_eq!(code(&error), FAILURE);
    }

    #[test]
    fn hints_keep_the_code_and_the_message() {
        let inner = anyhow::Error::new(SdkError::Unauthenticated("no valid token".into()));
        let hinted = anyhow::Error::new(Hinted {
            error: inner,
            hint: "run `edgecd login`".into(),
        });
        assert_eq!(code(&hinted), AUTH);
        assert_eq!(render(&hinted), "unauthenticated: no valid token");
        assert_eq!(hint(&hinted), Some("run `edgecd login`"));
        assert!(matches!(
            sdk_error(&hinted),
            Some(SdkError::Unauthenticated(_))
        ));
    }

    #[test]
    fn unknown_issuers_are_recognised() {
        let error = anyhow::Error::new(SdkError::Unreachable {
            endpoint: "https://127.0.0.1:1".into(),
            message: "transport error: invalid peer certificate: UnknownIssuer".into(),
        });
        assert!(is_unknown_issuer(&error));
        assert!(!is_unknown_issuer(&anyhow::anyhow!("connection refused")));
    }
}
