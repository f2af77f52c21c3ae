//! The hub side of `SpokeService`: accepts spoke streams, authenticates the cluster, negotiates the protocol, and runs the sequenced session.

mod session;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::ClusterName;
use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_proto::v1::spoke_service_server::SpokeService;
use edgecd_proto::v1::{EnrollRequest, EnrollResponse, HubMessage, SpokeMessage};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub use session::SessionError;

/// How the hub learns which cluster is at the other end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityMode {
    /// Trust the name in `Hello`. Only for tests and local development
    /// without TLS; never the default of `edgecd-hub serve`.
    TrustHelloInsecure,
}

/// Behaviour of the link, fixed at start-up.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub replica: String,
    pub hub_version: String,
    pub capabilities: Capabilities,
    /// Capabilities a spoke must have to be accepted.
    pub required: Vec<&'static str>,
    pub heartbeat_interval: Duration,
    pub digest_interval: Duration,
    /// Maximum unacknowledged sequenced messages per direction.
    pub window: u32,
    /// How long a new stream may take to send Hello.
    pub hello_timeout: Duration,
    pub identity: IdentityMode,
}

impl LinkConfig {
    pub fn protocol() -> ProtocolVersion {
        ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            replica: format!("hub-{}", uuid::Uuid::new_v4().simple()),
            hub_version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: Capabilities::all_v1(),
            required: vec![edgecd_core::link::capabilities::names::STATUS_DELTAS],
            heartbeat_interval: Duration::from_secs(10),
            digest_interval: Duration::from_secs(300),
            window: 256,
            hello_timeout: Duration::from_secs(10),
            identity: IdentityMode::TrustHelloInsecure,
        }
    }
}

/// The `SpokeService` implementation.
#[derive(Debug, Clone)]
pub struct SpokeLink {
    config: Arc<LinkConfig>,
}

impl SpokeLink {
    pub fn new(config: LinkConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

type HubStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SpokeService for SpokeLink {
    async fn enroll(
        &self,
        _request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        Err(Status::unimplemented(
            "enrollment is not enabled on this hub (no certificate authority configured)",
        ))
    }

    type ConnectStream = HubStream;

    #[tracing::instrument(skip_all, fields(peer = ?request.remote_addr(), cluster))]
    async fn connect(
        &self,
        request: Request<Streaming<SpokeMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = session::read_hello(&mut inbound, self.config.hello_timeout).await?;
        let cluster = match self.config.identity {
            IdentityMode::TrustHelloInsecure => ClusterName::parse(hello.cluster_name.clone())
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        };
        tracing::Span::current().record("cluster", cluster.as_str());
        let (tx, rx) = mpsc::channel(self.config.window as usize + 16);
        let config = Arc::clone(&self.config);
        tokio::spawn(
            async move {
                if let Err(error) = session::run(config, cluster, hello, inbound, tx.clone()).await
                {
                    tracing::info!(%error, "Spoke session ended.");
                    let _ = tx.send(Err(error.into_status())).await;
                }
            }
            .in_current_span(),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
