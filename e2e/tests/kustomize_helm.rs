//! Kustomize `helmCharts` end to end with the real spoke runtime and testkit's helm, on the Kubernetes API emulator and on a real API server: a kustomization in git inflates the fixture chart `testdata/helm/web` vendored beside it and the same chart from a chart repository on loopback (fetched by the spoke, never written into the checkout), each with `valuesInline` (and, where testkit's OCI registry can be had, the chart pushed to it), and its namespace, labels and a patch land on the chart's objects; a template error fails the render naming the chart's file, with the live objects untouched.
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), every test says SKIPPED; without a real control plane, every `real_cluster` test does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edgecd_core::SyncStatus;
use edgecd_e2e::harness::{Backend, Leftovers, RuntimeSpoke, STATE_NS, wait_for};
use edgecd_e2e::testdata;
use edgecd_spoke::crd::Application;
use edgecd_testkit::GitServer;
use edgecd_testkit::chart_repo::{ChartRepoServer, index_repo, package_chart};
use edgecd_testkit::oci_registry::{OciRegistry, OciRegistryOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The namespace the kustomization puts everything in.
const APP_NS: &str = "shop";
/// The namespace of the OCI scenario.
const OCI_NS: &str = "shop-oci";
/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the scenario creates, deleted first on a cluster that outlives it (`EDGECD_E2E_KUBECONFIG`).
const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[APP_NS, OCI_NS],
    crds: &[],
};

edgecd_e2e::on_both_back_ends!(a_kustomization_inflates_helm_charts);
edgecd_e2e::on_both_back_ends!(a_kustomization_inflates_a_chart_from_an_oci_registry);

fn kustomization(region: &str, repo: &str) -> String {
    format!(
        "namespace: shop\nlabels:\n- pairs:\n    team: edge\nhelmCharts:\n- name: web\n  releaseName: shop\n  valuesInline:\n    region: {region}\n    replicas: 2\n- name: web\n  repo: {repo}\n  version: 1.0.0\n  releaseName: remote\n  valuesInline:\n    region: sa-east\n    replicas: null\npatches:\n- target:\n    kind: ConfigMap\n    name: shop-config\n  patch: |\n    - op: add\n      path: /data/patched\n      value: \"yes\"\n"
    )
}

/// The Application CR `name` for the kustomization `shop/` of `repo_url`, synced automatically into `namespace`.
fn shop_app(name: &str, repo_url: &str, namespace: &str) -> Application {
    serde_json::from_value(json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "HEAD", "path": "shop"},
            "destination": {"namespace": namespace},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    }))
    .unwrap()
}

