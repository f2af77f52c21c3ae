//! Argo CD's Application fields acted on at the spoke, each scenario run on the Kubernetes API emulator and on a real control plane (`<scenario>::emulator`, `<scenario>::real_cluster`): `ignoreDifferences` (JSON pointers, jq, managers) and `RespectIgnoreDifferences`, `PrunePropagationPolicy=orphan`, `FailOnSharedResource`, `Delete=false`, `Replace=true` and `Validate=false`, `managedNamespaceMetadata`, and the project's `orphanedResources` raising `OrphanedResourceWarning`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use edgecd_core::SyncStatus;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, Destination, IgnoreDifference, ManagedNamespaceMetadata,
    OperationPhase, ResourceKey, SyncPolicy,
};
use edgecd_core::project::{GroupKind, OrphanedResources, ProjectDestination, ProjectSpec};
use edgecd_e2e::harness::{Backend, Leftovers, STATE_NS, SpokeEngine, wait_for};
use edgecd_spoke::cluster::{LiveCluster, Propagation};
use edgecd_spoke::crd::Application;
use edgecd_spoke::sync::{AppTarget, SyncOptions, Termination, compare, sync};
use edgecd_testkit::GitRepo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const LEFTOVERS: Leftovers<'static> = Leftovers {
    namespaces: &[
        "argo-ignore",
        "argo-prune",
        "argo-shared",
        "argo-replace",
        "argo-nsmeta",
        "argo-orphans",
    ],
    crds: &[],
};

/// How long any one expected state may take to appear.
const PATIENCE: Duration = Duration::from_secs(90);

edgecd_e2e::on_both_back_ends!(
    ignored_fields_stay_synced_and_respected_fields_keep_live_values,
    prune_propagation_orphan_leaves_dependents,
    a_shared_resource_fails_the_sync_and_delete_false_keeps_objects,
    replace_true_replaces_objects,
    managed_namespace_metadata_lands_on_the_namespace,
    orphaned_resources_raise_the_condition_unless_ignored,
);

fn target(app: &str, namespace: &str, objects: Vec<Value>) -> AppTarget {
    AppTarget {
        app: format!("default/{app}"),
        app_label: app.into(),
        namespace: namespace.into(),
        revision: "0123456789abcdef".into(),
        objects,
        ..AppTarget::default()
    }
}

fn options() -> SyncOptions {
    SyncOptions {
        prune: true,
        create_namespace: true,
        wave_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(100),
        ..SyncOptions::default()
    }
}

async fn synced(cluster: &LiveCluster, target: &AppTarget, options: &SyncOptions) -> AppTarget {
    let outcome = sync(cluster, target, options, &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    AppTarget {
        inventory: outcome.applied,
        ..target.clone()
    }
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn deployment(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
            }
        }
    })
}

/// A merge patch of `obj` in `namespace` by field manager `manager` (an Update, as a controller or
/// `kubectl edit` sends it).
async fn patch_as<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    manager: &str,
    patch: Value,
) where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(manager.into()),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
}

fn ignore(kind: &str, group: &str, name: &str) -> IgnoreDifference {
    IgnoreDifference {
        group: group.into(),
        kind: kind.into(),
        name: name.into(),
        ..IgnoreDifference::default()
    }
}

