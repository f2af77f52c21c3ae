//! edgecd's git layer, shared by hub and spoke: a de-duplicating cache of repositories and safe checkouts of commits to render.
//!
//! ```text
//!  ls_remote(url, rev) ──► advertised refs (TTL cache, single-flight) ──► Some(commit) | None (a commit id)
//!  resolve(url, rev)   ──► ls-remote ─► commit cached? ─yes─► commit
//!                                           └─no─► fetch (single-flight per repo, bounded across repos,
//!                                                  shallow first, unshallow if a commit is not a tip)
//!  materialise(url, commit, path) ──► <cache>/checkouts/<repo>-<commit>/ (validated, written atomically,
//!                                     no symlinks/submodules/escapes, size-limited, LRU-bounded)
//! ```
//!
//! Layout, de-duplication, shallow rules and security rules are described in `docs/git.md`.
//! All libgit2 work runs in `spawn_blocking`, inside the caller's tracing span.

mod auth;
mod checkout;
mod credentials;
mod error;
mod metrics;
mod remote;
mod revision;
pub mod tree;
mod url;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use git2::Repository;
use tokio::sync::{RwLock, Semaphore};
use tracing::Instrument as _;

pub use checkout::{Checkout, RepoPath, SizeLimits};
pub use credentials::{CredentialStore, Credentials, RepoCredential, prefix_covers};
pub use error::{GitError, Result};
pub use metrics::{GitMetrics, GitMetricsSnapshot};
pub use revision::{CommitId, Revision};
pub use url::{RepoUrl, Scheme};

use checkout::{CheckoutKey, CheckoutStore};
use error::{AuthOutcome, classify};
use metrics::Counter;
use remote::{Depth, Fetched};
use revision::RemoteRefs;

/// Settings of the git cache.
#[derive(Debug, Clone)]
pub struct GitConfig {
    /// Root of the cache: `repos/` (bare repositories) and `checkouts/` (materialised commits).
    pub cache_dir: PathBuf,
    /// Network operations (fetch, ls-remote) running at once, across repositories.
    pub max_parallel_fetches: usize,
    /// Fetch only branch and tag tips (`depth 1`) until a revision needs history.
    pub shallow: bool,
    /// How long advertised refs answer polls without asking the server again.
    pub ls_remote_ttl: Duration,
    /// Checkouts kept on disk (least recently used beyond this are removed when not in use).
    pub max_checkouts: usize,
    pub limits: SizeLimits,
    /// Longest a fetch or ls-remote may take; the caller then gets [`GitError::Network`]. A transfer still
    /// sending data is aborted at the deadline; a silent server holds the repository until the connection fails.
    pub network_timeout: Duration,
}

impl GitConfig {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_parallel_fetches: 4,
            shallow: true,
            ls_remote_ttl: Duration::from_secs(10),
            max_checkouts: 64,
            limits: SizeLimits::default(),
            network_timeout: Duration::from_secs(300),
        }
    }
}

/// How hard [`GitCache::refresh`] tries to see the newest state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// Reuse recently advertised refs and in-flight fetches; skip the fetch when the commit is cached.
    Normal,
    /// Ask the server now and fetch, joining nothing that started earlier (a user's "hard refresh").
    Hard,
}

/// What [`GitCache::fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchReport {
    /// This call joined a fetch of the same repository that was already running.
    pub deduplicated: bool,
    pub received_bytes: u64,
    /// The cache repository is shallow after the fetch.
    pub shallow: bool,
}

/// The git cache: one per process (spoke or hub), cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct GitCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GitConfig,
    credentials: CredentialStore,
    metrics: GitMetrics,
    network: Arc<Semaphore>,
    repos: Mutex<HashMap<String, Arc<RepoState>>>,
    checkouts: CheckoutStore,
}

/// Per-repository state: its lock and its in-flight operations.
#[derive(Debug)]
struct RepoState {
    url: RepoUrl,
    key: String,
    path: PathBuf,
    /// Fetches write the bare repository exclusively; resolution and checkouts read it.
    lock: Arc<RwLock<()>>,
    fetch: Flight<FetchReport>,
    ls_remote: Flight<Arc<RemoteRefs>>,
    advertised: Mutex<Option<(Instant, Arc<RemoteRefs>)>>,
}

type SharedResult<T> = Shared<BoxFuture<'static, Result<T>>>;

/// Single-flight slot: callers arriving while an operation runs share its result.
#[derive(Debug)]
struct Flight<T: Clone> {
    slot: Arc<Mutex<Option<SharedResult<T>>>>,
}

// === impl GitCache ===

