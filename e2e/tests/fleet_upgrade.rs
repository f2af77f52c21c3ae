//! A fleet upgraded from the hub (docs/operations.md#upgrading-the-fleet): the spokes' own chart (`charts/edgecd-spoke`, from git) managed as an edgecd application set over every cluster labelled `spoke-release` (`testdata/fleet-upgrade/edgecd-spoke-set.yaml`), the image tag taken from that label. Three spokes on emulated clusters, each watched by a stand-in for the kubelet that restarts the cluster's spoke into the release its `edgecd-spoke` Deployment names whenever that changes. Relabelling one cluster rolls only its spoke to the next minor release; it restarts in the middle of its own sync and reconnects, the hub shows the new release as supported skew, and the other two stay; relabelling the rest rolls them too, and every cluster's record has each deployment, none left running.
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), the test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness::{test_engine_config, wait_for};
use edgecd_e2e::testdata;
use edgecd_hub::link::LinkConfig;
use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_testkit::GitServer;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use tokio::sync::{oneshot, watch};
use tonic::transport::Channel;

const STATE_NS: &str = "edgecd-system";
const CLUSTERS: [&str; 3] = ["cluster-1", "cluster-2", "cluster-3"];
const WAIT: Duration = Duration::from_secs(120);
const LABEL: &str = "spoke-release";

type Client = HubServiceClient<Channel>;

fn current() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The release one minor version after this build's (`0.1.0` → `0.2.0`).
fn next_minor() -> String {
    let current = semver::Version::parse(env!("CARGO_PKG_VERSION")).unwrap();
    format!("{}.{}.0", current.major, current.minor + 1)
}

/// A spoke process: its engine and hub link, announcing `version`. Dropping it ends both, as a container's end.
struct SpokeProcess {
    _engine_stop: oneshot::Sender<()>,
    _link_stop: oneshot::Sender<()>,
    _cache: tempfile::TempDir,
}

async fn start_spoke(
    client: kube::Client,
    cluster: &str,
    hub: SocketAddr,
    helm: &Path,
    version: &str,
) -> SpokeProcess {
    let live = LiveCluster::new(client);
    edgecd_spoke::runtime::install_crd(&live).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(live.client(), STATE_NS)
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let git_config = GitConfig {
        ls_remote_ttl: Duration::from_millis(100),
        ..GitConfig::new(cache.path())
    };
    let git = GitCache::new(git_config, CredentialStore::default()).unwrap();
    let config = EngineConfig {
        cluster_name: cluster.into(),
        helm_binary: helm.to_path_buf(),
        helm_dir: Some(cache.path().join("helm")),
        ..test_engine_config()
    };
    let (engine, triggers) = Engine::new(live, git, config);
    let (engine_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
        let _ = stopped.await;
    }));
    let (link_stop, stopped) = oneshot::channel::<()>();
    let link_config = HubLinkConfig {
        spoke_version: version.to_owned(),
        ..HubLinkConfig::new(format!("http://{hub}"), cluster, STATE_NS)
    };
    tokio::spawn(link::run(link_config, engine, async move {
        let _ = stopped.await;
    }));
    SpokeProcess {
        _engine_stop: engine_stop,
        _link_stop: link_stop,
        _cache: cache,
    }
}

/// The image tag of the cluster's `edgecd-spoke` Deployment, if it exists.
async fn deployed_tag(client: &kube::Client) -> Option<String> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), STATE_NS)
        .get_opt("edgecd-spoke")
        .await
        .ok()??;
    let image = deployment
        .spec?
        .template
        .spec?
        .containers
        .first()?
        .image
        .clone()?;
    image.rsplit_once(':').map(|(_, tag)| tag.to_owned())
}

/// The cluster's node, as far as this test needs one: it runs the spoke, and when the `edgecd-spoke` Deployment
/// names another release than the one running, it ends the running spoke and starts that release (the kubelet's
/// part of a rollout under the chart's `Recreate` strategy). Reports each release it started.
fn run_node(
    emulator: Arc<KubeEmulator>,
    cluster: &'static str,
    hub: SocketAddr,
    helm: PathBuf,
) -> (watch::Receiver<Vec<String>>, oneshot::Sender<()>) {
    let (started_tx, started) = watch::channel(vec![current()]);
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let client = emulator.client().await.unwrap();
        let mut running = current();
        let mut spoke = Some(start_spoke(client.clone(), cluster, hub, &helm, &running).await);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            let Some(tag) = deployed_tag(&client).await else {
                continue;
            };
            if tag != running {
                // Recreate: the old container ends before the new one starts.
                drop(spoke.take());
                running = tag;
                spoke = Some(start_spoke(client.clone(), cluster, hub, &helm, &running).await);
                started_tx.send_modify(|all| all.push(running.clone()));
            }
        }
        drop(spoke);
    });
    (started, stop)
}

