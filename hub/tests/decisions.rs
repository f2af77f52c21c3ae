//! Argo CD's `clusterDecisionResource` generator at the hub, through `ApplyManifests`: Open Cluster Management's
//! ConfigMap and a `PlacementDecision` applied with an application set; the set generates one app per decided,
//! enrolled cluster, and again when the decision changes; what the hub does not keep is refused, naming it.

#![allow(clippy::unwrap_used, reason = "test code")]

mod local_hub;

use std::time::{Duration, Instant};

use edgecd_proto::v1;

use local_hub::hub;

const CONFIG_MAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: ocm-placement-generator
  namespace: argocd
data:
  apiVersion: cluster.open-cluster-management.io/v1beta1
  kind: placementdecisions
  statusListKey: decisions
  matchKey: clusterName
";

fn decision(clusters: &[&str]) -> String {
    let decisions: Vec<String> = clusters
        .iter()
        .map(|c| format!("  - clusterName: {c}\n    reason: ''\n"))
        .collect();
    format!(
        "apiVersion: cluster.open-cluster-management.io/v1beta1
kind: PlacementDecision
metadata:
  name: app-placement-decision-1
  namespace: argocd
  labels:
    cluster.open-cluster-management.io/placement: app-placement
status:
  decisions:
{}",
        decisions.concat()
    )
}

const SET: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: guestbook-app-set
  namespace: argocd
spec:
  generators:
  - clusterDecisionResource:
      configMapRef: ocm-placement-generator
      labelSelector:
        matchLabels:
          cluster.open-cluster-management.io/placement: app-placement
      requeueAfterSeconds: 30
  template:
    metadata:
      name: '{{name}}-guestbook'
    spec:
      project: default
      source:
        repoURL: https://github.com/argoproj/argocd-example-apps.git
        targetRevision: HEAD
        path: guestbook
      destination:
        name: '{{clusterName}}'
        namespace: guestbook
";

async fn apply(
    client: &edgecd_proto::client::Client,
    yaml: &str,
) -> Result<v1::ApplyManifestsResponse, edgecd_proto::client::Error> {
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
}

/// The apps' names once they are `expected` (sorted), within a minute.
async fn apps_become(client: &edgecd_proto::client::Client, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut names: Vec<String> = client
            .list_applications(v1::ListApplicationsRequest::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|a| a.name)
            .collect();
        names.sort();
        if names == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "apps are {names:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn placement_decisions_applied_to_the_hub_choose_the_clusters() {
    let hub = hub().await;
    let client = &hub.client;
    for name in ["edge-2", "edge-3"] {
        client
            .create_cluster(v1::CreateClusterRequest {
                name: name.into(),
                ..v1::CreateClusterRequest::default()
            })
            .await
            .unwrap();
    }
    // One call: the ConfigMap, the decision (two enrolled clusters and one that is not) and the set.
    let yaml = format!(
        "{CONFIG_MAP}---\n{}---\n{SET}",
        decision(&["edge-1", "edge-3", "not-enrolled"])
    );
    let response = apply(client, &yaml).await.unwrap();
    let actions: Vec<(&str, &str)> = response
        .results
        .iter()
        .map(|r| (r.kind.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("ConfigMap", "created"),
            ("PlacementDecision", "created"),
            ("ApplicationSet", "created")
        ],
        "{response:?}"
    );
    apps_become(client, &["edge-1-guestbook", "edge-3-guestbook"]).await;

    // The placement moves: applying the decision again re-evaluates the set.
    let response = apply(client, &decision(&["edge-2"])).await.unwrap();
    assert_eq!(response.results[0].action, "updated", "{response:?}");
    apps_become(client, &["edge-2-guestbook"]).await;
    let response = apply(client, &decision(&["edge-2"])).await.unwrap();
    assert_eq!(response.results[0].action, "unchanged", "{response:?}");

    // What the hub does not keep is refused, naming it, and nothing of the call is applied.
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n";
    let err = apply(
        client,
        &format!("{}---\n{deployment}", decision(&["edge-1"])),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("apps/v1 Deployment web: the hub keeps")
            && err
                .to_string()
                .contains("no ConfigMap names apps/v1 Deployment"),
        "{err}"
    );
    let other = CONFIG_MAP.replace("matchKey: clusterName", "matchKey: clusterName\n  extra: x");
    let err = apply(client, &other).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("data.extra: a ConfigMap is kept by the hub only"),
        "{err}"
    );
    // Nothing of the refused calls was stored: the decision is still edge-2's.
    let response = apply(client, &decision(&["edge-2"])).await.unwrap();
    assert_eq!(response.results[0].action, "unchanged", "{response:?}");
    let twice = format!("{}---\n{}", decision(&["edge-1"]), decision(&["edge-3"]));
    let err = apply(client, &twice).await.unwrap_err();
    assert!(err.to_string().contains("is given twice"), "{err}");
    // A resource cannot name its own kind through its status: only a ConfigMap does.
    let sneaky = "apiVersion: example.io/v1\nkind: Foo\nmetadata:\n  name: foo\nstatus:\n  apiVersion: example.io/v1\n  kind: Foo\n";
    let err = apply(client, sneaky).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no ConfigMap names example.io/v1 Foo"),
        "{err}"
    );

    // Open Cluster Management's pull model: the template's destination is in-cluster, which is each decided
    // cluster (the generated Application is shipped there).
    let pull = SET
        .replace("guestbook-app-set", "pull-app-set")
        .replace("'{{name}}-guestbook'", "'{{name}}-pull'")
        .replace(
            "name: '{{clusterName}}'",
            "server: https://kubernetes.default.svc",
        );
    let response = apply(client, &pull).await.unwrap();
    assert_eq!(response.results[0].action, "created", "{response:?}");
    apps_become(client, &["edge-2-guestbook", "edge-2-pull"]).await;
    let app = client
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef {
                project: "default".into(),
                name: "edge-2-pull".into(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(app.spec.unwrap().destination.unwrap().cluster, "edge-2");

    // A set reading decisions is evaluated at the hub: scoped to a spoke, it is refused.
    let response = client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: SET.replace("guestbook-app-set", "scoped"),
            scope: "edge-1".into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    let result = &response.results[0];
    assert_eq!(result.action, "refused", "{result:?}");
    assert!(
        result.message.contains("evaluated at the hub"),
        "{result:?}"
    );
}
