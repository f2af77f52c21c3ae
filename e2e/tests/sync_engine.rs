//! The spoke's compare/sync engine against the Kubernetes API emulator: the talk's overlay is applied, becomes Synced and Healthy, drift is detected and healed, dropped objects are pruned, a failing image reports Degraded, and the sync options work: selected resources, out-of-sync only, force (replace).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use edgecd_core::app::OperationPhase;
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::testdata;
use edgecd_render::{RenderOptions, Value};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::SyncResource;
use edgecd_spoke::sync::{AppTarget, SyncOptions, Termination, compare, sync};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the talk's demo repository in a temp dir.
fn demo_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&testdata().join("talk-demo-repo"), dir.path());
    dir
}

fn render(repo: &Path, path: &str) -> Vec<Value> {
    let options = RenderOptions {
        repo_root: Some(repo.to_path_buf()),
        ..RenderOptions::default()
    };
    edgecd_render::render(&repo.join(path), &options).unwrap()
}

async fn cluster() -> (KubeEmulator, LiveCluster) {
    let emulator = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let client = emulator.client().await.unwrap();
    (emulator, LiveCluster::new(client))
}

fn target(objects: Vec<Value>, inventory: Vec<edgecd_core::app::ResourceKey>) -> AppTarget {
    AppTarget {
        app: "kubecon-demo/demo-cluster1".into(),
        app_label: "kubecon-demo.demo-cluster1".into(),
        namespace: "gitops-kubecon-demo".into(),
        revision: "0123456789abcdef".into(),
        objects,
        inventory,
        ..AppTarget::default()
    }
}

fn options() -> SyncOptions {
    SyncOptions {
        prune: true,
        create_namespace: true,
        wave_timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(50),
        ..SyncOptions::default()
    }
}

async fn wait_for_health(cluster: &LiveCluster, target: &AppTarget, want: Health) -> Health {
    let mut last = Health::Unknown;
    for _ in 0..200 {
        let comparison = compare(cluster, target).await.unwrap();
        last = comparison.health().status;
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test]
async fn talk_overlay_syncs_heals_and_prunes() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let objects = render(repo.path(), "deploy/overlays/cluster1");
    assert_eq!(objects.len(), 2);

    // Nothing there yet: OutOfSync and Missing.
    let first = target(objects.clone(), vec![]);
    let comparison = compare(&cluster, &first).await.unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::OutOfSync);
    assert_eq!(comparison.health().status, Health::Missing);

    let outcome = sync(&cluster, &first, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    assert_eq!(outcome.applied.len(), 2);

    let synced = target(objects.clone(), outcome.applied.clone());
    let comparison = compare(&cluster, &synced).await.unwrap();
    assert_eq!(
        comparison.sync_status(),
        SyncStatus::Synced,
        "{:?}",
        comparison.diffs()
    );
    assert_eq!(
        wait_for_health(&cluster, &synced, Health::Healthy).await,
        Health::Healthy
    );

    // The live objects are those kustomize renders, with our tracking.
    let deployment = comparison
        .resources
        .iter()
        .find(|r| r.key.kind == "Deployment")
        .unwrap();
    let live = deployment.live.as_ref().unwrap();
    assert_eq!(live["metadata"]["namespace"], "gitops-kubecon-demo");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.19.0"
    );
    assert_eq!(
        live["metadata"]["annotations"]["edgecd.io/tracking-id"],
        "kubecon-demo/demo-cluster1:apps/Deployment:gitops-kubecon-demo/nginx"
    );

    // A change in git (replicas) makes it OutOfSync; a sync applies it.
    let mut changed = objects.clone();
    for obj in &mut changed {
        if obj["kind"] == "Deployment" {
            obj["spec"]["replicas"] = 3.into();
        }
    }
    let drifted = target(changed.clone(), outcome.applied.clone());
    let comparison = compare(&cluster, &drifted).await.unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::OutOfSync);
    let diffs = comparison.diffs();
    assert_eq!(diffs.len(), 1);
    assert!(
        diffs[0].1.contains("-  replicas: 1") && diffs[0].1.contains("+  replicas: 3"),
        "{}",
        diffs[0].1
    );
    let outcome = sync(&cluster, &drifted, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    let comparison = compare(&cluster, &drifted).await.unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::Synced);

    // Deleting a managed object in the cluster is detected and healed.
    let service_key = outcome
        .applied
        .iter()
        .find(|k| k.kind == "Service")
        .unwrap()
        .clone();
    assert!(cluster.delete(&service_key).await.unwrap());
    let comparison = compare(&cluster, &drifted).await.unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::OutOfSync);
    assert_eq!(comparison.health().status, Health::Missing);
    let outcome = sync(&cluster, &drifted, &options(), &Termination::default()).await;
    assert_eq!(outcome.phase, OperationPhase::Succeeded);
    assert!(cluster.get(&service_key).await.unwrap().is_some());

    // Removing the Service from git prunes it.
    let without_service: Vec<Value> = changed
        .into_iter()
        .filter(|o| o["kind"] != "Service")
        .collect();
    let pruning = target(without_service.clone(), outcome.applied.clone());
    let comparison = compare(&cluster, &pruning).await.unwrap();
    assert!(
        comparison
            .resources
            .iter()
            .any(|r| r.requires_pruning && r.key.kind == "Service")
    );
    let outcome = sync(&cluster, &pruning, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    assert!(
        outcome
            .resources
            .iter()
            .any(|r| r.status == "Pruned" && r.key.kind == "Service")
    );
    assert!(cluster.get(&service_key).await.unwrap().is_none());
    assert!(!outcome.applied.contains(&service_key));
    let comparison = compare(&cluster, &target(without_service, outcome.applied))
        .await
        .unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::Synced);
}

