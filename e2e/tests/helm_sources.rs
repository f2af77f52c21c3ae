//! Helm sources end to end with the real spoke runtime and testkit's helm (`EDGECD_HELM_BIN`), on the Kubernetes API emulator and on a real API server (`<scenario>::emulator`, `<scenario>::real_cluster`, one cluster each): the fixture chart `testdata/helm/web` from git with a values file renders without its Widget (`.Capabilities.APIVersions.Has`), and renders it once the spoke has synced the Widget CRD (forgetting the capabilities it discovered) and the app is refreshed; a values change that drops a `required` value gives a ComparisonError naming the template's file and line and leaves the live objects alone; the chart packaged into a chart repository on loopback behind basic auth is refused without a credential and synced with an Argo CD repository Secret (`type: helm`).
//!
//! An ApplicationSet at the spoke of each cluster generating the chart's app with `valueFiles: [values-{{name}}.yaml]`, each cluster rendering its own values and only the one serving the Widget API rendering a Widget: on three emulated clusters, and on two real control planes (two, to keep CI's memory and time in bounds).
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), every test says SKIPPED; without a real control plane (neither `EDGECD_REALKUBE_BIN` nor Go), every `real_cluster` test does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness::{
    Backend, Leftovers, RuntimeSpoke, STATE_NS, comparison_error, synced_healthy, wait_for,
};
use edgecd_e2e::testdata;
use edgecd_spoke::appset::ApplicationSet;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::{Application, REFRESH_ANNOTATION};
use edgecd_testkit::chart_repo::{ChartRepoServer, index_repo, package_chart};
use edgecd_testkit::{GitRepo, GitServer};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The namespace the chart is released into.
const APP_NS: &str = "web";
/// The fixture chart's CustomResourceDefinition (`testdata/helm/widget-crd.yaml`).
const WIDGET_CRD: &str = "widgets.example.edgecd.io";
/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the scenarios create, deleted first on a cluster that outlives them (`EDGECD_E2E_KUBECONFIG`).
const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[APP_NS],
    crds: &[WIDGET_CRD],
};

edgecd_e2e::on_both_back_ends!(
    a_chart_from_git_renders_its_widget_once_the_spoke_has_synced_the_widget_crd,
    a_chart_template_error_leaves_live_objects_untouched,
    a_hard_refresh_rediscovers_the_clusters_capabilities,
    a_chart_from_a_chart_repository_behind_basic_auth_is_synced_with_a_helm_secret,
);

fn helm_binary() -> Option<PathBuf> {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return None;
    }
    Some(edgecd_testkit::helm::helm_binary().unwrap())
}

/// An Application CR in the state namespace with `source`, synced automatically into [`APP_NS`].
fn application(name: &str, source: Value) -> Application {
    serde_json::from_value(json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"namespace": APP_NS},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    }))
    .unwrap()
}

/// The chart `charts/web` of `repo` with one values file.
fn web_from_git(repo: &GitRepo, values_file: &str) -> Application {
    application(
        "web",
        json!({
            "repoURL": repo.url(),
            "targetRevision": "HEAD",
            "path": "charts/web",
            "helm": {"valueFiles": [values_file]}
        }),
    )
}

/// A git repository holding the fixture chart at `charts/web` and its CRD at `crds/`.
fn web_repo(server: &GitServer) -> GitRepo {
    let repo = server.create_repo("fleet").unwrap();
    repo.copy_dir(&testdata().join("helm/web"), "charts/web")
        .unwrap();
    repo.write(
        "crds/widget-crd.yaml",
        &std::fs::read_to_string(testdata().join("helm/widget-crd.yaml")).unwrap(),
    )
    .unwrap();
    repo.commit("the web chart and the Widget CRD").unwrap();
    repo
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

/// Waits until discovery serves the Widget API.
async fn widgets_discovered(client: &kube::Client) {
    wait_for("the Widget API in discovery", PATIENCE, async || {
        // A fresh adapter each time: capabilities are cached per adapter.
        let caps = LiveCluster::new(client.clone()).capabilities().await.ok()?;
        caps.api_versions
            .iter()
            .any(|v| v == "example.edgecd.io/v1/Widget")
            .then_some(())
    })
    .await;
}

/// Installs the Widget CRD directly (not through a spoke) and waits until discovery serves it.
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
    widgets_discovered(client).await;
}

