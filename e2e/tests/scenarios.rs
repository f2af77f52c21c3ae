//! The spoke's end-to-end scenarios, each run twice: on the Kubernetes API emulator and on a real control plane (testkit's `RealCluster`: etcd, kube-apiserver and kube-controller-manager from the Kubernetes Go modules, plus a node simulator). Test names say which: `<scenario>::emulator`, `<scenario>::real_cluster`.
//!
//! Covered: the talk's repository synced with pods Running, a replica change in git, a deleted
//! Service healed and a removed file pruned; sync waves with CRDs and their custom resources in
//! one app; a failing pod giving Degraded; a broken kustomization leaving live objects alone; a
//! field changed by another field manager (as `kubectl edit` sends it) detected and healed;
//! history and rollback; an app created at the hub reaching the cluster through a spoke linked
//! over mTLS, read live through that link (manifests, events, logs whole and followed, exec with stdin and exit codes once the project allows it), deleted with and without cascade; a Jsonnet directory (extVars, TLAs, a library path) synced,
//! then broken without touching its live objects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, ApplicationStatus, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::harness::{Backend, Leftovers, STATE_NS, SpokeEngine, wait_for};
use edgecd_e2e::testdata;
use edgecd_spoke::crd::Application;
use edgecd_testkit::GitRepo;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::json;

/// The namespace the scenarios' apps deploy to.
const APP_NS: &str = "scenario";
/// How long a wave may take to become healthy.
const WAVE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// What the scenarios create, deleted first on a cluster that outlives
/// them (`EDGECD_E2E_KUBECONFIG`).
const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[APP_NS, "scenario-kept", "scenario-removed"],
    crds: &[
        "widgets.scenario.example.com",
        "gadgets.scenario.example.com",
    ],
};

edgecd_e2e::on_both_back_ends!(
    talk_repo_follows_git_heals_and_prunes,
    waves_apply_crds_before_their_custom_resources,
    a_failing_pod_is_degraded,
    a_broken_kustomization_leaves_live_objects_untouched,
    a_field_changed_by_another_manager_is_detected_and_healed,
    manual_syncs_build_history_and_rollback_restores_a_revision,
    an_app_from_the_hub_reaches_the_cluster_over_mtls_and_is_deleted_with_and_without_cascade,
    a_jsonnet_directory_with_ext_vars_and_tlas_is_synced,
);

fn automated(self_heal: bool) -> Option<AutomatedSync> {
    Some(AutomatedSync {
        prune: true,
        self_heal,
        allow_empty: false,
    })
}

fn app(name: &str, repo: &GitRepo, path: &str, automated: Option<AutomatedSync>) -> Application {
    let spec = ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: APP_NS.into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated,
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    Application::new(name, STATE_NS, spec)
}

/// A spoke on `backend` with the talk's demo repository committed to a
/// local git repository; returns the spoke, the repository and its first
/// commit.
async fn talk_repo_spoke(backend: &Backend) -> (SpokeEngine, GitRepo, String) {
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", WAVE_TIMEOUT)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    let first = repo.commit("the talk's demo").unwrap();
    (spoke, repo, first)
}

/// Creates the Application CR `app` at the spoke.
async fn create(spoke: &SpokeEngine, app: Application) {
    spoke
        .apps()
        .create(&PostParams::default(), &app)
        .await
        .unwrap();
}

async fn app_status(spoke: &SpokeEngine, name: &str) -> Option<ApplicationStatus> {
    spoke.apps().get(name).await.ok()?.status
}

/// Waits for `name` to be Synced to `revision` and Healthy.
async fn synced_healthy(spoke: &SpokeEngine, name: &str, revision: &str) -> ApplicationStatus {
    let mut last = None;
    let what = format!("{name} Synced to {revision} and Healthy");
    wait_for(&what, PATIENCE, async || {
        let status = app_status(spoke, name).await?;
        last = Some(status.clone());
        (status.sync.status == SyncStatus::Synced
            && status.sync.revision == revision
            && status.health.status == Health::Healthy)
            .then_some(status)
    })
    .await
}

fn namespaced<K>(spoke: &SpokeEngine) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(spoke.cluster.client().clone(), APP_NS)
}

/// The app's pods (`app=<label>`), once there are `count` of them and all are Running.
async fn running_pods(spoke: &SpokeEngine, label: &str, count: usize) -> Vec<Pod> {
    let pods: Api<Pod> = namespaced(spoke);
    wait_for(
        &format!("{count} Running pods app={label}"),
        PATIENCE,
        async || {
            let list = pods
                .list(&ListParams::default().labels(&format!("app={label}")))
                .await
                .ok()?;
            let running = list
                .items
                .iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .count();
            (running == count && list.items.len() == count).then_some(list.items)
        },
    )
    .await
}

