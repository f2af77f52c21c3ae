//! Version skew end to end (docs/protocol.md#version-skew): a hub and three spokes on emulated clusters; one spoke is stopped and replaced by a build announcing the next minor version (of the product and of the protocol, with a capability this hub has never heard of) while the others stay, and the fleet keeps working: a commit pushed during the upgrade reaches every cluster and the hub's record once, commands run everywhere, and the hub shows each spoke's release and where it stands against its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, OperationPhase, SyncPolicy,
};
use edgecd_core::link::capabilities::names;
use edgecd_core::link::{Capabilities, ProtocolVersion, Skew};
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_e2e::harness::{SpokeEngine, wait_for};
use edgecd_e2e::testdata;
use edgecd_hub::link::{
    CommandPayload, DESIRED_CHANNEL, LinkConfig, SpokeLink, command_payload_kind,
};
use edgecd_hub::store::{
    CommandOutcome, ConnectionKind, DeploymentFilter, NewApp, NewCluster, NewCommand, SqliteStore,
    Store,
};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_spoke::link::HubLinkConfig;
use edgecd_testkit::GitServer;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

const STATE_NS: &str = "edgecd-system";
const CLUSTERS: [&str; 3] = ["cluster-1", "cluster-2", "cluster-3"];
const WAIT: Duration = Duration::from_secs(120);
const FUTURE_CAPABILITY: &str = "from-the-next-minor.v1";

/// The release one minor version after this build's (`0.1.0` → `0.2.0`).
fn next_minor() -> String {
    let current = semver::Version::parse(env!("CARGO_PKG_VERSION")).unwrap();
    format!("{}.{}.0", current.major, current.minor + 1)
}

async fn start_hub(store: Arc<dyn Store>) -> SocketAddr {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        stale_after: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, store);
    link.spawn_router();
    link.spawn_watch();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    addr
}

/// The hub link of this build for `cluster`.
fn link_config(hub: SocketAddr, cluster: &str) -> HubLinkConfig {
    HubLinkConfig::new(format!("http://{hub}"), cluster, STATE_NS)
}

/// The hub link a build one minor version newer opens: its release, the next protocol minor, and a capability
/// this hub does not know beside all of this build's.
fn newer_link_config(hub: SocketAddr, cluster: &str) -> HubLinkConfig {
    let current = link_config(hub, cluster);
    let capabilities = Capabilities::from_names(
        current
            .capabilities
            .iter()
            .map(str::to_owned)
            .chain([FUTURE_CAPABILITY.to_owned()]),
    );
    HubLinkConfig {
        spoke_version: next_minor(),
        protocol: ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR + 1,
        },
        capabilities,
        ..current
    }
}

