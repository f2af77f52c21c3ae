//! Progressive syncs end to end (#23): an Argo CD ApplicationSet with `strategy: RollingSync` applied at the hub of a three-cluster dev fleet (real hub and spokes, git daemon, gRPC over TLS; the Kubernetes API emulator as the only stand-in). The dev step's app is synced first and never becomes Healthy (the emulator's `stuck` fault), so the prod step is never synced; once git fixes it, the prod apps are synced one at a time (`maxUpdate: 1`), each by one sync the rollout asks, until the rollout is complete; the console's set page shows every app's step and phase.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_e2e::harness::wait_for;
use edgecd_proto::v1;
use edgecd_testkit::browser::Browser;

const DEADLINE: Duration = Duration::from_secs(180);
const ISSUER: &str = "appset:default/web (RollingSync)";

const SET: &str = "apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: web
spec:
  goTemplate: true
  goTemplateOptions: ['missingkey=error']
  generators:
  - list:
      elements:
      - {cluster: cluster-1, env: dev}
      - {cluster: cluster-2, env: prod}
      - {cluster: cluster-3, env: prod}
  strategy:
    type: RollingSync
    rollingSync:
      steps:
      - matchExpressions:
        - {key: env, operator: In, values: [dev]}
      - matchExpressions:
        - {key: env, operator: In, values: [prod]}
        maxUpdate: 1
  template:
    metadata:
      name: 'web-{{.cluster}}'
      labels:
        env: '{{.env}}'
    spec:
      project: default
      source:
        repoURL: REPO
        targetRevision: HEAD
        path: 'rollout/{{.env}}'
      destination:
        name: '{{.cluster}}'
        namespace: default
      syncPolicy:
        automated:
          prune: true
";

fn deployment(fault: bool) -> String {
    let fault = if fault {
        ", emulator.edgecd.io/fault: stuck"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web{fault}}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n"
    )
}

async fn set(fleet: &Fleet) -> v1::ApplicationSet {
    fleet
        .client()
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "web".into(),
        })
        .await
        .unwrap()
}

/// Each app's rollout status (`Waiting`, `Pending`, …), by name.
fn phases(set: &v1::ApplicationSet) -> BTreeMap<String, String> {
    set.rollout
        .iter()
        .map(|r| (r.app.as_ref().unwrap().name.clone(), r.status.clone()))
        .collect()
}

