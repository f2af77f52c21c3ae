//! One spoke stream at the hub: handshake (Hello → Welcome or GoAway), then the sequenced session with acknowledgements and heartbeats.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgecd_core::ClusterName;
use edgecd_core::link::{Capabilities, Inbox, NegotiationError, ProtocolVersion, Receipt};
use edgecd_proto::v1::{
    GoAway, Heartbeat, Hello, HubMessage, SpokeMessage, Welcome, go_away, hub_message,
    spoke_message,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::LinkConfig;

/// Why a session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("spoke sent no Hello within {0:?}")]
    HelloTimeout(Duration),
    #[error("the first message on the stream must be Hello")]
    NotHello,
    #[error("stream failed: {0}")]
    Transport(#[from] Status),
    #[error("cannot negotiate with spoke: {0}")]
    Negotiation(#[from] NegotiationError),
    #[error("spoke skipped sequence numbers: expected {expected}, got {got}")]
    SequenceGap { expected: u64, got: u64 },
    #[error("the spoke went away")]
    ClientGone,
}

impl SessionError {
    pub fn into_status(self) -> Status {
        match &self {
            Self::HelloTimeout(_) => Status::deadline_exceeded(self.to_string()),
            Self::NotHello | Self::SequenceGap { .. } => Status::invalid_argument(self.to_string()),
            Self::Negotiation(_) => Status::failed_precondition(self.to_string()),
            Self::Transport(status) => status.clone(),
            Self::ClientGone => Status::cancelled(self.to_string()),
        }
    }
}

type Outbound = mpsc::Sender<Result<HubMessage, Status>>;

/// Waits for the first message, which must be Hello.
pub(super) async fn read_hello(
    inbound: &mut Streaming<SpokeMessage>,
    timeout: Duration,
) -> Result<Hello, Status> {
    let first = tokio::time::timeout(timeout, inbound.message())
        .await
        .map_err(|_| SessionError::HelloTimeout(timeout).into_status())??;
    match first.and_then(|m| m.body) {
        Some(spoke_message::Body::Hello(hello)) => Ok(hello),
        _ => Err(SessionError::NotHello.into_status()),
    }
}

/// Runs a session until the spoke disconnects or breaks the protocol.
pub(super) async fn run(
    config: Arc<LinkConfig>,
    cluster: ClusterName,
    hello: Hello,
    mut inbound: Streaming<SpokeMessage>,
    outbound: Outbound,
) -> Result<(), SessionError> {
    let theirs = hello
        .protocol
        .map(|p| ProtocolVersion {
            major: p.major,
            minor: p.minor,
        })
        .unwrap_or(ProtocolVersion { major: 0, minor: 0 });
    let peer = Capabilities::from_names(hello.capabilities.iter().cloned());
    let agreed =
        match config
            .capabilities
            .negotiate(LinkConfig::protocol(), theirs, &peer, &config.required)
        {
            Ok(agreed) => agreed,
            Err(error) => {
                tracing::warn!(%error, "Refusing spoke: protocol negotiation failed.");
                let go_away = GoAway {
                    reason: go_away::Reason::ProtocolUnsupported as i32,
                    message: error.to_string(),
                    retry_after: Some(duration(Duration::from_secs(300))),
                };
                send(&outbound, 0, 0, hub_message::Body::GoAway(go_away)).await?;
                return Ok(());
            }
        };
    tracing::info!(
        spoke_version = %hello.spoke_version,
        protocol = %theirs,
        capabilities = agreed.iter().count(),
        "Spoke connected."
    );
    // Until the durable store arrives (issue 6), a session starts from the
    // spoke's own view: nothing of its epoch is stored yet.
    let mut inbox = Inbox::new(0);
    let welcome = Welcome {
        cluster_name: cluster.to_string(),
        protocol: Some(edgecd_proto::v1::ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }),
        capabilities: agreed.iter().map(str::to_owned).collect(),
        resume_spoke_seq: inbox.ack(),
        resume_hub_seq: 0,
        heartbeat_interval: Some(duration(config.heartbeat_interval)),
        window: config.window,
        hub_replica: config.replica.clone(),
        hub_version: config.hub_version.clone(),
        full_status_resync: true,
        digest_interval: Some(duration(config.digest_interval)),
    };
    send(
        &outbound,
        0,
        inbox.ack(),
        hub_message::Body::Welcome(welcome),
    )
    .await?;

    let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            message = inbound.next() => {
                let Some(message) = message else { return Ok(()) };
                let message = message?;
                if message.seq == 0 {
                    continue;
                }
                match inbox.receive(message.seq) {
                    Receipt::New => {
                        // Unknown body types (a newer spoke) are acknowledged
                        // and otherwise ignored.
                        if message.body.is_none() {
                            tracing::debug!(seq = message.seq, "Ignoring an unknown message type.");
                        }
                        inbox.processed(message.seq);
                    }
                    Receipt::Duplicate => {}
                    Receipt::Gap { expected } => {
                        return Err(SessionError::SequenceGap { expected, got: message.seq });
                    }
                }
                send_ack(&outbound, inbox.ack()).await?;
            }
            _ = heartbeat.tick() => {
                let beat = Heartbeat { sent_at: Some(SystemTime::now().into()), in_flight: 0, buffered: 0 };
                send(&outbound, 0, inbox.ack(), hub_message::Body::Heartbeat(beat)).await?;
            }
        }
    }
}

async fn send(
    outbound: &Outbound,
    seq: u64,
    ack: u64,
    body: hub_message::Body,
) -> Result<(), SessionError> {
    outbound
        .send(Ok(HubMessage {
            seq,
            ack,
            body: Some(body),
        }))
        .await
        .map_err(|_| SessionError::ClientGone)
}

async fn send_ack(outbound: &Outbound, ack: u64) -> Result<(), SessionError> {
    outbound
        .send(Ok(HubMessage {
            seq: 0,
            ack,
            body: None,
        }))
        .await
        .map_err(|_| SessionError::ClientGone)
}

fn duration(d: Duration) -> edgecd_proto::Duration {
    edgecd_proto::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}