async fn create_app(store: &dyn Store, cluster: &str, repo_url: &str) {
    let overlay = cluster.replace('-', "");
    let spec = ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: repo_url.into(),
            target_revision: "HEAD".into(),
            path: format!("deploy/overlays/{overlay}"),
            ..ApplicationSource::default()
        },
        destination: Destination {
            cluster: cluster.into(),
            namespace: "demo".into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    store
        .create_app(&NewApp {
            project: "default".into(),
            name: format!("demo-{cluster}"),
            spec,
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    store.notify(DESIRED_CHANNEL, cluster).await.unwrap();
}

/// Waits until every cluster's app is Synced and Healthy at the hub at `revision`.
async fn wait_synced_everywhere(store: &dyn Store, revision: &str) {
    for cluster in CLUSTERS {
        let what = format!("demo-{cluster} Synced and Healthy at {revision} at the hub");
        wait_for(&what, WAIT, async || {
            let status = store
                .get_app("default", &format!("demo-{cluster}"))
                .await
                .ok()?
                .status?;
            (status.sync.status == SyncStatus::Synced
                && status.health.status == Health::Healthy
                && status.sync.revision == revision)
                .then_some(())
        })
        .await;
    }
}

async fn refresh(store: &dyn Store, cluster: &str) -> String {
    let payload = CommandPayload::Refresh { hard: true };
    store
        .enqueue_command(&NewCommand {
            id: None,
            project: "default".into(),
            app: format!("demo-{cluster}"),
            cluster: cluster.into(),
            kind: command_payload_kind(&payload).into(),
            payload: serde_json::to_value(&payload).unwrap(),
            issued_by: "alice".into(),
            deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
            trace: None,
        })
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spoke_upgraded_to_the_next_minor_while_the_others_stay_keeps_the_fleet_working() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    for cluster in CLUSTERS {
        store
            .create_cluster(&NewCluster {
                name: cluster.into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
    }
    let hub = start_hub(Arc::clone(&store)).await;
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("demo").unwrap();
    repo.copy_dir(&testdata().join("talk-demo-repo"), "")
        .unwrap();
    let first = repo.commit("demo").unwrap();

    let mut emulators = Vec::new();
    let mut spokes = Vec::new();
    for cluster in CLUSTERS {
        let emulator = KubeEmulator::start(EmulatorConfig {
            stage_delay: Duration::from_millis(50),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let mut spoke = SpokeEngine::start(emulator.client().await.unwrap(), cluster, WAIT)
            .await
            .unwrap();
        spoke.connect(link_config(hub, cluster)).await;
        create_app(store.as_ref(), cluster, repo.url()).await;
        emulators.push(emulator);
        spokes.push(spoke);
    }
    wait_synced_everywhere(store.as_ref(), &first).await;
    for cluster in CLUSTERS {
        let record = store.get_cluster(cluster).await.unwrap();
        assert_eq!(record.versions.spoke_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(record.versions.protocol_minor, edgecd_proto::PROTOCOL_MINOR);
    }

    // The upgrade of cluster-2: its spoke process ends (engine and link), a commit lands meanwhile, and the
    // newer build starts on the same cluster, from the state the old one left there.
    let old = spokes.remove(1);
    drop(old);
    for overlay in ["cluster1", "cluster2", "cluster3"] {
        repo.write(
            &format!("deploy/overlays/{overlay}/extra.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: b\n",
        )
        .unwrap();
        let kustomization = format!("deploy/overlays/{overlay}/kustomization.yaml");
        let text = std::fs::read_to_string(testdata().join("talk-demo-repo").join(&kustomization))
            .unwrap();
        repo.write(
            &kustomization,
            &text.replace("- ../../base\n", "- ../../base\n- extra.yaml\n"),
        )
        .unwrap();
    }
    let second = repo
        .commit("an extra ConfigMap, pushed during the upgrade")
        .unwrap();
    let mut newer = SpokeEngine::start(emulators[1].client().await.unwrap(), CLUSTERS[1], WAIT)
        .await
        .unwrap();
    newer.connect(newer_link_config(hub, CLUSTERS[1])).await;
    spokes.insert(1, newer);

    // The fleet keeps working: the commit reached every cluster and the hub.
    wait_synced_everywhere(store.as_ref(), &second).await;
    for (cluster, emulator) in CLUSTERS.iter().zip(&emulators) {
        let client = emulator.client().await.unwrap();
        let extra = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client, "demo")
            .get_opt("extra")
            .await
            .unwrap();
        assert!(extra.is_some(), "{cluster}: the new commit's ConfigMap");
    }

    // The hub shows each spoke's release, and where it stands against its own.
    let upgraded = store.get_cluster(CLUSTERS[1]).await.unwrap();
    assert_eq!(upgraded.connection.state, ConnectionKind::Connected);
    assert_eq!(upgraded.versions.spoke_version, next_minor());
    assert_eq!(
        upgraded.versions.protocol_minor,
        edgecd_proto::PROTOCOL_MINOR + 1
    );
    let agreed = &upgraded.versions.capabilities;
    assert!(!agreed.iter().any(|c| c == FUTURE_CAPABILITY), "{agreed:?}");
    for needed in [names::STATUS_DELTAS, names::COMMANDS, names::DEPLOYMENTS] {
        assert!(agreed.iter().any(|c| c == needed), "{needed}: {agreed:?}");
    }
    assert_eq!(
        edgecd_core::link::skew::POLICY
            .assess(env!("CARGO_PKG_VERSION"), &upgraded.versions.spoke_version),
        Skew::Supported { minors: 1 }
    );
    for cluster in [CLUSTERS[0], CLUSTERS[2]] {
        let record = store.get_cluster(cluster).await.unwrap();
        assert_eq!(record.versions.spoke_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(record.connection.state, ConnectionKind::Connected);
    }

    // Nothing lost: every cluster's record has the deployment of each commit, once.
    for cluster in CLUSTERS {
        let filter = DeploymentFilter {
            cluster: Some(cluster.into()),
            ..DeploymentFilter::default()
        };
        let deployed = wait_for(
            &format!("{cluster}'s two deployments in the hub's record"),
            WAIT,
            async || {
                let page = store.list_deployments(&filter, 100, None).await.ok()?;
                (page.items.len() >= 2).then_some(page.items)
            },
        )
        .await;
        let mut revisions: Vec<&str> = deployed.iter().map(|d| d.to_revision.as_str()).collect();
        revisions.sort_unstable();
        let mut expected = vec![first.as_str(), second.as_str()];
        expected.sort_unstable();
        assert_eq!(revisions, expected, "{cluster}: {deployed:?}");
        assert!(
            deployed
                .iter()
                .all(|d| d.result == OperationPhase::Succeeded),
            "{cluster}: {deployed:?}"
        );
    }

    // Commands run on old and new spokes alike.
    let ids: Vec<(String, &str)> = {
        let mut ids = Vec::new();
        for cluster in CLUSTERS {
            ids.push((refresh(store.as_ref(), cluster).await, cluster));
        }
        ids
    };
    for (id, cluster) in ids {
        wait_for(&format!("the refresh on {cluster}"), WAIT, async || {
            let record = store.get_command(&id).await.ok()?;
            (record.outcome == CommandOutcome::Succeeded).then_some(())
        })
        .await;
    }
    drop(spokes);
}
