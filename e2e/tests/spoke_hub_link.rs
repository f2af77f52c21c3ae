//! The spoke's side of the hub link end to end (real gRPC on TCP, the hub on SQLite, the Kubernetes API emulator, a real git server): a terminate command stops a running sync at its wave boundary, resource trees and events reach the hub's store, a deployment made while a partition cut the spoke off reaches the hub's record once it heals, twenty log follows beside the link's own reports and live sessions ended by their limits, an exec session carrying a megabyte both ways within credit (and refused by a spoke whose `--exec` is off), and the spoke enforces the project policies the hub sends — also after a restart without the hub.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, OperationPhase, ResourceKey,
    SyncPolicy,
};
use edgecd_core::project::{GroupKind, ProjectDestination, ProjectSpec};
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::testdata;
use edgecd_hub::link::live::{LiveEvent, LiveRequest};
use edgecd_hub::link::{
    CommandPayload, DESIRED_CHANNEL, LinkConfig, Registry, SpokeLink, command_payload_kind,
};
use edgecd_hub::store::{
    AppRecord, CommandOutcome, DeploymentFilter, EventFilter, NewApp, NewCluster, NewCommand,
    SqliteStore, Store,
};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::{GitRepo, GitServer};
use kube::api::{Api, Patch, PatchParams};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

const STATE_NS: &str = "edgecd-system";
const CLUSTER: &str = "cluster-1";

/// A hub link on loopback, with the registry of the streams it holds (to open live sessions on them).
async fn start_hub_with_registry(store: Arc<dyn Store>) -> (SocketAddr, Arc<Registry>) {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, store);
    let registry = Arc::clone(link.registry());
    link.spawn_router();
    link.spawn_watch();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, registry)
}

/// A spoke engine on the emulated cluster, with a hub link when `hub` is given.
struct Spoke {
    cluster: LiveCluster,
    engine: Arc<Engine>,
    _engine_stop: oneshot::Sender<()>,
    _link_stop: Option<oneshot::Sender<()>>,
    _cache: tempfile::TempDir,
}

impl Spoke {
    async fn start(emulator: &KubeEmulator, hub: Option<SocketAddr>) -> Self {
        Self::start_with_exec(emulator, hub, true).await
    }

