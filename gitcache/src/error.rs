//! `GitError`: every failure of the git layer, naming the repository URL (which holds no secret) and the cause.

use std::path::PathBuf;
use std::sync::Arc;

use super::url::RepoUrl;

/// Errors of the git layer. Every variant names the repository by its URL (URLs never hold credentials).
///
/// The enum is `Clone` because one fetch result is shared by every caller de-duplicated onto it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitError {
    #[error("invalid repository URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid path {path:?} in repository {repo}: {reason}")]
    InvalidPath {
        repo: String,
        path: String,
        reason: String,
    },
    #[error("authentication to repository {repo} failed: {message}")]
    AuthFailed { repo: String, message: String },
    #[error("host of repository {repo} is not trusted: {message}")]
    UntrustedHost { repo: String, message: String },
    #[error("repository {repo} not found: {message}")]
    RepoNotFound { repo: String, message: String },
    #[error("revision {revision:?} not found in repository {repo}")]
    RevisionNotFound { repo: String, revision: String },
    #[error("path {path:?} is not a directory at commit {commit} of repository {repo}")]
    PathNotFound {
        repo: String,
        commit: String,
        path: String,
    },
    #[error("network error talking to repository {repo}: {message}")]
    Network { repo: String, message: String },
    #[error("repository {repo} at commit {commit} is too large: {message}")]
    TooLarge {
        repo: String,
        commit: String,
        message: String,
    },
    #[error("unsafe path {path:?} in repository {repo} at commit {commit}: {reason}")]
    UnsafePath {
        repo: String,
        commit: String,
        path: String,
        reason: String,
    },
    #[error(
        "{path:?} in repository {repo} at commit {commit} is a symbolic link (to {target:?}); symbolic links are refused"
    )]
    Symlink {
        repo: String,
        commit: String,
        path: String,
        target: String,
    },
    #[error(
        "{path:?} in repository {repo} at commit {commit} is a submodule; submodules are not supported"
    )]
    Submodule {
        repo: String,
        commit: String,
        path: String,
    },
    #[error("corrupt repository cache for {repo}: {message}")]
    Corrupt { repo: String, message: String },
    #[error("git error on repository {repo}: {message}")]
    Git { repo: String, message: String },
    #[error("{action} {path:?} for repository {repo}: {source}")]
    Io {
        repo: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("git task for repository {repo} failed: {message}")]
    Task { repo: String, message: String },
}

/// Result of the git layer.
pub type Result<T, E = GitError> = std::result::Result<T, E>;

impl GitError {
    /// The metric/log label of the variant (bounded set).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InvalidPath { .. } => "invalid_path",
            Self::AuthFailed { .. } => "auth_failed",
            Self::UntrustedHost { .. } => "untrusted_host",
            Self::RepoNotFound { .. } => "repo_not_found",
            Self::RevisionNotFound { .. } => "revision_not_found",
            Self::PathNotFound { .. } => "path_not_found",
            Self::Network { .. } => "network",
            Self::TooLarge { .. } => "too_large",
            Self::UnsafePath { .. } => "unsafe_path",
            Self::Symlink { .. } => "symlink",
            Self::Submodule { .. } => "submodule",
            Self::Corrupt { .. } => "corrupt",
            Self::Git { .. } => "git",
            Self::Io { .. } => "io",
            Self::Task { .. } => "task",
        }
    }

    /// Whether retrying later may help (network trouble) rather than needing a change in git or config.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Network { .. } | Self::Io { .. } | Self::Task { .. } | Self::Git { .. }
        )
    }

    pub(crate) fn io(
        repo: &str,
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let repo = repo.to_owned();
        let path = path.into();
        move |source| Self::Io {
            repo,
            action,
            path,
            source: Arc::new(source),
        }
    }
}

/// What the credential callback saw during one remote operation; decides whether a failure is an auth failure.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuthOutcome {
    /// Set when the callback gave up (no credential for the URL, or credentials already tried and rejected).
    pub(crate) refused: Option<String>,
    /// Set when the certificate/host-key callback rejected the server.
    pub(crate) untrusted: Option<String>,
}

/// Maps a libgit2 error of a remote or local operation on `url` to a `GitError`.
pub(crate) fn classify(url: &RepoUrl, error: &git2::Error, auth: &AuthOutcome) -> GitError {
    let message = error.message().to_owned();
    let repo = url.as_str().to_owned();
    if let Some(reason) = &auth.untrusted {
        return GitError::UntrustedHost {
            repo,
            message: reason.clone(),
        };
    }
    if let Some(reason) = &auth.refused {
        return GitError::AuthFailed {
            repo,
            message: reason.clone(),
        };
    }
    let lower = message.to_ascii_lowercase();
    match (error.code(), error.class()) {
        (git2::ErrorCode::Auth, _) => GitError::AuthFailed { repo, message },
        (git2::ErrorCode::Certificate, _) => GitError::UntrustedHost { repo, message },
        _ if lower.contains("certificate") => GitError::UntrustedHost { repo, message },
        _ if lower.contains("401") || lower.contains("403") || lower.contains("authenticat") => {
            GitError::AuthFailed { repo, message }
        }
        _ if lower.contains("404")
            || lower.contains("not found")
            || lower.contains("could not find repository")
            || lower.contains("not exported")
            || lower.contains("does not appear to be a git repository")
            || lower.contains("failed to resolve path") =>
        {
            GitError::RepoNotFound { repo, message }
        }
        (
            _,
            git2::ErrorClass::Net
            | git2::ErrorClass::Http
            | git2::ErrorClass::Ssh
            | git2::ErrorClass::Ssl
            | git2::ErrorClass::Os,
        ) => GitError::Network { repo, message },
        (
            _,
            git2::ErrorClass::Odb
            | git2::ErrorClass::Object
            | git2::ErrorClass::Zlib
            | git2::ErrorClass::Index
            | git2::ErrorClass::Indexer
            | git2::ErrorClass::Reference,
        ) => GitError::Corrupt { repo, message },
        _ => GitError::Git { repo, message },
    }
}