/// The chart from git with `values-tokyo.yaml`: the cluster does not serve Widgets, so the chart's ConfigMap
/// says `absent` and no Widget is rendered. The spoke caches the capabilities it discovered (ten minutes) and
/// forgets them when a sync of its own applies CRDs: a second app syncs `testdata/helm/widget-crd.yaml`, and a
/// refresh of the chart's app (`edgecd.io/refresh`) renders it again with the Widget API among the API
/// versions: the ConfigMap says `served` and the Widget is applied.
async fn a_chart_from_git_renders_its_widget_once_the_spoke_has_synced_the_widget_crd(
    backend: Backend,
) {
    let Some(helm) = helm_binary() else { return };
    let server = GitServer::start().unwrap();
    let repo = web_repo(&server);
    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "tokyo", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(
        &PostParams::default(),
        &web_from_git(&repo, "values-tokyo.yaml"),
    )
    .await
    .unwrap();
    let synced = synced_healthy(&apps, "web", PATIENCE).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    let data = maps.get("web-config").await.unwrap().data.unwrap();
    assert_eq!(data["region"], "ap-northeast");
    assert_eq!(data["replicas"], "3");
    assert_eq!(data["namespace"], APP_NS);
    assert!(data["kubeVersion"].starts_with("v1."), "{data:?}");
    assert_eq!(data["widgets"], "absent");
    maps.get("web-extras").await.unwrap();
    let kinds: Vec<&str> = synced
        .status
        .as_ref()
        .unwrap()
        .resources
        .iter()
        .map(|r| r.key.kind.as_str())
        .collect();
    assert!(!kinds.contains(&"Widget"), "{kinds:?}");

    // The spoke installs the CRD (a plain-manifest app): its sync forgets the discovered capabilities.
    let crd_app = application(
        "widget-crd",
        json!({"repoURL": repo.url(), "targetRevision": "HEAD", "path": "crds"}),
    );
    apps.create(&PostParams::default(), &crd_app).await.unwrap();
    synced_healthy(&apps, "widget-crd", PATIENCE).await;
    widgets_discovered(&client).await;

    // Nothing in git changed, so only a refresh renders the chart again, now with the Widget API.
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}})),
    )
    .await
    .unwrap();
    wait_for(
        "the ConfigMap saying widgets are served",
        PATIENCE,
        async || {
            let data = maps.get("web-config").await.ok()?.data?;
            (data["widgets"] == "served").then_some(())
        },
    )
    .await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), APP_NS, &widgets());
    let widget = wait_for("the Widget", PATIENCE, async || {
        widgets.get("web").await.ok()
    })
    .await;
    assert_eq!(widget.data["spec"]["size"], 3);
    // The status written after that sync lists the Widget, Synced and Healthy.
    wait_for(
        "web Synced and Healthy with its Widget",
        PATIENCE,
        async || {
            let status = apps.get("web").await.ok()?.status?;
            (status.sync.status == SyncStatus::Synced
                && status.health.status == Health::Healthy
                && status
                    .resources
                    .iter()
                    .any(|r| r.key.kind == "Widget" && r.key.name == "web"))
            .then_some(())
        },
    )
    .await;
}

/// A CRD that another actor installs (here the test, not the spoke) is seen by the chart at the next hard refresh,
/// not when the spoke's ten-minute cache of capabilities runs out: the ConfigMap says `served`.
async fn a_hard_refresh_rediscovers_the_clusters_capabilities(backend: Backend) {
    let Some(helm) = helm_binary() else { return };
    let server = GitServer::start().unwrap();
    let repo = web_repo(&server);
    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "paris", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(
        &PostParams::default(),
        &web_from_git(&repo, "values-paris.yaml"),
    )
    .await
    .unwrap();
    synced_healthy(&apps, "web", PATIENCE).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    assert_eq!(
        maps.get("web-config").await.unwrap().data.unwrap()["widgets"],
        "absent"
    );
    serve_widgets(&client).await;
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "hard"}}})),
    )
    .await
    .unwrap();
    wait_for(
        "the ConfigMap saying widgets are served",
        PATIENCE,
        async || {
            let data = maps.get("web-config").await.ok()?.data?;
            (data["widgets"] == "served").then_some(())
        },
    )
    .await;
}

