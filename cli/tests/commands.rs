//! End to end against the dev fleet: the commands the API had and the CLI lacked (#20: `repo`, `user`, `token`, `project role`, `app terminate-op`, `appset get`'s generators and template), the hints where users get stuck (an unknown CA at login, a logged-out context, the spoke's install command), and the papercuts (natural order, `version -o json`, values accepted as printed, exit 3 for unknown contexts and revisions, readable history times).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Cli, count, field};

/// The first column of every table row (after the header).
fn first_column(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_commands_hints_and_papercuts() {
    let fleet = common::fleet(2).await;
    let hub = fleet.grpc_url();
    let ca_file = fleet.ca_file().to_string_lossy().into_owned();

    // A hub whose CA this machine does not trust: exit 5, and a hint naming --ca-file.
    let fresh = Cli::new();
    let untrusted = fresh
        .run_with_stdin(
            &["login", &hub, "--username", "admin", "--password-stdin"],
            fleet.admin_password(),
        )
        .await
        .code(5);
    assert!(untrusted.stderr.contains("UnknownIssuer"), "{untrusted:?}");
    assert!(
        untrusted.stderr.contains("hint:") && untrusted.stderr.contains("--ca-file"),
        "{untrusted:?}"
    );
    // No context at all: `version` prints the CLI's alone, also as JSON.
    let version = fresh.run(&["version", "-o", "json"]).await.ok().json();
    assert_eq!(
        field(&version, "/client/version"),
        env!("CARGO_PKG_VERSION")
    );
    assert!(version.get("hub").is_none(), "{version}");
    // Unknown contexts are "not found" (exit 3).
    let unknown = fresh
        .run(&["--context", "nope", "app", "list"])
        .await
        .code(3);
    assert!(
        unknown.stderr.contains("no context named \"nope\""),
        "{unknown:?}"
    );
    fresh.run(&["context", "use", "nope"]).await.code(3);

    let cli = Cli::new();
    cli.login(&fleet).await;
    let version = cli.run(&["version", "-o", "json"]).await.ok().json();
    assert!(!field(&version, "/hub/version").is_empty(), "{version}");
    assert!(!field(&version, "/hub/protocol").is_empty(), "{version}");

    // Repository credentials: added (the secret from stdin), listed without it, removed.
    let prefix = "https://git.example.com/team-a/";
    let added = cli
        .run_with_stdin(
            &[
                "repo",
                "add",
                prefix,
                "--username",
                "bot",
                "--password-stdin",
                "-p",
                "default",
            ],
            "s3cret-password\n",
        )
        .await
        .ok();
    assert!(
        added.stdout.contains(&format!(
            "repository credential for {prefix} saved (https-basic; projects: default)"
        )),
        "{added:?}"
    );
    let listed = cli.run(&["repo", "list", "-o", "json"]).await.ok();
    assert!(!listed.stdout.contains("s3cret"), "{listed:?}");
    let listed = listed.json();
    assert_eq!(field(&listed[0], "/urlPrefix"), prefix, "{listed}");
    assert_eq!(field(&listed[0], "/kind"), "https-basic", "{listed}");
    let table = cli.run(&["repo", "list"]).await.ok();
    assert!(table.stdout.contains(prefix), "{table:?}");
    cli.run(&["repo", "rm", prefix]).await.ok();
    let gone = cli.run(&["repo", "list"]).await.ok();
    assert!(!gone.stdout.contains(prefix), "{gone:?}");
    let again = cli.run(&["repo", "rm", prefix]).await.code(3);
    assert_eq!(count(&again.stderr, "not found"), 1, "{again:?}");
    cli.run(&["repo", "add", prefix]).await.code(2);

    // Users: created with a role, listed, able to log in; deleted (their session ends).
    let created = cli
        .run_with_stdin(
            &[
                "user",
                "create",
                "ann",
                "--password-stdin",
                "--role",
                "default:deployer",
            ],
            "ann-password-123\n",
        )
        .await
        .ok();
    assert!(
        created
            .stdout
            .contains("user ann created with roles default:deployer"),
        "{created:?}"
    );
    let users = cli.run(&["user", "list"]).await.ok();
    assert!(
        users
            .stdout
            .lines()
            .any(|l| l.starts_with("ann") && l.contains("default:deployer")),
        "{users:?}"
    );
    cli.run(&["user", "create", "x", "--role", "default:boss"])
        .await
        .code(2);
    let ann = Cli::new();
    ann.run_with_stdin(
        &[
            "login",
            &hub,
            "--ca-file",
            &ca_file,
            "-u",
            "ann",
            "--password-stdin",
        ],
        "ann-password-123\n",
    )
    .await
    .ok();
    let whoami = ann.run(&["whoami"]).await.ok();
    assert!(whoami.stdout.starts_with("ann"), "{whoami:?}");

    // API tokens: created for yourself (printed once, on stdout alone), listed, usable, revoked.
    let token = cli
        .run(&[
            "token",
            "create",
            "ci",
            "--role",
            "default:viewer",
            "--ttl",
            "720h",
        ])
        .await
        .ok();
    let secret = token.stdout.trim().to_owned();
    assert!(!secret.is_empty() && !secret.contains(' '), "{token:?}");
    assert!(token.stderr.contains("shown once"), "{token:?}");
    let tokens = cli.run(&["token", "list", "-o", "json"]).await.ok().json();
    let ci = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| field(t, "/name") == "ci")
        .unwrap_or_else(|| panic!("no token ci in {tokens}"))
        .clone();
    assert_eq!(ci["roles"], serde_json::json!(["default:viewer"]), "{ci}");
    let robot = Cli::new();
    robot
        .run(&[
            "login",
            &hub,
            "--ca-file",
            &ca_file,
            "--with-token",
            &secret,
        ])
        .await
        .ok();
    robot.run(&["app", "list"]).await.ok();
    // A viewer may not sync.
    robot
        .run(&["app", "sync", "cluster-1.nginx", "--async"])
        .await
        .code(4);
    let revoked = cli.run(&["token", "revoke", field(&ci, "/id")]).await.ok();
    assert!(revoked.stdout.contains("revoked"), "{revoked:?}");
    // The revoked token is refused, with a hint to log in again.
    let refused = robot.run(&["app", "list"]).await.code(4);
    assert!(
        refused.stderr.contains("hint:") && refused.stderr.contains("edgecd login"),
        "{refused:?}"
    );

    // Deleting a user asks first (no terminal: refused), then ends their session.
    cli.run(&["user", "delete", "ann"]).await.code(2);
    let deleted = cli.run(&["user", "delete", "ann", "--yes"]).await.ok();
    assert!(
        deleted.stdout.contains("user ann deleted (1 session ended"),
        "{deleted:?}"
    );
    ann.run(&["whoami"]).await.code(4);

    // Project roles: added (merged, once per member), listed, removed.
    cli.run(&[
        "project",
        "create",
        "team-r",
        "--source-repo",
        "*",
        "--dest",
        "*:*",
    ])
    .await
    .ok();
    let added = cli
        .run(&[
            "project", "role", "add", "team-r", "deployer", "--user", "bob", "--group", "ops",
        ])
        .await
        .ok();
    assert!(added.stdout.contains("team-r updated"), "{added:?}");
    let same = cli
        .run(&[
            "project", "role", "add", "team-r", "Deployer", "--user", "bob",
        ])
        .await
        .ok();
    assert!(same.stdout.contains("team-r unchanged"), "{same:?}");
    cli.run(&["project", "role", "add", "team-r", "viewer", "-u", "carol"])
        .await
        .ok();
    let roles = cli.run(&["project", "role", "list", "team-r"]).await.ok();
    assert!(
        roles
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["deployer", "bob", "ops"]),
        "{roles:?}"
    );
    cli.run(&[
        "project", "role", "remove", "team-r", "deployer", "--user", "bob",
    ])
    .await
    .ok();
    cli.run(&["project", "role", "remove", "team-r", "viewer"])
        .await
        .ok();
    let project = cli.run(&["project", "get", "team-r"]).await.ok();
    assert!(
        project.stdout.contains("Role:          deployer group:ops")
            && !project.stdout.contains("carol")
            && !project.stdout.contains("bob"),
        "{project:?}"
    );
    cli.run(&["project", "role", "remove", "team-r", "viewer"])
        .await
        .code(3);

    // terminate-op queues the command for the app's spoke.
    let terminated = cli
        .run(&["app", "terminate-op", "cluster-1.nginx"])
        .await
        .ok();
    assert!(
        terminated.stdout.contains(
            "termination of default/cluster-1.nginx's running operation queued (command "
        ),
        "{terminated:?}"
    );
    cli.run(&["app", "terminate-op", "nope"]).await.code(3);

    // `appset get` shows the generators and the template as applied.
    let set = cli.run(&["appset", "get", "nginx"]).await.ok();
    for text in [
        "Generators:  1",
        "- clusters: {}",
        "Template:",
        "name: \"{{name}}.nginx\"",
        "path: deploy/overlays/{{name}}",
        "default/cluster-1.nginx, default/cluster-2.nginx",
    ] {
        assert!(set.stdout.contains(text), "{text:?} in {}", set.stdout);
    }
    let json = cli
        .run(&["appset", "get", "nginx", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(json["generators"][0]["clusters"].is_object(), "{json}");
    assert_eq!(
        field(&json, "/template/metadata/name"),
        "{{name}}.nginx",
        "{json}"
    );

    // `cluster add` prints the spoke's install command with the address this CLI reaches the hub
    // at, over https; the cluster list is in natural order (cluster-9 before cluster-10).
    let added = cli.run(&["cluster", "add", "cluster-10"]).await.ok();
    let address = format!("https://{}", fleet.grpc_addr());
    assert!(
        added
            .stdout
            .contains("helm install edgecd-spoke charts/edgecd-spoke")
            && added
                .stdout
                .contains(&format!("--set hub.address={address}"))
            && !added.stdout.contains("HUB_ADDRESS"),
        "{added:?}"
    );
    assert!(added.stderr.contains("loopback"), "{added:?}");
    cli.run(&["cluster", "add", "cluster-9"]).await.ok();
    // `cluster set` changes labels and the API server URL (what `{{server}}` matches).
    let set = cli
        .run(&[
            "cluster",
            "set",
            "cluster-9",
            "-l",
            "region=ap",
            "--server-url",
            "https://k8s.example.com:6443",
        ])
        .await
        .ok();
    assert!(set.stdout.contains("cluster cluster-9 updated"), "{set:?}");
    let got = cli
        .run(&["cluster", "get", "cluster-9", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(field(&got, "/labels/region"), "ap", "{got}");
    assert_eq!(
        field(&got, "/serverUrl"),
        "https://k8s.example.com:6443",
        "{got}"
    );
    let same = cli
        .run(&["cluster", "set", "cluster-9", "-l", "region=ap"])
        .await
        .ok();
    assert!(
        same.stdout.contains("cluster cluster-9 unchanged"),
        "{same:?}"
    );
    cli.run(&["cluster", "set", "cluster-9", "--remove-label", "region"])
        .await
        .ok();
    let got = cli
        .run(&["cluster", "get", "cluster-9", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(got["labels"].get("region").is_none(), "{got}");
    cli.run(&["cluster", "set", "cluster-9", "--remove-label", "region"])
        .await
        .code(3);
    cli.run(&["cluster", "set", "cluster-9"]).await.code(2);
    let clusters = cli.run(&["cluster", "list"]).await.ok();
    assert_eq!(
        first_column(&clusters.stdout),
        ["cluster-1", "cluster-2", "cluster-9", "cluster-10"],
        "{clusters:?}"
    );
    // Each spoke's release and where it stands against the hub's (the version-skew policy); a cluster whose
    // spoke never connected has none yet.
    let version = env!("CARGO_PKG_VERSION");
    let described = cli.run(&["cluster", "get", "cluster-1"]).await.ok();
    assert!(
        described
            .stdout
            .contains(&format!("{version} (same release as the hub)")),
        "{described:?}"
    );
    let got = cli
        .run(&["cluster", "get", "cluster-1", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(field(&got, "/spokeVersion"), version, "{got}");
    assert_eq!(
        field(&got, "/versionSkew"),
        "same release as the hub",
        "{got}"
    );
    let never = cli
        .run(&["cluster", "get", "cluster-9", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        field(&never, "/versionSkew"),
        "the spoke has not reported its version yet",
        "{never}"
    );
    let wide = cli.run(&["cluster", "list", "-o", "wide"]).await.ok();
    assert!(
        wide.stdout.contains(" SPOKE ") && wide.stdout.contains(version),
        "{wide:?}"
    );
    // Apps too: gen-2 before gen-10.
    let repo = fleet.repo().url().to_owned();
    for name in ["gen-10", "gen-2"] {
        let mut args = common::app_args(name, &repo, "cluster-1", name);
        args.push("--upsert");
        let created = cli.run(&args).await.ok();
        assert!(created.stdout.contains("created"), "{created:?}");
    }
    let apps = cli.run(&["app", "list", "--search", "gen-"]).await.ok();
    let names: Vec<String> = apps
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    assert_eq!(names, ["gen-2", "gen-10"], "{apps:?}");

    // Sync and health values are accepted as the tables print them, in any case.
    for args in [
        &["app", "list", "--health", "Healthy"][..],
        &["app", "list", "--health", "HEALTHY"],
        &["app", "list", "--sync", "OutOfSync"],
        &["app", "list", "--sync", "out-of-sync"],
        &["app", "list", "--sync", "Synced", "--health", "healthy"],
    ] {
        cli.run(args).await.ok();
    }
    let healthy = cli
        .run(&["app", "list", "--health", "Healthy", "-o", "json"])
        .await
        .ok()
        .json();
    assert!(
        healthy
            .as_array()
            .unwrap()
            .iter()
            .any(|a| field(a, "/name") == "cluster-1.nginx"),
        "{healthy}"
    );
    cli.run(&["app", "list", "--health", "Fine"]).await.code(2);

    // History times are readable: RFC 3339 to the second, and an age.
    let history = cli.run(&["app", "history", "cluster-1.nginx"]).await.ok();
    assert!(history.stdout.starts_with("ID "), "{history:?}");
    assert!(history.stdout.contains(" AGE "), "{history:?}");
    let row = history.stdout.lines().nth(1).unwrap_or_default().to_owned();
    let deployed = row.split_whitespace().nth(3).unwrap_or_default().to_owned();
    assert!(
        deployed.len() == 20 && deployed.ends_with('Z') && !deployed.contains('.'),
        "{deployed:?} in {row:?}"
    );

    // One trace per action: the CLI prints its trace id, and the history entry of the sync it started names
    // the same trace (carried in the command's W3C traceparent through the hub's outbox, the stream and the
    // Application's operation; nothing exports here, so the ids are passed on unchanged).
    let sync = cli
        .run(&["app", "sync", "cluster-1.nginx", "--timeout", "90s"])
        .await
        .ok();
    let printed = sync
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("trace id: "))
        .unwrap_or_else(|| panic!("no trace id printed: {sync:?}"))
        .trim()
        .to_owned();
    assert_eq!(printed.len(), 32, "{sync:?}");
    let history = cli
        .run(&["app", "history", "cluster-1.nginx", "-o", "json"])
        .await
        .ok()
        .json();
    let traced: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h.get("traceId").and_then(serde_json::Value::as_str))
        .collect();
    assert!(
        traced.contains(&printed.as_str()),
        "{printed} not in {history}"
    );
    // A second invocation is a trace of its own.
    let list = cli.run(&["app", "list"]).await.ok();
    assert!(
        list.stderr.contains("trace id: ") && !list.stderr.contains(&printed),
        "{list:?}"
    );

    // An unknown revision is "not found" (exit 3): a sync to it, and the manifests of it.
    let sync = cli
        .run(&[
            "app",
            "sync",
            "cluster-1.nginx",
            "--revision",
            "no-such-branch",
            "--timeout",
            "90s",
        ])
        .await
        .code(3);
    assert!(sync.stderr.contains("no-such-branch"), "{sync:?}");
    let manifests = cli
        .run(&[
            "app",
            "manifests",
            "cluster-1.nginx",
            "--revision",
            "no-such-branch",
        ])
        .await
        .code(3);
    assert!(manifests.stderr.contains("no-such-branch"), "{manifests:?}");

    // After logging out, a command says how to log in again.
    cli.run(&["logout"]).await.ok();
    let after = cli.run(&["app", "list"]).await.code(4);
    assert!(
        after
            .stderr
            .contains(&format!("hint: you are not logged in to {hub}")),
        "{after:?}"
    );
    assert!(
        after.stderr.contains(&format!("`edgecd login {hub}`")),
        "{after:?}"
    );
    fleet.shutdown().await;
}
