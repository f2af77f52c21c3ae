//! Hub and spoke together over real gRPC on TCP: an app created at the hub is synced on its emulated cluster and its status appears in the hub's store; a sync command reaches the spoke; a command issued while the spoke is disconnected is delivered when it reconnects; connection states follow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination, SyncPolicy};
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::testdata;
use edgecd_hub::link::{
    CommandPayload, DESIRED_CHANNEL, LinkConfig, SpokeLink, command_payload_kind,
};
use edgecd_hub::store::{
    AppRecord, CommandOutcome, ConnectionKind, NewApp, NewCluster, NewCommand, SqliteStore, Store,
};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::GitServer;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;

const STATE_NS: &str = "edgecd-system";

async fn start_hub(store: Arc<dyn Store>) -> SocketAddr {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, store);
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
    addr
}

/// Installs the CRD and the state namespace as `edgecd-spoke run` does.
async fn install_crd(cluster: &LiveCluster) {
    edgecd_spoke::runtime::install_crd(cluster).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS)
        .await
        .unwrap();
}

/// A spoke (engine + hub link) whose link can be stopped and restarted.
struct Spoke {
    engine: Arc<Engine>,
    _engine_stop: oneshot::Sender<()>,
    link_stop: Option<oneshot::Sender<()>>,
    link_task: Option<tokio::task::JoinHandle<()>>,
    hub: String,
    _cache: tempfile::TempDir,
}

