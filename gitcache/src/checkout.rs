//! Materialises a commit's tree into a content-addressed directory: validated first, written atomically, no links.

use std::collections::HashMap;
use std::io::Write as _;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use git2::{ObjectType, Oid, Repository, Tree};

use super::error::{AuthOutcome, GitError, Result, classify};
use super::revision::CommitId;
use super::url::RepoUrl;

/// Deepest directory nesting materialised; deeper trees are refused (and cannot blow the stack).
const MAX_TREE_DEPTH: usize = 128;

/// Prefix of in-progress and being-deleted checkout directories (removed at startup).
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Bounds on what one commit may materialise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Sum of all file sizes.
    pub max_total_bytes: u64,
    /// Number of files.
    pub max_files: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: 256 * 1024 * 1024,
            max_files: 50_000,
        }
    }
}

/// A relative path inside a repository, normalised (`.` dropped, `..` resolved) and proven not to escape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoPath(PathBuf);

impl RepoPath {
    /// Validates `path` (relative to the repository root; empty or `.` is the root).
    pub fn parse(repo: &RepoUrl, path: &str) -> Result<Self> {
        let invalid = |reason: &str| GitError::InvalidPath {
            repo: repo.as_str().to_owned(),
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if path.contains('\0') {
            return Err(invalid("NUL byte in path"));
        }
        let mut normalized = PathBuf::new();
        for component in Path::new(path).components() {
            match component {
                Component::Normal(part) => {
                    if part.eq_ignore_ascii_case(".git") {
                        return Err(invalid("paths through .git are not allowed"));
                    }
                    normalized.push(part);
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    if !normalized.pop() {
                        return Err(invalid("path escapes the repository root"));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid("absolute paths are not allowed"));
                }
            }
        }
        Ok(Self(normalized))
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

/// A materialised commit: the whole repository tree at `root`, and the requested directory inside it.
///
/// Render with `dir()` and `RenderOptions { repo_root: Some(root()), .. }`.
/// While any clone is alive the directory is not removed by the bounded cleanup.
#[derive(Debug, Clone)]
pub struct Checkout {
    root: PathBuf,
    dir: PathBuf,
    commit: CommitId,
    _lease: Arc<()>,
}

impl Checkout {
    /// The repository root at this commit.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The requested directory (`root` joined with the validated path).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn commit(&self) -> CommitId {
        self.commit
    }
}

/// The checkouts on disk, their last use and leases; bounded in count.
#[derive(Debug)]
pub(crate) struct CheckoutStore {
    dir: PathBuf,
    max_checkouts: usize,
    clock: AtomicU64,
    entries: Mutex<HashMap<CheckoutKey, Entry>>,
}

/// Checkouts are per repository and commit: a commit id known from one repository never reads another's tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CheckoutKey {
    pub(crate) repo: String,
    pub(crate) commit: CommitId,
}

impl CheckoutKey {
    fn dir_name(&self) -> String {
        format!("{}-{}", self.repo, self.commit)
    }