/// The chart from git with `values-paris.yaml`, synced; the values file then loses its `region`: helm's
/// `required` fails, the ComparisonError names the template's file and line, and nothing live changes.
async fn a_chart_template_error_leaves_live_objects_untouched(backend: Backend) {
    let Some(helm) = helm_binary() else { return };
    let server = GitServer::start().unwrap();
    let repo = web_repo(&server);
    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "paris", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(
        &PostParams::default(),
        &web_from_git(&repo, "values-paris.yaml"),
    )
    .await
    .unwrap();
    synced_healthy(&apps, "web", PATIENCE).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    let before = maps.get("web-config").await.unwrap();
    assert_eq!(before.data.as_ref().unwrap()["region"], "eu-west");
    assert_eq!(before.data.as_ref().unwrap()["replicas"], "2");
    let extras_before = maps.get("web-extras").await.unwrap().metadata;

    repo.write("charts/web/values-paris.yaml", "replicas: 4\n")
        .unwrap();
    repo.commit("paris without a region").unwrap();
    let condition = comparison_error(&apps, "web", PATIENCE).await;
    assert!(
        condition
            .message
            .contains("web/templates/configmap.yaml:9:13")
            && condition.message.contains("region is required"),
        "{}",
        condition.message
    );
    let after = maps.get("web-config").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data.unwrap()["replicas"], "2");
    let extras_after = maps.get("web-extras").await.unwrap().metadata;
    assert_eq!(
        extras_after.resource_version,
        extras_before.resource_version
    );
    assert!(extras_after.deletion_timestamp.is_none());
}

/// The chart packaged as 1.0.0 and 1.1.0 into a chart repository on loopback behind basic auth: without a
/// credential the repository's 401 is a ComparisonError (the password nowhere in it); with an Argo CD
/// repository Secret of type helm the highest version the range accepts is synced with the inline values.
async fn a_chart_from_a_chart_repository_behind_basic_auth_is_synced_with_a_helm_secret(
    backend: Backend,
) {
    let Some(helm) = helm_binary() else { return };
    let charts = tempfile::tempdir().unwrap();
    let server = ChartRepoServer::start(charts.path(), Some(("reader", "s3cret")))
        .await
        .unwrap();
    let chart = testdata().join("helm/web");
    package_chart(&helm, &chart, "1.0.0", charts.path()).unwrap();
    package_chart(&helm, &chart, "1.1.0", charts.path()).unwrap();
    index_repo(&helm, charts.path(), server.url()).unwrap();

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "lima", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let app = application(
        "web",
        json!({
            "repoURL": server.url(),
            "chart": "web",
            "targetRevision": "~1.0 || ^1.1",
            "helm": {"releaseName": "shop", "valuesObject": {"region": "sa-east", "replicas": 7}}
        }),
    );
    apps.create(&PostParams::default(), &app).await.unwrap();

    // Without the credential: the repository's 401, as a ComparisonError.
    let condition = comparison_error(&apps, "web", PATIENCE).await;
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
    let synced = synced_healthy(&apps, "web", PATIENCE).await;
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

/// One cluster of the ApplicationSet test: its name (the values file it gets), an admin client, and the
/// kubeconfig its spoke runs with.
struct NamedCluster {
    name: &'static str,
    client: kube::Client,
    kubeconfig: PathBuf,
}

/// What `values-<name>.yaml` and the cluster's capabilities make of the chart: region, replicas, widgets.
fn expected(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "paris" => ("eu-west", "2", "absent"),
        "tokyo" => ("ap-northeast", "3", "served"),
        "lima" => ("sa-west", "1", "absent"),
        other => panic!("no values file for {other}"),
    }
}

