//! Fleet-scoped application sets end to end (#19, #23): the talk's distributed `cluster-addons` set (unchanged apart from its repository URL) applied once at the hub for three clusters, each spoke generating its own `guestbook`, `minecraft` and `nginx`: nine apps at the hub (`name@cluster`), counted per cluster under the set, each synced on its own; then scoped by a cluster label: a fourth cluster enrolled with the label gets its three apps, and loses them when the label is removed; and a Go-template set (post-selector, templatePatch) evaluated at two spokes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_e2e::harness::wait_for;
use edgecd_e2e::testdata;
use edgecd_proto::v1;

const DEADLINE: Duration = Duration::from_secs(120);
const ADDONS: [&str; 3] = ["guestbook", "minecraft", "nginx"];

/// The set's generated apps, as the hub shows them.
async fn generated(fleet: &Fleet) -> BTreeSet<String> {
    fleet
        .client()
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "cluster-addons".into(),
        })
        .await
        .unwrap()
        .generated
        .into_iter()
        .map(|a| a.name)
        .collect()
}

/// Apps generated at the edge, as the hub lists them.
async fn edge_apps(fleet: &Fleet) -> BTreeSet<String> {
    fleet
        .app_names(v1::ApplicationFilter {
            origins: vec![v1::AppOrigin::Autonomous as i32],
            ..Default::default()
        })
        .await
        .unwrap()
}

fn addons_on(clusters: &[&str]) -> BTreeSet<String> {
    clusters
        .iter()
        .flat_map(|c| ADDONS.iter().map(move |a| format!("{a}@{c}")))
        .collect()
}

/// Counts by cluster of `name@cluster` names.
fn per_cluster(names: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        let (_, cluster) = name.split_once('@').unwrap();
        *counts.entry(cluster.to_owned()).or_default() += 1;
    }
    counts
}