#[tokio::test]
async fn an_object_of_another_app_is_never_pruned() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let objects = render(repo.path(), "deploy/overlays/cluster1");
    let mine = target(objects.clone(), vec![]);
    let outcome = sync(&cluster, &mine, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    // Another app takes over the Service (same key): our inventory still
    // lists it, but its tracking id names the other app.
    let mut other = target(
        objects
            .into_iter()
            .filter(|o| o["kind"] == "Service")
            .collect(),
        vec![],
    );
    other.app = "team-b/other".into();
    other.app_label = "team-b.other".into();
    assert_eq!(
        sync(&cluster, &other, &options(), &Termination::default())
            .await
            .phase,
        OperationPhase::Succeeded
    );
    let only_deployment: Vec<Value> = render(repo.path(), "deploy/overlays/cluster1")
        .into_iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    let comparison = compare(
        &cluster,
        &target(only_deployment.clone(), outcome.applied.clone()),
    )
    .await
    .unwrap();
    assert!(comparison.resources.iter().all(|r| !r.requires_pruning));
    let outcome = sync(
        &cluster,
        &target(only_deployment, outcome.applied),
        &options(),
        &Termination::default(),
    )
    .await;
    assert!(outcome.resources.iter().all(|r| r.status != "Pruned"));
}

#[tokio::test]
async fn an_image_that_never_becomes_ready_is_degraded() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let mut objects = render(repo.path(), "deploy/overlays/cluster1");
    for obj in &mut objects {
        if obj["kind"] == "Deployment" {
            obj["spec"]["template"]["spec"]["containers"][0]["image"] =
                "registry.example/fail:1".into();
        }
    }
    let app = target(objects, vec![]);
    let outcome = sync(&cluster, &app, &options(), &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    let app = AppTarget {
        inventory: outcome.applied,
        ..app
    };
    assert_eq!(
        wait_for_health(&cluster, &app, Health::Degraded).await,
        Health::Degraded
    );
}