async fn ignored_fields_stay_synced_and_respected_fields_keep_live_values(backend: Backend) {
    const NS: &str = "argo-ignore";
    let client = backend.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let mut app = target(
        "ignoring",
        NS,
        vec![
            deployment("web", 2),
            config_map("jq", json!({"a": "1", "b": "2"})),
            config_map("managers", json!({"a": "1"})),
        ],
    );
    app.ignore_differences = vec![
        IgnoreDifference {
            json_pointers: vec!["/spec/replicas".into()],
            ..ignore("Deployment", "apps", "")
        },
        IgnoreDifference {
            jq_path_expressions: vec![".data.b".into()],
            ..ignore("ConfigMap", "", "jq")
        },
        IgnoreDifference {
            managed_fields_managers: vec!["other-controller".into()],
            ..ignore("ConfigMap", "", "managers")
        },
    ];
    let app = synced(&cluster, &app, &options()).await;
    // Controllers settle first (a real Deployment gets its revision annotation).
    eventually_synced(&cluster, &app).await;

    // Drift in ignored fields only: an HPA scales, a controller edits what it owns, b changes.
    patch_as::<Deployment>(&client, NS, "web", "hpa", json!({"spec": {"replicas": 5}})).await;
    patch_as::<ConfigMap>(
        &client,
        NS,
        "jq",
        "kubectl-edit",
        json!({"data": {"b": "edited"}}),
    )
    .await;
    patch_as::<ConfigMap>(
        &client,
        NS,
        "managers",
        "other-controller",
        json!({"data": {"a": "theirs", "x": "added"}}),
    )
    .await;
    let drifted = compare(&cluster, &app).await.unwrap();
    assert_eq!(
        drifted.sync_status(),
        SyncStatus::Synced,
        "{:?}",
        drifted.diffs()
    );
    for diff in drifted.resource_diffs() {
        assert!(!diff.modified, "{}", diff.diff);
        assert!(
            !diff.live_yaml.contains("replicas: 5"),
            "{}",
            diff.live_yaml
        );
        assert!(!diff.live_yaml.contains("edited"), "{}", diff.live_yaml);
        assert!(!diff.live_yaml.contains("theirs"), "{}", diff.live_yaml);
    }

    // A field that is not ignored still counts, and the diff leaves the ignored ones out.
    patch_as::<ConfigMap>(
        &client,
        NS,
        "jq",
        "kubectl-edit",
        json!({"data": {"a": "edited-a"}}),
    )
    .await;
    let out = compare(&cluster, &app).await.unwrap();
    assert_eq!(out.sync_status(), SyncStatus::OutOfSync);
    let diffs = out.diffs();
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(
        diffs[0].1.contains("-  a: edited-a") && !diffs[0].1.contains("b:"),
        "{}",
        diffs[0].1
    );

    // RespectIgnoreDifferences: the sync restores a, and the live replicas and b stay.
    let respect = SyncOptions {
        respect_ignore_differences: true,
        ..options()
    };
    let app = synced(&cluster, &app, &respect).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let web = deployments.get("web").await.unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(5));
    let jq = config_maps.get("jq").await.unwrap().data.unwrap();
    assert_eq!((jq["a"].as_str(), jq["b"].as_str()), ("1", "edited"));
    let managers = config_maps.get("managers").await.unwrap().data.unwrap();
    assert_eq!(managers["a"], "theirs");
    eventually_synced(&cluster, &app).await;

    // Without it, git's values are applied.
    synced(&cluster, &app, &options()).await;
    let web = deployments.get("web").await.unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(2));
    let jq = config_maps.get("jq").await.unwrap().data.unwrap();
    assert_eq!(jq["b"], "2");
}