async fn talk_repo_follows_git_heals_and_prunes(backend: Backend) {
    let (spoke, repo, first) = talk_repo_spoke(&backend).await;
    create(
        &spoke,
        app("nginx", &repo, "deploy/overlays/cluster1", automated(true)),
    )
    .await;
    synced_healthy(&spoke, "nginx", &first).await;

    // What the controllers made of it: a rolled-out Deployment whose pod
    // is Running, owned by a ReplicaSet; the overlay's Service patch.
    let deployments: Api<Deployment> = namespaced(&spoke);
    let nginx = deployments.get("nginx").await.unwrap();
    assert_eq!(nginx.status.unwrap().ready_replicas, Some(1));
    assert_eq!(
        nginx.metadata.annotations.unwrap()["edgecd.io/tracking-id"],
        "default/nginx:apps/Deployment:scenario/nginx"
    );
    let pods = running_pods(&spoke, "nginx", 1).await;
    assert_eq!(
        pods[0].metadata.owner_references.as_ref().unwrap()[0].kind,
        "ReplicaSet"
    );
    let services: Api<Service> = namespaced(&spoke);
    let service = services.get("nginx").await.unwrap();
    assert_eq!(
        service.spec.unwrap().external_ips.unwrap(),
        ["10.62.25.246"]
    );

    // A replica change in git is applied and rolled out.
    let path = "deploy/base/deployment.yaml";
    let base = std::fs::read_to_string(repo.work_path().join(path)).unwrap();
    repo.write(path, &base.replace("replicas: 1", "replicas: 3"))
        .unwrap();
    let second = repo.commit("scale to 3").unwrap();
    synced_healthy(&spoke, "nginx", &second).await;
    running_pods(&spoke, "nginx", 3).await;
    let status = deployments.get("nginx").await.unwrap().status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));

    // A deleted Service is healed: a new object, the same spec.
    let old_uid = services.get("nginx").await.unwrap().metadata.uid;
    services
        .delete("nginx", &DeleteParams::default())
        .await
        .unwrap();
    let healed = wait_for("the deleted Service back", PATIENCE, async || {
        let service = services.get_opt("nginx").await.ok()??;
        (service.metadata.uid != old_uid).then_some(service)
    })
    .await;
    assert_eq!(healed.spec.unwrap().external_ips.unwrap(), ["10.62.25.246"]);
    synced_healthy(&spoke, "nginx", &second).await;

    // A file added to git is applied; removed again, its object is pruned.
    let overlay = "deploy/overlays/cluster1";
    repo.write(
        &format!("{overlay}/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.write(
        &format!("{overlay}/kustomization.yaml"),
        "resources:\n- ../../base\n- extra.yaml\npatchesStrategicMerge:\n- service.yaml\n",
    )
    .unwrap();
    let third = repo.commit("add extra config").unwrap();
    synced_healthy(&spoke, "nginx", &third).await;
    let config_maps: Api<ConfigMap> = namespaced(&spoke);
    assert!(config_maps.get_opt("extra").await.unwrap().is_some());
    repo.remove(&format!("{overlay}/extra.yaml")).unwrap();
    repo.write(
        &format!("{overlay}/kustomization.yaml"),
        "resources:\n- ../../base\npatchesStrategicMerge:\n- service.yaml\n",
    )
    .unwrap();
    let fourth = repo.commit("remove extra config").unwrap();
    wait_for("the extra ConfigMap pruned", PATIENCE, async || {
        config_maps
            .get_opt("extra")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let status = synced_healthy(&spoke, "nginx", &fourth).await;
    assert!(
        !status.resources.iter().any(|r| r.key.name == "extra"),
        "{:?}",
        status.resources
    );
}

const CRD_APP: &[(&str, &str)] = &[
    (
        "app/widget-crd.yaml",
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.scenario.example.com
  annotations:
    argocd.argoproj.io/sync-wave: "-1"
spec:
  group: scenario.example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size:
                  type: integer
"#,
    ),
    (
        "app/widget.yaml",
        r#"apiVersion: scenario.example.com/v1
kind: Widget
metadata:
  name: small
spec:
  size: 1
"#,
    ),
    (
        "app/gadgets.yaml",
        r#"# A CRD and its custom resource in the same wave: the CRD is applied first.
apiVersion: scenario.example.com/v1
kind: Gadget
metadata:
  name: spinner
spec:
  speed: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.scenario.example.com
spec:
  group: scenario.example.com
  scope: Namespaced
  names:
    plural: gadgets
    singular: gadget
    kind: Gadget
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                speed:
                  type: integer
"#,
    ),
    (
        "app/after.yaml",
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: after-the-crs
  annotations:
    argocd.argoproj.io/sync-wave: "1"
data:
  k: v
"#,
    ),
];

fn custom(group_kind_plural: (&str, &str, &str)) -> ApiResource {
    let (group, kind, plural) = group_kind_plural;
    ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: kind.into(),
        plural: plural.into(),
    }
}

async fn waves_apply_crds_before_their_custom_resources(backend: Backend) {
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", WAVE_TIMEOUT)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    for (path, text) in CRD_APP {
        repo.write(path, text).unwrap();
    }
    let head = repo.commit("CRDs and their resources").unwrap();
    create(&spoke, app("crds", &repo, "app", automated(true))).await;
    let status = synced_healthy(&spoke, "crds", &head).await;
    let client = spoke.cluster.client().clone();
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        APP_NS,
        &custom(("scenario.example.com", "Widget", "widgets")),
    );
    let widget = widgets.get("small").await.unwrap();
    assert_eq!(widget.data["spec"]["size"], 1);
    let gadgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        APP_NS,
        &custom(("scenario.example.com", "Gadget", "gadgets")),
    );
    assert_eq!(
        gadgets.get("spinner").await.unwrap().data["spec"]["speed"],
        3
    );
    let waves: Vec<(&str, i32)> = status
        .resources
        .iter()
        .map(|r| (r.key.name.as_str(), r.sync_wave))
        .collect();
    for want in [
        ("widgets.scenario.example.com", -1),
        ("small", 0),
        ("spinner", 0),
        ("after-the-crs", 1),
    ] {
        assert!(waves.contains(&want), "{want:?} not in {waves:?}");
    }
    // The wave after the custom resources ran too.
    let config_maps: Api<ConfigMap> = Api::namespaced(client, APP_NS);
    assert!(
        config_maps
            .get_opt("after-the-crs")
            .await
            .unwrap()
            .is_some()
    );
}