async fn label(fleet: &Fleet, cluster: &str, labels: &[(&str, &str)]) {
    fleet
        .client()
        .update_cluster(v1::UpdateClusterRequest {
            name: cluster.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_set_evaluated_at_every_matching_cluster() {
    let mut fleet = Fleet::start(
        FleetConfig {
            clusters: 4,
            enrolled: Some(3),
            poll_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    for cluster in ["cluster-1", "cluster-2", "cluster-3", "cluster-4"] {
        // minecraft's kustomization puts it in namespace `games`, which its app does not create.
        fleet.create_namespace(cluster, "games").await.unwrap();
    }
    let yaml =
        std::fs::read_to_string(testdata().join("edge-fleet-repo/appsets/cluster-addons.yaml"))
            .unwrap()
            .replace("https://github.com/example/repo", fleet.repo().url());
    let apply = async |scope: &str, cluster: &str| {
        fleet
            .client()
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml: yaml.clone(),
                scope: scope.into(),
                cluster: cluster.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .results
    };

    // One set, three clusters: nine apps, three per cluster, each under the set.
    let results = apply("clusters:cluster-1,cluster-2,cluster-3", "").await;
    assert_eq!(results[0].action, "created", "{results:?}");
    let three = addons_on(&["cluster-1", "cluster-2", "cluster-3"]);
    wait_for("nine edge apps", DEADLINE, async || {
        (edge_apps(&fleet).await == three).then_some(())
    })
    .await;
    let listed = wait_for("the set to list its nine apps", DEADLINE, async || {
        let names = generated(&fleet).await;
        (names == three).then_some(names)
    })
    .await;
    assert_eq!(
        per_cluster(&listed),
        BTreeMap::from([
            ("cluster-1".to_owned(), 3),
            ("cluster-2".to_owned(), 3),
            ("cluster-3".to_owned(), 3),
        ])
    );
    // Filters: `nginx` on every cluster; cluster-2's apps.
    let by_name = fleet
        .client()
        .list_applications(v1::ListApplicationsRequest {
            filter: Some(v1::ApplicationFilter {
                search: "nginx@".into(),
                ..Default::default()
            }),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let nginx: BTreeSet<String> = by_name.items.into_iter().map(|a| a.name).collect();
    let want: BTreeSet<String> = three
        .iter()
        .filter(|n| n.starts_with("nginx@"))
        .cloned()
        .collect();
    assert_eq!(nginx, want);

    // Each is its own app: syncing guestbook on cluster-2 syncs it there only.
    let command = fleet
        .client()
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new("default", "guestbook@cluster-2")),
            sync: Some(v1::SyncCommand::default()),
            ttl: None,
        })
        .await
        .unwrap();
    wait_for("the sync of guestbook@cluster-2", DEADLINE, async || {
        let status = fleet
            .client()
            .get_command(v1::GetCommandRequest {
                command_id: command.command_id.clone(),
            })
            .await
            .ok()?;
        (status.outcome == v1::CommandOutcome::Succeeded as i32).then_some(())
    })
    .await;
    let synced = |name: &str| {
        let name = name.to_owned();
        let fleet = &fleet;
        async move {
            fleet
                .client()
                .get_application(v1::GetApplicationRequest {
                    app: Some(v1::AppRef::new("default", &name)),
                })
                .await
                .ok()
                .and_then(|a| a.status)
                .and_then(|s| s.sync)
                .is_some_and(|s| s.status == v1::SyncStatusCode::Synced as i32)
        }
    };
    wait_for("guestbook@cluster-2 Synced", DEADLINE, async || {
        synced("guestbook@cluster-2").await.then_some(())
    })
    .await;
    assert!(!synced("guestbook@cluster-1").await);
    assert!(!synced("guestbook@cluster-3").await);

    // The same file applied for one of its clusters alone is refused (it would shrink the scope).
    let refused = apply("", "cluster-1").await;
    assert_eq!(refused[0].action, "refused", "{refused:?}");
    assert!(
        refused[0].message.contains("(on cluster-2, cluster-3)"),
        "{refused:?}"
    );

    // By label: the three clusters labelled, the set re-applied with a selector (a scope that still
    // covers them), then a fourth cluster enrolled with the label gets its three apps.
    for cluster in ["cluster-1", "cluster-2", "cluster-3"] {
        label(&fleet, cluster, &[("addons", "true")]).await;
    }
    let results = apply("selector:addons=true", "").await;
    assert_eq!(results[0].action, "updated", "{results:?}");
    fleet
        .enroll(
            "cluster-4",
            &BTreeMap::from([("addons".to_owned(), "true".to_owned())]),
        )
        .await
        .unwrap();
    let four = addons_on(&["cluster-1", "cluster-2", "cluster-3", "cluster-4"]);
    wait_for("cluster-4's three apps", DEADLINE, async || {
        (edge_apps(&fleet).await == four).then_some(())
    })
    .await;
    wait_for("the set to count cluster-4", DEADLINE, async || {
        (per_cluster(&generated(&fleet).await).get("cluster-4") == Some(&3)).then_some(())
    })
    .await;

    // The label removed: cluster-4 loses the set and its apps; the others keep theirs.
    label(&fleet, "cluster-4", &[]).await;
    wait_for("cluster-4's apps removed", DEADLINE, async || {
        (edge_apps(&fleet).await == three).then_some(())
    })
    .await;
    assert_eq!(generated(&fleet).await, three);
}

/// An Argo CD set in Go-template form (post-selector, `templatePatch`, `missingkey=error`) scoped to two
/// clusters: it reaches their spokes as its whole JSON spec (capability `application-sets.argo-spec.v1`) and
/// each spoke generates the same apps Go templates would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_template_sets_are_evaluated_at_the_spokes() {
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
    let url = fleet.repo().url();
    let yaml = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: addons-go
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
  - git:
      repoURL: {url}
      revision: HEAD
      directories:
      - path: deploy/clusters/cluster-3/*
    selector:
      matchExpressions:
      - {{key: path.basename, operator: NotIn, values: [minecraft]}}
  templatePatch: |
    metadata:
      labels:
        addon: '{{{{ .path.basename | upper | lower }}}}'
        depth: '{{{{ len .path.segments }}}}'
  template:
    metadata:
      name: '{{{{ .path.basename }}}}-go'
    spec:
      source:
        repoURL: {url}
        targetRevision: HEAD
        path: '{{{{ .path.path }}}}'
      destination:
        server: https://kubernetes.default.svc
"#
    );
    let results = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            scope: "clusters:cluster-1,cluster-2".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .results;
    assert_eq!(results[0].action, "created", "{results:?}");
    let want: BTreeSet<String> = ["guestbook-go", "nginx-go"]
        .iter()
        .flat_map(|a| ["cluster-1", "cluster-2"].map(|c| format!("{a}@{c}")))
        .collect();
    wait_for("four Go-template apps at the edge", DEADLINE, async || {
        (edge_apps(&fleet).await == want).then_some(())
    })
    .await;
    let app = fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", "nginx-go@cluster-2")),
        })
        .await
        .unwrap();
    let labels = app.meta.clone().unwrap_or_default().labels;
    assert_eq!(
        labels.get("addon").map(String::as_str),
        Some("nginx"),
        "{app:?}"
    );
    assert_eq!(
        labels.get("depth").map(String::as_str),
        Some("4"),
        "{app:?}"
    );
    assert_eq!(
        app.spec.and_then(|s| s.source).map(|s| s.path).as_deref(),
        Some("deploy/clusters/cluster-3/nginx")
    );
}
