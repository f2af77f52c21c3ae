//! The identity rule end to end (#19): two emulated clusters, each running a spoke-evaluated ApplicationSet that generates apps with the same names (`nginx`, `guestbook`); the hub shows both clusters' apps as `name@cluster`, filters them by cluster and by name, syncs each on its own cluster through the API, counts them under their sets, and deletes one at its own spoke (its set generates it again) without touching the other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;

const DEADLINE: Duration = Duration::from_secs(120);

/// A spoke-evaluated set generating one app per folder under `edge/apps/`.
fn set_yaml(name: &str, repo: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: {name}
spec:
  generators:
  - git:
      repoURL: {repo}
      revision: HEAD
      directories:
      - path: edge/apps/*
  template:
    metadata:
      name: '{{{{path.basename}}}}'
    spec:
      source:
        repoURL: {repo}
        targetRevision: HEAD
        path: '{{{{path}}}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: default
"
    )
}

async fn app(fleet: &Fleet, name: &str) -> Option<v1::Application> {
    fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", name)),
        })
        .await
        .ok()
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_named_edge_apps_of_two_clusters_are_two_apps() {
    let fleet = Fleet::start(
        FleetConfig {
            clusters: 2,
            poll_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    for app in ["nginx", "guestbook"] {
        fleet
            .repo()
            .write(
                &format!("edge/apps/{app}/configmap.yaml"),
                &format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-config\ndata:\n  app: {app}\n"
                ),
            )
            .unwrap();
    }
    fleet.repo().commit("edge apps").unwrap();
    let repo = fleet.repo().url().to_owned();
    for (set, cluster) in [("addons-1", "cluster-1"), ("addons-2", "cluster-2")] {
        let response = fleet
            .client()
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml: set_yaml(set, &repo),
                cluster: cluster.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        for r in &response.results {
            assert_ne!(r.action, "refused", "{}: {}", r.source, r.message);
        }
    }

    // Both clusters' apps, each named after its cluster.
    let edge = set_of(&[
        "guestbook@cluster-1",
        "guestbook@cluster-2",
        "nginx@cluster-1",
        "nginx@cluster-2",
    ]);
    let autonomous = || v1::ApplicationFilter {
        origins: vec![v1::AppOrigin::Autonomous as i32],
        ..Default::default()
    };
    eventually("the four edge apps", async || {
        (fleet.app_names(autonomous()).await.unwrap() == edge).then_some(())
    })
    .await;
    for name in &edge {
        let shown = app(&fleet, name).await.unwrap();
        let cluster = name.split_once('@').unwrap().1;
        let meta = shown.meta.as_ref().unwrap();
        assert_eq!(meta.name, *name);
        assert_eq!(meta.origin, v1::AppOrigin::Autonomous as i32);
        let owner = meta.owner.as_ref().unwrap();
        assert_eq!(owner.scope, cluster, "{name}");
        let destination = shown.spec.unwrap().destination.unwrap();
        assert_eq!(destination.cluster, cluster, "{name}");
    }
    // The local name alone is no app at the hub.
    assert!(app(&fleet, "nginx").await.is_none());

    // Filters by cluster and by name.
    assert_eq!(
        fleet
            .app_names(v1::ApplicationFilter {
                clusters: vec!["cluster-1".into()],
                ..autonomous()
            })
            .await
            .unwrap(),
        set_of(&["guestbook@cluster-1", "nginx@cluster-1"])
    );
    assert_eq!(
        fleet
            .app_names(v1::ApplicationFilter {
                search: "nginx@".into(),
                ..Default::default()
            })
            .await
            .unwrap(),
        set_of(&["nginx@cluster-1", "nginx@cluster-2"])
    );
    assert_eq!(
        fleet
            .app_names(v1::ApplicationFilter {
                search: "guestbook".into(),
                clusters: vec!["cluster-2".into()],
                ..Default::default()
            })
            .await
            .unwrap(),
        set_of(&["guestbook@cluster-2"])
    );

    // Each set counts its own cluster's apps.
    for (set, cluster) in [("addons-1", "cluster-1"), ("addons-2", "cluster-2")] {
        let got = fleet
            .client()
            .get_application_set(v1::GetApplicationSetRequest {
                project: "default".into(),
                name: set.into(),
            })
            .await
            .unwrap();
        let generated: BTreeSet<String> = got.generated.into_iter().map(|a| a.name).collect();
        assert_eq!(
            generated,
            set_of(&[&format!("guestbook@{cluster}"), &format!("nginx@{cluster}")]),
            "{set}"
        );
    }

    // A sync command reaches the app's own cluster and succeeds there.
    for name in &edge {
        let issued = fleet
            .client()
            .sync_application(v1::SyncApplicationRequest {
                request_id: String::new(),
                app: Some(v1::AppRef::new("default", name)),
                sync: Some(v1::SyncCommand::default()),
                ttl: None,
            })
            .await
            .unwrap();
        let cluster = name.split_once('@').unwrap().1;
        let listed = fleet
            .client()
            .list_commands(v1::ListCommandsRequest {
                app: Some(v1::AppRef::new("default", name)),
                ..Default::default()
            })
            .await
            .unwrap();
        let record = listed
            .items
            .iter()
            .find(|c| {
                c.command
                    .as_ref()
                    .is_some_and(|c| c.id == issued.command_id)
            })
            .unwrap();
        assert_eq!(record.cluster, cluster, "{name}");
        let id = issued.command_id.clone();
        let status = eventually(&format!("the sync of {name}"), async || {
            let status = fleet
                .client()
                .get_command(v1::GetCommandRequest {
                    command_id: id.clone(),
                })
                .await
                .ok()?;
            let outcome = status.outcome;
            (outcome != v1::CommandOutcome::Pending as i32
                && outcome != v1::CommandOutcome::Delivered as i32
                && outcome != v1::CommandOutcome::Running as i32)
                .then_some(status)
        })
        .await;
        assert_eq!(
            status.outcome,
            v1::CommandOutcome::Succeeded as i32,
            "{name}: {}",
            status.message
        );
    }
    for name in &edge {
        eventually(&format!("{name} Synced and Healthy"), async || {
            let status = app(&fleet, name).await?.status?;
            (status.sync.as_ref()?.status == v1::SyncStatusCode::Synced as i32
                && status.health.as_ref()?.status == v1::HealthStatusCode::Healthy as i32)
                .then_some(())
        })
        .await;
    }

    // Deleted on its own: cluster-1's spoke deletes its nginx Application (and, cascading, its
    // ConfigMap); the set there generates it again, as Argo CD's controller re-creates a deleted
    // generated app. The other cluster's nginx is not touched.
    let crs = async |cluster: &str| -> kube::Api<edgecd_spoke::crd::Application> {
        let handle = fleet
            .emulator()
            .unwrap()
            .clusters()
            .iter()
            .find(|c| c.name() == cluster)
            .unwrap();
        kube::Api::namespaced(
            handle.client().await.unwrap(),
            edgecd_e2e::dev::STATE_NAMESPACE,
        )
    };
    let uid = async |cluster: &str| crs(cluster).await.get("nginx").await.unwrap().metadata.uid;
    let (before_1, before_2) = (uid("cluster-1").await, uid("cluster-2").await);
    fleet
        .client()
        .delete_application(v1::DeleteApplicationRequest {
            app: Some(v1::AppRef::new("default", "nginx@cluster-1")),
            cascade: true,
        })
        .await
        .unwrap();
    let cluster_1 = crs("cluster-1").await;
    eventually(
        "cluster-1's nginx deleted (gone, or already generated again)",
        async || match cluster_1.get_opt("nginx").await.ok()? {
            None => Some(()),
            Some(again) => (again.metadata.uid != before_1).then_some(()),
        },
    )
    .await;
    assert_eq!(uid("cluster-2").await, before_2);
    let commands = fleet
        .client()
        .list_commands(v1::ListCommandsRequest {
            app: Some(v1::AppRef::new("default", "nginx@cluster-1")),
            ..Default::default()
        })
        .await
        .unwrap();
    let delete = commands
        .items
        .iter()
        .find(|c| {
            matches!(
                c.command.as_ref().and_then(|c| c.kind.as_ref()),
                Some(v1::command::Kind::Delete(v1::DeleteCommand {
                    cascade: true
                }))
            )
        })
        .expect("a delete command");
    assert_eq!(delete.cluster, "cluster-1");
    assert_eq!(
        delete.status.as_ref().map(|s| s.outcome),
        Some(v1::CommandOutcome::Succeeded as i32),
        "{delete:?}"
    );
    assert!(app(&fleet, "nginx@cluster-2").await.is_some());
    assert!(app(&fleet, "guestbook@cluster-1").await.is_some());

    fleet.shutdown().await;
}

/// A hub app sent to a cluster where an Application of the same name was created at the edge: the spoke never
/// overwrites the edge app; the hub app reports a `NameConflictError` naming both and what to do, its commands are
/// refused with the same reason, and once the edge app is gone the hub app is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_app_never_takes_over_an_edge_app_of_the_same_name() {
    use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination};
    use edgecd_spoke::crd::Application;
    use kube::api::{Api, DeleteParams, PostParams};

    let fleet = Fleet::start(
        FleetConfig {
            clusters: 1,
            poll_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    fleet
        .repo()
        .write(
            "edge/apps/web/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  app: web\n",
        )
        .unwrap();
    fleet.repo().commit("web").unwrap();
    let spec = |revision: &str| ApplicationSpec {
        source: ApplicationSource {
            repo_url: fleet.repo().url().to_owned(),
            path: "edge/apps/web".into(),
            target_revision: revision.into(),
            ..Default::default()
        },
        destination: Destination {
            cluster: "cluster-1".into(),
            namespace: "default".into(),
            ..Default::default()
        },
        ..Default::default()
    };

    // `kubectl apply` of an Application named web at the edge.
    let client = fleet.emulator().unwrap().clusters()[0]
        .client()
        .await
        .unwrap();
    let apps: Api<Application> = Api::namespaced(client, edgecd_e2e::dev::STATE_NAMESPACE);
    let mut edge_spec = spec("HEAD");
    edge_spec.destination = Destination {
        server: "https://kubernetes.default.svc".into(),
        namespace: "default".into(),
        ..Default::default()
    };
    apps.create(
        &PostParams::default(),
        &Application::new("web", edgecd_e2e::dev::STATE_NAMESPACE, edge_spec.clone()),
    )
    .await
    .unwrap();
    eventually("web@cluster-1 at the hub", async || {
        app(&fleet, "web@cluster-1").await
    })
    .await;

    // The hub app default/web for cluster-1.
    fleet
        .client()
        .create_application(v1::CreateApplicationRequest {
            meta: Some(v1::ApplicationMeta {
                project: "default".into(),
                name: "web".into(),
                ..Default::default()
            }),
            spec: Some(edgecd_proto::convert::application_spec(&spec("main"))),
            ..Default::default()
        })
        .await
        .unwrap();
    let condition = eventually("the hub app's NameConflictError", async || {
        let status = app(&fleet, "web").await?.status?;
        status
            .conditions
            .into_iter()
            .find(|c| c.r#type == "NameConflictError")
    })
    .await;
    for part in ["web@cluster-1", "default/web", "Rename"] {
        assert!(condition.message.contains(part), "{}", condition.message);
    }
    // The edge app is untouched: still the edge's, with its own revision.
    let live = apps.get("web").await.unwrap();
    assert_eq!(live.origin(), edgecd_core::app::AppOrigin::Autonomous);
    assert_eq!(live.spec.source.target_revision, "HEAD");
    // A command for the hub app is refused with the reason; the edge app's still runs.
    let issued = fleet
        .client()
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new("default", "web")),
            sync: Some(v1::SyncCommand::default()),
            ttl: None,
        })
        .await
        .unwrap();
    let id = issued.command_id;
    let refused = eventually("the refused command", async || {
        let status = fleet
            .client()
            .get_command(v1::GetCommandRequest {
                command_id: id.clone(),
            })
            .await
            .ok()?;
        (status.outcome == v1::CommandOutcome::Rejected as i32).then_some(status)
    })
    .await;
    assert!(
        refused.message.contains("web@cluster-1"),
        "{}",
        refused.message
    );

    // The edge app is removed at the edge: the hub app is applied.
    apps.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the hub app applied", async || {
        let live = apps.get("web").await.ok()?;
        (live.origin() == edgecd_core::app::AppOrigin::Managed
            && live.spec.source.target_revision == "main")
            .then_some(())
    })
    .await;
    eventually("web@cluster-1 gone and the conflict cleared", async || {
        let hub = app(&fleet, "web").await?;
        let cleared = hub
            .status
            .as_ref()
            .is_none_or(|s| s.conditions.iter().all(|c| c.r#type != "NameConflictError"));
        (app(&fleet, "web@cluster-1").await.is_none() && cleared).then_some(())
    })
    .await;
    fleet.shutdown().await;
}
