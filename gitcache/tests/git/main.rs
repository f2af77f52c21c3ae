//! Integration tests of the spoke git layer against real git servers (file://, git daemon, http-backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgecd_git::{
    CommitId, CredentialStore, Credentials, GitCache, GitConfig, GitError, RefreshMode,
    RepoCredential, RepoUrl, Revision, SizeLimits,
};
use edgecd_testkit::{GitHttpServer, GitRepo, GitServer, HTTP_PASSWORD, HTTP_USER};
use secrecy::SecretString;

mod ssh;

/// No test may hang on a server that keeps asking for credentials.
const DEADLINE: Duration = Duration::from_secs(60);

struct Fixture {
    _dir: tempfile::TempDir,
    cache: GitCache,
}

fn fixture() -> Fixture {
    fixture_with(|_| {}, Credentials::default())
}

fn fixture_with(configure: impl FnOnce(&mut GitConfig), credentials: Credentials) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = GitConfig::new(dir.path());
    configure(&mut config);
    let cache = GitCache::new(config, CredentialStore::new(credentials)).unwrap();
    Fixture { _dir: dir, cache }
}

fn url(text: &str) -> RepoUrl {
    RepoUrl::parse(text).unwrap()
}

fn commit_id(text: &str) -> CommitId {
    CommitId::parse(text).unwrap()
}