/// The sync commands the rollout asked for `app`.
async fn rollout_syncs(fleet: &Fleet, app: &str) -> Vec<v1::CommandRecord> {
    fleet
        .client()
        .list_commands(v1::ListCommandsRequest {
            app: Some(v1::AppRef::new("default", app)),
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|c| c.command.as_ref().is_some_and(|c| c.issued_by == ISSUER))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_sync_waits_for_each_step_to_be_healthy_and_honours_max_update() {
    let fleet = Fleet::start(
        FleetConfig {
            clusters: 3,
            poll_interval: Duration::from_secs(3),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    fleet
        .repo()
        .write("rollout/dev/deployment.yaml", &deployment(true))
        .unwrap();
    fleet
        .repo()
        .write("rollout/prod/deployment.yaml", &deployment(false))
        .unwrap();
    fleet.repo().commit("web: dev is stuck").unwrap();

    let response = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: SET.replace("REPO", fleet.repo().url()),
            ..Default::default()
        })
        .await
        .unwrap();
    let result = &response.results[0];
    assert_eq!(result.action, "created", "{response:?}");
    assert!(
        result
            .warnings
            .iter()
            .any(|w| w.starts_with("spec.template.spec.syncPolicy.automated: turned off")),
        "{response:?}"
    );
    // Automation is off on the generated apps: only the rollout syncs them.
    let app = wait_for("the generated apps", DEADLINE, async || {
        fleet
            .client()
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", "web-cluster-3")),
            })
            .await
            .ok()
    })
    .await;
    let policy = app.spec.unwrap().sync_policy;
    assert!(
        policy.is_none_or(|p| p.automated.is_none()),
        "automated sync left on"
    );

    // Step 1 is synced and stays unhealthy: step 2 is neither synced nor asked to sync.
    wait_for(
        "web-cluster-1 synced by the rollout, and stuck",
        DEADLINE,
        async || {
            let phases = phases(&set(&fleet).await);
            let status = fleet
                .client()
                .get_application(v1::GetApplicationRequest {
                    app: Some(v1::AppRef::new("default", "web-cluster-1")),
                })
                .await
                .ok()?
                .status?;
            let deployed = status
                .resources
                .iter()
                .any(|r| r.key.as_ref().is_some_and(|k| k.kind == "Deployment"));
            let health = status.health?.status;
            let stuck = health == v1::HealthStatusCode::Progressing as i32
                || health == v1::HealthStatusCode::Degraded as i32;
            (phases.get("web-cluster-1").map(String::as_str) == Some("Progressing")
                && deployed
                && stuck)
                .then_some(())
        },
    )
    .await;
    let dev_syncs = rollout_syncs(&fleet, "web-cluster-1").await;
    assert!(!dev_syncs.is_empty(), "{dev_syncs:?}");
    let set_now = set(&fleet).await;
    let phases_now = phases(&set_now);
    assert_eq!(phases_now["web-cluster-2"], "Waiting", "{set_now:?}");
    assert_eq!(phases_now["web-cluster-3"], "Waiting", "{set_now:?}");
    assert!(rollout_syncs(&fleet, "web-cluster-2").await.is_empty());
    assert!(rollout_syncs(&fleet, "web-cluster-3").await.is_empty());
    assert!(
        set_now
            .conditions
            .iter()
            .any(|c| c.r#type == "RolloutProgressing"
                && c.message.starts_with("rolling out step 1 of 2")),
        "{:?}",
        set_now.conditions
    );

    // git fixes dev: its new revision is synced, then prod one app at a time.
    fleet
        .repo()
        .write("rollout/dev/deployment.yaml", &deployment(false))
        .unwrap();
    fleet.repo().commit("web: dev fixed").unwrap();
    let mut most_updating = 0;
    let mut last_seen = Vec::new();
    let mut polls = 0;
    let done = wait_for("the rollout to complete", DEADLINE, async || {
        let set = set(&fleet).await;
        let phases = phases(&set);
        let seen: Vec<String> = set
            .rollout
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.app.as_ref().unwrap().name,
                    r.status,
                    r.message
                )
            })
            .collect();
        polls += 1;
        if seen != last_seen || polls % 50 == 0 {
            let dev = fleet
                .client()
                .get_application(v1::GetApplicationRequest {
                    app: Some(v1::AppRef::new("default", "web-cluster-1")),
                })
                .await
                .unwrap()
                .status;
            eprintln!("rollout: {seen:?} {:?} dev: {dev:?}", set.conditions);
            last_seen = seen;
        }
        let updating = ["web-cluster-2", "web-cluster-3"]
            .iter()
            .filter(|a| {
                phases
                    .get(**a)
                    .is_some_and(|p| p == "Pending" || p == "Progressing")
            })
            .count();
        most_updating = most_updating.max(updating);
        assert!(updating <= 1, "maxUpdate 1 exceeded: {phases:?}");
        set.conditions
            .iter()
            .any(|c| c.r#type == "RolloutComplete")
            .then_some(set)
    })
    .await;
    assert!(
        done.rollout.iter().all(|r| r.status == "Healthy"),
        "{:?}",
        done.rollout
    );
    assert_eq!(most_updating, 1, "the prod step never synced");
    for app in ["web-cluster-2", "web-cluster-3"] {
        let syncs = rollout_syncs(&fleet, app).await;
        assert_eq!(syncs.len(), 1, "{app}: {syncs:?}");
        assert_eq!(
            syncs[0].status.as_ref().unwrap().outcome,
            v1::CommandOutcome::Succeeded as i32,
            "{syncs:?}"
        );
        // Asked with prune, as the template's automation asked.
        let Some(v1::command::Kind::Sync(sync)) = &syncs[0].command.as_ref().unwrap().kind else {
            panic!("not a sync: {syncs:?}");
        };
        assert!(sync.prune, "{syncs:?}");
        let summary = fleet
            .client()
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", app)),
            })
            .await
            .unwrap();
        let status = summary.status.unwrap();
        assert_eq!(
            status.sync.unwrap().status,
            v1::SyncStatusCode::Synced as i32
        );
    }
    // The dev app was synced again for its fixed revision, before either prod app.
    let dev_syncs_after = rollout_syncs(&fleet, "web-cluster-1").await;
    assert!(
        dev_syncs_after.len() > dev_syncs.len(),
        "{dev_syncs_after:?}"
    );
    let dev_syncs = dev_syncs_after;
    let issued = |c: &v1::CommandRecord| {
        let t = c.command.as_ref().unwrap().issued_at.unwrap();
        (t.seconds, t.nanos)
    };
    let last_dev = dev_syncs.iter().map(issued).max().unwrap();
    for app in ["web-cluster-2", "web-cluster-3"] {
        let first = rollout_syncs(&fleet, app)
            .await
            .iter()
            .map(issued)
            .min()
            .unwrap();
        assert!(first > last_dev, "{app} synced before dev was fixed");
    }

    // The console's set page shows the rollout: every app's step and phase.
    let browser = Browser::start().await.expect("headless Chromium");
    let page = format!("{}/#/appsets/default/web", fleet.console_url());
    browser.goto(&page).await.unwrap();
    browser
        .wait_for("input[name=username]", DEADLINE)
        .await
        .unwrap();
    browser
        .eval(&format!(
            "document.querySelector('input[name=username]').value = 'admin'; \
             document.querySelector('input[name=password]').value = {:?}; \
             document.querySelector('form button[type=submit]').click(); return true",
            fleet.admin_password()
        ))
        .await
        .unwrap();
    browser
        .wait_until(
            "return (document.querySelector('#whoami') || {}).textContent === 'admin'",
            DEADLINE,
        )
        .await
        .unwrap();
    browser.goto(&page).await.unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#appset-rollout tbody tr[data-phase=\"Healthy\"]').length === 3",
            DEADLINE,
        )
        .await
        .unwrap();
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('#appset-rollout tbody tr')].map(r => r.dataset.step + ' ' + r.dataset.app)",
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            "1 default/web-cluster-1",
            "2 default/web-cluster-2",
            "2 default/web-cluster-3"
        ])
    );
    fleet.shutdown().await;
}