/// Waits until `app` compares Synced (panics showing the last diffs after a while).
async fn eventually_synced(cluster: &LiveCluster, app: &AppTarget) {
    for _ in 0..100 {
        let comparison = compare(cluster, app).await.unwrap();
        if comparison.sync_status() == SyncStatus::Synced {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let diffs = compare(cluster, app).await.unwrap().diffs();
    panic!("{} not Synced: {diffs:?}", app.app);
}

async fn prune_propagation_orphan_leaves_dependents(backend: Backend) {
    const NS: &str = "argo-prune";
    let client = backend.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let app = target(
        "pruning",
        NS,
        vec![
            config_map("orphaning-owner", json!({})),
            config_map("background-owner", json!({})),
        ],
    );
    let app = synced(&cluster, &app, &options()).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    // Dependents made outside the app, owned by the app's objects.
    for owner in ["orphaning-owner", "background-owner"] {
        let uid = config_maps.get(owner).await.unwrap().metadata.uid.unwrap();
        let dependent: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("{owner}-dependent"), "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}
            ]}
        }))
        .unwrap();
        config_maps
            .create(&PostParams::default(), &dependent)
            .await
            .unwrap();
    }

    // Pruned with PrunePropagationPolicy=orphan: the dependent stays, without its owner reference.
    let without_one = AppTarget {
        objects: vec![config_map("background-owner", json!({}))],
        ..app.clone()
    };
    let orphaning = SyncOptions {
        prune_propagation: Propagation::Orphan,
        ..options()
    };
    let app = synced(&cluster, &without_one, &orphaning).await;
    wait_for("the pruned owner gone", PATIENCE, async || {
        config_maps
            .get_opt("orphaning-owner")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    wait_for("the dependent orphaned", PATIENCE, async || {
        let dependent = config_maps
            .get_opt("orphaning-owner-dependent")
            .await
            .unwrap()?;
        dependent
            .metadata
            .owner_references
            .is_none_or(|refs| refs.is_empty())
            .then_some(())
    })
    .await;

    // Background (edgecd's default): the garbage collector deletes the dependent.
    let empty = AppTarget {
        objects: vec![],
        ..app
    };
    let outcome = sync(&cluster, &empty, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    wait_for("the dependent collected", PATIENCE, async || {
        config_maps
            .get_opt("background-owner-dependent")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        config_maps
            .get_opt("orphaning-owner-dependent")
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_shared_resource_fails_the_sync_and_delete_false_keeps_objects(backend: Backend) {
    const NS: &str = "argo-shared";
    let client = backend.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let mut kept = config_map("kept", json!({"k": "v"}));
    kept["metadata"]["annotations"] =
        json!({"argocd.argoproj.io/sync-options": "Prune=false,Delete=false"});
    let first = target(
        "first",
        NS,
        vec![config_map("shared", json!({"owner": "first"})), kept],
    );
    let first = synced(&cluster, &first, &options()).await;

    let second = target(
        "second",
        NS,
        vec![
            config_map("mine", json!({})),
            config_map("shared", json!({"owner": "second"})),
        ],
    );
    let failing = SyncOptions {
        fail_on_shared_resource: true,
        ..options()
    };
    let outcome = sync(&cluster, &second, &failing, &Termination::default()).await;
    assert_eq!(outcome.phase, OperationPhase::Failed);
    assert!(
        outcome.message.contains("ConfigMap")
            && outcome.message.contains("shared")
            && outcome.message.contains("default/first"),
        "{}",
        outcome.message
    );
    // Nothing was applied: neither the shared object nor the app's own.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    assert!(config_maps.get_opt("mine").await.unwrap().is_none());
    let shared = config_maps.get("shared").await.unwrap();
    assert_eq!(shared.data.unwrap()["owner"], "first");

    // The app is deleted: Delete=false keeps its object, the other one goes.
    for key in &first.inventory {
        cluster.delete_managed(&first.app, key).await.unwrap();
    }
    let key = |name: &str| ResourceKey {
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: NS.into(),
        name: name.into(),
        ..ResourceKey::default()
    };
    assert!(first.inventory.contains(&key("kept")));
    assert!(config_maps.get_opt("kept").await.unwrap().is_some());
    wait_for("the shared object deleted", PATIENCE, async || {
        config_maps
            .get_opt("shared")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

async fn replace_true_replaces_objects(backend: Backend) {
    const NS: &str = "argo-replace";
    let client = backend.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let app = target("replacing", NS, vec![config_map("cfg", json!({"a": "1"}))]);
    let app = synced(&cluster, &app, &options()).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    patch_as::<ConfigMap>(
        &client,
        NS,
        "cfg",
        "someone",
        json!({"data": {"extra": "x"}}),
    )
    .await;

    // Server-side apply leaves another manager's field alone…
    let app = synced(&cluster, &app, &options()).await;
    let data = config_maps.get("cfg").await.unwrap().data.unwrap();
    assert_eq!(data.get("extra").map(String::as_str), Some("x"));

    // …a replace (Replace=true, with Validate=false's fieldValidation=Ignore on the way) does not.
    let replacing = SyncOptions {
        replace_objects: true,
        skip_field_validation: true,
        ..options()
    };
    let outcome = sync(&cluster, &app, &replacing, &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    assert_eq!(outcome.resources[0].message, "replaced");
    let cfg = config_maps.get("cfg").await.unwrap();
    let data = cfg.data.clone().unwrap();
    assert_eq!(data, BTreeMap::from([("a".to_owned(), "1".to_owned())]));
    let annotations = cfg.metadata.annotations.unwrap();
    assert!(annotations.contains_key("edgecd.io/tracking-id"));
    // A missing object is created.
    config_maps
        .delete("cfg", &Default::default())
        .await
        .unwrap();
    wait_for("cfg gone", PATIENCE, async || {
        config_maps
            .get_opt("cfg")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    synced(&cluster, &app, &replacing).await;
    assert!(config_maps.get_opt("cfg").await.unwrap().is_some());
    assert_eq!(
        compare(&cluster, &app).await.unwrap().sync_status(),
        SyncStatus::Synced
    );
}

async fn managed_namespace_metadata_lands_on_the_namespace(backend: Backend) {
    const NS: &str = "argo-nsmeta";
    let client = backend.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    let app = target("nsmeta", NS, vec![config_map("cfg", json!({}))]);
    let metadata =
        |labels: &[(&str, &str)], annotations: &[(&str, &str)]| ManagedNamespaceMetadata {
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
    let with = |m| SyncOptions {
        namespace_metadata: Some(m),
        ..options()
    };
    let app = synced(
        &cluster,
        &app,
        &with(metadata(
            &[("team", "edge"), ("tier", "1")],
            &[("owner", "ops")],
        )),
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces.get(NS).await.unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(
        (labels["team"].as_str(), labels["tier"].as_str()),
        ("edge", "1")
    );
    assert_eq!(ns.metadata.annotations.unwrap()["owner"], "ops");

    // Kept in sync: a changed label is changed, a removed label and annotation are removed.
    synced(&cluster, &app, &with(metadata(&[("team", "core")], &[]))).await;
    let ns = namespaces.get(NS).await.unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["team"], "core");
    assert!(!labels.contains_key("tier"));
    assert!(
        !ns.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("owner")
    );
}

async fn orphaned_resources_raise_the_condition_unless_ignored(backend: Backend) {
    const NS: &str = "argo-orphans";
    const PROJECT: &str = "edge-team";
    let spoke = SpokeEngine::start(backend.client().await.unwrap(), "edge-1", PATIENCE)
        .await
        .unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: managed\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("one config map").unwrap();
    let spec = ApplicationSpec {
        project: PROJECT.into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: "app".into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: NS.into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(Default::default()),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    let name = format!("{PROJECT}.orphans");
    spoke
        .apps()
        .create(
            &PostParams::default(),
            &Application::new(&name, STATE_NS, spec),
        )
        .await
        .unwrap();
    let conditions = async |spoke: &SpokeEngine| {
        spoke
            .apps()
            .get(&name)
            .await
            .ok()
            .and_then(|a| a.status)
            .map(|s| s.conditions)
            .unwrap_or_default()
    };
    wait_for("the app Synced", PATIENCE, async || {
        let app = spoke.apps().get(&name).await.ok()?;
        (app.status?.sync.status == SyncStatus::Synced).then_some(())
    })
    .await;

    // The project asks for warnings, ignoring ConfigMaps named keep-*.
    let policy = ProjectSpec {
        source_repos: vec!["*".into()],
        destinations: vec![ProjectDestination {
            clusters: vec!["*".into()],
            namespace: "*".into(),
            ..ProjectDestination::default()
        }],
        orphaned_resources: Some(OrphanedResources {
            warn: Some(true),
            ignore: vec![GroupKind {
                group: String::new(),
                kind: "ConfigMap".into(),
                name: "keep-*".into(),
            }],
        }),
        ..ProjectSpec::default()
    };
    spoke
        .engine
        .policies()
        .update(HashMap::from([(PROJECT.to_owned(), policy)]), false);
    let config_maps: Api<ConfigMap> = Api::namespaced(spoke.cluster.client().clone(), NS);
    let stray = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    config_maps
        .create(&PostParams::default(), &stray("keep-me"))
        .await
        .unwrap();
    // Only ignored objects (and Kubernetes' own, like kube-root-ca.crt on a real cluster): no condition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    spoke.engine.trigger(&name);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let found = conditions(&spoke).await;
    assert!(
        !found.iter().any(|c| c.kind == "OrphanedResourceWarning"),
        "{found:?}"
    );

    config_maps
        .create(&PostParams::default(), &stray("stray"))
        .await
        .unwrap();
    spoke.engine.trigger(&name);
    let message = wait_for("OrphanedResourceWarning", PATIENCE, async || {
        spoke.engine.trigger(&name);
        conditions(&spoke)
            .await
            .into_iter()
            .find(|c| c.kind == "OrphanedResourceWarning")
            .map(|c| c.message)
    })
    .await;
    assert_eq!(
        message,
        "Application has 1 orphaned resources: ConfigMap stray"
    );

    // Gone when the orphan is.
    config_maps
        .delete("stray", &Default::default())
        .await
        .unwrap();
    wait_for("no OrphanedResourceWarning", PATIENCE, async || {
        spoke.engine.trigger(&name);
        (!conditions(&spoke)
            .await
            .iter()
            .any(|c| c.kind == "OrphanedResourceWarning"))
        .then_some(())
    })
    .await;
}
