//! The hub's receive path on the committed stream test vectors (`proto/testdata/stream/`, docs/protocol.md#test-vectors): a real hub session (SQLite store, gRPC on loopback) takes every spoke message of every protocol version's vectors, acknowledges each sequenced one once stored, and stores what they say.
//!
//! The vectors are sent as they are committed but for their envelope: `seq` and `ack` are set for
//! this stream (Hello, heartbeats and live messages unsequenced, the rest numbered from 1 in the
//! order of their own `seq`), since a session only takes sequence numbers that follow on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination};
use edgecd_core::project::{ProjectDestination, ProjectSpec};
use edgecd_hub::link::{LinkConfig, SpokeLink};
use edgecd_hub::store::{DeploymentFilter, EventFilter, NewApp, NewCluster, SqliteStore, Store};
use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_proto::v1::{SpokeMessage, hub_message, spoke_message};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Channel, Server};

/// The cluster the vectors speak for (`samples::CLUSTER` in the proto tests).
const CLUSTER: &str = "edge-1";

/// This major's version directories of the vectors.
fn version_dirs() -> Vec<PathBuf> {
    edgecd_testkit::stream_vectors::version_dirs(edgecd_proto::PROTOCOL_MAJOR)
}

/// The spoke messages of one version directory (`spoke_*.txt`: `#` comments, then hex), in the
/// order of their own `seq`.
fn spoke_vectors(dir: &Path) -> Vec<(String, SpokeMessage)> {
    let mut vectors: Vec<(String, SpokeMessage)> =
        edgecd_testkit::stream_vectors::read(dir, "spoke_")
            .into_iter()
            .map(|(name, path, bytes)| {
                let message = SpokeMessage::decode(bytes.as_slice())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (name, message)
            })
            .collect();
    vectors.sort_by_key(|(name, m)| (m.seq, name.clone()));
    vectors
}

fn unsequenced(message: &SpokeMessage) -> bool {
    matches!(
        message.body,
        Some(
            spoke_message::Body::Hello(_)
                | spoke_message::Body::Heartbeat(_)
                | spoke_message::Body::LiveChunk(_)
                | spoke_message::Body::LiveEnd(_)
                | spoke_message::Body::LiveCredit(_)
        )
    )
}

/// A store with the vectors' cluster, project `team-a` (open to every repository and destination)
/// and its app `guestbook` on the cluster.
async fn store(dir: &Path) -> Arc<dyn Store> {
    let store = SqliteStore::open(&dir.join("hub.db")).await.unwrap();
    store
        .create_cluster(&NewCluster {
            name: CLUSTER.into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    let project = ProjectSpec {
        source_repos: vec!["*".into()],
        destinations: vec![ProjectDestination {
            cluster_selector: None,
            clusters: vec!["*".into()],
            namespace: "*".into(),
        }],
        ..ProjectSpec::default()
    };
    store.create_project("team-a", &project).await.unwrap();
    store
        .create_app(&NewApp {
            project: "team-a".into(),
            name: "guestbook".into(),
            spec: ApplicationSpec {
                project: "team-a".into(),
                source: ApplicationSource {
                    repo_url: "https://git.example/fleet.git".into(),
                    target_revision: "main".into(),
                    path: "apps/guestbook".into(),
                    ..ApplicationSource::default()
                },
                destination: Destination {
                    cluster: CLUSTER.into(),
                    namespace: "guestbook".into(),
                    ..Destination::default()
                },
                ..ApplicationSpec::default()
            },
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    Arc::new(store)
}

async fn start_hub(store: Arc<dyn Store>) -> Channel {
    let link = SpokeLink::new(LinkConfig::default(), store);
    link.spawn_router();
    link.spawn_watch();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_session_takes_and_stores_every_spoke_vector_of_every_version() {
    for dir in version_dirs() {
        check_version(&dir).await;
    }
}

async fn check_version(dir: &Path) {
    let at = dir.file_name().unwrap().to_string_lossy().into_owned();
    let tmp = tempfile::tempdir().unwrap();
    let store = store(tmp.path()).await;
    let channel = start_hub(Arc::clone(&store)).await;

    let vectors = spoke_vectors(dir);
    let kinds: BTreeSet<String> = vectors.iter().map(|(name, _)| name.clone()).collect();
    for kind in [
        "spoke_hello",
        "spoke_app_status",
        "spoke_events",
        "spoke_deployments",
    ] {
        assert!(kinds.contains(kind), "{at}: no {kind} vector");
    }
    let (tx, rx) = mpsc::channel(64);
    let mut client = SpokeServiceClient::new(channel);
    let (hello_name, mut hello) = vectors
        .iter()
        .find(|(name, _)| name == "spoke_hello")
        .cloned()
        .unwrap();
    hello.seq = 0;
    hello.ack = 0;
    tx.send(hello).await.unwrap();
    let mut inbound = client
        .connect(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = inbound.message().await.unwrap().expect("a first message");
    match first.body {
        Some(hub_message::Body::Welcome(welcome)) => assert_eq!(welcome.cluster_name, CLUSTER),
        other => panic!("{at}/{hello_name}: the hub answers {other:?} instead of Welcome"),
    }

    let mut last_seq = 0;
    for (name, mut message) in vectors.into_iter().filter(|(name, _)| *name != hello_name) {
        message.ack = 0;
        message.seq = if unsequenced(&message) {
            0
        } else {
            last_seq += 1;
            last_seq
        };
        tx.send(message)
            .await
            .unwrap_or_else(|_| panic!("{at}/{name}: the stream is gone"));
    }
    // Every sequenced vector acknowledged: stored, and the stream still open.
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = inbound
                .message()
                .await
                .unwrap_or_else(|e| panic!("{at}: the hub broke the stream: {e}"))
                .unwrap_or_else(|| panic!("{at}: the hub closed the stream"));
            if message.ack >= last_seq {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{at}: the hub did not acknowledge seq {last_seq}"));

    // What the vectors say, in the store.
    let app = store.get_app("team-a", "guestbook").await.unwrap();
    let status = app
        .status
        .unwrap_or_else(|| panic!("{at}: guestbook's reported status was not stored"));
    assert_eq!(status.status_version, 34, "{at}");
    assert_eq!(status.history.len(), 2, "{at}");
    assert_eq!(status.conditions.len(), 2, "{at}");
    assert!(status.operation_state.is_some(), "{at}");
    if kinds.contains("spoke_resource_tree") {
        let tree = store
            .get_resource_tree("team-a", "guestbook")
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{at}: no resource tree stored"));
        assert_eq!(tree["nodes"].as_array().map(Vec::len), Some(2), "{at}");
    }
    let events = store
        .list_events(
            &EventFilter {
                cluster: Some(CLUSTER.into()),
                app: None,
            },
            100,
            None,
        )
        .await
        .unwrap()
        .items;
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ids.contains("event-1") && ids.contains("event-2"),
        "{at}: events stored: {ids:?}"
    );
    let deployments = store
        .list_deployments(
            &DeploymentFilter {
                cluster: Some(CLUSTER.into()),
                ..DeploymentFilter::default()
            },
            100,
            None,
        )
        .await
        .unwrap()
        .items;
    let history: BTreeSet<i64> = deployments.iter().map(|d| d.history_id).collect();
    assert_eq!(history, BTreeSet::from([3, 4]), "{at}: deployments stored");
    assert!(
        deployments.iter().any(|d| d.rollback_of == Some(2)),
        "{at}: the rollback lost what it rolled back to"
    );
}
