//! Two hub replicas on one PostgreSQL with a real spoke on the emulator: a command issued on one replica reaches the spoke connected to the other; a replica killed without warning loses nothing (its spoke resumes on the survivor, which also takes over evaluating application sets); a PostgreSQL restart is survived without restarting the hub.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::testdata;
use edgecd_hub::link::LinkConfig;
use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::{GitServer, PgServer};
use tokio::sync::oneshot;
use tonic::transport::Channel;

const STATE_NS: &str = "edgecd-system";

type Client = HubServiceClient<Channel>;

async fn start_replica(url: &str, id: &str) -> RunningServer {
    start_replica_with(url, id, None).await
}

/// A replica that peers reach at `peer_host` (live calls relayed between replicas), if given.
async fn start_replica_with(url: &str, id: &str, peer_host: Option<&str>) -> RunningServer {
    let mut config = ServerConfig::insecure_local(Database::Postgres(url.to_owned()));
    config.replica_id = id.into();
    config.peer_host = peer_host.map(str::to_owned);
    config.link = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    Server::start(config).await.unwrap()
}

async fn client(hub: &RunningServer) -> Client {
    let channel = Channel::from_shared(format!("http://{}", hub.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HubServiceClient::new(channel)
}

/// A spoke whose link can be pointed at another replica.
struct Spoke {
    engine: Arc<Engine>,
    _engine_stop: oneshot::Sender<()>,
    link_stop: Option<oneshot::Sender<()>>,
    link_task: Option<tokio::task::JoinHandle<()>>,
    _cache: tempfile::TempDir,
}

impl Spoke {
    async fn start(emulator: &KubeEmulator, hub: SocketAddr) -> Self {
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
            _cache: cache,
        };
        spoke.connect(hub);
        spoke
    }

    fn connect(&mut self, hub: SocketAddr) {
        let config = HubLinkConfig::new(format!("http://{hub}"), "cluster-1", STATE_NS);
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

/// An emulated cluster, and the talk's repository on a git server.
async fn talk_demo() -> (KubeEmulator, GitServer, edgecd_testkit::GitRepo) {
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
    (emulator, git, repo)
}

/// Registers cluster-1 with the fleet.
async fn register_cluster(api: &mut Client) {
    api.create_cluster(v1::CreateClusterRequest {
        name: "cluster-1".into(),
        ..v1::CreateClusterRequest::default()
    })
    .await
    .unwrap();
}

/// Whether the replica reports that it evaluates the hub's application sets.
async fn leads_appsets(hub: &RunningServer) -> bool {
    edgecd_bench::hub_metric(hub.http_addr(), "edgecd_hub_appsets_leader")
        .await
        .unwrap()
        == 1.0
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..900 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn demo() -> Option<v1::AppRef> {
    Some(v1::AppRef {
        project: "default".into(),
        name: "demo".into(),
    })
}

/// The cluster's connection state and the replica holding its stream.
async fn holder(api: &mut Client) -> Option<(i32, String)> {
    let cluster = api
        .get_cluster(v1::GetClusterRequest {
            name: "cluster-1".into(),
        })
        .await
        .ok()?
        .into_inner();
    let connection = cluster.connection?;
    Some((connection.state, connection.hub_replica))
}

async fn wait_connected_to(api: &mut Client, replica: &str) {
    let connected = v1::ConnectionStateCode::Connected as i32;
    wait_for(&format!("cluster-1 connected to {replica}"), async || {
        let (state, holder) = holder(api).await?;
        (state == connected && holder == replica).then_some(())
    })
    .await;
}

async fn wait_command(api: &mut Client, id: &str) {
    let succeeded = v1::CommandOutcome::Succeeded as i32;
    wait_for(&format!("command {id} to succeed"), async || {
        let status = api
            .get_command(v1::GetCommandRequest {
                command_id: id.into(),
            })
            .await
            .ok()?
            .into_inner();
        (status.outcome == succeeded).then_some(())
    })
    .await;
}

async fn refresh(api: &mut Client) -> String {
    api.refresh_application(v1::RefreshApplicationRequest {
        request_id: String::new(),
        app: demo(),
        hard: false,
        ttl: None,
    })
    .await
    .unwrap()
    .into_inner()
    .command_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_postgres_and_lose_nothing() {
    let mut pg = PgServer::start().unwrap();
    let url = pg.create_database().unwrap();
    // B starts first and takes the application-set role; A, started after,
    // must not take it while B lives.
    let b = start_replica(&url, "hub-b").await;
    wait_for("B to evaluate application sets", async || {
        leads_appsets(&b).await.then_some(())
    })
    .await;
    let a = start_replica(&url, "hub-a").await;
    let mut api_a = client(&a).await;
    let (emulator, _git, repo) = talk_demo().await;

    // Registered and configured on A; the spoke connects to B.
    register_cluster(&mut api_a).await;
    let mut spoke = Spoke::start(&emulator, b.grpc_addr()).await;
    wait_connected_to(&mut api_a, "hub-b").await;
    api_a
        .create_application(demo_app(&repo, false))
        .await
        .unwrap();

    // A sync issued on A reaches the spoke through B (routed via Postgres).
    let sync = api_a
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: demo(),
            sync: Some(v1::SyncCommand::default()),
            ttl: None,
        })
        .await
        .unwrap()
        .into_inner();
    wait_command(&mut api_a, &sync.command_id).await;
    let synced = v1::SyncStatusCode::Synced as i32;
    let revision = wait_for("demo Synced, as ingested by B and read on A", async || {
        let app = api_a
            .get_application(v1::GetApplicationRequest { app: demo() })
            .await
            .ok()?
            .into_inner();
        let sync = app.status?.sync?;
        (sync.status == synced).then_some(sync.revision)
    })
    .await;
    assert_eq!(revision, repo.head().unwrap());
    // A has tried to take the role (at its start, seconds ago) and was refused.
    assert!(leads_appsets(&b).await);
    assert!(!leads_appsets(&a).await, "one replica evaluates the sets");

    // B dies without warning. A command issued meanwhile waits in the outbox.
    b.abort();
    let pending = refresh(&mut api_a).await;
    // The spoke's link is pointed at the survivor and resumes there.
    spoke.disconnect().await;
    spoke.connect(a.grpc_addr());
    wait_connected_to(&mut api_a, "hub-a").await;
    wait_command(&mut api_a, &pending).await;
    // What B ingested before it died is still there.
    let app = api_a
        .get_application(v1::GetApplicationRequest { app: demo() })
        .await
        .unwrap()
        .into_inner();
    let status = app.status.unwrap();
    assert_eq!(status.sync.unwrap().revision, repo.head().unwrap());
    assert_eq!(status.history.len(), 1);
    // With B's database session gone, A takes the application sets over.
    wait_for("A to take over evaluating application sets", async || {
        leads_appsets(&a).await.then_some(())
    })
    .await;

    // PostgreSQL restarts under the hub: calls fail UNAVAILABLE meanwhile,
    // then everything recovers without restarting the hub.
    pg.stop().unwrap();
    let err = api_a
        .list_applications(v1::ListApplicationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(!err.message().contains("postgres://"));
    pg.restart().unwrap();
    wait_for("the API to answer again", async || {
        api_a
            .list_applications(v1::ListApplicationsRequest::default())
            .await
            .ok()
    })
    .await;
    let after = wait_for("a command to be accepted after the restart", async || {
        api_a
            .refresh_application(v1::RefreshApplicationRequest {
                request_id: String::new(),
                app: demo(),
                hard: false,
                ttl: None,
            })
            .await
            .ok()
            .map(|r| r.into_inner().command_id)
    })
    .await;
    wait_command(&mut api_a, &after).await;

    spoke.disconnect().await;
    a.shutdown().await.unwrap();
}

/// The app `default/demo` of the talk's repository on cluster-1, synced automatically when `automated`.
fn demo_app(repo: &edgecd_testkit::GitRepo, automated: bool) -> v1::CreateApplicationRequest {
    v1::CreateApplicationRequest {
        meta: Some(v1::ApplicationMeta {
            project: "default".into(),
            name: "demo".into(),
            ..v1::ApplicationMeta::default()
        }),
        spec: Some(v1::ApplicationSpec {
            source: Some(v1::ApplicationSource {
                repo_url: repo.url().into(),
                target_revision: "HEAD".into(),
                path: "deploy/overlays/cluster1".into(),
                ..v1::ApplicationSource::default()
            }),
            destination: Some(v1::Destination {
                cluster: "cluster-1".into(),
                namespace: "demo".into(),
                ..v1::Destination::default()
            }),
            sync_policy: Some(v1::SyncPolicy {
                automated: automated.then_some(v1::AutomatedSync {
                    prune: true,
                    self_heal: true,
                    allow_empty: false,
                }),
                sync_options: vec!["CreateNamespace=true".into()],
                retry: None,
            }),
            ..v1::ApplicationSpec::default()
        }),
        ..v1::CreateApplicationRequest::default()
    }
}

fn nginx() -> Option<v1::ResourceKey> {
    Some(v1::ResourceKey {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: "demo".into(),
        name: "nginx".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reads_and_exec_on_one_replica_are_relayed_to_the_replica_holding_the_stream() {
    let mut pg = PgServer::start().unwrap();
    let url = pg.create_database().unwrap();
    let a = start_replica_with(&url, "hub-a", Some("127.0.0.1")).await;
    let b = start_replica_with(&url, "hub-b", Some("127.0.0.1")).await;
    // A replica without a peer address: a call there for cluster-1 cannot be relayed.
    let c = start_replica(&url, "hub-c").await;
    let mut api_a = client(&a).await;
    let (emulator, _git, repo) = talk_demo().await;
    register_cluster(&mut api_a).await;
    // The spoke holds its stream on B; every call below goes to A.
    let _spoke = Spoke::start(&emulator, b.grpc_addr()).await;
    wait_connected_to(&mut api_a, "hub-b").await;
    api_a
        .create_application(demo_app(&repo, true))
        .await
        .unwrap();
    wait_for("demo Synced and Healthy", async || {
        let app = api_a
            .get_application(v1::GetApplicationRequest { app: demo() })
            .await
            .ok()?
            .into_inner();
        let status = app.status?;
        (status.sync.as_ref()?.status == v1::SyncStatusCode::Synced as i32
            && status.health.as_ref()?.status == v1::HealthStatusCode::Healthy as i32)
            .then_some(())
    })
    .await;

    // A live manifest, events and logs asked of A come from the cluster through B.
    let manifest = api_a
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: demo(),
            resource: nginx(),
            managed_fields: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        manifest.yaml.contains("kind: Deployment"),
        "{}",
        manifest.yaml
    );
    api_a
        .list_live_events(v1::ListLiveEventsRequest {
            app: demo(),
            resource: nginx(),
        })
        .await
        .unwrap();
    let mut logs = api_a
        .stream_pod_logs(v1::StreamPodLogsRequest {
            app: demo(),
            resource: nginx(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let chunk = logs.message().await.unwrap().expect("a log chunk");
    assert!(chunk.pod.starts_with("nginx-"), "{chunk:?}");

    // Exec through A: the session runs on B, which audits it with the caller's address and A's.
    let mut project = api_a
        .get_project(v1::GetProjectRequest {
            name: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    project.exec_role = v1::ProjectRoleKind::Deployer as i32;
    api_a
        .update_project(v1::UpdateProjectRequest {
            project: Some(project),
            expected_version: 0,
        })
        .await
        .unwrap();
    use v1::exec_pod_request::Request;
    let requests = [
        Request::Start(v1::ExecStart {
            app: demo(),
            resource: nginx(),
            command: vec!["sh".into(), "-c".into(), "cat; exit 6".into()],
            stdin: true,
            ..Default::default()
        }),
        Request::Stdin(b"across replicas\n".to_vec()),
        Request::StdinClosed(true),
    ]
    .map(|r| v1::ExecPodRequest { request: Some(r) });
    // Each replica reuses a project's spec for a few seconds: the exec role reaches B's authorization soon.
    let mut output = wait_for("exec allowed on the holder", async || {
        match api_a
            .exec_pod(futures::stream::iter(requests.clone()))
            .await
        {
            Ok(output) => Some(output.into_inner()),
            Err(status) if status.code() == tonic::Code::PermissionDenied => None,
            Err(status) => panic!("{status:?}"),
        }
    })
    .await;
    let (mut stdout, mut exit, mut cluster) = (Vec::new(), None, String::new());
    while let Some(answer) = output.message().await.unwrap() {
        match answer.response {
            Some(v1::exec_pod_response::Response::Started(started)) => cluster = started.cluster,
            Some(v1::exec_pod_response::Response::Stdout(data)) => stdout.extend(data),
            Some(v1::exec_pod_response::Response::Exit(e)) => exit = Some(e.code),
            _ => {}
        }
    }
    assert_eq!(
        (stdout.as_slice(), exit),
        (&b"across replicas\n"[..], Some(6))
    );
    assert_eq!(cluster, "cluster-1");
    let audit = api_a
        .list_audit_log(v1::ListAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    let ended = audit
        .iter()
        .find(|e| e.action == "ExecPod" && e.result == "ok" && e.message.contains("exit code 6"))
        .unwrap_or_else(|| panic!("no audit entry of the session: {audit:#?}"));
    assert!(ended.message.contains("exit code 6"), "{ended:?}");
    assert!(
        ended.source.contains(" via "),
        "the caller and the relay: {ended:?}"
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "ExecPod" && e.result == "started")
            .count(),
        1,
        "one session, audited once (at the holder): {audit:#?}"
    );

    // C has no peer address: it says which replica holds the stream.
    let refused = client(&c)
        .await
        .get_live_manifest(v1::GetLiveManifestRequest {
            app: demo(),
            resource: nginx(),
            managed_fields: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("hub-b"), "{refused:?}");
    drop((a, b, c));
    pg.stop().unwrap();
}