fn git(repo: &GitRepo, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(repo.work_path())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn resolve(cache: &GitCache, repo: &RepoUrl, revision: &str) -> Result<CommitId, GitError> {
    tokio::time::timeout(DEADLINE, cache.resolve(repo, &Revision::new(revision)))
        .await
        .expect("resolve hung")
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// main: c1 (tagged v1, lightweight; branch release) → c2 (tagged v2, annotated).
fn two_commit_repo(repo: &GitRepo) -> (String, String) {
    repo.write("app/config.yaml", "version: 1\n").unwrap();
    let c1 = repo.commit("first").unwrap();
    repo.tag("v1").unwrap();
    repo.push_branch("release").unwrap();
    repo.write("app/config.yaml", "version: 2\n").unwrap();
    let c2 = repo.commit("second").unwrap();
    git(repo, &["tag", "-a", "v2", "-m", "annotated"]);
    git(repo, &["push", "--quiet", "origin", "refs/tags/v2"]);
    (c1, c2)
}

#[tokio::test]
async fn file_url_resolves_branches_tags_commits_and_head() {
    let repo = GitRepo::local().unwrap();
    let (c1, c2) = two_commit_repo(&repo);
    let fixture = fixture();
    let cache = &fixture.cache;
    let remote = url(repo.url());

    assert_eq!(
        resolve(cache, &remote, "main").await.unwrap().to_string(),
        c2
    );
    assert_eq!(
        resolve(cache, &remote, "release")
            .await
            .unwrap()
            .to_string(),
        c1
    );
    assert_eq!(resolve(cache, &remote, "v1").await.unwrap().to_string(), c1);
    assert_eq!(
        resolve(cache, &remote, "v2").await.unwrap().to_string(),
        c2,
        "annotated tag peels to its commit"
    );
    assert_eq!(
        resolve(cache, &remote, "refs/heads/release")
            .await
            .unwrap()
            .to_string(),
        c1
    );
    assert_eq!(
        resolve(cache, &remote, "HEAD").await.unwrap().to_string(),
        c2
    );
    assert_eq!(resolve(cache, &remote, "").await.unwrap().to_string(), c2);
    assert_eq!(resolve(cache, &remote, &c1).await.unwrap().to_string(), c1);
    assert_eq!(
        resolve(cache, &remote, &c1[..10])
            .await
            .unwrap()
            .to_string(),
        c1,
        "abbreviated id"
    );

    let checkout = cache
        .materialise(&remote, commit_id(&c1), "app")
        .await
        .unwrap();
    assert_eq!(read(checkout.dir(), "config.yaml"), "version: 1\n");
    assert_eq!(checkout.dir(), checkout.root().join("app"));
    let checkout = cache
        .materialise(&remote, commit_id(&c2), "")
        .await
        .unwrap();
    assert_eq!(read(checkout.root(), "app/config.yaml"), "version: 2\n");

    // libgit2's local transport cannot fetch shallow: the first fetch fell back to a full one.
    let metrics = cache.metrics();
    assert_eq!(
        (metrics.fetches, metrics.shallow_fallbacks),
        (1, 1),
        "{metrics:?}"
    );
    let bare = git2::Repository::open_bare(cache.repo_cache_path(&remote)).unwrap();
    assert!(!bare.is_shallow());

    // A plain absolute path names the same repository (same cache).
    let plain = url(repo.bare_path().to_str().unwrap());
    assert_eq!(plain.cache_key(), remote.cache_key());
    assert_eq!(resolve(cache, &plain, "v1").await.unwrap().to_string(), c1);
}

#[tokio::test]
async fn missing_revisions_and_repositories_are_clear_errors() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    repo.commit("one").unwrap();
    let fixture = fixture();
    let remote = url(repo.url());

    let error = resolve(&fixture.cache, &remote, "no-such-branch")
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitError::RevisionNotFound { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("no-such-branch") && message.contains(repo.url()),
        "{message}"
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let error = resolve(&fixture.cache, &remote, missing).await.unwrap_err();
    assert!(
        matches!(error, GitError::RevisionNotFound { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(missing), "{error}");

    let error = fixture
        .cache
        .ls_remote(&remote, &Revision::new("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitError::RevisionNotFound { .. }),
        "{error:?}"
    );

    let server = GitServer::start().unwrap();
    let error = resolve(&fixture.cache, &url(&server.url("absent")), "main")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::RepoNotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn git_daemon_fetch_is_shallow_and_non_tip_commits_still_resolve() {
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("shallow").unwrap();
    let mut commits = Vec::new();
    for n in 0..4 {
        repo.write("file.txt", &format!("{n}\n")).unwrap();
        commits.push(repo.commit(&format!("commit {n}")).unwrap());
    }
    let fixture = fixture();
    let cache = &fixture.cache;
    let remote = url(repo.url());

    let head = resolve(cache, &remote, "main").await.unwrap();
    assert_eq!(head.to_string(), commits[3]);
    let bare = git2::Repository::open_bare(cache.repo_cache_path(&remote)).unwrap();
    assert!(bare.is_shallow(), "the first fetch is shallow");
    assert!(
        bare.find_commit(git2::Oid::from_str(&commits[0]).unwrap())
            .is_err()
    );
    assert_eq!(cache.metrics().fetches, 1);

    // An old commit is no ref tip: found after completing the shallow cache.
    let old = resolve(cache, &remote, &commits[1][..12]).await.unwrap();
    assert_eq!(old.to_string(), commits[1]);
    let metrics = cache.metrics();
    assert_eq!(metrics.unshallow_fetches, 1, "{metrics:?}");
    let bare = git2::Repository::open_bare(cache.repo_cache_path(&remote)).unwrap();
    assert!(!bare.is_shallow(), "the cache is complete now");
    let checkout = cache.materialise(&remote, old, "").await.unwrap();
    assert_eq!(read(checkout.root(), "file.txt"), "1\n");
}

#[tokio::test]
async fn polling_sees_new_commits_without_fetching() {
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("poll").unwrap();
    repo.write("app/cm.yaml", "v: 1\n").unwrap();
    let c1 = repo.commit("one").unwrap();
    let fixture = fixture_with(|c| c.ls_remote_ttl = Duration::ZERO, Credentials::default());
    let cache = &fixture.cache;
    let remote = url(repo.url());
    let main = Revision::new("main");

    assert_eq!(
        cache
            .ls_remote(&remote, &main)
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        c1
    );
    assert_eq!(cache.metrics().fetches, 0, "polling does not fetch");
    assert_eq!(
        resolve(cache, &remote, "main").await.unwrap().to_string(),
        c1
    );
    assert_eq!(
        resolve(cache, &remote, "main").await.unwrap().to_string(),
        c1
    );
    assert_eq!(
        cache.metrics().fetches,
        1,
        "an unchanged branch is not fetched again"
    );

    repo.write("app/cm.yaml", "v: 2\n").unwrap();
    let c2 = repo.commit("two").unwrap();
    assert_eq!(
        cache
            .ls_remote(&remote, &main)
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        c2
    );
    let resolved = resolve(cache, &remote, "main").await.unwrap();
    assert_eq!(resolved.to_string(), c2);
    assert_eq!(cache.metrics().fetches, 2);
    let before = cache.metrics();
    let cached = cache.resolve_cached(&remote, &main).await.unwrap();
    assert_eq!(
        cached,
        Some(resolved),
        "the offline answer is the last fetched one"
    );
    assert_eq!(cache.metrics(), before, "resolve_cached uses no network");
    let checkout = cache.materialise(&remote, resolved, "app").await.unwrap();
    assert_eq!(read(checkout.dir(), "cm.yaml"), "v: 2\n");

    // A commit id is immutable: nothing to poll.
    assert_eq!(
        cache.ls_remote(&remote, &Revision::new(&c1)).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn advertised_refs_are_cached_briefly_and_hard_refresh_bypasses_them() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    let c1 = repo.commit("one").unwrap();
    let fixture = fixture_with(
        |c| c.ls_remote_ttl = Duration::from_secs(600),
        Credentials::default(),
    );
    let cache = &fixture.cache;
    let remote = url(repo.url());
    let main = Revision::new("main");
    assert_eq!(
        cache
            .ls_remote(&remote, &main)
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        c1
    );

    let c2 = repo.commit("two").unwrap();
    assert_eq!(
        cache
            .ls_remote(&remote, &main)
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        c1,
        "within the TTL the last answer is reused"
    );
    assert_eq!(cache.metrics().ls_remote_cache_hits, 1);
    assert_eq!(cache.metrics().ls_remotes, 1);
    let hard = cache
        .refresh(&remote, &main, RefreshMode::Hard)
        .await
        .unwrap();
    assert_eq!(hard.to_string(), c2);
    assert_eq!(
        cache
            .ls_remote(&remote, &main)
            .await
            .unwrap()
            .unwrap()
            .to_string(),
        c2,
        "hard refresh updated the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetches_of_one_repository_are_deduplicated() {
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("dedup").unwrap();
    for n in 0..20 {
        repo.write(&format!("f{n}.yaml"), &format!("n: {n}\n"))
            .unwrap();
    }
    repo.commit("files").unwrap();
    let other = server.create_repo("other").unwrap();
    other.write("x.yaml", "x: 1\n").unwrap();
    other.commit("x").unwrap();
    let fixture = fixture();
    let cache = &fixture.cache;
    let remote = url(repo.url());
    let other_remote = url(other.url());

    let mut calls: Vec<_> = (0..8).map(|_| cache.fetch(&remote)).collect();
    calls.push(cache.fetch(&other_remote));
    let reports = futures::future::join_all(calls).await;
    let reports: Vec<_> = reports.into_iter().map(Result::unwrap).collect();
    let metrics = cache.metrics();
    assert_eq!(metrics.fetches, 2, "one fetch per repository: {metrics:?}");
    assert_eq!(metrics.fetch_dedup_hits, 7, "{metrics:?}");
    assert_eq!(reports.iter().filter(|r| r.deduplicated).count(), 7);
    assert!(metrics.received_bytes > 0, "{metrics:?}");

    // Once done, the next call fetches again.
    assert!(!cache.fetch(&remote).await.unwrap().deduplicated);
    assert_eq!(cache.metrics().fetches, 3);

    // Polls of one repository share one ls-remote too.
    let main = Revision::new("main");
    let polls = futures::future::join_all((0..8).map(|_| cache.ls_remote(&remote, &main))).await;
    assert!(polls.iter().all(|poll| poll.as_ref().unwrap().is_some()));
    let metrics = cache.metrics();
    assert_eq!(metrics.ls_remotes, 1, "{metrics:?}");
    assert_eq!(
        metrics.ls_remote_dedup_hits + metrics.ls_remote_cache_hits,
        7,
        "{metrics:?}"
    );

    // Concurrent checkouts of one commit end as one directory.
    let commit = cache.resolve(&remote, &main).await.unwrap();
    let checkouts =
        futures::future::join_all((0..4).map(|_| cache.materialise(&remote, commit, "")))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>();
    assert!(checkouts.iter().all(|c| c.root() == checkouts[0].root()));
    assert_eq!(cache.checkout_count(), 1);
    assert_eq!(read(checkouts[3].root(), "f7.yaml"), "n: 7\n");
}

#[tokio::test]
async fn materialised_overlays_render_with_their_bases() {
    let repo = GitRepo::local().unwrap();
    repo.write(
        "apps/web/base/kustomization.yaml",
        "resources:\n- cm.yaml\n",
    )
    .unwrap();
    repo.write(
        "apps/web/base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    repo.write(
        "apps/web/overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: prod-\n",
    )
    .unwrap();
    let commit = repo.commit("app").unwrap();
    let fixture = fixture();
    let cache = &fixture.cache;
    let remote = url(repo.url());
    let commit = resolve(cache, &remote, &commit).await.unwrap();

    let checkout = cache
        .materialise(&remote, commit, "apps/web/overlays/prod")
        .await
        .unwrap();
    let options = edgecd_render::RenderOptions {
        repo_root: Some(checkout.root().to_path_buf()),
        ..Default::default()
    };
    let objects = edgecd_render::render(checkout.dir(), &options).unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["metadata"]["name"], "prod-web");

    let again = cache
        .materialise(&remote, commit, "apps/web/base")
        .await
        .unwrap();
    assert_eq!(again.root(), checkout.root(), "one checkout per commit");
    let metrics = cache.metrics();
    assert_eq!(
        (metrics.checkouts_written, metrics.checkouts_reused),
        (1, 1)
    );

    let error = cache
        .materialise(&remote, commit, "apps/missing")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::PathNotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn escaping_paths_are_refused() {
    let repo = GitRepo::local().unwrap();
    repo.write("apps/a.yaml", "a: 1\n").unwrap();
    let commit = repo.commit("one").unwrap();
    let fixture = fixture();
    let remote = url(repo.url());
    let commit = resolve(&fixture.cache, &remote, &commit).await.unwrap();
    for path in ["..", "apps/../../etc", "/etc", "apps/.git"] {
        let error = fixture
            .cache
            .materialise(&remote, commit, path)
            .await
            .unwrap_err();
        assert!(
            matches!(error, GitError::InvalidPath { .. }),
            "{path}: {error:?}"
        );
    }
    assert!(
        fixture
            .cache
            .materialise(&remote, commit, "apps/../apps")
            .await
            .is_ok()
    );
}

fn assert_nothing_materialised(fixture: &Fixture) {
    assert_eq!(fixture.cache.checkout_count(), 0);
    let leftovers: Vec<_> = std::fs::read_dir(fixture._dir.path().join("checkouts"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn symlinks_are_refused_and_nothing_is_written() {
    let repo = GitRepo::local().unwrap();
    repo.write("apps/a.yaml", "a: 1\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", repo.work_path().join("apps/passwd.yaml")).unwrap();
    let commit = repo.commit("link").unwrap();
    let fixture = fixture();
    let remote = url(repo.url());
    let commit = resolve(&fixture.cache, &remote, &commit).await.unwrap();
    let error = fixture
        .cache
        .materialise(&remote, commit, "apps")
        .await
        .unwrap_err();
    match &error {
        GitError::Symlink { path, target, .. } => {
            assert_eq!(path, "apps/passwd.yaml");
            assert_eq!(target, "/etc/passwd");
        }
        other => panic!("expected a symlink error, got {other:?}"),
    }
    assert_nothing_materialised(&fixture);
}

#[tokio::test]
async fn submodules_are_refused() {
    let repo = GitRepo::local().unwrap();
    repo.write("apps/a.yaml", "a: 1\n").unwrap();
    let nested = repo.work_path().join("vendor/lib");
    std::fs::create_dir_all(&nested).unwrap();
    for args in [
        &["init", "--quiet", "-b", "main"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "sub",
        ],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(&nested)
            .args(args)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let commit = repo.commit("with a submodule").unwrap();
    assert!(git(&repo, &["ls-tree", "-r", "HEAD"]).contains("160000 commit"));
    let fixture = fixture();
    let remote = url(repo.url());
    let commit = resolve(&fixture.cache, &remote, &commit).await.unwrap();
    let error = fixture
        .cache
        .materialise(&remote, commit, "apps")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GitError::Submodule { path, .. } if path == "vendor/lib"),
        "{error:?}"
    );
    assert_nothing_materialised(&fixture);
}

#[tokio::test]
async fn size_limits_refuse_large_trees() {
    let repo = GitRepo::local().unwrap();
    for n in 0..5 {
        repo.write(&format!("f{n}.yaml"), &"x".repeat(100)).unwrap();
    }
    let commit = repo.commit("five files").unwrap();
    let remote = url(repo.url());

    let few_files = fixture_with(
        |c| {
            c.limits = SizeLimits {
                max_files: 4,
                max_total_bytes: 1 << 20,
            }
        },
        Credentials::default(),
    );
    let id = resolve(&few_files.cache, &remote, &commit).await.unwrap();
    let error = few_files
        .cache
        .materialise(&remote, id, "")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::TooLarge { .. }), "{error:?}");
    assert!(error.to_string().contains("more than 4 files"), "{error}");
    assert_nothing_materialised(&few_files);

    let few_bytes = fixture_with(
        |c| {
            c.limits = SizeLimits {
                max_files: 100,
                max_total_bytes: 450,
            }
        },
        Credentials::default(),
    );
    let id = resolve(&few_bytes.cache, &remote, &commit).await.unwrap();
    let error = few_bytes
        .cache
        .materialise(&remote, id, "")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::TooLarge { .. }), "{error:?}");
    assert_nothing_materialised(&few_bytes);

    let enough = fixture_with(
        |c| {
            c.limits = SizeLimits {
                max_files: 5,
                max_total_bytes: 500,
            }
        },
        Credentials::default(),
    );
    let id = resolve(&enough.cache, &remote, &commit).await.unwrap();
    assert!(enough.cache.materialise(&remote, id, "").await.is_ok());
}

#[tokio::test]
async fn old_checkouts_are_removed_unless_in_use() {
    let repo = GitRepo::local().unwrap();
    let mut commits = Vec::new();
    for n in 0..3 {
        repo.write("n.txt", &format!("{n}\n")).unwrap();
        commits.push(repo.commit(&format!("{n}")).unwrap());
    }
    let fixture = fixture_with(|c| c.max_checkouts = 1, Credentials::default());
    let cache = &fixture.cache;
    let remote = url(repo.url());
    resolve(cache, &remote, "main").await.unwrap();
    resolve(cache, &remote, &commits[0]).await.unwrap();

    let held = cache
        .materialise(&remote, commit_id(&commits[0]), "")
        .await
        .unwrap();
    let dropped = cache
        .materialise(&remote, commit_id(&commits[1]), "")
        .await
        .unwrap();
    let dropped_root = dropped.root().to_path_buf();
    drop(dropped);
    let newest = cache
        .materialise(&remote, commit_id(&commits[2]), "")
        .await
        .unwrap();
    assert!(held.root().is_dir(), "a checkout in use is kept");
    assert_eq!(read(held.root(), "n.txt"), "0\n");
    assert!(!dropped_root.exists(), "an unused old checkout is removed");
    assert_eq!(read(newest.root(), "n.txt"), "2\n");

    // A new cache over the same directory finds the checkouts on disk.
    let reopened = GitCache::new(
        GitConfig::new(fixture._dir.path()),
        CredentialStore::default(),
    )
    .unwrap();
    assert_eq!(reopened.checkout_count(), cache.checkout_count());
}

fn http_credential(prefix: &str, password: &str) -> RepoCredential {
    RepoCredential {
        url_prefix: prefix.to_owned(),
        username: Some(HTTP_USER.to_owned()),
        password: Some(SecretString::from(password.to_owned())),
        ..RepoCredential::default()
    }
}

#[tokio::test]
async fn http_basic_auth_uses_the_longest_matching_credential() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    let commit = repo.commit("one").unwrap();
    let server = GitHttpServer::start().unwrap();
    let repo_url = server.serve("team/app", &repo).unwrap();
    let host = format!("http://127.0.0.1:{}/", server.port());
    let remote = url(&repo_url);

    // The host-wide credential is wrong, the one for the team is right: the longer prefix wins.
    let fixture = fixture_with(
        |_| {},
        Credentials::new([
            http_credential(&host, "wrong"),
            http_credential(&format!("{host}team/"), HTTP_PASSWORD),
        ]),
    );
    assert_eq!(
        resolve(&fixture.cache, &remote, "main")
            .await
            .unwrap()
            .to_string(),
        commit
    );
    let polled = fixture
        .cache
        .ls_remote(&remote, &Revision::new("main"))
        .await
        .unwrap();
    assert_eq!(polled.unwrap().to_string(), commit);

    // Credentials are replaceable at runtime: now only the wrong one matches.
    fixture
        .cache
        .credentials()
        .replace(Credentials::new([http_credential(&host, "wrong")]));
    let error = fixture
        .cache
        .refresh(&remote, &Revision::new("main"), RefreshMode::Hard)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::AuthFailed { .. }), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("wrong\""),
        "{error:?}"
    );
}

#[tokio::test]
async fn http_without_or_with_wrong_credentials_fails_with_an_auth_error() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    repo.commit("one").unwrap();
    let server = GitHttpServer::start().unwrap();
    let remote = url(&server.serve("app", &repo).unwrap());

    let none = fixture();
    let error = resolve(&none.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::AuthFailed { .. }), "{error:?}");
    let error = tokio::time::timeout(DEADLINE, none.cache.fetch(&remote))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, GitError::AuthFailed { .. }), "{error:?}");

    let wrong = fixture_with(
        |_| {},
        Credentials::new([http_credential("http://127.0.0.1", "hunter2")]),
    );
    let error = resolve(&wrong.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::AuthFailed { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("hunter2"));

    // Credentials in the URL itself are refused, and not echoed.
    let with_userinfo = remote.as_str().replacen(
        "http://",
        &format!("http://{HTTP_USER}:{HTTP_PASSWORD}@"),
        1,
    );
    let error = RepoUrl::parse(&with_userinfo).unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl { .. }), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains(HTTP_PASSWORD),
        "{error:?}"
    );
}

