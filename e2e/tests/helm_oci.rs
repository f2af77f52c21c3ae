//! A Helm chart from an OCI registry, and OCI artifacts (Argo CD 3.1's OCI sources), end to end with the real spoke runtime, on the Kubernetes API emulator and on a real API server (`<scenario>::emulator`, `<scenario>::real_cluster`): the fixture chart `testdata/helm/web` pushed with the real `helm push` as 1.0.0 and 1.1.0 to testkit's registry on loopback (go-containerregistry's, behind the Bearer token flow); an app with `repoURL: oci://…/charts`, `chart: web` and a range is refused with the registry's 401 without a credential (the password nowhere in it), synced at 1.1.0 with an Argo CD repository Secret (`type: helm`, `enableOCI: "true"`, `url` without a scheme), and synced at 1.2.0 once that is pushed and the app hard-refreshed; a rollback to the entry of 1.1.0 deploys 1.1.0 again. OCI artifacts, behind basic auth with an Argo CD `type: oci` repository Secret: a kustomize tree pushed as 1.0.0 and 1.1.0 (`repoURL: oci://…/team/manifests`, `path: overlays/edge`, `targetRevision: 1.x`) is synced at 1.1.0, and the chart pushed with `helm push` as an artifact (`repoURL: oci://…/charts/web`, `path: .`, helm values) is rendered with helm.
//!
//! Without a helm binary or the registry (neither their `EDGECD_*_BIN` nor Go) every test says SKIPPED;
//! without a real control plane (neither `EDGECD_REALKUBE_BIN` nor Go), every `real_cluster` test does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::harness::{Backend, Leftovers, RuntimeSpoke, STATE_NS, comparison_error, wait_for};
use edgecd_e2e::testdata;
use edgecd_spoke::crd::{Application, REFRESH_ANNOTATION};
use edgecd_testkit::chart_repo::package_chart;
use edgecd_testkit::oci_registry::{OciAuth, OciRegistry, OciRegistryOptions};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

/// The namespace the chart is released into.
const APP_NS: &str = "web-oci";
/// The namespace of the OCI artifact scenario.
const ARTIFACT_NS: &str = "artifact-oci";
/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the scenario creates, deleted first on a cluster that outlives it (`EDGECD_E2E_KUBECONFIG`).
const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[APP_NS, ARTIFACT_NS],
    crds: &[],
};

edgecd_e2e::on_both_back_ends!(
    a_chart_from_an_oci_registry_behind_a_token_is_synced_with_an_enable_oci_secret,
    oci_artifacts_of_manifests_and_of_a_chart_are_synced_with_an_oci_secret,
);

/// helm, or `None` after printing `SKIPPED: …` where it or the registry cannot be had.
fn helm_binary() -> Option<PathBuf> {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return None;
    }
    if !edgecd_testkit::oci_registry::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_OCIREGISTRY_BIN is set nor Go installed, so the test registry cannot be built"
        );
        return None;
    }
    Some(edgecd_testkit::helm::helm_binary().unwrap())
}

/// `web` packaged at `version` and pushed to `charts/` of the registry.
fn push_web(helm: &std::path::Path, registry: &OciRegistry, version: &str) {
    let packages = tempfile::tempdir().unwrap();
    let package =
        package_chart(helm, &testdata().join("helm/web"), version, packages.path()).unwrap();
    let pushed = registry.push(helm, &package, "charts").unwrap();
    assert!(pushed.contains("Pushed:"), "{pushed}");
}

