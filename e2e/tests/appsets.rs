//! End to end: ApplicationSets evaluated at the hub and Argo CD import, on the dev fleet (real hub, spokes, git daemon, gRPC over TLS; the Kubernetes API emulator as the only stand-in), with the repository's `testdata/` fixtures unchanged apart from their repository URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

fn fixture(path: &str) -> PathBuf {
    let path = edgecd_e2e::testdata().join(path);
    assert!(
        path.exists(),
        "{} is missing: the tests read the repository's testdata/",
        path.display()
    );
    path
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every field of `expected` is in `live` with the same value (lists compared element by element).
fn contains(expected: &Value, live: &Value, at: &str) -> Result<(), String> {
    match (expected, live) {
        (Value::Object(e), Value::Object(l)) => {
            for (k, v) in e {
                let next = format!("{at}.{k}");
                let lv = l.get(k).ok_or_else(|| format!("{next} is missing"))?;
                contains(v, lv, &next)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(l)) => {
            if e.len() != l.len() {
                return Err(format!("{at}: {} items, live has {}", e.len(), l.len()));
            }
            for (i, (ev, lv)) in e.iter().zip(l).enumerate() {
                contains(ev, lv, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (e, l) if e == l => Ok(()),
        // Kubernetes renders port numbers and such as numbers either way; compare as text.
        (e, l) if e.to_string().trim_matches('"') == l.to_string().trim_matches('"') => Ok(()),
        (e, l) => Err(format!("{at}: expected {e}, live {l}")),
    }
}

/// Waits until the objects of a kustomize output file are in an emulated cluster with their
/// expected spec (in `namespace` when the file gives none).
async fn assert_objects(fleet: &Fleet, cluster: &str, expected_file: &Path, namespace: &str) {
    let emulator = fleet.emulator().expect("the emulator runs");
    let handle = emulator
        .clusters()
        .iter()
        .find(|c| c.name() == cluster)
        .unwrap_or_else(|| panic!("no emulated cluster {cluster}"));
    let client = handle.client().await.unwrap();
    let documents = edgecd_render::yaml::load_documents(&read(expected_file)).unwrap();
    assert!(
        !documents.is_empty(),
        "{} holds no object",
        expected_file.display()
    );
    for doc in documents {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let kind = doc["kind"].as_str().unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or(namespace);
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let outcome = match api.get_opt(name).await.unwrap() {
                None => Err(format!("{kind} {ns}/{name} does not exist")),
                Some(live) => {
                    let live = serde_json::to_value(&live).unwrap();
                    contains(&doc["spec"], &live["spec"], "spec").and_then(|()| {
                        contains(
                            &doc["metadata"]["labels"],
                            &live["metadata"]["labels"],
                            "metadata.labels",
                        )
                        .or_else(|e| {
                            if doc["metadata"]["labels"].is_null() {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        })
                    })
                }
            };
            match outcome {
                Ok(()) => break,
                Err(why) if tokio::time::Instant::now() >= deadline => {
                    panic!(
                        "{cluster}: {kind} {ns}/{name} differs from {}: {why}",
                        expected_file.display()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}

/// The default dev fleet with spokes polling git every 5 s (git changes show within a test's deadline).
async fn polling_fleet() -> Fleet {
    Fleet::start(
        FleetConfig {
            poll_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap()
}

async fn app(fleet: &Fleet, project: &str, name: &str) -> Option<v1::Application> {
    fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new(project, name)),
        })
        .await
        .ok()
}

/// Waits until an app exists (`true`) or is gone (`false`).
async fn wait_exists(fleet: &Fleet, project: &str, name: &str, exists: bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app(fleet, project, name).await.is_some() != exists {
        assert!(
            tokio::time::Instant::now() < deadline,
            "application {project}/{name} {} within {}s",
            if exists {
                "was not created"
            } else {
                "was not deleted"
            },
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sync(fleet: &Fleet, project: &str, name: &str) {
    fleet
        .client()
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new(project, name)),
            sync: Some(v1::SyncCommand::default()),
            ttl: None,
        })
        .await
        .unwrap();
}

/// Waits until an app is Synced and Healthy.
async fn wait_synced_healthy(fleet: &Fleet, project: &str, name: &str) -> v1::Application {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let current = app(fleet, project, name).await;
        let state = current.as_ref().and_then(|a| a.status.as_ref()).map(|s| {
            (
                s.sync.as_ref().map(|x| x.status),
                s.health.as_ref().map(|h| h.status),
            )
        });
        if state
            == Some((
                Some(v1::SyncStatusCode::Synced as i32),
                Some(v1::HealthStatusCode::Healthy as i32),
            ))
        {
            return current.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "application {project}/{name} is not Synced and Healthy after {}s: {:?}",
            DEADLINE.as_secs(),
            current.and_then(|a| a.status)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn apply(fleet: &Fleet, yaml: String, cluster: &str) -> Vec<v1::ApplyResult> {
    let response = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            cluster: cluster.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    for r in &response.results {
        assert_ne!(r.action, "refused", "{}: {}", r.source, r.message);
    }
    response.results
}

async fn set_labels(fleet: &Fleet, cluster: &str, labels: &[(&str, &str)]) {
    let current = fleet
        .client()
        .get_cluster(v1::GetClusterRequest {
            name: cluster.into(),
        })
        .await
        .unwrap();
    fleet
        .client()
        .update_cluster(v1::UpdateClusterRequest {
            name: cluster.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: current.annotations,
            server_url: current.server_url,
            expected_version: current.version,
        })
        .await
        .unwrap();
}

/// `appsets/nginx-per-cluster.yaml` at the hub: one app per enrolled cluster with the objects
/// real kustomize renders for its overlay; a joining cluster gets its app; relabelling and
/// removing clusters follow each set's policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_per_cluster_follows_the_fleet() {
    // Fleet::start applies the fixture's nginx-per-cluster.yaml (repoURL = its git server) through
    // ApplyManifests and syncs what the hub generates, as `argocd app sync` after the set.
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

    let set = fleet
        .client()
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "nginx".into(),
        })
        .await
        .unwrap();
    for n in 1..=3 {
        let cluster = format!("cluster-{n}");
        let name = format!("{cluster}.nginx");
        let generated = wait_synced_healthy(&fleet, "default", &name).await;
        let meta = generated.meta.unwrap();
        let owner = meta.owner.expect("a generated app records its owner");
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.scope.as_str()
            ),
            ("ApplicationSet", "nginx", "hub")
        );
        let spec = generated.spec.unwrap();
        assert_eq!(spec.destination.as_ref().unwrap().cluster, cluster);
        assert_eq!(
            spec.source.as_ref().unwrap().path,
            format!("deploy/overlays/{cluster}")
        );
        assert_objects(
            &fleet,
            &cluster,
            &fixture(&format!("edge-fleet-expected/{cluster}.yaml")),
            "nginx",
        )
        .await;
    }
    assert!(set.template.is_some());

    // The set's status names what it generated.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let set = fleet
            .client()
            .get_application_set(v1::GetApplicationSetRequest {
                project: "default".into(),
                name: "nginx".into(),
            })
            .await
            .unwrap();
        let names: Vec<String> = set.generated.iter().map(|a| a.name.clone()).collect();
        if names == ["cluster-1.nginx", "cluster-2.nginx", "cluster-3.nginx"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "generated: {names:?}, conditions: {:?}",
            set.conditions
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A fourth cluster joins: the set generates its app.
    fleet
        .enroll(
            "cluster-4",
            &BTreeMap::from([("region".to_owned(), "us".to_owned())]),
        )
        .await
        .unwrap();
    wait_exists(&fleet, "default", "cluster-4.nginx", true).await;
    sync(&fleet, "default", "cluster-4.nginx").await;
    wait_synced_healthy(&fleet, "default", "cluster-4.nginx").await;

    // Two more sets over the clusters labelled region=eu (cluster-1 and cluster-3): one with the
    // default policy (sync), one create-only. Their apps are never synced (they would manage
    // the same objects as the nginx apps); only their existence follows the labels.
    let fixture = read(&fixture("edge-fleet-repo/appsets/nginx-per-cluster.yaml"))
        .replace("https://github.com/example/repo", fleet.repo().url());
    let eu = fixture
        .replace("name: nginx\n", "name: nginx-eu\n")
        .replace(
            "- clusters: {}",
            "- clusters:\n      selector:\n        matchLabels:\n          region: eu",
        )
        .replace("'{{name}}.nginx'", "'{{name}}.nginx-eu'");
    let eu_kept = eu
        .replace("name: nginx-eu\n", "name: nginx-eu-kept\n")
        .replace("'{{name}}.nginx-eu'", "'{{name}}.nginx-eu-kept'")
        .replace(
            "spec:\n  generators:",
            "spec:\n  syncPolicy:\n    applicationsSync: create-only\n  generators:",
        );
    assert_ne!(
        eu, fixture,
        "the selector variant must differ from the fixture"
    );
    apply(&fleet, format!("{eu}\n---\n{eu_kept}"), "").await;
    for name in [
        "cluster-1.nginx-eu",
        "cluster-3.nginx-eu",
        "cluster-1.nginx-eu-kept",
        "cluster-3.nginx-eu-kept",
    ] {
        wait_exists(&fleet, "default", name, true).await;
    }
    assert!(app(&fleet, "default", "cluster-2.nginx-eu").await.is_none());

    // cluster-3 moves to region=us: the sync set deletes its app, the create-only set keeps it.
    set_labels(&fleet, "cluster-3", &[("region", "us"), ("env", "dev")]).await;
    wait_exists(&fleet, "default", "cluster-3.nginx-eu", false).await;
    assert!(
        app(&fleet, "default", "cluster-3.nginx-eu-kept")
            .await
            .is_some()
    );
    assert!(app(&fleet, "default", "cluster-1.nginx-eu").await.is_some());
    // cluster-2 moves to region=eu: both sets generate its app.
    set_labels(&fleet, "cluster-2", &[("region", "eu")]).await;
    wait_exists(&fleet, "default", "cluster-2.nginx-eu", true).await;
    wait_exists(&fleet, "default", "cluster-2.nginx-eu-kept", true).await;

    // cluster-4 is revoked (removed from the fleet): the nginx set deletes its app, and then the
    // cluster can be deleted.
    fleet
        .client()
        .revoke_cluster(v1::RevokeClusterRequest {
            name: "cluster-4".into(),
            reason: "decommissioned".into(),
        })
        .await
        .unwrap();
    wait_exists(&fleet, "default", "cluster-4.nginx", false).await;
    fleet
        .client()
        .delete_cluster(v1::DeleteClusterRequest {
            name: "cluster-4".into(),
        })
        .await
        .unwrap();
    // The other clusters' apps are untouched.
    for n in 1..=3 {
        wait_synced_healthy(&fleet, "default", &format!("cluster-{n}.nginx")).await;
    }

    let client = fleet.emulator().unwrap().clusters()[0]
        .client()
        .await
        .unwrap();
    let crs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        edgecd_e2e::dev::STATE_NAMESPACE,
        &ApiResource {
            group: "edgecd.io".into(),
            version: "v1alpha1".into(),
            api_version: "edgecd.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        },
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "nginx");
    // Deleting a set deletes the apps it generated.
    fleet
        .client()
        .delete_application_set(v1::DeleteApplicationSetRequest {
            project: "default".into(),
            name: "nginx-eu".into(),
        })
        .await
        .unwrap();
    wait_exists(&fleet, "default", "cluster-1.nginx-eu", false).await;
    wait_exists(&fleet, "default", "cluster-2.nginx-eu", false).await;
    // cluster-1.nginx-eu rendered the same objects as cluster-1.nginx but never applied them:
    // removing it must not delete what another app manages.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while crs.get_opt("cluster-1.nginx-eu").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster-1's spoke did not delete cluster-1.nginx-eu"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        deployments.get_opt("nginx").await.unwrap().is_some(),
        "deleting cluster-1.nginx-eu deleted cluster-1.nginx's Deployment"
    );
    assert!(
        app(&fleet, "default", "cluster-1.nginx-eu-kept")
            .await
            .is_some()
    );

    // preserveResourcesOnDeletion: deleting the set deletes its apps but keeps their objects.
    let preserving = fixture.replace(
        "spec:\n  generators:",
        "spec:\n  syncPolicy:\n    preserveResourcesOnDeletion: true\n  generators:",
    );
    assert_ne!(preserving, fixture);
    let results = apply(&fleet, preserving, "").await;
    assert_eq!(results[0].action, "updated", "{results:?}");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while app(&fleet, "default", "cluster-1.nginx")
        .await
        .and_then(|a| a.meta)
        .is_none_or(|m| {
            !m.labels
                .contains_key(edgecd_core::app::PRESERVE_RESOURCES_LABEL)
        })
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the set did not relabel its apps"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The label reached the spoke's CR before the set goes.
    while crs
        .get_opt("cluster-1.nginx")
        .await
        .unwrap()
        .and_then(|cr| cr.metadata.labels)
        .is_none_or(|l| !l.contains_key(edgecd_core::app::PRESERVE_RESOURCES_LABEL))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the label did not reach cluster-1's CR"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    fleet
        .client()
        .delete_application_set(v1::DeleteApplicationSetRequest {
            project: "default".into(),
            name: "nginx".into(),
        })
        .await
        .unwrap();
    wait_exists(&fleet, "default", "cluster-1.nginx", false).await;
    while crs.get_opt("cluster-1.nginx").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cluster-1's spoke did not delete the app"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        deployments.get_opt("nginx").await.unwrap().is_some(),
        "the app's Deployment must outlive the app (preserveResourcesOnDeletion)"
    );
    fleet.shutdown().await;
}

/// The clusters of the talk's demo: (edgecd cluster, the API server URL Argo CD knows it by, overlay).
const TALK_CLUSTERS: [(&str, &str, &str); 3] = [
    ("cluster-1", "https://10.62.25.11:6443", "cluster1"),
    ("cluster-2", "https://10.62.33.11:6443", "cluster2"),
    ("cluster-3", "https://10.62.45.11:6443", "cluster3"),
];

/// A dev fleet whose clusters have the talk's server URLs and namespace, the talk's repository on
/// its git server, and `deploy/applications.yaml` with the repoURL pointing there.
async fn talk_demo_fleet() -> (Fleet, edgecd_testkit::GitRepo, String) {
    talk_demo_fleet_with(FleetConfig::default()).await
}

/// [`talk_demo_fleet`] with `config`.
async fn talk_demo_fleet_with(config: FleetConfig) -> (Fleet, edgecd_testkit::GitRepo, String) {
    let fleet = Fleet::start(config, |_| {}).await.unwrap();
    for (cluster, server, _) in TALK_CLUSTERS {
        let current = fleet
            .client()
            .get_cluster(v1::GetClusterRequest {
                name: cluster.into(),
            })
            .await
            .unwrap();
        fleet
            .client()
            .update_cluster(v1::UpdateClusterRequest {
                name: cluster.into(),
                labels: current.labels,
                annotations: current.annotations,
                server_url: server.into(),
                expected_version: current.version,
            })
            .await
            .unwrap();
        // The talk's Applications do not create their namespace: the cluster's operator does.
        fleet
            .create_namespace(cluster, "gitops-kubecon-demo")
            .await
            .unwrap();
    }
    let repo = fleet.git_server().create_repo("talk-demo").unwrap();
    repo.copy_dir(&fixture("talk-demo-repo"), "").unwrap();
    // The one change to the fixture: its repository URL is this git server's.
    let yaml = read(&fixture("talk-demo-repo/deploy/applications.yaml")).replace(
        "https://github.com/qingkunl/argocd-app-of-apps-demo.git",
        repo.url(),
    );
    repo.write("deploy/applications.yaml", &yaml).unwrap();
    repo.commit("the talk's demo repository").unwrap();
    (fleet, repo, yaml)
}

/// Syncs the talk's three apps and checks each overlay's objects on its cluster.
async fn assert_talk_demo_deployed(fleet: &Fleet) {
    for (cluster, _, overlay) in TALK_CLUSTERS {
        let name = format!("demo-{overlay}");
        let app = app(fleet, "kubecon-demo", &name).await.expect("imported");
        let spec = app.spec.unwrap();
        assert_eq!(
            spec.destination.as_ref().unwrap().cluster,
            cluster,
            "{name}"
        );
        sync(fleet, "kubecon-demo", &name).await;
        wait_synced_healthy(fleet, "kubecon-demo", &name).await;
        assert_objects(
            fleet,
            cluster,
            &fixture(&format!("talk-demo-expected/{overlay}.yaml")),
            "gitops-kubecon-demo",
        )
        .await;
    }
}

/// The talk's `deploy/applications.yaml` (three Argo CD Applications naming their clusters by API
/// server URL) imported at the hub deploys each overlay to the right cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn talk_demo_applications_import_to_the_right_clusters() {
    let (fleet, _repo, yaml) = talk_demo_fleet().await;

    // Argo CD needs the project; so does edgecd.
    let refused = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        refused
            .results
            .iter()
            .all(|r| r.action == "refused" && r.message.contains("kubecon-demo")),
        "{refused:?}"
    );
    fleet.create_open_project("kubecon-demo").await.unwrap();
    let results = apply(&fleet, yaml.clone(), "").await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert_talk_demo_deployed(&fleet).await;
    // Applying the same file again changes nothing.
    let again = apply(&fleet, yaml, "").await;
    assert!(again.iter().all(|r| r.action == "unchanged"), "{again:?}");

    // A config management plugin (deliberately unsupported) is refused naming the field, and nothing of the
    // file is applied.
    let plugin = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: plugin-app\nspec:\n  project: kubecon-demo\n  source:\n    repoURL: https://github.com/example/apps\n    plugin:\n      name: cmp\n  destination:\n    name: cluster-1\n    namespace: web\n";
    let error = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: plugin.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("spec.source.plugin"), "{text}");
    assert!(app(&fleet, "kubecon-demo", "plugin-app").await.is_none());
    fleet.shutdown().await;
}

/// `appsets/cluster-addons.yaml` applied at the hub for cluster-3 is evaluated by cluster-3's
/// spoke: one app per folder under its path, deployed there, shown read-only at the hub with
/// their owner; a folder added in git becomes an app.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_addons_are_evaluated_at_cluster_3s_spoke() {
    let fleet = polling_fleet().await;
    // minecraft's kustomization targets namespace `games`, which its app does not create.
    fleet.create_namespace("cluster-3", "games").await.unwrap();

    let yaml = read(&fixture("edge-fleet-repo/appsets/cluster-addons.yaml"))
        .replace("https://github.com/example/repo", fleet.repo().url());
    let results = apply(&fleet, yaml, "cluster-3").await;
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].message.contains("cluster-3"), "{results:?}");

    // Named after the cluster that generated them (docs/appsets.md, "Identity").
    for name in [
        "guestbook@cluster-3",
        "minecraft@cluster-3",
        "nginx@cluster-3",
    ] {
        wait_exists(&fleet, "default", name, true).await;
        let reported = app(&fleet, "default", name).await.unwrap();
        // The hub names the cluster that reported the app.
        let destination = reported
            .spec
            .as_ref()
            .unwrap()
            .destination
            .as_ref()
            .unwrap();
        assert_eq!(destination.cluster, "cluster-3", "{name}");
        let meta = reported.meta.unwrap();
        assert_eq!(meta.origin, v1::AppOrigin::Autonomous as i32, "{name}");
        let owner = meta.owner.expect("the spoke reports the owner");
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.scope.as_str()
            ),
            ("ApplicationSet", "cluster-addons", "cluster-3"),
            "{name}"
        );
        let local = name.split_once('@').unwrap().0;
        assert_eq!(
            reported.spec.unwrap().source.unwrap().path,
            format!("deploy/clusters/cluster-3/{local}")
        );
        // Commands still reach autonomous apps.
        sync(&fleet, "default", name).await;
    }
    for name in [
        "guestbook@cluster-3",
        "minecraft@cluster-3",
        "nginx@cluster-3",
    ] {
        wait_synced_healthy(&fleet, "default", name).await;
    }
    assert_objects(
        &fleet,
        "cluster-3",
        &fixture("edge-fleet-expected/cluster-3-minecraft.yaml"),
        "default",
    )
    .await;
    assert_objects(
        &fleet,
        "cluster-3",
        &fixture("edge-fleet-expected/cluster-3-nginx.yaml"),
        "default",
    )
    .await;
    assert_objects(
        &fleet,
        "cluster-3",
        &fixture("edge-fleet-repo/deploy/clusters/cluster-3/guestbook/guestbook.yaml"),
        "default",
    )
    .await;

    // Read-only at the hub.
    let current = app(&fleet, "default", "guestbook@cluster-3").await.unwrap();
    let refused = fleet
        .client()
        .update_application(v1::UpdateApplicationRequest {
            meta: current.meta.clone(),
            spec: current.spec.clone(),
            expected_spec_version: 0,
            dry_run: false,
        })
        .await;
    assert!(
        refused.is_err(),
        "an autonomous app must be read-only at the hub"
    );

    // A folder added in git becomes an app.
    fleet
        .repo()
        .write(
            "deploy/clusters/cluster-3/redis/redis.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: redis-config\ndata:\n  maxmemory: 64mb\n",
        )
        .unwrap();
    fleet.repo().commit("add redis").unwrap();
    wait_exists(&fleet, "default", "redis@cluster-3", true).await;
    fleet.shutdown().await;
}

