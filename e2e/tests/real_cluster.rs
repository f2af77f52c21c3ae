//! The spoke against a real Kubernetes control plane (testkit's `RealCluster`: etcd, kube-apiserver and kube-controller-manager from the Kubernetes Go modules, plus a node simulator): kube-rs works against it, and a plain-YAML app in git syncs to Synced and Healthy with its Deployment rolled out by the real controllers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, ApplicationStatus, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::{GitRepo, RealCluster, realkube};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use tokio::sync::oneshot;

const STATE_NS: &str = "edgecd-system";
const APP_NS: &str = "real-demo";

/// A real control plane, or `None` (with a message) where Go is absent.
fn real_cluster() -> Option<RealCluster> {
    if std::env::var_os("EDGECD_REALKUBE_BIN").is_none() && !realkube::go_available() {
        eprintln!(
            "SKIPPED: Go is not installed, so the real control plane (testkit/realkube) cannot be built"
        );
        return None;
    }
    let cluster = RealCluster::start().unwrap();
    eprintln!(
        "realkube ready in {:?} ({})",
        cluster.started_in(),
        cluster.dir().display()
    );
    Some(cluster)
}

async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

const APP_YAML: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 80
"#;

fn app(repo: &GitRepo) -> Application {
    let spec = ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: "app".into(),
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
    Application::new("real-demo", STATE_NS, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spoke_syncs_a_plain_yaml_app_on_a_real_api_server() {
    let Some(real) = real_cluster() else {
        return;
    };
    let client = real.client().await.unwrap();

    // kube-rs against the real API server: a Namespace and a ConfigMap.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("smoke".into());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "smoke");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("hello".into());
    cm.data = Some([("k".to_owned(), "v".to_owned())].into());
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let live = config_maps.get("hello").await.unwrap();
    assert_eq!(live.data.unwrap()["k"], "v");
    assert!(live.metadata.uid.is_some());
    assert!(live.metadata.managed_fields.is_some());

    // The spoke: its CRDs, its state namespace and an engine.
    let cluster = LiveCluster::new(client.clone());
    edgecd_spoke::runtime::install_crd(&cluster).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(&client, STATE_NS)
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
        poll_interval: Duration::from_millis(500),
        progress_interval: Duration::from_millis(200),
        sync: SyncOptions {
            wave_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
            ..SyncOptions::default()
        },
        ..EngineConfig::default()
    };
    let (engine, triggers) = Engine::new(cluster.clone(), git, config);
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
        let _ = stopped.await;
    }));

    // A plain-YAML app in git.
    let repo = GitRepo::local().unwrap();
    repo.write("app/all.yaml", APP_YAML).unwrap();
    let head = repo.commit("a plain-YAML app").unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(&PostParams::default(), &app(&repo))
        .await
        .unwrap();

    let mut last: Option<ApplicationStatus> = None;
    let status = wait_for(
        "the app Synced and Healthy",
        Duration::from_secs(120),
        async || {
            let status = apps.get("real-demo").await.ok()?.status?;
            last = Some(status.clone());
            (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
                .then_some(status)
        },
    )
    .await;
    assert_eq!(status.sync.revision, head, "{last:?}");

    // What the real controllers made of it: a rolled-out Deployment whose
    // pods (bound and started by the node simulator) are Running.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), APP_NS);
    let web = deployments.get("web").await.unwrap();
    let web_status = web.status.unwrap();
    assert_eq!(web_status.ready_replicas, Some(2));
    assert_eq!(web_status.updated_replicas, Some(2));
    assert_eq!(
        web.metadata.annotations.unwrap()["edgecd.io/tracking-id"],
        "default/real-demo:apps/Deployment:real-demo/web"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), APP_NS);
    let web_pods = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web_pods.items.len(), 2);
    for pod in &web_pods.items {
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some("realkube-node")
        );
    }
    let settings: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    assert_eq!(
        settings.get("settings").await.unwrap().data.unwrap()["greeting"],
        "hello"
    );
}