    /// A spoke whose `--exec` is `exec`.
    async fn start_with_exec(emulator: &KubeEmulator, hub: Option<SocketAddr>, exec: bool) -> Self {
        let cluster = LiveCluster::new(emulator.client().await.unwrap());
        edgecd_spoke::runtime::install_crd(&cluster).await.unwrap();
        edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS)
            .await
            .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let git_config = GitConfig {
            ls_remote_ttl: Duration::from_millis(100),
            ..GitConfig::new(cache.path())
        };
        let git = GitCache::new(git_config, CredentialStore::default()).unwrap();
        let config = EngineConfig {
            namespace: STATE_NS.into(),
            cluster_name: CLUSTER.into(),
            poll_interval: Duration::from_secs(1),
            progress_interval: Duration::from_millis(200),
            sync: SyncOptions {
                wave_timeout: Duration::from_secs(60),
                poll_interval: Duration::from_millis(50),
                ..SyncOptions::default()
            },
            ..EngineConfig::default()
        };
        let (engine, triggers) = Engine::new(cluster.clone(), git, config);
        let (engine_stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
            let _ = stopped.await;
        }));
        let link_stop = hub.map(|hub| {
            let config = HubLinkConfig {
                exec,
                ..HubLinkConfig::new(format!("http://{hub}"), CLUSTER, STATE_NS)
            };
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(link::run(config, Arc::clone(&engine), async move {
                let _ = stopped.await;
            }));
            stop
        });
        Self {
            cluster,
            engine,
            _engine_stop: engine_stop,
            _link_stop: link_stop,
            _cache: cache,
        }
    }

    fn apps(&self) -> Api<Application> {
        Api::namespaced(self.cluster.client().clone(), STATE_NS)
    }

    async fn exists(&self, group: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let key = ResourceKey {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        self.cluster.get(&key).await.unwrap().is_some()
    }
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

async fn hub_with_cluster() -> (tempfile::TempDir, Arc<dyn Store>, SocketAddr) {
    let (dir, store, hub, _) = hub_with_cluster_and_registry().await;
    (dir, store, hub)
}

/// A hub on SQLite with cluster-1 registered, and the registry of its streams.
async fn hub_with_cluster_and_registry()
-> (tempfile::TempDir, Arc<dyn Store>, SocketAddr, Arc<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    store
        .create_cluster(&NewCluster {
            name: CLUSTER.into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    let (hub, registry) = start_hub_with_registry(Arc::clone(&store)).await;
    (dir, store, hub, registry)
}

/// The talk's repository on a git server, a spoke linked to `hub`, and its app `default/demo` (automated)
/// Synced and Healthy at the hub.
async fn talk_demo_synced(
    store: &dyn Store,
    emulator: &KubeEmulator,
    hub: SocketAddr,
) -> (GitServer, GitRepo, Spoke) {
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("demo").unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    repo.commit("demo").unwrap();
    let spoke = Spoke::start(emulator, Some(hub)).await;
    create_app(
        store,
        "default",
        &repo,
        "deploy/overlays/cluster1",
        "demo",
        true,
    )
    .await;
    wait_for("demo Synced and Healthy at the hub", async || {
        let status = app(store, "default").await.status?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(())
    })
    .await;
    (git, repo, spoke)
}

async fn emulator() -> KubeEmulator {
    KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap()
}

/// Creates an app at the hub straight in its store (no API checks) and tells the link.
async fn create_app(
    store: &dyn Store,
    project: &str,
    repo: &GitRepo,
    path: &str,
    namespace: &str,
    automated: bool,
) {
    let spec = ApplicationSpec {
        project: project.into(),
        source: ApplicationSource {
            repo_url: repo.url().into(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            cluster: CLUSTER.into(),
            namespace: namespace.into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: automated.then_some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    store
        .create_app(&NewApp {
            project: project.into(),
            name: "demo".into(),
            spec,
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    store.notify(DESIRED_CHANNEL, CLUSTER).await.unwrap();
}

async fn app(store: &dyn Store, project: &str) -> AppRecord {
    store.get_app(project, "demo").await.unwrap()
}

async fn enqueue(store: &dyn Store, project: &str, payload: CommandPayload) -> String {
    let command = NewCommand {
        id: None,
        project: project.into(),
        app: "demo".into(),
        cluster: CLUSTER.into(),
        kind: command_payload_kind(&payload).into(),
        payload: serde_json::to_value(&payload).unwrap(),
        issued_by: "alice".into(),
        deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
        trace: None,
    };
    store.enqueue_command(&command).await.unwrap().id
}

async fn wait_command(store: &dyn Store, id: &str, want: CommandOutcome) -> serde_json::Value {
    wait_for(&format!("command {id} {want:?}"), async || {
        let record = store.get_command(id).await.ok()?;
        (record.outcome == want)
            .then(|| serde_json::json!({"message": record.message, "result": record.result}))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminate_command_from_the_hub_stops_a_running_sync_at_its_wave_boundary() {
    let (_dir, store, hub) = hub_with_cluster().await;
    let emulator = emulator().await;
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("stuck").unwrap();
    // Wave 0 never becomes healthy (the emulator's `stuck` fault); wave 1 must never be applied.
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\n  annotations:\n    argocd.argoproj.io/sync-wave: \"0\"\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: stuck}\n  template:\n    metadata:\n      labels: {app: stuck, emulator.edgecd.io/fault: stuck}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
    )
    .unwrap();
    repo.write(
        "app/after.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations:\n    argocd.argoproj.io/sync-wave: \"1\"\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("two waves").unwrap();
    let spoke = Spoke::start(&emulator, Some(hub)).await;
    create_app(store.as_ref(), "default", &repo, "app", "stuck", false).await;
    wait_for("the app at the spoke", async || {
        spoke.apps().get_opt("demo").await.ok().flatten()
    })
    .await;

    let sync = enqueue(
        store.as_ref(),
        "default",
        CommandPayload::Sync {
            revision: String::new(),
            prune: true,
            dry_run: false,
            force: false,
            resources: vec![],
            apply_out_of_sync_only: false,
        },
    )
    .await;
    wait_command(store.as_ref(), &sync, CommandOutcome::Running).await;
    wait_for("wave 0 applied and waited on", async || {
        (spoke.engine.is_syncing("demo")
            && spoke.exists("apps", "Deployment", "stuck", "stuck").await)
            .then_some(())
    })
    .await;

    let terminate = enqueue(store.as_ref(), "default", CommandPayload::Terminate).await;
    let done = wait_command(store.as_ref(), &terminate, CommandOutcome::Succeeded).await;
    let message = done["message"].as_str().unwrap();
    assert!(
        message.starts_with("Operation terminated by alice while waiting for wave 0"),
        "{message}"
    );
    assert_eq!(done["result"]["operation"]["phase"], "Failed");
    // The sync command itself ends Failed with the same message.
    let synced = wait_command(store.as_ref(), &sync, CommandOutcome::Failed).await;
    assert!(
        synced["message"]
            .as_str()
            .unwrap()
            .starts_with("Operation terminated")
    );
    assert!(!spoke.engine.is_syncing("demo"));
    assert!(!spoke.exists("", "ConfigMap", "stuck", "after").await);
    let op = spoke
        .apps()
        .get("demo")
        .await
        .unwrap()
        .status
        .unwrap()
        .operation_state
        .unwrap();
    assert_eq!(op.phase, OperationPhase::Failed);
    assert_eq!(op.message, message);

    // Nothing runs any more: a second terminate fails with a clear message.
    let again = enqueue(store.as_ref(), "default", CommandPayload::Terminate).await;
    let failed = wait_command(store.as_ref(), &again, CommandOutcome::Failed).await;
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("no operation is running"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_trees_and_events_reach_the_hub_store() {
    let (_dir, store, hub) = hub_with_cluster().await;
    let emulator = emulator().await;
    let _demo = talk_demo_synced(store.as_ref(), &emulator, hub).await;

    // The tree: the Deployment, its ReplicaSet (parent: the Deployment) and its Pod (parent: the ReplicaSet).
    let tree = wait_for("a tree with the Deployment's Pod", async || {
        let tree = store.get_resource_tree("default", "demo").await.ok()??;
        let nodes = tree["nodes"].as_array()?.clone();
        nodes
            .iter()
            .any(|n| n["key"]["kind"] == "Pod")
            .then_some(nodes)
    })
    .await;
    let find = |kind: &str| {
        tree.iter()
            .find(|n| n["key"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {tree:?}"))
    };
    let deployment = find("Deployment");
    let replica_set = find("ReplicaSet");
    let pod = find("Pod");
    assert!(!deployment["uid"].as_str().unwrap().is_empty());
    assert_eq!(replica_set["parentUids"][0], deployment["uid"]);
    assert_eq!(pod["parentUids"][0], replica_set["uid"]);
    assert_eq!(deployment["health"], "Healthy");
    assert_eq!(deployment["info"]["replicas"], "1/1", "{deployment}");
    assert!(tree.iter().any(|n| n["key"]["kind"] == "Service"));

    // Events: the automated sync and the health changes.
    let events = wait_for("sync and health events", async || {
        let filter = EventFilter {
            cluster: Some(CLUSTER.into()),
            app: Some(("default".into(), "demo".into())),
        };
        let page = store.list_events(&filter, 100, None).await.ok()?;
        let reasons: Vec<String> = page.items.iter().map(|e| e.reason.clone()).collect();
        (reasons.iter().any(|r| r == "SyncSucceeded")
            && reasons.iter().any(|r| r == "HealthChanged"))
        .then_some(page.items)
    })
    .await;
    let succeeded = events.iter().find(|e| e.reason == "SyncSucceeded").unwrap();
    assert!(
        succeeded.message.contains("successfully synced"),
        "{}",
        succeeded.message
    );
    assert_eq!(succeeded.app, "demo");

    // Kubernetes events of the app's objects (here its Pod) reach the hub beside edgecd's own, named by
    // the app and the object; an event about an object of no app does not.
    let client = emulator.client().await.unwrap();
    let namespace = pod["key"]["namespace"].as_str().unwrap().to_owned();
    let events_api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, &namespace);
    for (name, uid, object, reason) in [
        (
            "backoff",
            pod["uid"].as_str().unwrap(),
            pod["key"]["name"].as_str().unwrap(),
            "BackOff",
        ),
        ("stranger", "no-such-uid", "stranger", "Stranger"),
    ] {
        let event: k8s_openapi::api::core::v1::Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": object, "namespace": namespace, "uid": uid},
            "reason": reason,
            "message": "Back-off restarting failed container nginx",
            "type": "Warning",
            "count": 2,
            "lastTimestamp": "2026-12-04T10:00:00Z",
        }))
        .unwrap();
        events_api
            .create(&Default::default(), &event)
            .await
            .unwrap();
    }
    let kube_event = wait_for("the Pod's Kubernetes event at the hub", async || {
        let filter = EventFilter {
            cluster: Some(CLUSTER.into()),
            app: Some(("default".into(), "demo".into())),
        };
        let page = store.list_events(&filter, 100, None).await.ok()?;
        page.items.into_iter().find(|e| e.reason == "BackOff")
    })
    .await;
    assert_eq!(
        kube_event.severity,
        edgecd_hub::store::EventSeverity::Warning
    );
    assert!(
        kube_event.resource.starts_with("Pod "),
        "{}",
        kube_event.resource
    );
    assert_eq!(
        kube_event.message,
        "Back-off restarting failed container nginx (x2)"
    );
    let all = store
        .list_events(
            &EventFilter {
                cluster: Some(CLUSTER.into()),
                app: None,
            },
            500,
            None,
        )
        .await
        .unwrap();
    assert!(
        all.items.iter().all(|e| e.reason != "Stranger"),
        "an event of no app's object was forwarded"
    );
}

/// The deployments of `default/demo` in the hub's record, oldest first.
async fn deployments(store: &dyn Store) -> Vec<edgecd_core::deployment::Deployment> {
    let filter = DeploymentFilter {
        app: Some("demo".into()),
        ..DeploymentFilter::default()
    };
    let mut found = store
        .list_deployments(&filter, 100, None)
        .await
        .unwrap()
        .items;
    found.reverse();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_made_while_the_hub_is_unreachable_reaches_its_record_once() {
    let (_dir, store, hub) = hub_with_cluster().await;
    // The spoke reaches the hub through a relay that can partition them.
    let relay = edgecd_dev::relay::Relay::start(hub).await.unwrap();
    let emulator = emulator().await;
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("demo").unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    let first_commit = repo.commit("demo").unwrap();
    let _spoke = Spoke::start(&emulator, Some(relay.addr())).await;
    create_app(
        store.as_ref(),
        "default",
        &repo,
        "deploy/overlays/cluster1",
        "demo",
        true,
    )
    .await;
    let first = wait_for("the automated sync in the hub's record", async || {
        deployments(store.as_ref()).await.pop()
    })
    .await;
    assert_eq!(first.cluster, CLUSTER);
    assert_eq!(first.to_revision, first_commit);
    assert_eq!(first.from_revision, "", "the app's first deployment");
    assert_eq!(first.result, OperationPhase::Succeeded);
    assert_eq!(first.initiated_by, edgecd_core::deployment::AUTOMATED);
    assert!(first.automated() && first.rollback_of.is_none());
    assert!(first.finished_at >= first.started_at);

    // Partitioned: a new commit is deployed by automated sync while no byte reaches the hub.
    relay.set_frozen(true);
    repo.write(
        "deploy/overlays/cluster1/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
    )
    .unwrap();
    repo.write(
        "deploy/overlays/cluster1/kustomization.yaml",
        "resources:\n- ../../base\n- extra.yaml\npatchesStrategicMerge:\n- service.yaml\n",
    )
    .unwrap();
    let second_commit = repo.commit("an extra ConfigMap").unwrap();
    let spoke_apps = _spoke.apps();
    wait_for("the new commit deployed at the edge", async || {
        let app = spoke_apps.get("demo").await.ok()?;
        let history = app.status?.history;
        history
            .iter()
            .any(|h| h.revision == second_commit && h.result == OperationPhase::Succeeded)
            .then_some(())
    })
    .await;
    assert_eq!(
        deployments(store.as_ref()).await.len(),
        1,
        "nothing crossed the partition"
    );

    // Healed: the deployment made meanwhile arrives, once, naming the revision it replaced.
    relay.set_frozen(false);
    let record = wait_for(
        "the partitioned deployment in the hub's record",
        async || {
            let found = deployments(store.as_ref()).await;
            (found.len() >= 2).then_some(found)
        },
    )
    .await;
    assert_eq!(record.len(), 2, "{record:?}");
    let second = &record[1];
    assert_eq!(second.from_revision, first_commit);
    assert_eq!(second.to_revision, second_commit);
    assert_eq!(second.history_id, first.history_id + 1);
    assert_eq!(second.result, OperationPhase::Succeeded);
    // Later reports (a refresh rewrites the status) add nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deployments(store.as_ref()).await.len(), 2);
}

/// Median and largest of `samples`, in milliseconds.
fn spread(samples: &mut [Duration]) -> (u128, u128) {
    samples.sort();
    let median = samples[samples.len() / 2].as_millis();
    let max = samples.last().map_or(0, Duration::as_millis);
    (median, max)
}

/// Round trips of `n` refresh commands: hub outbox → stream → spoke → reconcile → result reported → hub store.
async fn refresh_round_trips(store: &dyn Store, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = std::time::Instant::now();
        let id = enqueue(store, "default", CommandPayload::Refresh { hard: false }).await;
        wait_command(store, &id, CommandOutcome::Succeeded).await;
        samples.push(started.elapsed());
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_log_follows_on_one_spoke_leave_its_reports_flowing() {
    let (_dir, store, hub, registry) = hub_with_cluster_and_registry().await;
    // Chatty pods: every followed log gets 20 lines each 10 ms (about 200 KB/s per follow).
    let emulator = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        log_follow_interval: Duration::from_millis(10),
        log_follow_lines: 20,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let (_git, _repo, spoke) = talk_demo_synced(store.as_ref(), &emulator, hub).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(spoke.cluster.client().clone(), "demo");
    let pod = pods.list(&Default::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();

    let quiet = refresh_round_trips(store.as_ref(), 10).await;

    // A follow of the pod's log, within these limits.
    let follow = |max_bytes: u64, max_duration: Duration| LiveRequest {
        app: edgecd_proto::v1::AppRef {
            project: "default".into(),
            name: "demo".into(),
        },
        request: edgecd_proto::v1::live_open::Request::Logs(edgecd_proto::v1::LiveLogsRequest {
            resource: Some(edgecd_proto::v1::ResourceKey {
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
                namespace: "demo".into(),
                name: pod.clone(),
            }),
            follow: true,
            ..Default::default()
        }),
        max_bytes,
        max_duration,
    };
    // Twenty follows of the pod, each read as fast as it comes.
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..20 {
        let request = follow(1 << 32, Duration::from_secs(600));
        let mut stream = registry.open_live(CLUSTER, request).unwrap();
        let bytes = Arc::clone(&bytes);
        readers.push(tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                match event {
                    LiveEvent::Chunk(chunk) => {
                        bytes.fetch_add(
                            chunk.data.len() as u64,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    }
                    LiveEvent::End(end) => panic!("a follow ended: {end:?}"),
                    LiveEvent::InputCredit(_) => {}
                }
            }
        }));
    }
    let store_of_cluster = emulator.cluster().store().clone();
    wait_for("twenty follows open at the API server", async || {
        (store_of_cluster.open_log_follows() == 20).then_some(())
    })
    .await;
    let before = bytes.load(std::sync::atomic::Ordering::Relaxed);
    let started = std::time::Instant::now();
    let loaded = refresh_round_trips(store.as_ref(), 10).await;
    let rate = (bytes.load(std::sync::atomic::Ordering::Relaxed) - before) as f64
        / started.elapsed().as_secs_f64();
    assert!(rate > 0.0, "no log bytes flowed during the measurement");

    // The readers go away: every follow is closed at the API server.
    for reader in &readers {
        reader.abort();
    }
    wait_for("the follows cancelled at the spoke", async || {
        (store_of_cluster.open_log_follows() == 0).then_some(())
    })
    .await;
    // A session past its limits ends with what ran out, and leaves nothing reading at the spoke.
    for (request, ran_out) in [
        (follow(1 << 32, Duration::from_secs(1)), "time limit (1s)"),
        (
            follow(20_000, Duration::from_secs(600)),
            "limit of 20000 bytes",
        ),
    ] {
        let mut stream = registry.open_live(CLUSTER, request).unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match stream.next().await {
                    Some(LiveEvent::Chunk(_) | LiveEvent::InputCredit(_)) => {}
                    Some(LiveEvent::End(end)) => return end,
                    None => panic!("the stream ended"),
                }
            }
        })
        .await
        .expect("the session ended");
        assert_eq!(
            end.code,
            edgecd_proto::v1::LiveEndCode::Limit as i32,
            "{end:?}"
        );
        assert!(end.message.contains(ran_out), "{end:?}");
    }
    wait_for("the limited follows closed at the spoke", async || {
        (store_of_cluster.open_log_follows() == 0).then_some(())
    })
    .await;
    let (quiet_median, quiet_max) = spread(&mut quiet.clone());
    let (loaded_median, loaded_max) = spread(&mut loaded.clone());
    // Figures for docs/benchmarks.md (measured, not asserted).
    println!(
        "live-follows: refresh round trip quiet median {quiet_median} ms max {quiet_max} ms; \
         with 20 follows median {loaded_median} ms max {loaded_max} ms; logs {:.0} KB/s through the stream",
        rate / 1000.0
    );
}

/// An exec session of `default/demo`'s Deployment: `command`, with stdin.
fn exec_request(command: &[&str]) -> LiveRequest {
    LiveRequest {
        app: edgecd_proto::v1::AppRef {
            project: "default".into(),
            name: "demo".into(),
        },
        request: edgecd_proto::v1::live_open::Request::Exec(edgecd_proto::v1::LiveExecRequest {
            resource: Some(edgecd_proto::v1::ResourceKey {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                namespace: "demo".into(),
                name: "nginx".into(),
            }),
            command: command.iter().map(|c| (*c).to_owned()).collect(),
            stdin: true,
            ..Default::default()
        }),
        max_bytes: 64 << 20,
        max_duration: Duration::from_secs(120),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_carries_a_megabyte_both_ways_within_credit_and_a_spoke_can_refuse_it() {
    let (_dir, store, hub, registry) = hub_with_cluster_and_registry().await;
    let emulator = emulator().await;
    let (_git, _repo, spoke) = talk_demo_synced(store.as_ref(), &emulator, hub).await;
    use edgecd_proto::v1::live_input::Input;

    // `cat` of a megabyte: the hub sends stdin only as the spoke's input credit allows, the output comes back
    // within the hub's credit, and the session ends with the command's exit code.
    let mut session = registry.open_live(CLUSTER, exec_request(&["cat"])).unwrap();
    let sent: Vec<u8> = (0..1_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut received = Vec::new();
    let mut outstanding = 0usize;
    let mut pieces = sent.chunks(32 * 1024);
    let mut closed = false;
    let mut most_outstanding = 0;
    let mut started = None;
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            while outstanding < edgecd_hub::link::live::INPUT_WINDOW && !closed {
                let input = match pieces.next() {
                    Some(piece) => Input::Stdin(piece.to_vec()),
                    None => {
                        closed = true;
                        Input::StdinClosed(true)
                    }
                };
                outstanding += edgecd_hub::link::live::input_cost(&input);
                most_outstanding = most_outstanding.max(outstanding);
                assert!(session.input(input).await, "the stream ended");
            }
            match session.next().await {
                Some(LiveEvent::Chunk(chunk)) if chunk.channel == 0 => {
                    started = Some((chunk.pod, chunk.container));
                }
                Some(LiveEvent::Chunk(chunk)) => received.extend_from_slice(&chunk.data),
                Some(LiveEvent::InputCredit(bytes)) => outstanding -= bytes as usize,
                Some(LiveEvent::End(end)) => return end,
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .expect("the session ended");
    assert_eq!(
        end.code,
        edgecd_proto::v1::LiveEndCode::Ok as i32,
        "{end:?}"
    );
    assert_eq!(end.exit_code, Some(0));
    let (pod, container) = started.expect("the first chunk names where the command runs");
    assert!(pod.starts_with("nginx-"), "{pod}");
    assert!(!container.is_empty());
    assert_eq!(received.len(), sent.len());
    assert!(received == sent, "cat returned other bytes");
    assert!(
        most_outstanding <= edgecd_hub::link::live::INPUT_WINDOW + 32 * 1024,
        "{most_outstanding}"
    );

    // A non-zero exit code and stderr come back as such.
    let mut session = registry
        .open_live(
            CLUSTER,
            exec_request(&["sh", "-c", "echo oops >&2; exit 7"]),
        )
        .unwrap();
    let mut stderr = Vec::new();
    let end = loop {
        match session.next().await {
            Some(LiveEvent::Chunk(chunk))
                if chunk.channel == edgecd_proto::v1::LiveChannel::Stderr as i32 =>
            {
                stderr.extend_from_slice(&chunk.data);
            }
            Some(LiveEvent::Chunk(_) | LiveEvent::InputCredit(_)) => {}
            Some(LiveEvent::End(end)) => break end,
            None => panic!("the stream ended"),
        }
    };
    assert_eq!(end.exit_code, Some(7), "{end:?}");
    assert_eq!(stderr, b"oops\n");
    drop(spoke);

    // A spoke started with --exec=false refuses every exec session, whatever the hub asks.
    let _refusing = Spoke::start_with_exec(&emulator, Some(hub), false).await;
    let end = wait_for("the refusing spoke connected and answering", async || {
        let mut session = registry.open_live(CLUSTER, exec_request(&["true"])).ok()?;
        loop {
            match session.next().await? {
                // The old spoke's stream may still answer until the new one holds the cluster's.
                LiveEvent::End(end) => {
                    return (end.code == edgecd_proto::v1::LiveEndCode::Forbidden as i32)
                        .then_some(end);
                }
                LiveEvent::Chunk(_) | LiveEvent::InputCredit(_) => {}
            }
        }
    })
    .await;
    assert_eq!(
        end.code,
        edgecd_proto::v1::LiveEndCode::Forbidden as i32,
        "{end:?}"
    );
    assert!(end.message.contains("exec is turned off"), "{end:?}");
}

/// A project that allows no cluster-scoped kinds and only `team-*` namespaces.
fn restrictive_project() -> ProjectSpec {
    ProjectSpec {
        source_repos: vec!["*".into()],
        destinations: vec![ProjectDestination {
            cluster_selector: None,
            clusters: vec!["*".into()],
            namespace: "team-*".into(),
        }],
        cluster_resource_whitelist: vec![GroupKind {
            group: String::new(),
            kind: "Namespace".into(),
            name: String::new(),
        }],
        ..ProjectSpec::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoke_refuses_a_cluster_role_its_project_denies_even_when_the_hub_delivers_it_and_after_a_restart_without_the_hub()
 {
    let (_dir, store, hub) = hub_with_cluster().await;
    store
        .create_project("team", &restrictive_project())
        .await
        .unwrap();
    let emulator = emulator().await;
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("escalate").unwrap();
    repo.write(
        "app/role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n",
    )
    .unwrap();
    repo.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: harmless\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("a ClusterRole the project does not allow")
        .unwrap();
    let spoke = Spoke::start(&emulator, Some(hub)).await;
    // Straight into the store: the hub's API checks are bypassed, the spoke is the last line.
    create_app(store.as_ref(), "team", &repo, "app", "team-a", true).await;

    let status = wait_for("the policy condition", async || {
        let app = spoke.apps().get_opt("team.demo").await.ok()??;
        let status = app.status?;
        status
            .conditions
            .iter()
            .any(|c| c.kind == "ProjectPolicyViolation")
            .then_some(status)
    })
    .await;
    let condition = status
        .conditions
        .iter()
        .find(|c| c.kind == "ProjectPolicyViolation")
        .unwrap();
    assert!(
        condition.message.contains(
            "ClusterRole everything: project team does not allow cluster-scoped ClusterRole.rbac.authorization.k8s.io"
        ),
        "{}",
        condition.message
    );
    assert!(condition.message.contains("nothing was applied"));
    assert_eq!(status.sync.status, SyncStatus::Unknown);
    // The condition reaches the hub too.
    wait_for("the condition at the hub", async || {
        let status = app(store.as_ref(), "team").await.status?;
        status
            .conditions
            .iter()
            .any(|c| c.kind == "ProjectPolicyViolation")
            .then_some(())
    })
    .await;
    // Nothing was applied: neither the ClusterRole nor the harmless ConfigMap of the same app.
    assert!(
        !spoke
            .exists("rbac.authorization.k8s.io", "ClusterRole", "", "everything")
            .await
    );
    assert!(!spoke.exists("", "ConfigMap", "team-a", "harmless").await);
    // The policies are stored in the cluster.
    let stored = edgecd_spoke::policy::load(spoke.cluster.client(), STATE_NS)
        .await
        .unwrap();
    assert_eq!(stored.get("team"), Some(&restrictive_project()));

    // A restart without the hub still enforces the stored policy, for a requested sync too.
    drop(spoke);
    let spoke = Spoke::start(&emulator, None).await;
    let request = serde_json::json!({"operation": {"commandId": "local", "sync": {"prune": true}}});
    spoke
        .apps()
        .patch(
            "team.demo",
            &PatchParams::default(),
            &Patch::Merge(&request),
        )
        .await
        .unwrap();
    let op = wait_for("the refused local sync", async || {
        let op = spoke
            .apps()
            .get_opt("team.demo")
            .await
            .ok()??
            .status?
            .operation_state?;
        (op.command_id == "local" && op.phase.is_finished()).then_some(op)
    })
    .await;
    assert_eq!(op.phase, OperationPhase::Failed);
    assert!(
        op.message.contains("ClusterRole everything"),
        "{}",
        op.message
    );
    assert!(
        !spoke
            .exists("rbac.authorization.k8s.io", "ClusterRole", "", "everything")
            .await
    );
    assert!(!spoke.exists("", "ConfigMap", "team-a", "harmless").await);
}

/// Capability negotiation from the spoke's side, one capability at a time: a hub that lacks it (its
/// `LinkConfig.capabilities` without it) is sent nothing it governs, while everything else still flows; with
/// every capability, something governed by each arrives (the control). Observed in the hub's store, which
/// ingests what arrives whether or not it was agreed: the app's resource tree (`resource-trees.v1`), its events
/// (`events.v1`), its deployment record (`deployments.v1`), and an app created at the edge
/// (`autonomous-apps.v1`). (`digest.v1` leaves nothing in the store; the hub's own side is
/// `hub/tests/capabilities.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_lacking_a_capability_is_sent_nothing_it_governs() {
    use edgecd_core::link::capabilities::names;
    const GOVERNED: [&str; 4] = [
        names::RESOURCE_TREES,
        names::EVENTS,
        names::DEPLOYMENTS,
        names::AUTONOMOUS_APPS,
    ];
    for missing in [None].into_iter().chain(GOVERNED.map(Some)) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
        store
            .create_cluster(&NewCluster {
                name: CLUSTER.into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
        let mut config = LinkConfig {
            heartbeat_interval: Duration::from_millis(500),
            stale_after: Duration::from_secs(2),
            ..LinkConfig::default()
        };
        if let Some(missing) = missing {
            config.capabilities = config.capabilities.without(missing);
        }
        let link = SpokeLink::new(config, Arc::clone(&store));
        link.spawn_router();
        link.spawn_watch();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hub = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(SpokeServiceServer::new(link))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        let emulator = emulator().await;
        let (_git, repo, spoke) = talk_demo_synced(store.as_ref(), &emulator, hub).await;
        // An app created at the edge.
        let edge = Application::new(
            "edge",
            STATE_NS,
            ApplicationSpec {
                project: "default".into(),
                source: ApplicationSource {
                    repo_url: repo.url().into(),
                    target_revision: "HEAD".into(),
                    path: "deploy/overlays/cluster2".into(),
                    ..ApplicationSource::default()
                },
                destination: Destination {
                    namespace: "edge-demo".into(),
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
            },
        );
        spoke
            .apps()
            .create(&Default::default(), &edge)
            .await
            .unwrap();

        // What arrived, per capability.
        let arrived = async |capability: &str| -> bool {
            match capability {
                names::RESOURCE_TREES => store
                    .get_resource_tree("default", "demo")
                    .await
                    .is_ok_and(|tree| tree.is_some()),
                names::EVENTS => store
                    .list_events(
                        &EventFilter {
                            cluster: Some(CLUSTER.into()),
                            app: Some(("default".into(), "demo".into())),
                        },
                        10,
                        None,
                    )
                    .await
                    .is_ok_and(|page| !page.items.is_empty()),
                names::DEPLOYMENTS => !deployments(store.as_ref()).await.is_empty(),
                names::AUTONOMOUS_APPS => store
                    .get_app("default", &format!("edge@{CLUSTER}"))
                    .await
                    .is_ok(),
                other => panic!("{other} is not observed here"),
            }
        };
        // Everything agreed arrives (and, with every capability, that is each of them)...
        for capability in GOVERNED.iter().filter(|c| Some(**c) != missing) {
            wait_for(
                &format!("what {capability} governs, without {missing:?}"),
                async || arrived(capability).await.then_some(()),
            )
            .await;
        }
        // ... and what the hub lacks never does, though it would have by now.
        if let Some(missing) = missing {
            // The edge app's own sync, which a report of it would follow, is done at the spoke.
            wait_for("the edge app synced at the spoke", async || {
                let app = spoke.apps().get("edge").await.ok()?;
                (app.status?.sync.status == SyncStatus::Synced).then_some(())
            })
            .await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert!(
                !arrived(missing).await,
                "a hub without {missing} was sent what it governs"
            );
        }
        drop(spoke);
        server.abort();
    }
}

/// Serves a hub link for `store` on `listener`; the task ends (its streams cut) when aborted.
fn serve_hub(store: Arc<dyn Store>, listener: TcpListener) -> tokio::task::JoinHandle<()> {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, store);
    link.spawn_router();
    link.spawn_watch();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    })
}

/// A hub restored from a backup (docs/operations.md#restoring) remembers an older point of the spoke's stream
/// than the spoke was acknowledged for. The spoke starts a new stream epoch instead of resending from where
/// it was (which the hub would refuse as a gap, again on every reconnection), and the restored hub gets every
/// app's status as it is now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_resumes_with_a_hub_restored_from_an_older_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await.unwrap());
    store
        .create_cluster(&NewCluster {
            name: CLUSTER.into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    // The first hub on a runtime of its own, so that losing it ends its connections too.
    let hub = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let first_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let first_store = Arc::clone(&store);
    first_runtime.spawn(async move {
        let listener = TcpListener::bind(hub).await.unwrap();
        let _ = serve_hub(first_store, listener).await;
    });
    let emulator = emulator().await;
    let (_git, repo, _spoke) = talk_demo_synced(store.as_ref(), &emulator, hub).await;

    // The backup: SQLite's online copy, while the hub runs.
    let backup = dir.path().join("backup.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        backup.display()
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // After it, more reports the hub acknowledges: a new commit deployed.
    repo.write(
        "deploy/overlays/cluster1/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
    )
    .unwrap();
    repo.write(
        "deploy/overlays/cluster1/kustomization.yaml",
        "resources:\n- ../../base\n- extra.yaml\npatchesStrategicMerge:\n- service.yaml\n",
    )
    .unwrap();
    let newer = repo.commit("an extra ConfigMap").unwrap();
    wait_for("the new commit's status at the hub", async || {
        let status = app(store.as_ref(), "default").await.status?;
        (status.sync.revision == newer && status.sync.status == SyncStatus::Synced).then_some(())
    })
    .await;

    // The hub is lost (its process ends, and with it every connection) and restored from the backup, at the
    // same address.
    first_runtime.shutdown_background();
    let restored: Arc<dyn Store> = Arc::new(SqliteStore::open(&backup).await.unwrap());
    assert_ne!(
        app(restored.as_ref(), "default")
            .await
            .status
            .unwrap()
            .sync
            .revision,
        newer,
        "the backup predates the new commit"
    );
    let listener = TcpListener::bind(hub).await.unwrap();
    let _second = serve_hub(Arc::clone(&restored), listener);
    wait_for(
        "the restored hub with the spoke's current status",
        async || {
            let status = app(restored.as_ref(), "default").await.status?;
            let connected = restored.get_cluster(CLUSTER).await.ok()?.connection.state
                == edgecd_hub::store::ConnectionKind::Connected;
            (status.sync.revision == newer && connected).then_some(())
        },
    )
    .await;
}
