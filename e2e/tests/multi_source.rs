//! Multi-source apps end to end with the real spoke runtime and testkit's helm, on the Kubernetes API emulator and on a real API server (`<scenario>::emulator`, `<scenario>::real_cluster`): the fixture chart `testdata/helm/web` from one git repository with its values file from a second (`$values/web/values.yaml`, Argo CD's `ref`), the second repository's `extra/` directory rendered too, and a third source whose ConfigMap names the second's with its namespace (the last source's wins). The app's revision is both commits; a commit to the values repository alone makes it OutOfSync and a sync deploys it; a rollback deploys the first entry's two sources at their revisions; a sync to a given revision is refused for a multi-source app; a `$ref` to no source fails the render naming the file, with the live objects untouched.
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), every test says SKIPPED; without a real control plane, every `real_cluster` test does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edgecd_core::SyncStatus;
use edgecd_core::app::{ApplicationStatus, OperationPhase};
use edgecd_e2e::harness::{Backend, Leftovers, RuntimeSpoke, STATE_NS, wait_for};
use edgecd_e2e::testdata;
use edgecd_spoke::crd::Application;
use edgecd_testkit::GitServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The namespace the app deploys into.
const APP_NS: &str = "web";
/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the scenario creates, deleted first on a cluster that outlives it (`EDGECD_E2E_KUBECONFIG`).
const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[APP_NS],
    crds: &[],
};

edgecd_e2e::on_both_back_ends!(a_chart_with_values_from_a_second_repository);

async fn status(apps: &Api<Application>) -> Option<ApplicationStatus> {
    apps.get("web").await.ok()?.status
}

/// The app's status once `check` holds for it.
async fn status_where(
    apps: &Api<Application>,
    what: &str,
    check: impl Fn(&ApplicationStatus) -> bool,
) -> ApplicationStatus {
    wait_for(what, PATIENCE, async || {
        status(apps).await.filter(|s| check(s))
    })
    .await
}

async fn region(maps: &Api<ConfigMap>) -> String {
    maps.get("web-config").await.unwrap().data.unwrap()["region"].clone()
}