const FAILING_APP: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: crashing
spec:
  replicas: 1
  # The real deployment controller reports ProgressDeadlineExceeded only
  # after this many seconds without progress.
  progressDeadlineSeconds: 5
  selector:
    matchLabels:
      app: crashing
  template:
    metadata:
      labels:
        app: crashing
    spec:
      containers:
        - name: main
          image: registry.example/fail:1
---
apiVersion: v1
kind: Pod
metadata:
  name: lonely
  labels:
    app: lonely
spec:
  containers:
    - name: main
      image: registry.example/fail:1
"#;

async fn a_failing_pod_is_degraded(backend: Backend) {
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", WAVE_TIMEOUT)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write("app/all.yaml", FAILING_APP).unwrap();
    let head = repo.commit("a failing image").unwrap();
    create(&spoke, app("failing", &repo, "app", automated(true))).await;
    let mut last = None;
    let status = wait_for(
        "failing Degraded, with its Pod and Deployment",
        PATIENCE,
        async || {
            let status = app_status(&spoke, "failing").await?;
            last = Some(status.clone());
            let degraded = |kind: &str| {
                status.resources.iter().any(|r| {
                    r.key.kind == kind
                        && r.health.as_ref().map(|h| h.status) == Some(Health::Degraded)
                })
            };
            (status.health.status == Health::Degraded && degraded("Pod") && degraded("Deployment"))
                .then_some(status)
        },
    )
    .await;
    assert_eq!(status.sync.status, SyncStatus::Synced);
    assert_eq!(status.sync.revision, head);
    let message = |kind: &str| {
        status
            .resources
            .iter()
            .find(|r| r.key.kind == kind)
            .and_then(|r| r.health.as_ref())
            .map(|h| h.message.clone())
            .unwrap_or_default()
    };
    assert!(
        message("Pod").contains("CrashLoopBackOff"),
        "{}",
        message("Pod")
    );
    assert!(
        message("Deployment").contains("progress"),
        "{}",
        message("Deployment")
    );
}

async fn a_broken_kustomization_leaves_live_objects_untouched(backend: Backend) {
    let (spoke, repo, first) = talk_repo_spoke(&backend).await;
    create(
        &spoke,
        app("nginx", &repo, "deploy/overlays/cluster1", automated(true)),
    )
    .await;
    synced_healthy(&spoke, "nginx", &first).await;
    let deployments: Api<Deployment> = namespaced(&spoke);
    let services: Api<Service> = namespaced(&spoke);
    let before = (
        deployments.get("nginx").await.unwrap().metadata,
        services.get("nginx").await.unwrap().metadata,
    );

    repo.write(
        "deploy/overlays/cluster1/kustomization.yaml",
        "resources:\n- ../../does-not-exist\n",
    )
    .unwrap();
    repo.commit("break cluster1").unwrap();
    let condition = wait_for("a ComparisonError", PATIENCE, async || {
        let status = app_status(&spoke, "nginx").await?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "ComparisonError")
    })
    .await;
    assert!(
        condition.message.contains("does-not-exist"),
        "{}",
        condition.message
    );
    // A few more reconciles of the broken revision change nothing live.
    let reconciles = spoke.engine.reconcile_count("nginx");
    wait_for("two more reconciles", PATIENCE, async || {
        (spoke.engine.reconcile_count("nginx") >= reconciles + 2).then_some(())
    })
    .await;
    let status = app_status(&spoke, "nginx").await.unwrap();
    assert_eq!(status.sync.status, SyncStatus::Unknown);
    let after = (
        deployments.get("nginx").await.unwrap().metadata,
        services.get("nginx").await.unwrap().metadata,
    );
    for (before, after) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(before.uid, after.uid);
        assert_eq!(before.generation, after.generation);
        assert!(after.deletion_timestamp.is_none());
    }
    running_pods(&spoke, "nginx", 1).await;
}