impl Spoke {
    async fn start(emulator: &KubeEmulator, hub: SocketAddr) -> Self {
        let cluster = LiveCluster::new(emulator.client().await.unwrap());
        install_crd(&cluster).await;
        let cache = tempfile::tempdir().unwrap();
        let git_config = GitConfig {
            ls_remote_ttl: Duration::from_millis(100),
            ..GitConfig::new(cache.path())
        };
        let git = GitCache::new(git_config, CredentialStore::default()).unwrap();
        let config = EngineConfig {
            namespace: STATE_NS.into(),
            poll_interval: Duration::from_secs(1),
            progress_interval: Duration::from_millis(200),
            sync: SyncOptions {
                wave_timeout: Duration::from_secs(30),
                poll_interval: Duration::from_millis(50),
                ..SyncOptions::default()
            },
            ..EngineConfig::default()
        };
        let (engine, triggers) = Engine::new(cluster, git, config);
        let (engine_stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
            let _ = stopped.await;
        }));
        let mut spoke = Self {
            engine,
            _engine_stop: engine_stop,
            link_stop: None,
            link_task: None,
            hub: format!("http://{hub}"),
            _cache: cache,
        };
        spoke.connect();
        spoke
    }

    fn connect(&mut self) {
        let config = HubLinkConfig::new(self.hub.clone(), "cluster-1", STATE_NS);
        let (stop, stopped) = oneshot::channel::<()>();
        self.link_task = Some(tokio::spawn(link::run(
            config,
            Arc::clone(&self.engine),
            async move {
                let _ = stopped.await;
            },
        )));
        self.link_stop = Some(stop);
    }

    async fn disconnect(&mut self) {
        if let Some(stop) = self.link_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.link_task.take() {
            let _ = task.await;
        }
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

async fn app(store: &dyn Store) -> AppRecord {
    store.get_app("default", "demo").await.unwrap()
}

async fn enqueue(store: &dyn Store, payload: CommandPayload) -> String {
    let command = NewCommand {
        id: None,
        project: "default".into(),
        app: "demo".into(),
        cluster: "cluster-1".into(),
        kind: command_payload_kind(&payload).into(),
        payload: serde_json::to_value(&payload).unwrap(),
        issued_by: "test".into(),
        deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
        trace: None,
    };
    store.enqueue_command(&command).await.unwrap().id
}

async fn wait_command(store: &dyn Store, id: &str, want: CommandOutcome) {
    for _ in 0..600 {
        let record = store.get_command(id).await.unwrap();
        if record.outcome == want {
            return;
        }
        if record.outcome.is_finished() {
            panic!(
                "command {id} ended {:?} ({}), not {want:?}",
                record.outcome, record.message
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for command {id} {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_created_at_the_hub_is_synced_and_commands_reach_the_spoke() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    store
        .create_cluster(&NewCluster {
            name: "cluster-1".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    let hub = start_hub(Arc::clone(&store)).await;
    let emulator = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("demo").unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    repo.commit("demo").unwrap();

    let mut spoke = Spoke::start(&emulator, hub).await;
    wait_for("cluster-1 Connected", async || {
        let c = store.get_cluster("cluster-1").await.ok()?;
        (c.connection.state == ConnectionKind::Connected).then_some(())
    })
    .await;

    // An app created at the hub (manual sync) reaches the spoke.
    let spec = ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: repo.url().into(),
            target_revision: "HEAD".into(),
            path: "deploy/overlays/cluster1".into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            cluster: "cluster-1".into(),
            namespace: "demo".into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: None,
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    store
        .create_app(&NewApp {
            project: "default".into(),
            name: "demo".into(),
            spec,
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    store.notify(DESIRED_CHANNEL, "cluster-1").await.unwrap();
    let status = wait_for("demo OutOfSync at the hub", async || {
        let status = app(store.as_ref()).await.status?;
        (status.sync.status == SyncStatus::OutOfSync).then_some(status)
    })
    .await;
    assert_eq!(status.health.status, Health::Missing);

    // A selective sync reaches the spoke with its resources: only the Service is applied, and it is not
    // recorded in the history.
    let selective = enqueue(
        store.as_ref(),
        CommandPayload::Sync {
            revision: String::new(),
            prune: false,
            dry_run: false,
            force: false,
            resources: vec![edgecd_core::app::ResourceKey {
                group: String::new(),
                version: "v1".into(),
                kind: "Service".into(),
                namespace: String::new(),
                name: "nginx".into(),
            }],
            apply_out_of_sync_only: false,
        },
    )
    .await;
    wait_command(store.as_ref(), &selective, CommandOutcome::Succeeded).await;
    let operation =
        store.get_command(&selective).await.unwrap().result.unwrap()["operation"].clone();
    let applied: Vec<&str> = operation["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(applied, ["Service"], "{operation}");
    let status = wait_for("the selective sync reported", async || {
        let status = app(store.as_ref()).await.status?;
        status
            .operation_state
            .as_ref()
            .is_some_and(|op| op.command_id == selective)
            .then_some(status)
    })
    .await;
    assert_eq!(
        status.sync.status,
        SyncStatus::OutOfSync,
        "the Deployment is still missing"
    );
    assert!(
        status.history.is_empty(),
        "a selective sync entered the history"
    );

    // A sync command reaches the spoke, runs, and its result comes back.
    let id = enqueue(
        store.as_ref(),
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
    wait_command(store.as_ref(), &id, CommandOutcome::Succeeded).await;
    let command = store.get_command(&id).await.unwrap();
    assert!(command.delivered_at.is_some());
    assert_eq!(command.result.unwrap()["operation"]["phase"], "Succeeded");
    let status = wait_for("demo Synced and Healthy at the hub", async || {
        let status = app(store.as_ref()).await.status?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(status)
    })
    .await;
    assert_eq!(status.sync.revision, repo.head().unwrap());
    assert_eq!(status.history.len(), 1);
    assert_eq!(
        status.health.message, "",
        "a Healthy app keeps an old message"
    );

    // The diff query is answered by the spoke.
    let diff = enqueue(store.as_ref(), CommandPayload::Diff).await;
    wait_command(store.as_ref(), &diff, CommandOutcome::Succeeded).await;
    let result = store.get_command(&diff).await.unwrap().result.unwrap();
    assert_eq!(result["diff"].as_array().unwrap().len(), 2);

    // With the spoke away, a command waits in the outbox...
    spoke.disconnect().await;
    wait_for("cluster-1 Disconnected", async || {
        let c = store.get_cluster("cluster-1").await.ok()?;
        (c.connection.state == ConnectionKind::Disconnected).then_some(())
    })
    .await;
    let pending = enqueue(store.as_ref(), CommandPayload::Refresh { hard: true }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.get_command(&pending).await.unwrap().outcome,
        CommandOutcome::Pending
    );
    // ... and is delivered when it reconnects.
    spoke.connect();
    wait_command(store.as_ref(), &pending, CommandOutcome::Succeeded).await;

    // Deleting the app at the hub removes it and its resources at the edge.
    store.delete_app("default", "demo", None).await.unwrap();
    store.notify(DESIRED_CHANNEL, "cluster-1").await.unwrap();
    let client = emulator.client().await.unwrap();
    let apps: kube::Api<crd::Application> = kube::Api::namespaced(client, STATE_NS);
    wait_for("the demo CR to be deleted", async || {
        apps.get_opt("demo").await.ok()?.is_none().then_some(())
    })
    .await;
}