/// The talk's app of apps: a parent Application at the hub (destination: the hub itself, Argo CD's
/// `https://kubernetes.default.svc`) whose path holds `deploy/applications.yaml` creates the three
/// Applications as its children, which deploy each overlay to its cluster; a child removed from git
/// is pruned, and deleting the parent deletes its children.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn talk_demo_as_app_of_apps_parent() {
    let (fleet, repo, yaml) = talk_demo_fleet().await;
    fleet.create_open_project("kubecon-demo").await.unwrap();
    let parent = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: demo-apps\n  namespace: argocd\nspec:\n  project: kubecon-demo\n  source:\n    repoURL: {}\n    targetRevision: HEAD\n    path: deploy\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: argocd\n  syncPolicy:\n    automated:\n      prune: true\n",
        repo.url()
    );
    let results = apply(&fleet, parent, "").await;
    assert_eq!(results.len(), 1, "{results:?}");
    let created = app(&fleet, "kubecon-demo", "demo-apps").await.unwrap();
    assert_eq!(
        created.spec.unwrap().destination.unwrap().cluster,
        "in-cluster"
    );

    for (_, _, overlay) in TALK_CLUSTERS {
        wait_exists(&fleet, "kubecon-demo", &format!("demo-{overlay}"), true).await;
        let child = app(&fleet, "kubecon-demo", &format!("demo-{overlay}"))
            .await
            .unwrap();
        let owner = child
            .meta
            .unwrap()
            .owner
            .expect("children record their parent");
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Application", "demo-apps")
        );
    }
    assert_talk_demo_deployed(&fleet).await;
    // The parent is Synced and Healthy once its children are.
    wait_synced_healthy(&fleet, "kubecon-demo", "demo-apps").await;

    // A child removed from git is pruned (the parent prunes automatically).
    let two = yaml
        .split("---")
        .filter(|doc| !doc.contains("demo-cluster3"))
        .collect::<Vec<_>>()
        .join("---");
    repo.write("deploy/applications.yaml", &two).unwrap();
    repo.commit("drop cluster3").unwrap();
    fleet
        .client()
        .refresh_application(v1::RefreshApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new("kubecon-demo", "demo-apps")),
            hard: true,
            ttl: None,
        })
        .await
        .unwrap();
    wait_exists(&fleet, "kubecon-demo", "demo-cluster3", false).await;
    assert!(app(&fleet, "kubecon-demo", "demo-cluster1").await.is_some());

    // Deleting the parent (with cascade) deletes its children.
    fleet
        .client()
        .delete_application(v1::DeleteApplicationRequest {
            app: Some(v1::AppRef::new("kubecon-demo", "demo-apps")),
            cascade: true,
        })
        .await
        .unwrap();
    wait_exists(&fleet, "kubecon-demo", "demo-cluster1", false).await;
    wait_exists(&fleet, "kubecon-demo", "demo-cluster2", false).await;
    fleet.shutdown().await;
}