#[tokio::test]
async fn an_unknown_kind_is_a_clear_error_and_nothing_is_applied() {
    let (_emulator, cluster) = cluster().await;
    let mut objects = render(demo_repo().path(), "deploy/overlays/cluster1");
    objects.push(serde_json::json!({"apiVersion": "example.com/v1", "kind": "Cache", "metadata": {"name": "c"}}));
    let app = target(objects, vec![]);
    let comparison = compare(&cluster, &app).await.unwrap();
    assert_eq!(comparison.sync_status(), SyncStatus::OutOfSync);
    assert!(
        comparison.errors[0].contains("Cache c") && comparison.errors[0].contains("example.com/v1"),
        "{:?}",
        comparison.errors
    );
    let outcome = sync(&cluster, &app, &options(), &Termination::default()).await;
    assert_eq!(outcome.phase, OperationPhase::Failed);
    assert!(
        outcome.message.contains("does not know kind Cache"),
        "{}",
        outcome.message
    );
    assert!(
        outcome.resources.is_empty(),
        "nothing applied when the render has an unknown kind"
    );
}

fn selected(kind: &str, name: &str) -> SyncResource {
    SyncResource {
        group: if kind == "Deployment" {
            "apps".into()
        } else {
            String::new()
        },
        kind: kind.into(),
        name: name.into(),
        namespace: String::new(),
    }
}

/// A selective sync applies (and prunes) only the selected resources and keeps the rest of the inventory; a
/// selection the app does not hold fails naming it, and nothing is applied.
#[tokio::test]
async fn a_selective_sync_touches_only_the_selected_resources() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let objects = render(repo.path(), "deploy/overlays/cluster1");
    let app = target(objects.clone(), vec![]);

    let unknown = SyncOptions {
        only: vec![selected("ConfigMap", "nope")],
        ..options()
    };
    let outcome = sync(&cluster, &app, &unknown, &Termination::default()).await;
    assert_eq!(outcome.phase, OperationPhase::Failed);
    assert_eq!(
        outcome.message,
        "selected resources are not part of the application: ConfigMap nope"
    );
    assert!(outcome.resources.is_empty(), "{:?}", outcome.resources);

    let only_service = SyncOptions {
        only: vec![selected("Service", "nginx")],
        ..options()
    };
    let outcome = sync(&cluster, &app, &only_service, &Termination::default()).await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    let touched: Vec<String> = outcome
        .resources
        .iter()
        .map(|r| r.key.kind.clone())
        .collect();
    assert_eq!(touched, ["Service"], "only the Service is applied");
    assert!(
        outcome.message.contains("selected resources"),
        "{}",
        outcome.message
    );
    let comparison = compare(&cluster, &target(objects.clone(), outcome.applied.clone()))
        .await
        .unwrap();
    let states: Vec<(String, SyncStatus)> = comparison
        .resources
        .iter()
        .map(|r| (r.key.kind.clone(), r.sync))
        .collect();
    assert!(
        states.contains(&("Service".into(), SyncStatus::Synced)),
        "{states:?}"
    );
    assert!(
        states.contains(&("Deployment".into(), SyncStatus::OutOfSync)),
        "{states:?}"
    );

    // Now all of it; then a selective sync of the Deployment keeps the Service in the inventory.
    let full = sync(
        &cluster,
        &target(objects.clone(), outcome.applied),
        &options(),
        &Termination::default(),
    )
    .await;
    assert_eq!(full.phase, OperationPhase::Succeeded, "{}", full.message);
    let only_deployment = SyncOptions {
        only: vec![selected("Deployment", "nginx")],
        ..options()
    };
    let partial = sync(
        &cluster,
        &target(objects, full.applied.clone()),
        &only_deployment,
        &Termination::default(),
    )
    .await;
    assert_eq!(
        partial.phase,
        OperationPhase::Succeeded,
        "{}",
        partial.message
    );
    let mut kept: Vec<String> = partial.applied.iter().map(|k| k.kind.clone()).collect();
    kept.sort();
    assert_eq!(
        kept,
        ["Deployment", "Service"],
        "the untouched Service left the inventory"
    );
}