/// An Argo CD repository Secret `registry` holding `data`.
fn repository_secret(data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("registry".into()),
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
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Waits until the app is Synced and Healthy at `revision`.
async fn synced_at(apps: &Api<Application>, name: &str, revision: &str) -> Application {
    wait_for(
        &format!("{name} Synced and Healthy at {revision}"),
        PATIENCE,
        async || {
            let app = apps.get(name).await.ok()?;
            let status = app.status.as_ref()?;
            (status.sync.status == SyncStatus::Synced
                && status.health.status == Health::Healthy
                && status.sync.revision == revision)
                .then_some(app)
        },
    )
    .await
}

/// The chart pushed as 1.0.0 and 1.1.0 to a registry behind the token flow: without a credential the
/// registry's 401 (through its token endpoint) is a ComparisonError without the password; with an Argo CD
/// repository Secret for OCI (`type: helm`, `enableOCI`, `url: 127.0.0.1:PORT/charts`) the highest version
/// the range accepts is synced with the inline values; 1.2.0 pushed later is synced after a hard refresh.
async fn a_chart_from_an_oci_registry_behind_a_token_is_synced_with_an_enable_oci_secret(
    backend: Backend,
) {
    let Some(helm) = helm_binary() else { return };
    let registry = OciRegistry::start(OciRegistryOptions {
        auth: OciAuth::token("reader", "s3cret"),
        ..OciRegistryOptions::default()
    })
    .unwrap();
    push_web(&helm, &registry, "1.0.0");
    push_web(&helm, &registry, "1.1.0");

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "lima", Some(&helm))
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": registry.url("charts"),
                "chart": "web",
                "targetRevision": "1.x",
                "helm": {"releaseName": "shop", "valuesObject": {"region": "sa-east", "replicas": 7}}
            },
            "destination": {"namespace": APP_NS},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();

    // Without a credential: the token endpoint's 401, as a ComparisonError naming the registry.
    let condition = comparison_error(&apps, "web", PATIENCE).await;
    assert!(
        condition.message.contains("HTTP 401")
            && condition.message.contains(&registry.url("charts")),
        "{}",
        condition.message
    );
    assert!(!condition.message.contains("s3cret"));

    // An Argo CD repository Secret for an OCI Helm registry: the chart's highest matching version is synced.
    let secret = repository_secret(&[
        ("type", "helm"),
        ("name", "charts"),
        ("enableOCI", "true"),
        ("url", &format!("{}/charts", registry.address())),
        ("username", "reader"),
        ("password", "s3cret"),
    ]);
    Api::<Secret>::namespaced(client.clone(), STATE_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    synced_at(&apps, "web", "1.1.0").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), APP_NS);
    let data = maps.get("shop-config").await.unwrap().data.unwrap();
    assert_eq!(
        (data["region"].as_str(), data["replicas"].as_str()),
        ("sa-east", "7")
    );
    maps.get("shop-extras").await.unwrap();
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with("/token?") && r.auth == "basic" && r.status == 200),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/v2/") && r.method == "GET")
            .all(|r| r.auth == "none" || r.auth == "bearer"),
        "the password goes to the token endpoint only: {requests:?}"
    );

    // A new version in the range: a hard refresh lists the tags again and the app syncs it.
    push_web(&helm, &registry, "1.2.0");
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {REFRESH_ANNOTATION: "hard"}}})),
    )
    .await
    .unwrap();
    let synced = synced_at(&apps, "web", "1.2.0").await;

    // A rollback to the entry that deployed 1.1.0 deploys 1.1.0 again, not what the range resolves to now.
    let history = synced.status.unwrap().history;
    let first = history
        .iter()
        .find(|h| h.revision == "1.1.0")
        .expect("1.1.0 is in the history");
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({
            "spec": {"syncPolicy": {"automated": null}},
            "operation": {"commandId": "rollback-1", "rollback": {"id": first.id}}
        })),
    )
    .await
    .unwrap();
    let rolled = wait_for("the rollback's history entry", PATIENCE, async || {
        let status = apps.get("web").await.ok()?.status?;
        status
            .history
            .last()
            .filter(|h| h.rollback_of == Some(first.id))
            .cloned()
    })
    .await;
    assert_eq!(rolled.revision, "1.1.0");
}

/// The kustomize tree of the artifact scenario, with the region `region` in its overlay.
fn artifact_tree(region: &str) -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = tree.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write(
        "base/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  region: none\n",
    );
    write("base/kustomization.yaml", "resources:\n- settings.yaml\n");
    write(
        "overlays/edge/kustomization.yaml",
        &format!(
            "resources:\n- ../../base\nnamePrefix: edge-\npatches:\n- patch: |-\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: settings\n    data:\n      region: {region}\n"
        ),
    );
    tree
}

