//! Spoke-side ApplicationSets end to end: the real spoke runtime against the Kubernetes API emulator evaluates the edge-fleet repo's `cluster-addons` set (one app per folder under its own path) from a real git server; apps follow folders added and removed in git, a name two folders render is left as it was with a condition naming both while the rest proceeds, and a broken generator changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use edgecd_core::Health;
use edgecd_core::SyncStatus;
use edgecd_core::app::ResourceKey;
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness;
use edgecd_e2e::testdata;
use edgecd_spoke::appset::{ApplicationSet, OWNER_KIND_LABEL, OWNER_NAME_LABEL};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::runtime::Runtime;
use edgecd_testkit::GitServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

const STATE_NS: &str = "edgecd-system";
const CLUSTER: &str = "cluster-3";

fn edge_fleet_repo() -> PathBuf {
    testdata().join("edge-fleet-repo")
}

/// Polls `check` until it answers, for at most a minute.
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn app_names(apps: &Api<Application>) -> BTreeSet<String> {
    apps.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

/// The (kind, namespace, name) of every object of a YAML stream; no namespace means `default`.
fn expected_objects(text: &str, default_namespace: &str) -> BTreeSet<(String, String, String)> {
    edgecd_render::yaml::load_documents(text)
        .unwrap()
        .into_iter()
        .filter(|d| d.is_object())
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(default_namespace)
                    .to_owned(),
                d["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn key_of(kind: &str, namespace: &str, name: &str) -> ResourceKey {
    let (group, version) = match kind {
        "Deployment" | "StatefulSet" => ("apps", "v1"),
        _ => ("", "v1"),
    };
    ResourceKey {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

async fn request_sync(apps: &Api<Application>, name: &str) {
    let patch = serde_json::json!({"operation": {"initiatedBy": "e2e", "sync": {"prune": true}}});
    apps.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn wait_synced_healthy(apps: &Api<Application>, name: &str) -> Application {
    wait_for(&format!("{name} Synced and Healthy"), async || {
        let app = apps.get(name).await.ok()?;
        let status = app.status.as_ref()?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(app)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_generates_one_app_per_folder_of_its_own_path() {
    let emulator = KubeEmulator::start(EmulatorConfig {
        clusters: 1,
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("edge-fleet").unwrap();
    repo.copy_dir(&edge_fleet_repo(), "").unwrap();
    repo.commit("the edge fleet").unwrap();

    // The real spoke runtime, configured as `edgecd-spoke run --cluster-name cluster-3` would be.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfigs = emulator.write_kubeconfigs(dir.path()).unwrap();
    let config =
        harness::test_runtime_config(&kubeconfigs[0], CLUSTER, dir.path().join("cache")).unwrap();
    let runtime = Runtime::start(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(runtime.run_until(async move {
        let _ = stopped.await;
    }));

    let client = emulator.clusters()[0].client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let sets: Api<ApplicationSet> = Api::namespaced(client.clone(), STATE_NS);
    // minecraft's kustomization targets namespace `games`; the template has no CreateNamespace.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("games".into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .unwrap();

    // The fixture's set, with the test's git URL, as an edgecd ApplicationSet CR.
    let text = std::fs::read_to_string(edge_fleet_repo().join("appsets/cluster-addons.yaml"))
        .unwrap()
        .replace("https://github.com/example/repo", repo.url());
    let document = edgecd_render::yaml::load_one(&text).unwrap();
    let set = ApplicationSet::new("cluster-addons", STATE_NS, document["spec"].clone());
    sets.create(&PostParams::default(), &set).await.unwrap();

    // One app per folder under deploy/clusters/cluster-3, owned by the set.
    let three = names(&["guestbook", "minecraft", "nginx"]);
    wait_for("the three generated apps", async || {
        (app_names(&apps).await == three).then_some(())
    })
    .await;
    let owner_uid = sets.get("cluster-addons").await.unwrap().metadata.uid;
    for name in &three {
        let app = apps.get(name).await.unwrap();
        let owner = &app.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("ApplicationSet", "cluster-addons", Some(true))
        );
        assert_eq!(Some(&owner.uid), owner_uid.as_ref());
        let labels = app.metadata.labels.clone().unwrap();
        assert_eq!(labels[OWNER_KIND_LABEL], "ApplicationSet");
        assert_eq!(labels[OWNER_NAME_LABEL], "cluster-addons");
        assert_eq!(app.origin(), edgecd_core::app::AppOrigin::Autonomous);
        assert_eq!(
            app.spec.source.path,
            format!("deploy/clusters/{CLUSTER}/{name}")
        );
        assert_eq!(
            app.spec.destination.server,
            "https://kubernetes.default.svc"
        );
    }
    let status = wait_for("the set's status", async || {
        let status = sets.get("cluster-addons").await.ok()?.status?;
        (status.applications.len() == 3).then_some(status)
    })
    .await;
    let error = status
        .conditions
        .iter()
        .find(|c| c.type_ == "ErrorOccurred")
        .unwrap();
    assert_eq!(error.status, "False", "{error:?}");
    assert_eq!(status.git_commits.len(), 1);
    assert_eq!(status.git_commits[0].commit, repo.head().unwrap());

    // Synced on request, the apps deploy locally exactly what the expected renders hold.
    for name in &three {
        request_sync(&apps, name).await;
    }
    let expected_dir = testdata().join("edge-fleet-expected");
    let guestbook_text = std::fs::read_to_string(
        edge_fleet_repo().join("deploy/clusters/cluster-3/guestbook/guestbook.yaml"),
    )
    .unwrap();
    let expectations = [
        ("guestbook", guestbook_text),
        (
            "minecraft",
            std::fs::read_to_string(expected_dir.join("cluster-3-minecraft.yaml")).unwrap(),
        ),
        (
            "nginx",
            std::fs::read_to_string(expected_dir.join("cluster-3-nginx.yaml")).unwrap(),
        ),
    ];
    for (name, text) in &expectations {
        let app = wait_synced_healthy(&apps, name).await;
        let expected = expected_objects(text, "default");
        let deployed: BTreeSet<(String, String, String)> = app
            .status
            .unwrap()
            .resources
            .iter()
            .map(|r| {
                let ns = if r.key.namespace.is_empty() {
                    "default".to_owned()
                } else {
                    r.key.namespace.clone()
                };
                (r.key.kind.clone(), ns, r.key.name.clone())
            })
            .collect();
        assert_eq!(deployed, expected, "objects of {name}");
        for (kind, namespace, object) in &expected {
            let live = cluster.get(&key_of(kind, namespace, object)).await.unwrap();
            assert!(
                live.is_some(),
                "{kind} {namespace}/{object} of {name} is live"
            );
        }
    }

    // A new folder in git becomes a fourth app.
    repo.write(
        "deploy/clusters/cluster-3/redis/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: redis-config\ndata:\n  maxmemory: 64mb\n",
    )
    .unwrap();
    repo.commit("redis on cluster-3").unwrap();
    let four = names(&["guestbook", "minecraft", "nginx", "redis"]);
    wait_for("the fourth app, redis", async || {
        (app_names(&apps).await == four).then_some(())
    })
    .await;
    request_sync(&apps, "redis").await;
    wait_synced_healthy(&apps, "redis").await;

    // A folder removed from git takes its app and the app's objects with it (policy `sync`).
    repo.remove("deploy/clusters/cluster-3/guestbook").unwrap();
    repo.commit("guestbook leaves cluster-3").unwrap();
    let without_guestbook = names(&["minecraft", "nginx", "redis"]);
    wait_for("guestbook removed", async || {
        (app_names(&apps).await == without_guestbook).then_some(())
    })
    .await;
    wait_for("guestbook's Deployment deleted", async || {
        let live = cluster
            .get(&key_of("Deployment", "default", "guestbook-ui"))
            .await
            .unwrap();
        live.is_none().then_some(())
    })
    .await;

    // Two folders rendering one app name: that name is left as it was (not applied, not deleted), a
    // condition names both paths, and the rest proceeds.
    repo.write(
        "extra/nginx/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n",
    )
    .unwrap();
    repo.write(
        "extra/memcached/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: memcached\n",
    )
    .unwrap();
    repo.commit("extra folders, one named like an existing app")
        .unwrap();
    let before = apps.get("nginx").await.unwrap();
    let patch = serde_json::json!({"spec": {"generators": [
        {"git": {"repoURL": repo.url(), "revision": "HEAD",
                 "directories": [{"path": "deploy/clusters/cluster-3/*"}]}},
        {"git": {"repoURL": repo.url(), "revision": "HEAD", "directories": [{"path": "extra/*"}]}}
    ]}});
    sets.patch(
        "cluster-addons",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let twice = wait_for("the duplicate name's condition", async || {
        let status = sets.get("cluster-addons").await.ok()?.status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.status == "True" && c.message.contains("generated twice"))
    })
    .await;
    for needle in [
        "\"nginx\"",
        "deploy/clusters/cluster-3/nginx",
        "extra/nginx",
    ] {
        assert!(twice.message.contains(needle), "{needle} not in {twice:?}");
    }
    let with_memcached = names(&["memcached", "minecraft", "nginx", "redis"]);
    wait_for("memcached generated beside the duplicate", async || {
        (app_names(&apps).await == with_memcached).then_some(())
    })
    .await;
    let after = apps.get("nginx").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.spec, before.spec,
        "the duplicated app is left as it was"
    );

    // A broken generator is a condition naming the cause; no app is created or deleted.
    let patch = serde_json::json!({"spec": {"generators": [{"git": {
        "repoURL": repo.url(), "revision": "no-such-branch",
        "directories": [{"path": "deploy/clusters/cluster-3/*"}]
    }}]}});
    sets.patch(
        "cluster-addons",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let error = wait_for("the ErrorOccurred condition", async || {
        let status = sets.get("cluster-addons").await.ok()?.status?;
        status.conditions.into_iter().find(|c| {
            c.type_ == "ErrorOccurred" && c.status == "True" && c.message.contains("no-such-branch")
        })
    })
    .await;
    assert!(error.message.contains("cluster-addons"), "{error:?}");
    assert_eq!(app_names(&apps).await, with_memcached);
    let status = sets.get("cluster-addons").await.unwrap().status.unwrap();
    assert_eq!(status.applications.len(), 3, "{status:?}");

    // A set only the hub can evaluate too: a progressive sync's steps wait on apps of other clusters.
    let patch = serde_json::json!({"spec": {"strategy": {"type": "RollingSync", "rollingSync": {"steps": [{}]}}}});
    sets.patch(
        "cluster-addons",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    wait_for("the strategy refusal", async || {
        let status = sets.get("cluster-addons").await.ok()?.status?;
        status
            .conditions
            .iter()
            .any(|c| {
                c.type_ == "ErrorOccurred"
                    && c.message
                        .contains("evaluated at the hub only (its RollingSync strategy")
            })
            .then_some(())
    })
    .await;
    assert_eq!(app_names(&apps).await, with_memcached);

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
