//! Directory listings of materialised checkouts for ApplicationSet git generators: [`CheckoutFiles`] (one tree, implements `RepoFiles`) and [`RepoSnapshots`] (every (repository, revision) a set reads, implements `GitLookup`).
//!
//! ```text
//!  RepoSnapshots::load(cache, [(url, rev)]) ─► resolve ─► materialise(commit) ─► CheckoutFiles::scan(root)
//!  generate(spec, EvalContext { git: &snapshots, .. }) ─► directories() / files() / read_document(path)
//! ```
//!
//! Paths are relative to the repository root, `/`-separated. Symbolic links are never listed nor read (a
//! materialised checkout holds none); `read_document` only reads listed files, so it cannot leave the root.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use edgecd_core::appset::{GitLookup, RepoFiles};

use crate::{Checkout, CommitId, GitCache, GitError, RepoUrl, Revision};

/// Largest document `read_document` parses (a generator's parameter file, not a manifest bundle).
pub const MAX_DOCUMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Most entries (files and directories) one scan lists.
pub const MAX_ENTRIES: usize = 200_000;

/// Failure to list a checkout or load a repository snapshot; names the directory or repository.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("listing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("listing {path}: more than {MAX_ENTRIES} files and directories")]
    TooLarge { path: PathBuf },
    #[error(transparent)]
    Git(#[from] GitError),
}

/// A snapshot listing of one checkout directory (taken once, at [`CheckoutFiles::scan`]).
#[derive(Debug, Clone)]
pub struct CheckoutFiles {
    root: PathBuf,
    /// Sorted; the root itself excluded.
    directories: Vec<String>,
    /// Sorted.
    files: Vec<String>,
    /// What YAML aliases may add across every document read from this snapshot (clones share it).
    yaml_budget: edgecd_render::yaml::Budget,
}

impl CheckoutFiles {
    /// Lists every directory and regular file under `root` (`.git` and symbolic links left out).
    pub fn scan(root: &Path) -> Result<Self, TreeError> {
        let mut directories = Vec::new();
        let mut files = Vec::new();
        let mut pending: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            let io = |source| TreeError::Io {
                path: dir.clone(),
                source,
            };
            for entry in std::fs::read_dir(&dir).map_err(io)? {
                let entry = entry.map_err(io)?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue; // not UTF-8: cannot be named by a generator
                };
                if name == ".git" {
                    continue;
                }
                let kind = entry.file_type().map_err(io)?;
                let relative = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                if kind.is_dir() {
                    directories.push(relative.clone());
                    pending.push((entry.path(), relative));
                } else if kind.is_file() {
                    files.push(relative);
                }
                if directories.len() + files.len() > MAX_ENTRIES {
                    return Err(TreeError::TooLarge {
                        path: root.to_path_buf(),
                    });
                }
            }
        }
        directories.sort();
        files.sort();
        Ok(Self {
            root: root.to_path_buf(),
            directories,
            files,
            yaml_budget: edgecd_render::yaml::Budget::default(),
        })
    }

    /// The scanned directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// `path` normalised (`./` and empty components dropped), or `None` when it is absolute or has `..`.
fn clean(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

impl RepoFiles for CheckoutFiles {
    fn directories(&self) -> Vec<String> {
        self.directories.clone()
    }

    fn files(&self) -> Vec<String> {
        self.files.clone()
    }

    fn read_document(&self, path: &str) -> Result<serde_json::Value, String> {
        let Some(relative) = clean(path) else {
            return Err(format!(
                "path {path:?} is absolute or leaves the repository root"
            ));
        };
        if self.files.binary_search(&relative).is_err() {
            return Err(format!("{path:?} is not a file of the repository"));
        }
        let full = self.root.join(&relative);
        let size = std::fs::metadata(&full)
            .map_err(|e| format!("reading {path:?}: {e}"))?
            .len();
        if size > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "{path:?} has {size} bytes, more than the limit of {MAX_DOCUMENT_BYTES}"
            ));
        }
        let text = std::fs::read_to_string(&full).map_err(|e| format!("reading {path:?}: {e}"))?;
        // YAML is a superset of JSON; the loader bounds alias expansion and nesting.
        edgecd_render::yaml::load_one_within(&text, &self.yaml_budget)
            .map_err(|e| format!("parsing {path:?}: {e}"))
    }
}

/// One loaded (repository, revision).
#[derive(Debug, Clone)]
struct Snapshot {
    commit: CommitId,
    files: CheckoutFiles,
    /// Keeps the checkout directory from being cleaned up while the listing is in use.
    _checkout: Checkout,
}

/// The trees of every (repository URL, revision) an ApplicationSet reads, each resolved to a commit and
/// materialised once; implements `GitLookup` for `edgecd_core::appset::generate`.
#[derive(Debug, Clone, Default)]
pub struct RepoSnapshots {
    repos: HashMap<(String, String), Snapshot>,
}

impl RepoSnapshots {
    /// Resolves each revision (fetching as needed), materialises its commit and scans it. The first failing
    /// source fails the whole load (its error names the repository).
    #[tracing::instrument(skip_all, fields(sources = sources.len()))]
    pub async fn load(cache: &GitCache, sources: &[(String, String)]) -> Result<Self, TreeError> {
        let mut repos = HashMap::new();
        for (url_text, revision_text) in sources {
            let key = (url_text.clone(), revision_text.clone());
            if repos.contains_key(&key) {
                continue;
            }
            let url = RepoUrl::parse(url_text)?;
            let commit = cache.resolve(&url, &Revision::new(revision_text)).await?;
            let checkout = cache.materialise(&url, commit, "").await?;
            let root = checkout.root().to_path_buf();
            let files = tokio::task::spawn_blocking(move || CheckoutFiles::scan(&root))
                .await
                .map_err(|e| GitError::Task {
                    repo: url.as_str().to_owned(),
                    message: format!("listing commit {commit}: {e}"),
                })??;
            repos.insert(
                key,
                Snapshot {
                    commit,
                    files,
                    _checkout: checkout,
                },
            );
        }
        Ok(Self { repos })
    }

