//! Restricted file access: every read stays inside the repository root, resolving `..` and symlinks first.

use std::path::{Component, Path, PathBuf};

use crate::error::{RenderError, Result};

/// File access confined to one repository root, and the YAML alias budget shared by every file of one render.
#[derive(Debug, Clone)]
pub(crate) struct RepoRoot {
    root: PathBuf,
    budget: crate::yaml::Budget,
}

impl RepoRoot {
    /// Confines access to `root` (which must exist).
    pub(crate) fn new(root: &Path) -> Result<RepoRoot> {
        let root = root.canonicalize().map_err(|source| RenderError::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(RepoRoot {
            root,
            budget: crate::yaml::Budget::default(),
        })
    }

    /// The repository root (canonical).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The alias budget of this render: every YAML file loaded for it is charged to the same one.
    pub(crate) fn yaml_budget(&self) -> &crate::yaml::Budget {
        &self.budget
    }

    /// Resolves `relative` against `base`, requiring the result to be under `within` (lexically and after
    /// following symlinks) and under the repository root.
    pub(crate) fn resolve(&self, base: &Path, relative: &str, within: &Path) -> Result<PathBuf> {
        let joined = normalize(&base.join(relative));
        if !joined.starts_with(within) {
            return Err(RenderError::OutsideRoot {
                path: joined,
                root: within.to_path_buf(),
            });
        }
        self.check(&joined)?;
        Ok(joined)
    }

    /// Checks that an existing path resolves (through symlinks) inside the repository root.
    pub(crate) fn check(&self, path: &Path) -> Result<()> {
        let real = match path.canonicalize() {
            Ok(real) => real,
            Err(source) => {
                return Err(RenderError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if !real.starts_with(&self.root) {
            return Err(RenderError::OutsideRoot {
                path: real,
                root: self.root.clone(),
            });
        }
        Ok(())
    }

    /// Reads a file that was resolved by [`RepoRoot::resolve`] or [`RepoRoot::check`].
    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.check(path)?;
        std::fs::read(path).map_err(|source| RenderError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a UTF-8 text file.
    pub(crate) fn read_text(&self, path: &Path) -> Result<String> {
        let bytes = self.read(path)?;
        String::from_utf8(bytes).map_err(|_| RenderError::invalid(path, "file is not valid UTF-8"))
    }
}

/// Removes `.` and resolves `..` lexically.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Returns `path` relative to `base` (both absolute and normalized), using `..` where needed.
pub(crate) fn relative_to(path: &Path, base: &Path) -> String {
    let path_parts: Vec<_> = path.components().collect();
    let base_parts: Vec<_> = base.components().collect();
    let common = path_parts
        .iter()
        .zip(&base_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts: Vec<String> = vec!["..".to_string(); base_parts.len() - common];
    parts.extend(
        path_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