impl GitCache {
    /// Opens (or creates) the cache directory; removes leftovers of interrupted checkouts.
    pub fn new(config: GitConfig, credentials: CredentialStore) -> Result<Self> {
        let repos_dir = config.cache_dir.join("repos");
        let checkouts_dir = config.cache_dir.join("checkouts");
        std::fs::create_dir_all(&repos_dir).map_err(GitError::io(
            "-",
            "creating cache directory",
            &repos_dir,
        ))?;
        remote::remove_stale_locks(&repos_dir);
        let checkouts = CheckoutStore::open(checkouts_dir.clone(), config.max_checkouts).map_err(
            GitError::io("-", "opening checkout directory", &checkouts_dir),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                network: Arc::new(Semaphore::new(config.max_parallel_fetches.max(1))),
                config,
                credentials,
                metrics: GitMetrics::default(),
                repos: Mutex::new(HashMap::new()),
                checkouts,
            }),
        })
    }

    /// The credential set used by every later operation (replace it at runtime).
    pub fn credentials(&self) -> &CredentialStore {
        &self.inner.credentials
    }

    pub fn metrics(&self) -> GitMetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Where the bare cache repository of `url` lives.
    pub fn repo_cache_path(&self, url: &RepoUrl) -> PathBuf {
        self.inner
            .config
            .cache_dir
            .join("repos")
            .join(format!("{}.git", url.cache_key()))
    }

    /// Number of checkouts currently on disk.
    pub fn checkout_count(&self) -> usize {
        self.inner.checkouts.len()
    }

    /// The commit `revision` points to on the server, without fetching (cheap polling).
    ///
    /// `Some(commit)` for `HEAD`, a branch or a tag; `None` when the revision is not a ref but looks like a commit
    /// id (immutable: nothing to poll, [`resolve`](Self::resolve) it); an error if it is neither.
    /// Answers within [`GitConfig::ls_remote_ttl`] of the last connection reuse its result.
    #[tracing::instrument(skip_all, fields(repo = %url, revision = %revision))]
    pub async fn ls_remote(&self, url: &RepoUrl, revision: &Revision) -> Result<Option<CommitId>> {
        let state = self.state(url);
        let refs = self.advertised_refs(&state, RefreshMode::Normal).await?;
        match refs.lookup(revision) {
            Some(oid) => Ok(Some(CommitId::from_oid(oid))),
            None if revision.looks_like_commit() => Ok(None),
            None => Err(revision_not_found(url, revision)),
        }
    }

    /// Fetches every branch and tag of `url` into the cache; concurrent calls share one fetch.
    #[tracing::instrument(skip_all, fields(repo = %url))]
    pub async fn fetch(&self, url: &RepoUrl) -> Result<FetchReport> {
        let state = self.state(url);
        self.shared_fetch(&state).await
    }

    /// The commit `revision` denotes now, fetched into the cache ([`RefreshMode::Normal`]).
    pub async fn resolve(&self, url: &RepoUrl, revision: &Revision) -> Result<CommitId> {
        self.refresh(url, revision, RefreshMode::Normal).await
    }

    /// Resolves `revision` against the server and makes sure its commit is in the cache.
    ///
    /// A full commit id already cached needs no network. Branches, tags and `HEAD` are looked up with
    /// `ls-remote`; the fetch is skipped when that commit is cached ([`RefreshMode::Normal`]). A commit id that
    /// is not a ref tip is searched after a fetch, then after completing a shallow cache.
    #[tracing::instrument(skip_all, fields(repo = %url, revision = %revision, ?mode, commit = tracing::field::Empty))]
    pub async fn refresh(
        &self,
        url: &RepoUrl,
        revision: &Revision,
        mode: RefreshMode,
    ) -> Result<CommitId> {
        let started = Instant::now();
        let state = self.state(url);
        let commit = self.refresh_inner(&state, revision, mode).await?;
        tracing::Span::current().record("commit", tracing::field::display(commit));
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Resolved revision."
        );
        Ok(commit)
    }

    /// What `revision` denotes in the cache as last fetched, without any network (the offline fallback).
    ///
    /// `None` when the cache has never seen it.
    #[tracing::instrument(skip_all, fields(repo = %url, revision = %revision))]
    pub async fn resolve_cached(
        &self,
        url: &RepoUrl,
        revision: &Revision,
    ) -> Result<Option<CommitId>> {
        let state = self.state(url);
        self.resolve_local(&state, revision).await
    }

    /// Materialises the tree of `commit` (which must be in the cache, see [`resolve`](Self::resolve)) and
    /// returns it with `path` (validated, relative to the repository root) inside.
    ///
    /// The whole repository is written once per commit into a content-addressed directory reused by later
    /// calls. Symlinks, submodules, unsafe names and trees over the size limits are refused before anything is
    /// written; the directory appears atomically.
    #[tracing::instrument(skip_all, fields(repo = %url, %commit, path = %path))]
    pub async fn materialise(
        &self,
        url: &RepoUrl,
        commit: CommitId,
        path: &str,
    ) -> Result<Checkout> {
        let started = Instant::now();
        let repo_path = RepoPath::parse(url, path)?;
        let state = self.state(url);
        let key = CheckoutKey {
            repo: state.key.clone(),
            commit,
        };
        let lease = match self.inner.checkouts.lease(&key) {
            Some(lease) => {
                self.inner.metrics.inc(Counter::CheckoutsReused);
                lease
            }
            None => self.write_checkout(&state, &key).await?,
        };
        let checkout = self.inner.checkouts.finish(&key, lease, &repo_path);
        if !checkout.dir().is_dir() {
            return Err(GitError::PathNotFound {
                repo: url.as_str().to_owned(),
                commit: commit.to_string(),
                path: repo_path.as_path().display().to_string(),
            });
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Materialised commit."
        );
        Ok(checkout)
    }

    // --- internals ---

    fn state(&self, url: &RepoUrl) -> Arc<RepoState> {
        let key = url.cache_key();
        let mut repos = self
            .inner
            .repos
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        repos
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(RepoState {
                    url: url.clone(),
                    path: self.repo_cache_path(url),
                    key,
                    lock: Arc::new(RwLock::new(())),
                    fetch: Flight::default(),
                    ls_remote: Flight::default(),
                    advertised: Mutex::new(None),
                })
            })
            .clone()
    }

    async fn refresh_inner(
        &self,
        state: &Arc<RepoState>,
        revision: &Revision,
        mode: RefreshMode,
    ) -> Result<CommitId> {
        if let Some(commit) = revision.full_commit()
            && self.has_commit(state, commit).await?
        {
            return Ok(commit);
        }
        let refs = self.advertised_refs(state, mode).await?;
        if let Some(oid) = refs.lookup(revision) {
            let commit = CommitId::from_oid(oid);
            if mode == RefreshMode::Normal && self.has_commit(state, commit).await? {
                return Ok(commit);
            }
            self.fetch_for(state, mode).await?;
            if self.has_commit(state, commit).await? {
                return Ok(commit);
            }
            // The ref moved between ls-remote and the fetch: take what the fetch brought.
            return self
                .resolve_local(state, revision)
                .await?
                .ok_or_else(|| revision_not_found(&state.url, revision));
        }
        if !revision.looks_like_commit() {
            return Err(revision_not_found(&state.url, revision));
        }
        // A commit id that is no ref tip: maybe cached already, maybe behind a tip's history.
        if let Some(commit) = self.resolve_local(state, revision).await? {
            return Ok(commit);
        }
        let report = self.fetch_for(state, mode).await?;
        if let Some(commit) = self.resolve_local(state, revision).await? {
            return Ok(commit);
        }
        if report.shallow {
            tracing::info!(repo = %state.url, revision = %revision, "Revision is not a fetched tip; completing the shallow cache.");
            self.inner.metrics.inc(Counter::UnshallowFetches);
            self.run_fetch(state, Some(Depth::Unshallow)).await?;
            if let Some(commit) = self.resolve_local(state, revision).await? {
                return Ok(commit);
            }
        }
        Err(revision_not_found(&state.url, revision))
    }

    async fn fetch_for(&self, state: &Arc<RepoState>, mode: RefreshMode) -> Result<FetchReport> {
        match mode {
            RefreshMode::Normal => self.shared_fetch(state).await,
            RefreshMode::Hard => self.run_fetch(state, None).await,
        }
    }

    async fn shared_fetch(&self, state: &Arc<RepoState>) -> Result<FetchReport> {
        let this = self.clone();
        let owned = state.clone();
        let (shared, joined) = state.fetch.join_or_start(&state.url, move || async move {
            this.run_fetch(&owned, None).await
        });
        if joined {
            self.inner.metrics.inc(Counter::FetchDedupHits);
            tracing::debug!("Joined a fetch in flight.");
        }
        let mut report = shared.await?;
        report.deduplicated = joined;
        Ok(report)
    }

    /// One real fetch: exclusive on the repository, bounded across repositories.
    /// `depth` `None` picks shallow for a new or shallow cache (if configured), full otherwise.
    async fn run_fetch(&self, state: &Arc<RepoState>, depth: Option<Depth>) -> Result<FetchReport> {
        // Both guards move into the blocking work: if the caller times out, the repository stays locked until
        // libgit2 really stops.
        let write = state.lock.clone().write_owned().await;
        let permit = self.network_permit(&state.url).await?;
        let started = Instant::now();
        let timeout = self.inner.config.network_timeout;
        let deadline = started + timeout;
        let credential = self.inner.credentials.find(&state.url);
        let shallow_configured = self.inner.config.shallow;
        let url = state.url.clone();
        let path = state.path.clone();
        self.inner.metrics.inc(Counter::Fetches);
        let inner = self.inner.clone();
        let work = blocking(&state.url, move || {
            let _held = (write, permit);
            let repo = remote::open_or_init(&url, &path)?;
            let chosen = pick_depth(&repo, depth, shallow_configured);
            match remote::fetch(&repo, &url, credential.as_ref(), chosen, deadline) {
                Err(GitError::Corrupt { message, .. }) => {
                    // The cache is only a cache: start it over once.
                    tracing::warn!(repo = %url, error = %message, "Cache repository is corrupt; recreating it.");
                    inner.metrics.inc(Counter::CacheResets);
                    drop(repo);
                    std::fs::remove_dir_all(&path).map_err(GitError::io(
                        url.as_str(),
                        "removing corrupt cache",
                        &path,
                    ))?;
                    let repo = remote::open_or_init(&url, &path)?;
                    let chosen = pick_depth(&repo, depth, shallow_configured);
                    remote::fetch(&repo, &url, credential.as_ref(), chosen, deadline)
                }
                other => other,
            }
        });
        let result = with_timeout(&state.url, timeout, work).await;
        let fetched: Fetched = match result {
            Ok(fetched) => fetched,
            Err(error) => {
                self.inner.metrics.inc(Counter::FetchFailures);
                tracing::warn!(repo = %state.url, error = %error, "Fetch failed.");
                return Err(error);
            }
        };
        if fetched.fell_back_to_full {
            self.inner.metrics.inc(Counter::ShallowFallbacks);
        }
        self.inner
            .metrics
            .add(Counter::ReceivedBytes, fetched.received_bytes);
        tracing::info!(
            repo = %state.url,
            received_bytes = fetched.received_bytes,
            shallow = fetched.shallow,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Fetched repository."
        );
        Ok(FetchReport {
            deduplicated: false,
            received_bytes: fetched.received_bytes,
            shallow: fetched.shallow,
        })
    }

    async fn advertised_refs(
        &self,
        state: &Arc<RepoState>,
        mode: RefreshMode,
    ) -> Result<Arc<RemoteRefs>> {
        if mode == RefreshMode::Hard {
            return self.run_ls_remote(state).await;
        }
        if let Some((at, refs)) = state
            .advertised
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            && at.elapsed() < self.inner.config.ls_remote_ttl
        {
            self.inner.metrics.inc(Counter::LsRemoteCacheHits);
            return Ok(refs.clone());
        }
        let this = self.clone();
        let owned = state.clone();
        let (shared, joined) = state
            .ls_remote
            .join_or_start(&state.url, move || async move {
                this.run_ls_remote(&owned).await
            });
        if joined {
            self.inner.metrics.inc(Counter::LsRemoteDedupHits);
        }
        shared.await
    }

    async fn run_ls_remote(&self, state: &Arc<RepoState>) -> Result<Arc<RemoteRefs>> {
        let permit = self.network_permit(&state.url).await?;
        let started = Instant::now();
        let credential = self.inner.credentials.find(&state.url);
        let url = state.url.clone();
        self.inner.metrics.inc(Counter::LsRemotes);
        let work = blocking(&state.url, move || {
            let _held = permit;
            remote::ls_remote(&url, credential.as_ref())
        });
        let refs = with_timeout(&state.url, self.inner.config.network_timeout, work)
            .await
            .map(Arc::new)?;
        *state
            .advertised
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), refs.clone()));
        tracing::debug!(
            refs = refs.refs.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Listed remote refs."
        );
        Ok(refs)
    }

    async fn network_permit(&self, url: &RepoUrl) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.inner
            .network
            .clone()
            .acquire_owned()
            .await
            .map_err(|error| GitError::Task {
                repo: url.as_str().to_owned(),
                message: error.to_string(),
            })
    }

    async fn has_commit(&self, state: &Arc<RepoState>, commit: CommitId) -> Result<bool> {
        let _read = state.lock.read().await;
        let path = state.path.clone();
        blocking(&state.url, move || {
            Ok(match Repository::open_bare(&path) {
                Ok(repo) => repo.find_commit(commit.oid()).is_ok(),
                Err(_) => false,
            })
        })
        .await
    }

    async fn resolve_local(
        &self,
        state: &Arc<RepoState>,
        revision: &Revision,
    ) -> Result<Option<CommitId>> {
        let _read = state.lock.read().await;
        let path = state.path.clone();
        let url = state.url.clone();
        let revision = revision.clone();
        blocking(&state.url, move || {
            let Ok(repo) = Repository::open_bare(&path) else {
                return Ok(None);
            };
            revision::resolve_local(&repo, &revision)
                .map(|oid| oid.map(CommitId::from_oid))
                .map_err(|error| classify(&url, &error, &AuthOutcome::default()))
        })
        .await
    }

    async fn write_checkout(&self, state: &Arc<RepoState>, key: &CheckoutKey) -> Result<Arc<()>> {
        let _read = state.lock.read().await;
        let inner = self.inner.clone();
        let url = state.url.clone();
        let path = state.path.clone();
        let owned_key = key.clone();
        let limits = self.inner.config.limits;
        let (lease, written) = blocking(&state.url, move || {
            let key = owned_key;
            let not_cached = || GitError::RevisionNotFound {
                repo: url.as_str().to_owned(),
                revision: key.commit.to_string(),
            };
            let repo = Repository::open_bare(&path).map_err(|_| not_cached())?;
            let checkouts = &inner.checkouts;
            let temp = checkouts.temp_dir().map_err(GitError::io(
                url.as_str(),
                "creating a checkout in",
                checkouts.path_of(&key),
            ))?;
            let written = checkout::write_tree(&repo, &url, key.commit, temp.path(), limits)?;
            let lease = checkouts.install(&key, temp).map_err(GitError::io(
                url.as_str(),
                "installing checkout",
                checkouts.path_of(&key),
            ))?;
            Ok((lease, written))
        })
        .await?;
        self.inner.metrics.inc(Counter::CheckoutsWritten);
        self.inner
            .metrics
            .add(Counter::CheckoutBytes, written.bytes);
        tracing::info!(
            repo = %state.url,
            commit = %key.commit,
            files = written.files,
            bytes = written.bytes,
            "Materialised commit."
        );
        Ok(lease)
    }
}

