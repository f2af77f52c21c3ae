//! The fleet API end to end: a hub `Server` (SQLite or PostgreSQL) and a real spoke on the Kubernetes API emulator, driven only through `HubService` over TCP: apps created, synced and reported; commands delivered (also after a reconnect); diffs answered by the spoke; filters, pagination, counts, errors, audit and watch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
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

async fn start_hub(database: Database) -> RunningServer {
    let mut config = ServerConfig::insecure_local(database);
    config.link = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    config.api.query_timeout = Duration::from_secs(20);
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

/// A spoke (engine + hub link) whose link can be stopped and restarted.
struct Spoke {
    engine: Arc<Engine>,
    _engine_stop: oneshot::Sender<()>,
    link_stop: Option<oneshot::Sender<()>>,
    link_task: Option<tokio::task::JoinHandle<()>>,
    cluster_name: String,
    _cache: tempfile::TempDir,
}

impl Spoke {
    async fn start(emulator: &KubeEmulator, cluster_name: &str, hub: SocketAddr) -> Self {
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
            cluster_name: cluster_name.into(),
            _cache: cache,
        };
        spoke.connect(hub);
        spoke
    }

    fn connect(&mut self, hub: SocketAddr) {
        let config = HubLinkConfig::new(format!("http://{hub}"), &self.cluster_name, STATE_NS);
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

fn app_ref(project: &str, name: &str) -> Option<v1::AppRef> {
    Some(v1::AppRef {
        project: project.into(),
        name: name.into(),
    })
}

fn spec(repo: &str, path: &str, cluster: &str, namespace: &str) -> v1::ApplicationSpec {
    v1::ApplicationSpec {
        source: Some(v1::ApplicationSource {
            repo_url: repo.into(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..v1::ApplicationSource::default()
        }),
        destination: Some(v1::Destination {
            cluster: cluster.into(),
            namespace: namespace.into(),
            ..v1::Destination::default()
        }),
        sync_policy: Some(v1::SyncPolicy {
            automated: None,
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..v1::ApplicationSpec::default()
    }
}

/// Creates `default/demo` (the talk's cluster1 overlay on cluster-1, manual sync).
async fn create_demo(api: &mut Client, repo: &str) -> v1::Application {
    api.create_application(v1::CreateApplicationRequest {
        meta: Some(v1::ApplicationMeta {
            project: "default".into(),
            name: "demo".into(),
            ..v1::ApplicationMeta::default()
        }),
        spec: Some(spec(repo, "deploy/overlays/cluster1", "cluster-1", "demo")),
        ..v1::CreateApplicationRequest::default()
    })
    .await
    .unwrap()
    .into_inner()
}

async fn create_cluster(api: &mut Client, name: &str, labels: &[(&str, &str)]) {
    api.create_cluster(v1::CreateClusterRequest {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..v1::CreateClusterRequest::default()
    })
    .await
    .unwrap();
}

async fn connection(api: &mut Client, cluster: &str) -> i32 {
    api.get_cluster(v1::GetClusterRequest {
        name: cluster.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .connection
    .unwrap()
    .state
}

async fn status(api: &mut Client, project: &str, name: &str) -> Option<v1::ApplicationStatus> {
    api.get_application(v1::GetApplicationRequest {
        app: app_ref(project, name),
    })
    .await
    .ok()?
    .into_inner()
    .status
}

/// Opens a watch of these kinds; its first event, returned, is the BOOKMARK
/// every watch without a resume token starts with.
async fn watch_kinds(
    api: &mut Client,
    kinds: &[v1::WatchKind],
) -> (tonic::Streaming<v1::WatchEvent>, v1::WatchEvent) {
    let mut watch = api
        .watch(v1::WatchRequest {
            kinds: kinds.iter().map(|k| *k as i32).collect(),
            ..v1::WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.r#type, v1::WatchEventType::Bookmark as i32);
    (watch, first)
}

async fn wait_command(api: &mut Client, id: &str, want: v1::CommandOutcome) -> v1::CommandStatus {
    wait_for(&format!("command {id} {want:?}"), async || {
        let status = api
            .get_command(v1::GetCommandRequest {
                command_id: id.into(),
            })
            .await
            .ok()?
            .into_inner();
        (status.outcome == want as i32).then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_created_through_the_api_are_synced_and_commands_reach_the_spoke() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(Database::Sqlite(dir.path().join("hub.db"))).await;
    let mut api = client(&hub).await;
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

    // A watcher sees what follows.
    let (mut watch, _) = watch_kinds(&mut api, &[v1::WatchKind::Applications]).await;

    create_cluster(&mut api, "cluster-1", &[("region", "eu")]).await;
    let mut spoke = Spoke::start(&emulator, "cluster-1", hub.grpc_addr()).await;
    let connected = v1::ConnectionStateCode::Connected as i32;
    wait_for("cluster-1 Connected", async || {
        (connection(&mut api, "cluster-1").await == connected).then_some(())
    })
    .await;

    // Created through the API (manual sync): the spoke reports it OutOfSync.
    let created = create_demo(&mut api, repo.url()).await;
    assert_eq!(created.meta.unwrap().spec_version, 1);
    let out_of_sync = v1::SyncStatusCode::OutOfSync as i32;
    let reported = wait_for("demo OutOfSync in the API", async || {
        let s = status(&mut api, "default", "demo").await?;
        (s.sync.as_ref()?.status == out_of_sync).then_some(s)
    })
    .await;
    assert_eq!(
        reported.health.unwrap().status,
        v1::HealthStatusCode::Missing as i32
    );
    let upserted = wait_for("a watch event for demo", async || {
        let event = watch.message().await.ok()??;
        match &event.object {
            Some(v1::watch_event::Object::Application(app)) if app.name == "demo" => Some(event),
            _ => None,
        }
    })
    .await;
    assert_eq!(upserted.r#type, v1::WatchEventType::Upserted as i32);
    assert!(upserted.resume_token.starts_with("w1:"));

    // Another watcher follows commands and events.
    let (mut activity, first) =
        watch_kinds(&mut api, &[v1::WatchKind::Commands, v1::WatchKind::Events]).await;
    assert!(first.resume_token.contains(":e"), "{}", first.resume_token);

    // A sync command reaches the spoke; its result is recorded.
    let command = api
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: app_ref("default", "demo"),
            sync: Some(v1::SyncCommand {
                prune: true,
                ..v1::SyncCommand::default()
            }),
            ttl: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(command.outcome, v1::CommandOutcome::Pending as i32);
    let done = wait_command(&mut api, &command.command_id, v1::CommandOutcome::Succeeded).await;
    match done.payload {
        Some(v1::command_status::Payload::Operation(op)) => {
            assert_eq!(op.phase, v1::OperationPhase::Succeeded as i32);
        }
        other => panic!("expected an operation result, got {other:?}"),
    }
    // The command watcher saw it issued, then its result; the event
    // watcher saw the sync's events of demo.
    let mut outcomes = Vec::new();
    let mut events = Vec::new();
    wait_for(
        "the sync's outcome and an event of demo on the watch",
        async || {
            let event = tokio::time::timeout(Duration::from_secs(60), activity.message())
                .await
                .expect("no watch event within a minute")
                .ok()??;
            match event.object {
                Some(v1::watch_event::Object::Command(c)) if c.command_id == command.command_id => {
                    outcomes.push(c.outcome);
                }
                Some(v1::watch_event::Object::Command(c)) => {
                    panic!("a command this test did not issue: {c:?}");
                }
                Some(v1::watch_event::Object::Event(e)) => events.push(e),
                _ => {}
            }
            let succeeded = v1::CommandOutcome::Succeeded as i32;
            (outcomes.contains(&succeeded) && !events.is_empty()).then_some(())
        },
    )
    .await;
    assert_eq!(
        outcomes[0],
        v1::CommandOutcome::Pending as i32,
        "{outcomes:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.app.as_ref().is_some_and(|a| a.name == "demo")),
        "{events:?}"
    );

    let synced = v1::SyncStatusCode::Synced as i32;
    let healthy = v1::HealthStatusCode::Healthy as i32;
    let s = wait_for("demo Synced and Healthy in the API", async || {
        let s = status(&mut api, "default", "demo").await?;
        (s.sync.as_ref()?.status == synced && s.health.as_ref()?.status == healthy).then_some(s)
    })
    .await;
    assert_eq!(s.sync.unwrap().revision, repo.head().unwrap());
    let listed = api
        .list_applications(v1::ListApplicationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total, 1);
    let summary = &listed.items[0];
    assert_eq!((summary.sync, summary.health), (synced, healthy));
    assert_eq!(summary.cluster, "cluster-1");
    assert_eq!(
        summary.cluster_connection.as_ref().unwrap().state,
        connected
    );
    let history = api
        .list_history(v1::ListHistoryRequest {
            app: app_ref("default", "demo"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.entries.len(), 1);

    // The diff is answered by the spoke within the call.
    let diff = api
        .get_application_diff(v1::GetApplicationDiffRequest {
            app: app_ref("default", "demo"),
            resources: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.resources.len(), 2);
    // Selected resources: only those (any version).
    let service = diff
        .resources
        .iter()
        .filter_map(|d| d.key.clone())
        .find(|k| k.kind == "Service")
        .unwrap();
    let only = api
        .get_application_diff(v1::GetApplicationDiffRequest {
            app: app_ref("default", "demo"),
            resources: vec![v1::ResourceKey {
                version: String::new(),
                ..service.clone()
            }],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(only.resources.len(), 1);
    assert_eq!(only.resources[0].key, Some(service));

    // With the spoke away, queries fail naming the cluster, and commands wait...
    spoke.disconnect().await;
    let disconnected = v1::ConnectionStateCode::Disconnected as i32;
    wait_for("cluster-1 Disconnected", async || {
        (connection(&mut api, "cluster-1").await == disconnected).then_some(())
    })
    .await;
    let err = api
        .get_application_diff(v1::GetApplicationDiffRequest {
            app: app_ref("default", "demo"),
            resources: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(err.message().contains("cluster-1"), "{}", err.message());
    let pending = api
        .refresh_application(v1::RefreshApplicationRequest {
            request_id: String::new(),
            app: app_ref("default", "demo"),
            hard: true,
            ttl: None,
        })
        .await
        .unwrap()
        .into_inner();
    // ... and are delivered when it reconnects.
    spoke.connect(hub.grpc_addr());
    wait_command(&mut api, &pending.command_id, v1::CommandOutcome::Succeeded).await;

    // Errors name the object.
    let err = api
        .get_application(v1::GetApplicationRequest {
            app: app_ref("default", "nope"),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert_eq!(err.message(), "application default/nope not found");

    // Every mutation and command is in the audit log.
    let audit = api
        .list_audit_log(v1::ListAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<(&str, &str, &str)> = audit
        .items
        .iter()
        .map(|a| (a.action.as_str(), a.target.as_str(), a.result.as_str()))
        .collect();
    for want in [
        ("CreateCluster", "cluster:cluster-1", "ok"),
        ("CreateApplication", "app:default/demo", "ok"),
        ("SyncApplication", "app:default/demo", "ok"),
        ("RefreshApplication", "app:default/demo", "ok"),
    ] {
        assert!(actions.contains(&want), "{want:?} not in {actions:?}");
    }
    assert!(audit.items.iter().all(|a| a.actor == "anonymous"));
    assert!(
        audit
            .items
            .iter()
            .all(|a| a.source.starts_with("127.0.0.1:"))
    );

    // Deleting through the API without cascade removes the app at the
    // edge but leaves its objects in the cluster.
    api.delete_application(v1::DeleteApplicationRequest {
        app: app_ref("default", "demo"),
        cascade: false,
    })
    .await
    .unwrap();
    let client = emulator.client().await.unwrap();
    let crs: kube::Api<edgecd_spoke::crd::Application> =
        kube::Api::namespaced(client.clone(), STATE_NS);
    wait_for("the demo CR to be deleted", async || {
        crs.get_opt("demo").await.ok()?.is_none().then_some(())
    })
    .await;
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), "demo");
    assert!(deployments.get_opt("nginx").await.unwrap().is_some());

    // Created again and synced, then deleted with cascade: its objects go too.
    create_demo(&mut api, repo.url()).await;
    wait_for("demo reported again", async || {
        status(&mut api, "default", "demo").await
    })
    .await;
    let again = api
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: app_ref("default", "demo"),
            sync: Some(v1::SyncCommand::default()),
            ttl: None,
        })
        .await
        .unwrap()
        .into_inner();
    wait_command(&mut api, &again.command_id, v1::CommandOutcome::Succeeded).await;
    api.delete_application(v1::DeleteApplicationRequest {
        app: app_ref("default", "demo"),
        cascade: true,
    })
    .await
    .unwrap();
    wait_for("the demo CR and its Deployment to be deleted", async || {
        let cr_gone = crs.get_opt("demo").await.ok()?.is_none();
        let deployment_gone = deployments.get_opt("nginx").await.ok()?.is_none();
        (cr_gone && deployment_gone).then_some(())
    })
    .await;
    spoke.disconnect().await;
    hub.shutdown().await.unwrap();
}

/// 25 apps on two clusters in two projects, no spoke: filters, sort,
/// pagination and counts, answered by the database.
async fn check_queries(hub: &RunningServer) {
    let mut api = client(hub).await;
    create_cluster(&mut api, "c-eu", &[("region", "eu")]).await;
    create_cluster(&mut api, "c-us", &[("region", "us")]).await;
    api.create_project(v1::CreateProjectRequest {
        project: Some(v1::Project {
            name: "team-a".into(),
            source_repos: vec!["https://git.example.com/*".into()],
            destinations: vec![v1::ProjectDestination {
                all_clusters: true,
                namespace: "*".into(),
                ..v1::ProjectDestination::default()
            }],
            ..v1::Project::default()
        }),
        upsert: false,
    })
    .await
    .unwrap();
    for i in 0..25 {
        let project = if i % 2 == 0 { "team-a" } else { "default" };
        let cluster = if i < 15 { "c-eu" } else { "c-us" };
        let mut labels = HashMap::new();
        if i % 3 == 0 {
            labels.insert("tier".to_owned(), "web".to_owned());
        }
        api.create_application(v1::CreateApplicationRequest {
            meta: Some(v1::ApplicationMeta {
                project: project.into(),
                name: format!("app-{i:02}"),
                labels,
                ..v1::ApplicationMeta::default()
            }),
            spec: Some(spec(
                "https://git.example.com/apps.git",
                "x",
                cluster,
                "web",
            )),
            ..v1::CreateApplicationRequest::default()
        })
        .await
        .unwrap();
    }
    let total = async |api: &mut Client, filter: v1::ApplicationFilter| {
        let page = api
            .list_applications(v1::ListApplicationsRequest {
                filter: Some(filter.clone()),
                page_size: 1000,
                ..v1::ListApplicationsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        let counts = api
            .count_applications(v1::CountApplicationsRequest {
                filter: Some(filter),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.items.len() as u64, counts.total);
        page.items.len()
    };
    let selector = |k: &str, v: &str| {
        Some(v1::LabelSelector {
            match_labels: [(k.to_owned(), v.to_owned())].into(),
            match_expressions: vec![],
        })
    };
    assert_eq!(total(&mut api, v1::ApplicationFilter::default()).await, 25);
    let by_project = v1::ApplicationFilter {
        projects: vec!["team-a".into()],
        ..Default::default()
    };
    assert_eq!(total(&mut api, by_project).await, 13);
    let by_cluster_label = v1::ApplicationFilter {
        cluster_selector: selector("region", "eu"),
        ..Default::default()
    };
    assert_eq!(total(&mut api, by_cluster_label).await, 15);
    let by_app_label = v1::ApplicationFilter {
        app_selector: selector("tier", "web"),
        ..Default::default()
    };
    assert_eq!(total(&mut api, by_app_label).await, 9);
    let combined = v1::ApplicationFilter {
        projects: vec!["team-a".into()],
        cluster_selector: selector("region", "us"),
        app_selector: selector("tier", "web"),
        ..Default::default()
    };
    // team-a (even), c-us (15..25), tier=web (multiple of 3): 18, 24.
    assert_eq!(total(&mut api, combined).await, 2);
    let search = v1::ApplicationFilter {
        search: "APP-1".into(),
        ..Default::default()
    };
    assert_eq!(total(&mut api, search).await, 10);
    let unknown = v1::ApplicationFilter {
        sync: vec![v1::SyncStatusCode::Synced as i32],
        ..Default::default()
    };
    assert_eq!(total(&mut api, unknown).await, 0);

    // Pages of 4, by name descending, walk every app once, in order.
    let mut names = Vec::new();
    let mut token = String::new();
    let mut first_total = None;
    loop {
        let page = api
            .list_applications(v1::ListApplicationsRequest {
                sort: Some(v1::ApplicationSort {
                    field: v1::ApplicationSortField::Name as i32,
                    descending: true,
                }),
                page_size: 4,
                page_token: token.clone(),
                ..v1::ListApplicationsRequest::default()
            })
            .await
            .unwrap()
            .into_inner();
        first_total.get_or_insert(page.total);
        assert!(page.items.len() <= 4);
        names.extend(page.items.into_iter().map(|a| a.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(first_total, Some(25));
    let mut expected: Vec<String> = (0..25).map(|i| format!("app-{i:02}")).collect();
    expected.reverse();
    assert_eq!(names, expected);

    // A cursor is bound to its filter.
    let page = api
        .list_applications(v1::ListApplicationsRequest {
            page_size: 2,
            ..v1::ListApplicationsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = api
        .list_applications(v1::ListApplicationsRequest {
            page_size: 2,
            page_token: page.next_page_token,
            filter: Some(v1::ApplicationFilter {
                projects: vec!["team-a".into()],
                ..Default::default()
            }),
            ..v1::ListApplicationsRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Counts per project for dashboards.
    let counts = api
        .count_applications(v1::CountApplicationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let by_project: HashMap<_, _> = counts
        .by_project
        .iter()
        .map(|b| (b.key.as_str(), b.count))
        .collect();
    assert_eq!(by_project.get("team-a"), Some(&13));
    assert_eq!(by_project.get("default"), Some(&12));

    // The project's policy is enforced on create.
    let err = api
        .create_application(v1::CreateApplicationRequest {
            meta: Some(v1::ApplicationMeta {
                project: "team-a".into(),
                name: "elsewhere".into(),
                ..v1::ApplicationMeta::default()
            }),
            spec: Some(spec("https://github.com/other/repo", "x", "c-eu", "web")),
            ..v1::CreateApplicationRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("team-a"), "{}", err.message());
    // A cluster still targeted by apps cannot be deleted.
    let err = api
        .delete_cluster(v1::DeleteClusterRequest {
            name: "c-eu".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("cluster c-eu"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pagination_and_counts_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(Database::Sqlite(dir.path().join("hub.db"))).await;
    check_queries(&hub).await;
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_pagination_and_counts_on_postgres() {
    let pg = PgServer::start().unwrap();
    let url = pg.create_database().unwrap();
    let hub = start_hub(Database::Postgres(url)).await;
    check_queries(&hub).await;
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_go_away_to_connected_spokes() {
    use edgecd_bench::simspoke::{self, SimSpoke};
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(Database::Sqlite(dir.path().join("hub.db"))).await;
    let mut api = client(&hub).await;
    create_cluster(&mut api, "edge-1", &[]).await;
    let channel = simspoke::channel(&format!("http://{}", hub.grpc_addr())).unwrap();
    let mut spoke = SimSpoke::connect(channel, "edge-1").await.unwrap();
    let shutdown = tokio::spawn(hub.shutdown());
    let error = loop {
        if let Err(error) = spoke.receive().await {
            break error;
        }
    };
    assert!(
        format!("{error:#}").contains("GoAway: this hub replica is shutting down"),
        "{error:#}"
    );
    shutdown.await.unwrap().unwrap();
}

/// `Watch` of application sets: a set applied at the hub is announced as
/// written (and again when its evaluation gives it a status), and its
/// deletion as DELETED with its project and name; a watcher of other
/// kinds hears nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_sets_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let hub = start_hub(Database::Sqlite(dir.path().join("hub.db"))).await;
    let mut api = client(&hub).await;
    create_cluster(&mut api, "c1", &[]).await;
    let (mut sets, _) = watch_kinds(&mut api, &[v1::WatchKind::ApplicationSets]).await;
    let (mut apps_only, _) = watch_kinds(&mut api, &[v1::WatchKind::Applications]).await;

    let yaml = r#"
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  generators:
  - list:
      elements:
      - cluster: c1
  template:
    metadata:
      name: 'web-{{cluster}}'
    spec:
      project: default
      source:
        repoURL: https://git.example.com/web.git
        targetRevision: HEAD
        path: deploy
      destination:
        name: '{{cluster}}'
        namespace: web
"#;
    let applied = api
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    for r in &applied.results {
        assert_ne!(r.action, "refused", "{}: {}", r.source, r.message);
    }
    // Written, then evaluated: the watcher ends up with the generated app.
    let evaluated = wait_for("the set evaluated, on the watch", async || {
        let event = tokio::time::timeout(Duration::from_secs(60), sets.message())
            .await
            .expect("no watch event within a minute")
            .ok()??;
        assert_eq!(event.r#type, v1::WatchEventType::Upserted as i32);
        match event.object {
            Some(v1::watch_event::Object::ApplicationSet(set)) => {
                assert_eq!(
                    (set.project.as_str(), set.name.as_str()),
                    ("default", "web")
                );
                (!set.generated.is_empty()).then_some(set)
            }
            other => panic!("not an application set: {other:?}"),
        }
    })
    .await;
    assert_eq!(evaluated.generated[0].name, "web-c1");

    api.delete_application_set(v1::DeleteApplicationSetRequest {
        project: "default".into(),
        name: "web".into(),
    })
    .await
    .unwrap();
    let deleted = wait_for("the set's deletion, on the watch", async || {
        let event = tokio::time::timeout(Duration::from_secs(60), sets.message())
            .await
            .expect("no watch event within a minute")
            .ok()??;
        (event.r#type == v1::WatchEventType::Deleted as i32).then_some(event)
    })
    .await;
    match deleted.object {
        Some(v1::watch_event::Object::ApplicationSet(set)) => {
            assert_eq!(
                (set.project.as_str(), set.name.as_str()),
                ("default", "web")
            );
        }
        other => panic!("not an application set: {other:?}"),
    }
    // The applications watcher saw the generated app, never a set.
    let app_event = wait_for("the generated app, on the applications watch", async || {
        let event = tokio::time::timeout(Duration::from_secs(60), apps_only.message())
            .await
            .expect("no watch event within a minute")
            .ok()??;
        match event.object {
            Some(v1::watch_event::Object::Application(app)) => Some(app),
            Some(v1::watch_event::Object::ApplicationSet(set)) => {
                panic!("a set on an applications watch: {set:?}")
            }
            _ => None,
        }
    })
    .await;
    assert_eq!(app_event.name, "web-c1");
    hub.shutdown().await.unwrap();
}
