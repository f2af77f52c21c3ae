//! End to end: the `edgecd` binary against the dev fleet (real hub, spokes, git daemon, gRPC over TCP; the Kubernetes API emulator as the only stand-in): login, list, sync a git change, diff drift, history and rollback, the fleet's deployment record, cluster states, a frozen spoke shown Stale, and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgecd_dev::{Fleet, FleetConfig};
use futures::TryStreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

/// The result of one `edgecd` run.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "edgecd failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

struct Cli {
    config: PathBuf,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgecd"))
            .args(args)
            .env("EDGECD_CONFIG", &self.config)
            .env_remove("EDGECD_SERVER")
            .env_remove("EDGECD_TOKEN")
            .env_remove("EDGECD_CONTEXT")
            .env_remove("EDGECD_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running edgecd");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await.unwrap();
        }
        let output = child.wait_with_output().await.expect("running edgecd");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// How `edgecd` ended when one of its output streams was a pipe whose reader had already exited.
#[derive(Debug)]
struct Closed {
    /// The exit status, `None` if a signal ended it.
    code: Option<i32>,
    /// What it wrote on the other stream.
    other: String,
}

impl Cli {
    /// Runs `edgecd` with stdout (or, with `stderr`, stderr) a pipe whose read end is closed before
    /// it starts, as in `edgecd app list | head -1` once `head` has exited: every write to it fails
    /// with EPIPE.
    fn run_closed(&self, args: &[&str], stderr: bool) -> Closed {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_edgecd"));
        command
            .args(args)
            .env("EDGECD_CONFIG", &self.config)
            .env_remove("EDGECD_SERVER")
            .env_remove("EDGECD_TOKEN")
            .env_remove("EDGECD_CONTEXT")
            .stdin(std::process::Stdio::null());
        if stderr {
            command.stdout(std::process::Stdio::piped()).stderr(writer);
        } else {
            command.stdout(writer).stderr(std::process::Stdio::piped());
        }
        let output = command.output().expect("running edgecd");
        let other = if stderr {
            &output.stdout
        } else {
            &output.stderr
        };
        Closed {
            code: output.status.code(),
            other: String::from_utf8_lossy(other).into_owned(),
        }
    }
}

/// Retries `check` every 500 ms until it returns `Some`, for at most `limit`.
async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The apps of `cluster` as `edgecd app list -o json` prints them; there is at least one.
async fn apps_of(cli: &Cli, cluster: &str) -> Vec<Value> {
    let apps = cli
        .run(&["app", "list", "--cluster", cluster, "-o", "json"])
        .await
        .ok()
        .json();
    let apps = apps.as_array().unwrap().clone();
    assert!(!apps.is_empty(), "no apps on {cluster}");
    apps
}

async fn deployments(fleet: &Fleet, cluster: usize) -> Api<Deployment> {
    let emulator = fleet.emulator().unwrap();
    let client = emulator.clusters()[cluster].client().await.unwrap();
    Api::namespaced(client, "nginx")
}

async fn replicas(api: &Api<Deployment>) -> Option<i32> {
    api.get_opt("nginx").await.ok()??.spec?.replicas
}