/// A Jsonnet directory app (Argo CD's `directory.jsonnet`: extVars, one naming Argo CD's build environment, a
/// string and a code TLA, a library path) renders its objects; a syntax error then surfaces as a ComparisonError
/// naming file and line and leaves them.
async fn a_jsonnet_directory_with_ext_vars_and_tlas_is_synced(backend: Backend) {
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", WAVE_TIMEOUT)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write(
        "vendor/cm.libsonnet",
        "{ configMap(name, data):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data } }\n",
    )
    .unwrap();
    repo.write(
        "jsonnet/web/main.jsonnet",
        "local k = import 'cm.libsonnet';\nfunction(name, replicas=1)\n  [k.configMap(name + '-' + i, { env: std.extVar('env'), app: std.extVar('app'), replicas: std.toString(replicas) })\n   for i in std.range(1, 2)]\n",
    )
    .unwrap();
    let first = repo.commit("a jsonnet app").unwrap();
    let mut jsonnet_app = app("web-jsonnet", &repo, "jsonnet/web", automated(true));
    jsonnet_app.spec.source.directory = Some(
        serde_json::from_value(json!({"jsonnet": {
            "extVars": [
                {"name": "env", "value": "edge"},
                {"name": "app", "value": "$ARGOCD_APP_NAME@${ARGOCD_APP_REVISION_SHORT}"},
            ],
            "tlas": [{"name": "name", "value": "web"}, {"name": "replicas", "value": "1 + 2", "code": true}],
            "libs": ["vendor"],
        }}))
        .unwrap(),
    );
    create(&spoke, jsonnet_app).await;
    synced_healthy(&spoke, "web-jsonnet", &first).await;
    let config_maps: Api<ConfigMap> = namespaced(&spoke);
    for name in ["web-1", "web-2"] {
        let data = config_maps.get(name).await.unwrap().data.unwrap();
        assert_eq!(data["env"], "edge");
        assert_eq!(data["app"], format!("web-jsonnet@{}", &first[..7]));
        assert_eq!(data["replicas"], "3");
    }
    let before = config_maps.get("web-1").await.unwrap().metadata;

    repo.write(
        "jsonnet/web/main.jsonnet",
        "function(name, replicas)\n  [ ,\n",
    )
    .unwrap();
    repo.commit("break the jsonnet").unwrap();
    let condition = wait_for("a ComparisonError", PATIENCE, async || {
        let status = app_status(&spoke, "web-jsonnet").await?;
        status
            .conditions
            .into_iter()
            .find(|c| c.kind == "ComparisonError")
    })
    .await;
    assert!(
        condition.message.contains("main.jsonnet:2:"),
        "{}",
        condition.message
    );
    let after = config_maps.get("web-1").await.unwrap().metadata;
    assert_eq!(before.uid, after.uid);
    assert!(after.deletion_timestamp.is_none());
}

/// A ConfigMap, a Deployment of two `nginx:1.27` replicas and its Service.
const WEB_APP: &str = include_str!("../../testdata/web-app/all.yaml");

/// The managed-fields entry of `manager` on `meta`, as JSON text.
fn fields_of(meta: &kube::api::ObjectMeta, manager: &str) -> String {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(manager))
        .filter_map(|m| m.fields_v1.as_ref())
        .map(|f| f.0.to_string())
        .collect()
}

