//! The spoke end to end, standalone (no hub): the talk's demo repository on a real git server and three emulated clusters with one spoke engine each, ending Synced and Healthy with what kustomize renders and following a git change; a terminated sync stops at its wave boundary; apps of one path with their own name prefix converge. The scenarios run on both the emulator and a real API server are in `scenarios.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use edgecd_core::Health;
use edgecd_core::SyncStatus;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness;
use edgecd_e2e::testdata;
use edgecd_render::Value;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::reconcile::{self, Engine};
use edgecd_testkit::{GitRepo, GitServer};
use kube::api::{Api, PostParams};
use tokio::sync::oneshot;

const STATE_NS: &str = "edgecd-system";
const APP_NS: &str = "gitops-kubecon-demo";

/// One emulated cluster with a running spoke engine.
struct Spoke {
    cluster: LiveCluster,
    engine: Arc<Engine>,
    _stop: oneshot::Sender<()>,
    _cache: tempfile::TempDir,
}

/// Installs the CRD and the state namespace as `edgecd-spoke run` does.
async fn install_crd(cluster: &LiveCluster) {
    edgecd_spoke::runtime::install_crd(cluster).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS)
        .await
        .unwrap();
}

async fn start_spoke(emulator: &KubeEmulator, index: usize) -> Spoke {
    let client = emulator.clusters()[index].client().await.unwrap();
    let cluster = LiveCluster::new(client);
    install_crd(&cluster).await;
    let cache = tempfile::tempdir().unwrap();
    let git_config = GitConfig {
        ls_remote_ttl: Duration::from_millis(100),
        ..GitConfig::new(cache.path())
    };
    let git = GitCache::new(git_config, CredentialStore::default()).unwrap();
    let config = harness::test_engine_config();
    let (engine, triggers) = Engine::new(cluster.clone(), git, config);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
        let _ = stopped.await;
    }));
    Spoke {
        cluster,
        engine,
        _stop: stop,
        _cache: cache,
    }
}