#[tokio::test]
async fn https_with_a_pinned_ca() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    let commit = repo.commit("one").unwrap();
    let server = GitHttpServer::start_tls().unwrap();
    let remote = url(&server.serve("app", &repo).unwrap());
    let prefix = format!("https://localhost:{}/", server.port());
    let pinned = |ca: &str| RepoCredential {
        ca_cert_pem: Some(ca.to_owned()),
        ..http_credential(&prefix, HTTP_PASSWORD)
    };

    let trusted = fixture_with(|_| {}, Credentials::new([pinned(server.ca_pem().unwrap())]));
    assert_eq!(
        resolve(&trusted.cache, &remote, "main")
            .await
            .unwrap()
            .to_string(),
        commit
    );
    let checkout = trusted
        .cache
        .materialise(&remote, commit_id(&commit), "")
        .await
        .unwrap();
    assert_eq!(read(checkout.root(), "a.yaml"), "a: 1\n");

    let other_ca = edgecd_testkit::TestCa::generate().unwrap();
    let wrong_ca = fixture_with(|_| {}, Credentials::new([pinned(&other_ca.ca_pem)]));
    let error = resolve(&wrong_ca.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::UntrustedHost { .. }), "{error:?}");

    let no_ca = fixture_with(
        |_| {},
        Credentials::new([http_credential(&prefix, HTTP_PASSWORD)]),
    );
    let error = resolve(&no_ca.cache, &remote, "main").await.unwrap_err();
    assert!(
        matches!(error, GitError::UntrustedHost { .. }),
        "system roots do not know the test CA: {error:?}"
    );
}