async fn a_field_changed_by_another_manager_is_detected_and_healed(backend: Backend) {
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", WAVE_TIMEOUT)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write("app/all.yaml", WEB_APP).unwrap();
    let head = repo.commit("a web app").unwrap();
    // Automated, but not healing yet: drift is shown, not undone.
    create(&spoke, app("web", &repo, "app", automated(false))).await;
    synced_healthy(&spoke, "web", &head).await;
    running_pods(&spoke, "web", 2).await;
    let deployments: Api<Deployment> = namespaced(&spoke);
    let config_maps: Api<ConfigMap> = namespaced(&spoke);

    // A label added by another manager (as `kubectl label` does) is not
    // drift: git does not set it.
    let label = PatchParams {
        field_manager: Some("kubectl-label".into()),
        ..PatchParams::default()
    };
    deployments
        .patch(
            "web",
            &label,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "video"}}})),
        )
        .await
        .unwrap();
    let reconciles = spoke.engine.reconcile_count("web");
    spoke.engine.trigger("web");
    wait_for("a reconcile after the label", PATIENCE, async || {
        (spoke.engine.reconcile_count("web") > reconciles).then_some(())
    })
    .await;
    let status = app_status(&spoke, "web").await.unwrap();
    assert_eq!(status.sync.status, SyncStatus::Synced, "{status:?}");

    // `kubectl edit` sends a strategic-merge patch as manager kubectl-edit.
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    deployments
        .patch(
            "web",
            &edit,
            &Patch::Strategic(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    config_maps
        .patch(
            "settings",
            &edit,
            &Patch::Strategic(json!({"data": {"greeting": "edited"}})),
        )
        .await
        .unwrap();
    let edited = deployments.get("web").await.unwrap();
    assert!(
        fields_of(&edited.metadata, "kubectl-edit").contains("f:replicas"),
        "{:?}",
        edited.metadata.managed_fields
    );
    spoke.engine.trigger("web");
    // Both edits, seen together: a reconcile started by the Deployment's watch event may come before the
    // ConfigMap's edit.
    let status = wait_for("web OutOfSync with both edits", PATIENCE, async || {
        let status = app_status(&spoke, "web").await?;
        let edited = status
            .resources
            .iter()
            .filter(|r| r.status == SyncStatus::OutOfSync)
            .count();
        (status.sync.status == SyncStatus::OutOfSync && edited >= 2).then_some(status)
    })
    .await;
    let out_of_sync: Vec<(&str, &str)> = status
        .resources
        .iter()
        .filter(|r| r.status == SyncStatus::OutOfSync)
        .map(|r| (r.key.kind.as_str(), r.key.name.as_str()))
        .collect();
    assert_eq!(
        out_of_sync,
        [("ConfigMap", "settings"), ("Deployment", "web")],
        "{:?}",
        status.resources
    );
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );

    // Self-heal on: git's values are applied again and the spoke owns them.
    spoke
        .apps()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"syncPolicy": {"automated": {"selfHeal": true}}}})),
        )
        .await
        .unwrap();
    wait_for("web healed", PATIENCE, async || {
        let status = app_status(&spoke, "web").await?;
        let replicas = deployments.get("web").await.ok()?.spec?.replicas;
        let greeting = config_maps.get("settings").await.ok()?.data?["greeting"].clone();
        (status.sync.status == SyncStatus::Synced && replicas == Some(2) && greeting == "hello")
            .then_some(())
    })
    .await;
    running_pods(&spoke, "web", 2).await;
    let healed = deployments.get("web").await.unwrap();
    assert!(
        fields_of(&healed.metadata, edgecd_spoke::cluster::FIELD_MANAGER).contains("f:replicas"),
        "{:?}",
        healed.metadata.managed_fields
    );
    assert!(
        !fields_of(&healed.metadata, "kubectl-edit").contains("f:replicas"),
        "{:?}",
        healed.metadata.managed_fields
    );
    // The other manager's label is left alone.
    assert_eq!(healed.metadata.labels.unwrap()["team"], "video");
}

async fn manual_syncs_build_history_and_rollback_restores_a_revision(backend: Backend) {
    let (spoke, repo, first) = talk_repo_spoke(&backend).await;
    let api = spoke.apps();
    api.create(
        &PostParams::default(),
        &app("demo", &repo, "deploy/overlays/cluster1", None),
    )
    .await
    .unwrap();
    // Without automated sync, syncs are requested through the CR's
    // `operation` (as the hub link does).
    let request = async |operation: serde_json::Value| {
        api.patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({ "operation": operation })),
        )
        .await
        .unwrap();
    };
    request(json!({"commandId": "c1", "sync": {"prune": true}})).await;
    let status = synced_healthy(&spoke, "demo", &first).await;
    assert_eq!(status.operation_state.as_ref().unwrap().command_id, "c1");

    // A second revision with 3 replicas, synced by request.
    let path = "deploy/base/deployment.yaml";
    let base = std::fs::read_to_string(repo.work_path().join(path)).unwrap();
    repo.write(path, &base.replace("replicas: 1", "replicas: 3"))
        .unwrap();
    let second = repo.commit("scale to 3").unwrap();
    request(json!({"commandId": "c2", "sync": {"prune": true}})).await;
    let status = wait_for("the second sync", PATIENCE, async || {
        let status = app_status(&spoke, "demo").await?;
        (status.history.len() == 2 && status.sync.status == SyncStatus::Synced).then_some(status)
    })
    .await;
    assert_eq!(status.sync.revision, second);
    running_pods(&spoke, "nginx", 3).await;
    assert!(
        api.get("demo").await.unwrap().operation.is_none(),
        "a finished operation is cleared"
    );

    // Roll back to the first history entry: one replica again, and the
    // real controllers scale the ReplicaSet down.
    let first_id = status.history[0].id;
    assert_eq!(status.history[0].revision, first);
    request(json!({"commandId": "c3", "rollback": {"id": first_id}})).await;
    let status = wait_for("the rollback's history entry", PATIENCE, async || {
        let status = app_status(&spoke, "demo").await?;
        (status.history.len() == 3).then_some(status)
    })
    .await;
    assert_eq!(status.history[2].revision, first);
    let op = status.operation_state.unwrap();
    assert_eq!(
        (op.command_id.as_str(), op.revision.as_str()),
        ("c3", first.as_str())
    );
    running_pods(&spoke, "nginx", 1).await;
    let replica_sets: Api<ReplicaSet> = namespaced(&spoke);
    let owned: i32 = replica_sets
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|rs| rs.spec.as_ref()?.replicas)
        .sum();
    assert_eq!(owned, 1);
    // Git still says 3 replicas, so the app is OutOfSync after the rollback.
    let status = wait_for("OutOfSync after the rollback", PATIENCE, async || {
        let status = app_status(&spoke, "demo").await?;
        (status.sync.status == SyncStatus::OutOfSync).then_some(status)
    })
    .await;
    assert_eq!(status.sync.revision, second);

    // A rollback to an unknown entry fails with a clear message.
    request(json!({"commandId": "c4", "rollback": {"id": 99}})).await;
    let op = wait_for("the failed rollback", PATIENCE, async || {
        let op = app_status(&spoke, "demo").await?.operation_state?;
        (op.command_id == "c4").then_some(op)
    })
    .await;
    assert_eq!(op.phase, edgecd_core::app::OperationPhase::Failed);
    assert!(
        op.message.contains("no history entry with id 99"),
        "{}",
        op.message
    );
}

