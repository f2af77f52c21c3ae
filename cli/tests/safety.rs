//! End to end against the dev fleet: the CLI's safety rails (#20): deny-by-default projects, `app delete` asking first and saying what cascades, refusals the hub knows up front failing at once with the documented exit codes and the hub's message said once, upserts that say truthfully whether they created, updated or changed nothing, and apps owned by a set refused on every write path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Cli, app_args, count, field};

async fn spec_version(cli: &Cli, app: &str) -> u64 {
    let app = cli
        .run(&["app", "get", app, "-o", "json"])
        .await
        .ok()
        .json();
    app["metadata"]["specVersion"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_asks_before_harm_and_refuses_at_once() {
    let fleet = common::fleet(2).await;
    let cli = Cli::new();
    cli.login(&fleet).await;
    let repo = fleet.repo().url().to_owned();

    // A project created without flags allows nothing, and says how to allow things.
    let created = cli.run(&["project", "create", "team-a"]).await.ok();
    assert!(
        created.stdout.contains("project team-a created"),
        "{created:?}"
    );
    assert!(
        created.stderr.contains("deny by default")
            && created.stderr.contains("edgecd project add-source team-a")
            && created
                .stderr
                .contains("edgecd project add-destination team-a"),
        "{created:?}"
    );
    let project = cli
        .run(&["project", "get", "team-a", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(project["sourceRepos"], serde_json::json!([]), "{project}");
    assert_eq!(project["destinations"], serde_json::json!([]), "{project}");
    let shown = cli.run(&["project", "get", "team-a"]).await.ok();
    assert!(
        shown.stdout.contains("Sources:       none allowed"),
        "{shown:?}"
    );
    // ... so an app in it is refused (permission denied: exit 4), naming what is not allowed.
    let refused = cli
        .run(&app_args("team-a/web", &repo, "cluster-1", "team-a"))
        .await
        .code(4);
    assert!(
        refused.stderr.contains("does not allow source repository"),
        "{refused:?}"
    );
    // Allowing a source and a destination lets it in; allowing one twice changes nothing.
    let added = cli
        .run(&["project", "add-source", "team-a", &repo])
        .await
        .ok();
    assert!(added.stdout.contains("updated"), "{added:?}");
    let again = cli
        .run(&["project", "add-source", "team-a", &repo])
        .await
        .ok();
    assert!(again.stdout.contains("unchanged"), "{again:?}");
    cli.run(&["project", "add-destination", "team-a", "cluster-1:team-a*"])
        .await
        .ok();
    let project = cli
        .run(&["project", "get", "team-a", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        project["sourceRepos"],
        serde_json::json!([repo]),
        "{project}"
    );
    assert_eq!(
        project["destinations"],
        serde_json::json!(["cluster-1:team-a*"]),
        "{project}"
    );

    // `app create` says created; `--upsert` of the same spec says unchanged (no new version);
    // a real change says updated.
    let created = cli
        .run(&app_args("team-a/web", &repo, "cluster-1", "team-a"))
        .await
        .ok();
    assert!(
        created.stdout.contains("application team-a/web created"),
        "{created:?}"
    );
    let v1 = spec_version(&cli, "team-a/web").await;
    let mut upsert = app_args("team-a/web", &repo, "cluster-1", "team-a");
    upsert.push("--upsert");
    let same = cli.run(&upsert).await.ok();
    assert!(
        same.stdout.contains("application team-a/web unchanged"),
        "{same:?}"
    );
    assert_eq!(spec_version(&cli, "team-a/web").await, v1);
    upsert.extend(["-l", "tier=web"]);
    let changed = cli.run(&upsert).await.ok();
    assert!(
        changed.stdout.contains("application team-a/web updated"),
        "{changed:?}"
    );
    let v2 = spec_version(&cli, "team-a/web").await;
    assert!(v2 > v1, "{v1} -> {v2}");

    // `app apply -f` of an unchanged Application: unchanged, same spec version.
    let doc = format!(
        "apiVersion: edgecd.io/v1alpha1\nkind: Application\nmetadata:\n  name: api\nspec:\n  project: team-a\n  source: {{repoURL: \"{repo}\", path: deploy/generated}}\n  destination: {{name: cluster-1, namespace: team-a-api}}\n  syncPolicy: {{syncOptions: [CreateNamespace=true]}}\n"
    );
    let first = cli
        .run_with_stdin(&["app", "apply", "-f", "-"], &doc)
        .await
        .ok();
    assert!(
        first
            .stdout
            .contains("application team-a/api created (spec version 1)"),
        "{first:?}"
    );
    let second = cli
        .run_with_stdin(&["app", "apply", "-f", "-"], &doc)
        .await
        .ok();
    assert!(
        second
            .stdout
            .contains("application team-a/api unchanged (spec version 1)"),
        "{second:?}"
    );
    let third = cli
        .run_with_stdin(
            &["app", "apply", "-f", "-"],
            &doc.replace("team-a-api", "team-a-api2"),
        )
        .await
        .ok();
    assert!(
        third
            .stdout
            .contains("application team-a/api updated (spec version 2)"),
        "{third:?}"
    );

    // A missing project is said once ("not found", never "not found not found"), exit 3.
    let missing = cli
        .run(&app_args("nope/web", &repo, "cluster-1", "team-a"))
        .await;
    assert_ne!(missing.code, 0, "{missing:?}");
    assert!(
        !missing.stderr.contains("not found not found"),
        "{missing:?}"
    );
    let missing = cli.run(&["app", "get", "team-a/nope"]).await.code(3);
    assert_eq!(count(&missing.stderr, "not found"), 1, "{missing:?}");

    // Refusals the hub knows up front fail at once, not after a wait: an unknown history id
    // (exit 3, the hub's words, once), then a rollback while automated sync is on (exit 1).
    cli.run(&["app", "sync", "team-a/web", "--timeout", "120s"])
        .await
        .ok();
    let started = Instant::now();
    let unknown = cli
        .run(&["app", "rollback", "team-a/web", "999"])
        .await
        .code(3);
    assert!(
        unknown.stderr.contains("no history entry 999"),
        "{unknown:?}"
    );
    assert!(
        !unknown.stderr.contains("not found not found"),
        "{unknown:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{unknown:?}");
    // Without an id, the previous entry; there is none yet (one sync): exit 3.
    let no_previous = cli.run(&["app", "rollback", "team-a/web"]).await.code(3);
    assert!(
        no_previous.stderr.contains("no previous history entry"),
        "{no_previous:?}"
    );
    cli.run(&["app", "set", "team-a/web", "--auto-sync", "true"])
        .await
        .ok();
    let history = cli
        .run(&["app", "history", "team-a/web", "-o", "json"])
        .await
        .ok()
        .json();
    let id = history[0]["id"].as_i64().unwrap().to_string();
    let started = Instant::now();
    let automated = cli
        .run(&["app", "rollback", "team-a/web", &id])
        .await
        .code(1);
    assert!(automated.stderr.contains("automated sync"), "{automated:?}");
    assert_eq!(count(&automated.stderr, "error:"), 1, "{automated:?}");
    assert_eq!(
        count(&automated.stderr, "automated sync is on"),
        1,
        "{automated:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{automated:?}");
    // Setting what is already set changes nothing.
    let unchanged = cli
        .run(&["app", "set", "team-a/web", "--auto-sync", "true"])
        .await
        .ok();
    assert!(unchanged.stdout.contains("unchanged"), "{unchanged:?}");
    cli.run(&["app", "set", "team-a/web", "--auto-sync", "false"])
        .await
        .ok();

    // An app owned by an ApplicationSet: `app get` says who owns it, and every write path refuses
    // it with the hub's one message (the one `edgecd apply -f` gives), exit 1.
    let owned = cli.run(&["app", "get", "cluster-1.nginx"]).await.ok();
    assert!(
        owned
            .stdout
            .contains("Owner:       ApplicationSet default/nginx (at the hub)"),
        "{owned:?}"
    );
    let json = cli
        .run(&["app", "get", "cluster-1.nginx", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        field(&json, "/metadata/owner/kind"),
        "ApplicationSet",
        "{json}"
    );
    assert_eq!(field(&json, "/metadata/owner/name"), "nginx", "{json}");
    let message = "application default/cluster-1.nginx is owned by ApplicationSet default/nginx";
    let set = cli
        .run(&["app", "set", "cluster-1.nginx", "--auto-sync", "true"])
        .await
        .code(1);
    assert_eq!(count(&set.stderr, message), 1, "{set:?}");
    let mut upsert = app_args("cluster-1.nginx", &repo, "cluster-1", "nginx");
    upsert.push("--upsert");
    let upserted = cli.run(&upsert).await.code(1);
    assert_eq!(count(&upserted.stderr, message), 1, "{upserted:?}");
    assert!(!upserted.stdout.contains("created"), "{upserted:?}");
    let owned_doc = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: cluster-1.nginx\nspec:\n  source: {{repoURL: \"{repo}\", path: deploy/overlays/cluster-1}}\n  destination: {{name: cluster-1, namespace: nginx}}\n"
    );
    let applied = cli
        .run_with_stdin(&["app", "apply", "-f", "-"], &owned_doc)
        .await
        .code(1);
    assert_eq!(count(&applied.stderr, message), 1, "{applied:?}");
    assert_eq!(count(&applied.stderr, "cluster-1.nginx"), 1, "{applied:?}");
    let generic = cli
        .run_with_stdin(&["apply", "-f", "-"], &owned_doc)
        .await
        .code(1);
    assert!(generic.stdout.contains(message), "{generic:?}");

    // `app delete` asks first. Without a terminal and without --yes: refused (exit 2), saying
    // what would cascade; nothing deleted.
    let refused = cli.run(&["app", "delete", "team-a/web"]).await.code(2);
    assert!(refused.stderr.contains("--yes"), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("will be deleted from cluster cluster-1 too"),
        "{refused:?}"
    );
    cli.run(&["app", "get", "team-a/web"]).await.ok();
    // At a terminal, answering no: aborted (exit 1), nothing deleted.
    let declined = cli.run_tty(&["app", "delete", "team-a/web"], "n\n").await;
    assert_eq!(declined.code, 1, "{declined:?}");
    assert!(declined.stdout.contains("[y/N]"), "{declined:?}");
    assert!(declined.stdout.contains("aborted"), "{declined:?}");
    cli.run(&["app", "get", "team-a/web"]).await.ok();
    // Answering yes, with --cascade=false: deleted, its resources said to stay.
    let deleted = cli
        .run_tty(&["app", "delete", "team-a/web", "--cascade=false"], "y\n")
        .await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    assert!(
        deleted
            .stdout
            .contains("Its resources stay in cluster cluster-1"),
        "{deleted:?}"
    );
    assert!(
        deleted.stdout.contains("application team-a/web deleted"),
        "{deleted:?}"
    );
    cli.run(&["app", "get", "team-a/web"]).await.code(3);
    // --yes skips the question (scripts).
    let scripted = cli
        .run(&["app", "delete", "team-a/api", "--yes"])
        .await
        .ok();
    assert!(
        scripted
            .stdout
            .contains("application team-a/api deleted (its resources are being deleted"),
        "{scripted:?}"
    );
    // Deleting what does not exist: exit 3 before any question.
    cli.run(&["app", "delete", "team-a/api"]).await.code(3);
    fleet.shutdown().await;
}
