//! The renderer's error type: every variant names the file (or kustomization) and the cause.

use std::path::PathBuf;

use crate::yaml::YamlError;

/// Result alias for rendering.
pub type Result<T, E = RenderError> = std::result::Result<T, E>;

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error (e.g. "No such file or directory").
        #[source]
        source: std::io::Error,
    },
    /// A path leaves the directory it must stay in (kustomization root or repository root).
    #[error("security; file '{path}' is not in or below '{root}'")]
    OutsideRoot {
        /// The offending path (after resolving `..` and symlinks).
        path: PathBuf,
        /// The directory it must stay in.
        root: PathBuf,
    },
    /// A remote resource (URL or git reference) was listed.
    #[error("{file}: remote resource '{url}' refused: edgecd renders local files only")]
    Remote {
        /// The kustomization listing it.
        file: PathBuf,
        /// The URL.
        url: String,
    },
    /// Kustomizations include each other.
    #[error("cycle detected: {path} is already being built (chain: {chain})")]
    Cycle {
        /// The directory built twice.
        path: PathBuf,
        /// The chain of directories being built.
        chain: String,
    },
    /// The text is not valid YAML (or JSON).
    #[error("{path}: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: YamlError,
    },
    /// The content is well-formed but not what is expected (wrong shape, unknown field, bad value).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two resources with the same id.
    #[error("{path}: may not add resource with an already registered id: {id}")]
    DuplicateId {
        /// The kustomization adding it.
        path: PathBuf,
        /// The resource id.
        id: String,
    },
    /// A transformer or patch failed on a resource.
    #[error("{path}: {message}")]
    Transform {
        /// The kustomization whose field failed.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl RenderError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> RenderError {
        RenderError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn transform(path: impl Into<PathBuf>, message: impl Into<String>) -> RenderError {
        RenderError::Transform {
            path: path.into(),
            message: message.into(),
        }
    }
}
