//! The spoke side of the `Connect` stream: dial out, say Hello, read the hub's Welcome (or GoAway), then run the session (`session`).

pub mod enroll;
mod kube_events;
mod live;
mod reports;
mod session;
pub mod tls;

pub use session::{HubLinkConfig, run};

use std::time::Duration;

use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use edgecd_proto::v1::{Digest, Hello, HubMessage, SpokeMessage, go_away, hub_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

/// Errors of the hub link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach the hub: {0}")]
    Unreachable(#[from] tonic::transport::Error),
    #[error("hub refused the stream: {0}")]
    Refused(#[from] tonic::Status),
    #[error("hub closed the stream before Welcome")]
    ClosedBeforeWelcome,
    #[error("hub sent {0} before Welcome")]
    UnexpectedBeforeWelcome(&'static str),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("TLS to the hub: {0}")]
    Tls(String),
    #[error("the stream to the hub closed")]
    Closed,
    #[error("hub asked us to go away ({reason:?}): {message}")]
    GoAway {
        reason: go_away::Reason,
        message: String,
        retry_after: Option<Duration>,
    },
}

/// What the spoke says about itself in Hello.
#[derive(Debug, Clone)]
pub struct HelloParams {
    pub cluster_name: String,
    pub spoke_version: String,
    pub protocol: ProtocolVersion,
    pub capabilities: Capabilities,
    pub kubernetes_version: String,
    pub server_url: String,
    pub epoch: String,
    pub last_hub_seq: u64,
    pub desired_version: u64,
    pub next_spoke_seq: u64,
}

/// The negotiated session, as the spoke uses it.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub cluster_name: String,
    pub hub_protocol: ProtocolVersion,
    pub capabilities: Capabilities,
    pub resume_spoke_seq: u64,
    pub resume_hub_seq: u64,
    pub heartbeat_interval: Duration,
    pub window: u32,
    pub hub_replica: String,
    pub full_status_resync: bool,
    pub digest_interval: Duration,
}

/// An open, negotiated stream.
#[derive(Debug)]
pub struct LinkSession {
    pub negotiated: Negotiated,
    pub outbound: mpsc::Sender<SpokeMessage>,
    pub inbound: Streaming<HubMessage>,
}

/// Opens the stream on `channel`, sends Hello and waits for Welcome.
pub async fn handshake(channel: Channel, params: &HelloParams) -> Result<LinkSession, LinkError> {
    let (outbound, rx) = mpsc::channel(64);
    let hello = SpokeMessage {
        seq: 0,
        ack: params.last_hub_seq,
        body: Some(edgecd_proto::v1::spoke_message::Body::Hello(to_hello(
            params,
        ))),
    };
    // The receiver is alive: it was created just above.
    let _ = outbound.send(hello).await;
    let mut client = SpokeServiceClient::new(channel);
    let mut inbound = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    let message = inbound
        .message()
        .await?
        .ok_or(LinkError::ClosedBeforeWelcome)?;
    match message.body {
        Some(hub_message::Body::Welcome(welcome)) => Ok(LinkSession {
            negotiated: from_welcome(welcome),
            outbound,
            inbound,
        }),
        Some(hub_message::Body::GoAway(go_away)) => Err(LinkError::GoAway {
            reason: go_away.reason(),
            message: go_away.message,
            retry_after: go_away.retry_after.and_then(to_std_duration),
        }),
        Some(hub_message::Body::Heartbeat(_)) => {
            Err(LinkError::UnexpectedBeforeWelcome("Heartbeat"))
        }
        Some(_) => Err(LinkError::UnexpectedBeforeWelcome("a sequenced message")),
        None => Err(LinkError::UnexpectedBeforeWelcome("an unknown message")),
    }
}

/// `capabilities` plus certificate renewal (for a spoke with an mTLS identity).
pub fn with_renewal(capabilities: &Capabilities) -> Capabilities {
    Capabilities::from_names(
        capabilities
            .iter()
            .map(str::to_owned)
            .chain([edgecd_core::link::capabilities::names::CERT_RENEWAL.to_owned()]),
    )
}

fn to_hello(params: &HelloParams) -> Hello {
    Hello {
        cluster_name: params.cluster_name.clone(),
        spoke_version: params.spoke_version.clone(),
        protocol: Some(edgecd_proto::v1::ProtocolVersion {
            major: params.protocol.major,
            minor: params.protocol.minor,
        }),
        capabilities: params.capabilities.iter().map(str::to_owned).collect(),
        kubernetes_version: params.kubernetes_version.clone(),
        server_url: params.server_url.clone(),
        spoke_epoch: params.epoch.clone(),
        last_hub_seq: params.last_hub_seq,
        desired_version: params.desired_version,
        inventory: Some(Digest::default()),
        next_spoke_seq: params.next_spoke_seq,
    }
}

fn from_welcome(welcome: edgecd_proto::v1::Welcome) -> Negotiated {
    let protocol = welcome.protocol.unwrap_or_default();
    Negotiated {
        cluster_name: welcome.cluster_name,
        hub_protocol: ProtocolVersion {
            major: protocol.major,
            minor: protocol.minor,
        },
        capabilities: Capabilities::from_names(welcome.capabilities),
        resume_spoke_seq: welcome.resume_spoke_seq,
        resume_hub_seq: welcome.resume_hub_seq,
        heartbeat_interval: welcome
            .heartbeat_interval
            .and_then(to_std_duration)
            .unwrap_or(Duration::from_secs(10)),
        window: welcome.window.max(1),
        hub_replica: welcome.hub_replica,
        full_status_resync: welcome.full_status_resync,
        digest_interval: welcome
            .digest_interval
            .and_then(to_std_duration)
            .unwrap_or(Duration::from_secs(300)),
    }
}

fn to_std_duration(d: edgecd_proto::Duration) -> Option<Duration> {
    Duration::try_from(d).ok()
}