// === impl Flight ===

impl<T: Clone + Send + Sync + 'static> Default for Flight<T> {
    fn default() -> Self {
        Self {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Flight<T> {
    /// Joins the operation in flight, or starts `start()` as a task (which runs to completion even if every
    /// caller goes away). Returns the shared result and whether it was joined.
    fn join_or_start<F, Fut>(&self, url: &RepoUrl, start: F) -> (SharedResult<T>, bool)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = slot.as_ref() {
            return (shared.clone(), true);
        }
        let work = start();
        let clear = self.slot.clone();
        let handle = tokio::spawn(
            async move {
                let result = work.await;
                // Cleared before the result is published: later callers start a new operation.
                *clear.lock().unwrap_or_else(PoisonError::into_inner) = None;
                result
            }
            .in_current_span(),
        );
        let repo = url.as_str().to_owned();
        let shared = async move {
            handle.await.unwrap_or_else(|error| {
                Err(GitError::Task {
                    repo,
                    message: error.to_string(),
                })
            })
        }
        .boxed()
        .shared();
        *slot = Some(shared.clone());
        (shared, false)
    }
}

/// Runs blocking libgit2 work on the blocking pool, inside the current tracing span.
async fn blocking<T, F>(url: &RepoUrl, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .unwrap_or_else(|error| {
            Err(GitError::Task {
                repo: url.as_str().to_owned(),
                message: error.to_string(),
            })
        })
}

/// `requested`, or shallow for a new or shallow cache (when configured) and full otherwise.
fn pick_depth(repo: &Repository, requested: Option<Depth>, shallow_configured: bool) -> Depth {
    let new = repo.is_empty().unwrap_or(true);
    match requested {
        Some(Depth::Unshallow) if !repo.is_shallow() => Depth::Full,
        Some(depth) => depth,
        None if shallow_configured && (new || repo.is_shallow()) => Depth::Shallow,
        None => Depth::Full,
    }
}

/// Gives up waiting for `work` after `timeout` (the blocking work itself finishes in the background).
async fn with_timeout<T>(
    url: &RepoUrl,
    timeout: Duration,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(GitError::Network {
                repo: url.as_str().to_owned(),
                message: format!("no answer within {} s", timeout.as_secs_f64()),
            })
        })
}

fn revision_not_found(url: &RepoUrl, revision: &Revision) -> GitError {
    GitError::RevisionNotFound {
        repo: url.as_str().to_owned(),
        revision: revision.as_str().to_owned(),
    }
}