/// The same ApplicationSet at the spoke of each cluster (only `tokyo` serves the Widget API): each generates its
/// own app with `valueFiles: [values-<cluster>.yaml]` and renders its own values (the chart's defaults filling
/// the rest) with its own capabilities; only tokyo renders a Widget.
async fn applicationset_per_cluster(helm: &std::path::Path, clusters: &[NamedCluster]) {
    let server = GitServer::start().unwrap();
    let repo = web_repo(&server);
    for cluster in clusters.iter().filter(|c| c.name == "tokyo") {
        serve_widgets(&cluster.client).await;
    }
    let mut spokes = Vec::new();
    for cluster in clusters {
        spokes.push(
            RuntimeSpoke::start_with_kubeconfig(
                &cluster.kubeconfig,
                None,
                cluster.name,
                Some(helm),
            )
            .await
            .unwrap(),
        );
        Api::<ApplicationSet>::namespaced(cluster.client.clone(), STATE_NS)
            .create(&PostParams::default(), &web_set(repo.url()))
            .await
            .unwrap();
    }
    for cluster in clusters {
        let apps: Api<Application> = Api::namespaced(cluster.client.clone(), STATE_NS);
        let app = format!("web-{}", cluster.name);
        let synced = synced_healthy(&apps, &app, PATIENCE).await;
        let data = Api::<ConfigMap>::namespaced(cluster.client.clone(), APP_NS)
            .get(&format!("{app}-config"))
            .await
            .unwrap()
            .data
            .unwrap();
        let (region, replicas, served) = expected(cluster.name);
        assert_eq!(
            (
                data["region"].as_str(),
                data["replicas"].as_str(),
                data["widgets"].as_str()
            ),
            (region, replicas, served),
            "{}: {data:?}",
            cluster.name
        );
        assert_eq!(data["namespace"], APP_NS);
        assert!(data["kubeVersion"].starts_with("v1."), "{data:?}");
        Api::<ConfigMap>::namespaced(cluster.client.clone(), APP_NS)
            .get(&format!("{app}-extras"))
            .await
            .unwrap();
        let has_widget = synced
            .status
            .as_ref()
            .unwrap()
            .resources
            .iter()
            .any(|r| r.key.kind == "Widget");
        assert_eq!(has_widget, cluster.name == "tokyo", "{}", cluster.name);
        if cluster.name == "tokyo" {
            let widgets: Api<DynamicObject> =
                Api::namespaced_with(cluster.client.clone(), APP_NS, &widgets());
            let widget = wait_for("tokyo's Widget", PATIENCE, async || {
                widgets.get(&app).await.ok()
            })
            .await;
            assert_eq!(widget.data["spec"]["size"], 3);
        }
    }
    drop(spokes);
}

/// Three emulated clusters.
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
    let dir = tempfile::tempdir().unwrap();
    let kubeconfigs = emulator.write_kubeconfigs(dir.path()).unwrap();
    let mut clusters = Vec::new();
    for (i, name) in ["paris", "tokyo", "lima"].into_iter().enumerate() {
        clusters.push(NamedCluster {
            name,
            client: emulator.clusters()[i].client().await.unwrap(),
            kubeconfig: kubeconfigs[i].clone(),
        });
    }
    applicationset_per_cluster(&helm, &clusters).await;
}

/// Two real control planes, one serving the Widget API (two, not three, to keep CI's memory and time in bounds;
/// the third cluster's values add nothing the emulator test does not show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applicationset_renders_a_chart_per_real_cluster_with_its_values_and_capabilities() {
    let Some(helm) = helm_binary() else { return };
    if std::env::var_os("EDGECD_REALKUBE_BIN").is_none()
        && !edgecd_testkit::realkube::go_available()
    {
        eprintln!(
            "SKIPPED: Go is not installed, so the real control plane (testkit/realkube) cannot be built"
        );
        return;
    }
    let (paris, tokyo) = tokio::join!(
        tokio::task::spawn_blocking(edgecd_testkit::RealCluster::start),
        tokio::task::spawn_blocking(edgecd_testkit::RealCluster::start),
    );
    let (paris, tokyo) = (paris.unwrap().unwrap(), tokyo.unwrap().unwrap());
    let clusters = [
        NamedCluster {
            name: "paris",
            client: paris.client().await.unwrap(),
            kubeconfig: paris.kubeconfig_path().to_path_buf(),
        },
        NamedCluster {
            name: "tokyo",
            client: tokyo.client().await.unwrap(),
            kubeconfig: tokyo.kubeconfig_path().to_path_buf(),
        },
    ];
    applicationset_per_cluster(&helm, &clusters).await;
}