    fn parse_dir_name(name: &str) -> Option<Self> {
        let (repo, commit) = name.split_once('-')?;
        let valid_repo = !repo.is_empty() && repo.bytes().all(|b| b.is_ascii_hexdigit());
        Some(Self {
            repo: valid_repo.then(|| repo.to_owned())?,
            commit: CommitId::parse(commit)?,
        })
    }
}

#[derive(Debug)]
struct Entry {
    last_used: u64,
    lease: Arc<()>,
}

// === impl CheckoutStore ===

impl CheckoutStore {
    /// Opens the checkout directory: removes leftovers of interrupted writes and registers existing checkouts.
    pub(crate) fn open(dir: PathBuf, max_checkouts: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                remove_any(&entry.path());
                continue;
            }
            match CheckoutKey::parse_dir_name(&name) {
                Some(key) if entry.file_type()?.is_dir() => {
                    let modified = entry.metadata()?.modified()?;
                    found.push((modified, key));
                }
                _ => remove_any(&entry.path()),
            }
        }
        found.sort();
        let entries = found
            .into_iter()
            .enumerate()
            .map(|(index, (_, key))| {
                let entry = Entry {
                    last_used: index as u64,
                    lease: Arc::new(()),
                };
                (key, entry)
            })
            .collect::<HashMap<_, _>>();
        Ok(Self {
            clock: AtomicU64::new(entries.len() as u64),
            dir,
            max_checkouts: max_checkouts.max(1),
            entries: Mutex::new(entries),
        })
    }

    pub(crate) fn path_of(&self, key: &CheckoutKey) -> PathBuf {
        self.dir.join(key.dir_name())
    }

    pub(crate) fn temp_dir(&self) -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempdir_in(&self.dir)
    }

    /// Leases an existing checkout of `commit`, or `None` if there is none yet.
    pub(crate) fn lease(&self, key: &CheckoutKey) -> Option<Arc<()>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let entry = entries.get_mut(key)?;
        if !self.path_of(key).is_dir() {
            entries.remove(key);
            return None;
        }
        entry.last_used = now;
        Some(entry.lease.clone())
    }

    /// Moves a fully written checkout into place (or keeps the one a concurrent writer put there first), leases
    /// it, and removes the least recently used unleased checkouts beyond the bound.
    pub(crate) fn install(
        &self,
        key: &CheckoutKey,
        written: tempfile::TempDir,
    ) -> std::io::Result<Arc<()>> {
        let target = self.path_of(key);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !target.is_dir() {
            std::fs::rename(written.path(), &target)?;
        }
        drop(written);
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
            last_used: now,
            lease: Arc::new(()),
        });
        entry.last_used = now;
        let lease = entry.lease.clone();
        let mut evict: Vec<(u64, CheckoutKey)> = entries
            .iter()
            .filter(|(_, entry)| Arc::strong_count(&entry.lease) == 1)
            .map(|(key, entry)| (entry.last_used, key.clone()))
            .collect();
        evict.sort();
        let excess = entries.len().saturating_sub(self.max_checkouts);
        let mut doomed = Vec::new();
        for (_, old) in evict.into_iter().take(excess) {
            entries.remove(&old);
            // Renamed under the lock so nobody leases a half-deleted directory; deleted after.
            let trash = self
                .dir
                .join(format!("{TEMP_PREFIX}trash-{}", old.dir_name()));
            if std::fs::rename(self.path_of(&old), &trash).is_ok() {
                doomed.push(trash);
            }
        }
        drop(entries);
        for path in doomed {
            remove_any(&path);
        }
        Ok(lease)
    }

    pub(crate) fn finish(&self, key: &CheckoutKey, lease: Arc<()>, path: &RepoPath) -> Checkout {
        let root = self.path_of(key);
        Checkout {
            dir: root.join(path.as_path()),
            root,
            commit: key.commit,
            _lease: lease,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn remove_any(path: &Path) {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), error = %error, "Could not remove an old checkout.");
    }
}

/// One entry to write.
#[derive(Debug)]
enum Planned {
    Dir(PathBuf),
    File {
        path: PathBuf,
        blob: Oid,
        executable: bool,
    },
}

/// Totals of the planned tree.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

/// Writes the tree of `commit` into `target` (an empty directory), after validating all of it.
///
/// Nothing is written unless the whole tree passes: no symlinks, submodules, unsafe names or excess size.
pub(crate) fn write_tree(
    repo: &Repository,
    url: &RepoUrl,
    commit: CommitId,
    target: &Path,
    limits: SizeLimits,
) -> Result<Written> {
    let git_error = |error: git2::Error| classify(url, &error, &AuthOutcome::default());
    let tree = repo
        .find_commit(commit.oid())
        .map_err(|_| GitError::RevisionNotFound {
            repo: url.as_str().to_owned(),
            revision: commit.to_string(),
        })?
        .tree()
        .map_err(git_error)?;
    let mut planner = Planner {
        repo,
        url,
        commit,
        limits,
        plan: Vec::new(),
        totals: Written::default(),
    };
    planner.walk(&tree, Path::new(""), 0)?;
    for entry in &planner.plan {
        match entry {
            Planned::Dir(path) => {
                let full = target.join(path);
                std::fs::create_dir(&full).map_err(GitError::io(url.as_str(), "creating", full))?;
            }
            Planned::File {
                path,
                blob,
                executable,
            } => {
                let full = target.join(path);
                let blob = repo.find_blob(*blob).map_err(git_error)?;
                write_file(&full, blob.content(), *executable).map_err(GitError::io(
                    url.as_str(),
                    "writing",
                    full,
                ))?;
            }
        }
    }
    Ok(planner.totals)
}

fn write_file(path: &Path, content: &[u8], executable: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(if executable { 0o755 } else { 0o644 });
    #[cfg(not(unix))]
    let _ = executable;
    let mut file = options.open(path)?;
    file.write_all(content)
}

struct Planner<'a> {
    repo: &'a Repository,
    url: &'a RepoUrl,
    commit: CommitId,
    limits: SizeLimits,
    plan: Vec<Planned>,
    totals: Written,
}

