//! A protocol-level simulated spoke for the hub benchmarks: one real gRPC `Connect` stream speaking Hello, sequenced status batches, acknowledgements and command results, without an engine or a cluster.

use std::time::Duration;

use anyhow::{Context as _, bail};
use edgecd_core::link::capabilities::names;
use edgecd_proto::v1;
use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

/// One simulated spoke's stream.
pub struct SimSpoke {
    pub cluster: String,
    tx: mpsc::Sender<v1::SpokeMessage>,
    inbound: Streaming<v1::HubMessage>,
    next_seq: u64,
    /// Highest hub seq received (acknowledged with the next message).
    hub_seq: u64,
    /// Highest of our seqs the hub acknowledged.
    pub acked: u64,
    pub welcome: v1::Welcome,
}

impl std::fmt::Debug for SimSpoke {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSpoke")
            .field("cluster", &self.cluster)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

/// Something the hub sent, as far as the benchmarks care.
#[derive(Debug)]
pub enum Received {
    Command(Box<v1::Command>),
    /// An acknowledgement (or anything else) that moved `acked`.
    Other,
}

/// The `Hello` of a simulated spoke of `cluster`: status deltas, desired apps and commands; `epoch` and
/// `next_seq` as the spoke's send buffer stands.
pub fn hello(cluster: &str, version: &str, epoch: &str, next_seq: u64) -> v1::Hello {
    v1::Hello {
        cluster_name: cluster.to_owned(),
        spoke_version: version.to_owned(),
        protocol: Some(v1::ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }),
        capabilities: [names::STATUS_DELTAS, names::DESIRED_APPS, names::COMMANDS]
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
        spoke_epoch: epoch.to_owned(),
        next_spoke_seq: next_seq,
        ..v1::Hello::default()
    }
}

/// A lazily connecting channel to a hub (one TCP connection per spoke).
pub fn channel(hub: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(hub.to_owned())?
        .connect_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .connect_lazy())
}

impl SimSpoke {
    /// Opens the stream and completes the handshake.
    pub async fn connect(channel: Channel, cluster: &str) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(64);
        let hello = hello(cluster, "bench", &uuid::Uuid::new_v4().to_string(), 1);
        tx.send(v1::SpokeMessage {
            seq: 0,
            ack: 0,
            body: Some(v1::spoke_message::Body::Hello(hello)),
        })
        .await
        .context("queueing Hello")?;
        let mut client = SpokeServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let mut inbound = client
            .connect(ReceiverStream::new(rx))
            .await
            .with_context(|| format!("connecting {cluster}"))?
            .into_inner();
        let welcome = loop {
            let Some(message) = inbound.message().await? else {
                bail!("{cluster}: stream ended before Welcome");
            };
            match message.body {
                Some(v1::hub_message::Body::Welcome(w)) => break w,
                Some(v1::hub_message::Body::GoAway(g)) => {
                    bail!("{cluster}: GoAway before Welcome: {}", g.message)
                }
                _ => {}
            }
        };
        Ok(Self {
            cluster: cluster.to_owned(),
            tx,
            inbound,
            next_seq: 1,
            hub_seq: 0,
            acked: 0,
            welcome,
        })
    }

    /// Sends a sequenced message; returns its seq.
    pub async fn send(&mut self, body: v1::spoke_message::Body) -> anyhow::Result<u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tx
            .send(v1::SpokeMessage {
                seq,
                ack: self.hub_seq,
                body: Some(body),
            })
            .await
            .context("the stream is closed")?;
        Ok(seq)
    }

    /// Acknowledges everything received so far.
    pub async fn ack(&mut self) -> anyhow::Result<()> {
        self.tx
            .send(v1::SpokeMessage {
                seq: 0,
                ack: self.hub_seq,
                body: None,
            })
            .await
            .context("the stream is closed")
    }

    /// Sends a heartbeat (unsequenced).
    pub async fn heartbeat(&mut self) -> anyhow::Result<()> {
        self.tx
            .send(v1::SpokeMessage {
                seq: 0,
                ack: self.hub_seq,
                body: Some(v1::spoke_message::Body::Heartbeat(v1::Heartbeat::default())),
            })
            .await
            .context("the stream is closed")
    }

    /// Our seqs sent but not acknowledged yet.
    pub fn in_flight(&self) -> u64 {
        self.next_seq - 1 - self.acked
    }

    /// Waits for the next hub message; desired-state pushes are acknowledged.
    pub async fn receive(&mut self) -> anyhow::Result<Received> {
        let Some(message) = self.inbound.message().await? else {
            bail!("{}: the hub closed the stream", self.cluster);
        };
        self.acked = self.acked.max(message.ack);
        if message.seq > 0 {
            self.hub_seq = self.hub_seq.max(message.seq);
        }
        match message.body {
            Some(v1::hub_message::Body::Command(command)) => {
                Ok(Received::Command(Box::new(command)))
            }
            Some(v1::hub_message::Body::GoAway(g)) => {
                bail!("{}: GoAway: {}", self.cluster, g.message)
            }
            _ => {
                if message.seq > 0 {
                    self.ack().await?;
                }
                Ok(Received::Other)
            }
        }
    }

    /// A status batch of managed apps, all at `status_version`.
    pub fn status_batch(
        project: &str,
        apps: &[String],
        status_version: u64,
        revision: &str,
    ) -> v1::spoke_message::Body {
        let synced = status_version.is_multiple_of(2);
        let reports = apps
            .iter()
            .map(|name| v1::AppStatusReport {
                app: Some(v1::AppRef {
                    project: project.to_owned(),
                    name: name.clone(),
                }),
                status: Some(v1::ApplicationStatus {
                    sync: Some(v1::SyncStatus {
                        status: if synced {
                            v1::SyncStatusCode::Synced
                        } else {
                            v1::SyncStatusCode::OutOfSync
                        } as i32,
                        revision: revision.to_owned(),
                    }),
                    health: Some(v1::HealthStatus {
                        status: v1::HealthStatusCode::Healthy as i32,
                        message: String::new(),
                    }),
                    observed_spec_version: 1,
                    status_version,
                    ..v1::ApplicationStatus::default()
                }),
                origin: v1::AppOrigin::Managed as i32,
                meta: None,
                spec: None,
            })
            .collect();
        v1::spoke_message::Body::AppStatus(v1::AppStatusBatch {
            reports,
            ..v1::AppStatusBatch::default()
        })
    }

    /// The result of a command: succeeded at once.
    pub fn succeeded(command_id: &str) -> v1::spoke_message::Body {
        v1::spoke_message::Body::CommandStatus(v1::CommandStatusBatch {
            statuses: vec![v1::CommandStatus {
                command_id: command_id.to_owned(),
                outcome: v1::CommandOutcome::Succeeded as i32,
                message: "bench".into(),
                updated_at: None,
                payload: None,
                ..v1::CommandStatus::default()
            }],
        })
    }
}

/// Percentile (0..=100) of durations, in milliseconds.
pub fn percentile_ms(samples: &mut [Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)].as_secs_f64() * 1000.0
}

/// Resident set size of a process, from `/proc/<pid>/status`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