async fn a_kustomization_inflates_helm_charts(backend: Backend) {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return;
    }
    let helm = edgecd_testkit::helm::helm_binary().unwrap();
    let packages = tempfile::tempdir().unwrap();
    let chart_repo = ChartRepoServer::start(packages.path(), None).await.unwrap();
    package_chart(
        &helm,
        &testdata().join("helm/web"),
        "1.0.0",
        packages.path(),
    )
    .unwrap();
    index_repo(&helm, packages.path(), chart_repo.url()).unwrap();

    let server = GitServer::start().unwrap();
    let repo = server.create_repo("shop").unwrap();
    repo.copy_dir(&testdata().join("helm/web"), "shop/charts/web")
        .unwrap();
    repo.write(
        "shop/kustomization.yaml",
        &kustomization("eu-west", chart_repo.url()),
    )
    .unwrap();
    repo.commit("a kustomization with two helm charts").unwrap();

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "paris", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(
        &PostParams::default(),
        &shop_app("shop", repo.url(), APP_NS),
    )
    .await
    .unwrap();

    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    wait_for("the inflated charts deployed", PATIENCE, async || {
        let status = apps.get("shop").await.ok()?.status?;
        (status.sync.status == SyncStatus::Synced).then_some(())?;
        maps.get("remote-config").await.ok()
    })
    .await;
    // The vendored chart with its inline values, and the kustomization's namespace, labels and patch on top.
    let local = maps.get("shop-config").await.unwrap();
    let data = local.data.clone().unwrap();
    assert_eq!(data["region"], "eu-west");
    assert_eq!(data["replicas"], "2");
    assert_eq!(data["patched"], "yes");
    assert_eq!(local.metadata.labels.unwrap()["team"], "edge");
    assert!(maps.get("shop-extras").await.is_ok());
    // The chart repository's package, fetched by the spoke.
    // Its values.yaml (read from the fetched package) merged with valuesInline as kustomize merges them: the
    // inline `replicas: null` leaves the chart's 1 (passed to helm alone, the null would delete it).
    let remote = maps.get("remote-config").await.unwrap();
    let remote_data = remote.data.unwrap();
    assert_eq!(remote_data["region"], "sa-east");
    assert_eq!(remote_data["replicas"], "1");
    assert_eq!(remote.metadata.labels.unwrap()["team"], "edge");

    // A template error (the required region emptied): a ComparisonError naming the chart's file; live stays.
    let before = local.metadata.resource_version.clone();
    repo.write(
        "shop/kustomization.yaml",
        &kustomization("\"\"", chart_repo.url()),
    )
    .unwrap();
    repo.commit("region dropped").unwrap();
    let message = wait_for("a ComparisonError", PATIENCE, async || {
        let status = apps.get("shop").await.ok()?.status?;
        (status.sync.status == SyncStatus::Unknown).then_some(())?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "ComparisonError")
            .map(|c| c.message)
    })
    .await;
    for part in [
        "kustomization.yaml",
        "helmCharts[0] (web)",
        "web/templates/configmap.yaml",
        "region is required",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    let after = maps.get("shop-config").await.unwrap();
    assert_eq!(after.metadata.resource_version, before);
}

/// The chart pushed with `helm push` to testkit's OCI registry on loopback: `repo: oci://…/charts` and
/// `name: web` is the registry's `charts/web`, fetched by the spoke as an `oci://` Helm source is.
async fn a_kustomization_inflates_a_chart_from_an_oci_registry(backend: Backend) {
    if !edgecd_testkit::helm::available() || !edgecd_testkit::oci_registry::available() {
        eprintln!(
            "SKIPPED: helm or the test OCI registry cannot be had (EDGECD_HELM_BIN/EDGECD_OCIREGISTRY_BIN unset, no Go)"
        );
        return;
    }
    let helm = edgecd_testkit::helm::helm_binary().unwrap();
    let registry = OciRegistry::start(OciRegistryOptions::default()).unwrap();
    let packages = tempfile::tempdir().unwrap();
    let package = package_chart(
        &helm,
        &testdata().join("helm/web"),
        "1.2.0",
        packages.path(),
    )
    .unwrap();
    registry.push(&helm, &package, "charts").unwrap();

    let server = GitServer::start().unwrap();
    let repo = server.create_repo("shop").unwrap();
    repo.write(
        "shop/kustomization.yaml",
        &format!(
            "namespace: shop-oci\nhelmCharts:\n- name: web\n  repo: {}\n  version: \">=1.0.0\"\n  releaseName: oci\n  valuesInline:\n    region: ap-south\n",
            registry.url("charts")
        ),
    )
    .unwrap();
    repo.commit("a chart from an OCI registry").unwrap();

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "tokyo", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    apps.create(
        &PostParams::default(),
        &shop_app("shop-oci", repo.url(), OCI_NS),
    )
    .await
    .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), OCI_NS);
    let deployed = wait_for("the OCI chart deployed", PATIENCE, async || {
        let status = apps.get("shop-oci").await.ok()?.status?;
        (status.sync.status == SyncStatus::Synced).then_some(())?;
        maps.get("oci-config").await.ok()
    })
    .await;
    assert_eq!(deployed.data.unwrap()["region"], "ap-south");
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v2/charts/web/blobs/sha256:") && r.status == 200),
        "{:?}",
        registry.requests()
    );
}