fn demo_app(name: &str, repo: &GitRepo, path: &str) -> Application {
    let spec = ApplicationSpec {
        project: "kubecon-demo".into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: APP_NS.into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    Application::new(name, STATE_NS, spec)
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn app_status(spoke: &Spoke, name: &str) -> Option<edgecd_core::app::ApplicationStatus> {
    let api: Api<Application> = Api::namespaced(spoke.cluster.client().clone(), STATE_NS);
    api.get(name).await.ok().and_then(|a| a.status)
}

async fn wait_synced_healthy(spoke: &Spoke, name: &str) -> edgecd_core::app::ApplicationStatus {
    wait_for(&format!("{name} Synced and Healthy"), async || {
        let status = app_status(spoke, name).await?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(status)
    })
    .await
}

/// Whether every field of `expected` is in `live` with the same value.
fn is_subset(expected: &Value, live: &Value) -> bool {
    match (expected, live) {
        (Value::Object(e), Value::Object(l)) => e
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (Value::Array(e), Value::Array(l)) => {
            e.len() == l.len() && e.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        (e, l) => e == l,
    }
}

async fn live(spoke: &Spoke, kind: &str, name: &str) -> Option<Value> {
    let (group, version) = if kind == "Deployment" {
        ("apps", "v1")
    } else {
        ("", "v1")
    };
    let key = edgecd_core::app::ResourceKey {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        namespace: APP_NS.into(),
        name: name.into(),
    };
    spoke.cluster.get(&key).await.unwrap()
}

/// One emulated cluster whose workloads become ready after 50 ms.
async fn one_cluster() -> KubeEmulator {
    KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_talks_demo_repo_on_three_clusters() {
    let emulator = KubeEmulator::start(EmulatorConfig {
        clusters: 3,
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("argocd-app-of-apps-demo").unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    repo.commit("the talk's demo").unwrap();

    let mut spokes = Vec::new();
    for i in 0..3 {
        let spoke = start_spoke(&emulator, i).await;
        let name = format!("demo-cluster{}", i + 1);
        let app = demo_app(&name, &repo, &format!("deploy/overlays/cluster{}", i + 1));
        let api: Api<Application> = Api::namespaced(spoke.cluster.client().clone(), STATE_NS);
        api.create(&PostParams::default(), &app).await.unwrap();
        spokes.push(spoke);
    }

    // Every overlay ends Synced and Healthy with what kustomize renders.
    for (i, spoke) in spokes.iter().enumerate() {
        let name = format!("demo-cluster{}", i + 1);
        let status = wait_synced_healthy(spoke, &name).await;
        assert_eq!(status.sync.revision, repo.head().unwrap());
        assert_eq!(status.history.len(), 1);
        let expected_text = std::fs::read_to_string(
            testdata().join(format!("talk-demo-expected/cluster{}.yaml", i + 1)),
        )
        .unwrap();
        let expected = edgecd_render::yaml::load_documents(&expected_text).unwrap();
        assert_eq!(expected.len(), 2);
        for doc in expected {
            let kind = doc["kind"].as_str().unwrap();
            let live_obj = live(spoke, kind, doc["metadata"]["name"].as_str().unwrap())
                .await
                .unwrap();
            assert!(
                is_subset(&doc["spec"], &live_obj["spec"]),
                "cluster{} {kind}: {doc} vs {live_obj}",
                i + 1
            );
        }
    }
    let c1 = &spokes[0];

    // A git commit changing the replica count is applied.
    let deployment =
        std::fs::read_to_string(repo.work_path().join("deploy/base/deployment.yaml")).unwrap();
    assert!(deployment.contains("replicas: 1"));
    repo.write(
        "deploy/base/deployment.yaml",
        &deployment.replace("replicas: 1", "replicas: 4"),
    )
    .unwrap();
    let new_head = repo.commit("scale to 4").unwrap();
    for spoke in &spokes {
        wait_for("replicas 4", async || {
            let d = live(spoke, "Deployment", "nginx").await?;
            (d["spec"]["replicas"] == 4).then_some(())
        })
        .await;
    }
    let status = wait_synced_healthy(c1, "demo-cluster1").await;
    assert_eq!(status.sync.revision, new_head);
    assert!(status.history.len() >= 2);
    // Healing, pruning, Degraded, broken kustomizations, history and
    // rollback: tests/scenarios.rs, on the emulator and a real API server.
}

/// A repository with two waves: wave 0 a Deployment that never becomes ready (the emulator's `stuck`
/// fault), wave 1 a ConfigMap that a finished sync would apply.
fn stuck_wave_repo(server: &GitServer) -> GitRepo {
    let repo = server.create_repo("stuck").unwrap();
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\n  annotations:\n    edgecd.io/sync-wave: \"0\"\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: stuck}\n  template:\n    metadata:\n      labels: {app: stuck, emulator.edgecd.io/fault: stuck}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    )
    .unwrap();
    repo.write(
        "app/after.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations:\n    edgecd.io/sync-wave: \"1\"\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("two waves, the first never healthy").unwrap();
    repo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_running_sync_from_the_application_stops_it_at_the_wave_boundary() {
    use edgecd_core::app::OperationPhase;
    let emulator = one_cluster().await;
    let server = GitServer::start().unwrap();
    let repo = stuck_wave_repo(&server);
    let spoke = start_spoke(&emulator, 0).await;
    let mut app = demo_app("stuck", &repo, "app");
    if let Some(policy) = app.spec.sync_policy.as_mut() {
        policy.automated = None;
    }
    let api: Api<Application> = Api::namespaced(spoke.cluster.client().clone(), STATE_NS);
    api.create(&PostParams::default(), &app).await.unwrap();
    let patch = kube::api::Patch::Merge(serde_json::json!({
        "operation": {"commandId": "s1", "sync": {"prune": true}},
    }));
    api.patch("stuck", &kube::api::PatchParams::default(), &patch)
        .await
        .unwrap();
    // The operation shows as Running while wave 0 waits for health.
    let running = wait_for("the sync to run", async || {
        let op = app_status(&spoke, "stuck").await?.operation_state?;
        (op.phase == OperationPhase::Running && spoke.engine.is_syncing("stuck")).then_some(op)
    })
    .await;
    assert_eq!(running.command_id, "s1");
    // Running is reported before wave 0 is applied: wait for its Deployment.
    wait_for("wave 0's Deployment", async || {
        live(&spoke, "Deployment", "stuck").await
    })
    .await;

    // Argo CD's way: the operation's phase set to Terminating in the status.
    let terminate = kube::api::Patch::Merge(serde_json::json!({
        "status": {"operationState": {"phase": "Terminating"}},
    }));
    api.patch_status("stuck", &kube::api::PatchParams::default(), &terminate)
        .await
        .unwrap();
    let status = wait_for("the terminated operation", async || {
        let status = app_status(&spoke, "stuck").await?;
        let op = status.operation_state.as_ref()?;
        (op.phase == OperationPhase::Failed).then_some(status)
    })
    .await;
    let op = status.operation_state.as_ref().unwrap();
    assert_eq!(op.command_id, "s1");
    assert!(
        op.message.starts_with("Operation terminated by")
            && op.message.contains("while waiting for wave 0"),
        "{}",
        op.message
    );
    assert!(!spoke.engine.is_syncing("stuck"));
    // Wave 1 was never applied; the history records the terminated sync.
    assert!(live(&spoke, "ConfigMap", "after").await.is_none());
    let entry = status.history.last().unwrap();
    assert_eq!(entry.result, OperationPhase::Failed);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.kind == "SyncError" && c.message.contains("Operation terminated")),
        "{:?}",
        status.conditions
    );
    // Nothing is left to terminate.
    assert!(!spoke.engine.terminate("stuck", "test"));
}

/// The dev fleet's generated apps (`edgecd-dev --apps-per-cluster`): many automated apps of one path,
/// each with its own kustomize `namePrefix`, in one namespace they all create. Each must own its own
/// prefixed objects; before the spoke applied `source.kustomize` they all applied the same objects,
/// took them from each other on every poll and never converged. Two apps that really do share an
/// object get Argo CD's SharedResourceWarning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_of_one_path_with_their_own_name_prefix_converge_in_one_created_namespace() {
    const APPS: usize = 8;
    const NS: &str = "generated";
    let emulator = one_cluster().await;
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("generated").unwrap();
    for (path, text) in edgecd_e2e::dev::repo::repository_files(repo.url(), &[]) {
        repo.write(&path, &text).unwrap();
    }
    repo.commit("fleet").unwrap();
    let spoke = start_spoke(&emulator, 0).await;
    let api: Api<Application> = Api::namespaced(spoke.cluster.client().clone(), STATE_NS);
    let app = |name: &str, prefix: Option<String>| {
        let mut app = demo_app(name, &repo, "deploy/generated");
        app.spec.project = "default".into();
        app.spec.destination.namespace = NS.into();
        app.spec.source.kustomize = prefix.map(|name_prefix| edgecd_core::app::KustomizeSource {
            name_prefix,
            ..Default::default()
        });
        app
    };
    for i in 1..=APPS {
        let app = app(&format!("gen-{i}"), Some(format!("gen-{i}-")));
        api.create(&PostParams::default(), &app).await.unwrap();
    }

    let key = |kind: &str, name: &str| edgecd_core::app::ResourceKey {
        group: if kind == "Deployment" { "apps" } else { "" }.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: NS.into(),
        name: name.into(),
    };
    for i in 1..=APPS {
        let name = format!("gen-{i}");
        let status = wait_synced_healthy(&spoke, &name).await;
        let mut names: Vec<String> = status
            .resources
            .iter()
            .map(|r| r.key.name.clone())
            .collect();
        names.sort();
        assert_eq!(names, [format!("gen-{i}-settings"), format!("gen-{i}-web")]);
        let web = spoke
            .cluster
            .get(&key("Deployment", &format!("gen-{i}-web")))
            .await
            .unwrap()
            .expect("the app's own Deployment");
        assert_eq!(
            edgecd_spoke::plan::tracking_app(&web),
            Some(format!("default/{name}").as_str())
        );
    }
    // Nobody applied the unprefixed objects.
    assert!(
        spoke
            .cluster
            .get(&key("Deployment", "web"))
            .await
            .unwrap()
            .is_none()
    );
    // Several more polls of every app later, nobody re-synced: one sync each, all still Synced.
    let counts: Vec<u64> = (1..=APPS)
        .map(|i| spoke.engine.reconcile_count(&format!("gen-{i}")))
        .collect();
    wait_for("three more reconciles of every app", async || {
        (1..=APPS)
            .all(|i| spoke.engine.reconcile_count(&format!("gen-{i}")) >= counts[i - 1] + 3)
            .then_some(())
    })
    .await;
    for i in 1..=APPS {
        let status = app_status(&spoke, &format!("gen-{i}")).await.unwrap();
        assert_eq!(status.sync.status, SyncStatus::Synced, "gen-{i}");
        assert_eq!(status.history.len(), 1, "gen-{i} was synced again");
        assert!(status.conditions.is_empty(), "{:?}", status.conditions);
    }

    // Two apps that render the same objects (no prefix): the one that lost them says so.
    for name in ["plain-a", "plain-b"] {
        let mut app = app(name, None);
        if let Some(policy) = app.spec.sync_policy.as_mut() {
            policy.automated = None;
        }
        api.create(&PostParams::default(), &app).await.unwrap();
    }
    let sync = |id: &str| {
        kube::api::Patch::Merge(serde_json::json!({"operation": {"commandId": id, "sync": {}}}))
    };
    let params = kube::api::PatchParams::default();
    api.patch("plain-a", &params, &sync("a1")).await.unwrap();
    wait_synced_healthy(&spoke, "plain-a").await;
    api.patch("plain-b", &params, &sync("b1")).await.unwrap();
    wait_synced_healthy(&spoke, "plain-b").await;
    let warning = wait_for("plain-a's SharedResourceWarning", async || {
        let status = app_status(&spoke, "plain-a").await?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "SharedResourceWarning")
    })
    .await;
    assert!(
        warning
            .message
            .contains("Deployment/web is also managed by application default/plain-b"),
        "{}",
        warning.message
    );
}