impl Planner<'_> {
    fn walk(&mut self, tree: &Tree<'_>, prefix: &Path, depth: usize) -> Result<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(self.unsafe_path(
                prefix,
                format!("directories nested deeper than {MAX_TREE_DEPTH}"),
            ));
        }
        for entry in tree.iter() {
            let name = match std::str::from_utf8(entry.name_bytes()) {
                Ok(name) => name,
                Err(_) => {
                    let shown = String::from_utf8_lossy(entry.name_bytes()).into_owned();
                    return Err(
                        self.unsafe_path(&prefix.join(shown), "file name is not UTF-8".into())
                    );
                }
            };
            let path = prefix.join(name);
            check_name(name).map_err(|reason| self.unsafe_path(&path, reason.into()))?;
            match entry.filemode() {
                0o040000 => {
                    let subtree = self
                        .repo
                        .find_tree(entry.id())
                        .map_err(|error| self.git_error(&error))?;
                    self.plan.push(Planned::Dir(path.clone()));
                    self.walk(&subtree, &path, depth + 1)?;
                }
                mode @ (0o100644 | 0o100755 | 0o100664) => {
                    let (size, kind) = self
                        .repo
                        .odb()
                        .and_then(|odb| odb.read_header(entry.id()))
                        .map_err(|error| self.git_error(&error))?;
                    if kind != ObjectType::Blob {
                        return Err(self.unsafe_path(&path, "file entry is not a blob".into()));
                    }
                    self.totals.files += 1;
                    self.totals.bytes += size as u64;
                    self.check_limits()?;
                    self.plan.push(Planned::File {
                        path,
                        blob: entry.id(),
                        executable: mode == 0o100755,
                    });
                }
                0o120000 => {
                    let target = self
                        .repo
                        .find_blob(entry.id())
                        .map(|blob| {
                            let content = blob.content();
                            String::from_utf8_lossy(&content[..content.len().min(256)]).into_owned()
                        })
                        .unwrap_or_default();
                    return Err(GitError::Symlink {
                        repo: self.url.as_str().to_owned(),
                        commit: self.commit.to_string(),
                        path: path.display().to_string(),
                        target,
                    });
                }
                0o160000 => {
                    return Err(GitError::Submodule {
                        repo: self.url.as_str().to_owned(),
                        commit: self.commit.to_string(),
                        path: path.display().to_string(),
                    });
                }
                mode => {
                    return Err(self.unsafe_path(&path, format!("unsupported file mode {mode:o}")));
                }
            }
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<()> {
        let message = if self.totals.files > self.limits.max_files {
            format!("more than {} files", self.limits.max_files)
        } else if self.totals.bytes > self.limits.max_total_bytes {
            format!("more than {} bytes of files", self.limits.max_total_bytes)
        } else {
            return Ok(());
        };
        Err(GitError::TooLarge {
            repo: self.url.as_str().to_owned(),
            commit: self.commit.to_string(),
            message,
        })
    }

    fn unsafe_path(&self, path: &Path, reason: String) -> GitError {
        GitError::UnsafePath {
            repo: self.url.as_str().to_owned(),
            commit: self.commit.to_string(),
            path: path.display().to_string(),
            reason,
        }
    }

    fn git_error(&self, error: &git2::Error) -> GitError {
        classify(self.url, error, &AuthOutcome::default())
    }
}

/// A tree entry name must be one plain path component, and never `.git`.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("'.', '..' or empty name");
    }
    if name.contains('/') || name.contains('\0') {
        return Err("name contains '/' or NUL");
    }
    if name.eq_ignore_ascii_case(".git") {
        return Err("'.git' entries are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> RepoUrl {
        match RepoUrl::parse("https://example.com/r.git") {
            Ok(url) => url,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn repo_paths_are_normalised_and_confined() {
        let ok = |p: &str| RepoPath::parse(&url(), p).map(|p| p.as_path().display().to_string());
        assert_eq!(ok("").ok().as_deref(), Some(""));
        assert_eq!(ok("./apps/web/").ok().as_deref(), Some("apps/web"));
        assert_eq!(ok("apps/../base").ok().as_deref(), Some("base"));
        for bad in ["..", "apps/../../etc", "/etc", "a/.git/hooks", "a\0b"] {
            assert!(
                matches!(ok(bad), Err(GitError::InvalidPath { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn entry_names() {
        assert!(check_name("kustomization.yaml").is_ok());
        for bad in ["", ".", "..", "a/b", ".GIT"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