mod hub {
    //! A hub `Server` with its own CA (SQLite), an API client over TLS, and a spoke enrolled with a bootstrap token and linked over mTLS.

    use super::*;
    use edgecd_hub::auth::AuthConfig;
    use edgecd_hub::pki::MasterKey;
    use edgecd_hub::security::SecuritySettings;
    use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
    use edgecd_hub::store::NewCluster;
    use edgecd_proto::v1;
    use edgecd_proto::v1::hub_service_client::HubServiceClient;
    use edgecd_spoke::link::enroll::{self, EnrollParams, IdentityManager, IdentitySecret};
    use edgecd_spoke::link::{self, HubLinkConfig};
    use tonic::transport::Channel;

    pub const CLUSTER: &str = "edge-1";

    pub struct Hub {
        pub server: RunningServer,
        api: HubServiceClient<Channel>,
        token: String,
        address: String,
        _dir: tempfile::TempDir,
    }

    pub async fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let (master, _) = MasterKey::generate().unwrap();
        let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
        let mut security = SecuritySettings::stored(master, vec!["127.0.0.1".into()]);
        security.auth = Some(AuthConfig::default());
        security.initial_admin_password = Some("admin-password".into());
        config.security = Some(security);
        let server = Server::start(config).await.unwrap();
        server
            .store()
            .create_cluster(&NewCluster {
                name: CLUSTER.into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
        let address = format!("https://127.0.0.1:{}", server.grpc_addr().port());
        let pki = server.pki().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem().as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let channel = link::tls::channel(&address, Arc::new(tls), Duration::from_secs(5))
            .await
            .unwrap();
        let mut api = HubServiceClient::new(channel);
        let token = api
            .login(v1::LoginRequest {
                method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
                    username: "admin".into(),
                    password: "admin-password".into(),
                })),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        Hub {
            server,
            api,
            token,
            address,
            _dir: dir,
        }
    }

    impl Hub {
        /// `message` as a request of the admin's session.
        fn request<T>(&self, message: T) -> tonic::Request<T> {
            let mut request = tonic::Request::new(message);
            let bearer = format!("Bearer {}", self.token).parse().unwrap();
            request.metadata_mut().insert("authorization", bearer);
            request
        }

        /// Enrolls `spoke` with a fresh bootstrap token (its identity kept
        /// in a Secret) and opens its link over mTLS.
        pub async fn link(&self, spoke: &mut SpokeEngine) {
            let pki = self.server.pki().unwrap();
            let token = pki.create_bootstrap_token(CLUSTER, None).await.unwrap();
            let secret = IdentitySecret::new(spoke.cluster.client().clone(), STATE_NS);
            let params = EnrollParams {
                hub_address: self.address.clone(),
                bootstrap_token: token.token.clone(),
                ca_hash: None,
                spoke_version: "0.1.0".into(),
                connect_timeout: Duration::from_secs(5),
            };
            let identity = enroll::ensure_identity(&secret, CLUSTER, Some(&params))
                .await
                .unwrap();
            let mut config = HubLinkConfig::new(self.address.clone(), CLUSTER, STATE_NS);
            config.identity = Some(IdentityManager::new(identity, Some(secret)));
            spoke.connect(config).await;
        }