/// The talk's app of apps with a Helm chart as the parent (`testdata/helm/talk-apps`, its children from
/// `values.clusters`), rendered at the hub with `helm template`: the three children deploy their overlays;
/// the parent's values changed to two clusters prune the third child.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_helm_chart_as_app_of_apps_parent_is_rendered_at_the_hub() {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return;
    }
    let helm_binary = edgecd_testkit::helm::helm_binary().unwrap();
    let (fleet, repo, _) = talk_demo_fleet_with(FleetConfig {
        helm_binary,
        ..FleetConfig::default()
    })
    .await;
    fleet.create_open_project("kubecon-demo").await.unwrap();
    repo.copy_dir(&fixture("helm/talk-apps"), "charts/talk-apps")
        .unwrap();
    repo.commit("the children as a Helm chart").unwrap();
    let parent = |clusters: &[(&str, &str, &str)]| {
        let list: String = clusters
            .iter()
            .map(|(_, server, overlay)| {
                format!("          - overlay: {overlay}\n            server: {server}\n")
            })
            .collect();
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: demo-apps\n  namespace: argocd\nspec:\n  project: kubecon-demo\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: charts/talk-apps\n    helm:\n      values: |\n        repoURL: {url}\n        clusters:\n{list}  destination:\n    server: https://kubernetes.default.svc\n    namespace: argocd\n  syncPolicy:\n    automated:\n      prune: true\n",
            url = repo.url()
        )
    };
    apply(&fleet, parent(&TALK_CLUSTERS), "").await;
    for (_, _, overlay) in TALK_CLUSTERS {
        wait_exists(&fleet, "kubecon-demo", &format!("demo-{overlay}"), true).await;
        let owner = app(&fleet, "kubecon-demo", &format!("demo-{overlay}"))
            .await
            .unwrap()
            .meta
            .unwrap()
            .owner
            .expect("children record their parent");
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("Application", "demo-apps")
        );
    }
    assert_talk_demo_deployed(&fleet).await;
    wait_synced_healthy(&fleet, "kubecon-demo", "demo-apps").await;

    // Two clusters in the parent's values: the third child is pruned.
    apply(&fleet, parent(&TALK_CLUSTERS[..2]), "").await;
    wait_exists(&fleet, "kubecon-demo", "demo-cluster3", false).await;
    assert!(app(&fleet, "kubecon-demo", "demo-cluster1").await.is_some());
    fleet.shutdown().await;
}

