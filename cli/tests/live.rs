//! End to end: live reads through the spoke's outbound stream (issue #25), against the dev fleet (real hub and spokes, the Kubernetes API emulator): an app's live tree, a live manifest, a resource's events and its pods' logs, tail and follow; a follow cancelled at the spoke when the client goes away; a viewer refused the logs until an admin opens them to viewers; objects outside the app, unknown containers and an unconnected cluster refused with what is wrong; a managed Secret's values masked in its live manifest and its diff; exec: off until the project names a role, a command's output and exit code, stdin, a shell in a sized terminal, refusals, the command ended at the spoke when the client goes away, every session audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cli, eventually, field};
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{Api, PostParams};

const APP: &str = "cluster-1.nginx";

fn key(kind: &str, group: &str, namespace: &str, name: &str) -> v1::ResourceKey {
    v1::ResourceKey {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_reads_go_through_the_spokes_stream() {
    let fleet = common::fleet(2).await;
    let cli = Cli::new();
    cli.login(&fleet).await;
    let emulator = fleet.emulator().unwrap();
    let cluster1 = emulator.clusters()[0].client().await.unwrap();

    // The live tree: the Deployment the app manages and the pods it owns.
    let tree = cli
        .run(&["app", "resources", APP, "-o", "json"])
        .await
        .ok()
        .json();
    let rows = tree.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| field(r, "/kind") == "Deployment" && field(r, "/name") == "nginx"),
        "{tree}"
    );
    let pod = rows
        .iter()
        .find(|r| field(r, "/kind") == "Pod")
        .map(|r| field(r, "/name").to_owned())
        .unwrap_or_else(|| panic!("no pod in {tree}"));
    let table = cli.run(&["app", "resources", APP]).await.ok();
    assert!(table.stdout.contains("deployment/nginx"), "{table:?}");

    // The live manifest, read from the cluster now: without managedFields unless asked.
    let manifest = cli
        .run(&["app", "manifest", APP, "deploy/nginx"])
        .await
        .ok();
    assert!(manifest.stdout.contains("kind: Deployment"), "{manifest:?}");
    assert!(manifest.stdout.contains("name: nginx"), "{manifest:?}");
    assert!(!manifest.stdout.contains("managedFields"), "{manifest:?}");
    let with_fields = cli
        .run(&[
            "app",
            "manifest",
            APP,
            "deployment/nginx",
            "--show-managed-fields",
        ])
        .await
        .ok();
    assert!(
        with_fields.stdout.contains("managedFields"),
        "{with_fields:?}"
    );
    let pod_manifest = cli
        .run(&["app", "manifest", APP, &format!("pod/{pod}")])
        .await
        .ok();
    assert!(
        pod_manifest.stdout.contains("kind: Pod"),
        "{pod_manifest:?}"
    );

    // Events: one recorded for the pod shows among the Deployment's (the resource's and its pods').
    let events_api: Api<KubeEvent> = Api::namespaced(cluster1.clone(), "nginx");
    let event: KubeEvent = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx-backoff", "namespace": "nginx"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "nginx",
            "uid": Api::<Pod>::namespaced(cluster1.clone(), "nginx").get(&pod).await.unwrap().metadata.uid},
        "reason": "BackOff",
        "message": "Back-off pulling image",
        "type": "Warning",
        "count": 1,
        "lastTimestamp": "2026-12-05T10:00:00Z",
    }))
    .unwrap();
    events_api
        .create(&PostParams::default(), &event)
        .await
        .unwrap();
    let events = cli
        .run(&["app", "events", APP, "deployment/nginx", "-o", "json"])
        .await
        .ok()
        .json();
    let backoff = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| field(e, "/reason") == "BackOff")
        .unwrap_or_else(|| panic!("no BackOff in {events}"));
    assert_eq!(field(backoff, "/severity"), "Warning");
    assert_eq!(field(backoff, "/object"), format!("pod/{pod}"));

    // Logs of every pod of the app's only workload, each line naming its pod; the tail of one pod.
    let logs = cli.run(&["app", "logs", APP]).await.ok();
    assert!(
        logs.stdout.lines().all(|l| l.starts_with("[pod/nginx-")),
        "{logs:?}"
    );
    assert!(logs.stdout.contains("started"), "{logs:?}");
    let tail = cli
        .run(&["app", "logs", APP, &format!("pod/{pod}"), "--tail", "1"])
        .await
        .ok();
    assert_eq!(tail.stdout.lines().count(), 1, "{tail:?}");

    // Follow: new lines keep coming; when the client goes away, the spoke stops reading.
    let store = emulator.clusters()[0].store().clone();
    let mut follow = Command::new(env!("CARGO_BIN_EXE_edgecd"))
        .args(["app", "logs", APP, &format!("pod/{pod}"), "-f"])
        .env("EDGECD_CONFIG", &cli.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let ticks = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(" tick "))
            .take(3)
            .count()
    });
    let ticks = tokio::time::timeout(Duration::from_secs(30), ticks)
        .await
        .expect("followed lines")
        .unwrap();
    assert_eq!(ticks, 3);
    assert_eq!(store.open_log_follows(), 1);
    follow.kill().unwrap();
    follow.wait().unwrap();
    eventually(
        "the follow cancelled at the spoke",
        Duration::from_secs(15),
        async || (store.open_log_follows() == 0).then_some(()),
    )
    .await;

    // Bad input is refused with what is wrong, and nothing keeps running at the spoke.
    let container = cli
        .run(&["app", "logs", APP, &format!("pod/{pod}"), "-c", "nope"])
        .await
        .code(3);
    assert!(
        container
            .stderr
            .contains("container nope is not valid for pod"),
        "{container:?}"
    );
    let missing = cli.run(&["app", "manifest", APP, "pod/nope"]).await.code(3);
    assert!(missing.stderr.contains("no pod/nope"), "{missing:?}");
    // A pod no object of the app owns, asked for through the API (the CLI would not name it).
    let stranger: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "stranger", "namespace": "nginx"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    Api::<Pod>::namespaced(cluster1.clone(), "nginx")
        .create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    let refused = fleet
        .client()
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: Some(v1::AppRef::new("default", APP)),
            resource: Some(key("Pod", "", "nginx", "stranger")),
            managed_fields: false,
        })
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("is not an object of application default/cluster-1.nginx"),
        "{refused}"
    );
    let secret = fleet
        .client()
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: Some(v1::AppRef::new("default", APP)),
            resource: Some(key("Secret", "", "kube-system", "anything")),
            managed_fields: false,
        })
        .await
        .unwrap_err();
    assert!(
        secret
            .to_string()
            .contains("is not an object of application"),
        "{secret}"
    );

    // A viewer reads manifests but not logs (the project's log role is deployer by default).
    cli.run_with_stdin(
        &[
            "user",
            "create",
            "vic",
            "--password-stdin",
            "--role",
            "default:viewer",
        ],
        "vic-password-123\n",
    )
    .await
    .ok();
    let vic = Cli::new();
    let ca_file = fleet.ca_file().to_string_lossy().into_owned();
    vic.run_with_stdin(
        &[
            "login",
            &fleet.grpc_url(),
            "--ca-file",
            &ca_file,
            "-u",
            "vic",
            "--password-stdin",
        ],
        "vic-password-123\n",
    )
    .await
    .ok();
    vic.run(&["app", "manifest", APP, "deployment/nginx"])
        .await
        .ok();
    let denied = vic.run(&["app", "logs", APP]).await.code(4);
    assert!(
        denied
            .stderr
            .contains("may not read pod logs in project default"),
        "{denied:?}"
    );
    // An admin opens the project's logs to viewers.
    let opened = cli
        .run(&["project", "set-log-role", "default", "viewer"])
        .await
        .ok();
    assert!(
        opened.stdout.contains("pod logs for viewer and above"),
        "{opened:?}"
    );
    let shown = cli.run(&["project", "get", "default"]).await.ok();
    assert!(
        shown.stdout.contains("Pod logs:      viewer and above"),
        "{shown:?}"
    );
    let read = vic
        .run(&["app", "logs", APP, &format!("pod/{pod}"), "--tail", "1"])
        .await
        .ok();
    assert_eq!(read.stdout.lines().count(), 1, "{read:?}");

    // Exec is off in a project until an admin names a role, for admins too.
    let off = cli
        .run(&[
            "app",
            "exec",
            APP,
            &format!("pod/{pod}"),
            "--",
            "echo",
            "hi",
        ])
        .await
        .code(4);
    assert!(
        off.stderr.contains("exec is off in project default"),
        "{off:?}"
    );
    cli.run(&["project", "set-exec-role", "default", "deployer"])
        .await
        .ok();
    let shown = cli.run(&["project", "get", "default"]).await.ok();
    assert!(
        shown.stdout.contains("Exec:          deployer and above"),
        "{shown:?}"
    );
    // A command, its output and exit code; a bare pod name as kubectl takes it.
    let echo = cli
        .run(&["app", "exec", APP, &pod, "--", "echo", "hello", "edge"])
        .await
        .ok();
    assert_eq!(echo.stdout, "hello edge\n", "{echo:?}");
    // The app's only workload (its first running pod); stderr apart; the command's exit code is the CLI's.
    let failed = cli
        .run(&[
            "app",
            "exec",
            APP,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .await
        .code(3);
    assert_eq!(failed.stdout, "out\n", "{failed:?}");
    assert!(failed.stderr.starts_with("err\n"), "{failed:?}");
    assert!(
        failed
            .stderr
            .contains("command terminated with exit code 3"),
        "{failed:?}"
    );
    // Stdin with -i.
    let cat = cli
        .run_with_stdin(&["app", "exec", APP, "-i", "--", "cat"], "one\ntwo\n")
        .await
        .ok();
    assert_eq!(cat.stdout, "one\ntwo\n", "{cat:?}");
    // A shell in a terminal (-it): the terminal's size reaches the container, typed lines run, `exit 5` ends it.
    let shell = cli
        .run_tty_sized(
            &["app", "exec", APP, "-it", "--", "sh"],
            "stty size\rexit 5\r",
            Some((33, 99)),
        )
        .await;
    assert_eq!(shell.code, 5, "{shell:?}");
    assert!(shell.stdout.contains("33 99"), "{shell:?}");
    assert!(shell.stdout.contains("$ exit 5"), "{shell:?}");
    // A container that does not exist, and a viewer, are refused.
    let container = cli
        .run(&["app", "exec", APP, &pod, "-c", "nope", "--", "true"])
        .await
        .code(3);
    assert!(
        container
            .stderr
            .contains("container nope is not valid for pod"),
        "{container:?}"
    );
    let viewer = vic
        .run(&["app", "exec", APP, &pod, "--", "true"])
        .await
        .code(4);
    assert!(
        viewer
            .stderr
            .contains("vic may not exec into containers in project default"),
        "{viewer:?}"
    );
    // The client going away ends the command at the spoke.
    let mut sleeping = Command::new(env!("CARGO_BIN_EXE_edgecd"))
        .args(["app", "exec", APP, &pod, "--", "sleep", "600"])
        .env("EDGECD_CONFIG", &cli.config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(
        "the exec session running",
        Duration::from_secs(30),
        async || (store.open_execs() == 1).then_some(()),
    )
    .await;
    sleeping.kill().unwrap();
    sleeping.wait().unwrap();
    eventually(
        "the exec session ended at the spoke",
        Duration::from_secs(15),
        async || (store.open_execs() == 0).then_some(()),
    )
    .await;
    // Every session is audited: who, where, when, the command, how long and how it ended.
    let audit: Vec<v1::AuditEntry> = fleet
        .client()
        .audit_log(v1::ListAuditLogRequest::default())
        .try_collect()
        .await
        .unwrap();
    let execs: Vec<&v1::AuditEntry> = audit.iter().filter(|e| e.action == "ExecPod").collect();
    let ended = execs
        .iter()
        .find(|e| e.result == "ok" && e.message.contains("`sh -c echo out; echo err >&2; exit 3`"))
        .unwrap_or_else(|| panic!("no audit entry of the ended session in {execs:#?}"));
    assert_eq!(ended.actor, "admin");
    assert!(ended.target.contains("on cluster cluster-1"), "{ended:?}");
    assert!(ended.message.contains("exit code 3"), "{ended:?}");
    assert!(
        ended.message.contains(&format!("in pod {}", "nginx-")),
        "{ended:?}"
    );
    assert!(
        execs
            .iter()
            .any(|e| e.result == "PERMISSION_DENIED" && e.actor == "vic"),
        "{execs:#?}"
    );
    assert!(
        execs
            .iter()
            .any(|e| e.result == "CANCELLED" && e.message.contains("`sleep 600`")),
        "{execs:#?}"
    );

    // A Secret the app manages: its values never leave the spoke, in the live manifest nor in a diff.
    fleet
        .repo()
        .write(
            "secret-app/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: aHVudGVyMg==\n",
        )
        .unwrap();
    fleet.repo().commit("a secret").unwrap();
    let mut args = common::app_args("secret-app", fleet.repo().url(), "cluster-1", "secrets");
    args[6] = "secret-app";
    cli.run(&args).await.ok();
    // The spoke may still have the branch's previous commit: look again until the sync finds the new one.
    eventually("secret-app synced", Duration::from_secs(120), async || {
        cli.run(&["app", "refresh", "secret-app", "--hard"])
            .await
            .ok();
        let sync = cli
            .run(&["app", "sync", "secret-app", "--timeout", "60s"])
            .await;
        (sync.code == 0).then_some(())
    })
    .await;
    let secret = cli
        .run(&["app", "manifest", "secret-app", "secret/db"])
        .await
        .ok();
    assert!(secret.stdout.contains("kind: Secret"), "{secret:?}");
    assert!(secret.stdout.contains("password: ++++++++"), "{secret:?}");
    assert!(!secret.stdout.contains("aHVudGVyMg"), "{secret:?}");
    let secrets_api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(cluster1.clone(), "secrets");
    secrets_api
        .patch(
            "db",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"data": {"password": "Y2hhbmdlZA=="}})),
        )
        .await
        .unwrap();
    cli.run(&["app", "refresh", "secret-app"]).await.ok();
    let diff = eventually(
        "the changed Secret in the diff",
        Duration::from_secs(60),
        async || {
            let diff = cli.run(&["app", "diff", "secret-app"]).await;
            diff.stdout.contains("password").then_some(diff)
        },
    )
    .await;
    assert!(
        !diff.stdout.contains("aHVudGVyMg") && !diff.stdout.contains("Y2hhbmdlZA"),
        "{diff:?}"
    );

    // A cluster whose spoke never connected answers at once, saying so.
    cli.run(&["cluster", "add", "edge-offline"]).await.ok();
    cli.run(&[
        "app",
        "create",
        "offline-web",
        "--repo",
        fleet.repo().url(),
        "--path",
        "deploy/base",
        "--dest-cluster",
        "edge-offline",
        "--dest-namespace",
        "web",
    ])
    .await
    .ok();
    let offline = fleet
        .client()
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: Some(v1::AppRef::new("default", "offline-web")),
            resource: Some(key("Deployment", "apps", "web", "nginx")),
            managed_fields: false,
        })
        .await
        .unwrap_err();
    assert!(
        offline
            .to_string()
            .contains("cluster edge-offline is Pending"),
        "{offline}"
    );
}
