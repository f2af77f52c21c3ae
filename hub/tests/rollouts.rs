//! Progressive syncs at the hub (`strategy: RollingSync`), through `ApplyManifests`: the generated apps lose their automation whatever the set's policy (a `create-only` set switched to RollingSync included), every app gets a place in the rollout, no sync is asked before a spoke reports the app, and a cluster scope is refused. The rollout's syncs end to end, with real spokes: `e2e/tests/rollouts.rs`.

#![allow(clippy::unwrap_used, reason = "test code")]

mod local_hub;

use std::time::{Duration, Instant};

use edgecd_proto::v1;

use local_hub::hub;

fn set_yaml(strategy: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  generators:
  - list:
      elements:
      - {{cluster: edge-1, env: dev}}
      - {{cluster: edge-2, env: prod}}
  syncPolicy:
    applicationsSync: create-only
{strategy}  template:
    metadata:
      name: 'web-{{{{cluster}}}}'
      labels:
        env: '{{{{env}}}}'
    spec:
      project: default
      source:
        repoURL: https://git.example/web.git
        targetRevision: HEAD
        path: web
      destination:
        name: '{{{{cluster}}}}'
        namespace: web
      syncPolicy:
        automated:
          prune: true
"
    )
}

const ROLLING: &str = "  strategy:
    type: RollingSync
    rollingSync:
      steps:
      - matchExpressions:
        - {key: env, operator: In, values: [dev]}
      - matchExpressions:
        - {key: env, operator: In, values: [prod]}
";

async fn apply(
    client: &edgecd_proto::client::Client,
    yaml: &str,
    cluster: &str,
) -> v1::ApplyResult {
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            cluster: cluster.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap()
        .results
        .remove(0)
}

/// A hub with `edge-1` and `edge-2` registered.
async fn hub_with_two_clusters() -> local_hub::Hub {
    let hub = hub().await;
    hub.client
        .create_cluster(v1::CreateClusterRequest {
            name: "edge-2".into(),
            ..v1::CreateClusterRequest::default()
        })
        .await
        .unwrap();
    hub
}

async fn get_app(
    client: &edgecd_proto::client::Client,
    name: &str,
) -> Result<v1::Application, edgecd_proto::client::Error> {
    client
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", name)),
        })
        .await
}

/// Whether each generated app has automated sync, once both exist and `done` holds for the set.
async fn automation(
    client: &edgecd_proto::client::Client,
    done: impl Fn(&v1::ApplicationSet, &[bool]) -> bool,
) -> Vec<bool> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut automated = Vec::new();
        for name in ["web-edge-1", "web-edge-2"] {
            if let Ok(app) = get_app(client, name).await {
                automated.push(
                    app.spec
                        .and_then(|s| s.sync_policy)
                        .is_some_and(|p| p.automated.is_some()),
                );
            }
        }
        let set = client
            .get_application_set(v1::GetApplicationSetRequest {
                project: "default".into(),
                name: "web".into(),
            })
            .await
            .unwrap();
        if automated.len() == 2 && done(&set, &automated) {
            return automated;
        }
        assert!(Instant::now() < deadline, "{set:?} {automated:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_rolling_sync_turns_automation_off_on_every_app_of_the_set() {
    let hub = hub_with_two_clusters().await;
    let client = &hub.client;

    // All at once, create-only: the apps sync on their own.
    let result = apply(client, &set_yaml(""), "").await;
    assert_eq!(result.action, "created", "{result:?}");
    let automated = automation(client, |_, a| a.iter().all(|on| *on)).await;
    assert_eq!(automated, [true, true]);

    // Switched to a rolling sync: create-only does not let the set update its apps, but their automation goes
    // all the same, and each app has its place in the rollout (Waiting: no spoke has reported it, so no sync
    // is asked).
    let result = apply(client, &set_yaml(ROLLING), "").await;
    assert_eq!(result.action, "updated", "{result:?}");
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.starts_with("spec.template.spec.syncPolicy.automated: turned off")),
        "{result:?}"
    );
    automation(client, |set, a| {
        a.iter().all(|on| !on) && set.rollout.len() == 2
    })
    .await;
    let set = client
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "web".into(),
        })
        .await
        .unwrap();
    let places: Vec<(String, String, i32)> = set
        .rollout
        .iter()
        .map(|r| (r.app.clone().unwrap().name, r.status.clone(), r.step))
        .collect();
    assert_eq!(
        places,
        [
            ("web-edge-1".to_owned(), "Waiting".to_owned(), 1),
            ("web-edge-2".to_owned(), "Waiting".to_owned(), 2)
        ]
    );
    assert!(
        places
            .iter()
            .all(|_| set.rollout.iter().all(|r| r.command_id.is_empty()))
    );
    assert!(
        set.conditions
            .iter()
            .any(|c| c.r#type == "RolloutProgressing"
                && c.message.starts_with("rolling out step 1 of 2")),
        "{:?}",
        set.conditions
    );
    for app in ["web-edge-1", "web-edge-2"] {
        let commands = client
            .list_commands(v1::ListCommandsRequest {
                app: Some(v1::AppRef::new("default", app)),
                ..v1::ListCommandsRequest::default()
            })
            .await
            .unwrap();
        assert!(commands.items.is_empty(), "{app}: {commands:?}");
    }

    // Only the hub sees every cluster's apps: a rolling set scoped to a cluster is refused, naming why.
    let refused = apply(
        client,
        &set_yaml(ROLLING).replace("name: web\n", "name: web-edge\n"),
        "edge-1",
    )
    .await;
    assert_eq!(refused.action, "refused", "{refused:?}");
    assert!(
        refused
            .message
            .contains("evaluated at the hub (its RollingSync strategy"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn automation_kept_by_ignored_differences_goes_too() {
    let hub = hub_with_two_clusters().await;
    let client = &hub.client;
    // Argo CD's documented pattern: the set leaves the apps' sync policy as it finds it.
    let ignoring = |strategy: &str| {
        set_yaml(strategy).replace(
            "  syncPolicy:\n    applicationsSync: create-only\n",
            "  ignoreApplicationDifferences:\n  - jsonPointers: [/spec/syncPolicy]\n",
        )
    };
    let result = apply(client, &ignoring(""), "").await;
    assert_eq!(result.action, "created", "{result:?}");
    assert_eq!(
        automation(client, |_, a| a.iter().all(|on| *on)).await,
        [true, true]
    );
    let before = get_app(client, "web-edge-1")
        .await
        .unwrap()
        .meta
        .unwrap()
        .spec_version;
    // Switched to a rolling sync with a template change in the same apply: the apps are updated once, without
    // automation; the ignored `/spec/syncPolicy` does not bring it back for a moment (a write with automation
    // on, taken back by the next evaluation, would let every spoke sync the new spec at once).
    let result = apply(
        client,
        &ignoring(ROLLING).replace("path: web", "path: web2"),
        "",
    )
    .await;
    assert_eq!(result.action, "updated", "{result:?}");
    automation(client, |_, a| a.iter().all(|on| !on)).await;
    for name in ["web-edge-1", "web-edge-2"] {
        let app = get_app(client, name).await.unwrap();
        assert_eq!(
            app.spec.unwrap().source.unwrap().path,
            "web2",
            "{name} was updated"
        );
    }
    assert_eq!(
        get_app(client, "web-edge-1")
            .await
            .unwrap()
            .meta
            .unwrap()
            .spec_version,
        before + 1,
        "written once"
    );
}