/// A kustomize tree pushed as an OCI artifact (1.0.0 and 1.1.0) and the chart pushed with `helm push`, to a
/// registry behind basic auth, with one Argo CD repository Secret of `type: oci` for the whole registry: the
/// tree's overlay is synced at the highest tag `1.x` accepts, and the chart artifact (`path: .`) is rendered
/// with helm and its values.
async fn oci_artifacts_of_manifests_and_of_a_chart_are_synced_with_an_oci_secret(backend: Backend) {
    let Some(helm) = helm_binary() else { return };
    let registry = OciRegistry::start(OciRegistryOptions {
        auth: OciAuth::basic("reader", "s3cret"),
        ..OciRegistryOptions::default()
    })
    .unwrap();
    let mut manifests = Vec::new();
    for (tag, region) in [("1.0.0", "eu-west"), ("1.1.0", "sa-east")] {
        let tree = artifact_tree(region);
        let layer = edgecd_testkit::oci_registry::tar_gz_dir(tree.path()).unwrap();
        let digest = registry
            .push_artifact(
                "team/manifests",
                tag,
                "application/vnd.oci.image.config.v1+json",
                b"{}",
                &[("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
            )
            .unwrap();
        manifests.push(format!("{tag}@{digest}"));
    }
    push_web(&helm, &registry, "1.0.0");

    let client = backend.client().await.unwrap();
    let _spoke = RuntimeSpoke::start(&backend, "lima", Some(&helm))
        .await
        .unwrap();
    let secret = repository_secret(&[
        ("type", "oci"),
        ("url", &format!("oci://{}", registry.address())),
        ("username", "reader"),
        ("password", "s3cret"),
    ]);
    Api::<Secret>::namespaced(client.clone(), STATE_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    for (name, source) in [
        (
            "manifests",
            json!({"repoURL": registry.url("team/manifests"), "path": "overlays/edge", "targetRevision": "1.x"}),
        ),
        (
            "web-artifact",
            json!({
                "repoURL": registry.url("charts/web"), "path": ".", "targetRevision": "1.0.0",
                "helm": {"releaseName": "art", "valuesObject": {"region": "ap-south", "replicas": 2}}
            }),
        ),
    ] {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "edgecd.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": STATE_NS},
            "spec": {
                "project": "default",
                "source": source,
                "destination": {"namespace": ARTIFACT_NS},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}
            }
        }))
        .unwrap();
        apps.create(&PostParams::default(), &app).await.unwrap();
    }
    // The revision is the tag and the manifest's digest (a tag pushed again is a new revision).
    synced_at(&apps, "manifests", &manifests[1]).await;
    let chart = wait_for("web-artifact Synced and Healthy", PATIENCE, async || {
        let status = apps.get("web-artifact").await.ok()?.status?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(status.sync.revision)
    })
    .await;
    assert!(chart.starts_with("1.0.0@sha256:"), "{chart}");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ARTIFACT_NS);
    let settings = maps.get("edge-settings").await.unwrap().data.unwrap();
    assert_eq!(settings["region"], "sa-east");
    let values = maps.get("art-config").await.unwrap().data.unwrap();
    assert_eq!(
        (values["region"].as_str(), values["replicas"].as_str()),
        ("ap-south", "2")
    );
    // An Application written at the spoke (not through the hub) with a path leaving the artifact is refused
    // before anything is fetched or rendered.
    let escape: Application = serde_json::from_value(json!({
        "apiVersion": "edgecd.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "escape", "namespace": STATE_NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": registry.url("team/manifests"), "path": "../..", "targetRevision": "1.0.0", "helm": {}},
            "destination": {"namespace": ARTIFACT_NS}
        }
    }))
    .unwrap();
    apps.create(&PostParams::default(), &escape).await.unwrap();
    let condition = comparison_error(&apps, "escape", PATIENCE).await;
    assert!(
        condition.message.contains("spec.source.path: "),
        "{}",
        condition.message
    );
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/v2/team/manifests/") && r.method == "GET")
            .all(|r| r.auth == "basic" || r.status == 401),
        "{requests:?}"
    );
}
