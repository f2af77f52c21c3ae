//! Blocking network operations with libgit2: `ls-remote` and fetches into a bare cache repository.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use git2::{AutotagOption, Direction, FetchOptions, FetchPrune, Remote, Repository};

use super::auth;
use super::credentials::RepoCredential;
use super::error::{AuthOutcome, GitError, Result, classify};
use super::revision::{REMOTE_HEAD_REF, RemoteRefs};
use super::url::RepoUrl;

/// Every branch and tag is mirrored into the cache repository under its own name.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// libgit2's `GIT_FETCH_DEPTH_UNSHALLOW`: turn a shallow repository into a complete one.
const DEPTH_UNSHALLOW: i32 = i32::MAX;

/// How deep a fetch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Only the tips (`--depth 1`).
    Shallow,
    /// Whatever is missing, all history.
    Full,
    /// Complete a shallow repository.
    Unshallow,
}

/// What one fetch did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fetched {
    pub(crate) received_bytes: u64,
    pub(crate) shallow: bool,
    /// The shallow attempt failed and a full fetch was done instead.
    pub(crate) fell_back_to_full: bool,
}

/// Lists the refs `url` advertises (one connection, no objects transferred).
pub(crate) fn ls_remote(
    url: &RepoUrl,
    credential: Option<&Arc<RepoCredential>>,
) -> Result<RemoteRefs> {
    let outcome = RefCell::new(AuthOutcome::default());
    let fail = |error: git2::Error| classify(url, &error, &outcome.borrow());
    let mut remote = Remote::create_detached(url.as_str()).map_err(fail)?;
    let callbacks = auth::callbacks(url, credential, &outcome);
    let connection = remote
        .connect_auth(Direction::Fetch, Some(callbacks), None)
        .map_err(fail)?;
    let refs = connection
        .list()
        .map_err(fail)?
        .iter()
        .map(|head| (head.name().to_owned(), head.oid()))
        .collect();
    Ok(RemoteRefs { refs })
}

/// Removes lock files a killed process left in the cache repositories (this process owns the cache, so no
/// lock can be live at startup): libgit2 would otherwise refuse to update those refs forever.
pub(crate) fn remove_stale_locks(repos_dir: &Path) {
    let Ok(repos) = std::fs::read_dir(repos_dir) else {
        return;
    };
    for repo in repos.flatten() {
        remove_locks_in(&repo.path(), false);
        remove_locks_in(&repo.path().join("refs"), true);
    }
}

fn remove_locks_in(dir: &Path, recursive: bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && recursive {
            remove_locks_in(&path, true);
        } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "lock") {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "Removed a stale git lock file."),
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "Could not remove a stale git lock file.");
                }
            }
        }
    }
}

/// Opens the bare cache repository at `path`, creating it if missing; a damaged one is recreated.
pub(crate) fn open_or_init(url: &RepoUrl, path: &Path) -> Result<Repository> {
    if path.exists() {
        match Repository::open_bare(path) {
            Ok(repo) => return Ok(repo),
            Err(error) => {
                tracing::warn!(repo = %url, error = %error.message(), "Cache repository unreadable; recreating it.");
                std::fs::remove_dir_all(path).map_err(GitError::io(
                    url.as_str(),
                    "removing damaged cache",
                    path,
                ))?;
            }
        }
    }
    Repository::init_bare(path).map_err(|error| classify(url, &error, &AuthOutcome::default()))
}

/// Fetches every branch and tag of `url` into `repo` (pruning deleted ones) and records the remote `HEAD`.
///
/// A shallow fetch that fails for another reason than authentication, trust or a missing repository is retried
/// once as a full fetch (servers and transports without shallow support, e.g. libgit2's local transport).
pub(crate) fn fetch(
    repo: &Repository,
    url: &RepoUrl,
    credential: Option<&Arc<RepoCredential>>,
    depth: Depth,
    deadline: Instant,
) -> Result<Fetched> {
    match fetch_once(repo, url, credential, depth, deadline) {
        Ok(fetched) => Ok(fetched),
        Err(error)
            if depth == Depth::Shallow
                && !matches!(
                    error,
                    GitError::AuthFailed { .. }
                        | GitError::UntrustedHost { .. }
                        | GitError::RepoNotFound { .. }
                ) =>
        {
            tracing::info!(repo = %url, error = %error, "Shallow fetch failed; retrying with a full fetch.");
            let mut fetched = fetch_once(repo, url, credential, Depth::Full, deadline)?;
            fetched.fell_back_to_full = true;
            Ok(fetched)
        }
        Err(error) => Err(error),
    }
}

fn fetch_once(
    repo: &Repository,
    url: &RepoUrl,
    credential: Option<&Arc<RepoCredential>>,
    depth: Depth,
    deadline: Instant,
) -> Result<Fetched> {
    let started = Instant::now();
    let outcome = RefCell::new(AuthOutcome::default());
    let fail = |error: git2::Error| classify(url, &error, &outcome.borrow());
    let mut remote = repo.remote_anonymous(url.as_str()).map_err(fail)?;
    let received = Cell::new(0u64);
    let mut callbacks = auth::callbacks(url, credential, &outcome);
    // Returning false aborts the transfer: a fetch still receiving data stops at the deadline.
    callbacks.transfer_progress(|progress| {
        received.set(progress.received_bytes() as u64);
        Instant::now() < deadline
    });
    callbacks.sideband_progress(|_| Instant::now() < deadline);
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .prune(FetchPrune::On)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    match depth {
        Depth::Shallow => {
            options.depth(1);
        }
        Depth::Unshallow => {
            options.depth(DEPTH_UNSHALLOW);
        }
        Depth::Full => {}
    }
    remote
        .fetch(&REFSPECS, Some(&mut options), None)
        .map_err(|error| {
            if Instant::now() >= deadline {
                GitError::Network {
                    repo: url.as_str().to_owned(),
                    message: "fetch aborted at the network timeout".into(),
                }
            } else {
                fail(error)
            }
        })?;
    let received_bytes = received.get().max(remote.stats().received_bytes() as u64);
    // The advertised refs stay available after the fetch disconnected.
    let head = remote
        .list()
        .map_err(fail)?
        .iter()
        .find(|head| head.name() == "HEAD")
        .map(|head| head.oid());
    drop(remote);
    if let Some(head) = head
        && repo.find_commit(head).is_ok()
    {
        repo.reference(REMOTE_HEAD_REF, head, true, "edgecd: remote HEAD")
            .map_err(|error| classify(url, &error, &AuthOutcome::default()))?;
    }
    let shallow = repo.is_shallow();
    tracing::debug!(
        repo = %url,
        ?depth,
        shallow,
        received_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Fetched repository."
    );
    Ok(Fetched {
        received_bytes,
        shallow,
        fell_back_to_full: false,
    })
}