fn set_replicas(repo: &Path, cluster: &str, from: u32, to: u32) {
    let path = repo.join(format!("deploy/overlays/{cluster}/kustomization.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace(&format!("count: {from}"), &format!("count: {to}"));
    assert_ne!(
        text,
        changed,
        "count: {from} not found in {}",
        path.display()
    );
    std::fs::write(&path, changed).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_drives_the_dev_fleet() {
    let mut fleet = Fleet::start(
        FleetConfig {
            poll_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(4),
            ..FleetConfig::default()
        },
        |p| eprintln!("[{}/{}] {}", p.step, p.steps, p.message),
    )
    .await
    .unwrap();
    fleet.wait_synced(Duration::from_secs(180)).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let cli = Cli {
        config: home.path().join("edgecd/config.yaml"),
    };

    // Log in over TLS (the hub's CA) as the dev fleet's admin; the session token is saved 0600.
    let ca_file = fleet.ca_file().to_string_lossy().into_owned();
    let login = cli
        .run_with_stdin(
            &[
                "login",
                &fleet.grpc_url(),
                "--ca-file",
                &ca_file,
                "--username",
                "admin",
                "--password-stdin",
            ],
            fleet.admin_password(),
        )
        .await
        .ok();
    assert!(
        login.stderr.contains("Logged in as admin"),
        "{}",
        login.stderr
    );
    let config = std::fs::read_to_string(&cli.config).unwrap();
    assert!(config.contains(&fleet.grpc_url()), "{config}");
    assert!(config.contains("token:"), "{config}");
    assert!(
        !config.contains(fleet.admin_password()),
        "the password is not stored"
    );
    let mode = std::fs::metadata(&cli.config).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let whoami = cli.run(&["whoami"]).await.ok();
    assert!(whoami.stdout.starts_with("admin"), "{}", whoami.stdout);
    let forged = cli.run(&["--token", "not-a-token", "app", "list"]).await;
    assert_eq!(forged.code, 4, "{forged:?}");

    // The three apps of nginx-per-cluster, Synced and Healthy.
    let apps = cli.run(&["app", "list", "-o", "json"]).await.ok().json();
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 3, "{apps:?}");
    for app in apps {
        assert_eq!(field(app, "/sync"), "Synced", "{app}");
        assert_eq!(field(app, "/health"), "Healthy", "{app}");
    }
    let table = cli
        .run(&["app", "list", "--cluster", "cluster-1"])
        .await
        .ok();
    assert!(table.stdout.starts_with("PROJECT"), "{}", table.stdout);
    assert!(table.stdout.contains("cluster-1.nginx"), "{}", table.stdout);
    assert!(
        !table.stdout.contains("cluster-2.nginx"),
        "{}",
        table.stdout
    );

    // The SDK follows the hub's pagination: pages of 2 still yield the 3 apps.
    let paged: Vec<edgecd_proto::v1::ApplicationSummary> = fleet
        .client()
        .applications(edgecd_proto::v1::ListApplicationsRequest {
            page_size: 2,
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(paged.len(), 3);

    // cluster list: every cluster Connected.
    let clusters = cli
        .run(&["cluster", "list", "-o", "json"])
        .await
        .ok()
        .json();
    let clusters = clusters.as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    for cluster in clusters {
        assert_eq!(field(cluster, "/connection"), "Connected", "{cluster}");
    }

    // A change to cluster-1's overlay in git is applied by `app sync`.
    let cluster1 = deployments(&fleet, 0).await;
    assert_eq!(replicas(&cluster1).await, Some(3));
    set_replicas(fleet.repo().work_path(), "cluster-1", 3, 4);
    let commit = fleet.repo().commit("cluster-1: 4 replicas").unwrap();
    eventually(
        "cluster-1.nginx synced to the new commit",
        Duration::from_secs(120),
        async || {
            cli.run(&["app", "refresh", "cluster-1.nginx", "--hard"])
                .await
                .ok();
            let sync = cli
                .run(&[
                    "app",
                    "sync",
                    "cluster-1.nginx",
                    "--timeout",
                    "60s",
                    "-o",
                    "json",
                ])
                .await;
            (sync.code == 0 && field(&sync.json(), "/status/sync/revision") == commit).then_some(())
        },
    )
    .await;
    assert_eq!(replicas(&cluster1).await, Some(4));

    // Drift on cluster-2 shows in `app diff`.
    let cluster2 = deployments(&fleet, 1).await;
    cluster2
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    let diff = eventually(
        "a diff on cluster-2.nginx",
        Duration::from_secs(60),
        async || {
            let diff = cli.run(&["app", "diff", "cluster-2.nginx"]).await.ok();
            diff.stdout.contains("replicas").then_some(diff)
        },
    )
    .await;
    assert!(
        diff.stdout.contains("Deployment nginx/nginx"),
        "{}",
        diff.stdout
    );
    let exit = cli
        .run(&["app", "diff", "cluster-2.nginx", "--exit-code"])
        .await;
    assert_eq!(exit.code, 1, "{exit:?}");

    // Every output path with stdout closed early (`edgecd … | head -1` once head has exited): a
    // quiet exit 0, no panic, nothing on stderr (documented in docs/cli.md).
    for args in [
        &["app", "list"][..],
        &["app", "list", "-o", "wide"],
        &["app", "list", "-o", "json"],
        &["app", "list", "-o", "yaml"],
        &["app", "get", "cluster-1.nginx"],
        &["app", "get", "cluster-1.nginx", "-o", "yaml"],
        &["app", "history", "cluster-1.nginx"],
        &["history"],
        &["history", "-o", "json"],
        &["app", "manifests", "cluster-1.nginx"],
        &["app", "diff", "cluster-2.nginx"],
        &["cluster", "list"],
        &["cluster", "get", "cluster-1"],
        &["appset", "list"],
        &["appset", "get", "nginx"],
        &["project", "list"],
        &["context", "list"],
        &["whoami"],
        &["version"],
        &["completion", "bash"],
        &["app", "wait", "cluster-1.nginx", "--timeout", "60s"],
        &["app", "refresh", "cluster-1.nginx"],
    ] {
        let closed = cli.run_closed(args, false);
        assert_eq!(
            closed.code,
            Some(0),
            "edgecd {args:?} with stdout closed: {closed:?}"
        );
        assert!(
            !closed.other.contains("panicked") && !closed.other.contains("error"),
            "edgecd {args:?} with stdout closed: {closed:?}"
        );
    }
    // Errors still say what went wrong and keep their exit code when stdout is closed.
    let closed = cli.run_closed(&["app", "get", "nope"], false);
    assert_eq!(closed.code, Some(3), "{closed:?}");
    assert!(closed.other.contains("not found"), "{closed:?}");
    // A closed stderr does not panic either: the exit code is all that is left to tell.
    let closed = cli.run_closed(&["app", "get", "nope"], true);
    assert_eq!(closed.code, Some(3), "{closed:?}");
    let closed = cli.run_closed(&["app", "list"], true);
    assert_eq!(closed.code, Some(0), "{closed:?}");
    assert!(closed.other.contains("cluster-1.nginx"), "{closed:?}");
    // Through a real shell pipeline: head prints the table's header.
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' app list -o yaml | head -1; '{}' app list | head -1",
            env!("CARGO_BIN_EXE_edgecd"),
            env!("CARGO_BIN_EXE_edgecd")
        ))
        .env("EDGECD_CONFIG", &cli.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&piped.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[1].starts_with("PROJECT"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&piped.stderr).contains("panicked"),
        "{piped:?}"
    );
    // Shell completions for the shells clap supports.
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.run(&["completion", shell]).await.ok();
        assert!(
            script.stdout.contains("edgecd"),
            "{shell}: {}",
            script.stdout
        );
        assert!(
            script.stdout.contains("rollback"),
            "{shell}: {}",
            script.stdout
        );
    }

    // History has both syncs of cluster-1; roll back to the first one.
    let history = cli
        .run(&["app", "history", "cluster-1.nginx", "-o", "json"])
        .await
        .ok()
        .json();
    let history = history.as_array().unwrap();
    assert!(history.len() >= 2, "{history:?}");
    let first = history
        .iter()
        .find(|h| field(h, "/revision") != commit)
        .and_then(|h| h["id"].as_i64())
        .expect("an entry before the change");
    cli.run(&[
        "app",
        "rollback",
        "cluster-1.nginx",
        &first.to_string(),
        "--timeout",
        "90s",
    ])
    .await
    .ok();
    eventually(
        "cluster-1 back at 3 replicas",
        Duration::from_secs(60),
        async || (replicas(&cluster1).await == Some(3)).then_some(()),
    )
    .await;

    // The fleet's deployment record (`edgecd history`), newest first: the rollback (deploying the first entry
    // again over the change) and, before it, the sync that deployed the change. The spoke reports each once it
    // finished; the record may lag the command's result a little.
    let record = eventually(
        "the rollback in the fleet's deployment record",
        Duration::from_secs(60),
        async || {
            let listed = cli
                .run(&["history", "--cluster", "cluster-1", "-o", "json"])
                .await
                .ok()
                .json();
            let items = listed.as_array()?.clone();
            (field(items.first()?, "/kind") == "rollback").then_some(items)
        },
    )
    .await;
    let rollback = &record[0];
    assert_eq!(rollback["rollbackOf"].as_i64(), Some(first), "{rollback}");
    assert_eq!(field(rollback, "/fromRevision"), commit, "{rollback}");
    assert_ne!(field(rollback, "/toRevision"), commit, "{rollback}");
    assert_eq!(field(rollback, "/result"), "Succeeded", "{rollback}");
    assert_eq!(field(rollback, "/initiatedBy"), "admin", "{rollback}");
    assert_eq!(rollback["automated"], false, "{rollback}");
    assert!(
        record
            .iter()
            .all(|d| field(d, "/cluster") == "cluster-1" && field(d, "/app") == "cluster-1.nginx"),
        "{record:?}"
    );
    let change = record
        .iter()
        .find(|d| field(d, "/toRevision") == commit && field(d, "/result") == "Succeeded")
        .unwrap_or_else(|| panic!("no deployment of {commit}: {record:?}"));
    assert_eq!(field(change, "/kind"), "sync", "{change}");
    assert_ne!(field(change, "/fromRevision"), commit, "{change}");
    assert!(field(change, "/finishedAt") <= field(rollback, "/finishedAt"));
    // Filters narrow it in the database; the table says what happened in words.
    let failed = cli
        .run(&[
            "history",
            "-c",
            "cluster-1",
            "--result",
            "failed",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(failed, serde_json::json!([]), "{failed}");
    let elsewhere = cli
        .run(&[
            "history",
            "-a",
            "default/cluster-1.nginx",
            "-c",
            "cluster-2",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(elsewhere, serde_json::json!([]), "{elsewhere}");
    let table = cli
        .run(&[
            "history",
            "-a",
            "cluster-1.nginx",
            "--user",
            "admin",
            "--since",
            "1h",
            "--limit",
            "1",
        ])
        .await
        .ok();
    assert!(table.stdout.starts_with("FINISHED "), "{table:?}");
    assert!(
        table.stdout.contains(&format!("rollback to {first}")),
        "{table:?}"
    );
    assert!(table.stderr.contains("--limit 0"), "{table:?}");

    // Errors and exit codes.
    let missing = cli.run(&["app", "get", "nope"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("application default/nope not found"),
        "{}",
        missing.stderr
    );
    let unreachable = cli
        .run(&["--server", "http://127.0.0.1:1", "app", "list"])
        .await;
    assert_eq!(unreachable.code, 5, "{unreachable:?}");
    assert!(
        unreachable
            .stderr
            .contains("hub unreachable at http://127.0.0.1:1"),
        "{}",
        unreachable.stderr
    );
    let usage = cli.run(&["app", "list", "--health", "fine"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    // The fleet's nginx apps come from the talk's ApplicationSet, applied at the hub.
    let appset = cli.run(&["appset", "list"]).await.ok();
    assert!(appset.stdout.contains("nginx"), "{}", appset.stdout);
    // Applying the same set again (from stdin) changes nothing.
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/edge-fleet-repo/appsets/nginx-per-cluster.yaml"),
    )
    .unwrap()
    .replace("https://github.com/example/repo", fleet.repo().url());
    let again = cli
        .run_with_stdin(&["apply", "-f", "-"], &fixture)
        .await
        .ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    // The talk's cluster-addons set, once for two clusters: each spoke generates its own apps,
    // counted per cluster and addressed as name@cluster.
    let addons = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/edge-fleet-repo/appsets/cluster-addons.yaml"),
    )
    .unwrap()
    .replace("https://github.com/example/repo", fleet.repo().url());
    let applied = cli
        .run_with_stdin(
            &["apply", "-f", "-", "--clusters", "cluster-1,cluster-2"],
            &addons,
        )
        .await
        .ok();
    assert!(applied.stdout.contains("created"), "{}", applied.stdout);
    eventually(
        "cluster-addons' six apps",
        Duration::from_secs(60),
        async || {
            let get = cli.run(&["appset", "get", "cluster-addons"]).await.ok();
            get.stdout
                .contains("Apps:        6 (cluster-1: 3, cluster-2: 3)")
                .then_some(())
        },
    )
    .await;
    let nginx = cli
        .run(&["app", "get", "nginx@cluster-2", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        field(&nginx, "/metadata/name"),
        "nginx@cluster-2",
        "{nginx}"
    );
    // `--name nginx`: that name on every cluster (not the hub's `cluster-N.nginx`).
    let named = cli
        .run(&["app", "list", "--name", "nginx", "-o", "json"])
        .await
        .ok()
        .json();
    let mut names: Vec<&str> = named
        .as_array()
        .unwrap()
        .iter()
        .map(|a| field(a, "/name"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["nginx@cluster-1", "nginx@cluster-2"], "{named}");
    // Applied again for cluster-1 alone, it would take the set from cluster-2: refused.
    let shrunk = cli
        .run_with_stdin(&["apply", "-f", "-", "--cluster", "cluster-1"], &addons)
        .await;
    assert_eq!(shrunk.code, 1, "{shrunk:?}");
    assert!(shrunk.stdout.contains("(on cluster-2)"), "{shrunk:?}");
    cli.run(&["appset", "delete", "cluster-addons"]).await.ok();
    // Argo CD import refuses what edgecd does not support, naming the field, and applies nothing.
    let plugin = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: plugin-app\nspec:\n  source:\n    repoURL: https://github.com/example/apps\n    plugin:\n      name: cmp\n  destination:\n    name: cluster-1\n";
    let refused = cli
        .run_with_stdin(&["import", "argocd", "-f", "-"], plugin)
        .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("spec.source.plugin"),
        "{}",
        refused.stderr
    );

    // The life of an app in its own project: create, sync, set, list by label, delete.
    cli.run(&[
        "project",
        "create",
        "team-a",
        "--description",
        "team A",
        "--source-repo",
        "*",
        "--dest",
        "*:*",
    ])
    .await
    .ok();
    let project = cli
        .run(&["project", "get", "team-a", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(field(&project, "/name"), "team-a", "{project}");
    let repo_url = fleet.repo().url().to_owned();
    cli.run(&[
        "app",
        "create",
        "team-a/web",
        "--repo",
        &repo_url,
        "--path",
        "deploy/generated",
        "--dest-cluster",
        "cluster-1",
        "--dest-namespace",
        "team-a",
        "--sync-option",
        "CreateNamespace=true",
    ])
    .await
    .ok();
    let synced = cli
        .run(&[
            "app",
            "sync",
            "team-a/web",
            "--timeout",
            "90s",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(field(&synced, "/status/sync/status"), "Synced", "{synced}");
    cli.run(&[
        "app",
        "set",
        "team-a/web",
        "--auto-sync",
        "true",
        "--self-heal",
        "true",
        "-l",
        "tier=web",
    ])
    .await
    .ok();
    let app = cli
        .run(&["app", "get", "team-a/web", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(field(&app, "/metadata/labels/tier"), "web", "{app}");
    assert_eq!(
        app["spec"]["syncPolicy"]["automated"]["selfHeal"], true,
        "{app}"
    );
    let listed = cli
        .run(&["app", "list", "-l", "tier=web", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    cli.run(&["app", "delete", "team-a/web", "--yes"])
        .await
        .ok();
    let gone = cli.run(&["app", "get", "team-a/web"]).await;
    assert_eq!(gone.code, 3, "{gone:?}");
    cli.run(&["project", "delete", "team-a"]).await.ok();

    // A cluster registered, then revoked and removed.
    let added = cli
        .run(&["cluster", "add", "cluster-9", "-l", "region=ap"])
        .await
        .ok();
    assert!(
        added.stdout.contains("cluster cluster-9 registered"),
        "{}",
        added.stdout
    );
    assert!(added.stdout.contains("bootstrap token"), "{}", added.stdout);
    let pending = cli
        .run(&["cluster", "get", "cluster-9", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(field(&pending, "/connection"), "Pending", "{pending}");
    cli.run(&["cluster", "revoke", "cluster-9"]).await.ok();
    // The nginx-per-cluster set generated an app for cluster-9 when it was added; revoking the cluster
    // makes the set delete it at its next evaluation, and until then the cluster is still referenced.
    eventually("cluster-9 removable", Duration::from_secs(30), async || {
        let removed = cli.run(&["cluster", "remove", "cluster-9"]).await;
        if removed.code == 0 {
            return Some(());
        }
        assert!(removed.stderr.contains("still referenced"), "{removed:?}");
        None
    })
    .await;
    let gone = cli.run(&["cluster", "get", "cluster-9"]).await;
    assert_eq!(gone.code, 3, "{gone:?}");

    // A spoke that hangs (its stream open, nothing flowing) makes its cluster Stale, and its app
    // is shown as such, not Healthy.
    fleet.freeze_spoke("cluster-3").unwrap();
    eventually("cluster-3 Stale", Duration::from_secs(60), async || {
        let clusters = cli
            .run(&["cluster", "list", "-o", "json"])
            .await
            .ok()
            .json();
        clusters
            .as_array()?
            .iter()
            .any(|c| field(c, "/name") == "cluster-3" && field(c, "/connection") == "Stale")
            .then_some(())
    })
    .await;
    let table = cli.run(&["cluster", "list"]).await.ok();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("cluster-3") && l.contains("Stale")),
        "{}",
        table.stdout
    );
    for app in &apps_of(&cli, "cluster-3").await {
        assert_eq!(field(app, "/health"), "Stale", "{app}");
        assert_eq!(field(app, "/clusterConnection"), "Stale", "{app}");
    }
    let table = cli
        .run(&["app", "list", "--cluster", "cluster-3"])
        .await
        .ok();
    assert!(
        table.stdout.contains("Stale") && !table.stdout.contains("Healthy"),
        "{}",
        table.stdout
    );
    let wait = cli
        .run(&["app", "wait", "cluster-3.nginx", "--timeout", "2s"])
        .await;
    assert_eq!(wait.code, 6, "{wait:?}");

    fleet.thaw_spoke("cluster-3").unwrap();

    // A spoke stopped for good (its stream closed): its cluster is Disconnected, and so is every
    // app of it, never Healthy.
    fleet.stop_spoke("cluster-2").await.unwrap();
    eventually(
        "cluster-2 Disconnected",
        Duration::from_secs(60),
        async || {
            let cluster = cli
                .run(&["cluster", "get", "cluster-2", "-o", "json"])
                .await
                .ok()
                .json();
            (field(&cluster, "/connection") == "Disconnected").then_some(())
        },
    )
    .await;
    for app in &apps_of(&cli, "cluster-2").await {
        assert_eq!(field(app, "/health"), "Disconnected", "{app}");
    }

    // Contexts, and logging out: the token is gone from the file and the hub refuses it.
    let contexts = cli.run(&["context", "list"]).await.ok();
    assert!(contexts.stdout.contains("127.0.0.1"), "{}", contexts.stdout);
    let current = cli.run(&["context", "current"]).await.ok();
    assert!(!current.stdout.trim().is_empty());
    cli.run(&["logout"]).await.ok();
    let config = std::fs::read_to_string(&cli.config).unwrap();
    assert!(!config.contains("token:"), "{config}");
    let after = cli.run(&["app", "list"]).await;
    assert_eq!(after.code, 4, "{after:?}");
    fleet.shutdown().await;
}