        pub async fn create(&mut self, name: &str, repo: &GitRepo, namespace: &str) {
            let request = self.request(v1::CreateApplicationRequest {
                meta: Some(v1::ApplicationMeta {
                    project: "default".into(),
                    name: name.into(),
                    ..v1::ApplicationMeta::default()
                }),
                spec: Some(v1::ApplicationSpec {
                    source: Some(v1::ApplicationSource {
                        repo_url: repo.url().into(),
                        target_revision: "HEAD".into(),
                        path: "app".into(),
                        ..v1::ApplicationSource::default()
                    }),
                    destination: Some(v1::Destination {
                        cluster: CLUSTER.into(),
                        namespace: namespace.into(),
                        ..v1::Destination::default()
                    }),
                    sync_policy: Some(v1::SyncPolicy {
                        automated: Some(v1::AutomatedSync {
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
            });
            self.api.create_application(request).await.unwrap();
        }

        /// The live manifest of `resource` of app `name`, read through its spoke.
        pub async fn live_manifest(&mut self, name: &str, resource: v1::ResourceKey) -> String {
            let request = self.request(v1::GetLiveManifestRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
                resource: Some(resource),
                managed_fields: false,
            });
            self.api
                .get_live_manifest(request)
                .await
                .unwrap()
                .into_inner()
                .yaml
        }

        /// The logs of `resource` of app `name` through its spoke: the first `lines` lines (a follow is dropped
        /// once they came, which cancels it at the spoke).
        pub async fn logs(
            &mut self,
            name: &str,
            resource: v1::ResourceKey,
            follow: bool,
            lines: usize,
        ) -> Vec<String> {
            let request = self.request(v1::StreamPodLogsRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
                resource: Some(resource),
                follow,
                ..v1::StreamPodLogsRequest::default()
            });
            let mut stream = self
                .api
                .stream_pod_logs(request)
                .await
                .unwrap()
                .into_inner();
            let mut found = Vec::new();
            while found.len() < lines {
                let Some(chunk) = stream.message().await.unwrap() else {
                    break;
                };
                let text = String::from_utf8_lossy(&chunk.data).into_owned();
                found.extend(text.lines().map(|l| format!("{} {l}", chunk.pod)));
            }
            found
        }

        /// Opens exec in the default project to deployers (it is off by default).
        pub async fn allow_exec(&mut self) {
            let request = self.request(v1::GetProjectRequest {
                name: "default".into(),
            });
            let mut project = self.api.get_project(request).await.unwrap().into_inner();
            project.exec_role = v1::ProjectRoleKind::Deployer as i32;
            let request = self.request(v1::UpdateProjectRequest {
                project: Some(project),
                expected_version: 0,
            });
            self.api.update_project(request).await.unwrap();
        }

        /// Runs `command` in a container of `resource` of app `name` through its spoke, with `stdin` written and
        /// closed: (stdout, stderr, exit code).
        pub async fn exec(
            &mut self,
            name: &str,
            resource: v1::ResourceKey,
            command: &[&str],
            stdin: &str,
        ) -> Result<(String, String, i32), tonic::Status> {
            use v1::exec_pod_request::Request;
            let requests = vec![
                Request::Start(v1::ExecStart {
                    app: Some(v1::AppRef {
                        project: "default".into(),
                        name: name.into(),
                    }),
                    resource: Some(resource),
                    command: command.iter().map(|c| (*c).to_owned()).collect(),
                    stdin: true,
                    ..v1::ExecStart::default()
                }),
                Request::Stdin(stdin.as_bytes().to_vec()),
                Request::StdinClosed(true),
            ];
            let requests = futures::stream::iter(
                requests
                    .into_iter()
                    .map(|r| v1::ExecPodRequest { request: Some(r) }),
            );
            let mut output = self
                .api
                .exec_pod(self.request(requests))
                .await?
                .into_inner();
            let (mut stdout, mut stderr) = (String::new(), String::new());
            while let Some(answer) = output.message().await? {
                match answer.response {
                    Some(v1::exec_pod_response::Response::Stdout(data)) => {
                        stdout.push_str(&String::from_utf8_lossy(&data));
                    }
                    Some(v1::exec_pod_response::Response::Stderr(data)) => {
                        stderr.push_str(&String::from_utf8_lossy(&data));
                    }
                    Some(v1::exec_pod_response::Response::Exit(exit)) => {
                        return Ok((stdout, stderr, exit.code));
                    }
                    _ => {}
                }
            }
            Err(tonic::Status::internal(
                "the exec session ended without an exit code",
            ))
        }

        /// The events of `resource` of app `name` (and of its pods), read through its spoke.
        pub async fn live_events(
            &mut self,
            name: &str,
            resource: v1::ResourceKey,
        ) -> Result<Vec<v1::Event>, tonic::Status> {
            let request = self.request(v1::ListLiveEventsRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
                resource: Some(resource),
            });
            Ok(self.api.list_live_events(request).await?.into_inner().items)
        }

        /// The app's status as the hub shows it.
        pub async fn status(&mut self, name: &str) -> Option<v1::ApplicationStatus> {
            let request = self.request(v1::GetApplicationRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
            });
            self.api
                .get_application(request)
                .await
                .ok()?
                .into_inner()
                .status
        }

        pub async fn delete(&mut self, name: &str, cascade: bool) {
            let request = self.request(v1::DeleteApplicationRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
                cascade,
            });
            self.api.delete_application(request).await.unwrap();
        }
    }
}

async fn an_app_from_the_hub_reaches_the_cluster_over_mtls_and_is_deleted_with_and_without_cascade(
    backend: Backend,
) {
    use edgecd_proto::v1;

    let mut hub = hub::start().await;
    let client = backend.client().await.unwrap();
    let mut spoke = SpokeEngine::start(client.clone(), hub::CLUSTER, WAVE_TIMEOUT)
        .await
        .unwrap();
    hub.link(&mut spoke).await;
    let repo = GitRepo::local().unwrap();
    repo.write("app/all.yaml", WEB_APP).unwrap();
    let head = repo.commit("a web app").unwrap();
    hub.create("kept", &repo, "scenario-kept").await;
    hub.create("removed", &repo, "scenario-removed").await;
    for name in ["kept", "removed"] {
        let status = wait_for(
            &format!("{name} Synced and Healthy at the hub"),
            PATIENCE,
            async || {
                let status = hub.status(name).await?;
                let sync = status.sync.as_ref()?;
                (sync.status == v1::SyncStatusCode::Synced as i32
                    && sync.revision == head
                    && status.health.as_ref()?.status == v1::HealthStatusCode::Healthy as i32)
                    .then_some(status)
            },
        )
        .await;
        assert_eq!(status.resources.len(), 3, "{:?}", status.resources);
    }
    let in_ns = |namespace: &str| -> (Api<Deployment>, Api<Pod>) {
        (
            Api::namespaced(client.clone(), namespace),
            Api::namespaced(client.clone(), namespace),
        )
    };
    let (kept, kept_pods) = in_ns("scenario-kept");
    let (removed, removed_pods) = in_ns("scenario-removed");
    for pods in [&kept_pods, &removed_pods] {
        wait_for("two Running pods", PATIENCE, async || {
            let list = pods.list(&ListParams::default()).await.ok()?;
            let running = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            (running == 2).then_some(())
        })
        .await;
    }

    // Live reads through the spoke's mTLS stream, on this back end as on the other: the Deployment's live
    // manifest, a pod's (owned through its ReplicaSet), and the events of the Deployment and its pods.
    let key = |group: &str, kind: &str, name: &str| v1::ResourceKey {
        group: group.into(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: "scenario-kept".into(),
        name: name.into(),
    };
    let manifest = hub
        .live_manifest("kept", key("apps", "Deployment", "web"))
        .await;
    assert!(
        manifest.contains("kind: Deployment") && manifest.contains("name: web"),
        "{manifest}"
    );
    assert!(!manifest.contains("managedFields"), "{manifest}");
    let pod = kept_pods.list(&ListParams::default()).await.unwrap().items[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let pod_manifest = hub.live_manifest("kept", key("", "Pod", &pod)).await;
    assert!(pod_manifest.contains("kind: Pod"), "{pod_manifest}");
    let events = hub
        .live_events("kept", key("apps", "Deployment", "web"))
        .await
        .unwrap();
    assert!(
        events.iter().all(|e| e
            .resource
            .as_ref()
            .is_some_and(|r| (r.kind == "Deployment" && r.name == "web") || r.kind == "Pod")),
        "{events:?}"
    );
    // Logs of the Deployment's pods through the API server's pods/log (the emulator's, or the real server's
    // proxy to the node simulator's kubelet endpoint), whole and followed.
    let logs = hub
        .logs("kept", key("apps", "Deployment", "web"), false, usize::MAX)
        .await;
    assert!(
        logs.iter().filter(|l| l.contains(" started ")).count() == 2,
        "one start line per pod: {logs:?}"
    );
    let followed = hub.logs("kept", key("", "Pod", &pod), true, 5).await;
    assert!(
        followed.iter().any(|l| l.contains(" tick 1")),
        "{followed:?}"
    );
    // Exec through the API server's pods/exec (the emulator's WebSocket, or the real server's proxy to the node
    // simulator's kubelet endpoint): off until the project allows it, then stdin, stdout, stderr and exit codes.
    let off = hub
        .exec("kept", key("", "Pod", &pod), &["echo", "hi"], "")
        .await
        .unwrap_err();
    assert_eq!(off.code(), tonic::Code::PermissionDenied, "{off:?}");
    hub.allow_exec().await;
    let (stdout, _, code) = hub
        .exec(
            "kept",
            key("", "Pod", &pod),
            &["cat"],
            "through the stream\n",
        )
        .await
        .unwrap();
    assert_eq!((stdout.as_str(), code), ("through the stream\n", 0));
    let (stdout, stderr, code) = hub
        .exec(
            "kept",
            key("apps", "Deployment", "web"),
            &["sh", "-c", "hostname; echo no >&2; exit 4"],
            "",
        )
        .await
        .unwrap();
    assert!(stdout.starts_with("web-"), "{stdout}");
    assert_eq!((stderr.as_str(), code), ("no\n", 4));
    // Another app's object is not this app's to read.
    let refused = hub
        .live_events(
            "kept",
            v1::ResourceKey {
                namespace: "scenario-removed".into(),
                ..key("apps", "Deployment", "web")
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");

    // Without cascade: the app goes, its objects stay.
    hub.delete("kept", false).await;
    let crs = spoke.apps();
    wait_for("the kept CR deleted", PATIENCE, async || {
        crs.get_opt("kept").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(kept.get_opt("web").await.unwrap().is_some());

    // With cascade: the objects go too, and with the Deployment its
    // ReplicaSet and pods (the garbage collector's work).
    hub.delete("removed", true).await;
    wait_for("the removed app's objects deleted", PATIENCE, async || {
        let cr_gone = crs.get_opt("removed").await.ok()?.is_none();
        let deployment_gone = removed.get_opt("web").await.ok()?.is_none();
        let pods_gone = removed_pods
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .is_empty();
        (cr_gone && deployment_gone && pods_gone).then_some(())
    })
    .await;
    assert!(kept.get_opt("web").await.unwrap().is_some());
    assert_eq!(
        kept_pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    spoke.disconnect().await;
    hub.server.shutdown().await.unwrap();
}
