//! Helm sources end to end on the Kubernetes API emulator, with the real spoke runtime and testkit's helm (`EDGECD_HELM_BIN`): an ApplicationSet at each of three spokes generates an app of the fixture chart `testdata/helm/web` from git with `valueFiles: [values-{{name}}.yaml]`; each cluster renders its own values, and the chart's `.Capabilities.APIVersions.Has` branch differs on the cluster that serves the Widget API; a values change that drops a `required` value gives a ComparisonError naming the template's file and line and leaves the live objects alone. Then the chart packaged into a chart repository on loopback behind basic auth, the credential an Argo CD repository Secret (`type: helm`): refused without it, synced with it.
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), every test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness;
use edgecd_e2e::testdata;
use edgecd_spoke::appset::ApplicationSet;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::runtime::Runtime;
use edgecd_testkit::GitServer;
use edgecd_testkit::chart_repo::{ChartRepoServer, index_repo, package_chart};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, PostParams};
use serde_json::json;

const STATE_NS: &str = "edgecd-system";
const APP_NS: &str = "web";

fn helm_binary() -> Option<PathBuf> {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return None;
    }
    Some(edgecd_testkit::helm::helm_binary().unwrap())
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while tokio::time::Instant::now() < deadline {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A running spoke runtime (stopped when dropped).
struct Spoke {
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// The real spoke runtime for `kubeconfig`, as `edgecd-spoke run --cluster-name NAME --helm-binary HELM`.
async fn start_spoke(kubeconfig: &Path, name: &str, helm: &Path) -> Spoke {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        harness::test_runtime_config(kubeconfig, name, dir.path().join("cache")).unwrap();
    config.engine.helm_binary = helm.to_path_buf();
    config.engine.helm_dir = Some(dir.path().join("cache/helm"));
    let runtime = Runtime::start(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(runtime.run_until(async move {
        let _ = stopped.await;
    }));
    Spoke {
        _stop: stop,
        _dir: dir,
    }
}

async fn synced_healthy(apps: &Api<Application>, name: &str) -> Application {
    wait_for(&format!("{name} Synced and Healthy"), async || {
        let app = apps.get(name).await.ok()?;
        let status = app.status.as_ref()?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(app)
    })
    .await
}

fn widgets() -> ApiResource {
    ApiResource {
        group: "example.edgecd.io".into(),
        version: "v1".into(),
        api_version: "example.edgecd.io/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// Installs the Widget CRD and waits until discovery serves it.
async fn serve_widgets(client: &kube::Client) {
    let crd = edgecd_render::yaml::load_one(
        &std::fs::read_to_string(testdata().join("helm/widget-crd.yaml")).unwrap(),
    )
    .unwrap();
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_json::from_value(crd).unwrap();
    Api::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    wait_for("the Widget API in discovery", async || {
        // A fresh adapter each time: capabilities are cached per adapter.
        let caps = LiveCluster::new(client.clone()).capabilities().await.ok()?;
        caps.api_versions
            .iter()
            .any(|v| v == "example.edgecd.io/v1/Widget")
            .then_some(())
    })
    .await;
}

/// The set each spoke gets: one app per cluster (the spoke's own), values from `values-<cluster>.yaml`.
fn web_set(repo_url: &str) -> ApplicationSet {
    let spec = json!({
        "generators": [{"clusters": {}}],
        "template": {
            "metadata": {"name": "web-{{name}}"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": repo_url,
                    "targetRevision": "HEAD",
                    "path": "charts/web",
                    "helm": {"valueFiles": ["values-{{name}}.yaml"]}
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": APP_NS},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}
            }
        }
    });
    ApplicationSet::new("web", STATE_NS, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicationset_renders_a_chart_per_cluster_with_its_values_and_capabilities() {
    let Some(helm) = helm_binary() else { return };
    let emulator = KubeEmulator::start(EmulatorConfig {
        clusters: 3,
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("fleet").unwrap();
    repo.copy_dir(&testdata().join("helm/web"), "charts/web")
        .unwrap();
    repo.commit("the web chart").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let kubeconfigs = emulator.write_kubeconfigs(dir.path()).unwrap();
    let paris_client = emulator.clusters()[0].client().await.unwrap();
    let tokyo_client = emulator.clusters()[1].client().await.unwrap();
    let lima_client = emulator.clusters()[2].client().await.unwrap();
    // Only tokyo serves the Widget API: the chart renders a Widget there and says so in its ConfigMap.
    serve_widgets(&tokyo_client).await;
    let _paris = start_spoke(&kubeconfigs[0], "paris", &helm).await;
    let _tokyo = start_spoke(&kubeconfigs[1], "tokyo", &helm).await;
    let _lima = start_spoke(&kubeconfigs[2], "lima", &helm).await;
    for client in [&paris_client, &tokyo_client, &lima_client] {
        Api::<ApplicationSet>::namespaced(client.clone(), STATE_NS)
            .create(&PostParams::default(), &web_set(repo.url()))
            .await
            .unwrap();
    }

    let paris_apps: Api<Application> = Api::namespaced(paris_client.clone(), STATE_NS);
    let tokyo_apps: Api<Application> = Api::namespaced(tokyo_client.clone(), STATE_NS);
    let lima_apps: Api<Application> = Api::namespaced(lima_client.clone(), STATE_NS);
    synced_healthy(&paris_apps, "web-paris").await;
    synced_healthy(&tokyo_apps, "web-tokyo").await;
    synced_healthy(&lima_apps, "web-lima").await;
    // lima's values file sets only its region: the chart's defaults fill the rest.
    let lima = Api::<ConfigMap>::namespaced(lima_client.clone(), APP_NS)
        .get("web-lima-config")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(lima["region"], "sa-west");
    assert_eq!(lima["widgets"], "absent");

    let paris_maps: Api<ConfigMap> = Api::namespaced(paris_client.clone(), APP_NS);
    let tokyo_maps: Api<ConfigMap> = Api::namespaced(tokyo_client.clone(), APP_NS);
    let paris = paris_maps
        .get("web-paris-config")
        .await
        .unwrap()
        .data
        .unwrap();
    let tokyo = tokyo_maps
        .get("web-tokyo-config")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(paris["region"], "eu-west");
    assert_eq!(paris["replicas"], "2");
    assert_eq!(paris["namespace"], APP_NS);
    assert_eq!(paris["widgets"], "absent");
    assert_eq!(tokyo["region"], "ap-northeast");
    assert_eq!(tokyo["widgets"], "served");
    assert!(tokyo["kubeVersion"].starts_with("v1."), "{tokyo:?}");
    paris_maps.get("web-paris-extras").await.unwrap();
    let tokyo_widgets: Api<DynamicObject> =
        Api::namespaced_with(tokyo_client.clone(), APP_NS, &widgets());
    assert_eq!(
        tokyo_widgets.get("web-tokyo").await.unwrap().data["spec"]["size"],
        3
    );

    // paris loses its region: helm's `required` fails, named with file and line; nothing live changes.
    let before = paris_maps.get("web-paris-config").await.unwrap().metadata;
    repo.write("charts/web/values-paris.yaml", "replicas: 4\n")
        .unwrap();
    repo.commit("paris without a region").unwrap();
    let condition = wait_for("a ComparisonError on web-paris", async || {
        let status = paris_apps.get("web-paris").await.ok()?.status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "ComparisonError")
    })
    .await;
    assert!(
        condition
            .message
            .contains("web/templates/configmap.yaml:9:13")
            && condition.message.contains("region is required"),
        "{}",
        condition.message
    );
    let after = paris_maps.get("web-paris-config").await.unwrap();
    assert_eq!(after.metadata.resource_version, before.resource_version);
    assert_eq!(after.data.unwrap()["replicas"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_from_a_chart_repository_behind_basic_auth_is_synced_with_a_helm_secret() {
    let Some(helm) = helm_binary() else { return };
    let emulator = KubeEmulator::start(EmulatorConfig {
        clusters: 1,
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let charts = tempfile::tempdir().unwrap();
    let server = ChartRepoServer::start(charts.path(), Some(("reader", "s3cret")))
        .await
        .unwrap();
    let chart = testdata().join("helm/web");
    package_chart(&helm, &chart, "1.0.0", charts.path()).unwrap();
    package_chart(&helm, &chart, "1.1.0", charts.path()).unwrap();
    index_repo(&helm, charts.path(), server.url()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let kubeconfigs = emulator.write_kubeconfigs(dir.path()).unwrap();
    let client = emulator.clusters()[0].client().await.unwrap();
    let _spoke = start_spoke(&kubeconfigs[0], "lima", &helm).await;
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let document = json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": server.url(),
                "chart": "web",
                "targetRevision": "~1.0 || ^1.1",
                "helm": {"releaseName": "shop", "valuesObject": {"region": "sa-east", "replicas": 7}}
            },
            "destination": {"namespace": APP_NS},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    });
    let app: Application = serde_json::from_value(document).unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();

    // Without the credential: the repository's 401, as a ComparisonError.
    let condition = wait_for("a ComparisonError without credentials", async || {
        let status = apps.get("web").await.ok()?.status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "ComparisonError")
    })
    .await;
    assert!(
        condition.message.contains("HTTP 401"),
        "{}",
        condition.message
    );
    assert!(!condition.message.contains("s3cret"));

    // An Argo CD repository Secret of type helm: the chart's highest matching version is synced.
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("charts".into()),
            labels: Some(
                [(
                    "argocd.argoproj.io/secret-type".to_owned(),
                    "repository".to_owned(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                ("type", "helm"),
                ("url", server.url()),
                ("username", "reader"),
                ("password", "s3cret"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect(),
        ),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), STATE_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let synced = synced_healthy(&apps, "web").await;
    assert_eq!(synced.status.unwrap().sync.revision, "1.1.0");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    let data = maps.get("shop-config").await.unwrap().data.unwrap();
    assert_eq!(
        (data["region"].as_str(), data["replicas"].as_str()),
        ("sa-east", "7")
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("web-1.1.0.tgz") && r.authorized && r.status == 200)
    );
}