    /// The commit each (repository URL, revision) resolved to, to notice when one moves.
    pub fn commits(&self) -> BTreeMap<(String, String), CommitId> {
        self.repos
            .iter()
            .map(|(key, snapshot)| (key.clone(), snapshot.commit))
            .collect()
    }
}

impl GitLookup for RepoSnapshots {
    fn repo(&self, repo_url: &str, revision: &str) -> Result<&dyn RepoFiles, String> {
        self.repos
            .get(&(repo_url.to_owned(), revision.to_owned()))
            .map(|s| &s.files as &dyn RepoFiles)
            .ok_or_else(|| {
                format!("repository {repo_url} at {revision:?} was not loaded (a templated repoURL or revision is not supported)")
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("deploy/clusters/c3/nginx")).unwrap();
        std::fs::create_dir_all(root.join("deploy/clusters/c3/empty")).unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join("deploy/clusters/c3/nginx/k.yaml"), "a: 1\n").unwrap();
        std::fs::write(
            root.join("config.yaml"),
            "cluster:\n  name: c3\n  labels: &l {env: prod}\n  copy: *l\n",
        )
        .unwrap();
        std::fs::write(root.join("config.json"), r#"{"x": [1, 2]}"#).unwrap();
        std::fs::write(root.join("bad.yaml"), "a: [\n").unwrap();
        dir
    }

    #[test]
    fn lists_directories_and_files_relative_and_sorted() {
        let dir = tree();
        let files = CheckoutFiles::scan(dir.path()).unwrap();
        assert_eq!(
            files.directories(),
            [
                "deploy",
                "deploy/clusters",
                "deploy/clusters/c3",
                "deploy/clusters/c3/empty",
                "deploy/clusters/c3/nginx"
            ]
        );
        assert_eq!(
            files.files(),
            [
                "bad.yaml",
                "config.json",
                "config.yaml",
                "deploy/clusters/c3/nginx/k.yaml"
            ]
        );
        assert_eq!(files.root(), dir.path());
    }

    #[test]
    fn reads_yaml_and_json_documents() {
        let dir = tree();
        let files = CheckoutFiles::scan(dir.path()).unwrap();
        let doc = files.read_document("config.yaml").unwrap();
        assert_eq!(doc["cluster"]["copy"]["env"], "prod");
        assert_eq!(
            files.read_document("./config.json").unwrap()["x"],
            serde_json::json!([1, 2])
        );
        let error = files.read_document("bad.yaml").unwrap_err();
        assert!(
            error.contains("bad.yaml") && error.contains("yaml"),
            "{error}"
        );
    }

    #[test]
    fn refuses_paths_outside_the_listing() {
        let dir = tree();
        let files = CheckoutFiles::scan(dir.path()).unwrap();
        for path in ["../etc/passwd", "/etc/passwd", "deploy/../../x.yaml"] {
            let error = files.read_document(path).unwrap_err();
            assert!(error.contains("leaves the repository root"), "{error}");
        }
        assert!(
            files
                .read_document("missing.yaml")
                .unwrap_err()
                .contains("not a file")
        );
        assert!(
            files
                .read_document("deploy")
                .unwrap_err()
                .contains("not a file")
        );
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_neither_listed_nor_read() {
        let dir = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.yaml"), "s: 1\n").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            dir.path().join("link.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("linkdir")).unwrap();
        let files = CheckoutFiles::scan(dir.path()).unwrap();
        assert!(!files.files().iter().any(|f| f.starts_with("link")));
        assert!(!files.directories().iter().any(|f| f.starts_with("link")));
        assert!(files.read_document("link.yaml").is_err());
    }

    #[tokio::test]
    async fn loads_each_source_at_its_commit() {
        let repo = edgecd_testkit::GitRepo::local().unwrap();
        repo.write("apps/a/x.yaml", "kind: ConfigMap\n").unwrap();
        repo.write("apps/b/values.json", r#"{"v": 1}"#).unwrap();
        let first = repo.commit("two apps").unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache =
            GitCache::new(crate::GitConfig::new(cache_dir.path()), Default::default()).unwrap();
        let sources = vec![
            (repo.url().to_owned(), "HEAD".to_owned()),
            (repo.url().to_owned(), "HEAD".to_owned()),
        ];
        let snapshots = RepoSnapshots::load(&cache, &sources).await.unwrap();
        let commits = snapshots.commits();
        assert_eq!(commits.len(), 1);
        assert_eq!(commits.values().next().unwrap().to_string(), first);
        let files = snapshots.repo(repo.url(), "HEAD").unwrap();
        assert_eq!(files.directories(), ["apps", "apps/a", "apps/b"]);
        assert_eq!(files.read_document("apps/b/values.json").unwrap()["v"], 1);
        assert!(snapshots.repo(repo.url(), "main").is_err());

        let missing = vec![(repo.url().to_owned(), "no-such-branch".to_owned())];
        let error = RepoSnapshots::load(&cache, &missing).await.unwrap_err();
        assert!(error.to_string().contains("no-such-branch"), "{error}");
    }

    #[test]
    fn unknown_sources_are_named() {
        let snapshots = RepoSnapshots::default();
        let error = snapshots
            .repo("https://git.example.com/r.git", "main")
            .err()
            .unwrap();
        assert!(error.contains("https://git.example.com/r.git"), "{error}");
        assert!(snapshots.commits().is_empty());
    }
}
