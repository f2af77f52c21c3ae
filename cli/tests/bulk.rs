//! End to end against the dev fleet: bulk actions by selector (#20): `app sync|refresh|wait|delete|rollback` with `-l`, `--cluster`, `--cluster-selector`, `--project` or `--all`, previewed and confirmed, with exit codes that say when some apps failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cli, app_args, field};
use serde_json::Value;

/// The app's history, oldest first, as `app history -o json` prints it.
async fn history(cli: &Cli, app: &str) -> Vec<Value> {
    let history = cli
        .run(&["app", "history", app, "-o", "json"])
        .await
        .ok()
        .json();
    let mut entries = history.as_array().unwrap().clone();
    entries.sort_by_key(|h| h["id"].as_i64());
    entries
}

/// Whether a table line starts with these cells.
fn has_row(text: &str, cells: &[&str]) -> bool {
    text.lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.len() >= cells.len() && words[..cells.len()] == *cells
    })
}

/// The row of `app` in a bulk result (`-o json`).
fn row<'a>(result: &'a Value, app: &str) -> &'a Value {
    let (project, name) = app.split_once('/').unwrap();
    result
        .as_array()
        .unwrap()
        .iter()
        .find(|r| field(r, "/project") == project && field(r, "/name") == name)
        .unwrap_or_else(|| panic!("no row for {app} in {result}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_actions_by_selector() {
    let fleet = common::fleet(3).await;
    let cli = Cli::new();
    cli.login(&fleet).await;
    let repo = fleet.repo().url().to_owned();
    cli.run(&[
        "project",
        "create",
        "bulk",
        "--source-repo",
        "*",
        "--dest",
        "*:*",
    ])
    .await
    .ok();
    for (app, cluster, ns, tier) in [
        ("bulk/a", "cluster-1", "bulk-a", "tier=web"),
        ("bulk/b", "cluster-2", "bulk-b", "tier=web"),
        ("bulk/c", "cluster-3", "bulk-c", "tier=db"),
    ] {
        let mut args = app_args(app, &repo, cluster, ns);
        args.extend(["-l", tier]);
        cli.run(&args).await.ok();
    }

    // Selecting and naming at once, or neither, is a usage error.
    cli.run(&["app", "sync", "bulk/a", "-l", "tier=web"])
        .await
        .code(2);
    cli.run(&["app", "sync"]).await.code(2);
    cli.run(&["app", "sync", "--all", "-l", "tier=web"])
        .await
        .code(2);
    // Nothing matches: exit 3.
    let none = cli
        .run(&["app", "sync", "-l", "tier=none", "--yes"])
        .await
        .code(3);
    assert!(none.stderr.contains("no applications match"), "{none:?}");

    // The preview names the matching apps and their count; without a terminal and without --yes
    // nothing is queued (exit 2).
    let refused = cli.run(&["app", "sync", "-l", "tier=web"]).await.code(2);
    assert!(
        refused.stderr.contains("2 applications match:"),
        "{refused:?}"
    );
    assert!(
        has_row(&refused.stderr, &["bulk", "a", "cluster-1"]),
        "{refused:?}"
    );
    assert!(
        has_row(&refused.stderr, &["bulk", "b", "cluster-2"]),
        "{refused:?}"
    );
    assert!(!has_row(&refused.stderr, &["bulk", "c"]), "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert!(history(&cli, "bulk/a").await.is_empty());
    // At a terminal, answering no: exit 1, nothing queued.
    let declined = cli.run_tty(&["app", "sync", "-l", "tier=web"], "n\n").await;
    assert_eq!(declined.code, 1, "{declined:?}");
    assert!(
        declined.stdout.contains("Sync these 2 applications? [y/N]"),
        "{declined:?}"
    );
    assert!(history(&cli, "bulk/a").await.is_empty());

    // --yes: one BulkCommand, every command and app awaited, one row per app.
    let synced = cli
        .run(&[
            "app",
            "sync",
            "-l",
            "tier=web",
            "--yes",
            "--timeout",
            "120s",
            "-o",
            "json",
        ])
        .await
        .ok();
    assert!(
        synced.stderr.contains("sync queued for 2 applications"),
        "{synced:?}"
    );
    let result = synced.json();
    assert_eq!(result.as_array().map(Vec::len), Some(2), "{result}");
    assert_eq!(field(row(&result, "bulk/a"), "/result"), "Succeeded");
    assert_eq!(field(row(&result, "bulk/b"), "/result"), "Succeeded");
    assert_eq!(history(&cli, "bulk/a").await.len(), 1);
    assert!(
        history(&cli, "bulk/c").await.is_empty(),
        "tier=db untouched"
    );

    // Waiting over a selection: the web apps are ready; the whole project is not (bulk/c was
    // never synced): exit 6 naming it.
    cli.run(&["app", "wait", "-l", "tier=web", "--timeout", "60s"])
        .await
        .ok();
    let waited = cli
        .run(&["app", "wait", "-p", "bulk", "--sync", "--timeout", "3s"])
        .await
        .code(6);
    assert!(waited.stderr.contains("bulk/c"), "{waited:?}");
    assert!(!waited.stderr.contains("bulk/a:"), "{waited:?}");

    // A new commit, then the whole project synced (by --project): a and b get a second entry,
    // c its first.
    let first = field(&history(&cli, "bulk/a").await[0], "/revision").to_owned();
    let second = common::new_commit(&fleet, "bulk: second revision");
    assert_ne!(first, second);
    common::eventually(
        "every bulk app compared with the new commit",
        std::time::Duration::from_secs(90),
        async || {
            cli.run(&["app", "refresh", "-p", "bulk", "--hard", "--yes"])
                .await
                .ok();
            for app in ["bulk/a", "bulk/b", "bulk/c"] {
                let got = cli
                    .run(&["app", "get", app, "-o", "json"])
                    .await
                    .ok()
                    .json();
                if field(&got, "/status/sync/revision") != second {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let synced = cli
        .run(&[
            "app",
            "sync",
            "-p",
            "bulk",
            "--yes",
            "--timeout",
            "120s",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(synced.as_array().map(Vec::len), Some(3), "{synced}");
    let a = history(&cli, "bulk/a").await;
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(field(&a[1], "/revision"), second);

    // Rolling back the project: each app to its own previous entry; bulk/c has none, so the
    // others are rolled back and the exit code is that of c's failure (3: nothing to go back to).
    let rolled = cli
        .run(&[
            "app",
            "rollback",
            "-p",
            "bulk",
            "--yes",
            "--timeout",
            "120s",
            "-o",
            "json",
        ])
        .await
        .code(3);
    let result = rolled.json();
    assert_eq!(
        field(row(&result, "bulk/a"), "/result"),
        "Succeeded",
        "{result}"
    );
    assert_eq!(
        field(row(&result, "bulk/b"), "/result"),
        "Succeeded",
        "{result}"
    );
    assert_eq!(
        field(row(&result, "bulk/c"), "/result"),
        "NotFound",
        "{result}"
    );
    assert!(
        field(row(&result, "bulk/c"), "/message").contains("no previous history entry"),
        "{result}"
    );
    assert!(rolled.stderr.contains("failed for 1 of 3"), "{rolled:?}");
    let a = history(&cli, "bulk/a").await;
    assert_eq!(field(a.last().unwrap(), "/revision"), first, "{a:?}");
    // A name (or history id) with a selector makes no sense: usage.
    cli.run(&["app", "rollback", "5", "-l", "tier=web", "--yes"])
        .await
        .code(2);

    // One app that cannot sync (its path is not in the repository) among good ones: the good ones
    // sync, the command of the bad one fails, and the exit code says so (6).
    let mut broken = app_args("bulk/d", &repo, "cluster-1", "bulk-d");
    broken.extend(["-l", "tier=web"]);
    let at = broken
        .iter()
        .position(|a| *a == "deploy/generated")
        .unwrap();
    broken[at] = "deploy/missing";
    cli.run(&broken).await.ok();
    let partial = cli
        .run(&[
            "app",
            "sync",
            "-l",
            "tier=web",
            "--yes",
            "--timeout",
            "90s",
            "-o",
            "json",
        ])
        .await
        .code(6);
    let result = partial.json();
    assert_eq!(
        field(row(&result, "bulk/a"), "/result"),
        "Succeeded",
        "{result}"
    );
    assert_eq!(
        field(row(&result, "bulk/d"), "/result"),
        "Failed",
        "{result}"
    );
    assert!(partial.stderr.contains("failed for 1 of 3"), "{partial:?}");

    // Refresh by cluster, --async sync by cluster selector: queued, one row each.
    let refreshed = cli
        .run(&[
            "app",
            "refresh",
            "--cluster",
            "cluster-1",
            "--cluster",
            "cluster-2",
            "-p",
            "bulk",
            "--yes",
        ])
        .await
        .ok();
    assert!(refreshed.stdout.contains("Queued"), "{refreshed:?}");
    assert_eq!(
        refreshed.stdout.matches("Queued").count(),
        3,
        "{refreshed:?}"
    );
    let queued = cli
        .run(&[
            "app",
            "sync",
            "--cluster-selector",
            "region=us",
            "-p",
            "bulk",
            "--yes",
            "--async",
        ])
        .await
        .ok();
    // cluster-2 is the one region=us cluster of three: bulk/b only.
    assert!(
        has_row(&queued.stdout, &["bulk", "b", "cluster-2", "Queued"]),
        "{queued:?}"
    );
    assert_eq!(queued.stdout.matches("Queued").count(), 1, "{queued:?}");

    // Deleting the project's apps: previewed, confirmed, each deleted, resources kept on request.
    let refused = cli
        .run(&["app", "delete", "-p", "bulk", "--cascade=false"])
        .await
        .code(2);
    assert!(
        refused.stderr.contains("4 applications match:")
            && refused.stderr.contains("stay in their clusters"),
        "{refused:?}"
    );
    let deleted = cli
        .run(&["app", "delete", "-p", "bulk", "--cascade=false", "--yes"])
        .await
        .ok();
    assert_eq!(deleted.stdout.matches("Deleted").count(), 4, "{deleted:?}");
    let left = cli
        .run(&["app", "list", "-p", "bulk", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(left, serde_json::json!([]));
    fleet.shutdown().await;
}
