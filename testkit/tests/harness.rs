//! Tests of the harnesses themselves: a real PostgreSQL accepts queries and survives a restart; a real git server serves pushed commits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use edgecd_testkit::{GitRepo, GitServer, PgServer};
use sqlx::Connection;

#[tokio::test]
async fn postgres_starts_serves_restarts_and_isolates_databases() {
    let mut pg = PgServer::start().expect("start postgres");
    let url_a = pg.create_database().unwrap();
    let url_b = pg.create_database().unwrap();
    assert_ne!(url_a, url_b);

    let mut conn = sqlx::PgConnection::connect(&url_a).await.unwrap();
    sqlx::query("CREATE TABLE t (v int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // A crash and restart keeps committed data on the same port.
    pg.stop().unwrap();
    assert!(sqlx::PgConnection::connect(&url_a).await.is_err());
    pg.restart().unwrap();
    let mut conn = sqlx::PgConnection::connect(&url_a).await.unwrap();
    let v: i32 = sqlx::query_scalar("SELECT v FROM t")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, 42);

    // The other database is separate.
    let mut other = sqlx::PgConnection::connect(&url_b).await.unwrap();
    let missing = sqlx::query("SELECT v FROM t").fetch_one(&mut other).await;
    assert!(missing.is_err());
}

#[test]
fn git_server_serves_pushed_commits_and_tags() {
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("fleet").unwrap();
    repo.write("deploy/base/kustomization.yaml", "resources: []\n")
        .unwrap();
    let first = repo.commit("first").unwrap();
    repo.tag("v1").unwrap();
    repo.write("README", "second\n").unwrap();
    let second = repo.commit("second").unwrap();
    assert_ne!(first, second);

    // A clone over git:// sees both commits and the tag.
    let clone = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["clone", "--quiet", repo.url()])
        .arg(clone.path().join("c"))
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("git")
        .arg("-C")
        .arg(clone.path().join("c"))
        .args(["rev-parse", "HEAD", "v1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [second.as_str(), first.as_str()]
    );
    assert!(
        clone
            .path()
            .join("c/deploy/base/kustomization.yaml")
            .exists()
    );
}

#[test]
fn local_repo_has_a_file_url() {
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "x: 1\n").unwrap();
    repo.commit("c").unwrap();
    assert!(repo.url().starts_with("file:///"));
    let out = Command::new("git")
        .args(["ls-remote", repo.url(), "refs/heads/main"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&repo.head().unwrap()));
}