async fn a_chart_with_values_from_a_second_repository(backend: Backend) {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return;
    }
    let helm = edgecd_testkit::helm::helm_binary().unwrap();
    let server = GitServer::start().unwrap();
    let charts = server.create_repo("charts").unwrap();
    charts
        .copy_dir(&testdata().join("helm/web"), "charts/web")
        .unwrap();
    let chart_commit = charts.commit("the web chart").unwrap();
    let values = server.create_repo("values").unwrap();
    values
        .write("web/values.yaml", "region: eu-west\nreplicas: 2\n")
        .unwrap();
    values
        .write(
            "extra/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  from: the values repository\n",
        )
        .unwrap();
    // The same ConfigMap again, in the destination namespace by name: a later source's object replaces it.
    values
        .write(
            "dup/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: web\ndata:\n  from: the last source\n",
        )
        .unwrap();
    let first_values = values
        .commit("values for web, and an extra object")
        .unwrap();

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "paris", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "sources": [
                {"repoURL": charts.url(), "targetRevision": "HEAD", "path": "charts/web",
                 "helm": {"valueFiles": ["$values/web/values.yaml"]}},
                {"repoURL": values.url(), "targetRevision": "HEAD", "ref": "values", "path": "extra"},
                {"repoURL": values.url(), "targetRevision": "HEAD", "path": "dup"}
            ],
            "destination": {"namespace": APP_NS},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}
        }
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    // Without automated sync, syncs are asked for through the CR's `operation` (as the hub link does).
    let request = async |operation: serde_json::Value| {
        apps.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "operation": operation })),
        )
        .await
        .unwrap();
    };
    let both = |values: &str| format!("{chart_commit}, {values}, {values}");

    // Both sources are rendered: the chart with the second repository's values, and its `extra/` directory.
    let first = both(&first_values);
    status_where(&apps, "OutOfSync at both commits", |s| {
        s.sync.status == SyncStatus::OutOfSync && s.sync.revision == first
    })
    .await;
    request(json!({"commandId": "c1", "sync": {"prune": true}})).await;
    let synced = status_where(&apps, "the first sync", |s| {
        s.sync.status == SyncStatus::Synced && s.history.len() == 1
    })
    .await;
    let entry = &synced.history[0];
    assert_eq!(entry.revision, first);
    assert_eq!(
        entry.revisions,
        [
            chart_commit.clone(),
            first_values.clone(),
            first_values.clone()
        ]
    );
    assert_eq!(entry.sources.len(), 3);
    assert_eq!(entry.sources[1].ref_name, "values");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    assert_eq!(region(&maps).await, "eu-west");
    assert_eq!(
        maps.get("web-config").await.unwrap().data.unwrap()["replicas"],
        "2"
    );
    assert_eq!(
        maps.get("extra").await.unwrap().data.unwrap()["from"],
        "the last source"
    );

    // A commit to the values repository alone: OutOfSync at the new pair of commits, deployed by a sync.
    values
        .write("web/values.yaml", "region: us-east\nreplicas: 3\n")
        .unwrap();
    let second_values = values.commit("web moves to us-east").unwrap();
    let second = both(&second_values);
    status_where(&apps, "OutOfSync after the values commit", |s| {
        s.sync.status == SyncStatus::OutOfSync && s.sync.revision == second
    })
    .await;
    request(json!({"commandId": "c2", "sync": {"prune": true}})).await;
    status_where(&apps, "the second sync", |s| {
        s.sync.status == SyncStatus::Synced && s.history.len() == 2
    })
    .await;
    assert_eq!(region(&maps).await, "us-east");

    // A rollback deploys the first entry's sources at their commits; git still says otherwise, so OutOfSync.
    request(json!({"commandId": "c3", "rollback": {"id": entry.id}})).await;
    let rolled = status_where(&apps, "the rollback", |s| s.history.len() == 3).await;
    let back = &rolled.history[2];
    assert_eq!(back.revisions, entry.revisions);
    assert_eq!(back.rollback_of, Some(entry.id));
    assert_eq!(region(&maps).await, "eu-west");
    status_where(&apps, "OutOfSync after the rollback", |s| {
        s.sync.status == SyncStatus::OutOfSync && s.sync.revision == second
    })
    .await;

    // A sync to a given revision names no source: refused, nothing deployed.
    request(json!({"commandId": "c4", "sync": {"revision": first_values}})).await;
    let refused = status_where(&apps, "the refused sync", |s| {
        s.operation_state
            .as_ref()
            .is_some_and(|op| op.command_id == "c4")
    })
    .await;
    let op = refused.operation_state.unwrap();
    assert_eq!(op.phase, OperationPhase::Failed);
    assert!(op.message.contains("multi-source"), "{}", op.message);
    assert_eq!(refused.history.len(), 3);

    // A value file naming a ref no source has: the render fails naming the file; the live objects stay.
    let before = maps.get("web-config").await.unwrap();
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"sources": [
            {"repoURL": charts.url(), "targetRevision": "HEAD", "path": "charts/web",
             "helm": {"valueFiles": ["$config/web/values.yaml"]}},
            {"repoURL": values.url(), "targetRevision": "HEAD", "ref": "values", "path": "extra"}
        ]}})),
    )
    .await
    .unwrap();
    let failed = status_where(&apps, "a ComparisonError", |s| {
        s.sync.status == SyncStatus::Unknown
            && s.conditions.iter().any(|c| c.kind == "ComparisonError")
    })
    .await;
    let message = &failed
        .conditions
        .iter()
        .find(|c| c.kind == "ComparisonError")
        .unwrap()
        .message;
    assert!(
        message.contains("spec.sources[0]") && message.contains("$config/web/values.yaml"),
        "{message}"
    );
    let after = maps.get("web-config").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
}
