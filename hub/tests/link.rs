//! The `Connect` stream over real TCP between the hub's SpokeService and the spoke's link client: handshake, capability negotiation, version skew, acknowledgements, a database outage waited out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::link::capabilities::names;
use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_hub::link::{LinkConfig, SpokeLink};
use edgecd_hub::store::{NewCluster, PgStore, SqliteStore, Store};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_proto::v1::{AppStatusBatch, SpokeMessage, go_away, spoke_message};
use edgecd_spoke::link::{HelloParams, LinkError, LinkSession, handshake};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};

/// A hub on a fresh SQLite store with `cluster-1` registered.
async fn start_hub(config: LinkConfig) -> SocketAddr {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    start_hub_on(config, Arc::new(store), dir).await
}

/// A hub on `store`, with `cluster-1` registered; `dir` lives as long as the server.
async fn start_hub_on(
    config: LinkConfig,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
) -> SocketAddr {
    register_cluster_1(store.as_ref()).await;
    let link = SpokeLink::new(config, store);
    link.spawn_router();
    link.spawn_watch();
    serve(link, Some(dir)).await
}

/// Registers `cluster-1`, the cluster every test's spoke connects as.
async fn register_cluster_1(store: &dyn Store) {
    store
        .create_cluster(&NewCluster {
            name: "cluster-1".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
}

/// Serves `link` on a fresh local port (`dir` lives as long as the server).
async fn serve(link: SpokeLink, dir: Option<tempfile::TempDir>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _dir = dir;
        Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    addr
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn hello(capabilities: Capabilities, protocol: ProtocolVersion) -> HelloParams {
    HelloParams {
        cluster_name: "cluster-1".into(),
        spoke_version: "0.1.0".into(),
        protocol,
        capabilities,
        kubernetes_version: "v1.33.0".into(),
        server_url: "https://10.0.0.1:6443".into(),
        epoch: "epoch-1".into(),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    }
}

const V1_0: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };

#[tokio::test]
async fn hello_welcome_negotiates_the_common_capabilities() {
    let addr = start_hub(LinkConfig::default()).await;
    let session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    let n = &session.negotiated;
    assert_eq!(n.cluster_name, "cluster-1");
    assert_eq!(n.hub_protocol, V1_0);
    // Everything the hub implements.
    assert_eq!(n.capabilities, Capabilities::all_v1());
    assert_eq!(n.resume_spoke_seq, 0);
    assert!(
        n.full_status_resync,
        "a new epoch needs a full status report"
    );
    assert!(n.window >= 1);
}

/// Version skew: a spoke one minor newer, which lacks one capability and
/// announces one the hub has never heard of, still works; the negotiated set
/// excludes both.
#[tokio::test]
async fn a_newer_minor_with_a_capability_switched_off_keeps_working() {
    let addr = start_hub(LinkConfig::default()).await;
    let spoke_caps = Capabilities::from_names(
        Capabilities::all_v1()
            .without(names::RESOURCE_TREES)
            .iter()
            .map(str::to_owned)
            .chain(["from-the-future.v9".to_owned()]),
    );
    let newer = ProtocolVersion { major: 1, minor: 1 };
    let session = handshake(channel(addr).await, &hello(spoke_caps, newer))
        .await
        .unwrap();
    let caps = &session.negotiated.capabilities;
    assert!(!caps.contains(names::RESOURCE_TREES));
    assert!(!caps.contains("from-the-future.v9"));
    assert!(caps.contains(names::STATUS_DELTAS));
    assert!(caps.contains(names::COMMANDS));
}

#[tokio::test]
async fn another_major_version_is_told_to_go_away() {
    let addr = start_hub(LinkConfig::default()).await;
    let v2 = ProtocolVersion { major: 2, minor: 0 };
    let err = handshake(channel(addr).await, &hello(Capabilities::all_v1(), v2))
        .await
        .unwrap_err();
    match err {
        LinkError::GoAway {
            reason,
            message,
            retry_after,
        } => {
            assert_eq!(reason, go_away::Reason::ProtocolUnsupported);
            assert!(message.contains("major"), "{message}");
            assert!(retry_after.is_some());
        }
        other => panic!("expected GoAway, got {other:?}"),
    }
}

#[tokio::test]
async fn a_spoke_missing_a_required_capability_is_refused_with_the_reason() {
    let addr = start_hub(LinkConfig::default()).await;
    let caps = Capabilities::all_v1().without(names::STATUS_DELTAS);
    let err = handshake(channel(addr).await, &hello(caps, V1_0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::GoAway { message, .. } if message.contains(names::STATUS_DELTAS)),
        "{err:?}"
    );
}

/// Sequenced messages are acknowledged cumulatively; replays are
/// acknowledged again without being processed twice; a message type the hub
/// does not know (from a newer spoke) is acknowledged and ignored.
#[tokio::test]
async fn sequenced_messages_are_acked_including_replays_and_unknown_types() {
    let addr = start_hub(LinkConfig::default()).await;
    let mut session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    let unknown = |seq| SpokeMessage {
        seq,
        ack: 0,
        body: None,
    };
    for seq in [1, 2, 2, 3] {
        session.outbound.send(unknown(seq)).await.unwrap();
    }
    // Acknowledgements are cumulative: one may cover several messages that
    // arrived together, and they never go backwards.
    let mut acks = Vec::new();
    while acks.last() != Some(&3) {
        acks.push(next_ack(&mut session).await);
        assert!(acks.windows(2).all(|w| w[0] <= w[1]), "{acks:?}");
    }
    // A replay on its own is acknowledged again, and not processed twice
    // (the acknowledgement stays at 3).
    session.outbound.send(unknown(2)).await.unwrap();
    assert_eq!(next_ack(&mut session).await, 3);
    session.outbound.send(unknown(4)).await.unwrap();
    assert_eq!(next_ack(&mut session).await, 4);
}

#[tokio::test]
async fn a_gap_in_sequence_numbers_ends_the_stream_with_an_error() {
    let addr = start_hub(LinkConfig::default()).await;
    let mut session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    session
        .outbound
        .send(SpokeMessage {
            seq: 5,
            ack: 0,
            body: None,
        })
        .await
        .unwrap();
    let status = loop {
        match session.inbound.message().await {
            // Heartbeats, the desired set and pure acks may come first.
            Ok(Some(m)) if m.body.is_some() || m.seq == 0 => continue,
            Ok(other) => panic!("expected an error, got {other:?}"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("expected 1, got 5"), "{status:?}");
}

/// Handshakes take turns (`max_handshakes`), and each turn is given back once Welcome is sent, not held for
/// the stream's life: with one turn, streams still open one after another while the earlier ones stay up.
#[tokio::test]
async fn a_handshake_turn_is_given_back_after_welcome() {
    let addr = start_hub(LinkConfig {
        max_handshakes: 1,
        hello_timeout: Duration::from_secs(3),
        ..LinkConfig::default()
    })
    .await;
    let mut open = Vec::new();
    for epoch in ["epoch-1", "epoch-2", "epoch-3"] {
        let mut params = hello(Capabilities::all_v1(), V1_0);
        params.epoch = epoch.into();
        let session = tokio::time::timeout(
            Duration::from_secs(2),
            handshake(channel(addr).await, &params),
        )
        .await
        .expect("a turn held by an earlier, established stream")
        .unwrap();
        assert_eq!(session.negotiated.cluster_name, "cluster-1");
        open.push(session);
    }
}

/// A session waits out a short database outage (PostgreSQL stopped and started again) instead of ending the
/// stream: a status message sent while the database is down is stored and acknowledged on the same stream once
/// it is back. An ended stream would send the spoke back through the handshake, which in a reconnect storm
/// means into the same crowd.
#[tokio::test]
async fn a_session_waits_out_a_short_database_outage_on_the_same_stream() {
    let mut pg = edgecd_testkit::postgres::PgServer::start().unwrap();
    let url = pg.create_database().unwrap();
    let store: Arc<dyn Store> = Arc::new(PgStore::connect_url(&url).await.unwrap());
    // Patience is two heartbeats: 20 s, ample for a restart of a local server.
    let addr = start_hub_on(
        LinkConfig {
            heartbeat_interval: Duration::from_secs(10),
            ..LinkConfig::default()
        },
        Arc::clone(&store),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let mut session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    let status = |seq| SpokeMessage {
        seq,
        ack: 0,
        body: Some(spoke_message::Body::AppStatus(AppStatusBatch::default())),
    };
    session.outbound.send(status(1)).await.unwrap();
    assert_eq!(next_ack(&mut session).await, 1);

    pg.stop().unwrap();
    session.outbound.send(status(2)).await.unwrap();
    // 7 s: longer than the link pool's acquire timeout (5 s), which alone would ride out a shorter outage.
    tokio::time::sleep(Duration::from_secs(7)).await;
    // Kept until the end: dropping the server stops it.
    let _pg = tokio::task::spawn_blocking(move || {
        pg.restart().unwrap();
        pg
    })
    .await
    .unwrap();
    assert_eq!(
        next_ack(&mut session).await,
        2,
        "the message sent during the outage is acknowledged on the same stream"
    );
    let link = store.get_link_state("cluster-1").await.unwrap();
    assert_eq!((link.spoke_epoch.as_str(), link.spoke_seq), ("epoch-1", 2));
}

/// Heartbeats reach the store written together (about once a second), and a stream's end is the last word:
/// a heartbeat still waiting to be written when the stream ends is folded into the Disconnected record,
/// never written after it as Connected.
#[tokio::test]
async fn heartbeats_are_written_together_and_a_disconnect_is_the_last_word() {
    use edgecd_hub::store::ConnectionKind;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let config = LinkConfig {
        heartbeat_interval: Duration::from_secs(10),
        ..LinkConfig::default()
    };
    assert_eq!(
        edgecd_hub::link::HeartbeatBook::period(&config),
        Duration::from_secs(1)
    );
    let addr = start_hub_on(config, Arc::clone(&store), dir).await;
    let heartbeat = || SpokeMessage {
        seq: 0,
        ack: 0,
        body: Some(spoke_message::Body::Heartbeat(Default::default())),
    };
    let connection = || async { store.get_cluster("cluster-1").await.unwrap().connection };

    let session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    let connected = connection().await;
    assert_eq!(connected.state, ConnectionKind::Connected);
    tokio::time::sleep(Duration::from_millis(20)).await;
    session.outbound.send(heartbeat()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while connection().await.last_heartbeat <= connected.last_heartbeat {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the heartbeat is recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written = connection().await;
    assert_eq!(written.state, ConnectionKind::Connected);
    assert_eq!(
        written.since, connected.since,
        "connected since the handshake"
    );

    // A heartbeat, then the stream ends at once: well inside the second before the next write.
    tokio::time::sleep(Duration::from_millis(20)).await;
    session.outbound.send(heartbeat()).await.unwrap();
    // The spoke's half closes (after what it sent); its inbound half stays open.
    drop(session.outbound);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while connection().await.state != ConnectionKind::Disconnected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disconnect is recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past two more writes of the book.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let ended = connection().await;
    assert_eq!(ended.state, ConnectionKind::Disconnected);
    assert_eq!(ended.hub_replica, "");
    assert!(
        ended.last_heartbeat > written.last_heartbeat,
        "the last heartbeat is kept in the disconnect record"
    );
}

/// Two streams of one cluster open at once (the older one black-holed on another path, say): once the newer
/// one's handshake told it where to resume, the older one stores nothing more and is ended with ABORTED, so
/// what the newer one sends from the resume point on (renumbered and coalesced, `coalesced-resume.v1`) is
/// never taken for a duplicate of what the older one sent.
#[tokio::test]
async fn a_newer_stream_fences_the_older_one_off() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    // Two replicas on one store: the newer stream's replica cannot tell the older one's session to go.
    let addr = start_hub_on(LinkConfig::default(), Arc::clone(&store), dir).await;
    let other = serve(
        SpokeLink::new(LinkConfig::default(), Arc::clone(&store)),
        None,
    )
    .await;
    let status = |seq| SpokeMessage {
        seq,
        ack: 0,
        body: Some(spoke_message::Body::AppStatus(AppStatusBatch::default())),
    };
    let mut older = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    assert!(
        older
            .negotiated
            .capabilities
            .contains(names::COALESCED_RESUME)
    );
    older.outbound.send(status(1)).await.unwrap();
    assert_eq!(next_ack(&mut older).await, 1);

    let mut newer = handshake(channel(other).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    assert_eq!(newer.negotiated.resume_spoke_seq, 1);
    older.outbound.send(status(2)).await.unwrap();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(10), older.inbound.message())
            .await
            .expect("the older stream ends in time")
        {
            Ok(Some(message)) => {
                assert!(message.ack < 2, "the older stream's message is not stored")
            }
            Ok(None) => panic!("the older stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), tonic::Code::Aborted, "{ended:?}");
    assert_eq!(
        store.get_link_state("cluster-1").await.unwrap().spoke_seq,
        1
    );
    newer.outbound.send(status(2)).await.unwrap();
    assert_eq!(next_ack(&mut newer).await, 2);
}

/// The next pure acknowledgement from the hub on `session` (within 30 s); panics if the stream ends.
async fn next_ack(session: &mut LinkSession) -> u64 {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), session.inbound.message())
            .await
            .expect("ack in time")
            .expect("the stream stays open")
            .expect("stream open");
        if message.body.is_none() {
            return message.ack;
        }
    }
}

/// An idle session hears of what it no longer polls for from the replica's watch alone: here no router relays
/// store notifications, so a command issued to its cluster and an edit of its app's project (which no
/// notification announces) reach the spoke only through the watch, within a heartbeat or two. Without the watch
/// neither arrives.
#[tokio::test]
async fn an_idle_session_hears_of_commands_and_project_edits_from_the_watch() {
    use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination};
    use edgecd_hub::link::{CommandPayload, command_payload_kind};
    use edgecd_hub::store::{NewApp, NewCommand};
    use edgecd_proto::v1::hub_message;

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    register_cluster_1(store.as_ref()).await;
    store
        .create_app(&NewApp {
            project: "default".into(),
            name: "demo".into(),
            spec: ApplicationSpec {
                project: "default".into(),
                source: ApplicationSource {
                    repo_url: "https://git.example/demo".into(),
                    target_revision: "HEAD".into(),
                    path: "deploy".into(),
                    ..ApplicationSource::default()
                },
                destination: Destination {
                    cluster: "cluster-1".into(),
                    namespace: "demo".into(),
                    ..Destination::default()
                },
                ..ApplicationSpec::default()
            },
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    let link = SpokeLink::new(
        LinkConfig {
            heartbeat_interval: Duration::from_millis(300),
            ..LinkConfig::default()
        },
        Arc::clone(&store),
    );
    link.spawn_watch();
    let addr = serve(link, Some(dir)).await;
    let mut session = handshake(channel(addr).await, &hello(Capabilities::all_v1(), V1_0))
        .await
        .unwrap();
    // What the handshake sends: the project's policy as it is now.
    let policy_version = |message: &edgecd_proto::v1::HubMessage| match &message.body {
        Some(hub_message::Body::ProjectPolicies(p)) => p
            .projects
            .iter()
            .find(|p| p.name == "default")
            .map(|p| p.version),
        _ => None,
    };
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = session.inbound.message().await.unwrap().unwrap();
            if let Some(version) = policy_version(&message) {
                return version;
            }
        }
    })
    .await
    .expect("the handshake sends the policies");

    let payload = CommandPayload::Refresh { hard: false };
    let command = store
        .enqueue_command(&NewCommand {
            id: None,
            project: "default".into(),
            app: "demo".into(),
            cluster: "cluster-1".into(),
            kind: command_payload_kind(&payload).into(),
            payload: serde_json::to_value(&payload).unwrap(),
            issued_by: "alice".into(),
            deadline: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            trace: None,
        })
        .await
        .unwrap();
    let project = store.get_project("default").await.unwrap();
    store
        .update_project("default", project.version, &project.spec)
        .await
        .unwrap();
    let (mut commanded, mut edited) = (false, None);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !commanded || edited.is_none() {
            let message = session.inbound.message().await.unwrap().unwrap();
            if let Some(hub_message::Body::Command(c)) = &message.body {
                commanded |= c.id == command.id;
            }
            if let Some(version) = policy_version(&message) {
                edited = Some(version);
            }
        }
    })
    .await
    .expect("the command and the edited policy arrive without a notification");
    assert!(edited > Some(first), "{edited:?} after {first}");
}