/// A git generator over a private repository reads it with the hub's sealed repository
/// credential, and only for the projects that credential is given to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_git_reads_use_project_scoped_credentials() {
    use edgecd_testkit::{GitHttpServer, GitRepo, HTTP_PASSWORD, HTTP_USER};
    let fleet = Fleet::start(FleetConfig::default(), |_| {}).await.unwrap();
    let repo = GitRepo::local().unwrap();
    repo.write(
        "apps/web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
    )
    .unwrap();
    repo.write(
        "apps/api/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\n",
    )
    .unwrap();
    repo.commit("two apps").unwrap();
    let server = GitHttpServer::start().unwrap();
    let url = server.serve("team/apps", &repo).unwrap();
    let set = |project: &str, name: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: {name}\nspec:\n  generators:\n  - git:\n      repoURL: {url}\n      revision: HEAD\n      directories:\n      - path: apps/*\n  template:\n    metadata:\n      name: '{name}-{{{{path.basename}}}}'\n    spec:\n      project: {project}\n      source:\n        repoURL: {url}\n        path: '{{{{path}}}}'\n      destination:\n        name: cluster-1\n        namespace: '{{{{path.basename}}}}'\n"
        )
    };
    // Without a credential the hub cannot read it: the set says so and generates nothing.
    apply(&fleet, set("default", "private"), "").await;
    let condition = |fleet: &Fleet, project: &'static str, name: &'static str| {
        let client = fleet.client().clone();
        async move {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let set = client
                    .get_application_set(v1::GetApplicationSetRequest {
                        project: project.into(),
                        name: name.into(),
                    })
                    .await
                    .unwrap();
                if let Some(c) = set.conditions.first() {
                    return (c.r#type.clone(), c.message.clone(), set.generated.len());
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{project}/{name} was never evaluated"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let (kind, message, generated) = condition(&fleet, "default", "private").await;
    assert_eq!(
        (kind.as_str(), generated),
        ("ErrorOccurred", 0),
        "{message}"
    );
    assert!(
        message.contains(&url) || message.contains("auth"),
        "{message}"
    );

    // The credential, given to project default only.
    fleet
        .client()
        .set_repository_credential(v1::SetRepositoryCredentialRequest {
            url_prefix: format!("http://127.0.0.1:{}/team/", server.port()),
            projects: vec!["default".into()],
            username: HTTP_USER.into(),
            password: HTTP_PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_exists(&fleet, "default", "private-web", true).await;
    wait_exists(&fleet, "default", "private-api", true).await;

    // Another project may not read through default's credential.
    fleet.create_open_project("other").await.unwrap();
    apply(&fleet, set("other", "borrowed"), "").await;
    let (kind, message, generated) = condition(&fleet, "other", "borrowed").await;
    assert_eq!(
        (kind.as_str(), generated),
        ("ErrorOccurred", 0),
        "{message}"
    );
    assert!(
        message.contains("not available to project other"),
        "{message}"
    );
    assert!(app(&fleet, "other", "borrowed-web").await.is_none());
    fleet.shutdown().await;
}

/// App of apps at the edge: an app on cluster-1 whose manifests are an Argo CD Application makes
/// cluster-1's spoke run that Application as its own (autonomous) app; replacing it in git prunes
/// the old child.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_of_apps_at_the_edge_runs_its_children_on_its_cluster() {
    let fleet = polling_fleet().await;
    let url = fleet.repo().url().to_owned();
    let child = |name: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: edge-demo/config\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: edge-demo\n  syncPolicy:\n    automated: {{}}\n    syncOptions:\n    - CreateNamespace=true\n"
        )
    };
    fleet
        .repo()
        .write(
            "edge-demo/config/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edge-demo\ndata:\n  cache: warm\n",
        )
        .unwrap();
    fleet
        .repo()
        .write("edge-demo/apps/child.yaml", &child("edge-child"))
        .unwrap();
    fleet.repo().commit("an edge app of apps").unwrap();
    let parent = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: edge-parent\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: edge-demo/apps\n  destination:\n    name: cluster-1\n    namespace: edgecd-system\n  syncPolicy:\n    automated:\n      prune: true\n"
    );
    apply(&fleet, parent, "").await;

    wait_exists(&fleet, "default", "edge-child@cluster-1", true).await;
    let reported = wait_synced_healthy(&fleet, "default", "edge-child@cluster-1").await;
    let meta = reported.meta.unwrap();
    assert_eq!(meta.origin, v1::AppOrigin::Autonomous as i32);
    assert_eq!(reported.status.unwrap().sync.unwrap().revision.len(), 40);
    wait_synced_healthy(&fleet, "default", "edge-parent").await;
    let client = fleet.emulator().unwrap().clusters()[0]
        .client()
        .await
        .unwrap();
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client, "edge-demo");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while configmaps.get_opt("edge-demo").await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child's ConfigMap never appeared on cluster-1"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The parent's manifests now name another child: the first is pruned.
    fleet
        .repo()
        .write("edge-demo/apps/child.yaml", &child("edge-child-2"))
        .unwrap();
    fleet.repo().commit("rename the child").unwrap();
    wait_exists(&fleet, "default", "edge-child-2@cluster-1", true).await;
    wait_exists(&fleet, "default", "edge-child@cluster-1", false).await;
    fleet.shutdown().await;
}