#[tokio::test]
async fn a_silent_server_is_a_network_error_after_the_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts connections and says nothing; hangs up after a while so libgit2's blocked thread ends too.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(4);
        while std::time::Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let fixture = fixture_with(
        |c| c.network_timeout = Duration::from_secs(1),
        Credentials::default(),
    );
    let remote = url(&format!("http://127.0.0.1:{port}/silent.git"));
    let error = tokio::time::timeout(
        DEADLINE,
        fixture.cache.ls_remote(&remote, &Revision::new("main")),
    )
    .await
    .expect("ls-remote hung")
    .unwrap_err();
    assert!(
        matches!(&error, GitError::Network { message, .. } if message.contains("no answer")),
        "{error:?}"
    );
    let error = tokio::time::timeout(DEADLINE, fixture.cache.fetch(&remote))
        .await
        .expect("fetch hung")
        .unwrap_err();
    assert!(matches!(error, GitError::Network { .. }), "{error:?}");
}

#[tokio::test]
async fn a_damaged_cache_does_not_wedge_the_repository() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    let c1 = repo.commit("one").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let remote = url(repo.url());
    let open = || GitCache::new(GitConfig::new(dir.path()), CredentialStore::default()).unwrap();
    let cache = open();
    assert_eq!(
        resolve(&cache, &remote, "main").await.unwrap().to_string(),
        c1
    );
    let bare = cache.repo_cache_path(&remote);
    drop(cache);

    // A process killed mid-fetch leaves lock files; a disk problem leaves a garbled ref.
    let lock = bare.join("refs/heads/main.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::write(bare.join("refs/heads/main"), "garbage\n").unwrap();
    let c2 = repo.commit("two").unwrap();

    let cache = open();
    assert!(!lock.exists(), "stale locks are removed at startup");
    assert_eq!(
        resolve(&cache, &remote, "main").await.unwrap().to_string(),
        c2
    );
    let metrics = cache.metrics();
    assert_eq!(
        metrics.cache_resets, 1,
        "the garbled cache was fetched again: {metrics:?}"
    );
}

#[tokio::test]
async fn a_redirect_to_another_server_gets_no_credential() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    repo.commit("one").unwrap();
    let elsewhere = GitHttpServer::start().unwrap();
    let target = elsewhere.serve("app", &repo).unwrap();
    let redirector = GitHttpServer::start().unwrap();
    let remote = url(&redirector.redirect("app", &target));

    // The credential covers the redirecting server only; the server it redirects to asks for one.
    let prefix = format!("http://127.0.0.1:{}/", redirector.port());
    let fixture = fixture_with(
        |_| {},
        Credentials::new([http_credential(&prefix, HTTP_PASSWORD)]),
    );
    let error = resolve(&fixture.cache, &remote, "main").await.unwrap_err();
    assert!(
        matches!(&error, GitError::AuthFailed { message, .. } if message.contains("redirected")),
        "{error:?}"
    );

    // A credential that covers the target too is used there.
    let covering = fixture_with(
        |_| {},
        Credentials::new([http_credential("http://127.0.0.1:", HTTP_PASSWORD)]),
    );
    assert!(resolve(&covering.cache, &remote, "main").await.is_ok());
}