/// With only out-of-sync resources applied, a resource in sync is not applied again.
#[tokio::test]
async fn apply_out_of_sync_only_leaves_synced_resources_alone() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let objects = render(repo.path(), "deploy/overlays/cluster1");
    let first = sync(
        &cluster,
        &target(objects.clone(), vec![]),
        &options(),
        &Termination::default(),
    )
    .await;
    assert_eq!(first.phase, OperationPhase::Succeeded, "{}", first.message);
    // The Service changes in git; the Deployment does not.
    let changed: Vec<Value> = objects
        .into_iter()
        .map(|mut o| {
            if o["kind"] == "Service" {
                o["metadata"]["labels"] = serde_json::json!({"tier": "edge"});
            }
            o
        })
        .collect();
    let app = target(changed, first.applied);
    let comparison = compare(&cluster, &app).await.unwrap();
    let skip = comparison
        .resources
        .iter()
        .filter(|r| r.sync == SyncStatus::Synced)
        .map(|r| r.key.clone())
        .collect();
    let outcome = sync(
        &cluster,
        &app,
        &SyncOptions { skip, ..options() },
        &Termination::default(),
    )
    .await;
    assert_eq!(
        outcome.phase,
        OperationPhase::Succeeded,
        "{}",
        outcome.message
    );
    let touched: Vec<String> = outcome
        .resources
        .iter()
        .map(|r| r.key.kind.clone())
        .collect();
    assert_eq!(touched, ["Service"]);
    assert!(
        outcome.message.contains("only those out of sync"),
        "{}",
        outcome.message
    );
    let after = compare(&cluster, &target(app.objects.clone(), outcome.applied))
        .await
        .unwrap();
    assert_eq!(after.sync_status(), SyncStatus::Synced);
}

/// A change the server refuses in place (a Deployment's selector is immutable) fails a sync; with force the
/// object is deleted and created again.
#[tokio::test]
async fn force_replaces_what_the_server_refuses_to_patch() {
    let (_emulator, cluster) = cluster().await;
    let repo = demo_repo();
    let objects = render(repo.path(), "deploy/overlays/cluster1");
    let first = sync(
        &cluster,
        &target(objects.clone(), vec![]),
        &options(),
        &Termination::default(),
    )
    .await;
    assert_eq!(first.phase, OperationPhase::Succeeded, "{}", first.message);
    let deployment_key = first
        .applied
        .iter()
        .find(|k| k.kind == "Deployment")
        .cloned()
        .unwrap();
    let uid_before =
        cluster.get(&deployment_key).await.unwrap().unwrap()["metadata"]["uid"].clone();
    let relabelled: Vec<Value> = objects
        .into_iter()
        .map(|mut o| {
            if o["kind"] == "Deployment" {
                o["spec"]["selector"]["matchLabels"]["track"] = "stable".into();
                o["spec"]["template"]["metadata"]["labels"]["track"] = "stable".into();
            }
            o
        })
        .collect();
    let app = target(relabelled, first.applied);
    let refused = sync(&cluster, &app, &options(), &Termination::default()).await;
    assert_eq!(refused.phase, OperationPhase::Failed);
    assert!(
        refused.message.contains("field is immutable"),
        "{}",
        refused.message
    );

    let dry = sync(
        &cluster,
        &app,
        &SyncOptions {
            replace: true,
            dry_run: true,
            ..options()
        },
        &Termination::default(),
    )
    .await;
    assert_eq!(dry.phase, OperationPhase::Succeeded, "{}", dry.message);
    assert!(
        dry.resources.iter().any(|r| r
            .message
            .starts_with("(dry run) would be deleted and created again")),
        "{:?}",
        dry.resources
    );
    let forced = sync(
        &cluster,
        &app,
        &SyncOptions {
            replace: true,
            ..options()
        },
        &Termination::default(),
    )
    .await;
    assert_eq!(
        forced.phase,
        OperationPhase::Succeeded,
        "{}",
        forced.message
    );
    let replaced = forced
        .resources
        .iter()
        .find(|r| r.key.kind == "Deployment")
        .unwrap();
    assert!(
        replaced
            .message
            .starts_with("replaced (deleted and created again)"),
        "{}",
        replaced.message
    );
    let live = cluster.get(&deployment_key).await.unwrap().unwrap();
    assert_eq!(live["spec"]["selector"]["matchLabels"]["track"], "stable");
    assert_ne!(
        live["metadata"]["uid"], uid_before,
        "the Deployment was not created again"
    );
}