async fn cluster(client: &mut Client, name: &str) -> v1::Cluster {
    client
        .get_cluster(v1::GetClusterRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn label(client: &mut Client, name: &str, release: &str) {
    let labels = HashMap::from([(LABEL.to_owned(), release.to_owned())]);
    client
        .update_cluster(v1::UpdateClusterRequest {
            name: name.into(),
            labels,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Waits until `cluster` runs `release`: its Deployment names it, the node started it, the hub shows that spoke
/// connected with that release, and its `edgecd-spoke` app is Synced and Healthy at the hub.
async fn wait_running(
    client: &Client,
    emulator: &KubeEmulator,
    started: &watch::Receiver<Vec<String>>,
    name: &str,
    release: &str,
) -> v1::Cluster {
    let kube = emulator.client().await.unwrap();
    let what = format!("{name} running spoke {release}");
    wait_for(&what, WAIT, async || {
        if deployed_tag(&kube).await.as_deref() != Some(release)
            || started.borrow().last().map(String::as_str) != Some(release)
        {
            return None;
        }
        let mut client = client.clone();
        let shown = cluster(&mut client, name).await;
        let versions = shown.versions.clone()?;
        let connected =
            shown.connection.as_ref()?.state == v1::ConnectionStateCode::Connected as i32;
        if versions.spoke_version != release || !connected {
            return None;
        }
        let app = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: format!("edgecd-spoke-{name}"),
                }),
            })
            .await
            .ok()?
            .into_inner();
        let status = app.status?;
        let synced = status.sync.as_ref()?.status == v1::SyncStatusCode::Synced as i32;
        let healthy = status.health.as_ref()?.status == v1::HealthStatusCode::Healthy as i32;
        (synced && healthy).then_some(shown)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spokes_chart_as_an_application_set_rolls_the_fleet_wave_by_wave() {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return;
    }
    let helm = edgecd_testkit::helm::helm_binary().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.link = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let hub: RunningServer = Server::start(config).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", hub.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HubServiceClient::new(channel);

    // The chart in git, as a fork or mirror of edgecd's repository holds it.
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("edgecd").unwrap();
    repo.copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/edgecd-spoke"),
        "charts/edgecd-spoke",
    )
    .unwrap();
    repo.commit("the spoke's chart").unwrap();

    let mut emulators = Vec::new();
    let mut nodes = Vec::new();
    for name in CLUSTERS {
        client
            .create_cluster(v1::CreateClusterRequest {
                name: name.into(),
                labels: HashMap::from([(LABEL.to_owned(), current())]),
                ..Default::default()
            })
            .await
            .unwrap();
        let emulator = Arc::new(
            KubeEmulator::start(EmulatorConfig {
                stage_delay: Duration::from_millis(50),
                ..EmulatorConfig::default()
            })
            .await
            .unwrap(),
        );
        nodes.push(run_node(
            Arc::clone(&emulator),
            name,
            hub.grpc_addr(),
            helm.clone(),
        ));
        emulators.push(emulator);
    }

    // The set, as documented, applied at the hub.
    let yaml = std::fs::read_to_string(testdata().join("fleet-upgrade/edgecd-spoke-set.yaml"))
        .unwrap()
        .replace("REPO_URL", repo.url())
        .replace("HUB_ADDRESS", &format!("http://{}", hub.grpc_addr()));
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            ..Default::default()
        })
        .await
        .unwrap();
    for (i, name) in CLUSTERS.iter().enumerate() {
        wait_running(&client, &emulators[i], &nodes[i].0, name, &current()).await;
    }

    // Wave 1: one cluster. Its spoke applies its own Deployment, is ended and replaced mid-sync, and reconnects.
    let next = next_minor();
    label(&mut client, CLUSTERS[0], &next).await;
    let upgraded = wait_running(&client, &emulators[0], &nodes[0].0, CLUSTERS[0], &next).await;
    let skew = upgraded.versions.unwrap().skew.unwrap();
    assert_eq!(
        skew.state,
        v1::version_skew::State::Supported as i32,
        "{skew:?}"
    );
    assert_eq!(skew.minors, 1);
    for (i, name) in CLUSTERS.iter().enumerate().skip(1) {
        let kube = emulators[i].client().await.unwrap();
        assert_eq!(deployed_tag(&kube).await, Some(current()), "{name}");
        assert_eq!(
            *nodes[i].0.borrow(),
            vec![current()],
            "{name} was restarted"
        );
        let shown = cluster(&mut client, name).await;
        assert_eq!(shown.versions.unwrap().spoke_version, current(), "{name}");
    }

    // Wave 2: the rest.
    for name in &CLUSTERS[1..] {
        label(&mut client, name, &next).await;
    }
    for (i, name) in CLUSTERS.iter().enumerate() {
        wait_running(&client, &emulators[i], &nodes[i].0, name, &next).await;
        assert_eq!(
            *nodes[i].0.borrow(),
            vec![current(), next.clone()],
            "{name}"
        );
    }

    // Nothing lost: every cluster's record has the install and the upgrade, and no deployment was left running
    // by the spoke that ended in the middle of it.
    for name in CLUSTERS {
        let deployments = wait_for(
            &format!("{name}'s deployments of its spoke"),
            WAIT,
            async || {
                let found = client
                    .clone()
                    .list_deployments(v1::ListDeploymentsRequest {
                        cluster: name.into(),
                        app: format!("edgecd-spoke-{name}"),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .items;
                (found.len() >= 2).then_some(found)
            },
        )
        .await;
        eprintln!(
            "{name}: {:?}",
            deployments
                .iter()
                .map(|d| (d.history_id, d.result, d.initiated_by.as_str()))
                .collect::<Vec<_>>()
        );
        let newest = &deployments[0];
        assert_eq!(
            newest.result,
            v1::OperationPhase::Succeeded as i32,
            "{name}: {deployments:?}"
        );
        assert!(
            deployments
                .iter()
                .all(|d| d.result != v1::OperationPhase::Running as i32),
            "{name}: {deployments:?}"
        );
    }
    for (_, stop) in nodes {
        let _ = stop.send(());
    }
    hub.shutdown().await.unwrap();
}
