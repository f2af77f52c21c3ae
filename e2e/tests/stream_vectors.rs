//! The spoke's receive path on the committed stream test vectors (`proto/testdata/stream/`, docs/protocol.md#test-vectors): its handshake reads the Welcome and GoAway vectors as they are, and its real hub link (Kubernetes API emulator) takes every hub message of every protocol version's vectors from a hand-driven hub, acknowledges each sequenced one and acts on what they say.
//!
//! The session test sends the vectors as committed but for their envelope (`seq` numbered for this
//! stream from 1 in the order of their own `seq`, heartbeats and live messages unsequenced, `ack` 0) and
//! for the session fields of its Welcome (resume points 0, the capabilities the spoke announced), which a
//! hub chooses per stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_proto::v1::spoke_service_server::{SpokeService, SpokeServiceServer};
use edgecd_proto::v1::{
    CommandOutcome, EnrollRequest, EnrollResponse, HubMessage, RenewCertificateRequest,
    SpokeMessage, go_away, hub_message, live_open, spoke_message,
};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::credentials::CredentialSources;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HelloParams, HubLinkConfig, LinkError};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use futures::Stream;
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

const STATE_NS: &str = "edgecd-system";
/// The cluster the vectors speak for (`samples::CLUSTER` in the proto tests).
const CLUSTER: &str = "edge-1";

// === the vectors ===

/// This major's version directories of the vectors.
fn version_dirs() -> Vec<PathBuf> {
    edgecd_testkit::stream_vectors::version_dirs(edgecd_proto::PROTOCOL_MAJOR)
}

/// The hub messages of one version directory (`hub_*.txt`: `#` comments, then hex), in the order
/// of their own `seq`.
fn hub_vectors(dir: &Path) -> Vec<(String, HubMessage)> {
    let mut vectors: Vec<(String, HubMessage)> = edgecd_testkit::stream_vectors::read(dir, "hub_")
        .into_iter()
        .map(|(name, path, bytes)| {
            let message = HubMessage::decode(bytes.as_slice())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, message)
        })
        .collect();
    vectors.sort_by_key(|(name, m)| (m.seq, name.clone()));
    vectors
}

fn vector(vectors: &[(String, HubMessage)], name: &str) -> HubMessage {
    vectors
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("no {name} vector"))
}

fn unsequenced(message: &HubMessage) -> bool {
    matches!(
        message.body,
        Some(
            hub_message::Body::Welcome(_)
                | hub_message::Body::GoAway(_)
                | hub_message::Body::Heartbeat(_)
                | hub_message::Body::LiveOpen(_)
                | hub_message::Body::LiveCredit(_)
                | hub_message::Body::LiveCancel(_)
                | hub_message::Body::LiveInput(_)
        )
    )
}

// === a hand-driven hub ===

type HubStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send + 'static>>;

/// What a hub answers a Hello with.
type Script = Arc<dyn Fn(&edgecd_proto::v1::Hello) -> Vec<HubMessage> + Send + Sync>;
/// The sending side of the latest stream.
type Latest = Arc<Mutex<Option<mpsc::Sender<Result<HubMessage, Status>>>>>;

