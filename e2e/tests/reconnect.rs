//! The spoke's real hub link (`edgecd_spoke::link::run`, Kubernetes API emulator) against a hand-driven hub that welcomes it and then drains it again and again: every reconnect delay the spoke chooses is the hub's retry-after (plus its jitter), never a backoff grown by the drains (issue 17, finding 7).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_proto::v1::spoke_service_server::{SpokeService, SpokeServiceServer};
use edgecd_proto::v1::{
    EnrollRequest, EnrollResponse, GoAway, HubMessage, RenewCertificateRequest, SpokeMessage,
    Welcome, go_away, hub_message, spoke_message,
};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{Engine, EngineConfig};
use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

const STATE_NS: &str = "edgecd-system";
const CLUSTER: &str = "cluster-1";
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// A hub replica that is drained right after every Welcome: `GoAway{DRAINING, retry_after}`.
#[derive(Clone, Default)]
struct DrainingHub {
    connects: Arc<AtomicUsize>,
}

type HubStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SpokeService for DrainingHub {
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
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let welcome = Welcome {
                cluster_name: hello.cluster_name,
                protocol: hello.protocol,
                capabilities: hello.capabilities,
                heartbeat_interval: Some(Duration::from_secs(10).try_into().unwrap()),
                window: 256,
                hub_replica: "draining-hub".into(),
                ..Welcome::default()
            };
            let message = |body| {
                Ok(HubMessage {
                    seq: 0,
                    ack: 0,
                    body: Some(body),
                })
            };
            let _ = tx.send(message(hub_message::Body::Welcome(welcome))).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let go_away = GoAway {
                reason: go_away::Reason::Draining as i32,
                message: "this hub replica is shutting down; connect to another".into(),
                retry_after: Some(RETRY_AFTER.try_into().unwrap()),
            };
            let _ = tx.send(message(hub_message::Body::GoAway(go_away))).await;
            // Keep reading until the spoke leaves.
            while let Ok(Some(_)) = inbound.message().await {}
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[tokio::test]
async fn repeated_drains_keep_the_spokes_reconnect_delay_at_the_hubs_retry_after() {
    let hub = DrainingHub::default();
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
    let (engine, _triggers) = Engine::new(
        cluster,
        git,
        EngineConfig {
            namespace: STATE_NS.into(),
            cluster_name: CLUSTER.into(),
            ..EngineConfig::default()
        },
    );
    let (delays_tx, mut delays) = mpsc::unbounded_channel();
    let mut config = HubLinkConfig::new(format!("http://{addr}"), CLUSTER, STATE_NS);
    config.reconnect_delays = Some(delays_tx);
    let (stop, stopped) = oneshot::channel::<()>();
    let spoke = tokio::spawn(link::run(config, engine, async move {
        let _ = stopped.await;
    }));

    // Eight drains in a row. Before the fix the delays grew with each (0.25-0.5 s, 0.5-1 s, … 32-64 s,
    // the hint only a floor); now each is the hint spread by up to 20 %.
    let mut seen = Vec::new();
    for _ in 0..8 {
        let delay = tokio::time::timeout(Duration::from_secs(30), delays.recv())
            .await
            .expect("the spoke reconnects within 30 s")
            .unwrap();
        seen.push(delay);
    }
    assert!(
        seen.iter()
            .all(|d| *d >= RETRY_AFTER && *d <= RETRY_AFTER + RETRY_AFTER / 5),
        "reconnect delays after drains: {seen:?}"
    );
    assert!(hub.connects.load(Ordering::SeqCst) >= 8);
    let _ = stop.send(());
    let _ = spoke.await;
}
