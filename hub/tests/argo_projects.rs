//! Argo CD AppProjects through `ApplyManifests`: a destination given by server URL (`in-cluster`'s
//! `https://kubernetes.default.svc` or any other) is kept even when no cluster has it yet, as Argo CD keeps it;
//! what is accepted but not acted on comes back as warnings.

#![allow(clippy::unwrap_used, reason = "test code")]

mod local_hub;

use edgecd_proto::v1;

use local_hub::hub;

const PROJECT: &str = "apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: guestbook
  namespace: argocd
spec:
  sourceRepos: ['*']
  destinations:
  - namespace: guestbook
    server: https://kubernetes.default.svc
    name: in-cluster
  - namespace: '*'
    server: https://10.62.25.11:6443
  syncWindows:
  - kind: deny
    schedule: '0 22 * * *'
    duration: 1h
  roles:
  - name: read-only
    policies:
    - p, proj:guestbook:read-only, applications, get, guestbook/*, allow
    groups: [viewers]
";

/// Regression: on a hub where no cluster has the server URL (the test hub has one cluster, `edge-1`, without
/// one), a project whose destination is `https://kubernetes.default.svc` was refused with "no enrolled cluster
/// has server URL …".
#[tokio::test]
async fn a_project_destination_by_server_url_needs_no_enrolled_cluster() {
    let hub = hub().await;
    let client = &hub.client;
    for dry_run in [true, false] {
        let response = client
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml: PROJECT.into(),
                dry_run,
                ..v1::ApplyManifestsRequest::default()
            })
            .await
            .unwrap();
        let result = &response.results[0];
        assert_eq!(result.action, "created", "{result:?}");
        assert!(
            result
                .message
                .contains("no enrolled cluster has this server URL yet"),
            "{result:?}"
        );
        assert!(
            result
                .warnings
                .iter()
                .any(|w| w.starts_with("spec.syncWindows: 1 window(s) accepted, not enforced yet")),
            "{result:?}"
        );
    }
    let project = client
        .get_project(v1::GetProjectRequest {
            name: "guestbook".into(),
        })
        .await
        .unwrap();
    let spec = edgecd_proto::convert::from_project(&project).unwrap();
    assert_eq!(
        spec.destinations[0].clusters,
        [edgecd_core::project::IN_CLUSTER_SERVER]
    );
    assert_eq!(spec.destinations[1].clusters, ["https://10.62.25.11:6443"]);
    assert_eq!(spec.sync_windows.len(), 1);
    assert_eq!(spec.roles[0].groups, ["viewers"]);
    // Applied again: unchanged.
    let again = client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: PROJECT.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(again.results[0].action, "unchanged", "{again:?}");
    hub.hub.shutdown().await.unwrap();
}
