//! The error type: where in the template (line and column, as Go reports them) and why.

/// A template could not be parsed or executed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not a valid template (Go: `template: :LINE: ...`).
    #[error("template: :{line}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 0-based byte column in the line.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// Execution stopped (Go: `template: :LINE:COL: executing "NAME" at <NODE>: ...`).
    #[error("template: :{line}:{col}: executing \"{template}\" at <{node}>: {message}")]
    Execute {
        /// 1-based line.
        line: usize,
        /// 0-based byte column in the line.
        col: usize,
        /// The (defined) template being executed; empty for the main one.
        template: String,
        /// The node being evaluated.
        node: String,
        /// Why execution stopped.
        message: String,
    },
    /// A `goTemplateOptions` entry this engine (and Go) does not know.
    #[error(
        "unknown goTemplateOptions entry {option:?} (known: missingkey=default|invalid|zero|error)"
    )]
    Option {
        /// The entry as given.
        option: String,
    },
}

impl Error {
    /// The cause without the location prefix.
    pub fn message(&self) -> String {
        match self {
            Error::Parse { message, .. } | Error::Execute { message, .. } => message.clone(),
            Error::Option { .. } => self.to_string(),
        }
    }
}

/// 1-based line and 0-based byte column of byte offset `pos` in `text`, as Go's `ErrorContext` counts them.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
    let col = match before.rfind('\n') {
        Some(i) => pos - i - 1,
        None => pos,
    };
    (line, col)
}