/// Answers each Connect with `script(hello)`, then keeps the stream open; every spoke message
/// after Hello goes to `heard`, and [`ScriptedHub::send_later`] sends on the latest stream.
#[derive(Clone)]
struct ScriptedHub {
    script: Script,
    heard: mpsc::UnboundedSender<SpokeMessage>,
    later: Latest,
    connects: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl SpokeService for ScriptedHub {
    async fn enroll(&self, _: Request<EnrollRequest>) -> Result<Response<EnrollResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn renew_certificate(
        &self,
        _: Request<RenewCertificateRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    type ConnectStream = HubStream;

    async fn connect(
        &self,
        request: Request<Streaming<SpokeMessage>>,
    ) -> Result<Response<HubStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(SpokeMessage {
                body: Some(spoke_message::Body::Hello(hello)),
                ..
            }) => hello,
            _ => return Err(Status::invalid_argument("expected Hello")),
        };
        self.connects.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(64);
        *self.later.lock().unwrap() = Some(tx.clone());
        let script = (self.script)(&hello);
        let heard = self.heard.clone();
        tokio::spawn(async move {
            for message in script {
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            while let Ok(Some(message)) = inbound.message().await {
                let _ = heard.send(message);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl ScriptedHub {
    async fn start(
        script: impl Fn(&edgecd_proto::v1::Hello) -> Vec<HubMessage> + Send + Sync + 'static,
    ) -> (
        Self,
        std::net::SocketAddr,
        mpsc::UnboundedReceiver<SpokeMessage>,
    ) {
        let (heard, heard_rx) = mpsc::unbounded_channel();
        let hub = Self {
            script: Arc::new(script),
            heard,
            later: Arc::default(),
            connects: Arc::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = hub.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(SpokeServiceServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (hub, addr, heard_rx)
    }

    async fn send_later(&self, message: HubMessage) {
        let tx = self.later.lock().unwrap().clone().expect("a stream");
        tx.send(Ok(message)).await.unwrap();
    }
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn hello_params() -> HelloParams {
    HelloParams {
        cluster_name: CLUSTER.into(),
        spoke_version: "0.1.0".into(),
        protocol: ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        },
        capabilities: Capabilities::all_v1(),
        kubernetes_version: "v1.33.1".into(),
        server_url: String::new(),
        epoch: "epoch-1".into(),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    }
}

fn std_duration(d: Option<edgecd_proto::Duration>) -> Duration {
    Duration::try_from(d.expect("a duration")).unwrap()
}

// === the handshake reads Welcome and GoAway as committed ===

#[tokio::test]
async fn the_spokes_handshake_reads_the_welcome_and_go_away_vectors() {
    for dir in version_dirs() {
        let at = dir.file_name().unwrap().to_string_lossy().into_owned();
        let vectors = hub_vectors(&dir);
        let welcome_message = vector(&vectors, "hub_welcome");
        let Some(hub_message::Body::Welcome(welcome)) = welcome_message.body.clone() else {
            panic!("{at}: hub_welcome holds no Welcome");
        };
        let (_hub, addr, _heard) = ScriptedHub::start(move |_| vec![welcome_message.clone()]).await;
        let session = link::handshake(channel(addr).await, &hello_params())
            .await
            .unwrap_or_else(|e| panic!("{at}: the spoke refuses the Welcome: {e}"));
        let n = &session.negotiated;
        let protocol = welcome.protocol.unwrap();
        assert_eq!(n.cluster_name, welcome.cluster_name, "{at}");
        assert_eq!(
            n.hub_protocol,
            ProtocolVersion {
                major: protocol.major,
                minor: protocol.minor
            },
            "{at}"
        );
        assert_eq!(
            n.capabilities,
            Capabilities::from_names(welcome.capabilities.clone()),
            "{at}"
        );
        assert_eq!(n.resume_spoke_seq, welcome.resume_spoke_seq, "{at}");
        assert_eq!(n.resume_hub_seq, welcome.resume_hub_seq, "{at}");
        assert_eq!(
            n.heartbeat_interval,
            std_duration(welcome.heartbeat_interval),
            "{at}"
        );
        assert_eq!(n.window, welcome.window, "{at}");
        assert_eq!(n.hub_replica, welcome.hub_replica, "{at}");
        assert_eq!(n.full_status_resync, welcome.full_status_resync, "{at}");
        assert_eq!(
            n.digest_interval,
            std_duration(welcome.digest_interval),
            "{at}"
        );

        let go_away_message = vector(&vectors, "hub_go_away");
        let Some(hub_message::Body::GoAway(go_away)) = go_away_message.body.clone() else {
            panic!("{at}: hub_go_away holds no GoAway");
        };
        let (_hub, addr, _heard) = ScriptedHub::start(move |_| vec![go_away_message.clone()]).await;
        match link::handshake(channel(addr).await, &hello_params()).await {
            Err(LinkError::GoAway {
                reason,
                message,
                retry_after,
            }) => {
                assert_eq!(reason as i32, go_away.reason, "{at}");
                assert_ne!(reason, go_away::Reason::Unspecified, "{at}");
                assert_eq!(message, go_away.message, "{at}");
                assert_eq!(retry_after, Some(std_duration(go_away.retry_after)), "{at}");
            }
            other => panic!("{at}: the spoke reads GoAway as {other:?}"),
        }
    }
}

// === a spoke session takes every hub vector ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoke_session_takes_and_acts_on_every_hub_vector_of_every_version() {
    for dir in version_dirs() {
        check_version(&dir).await;
    }
}

async fn check_version(dir: &Path) {
    let at = dir.file_name().unwrap().to_string_lossy().into_owned();
    let vectors = hub_vectors(dir);
    let kinds: BTreeSet<String> = vectors.iter().map(|(name, _)| name.clone()).collect();

    // The script: Welcome (session fields for this stream), then every other vector but GoAway.
    let welcome = vector(&vectors, "hub_welcome");
    let mut script_tail = Vec::new();
    let mut last_seq = 0;
    let mut command_ids = Vec::new();
    let mut live_sessions = BTreeSet::new();
    for (name, message) in &vectors {
        let mut message = message.clone();
        match &message.body {
            Some(hub_message::Body::Welcome(_) | hub_message::Body::GoAway(_)) => continue,
            Some(hub_message::Body::Command(c)) => command_ids.push(c.id.clone()),
            Some(hub_message::Body::LiveOpen(open)) => {
                assert!(open.request.is_some(), "{at}/{name}");
                // The exec session is cancelled by a later vector, after which the spoke may end it
                // without a word; the others are answered (refused: their object does not exist).
                if !matches!(open.request, Some(live_open::Request::Exec(_))) {
                    live_sessions.insert(open.session_id.clone());
                }
            }
            _ => {}
        }
        message.ack = 0;
        message.seq = if unsequenced(&message) {
            0
        } else {
            last_seq += 1;
            last_seq
        };
        script_tail.push(message);
    }
    let (hub, addr, mut heard) = ScriptedHub::start(move |hello| {
        let mut welcome = welcome.clone();
        if let Some(hub_message::Body::Welcome(w)) = &mut welcome.body {
            w.capabilities = hello.capabilities.clone();
            w.resume_spoke_seq = 0;
            w.resume_hub_seq = 0;
        }
        welcome.seq = 0;
        welcome.ack = 0;
        std::iter::once(welcome)
            .chain(script_tail.iter().cloned())
            .collect()
    })
    .await;

    let emulator = KubeEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let cluster = LiveCluster::new(emulator.client().await.unwrap());
    edgecd_spoke::runtime::install_crd(&cluster).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS)
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let git = GitCache::new(GitConfig::new(cache.path()), CredentialStore::default()).unwrap();
    let (engine, triggers) = Engine::new(
        cluster.clone(),
        git.clone(),
        EngineConfig {
            namespace: STATE_NS.into(),
            cluster_name: CLUSTER.into(),
            ..EngineConfig::default()
        },
    );
    let (engine_stop, engine_stopped) = oneshot::channel::<()>();
    tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
        let _ = engine_stopped.await;
    }));
    let (appsets, _appset_triggers) =
        edgecd_spoke::appset::AppSets::new(Arc::clone(&engine), git.clone());
    let credentials = CredentialSources::new(CredentialStore::default());
    let config = HubLinkConfig {
        appsets: Some(Arc::clone(&appsets)),
        credentials: Some(credentials.clone()),
        ..HubLinkConfig::new(format!("http://{addr}"), CLUSTER, STATE_NS)
    };
    let (link_stop, link_stopped) = oneshot::channel::<()>();
    let spoke = tokio::spawn(link::run(config, Arc::clone(&engine), async move {
        let _ = link_stopped.await;
    }));

    // Acknowledged, answered: every sequenced vector, every command, every live session.
    let mut acked = 0;
    let mut outcomes = std::collections::BTreeMap::new();
    let mut live_answered = BTreeSet::new();
    let mut digests = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while acked < last_seq
            || outcomes.len() < command_ids.len()
            || live_answered.len() < live_sessions.len()
            || (kinds.contains("hub_digest") && digests == 0)
        {
            let message = heard.recv().await.expect("the hub stream");
            acked = acked.max(message.ack);
            match message.body {
                Some(spoke_message::Body::CommandStatus(batch)) => {
                    for status in batch.statuses {
                        outcomes.insert(status.command_id, status.outcome);
                    }
                }
                Some(spoke_message::Body::LiveEnd(end)) => {
                    live_answered.insert(end.session_id);
                }
                Some(spoke_message::Body::LiveChunk(chunk)) => {
                    live_answered.insert(chunk.session_id);
                }
                Some(spoke_message::Body::Digest(_)) => digests += 1,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{at}: the spoke acknowledged seq {acked} of {last_seq}, answered commands {outcomes:?} of {command_ids:?}, \
             live sessions {live_answered:?} of {live_sessions:?}, sent {digests} digests"
        )
    });
    // The commands' deadline is long past: each is answered EXPIRED, never run.
    for id in &command_ids {
        assert_eq!(
            outcomes.get(id).copied(),
            Some(CommandOutcome::Expired as i32),
            "{at}: command {id}"
        );
    }

    // What the vectors say, at the spoke.
    for (name, message) in &vectors {
        match &message.body {
            Some(hub_message::Body::DesiredApps(desired)) => {
                let apps = kube::api::Api::<edgecd_spoke::crd::Application>::namespaced(
                    cluster.client().clone(),
                    STATE_NS,
                );
                for app in &desired.upserts {
                    let meta = app.meta.as_ref().unwrap();
                    let cr = edgecd_spoke::crd::cr_name(&meta.project, &meta.name);
                    assert!(
                        apps.get_opt(&cr).await.unwrap().is_some(),
                        "{at}/{name}: no Application CR {cr}"
                    );
                }
            }
            Some(hub_message::Body::ProjectPolicies(policies)) => {
                let held = engine.policies().all();
                for project in &policies.projects {
                    assert!(
                        held.contains_key(&project.name),
                        "{at}/{name}: project {} not enforced",
                        project.name
                    );
                }
            }
            Some(hub_message::Body::RepositoryCredentials(sent)) => {
                assert_eq!(
                    credentials.hub().len(),
                    sent.credentials.len(),
                    "{at}/{name}: the hub's credentials not taken"
                );
            }
            Some(hub_message::Body::ApplicationSets(sets)) => {
                let names = appsets.hub_set_names().await.unwrap();
                for set in &sets.sets {
                    let cr = edgecd_spoke::crd::cr_name(&set.project, &set.name);
                    assert!(
                        names.contains(&cr),
                        "{at}/{name}: no ApplicationSet CR {cr}"
                    );
                }
            }
            _ => {}
        }
    }

    // GoAway: the spoke leaves and comes back after the retry-after.
    hub.send_later(vector(&vectors, "hub_go_away")).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while hub.connects.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{at}: the spoke did not reconnect after GoAway"));

    let _ = link_stop.send(());
    let _ = spoke.await;
    let _ = engine_stop.send(());
}
