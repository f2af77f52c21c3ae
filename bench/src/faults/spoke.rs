//! A simulated spoke that keeps its promises across reconnects as the real one does: one epoch per process, an outbox of unacknowledged status batches retransmitted after `Welcome.resume_spoke_seq`, a full snapshot when the hub asks, commands deduplicated by id; its cluster keeps changing while the hub is out of reach.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use edgecd_core::link::capabilities::names;
use edgecd_proto::v1;
use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use rand::Rng as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::journal::Journal;

/// How one simulated spoke behaves.
#[derive(Debug, Clone)]
pub struct SpokeSettings {
    /// Status reports per batch message.
    pub batch: usize,
    /// Heartbeat period (the hub's, from Welcome, when it says one).
    pub heartbeat: Duration,
    /// Reconnect back-off: first delay and cap (full jitter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

/// The project every simulated app is in.
pub const PROJECT: &str = "default";

/// The app names of `cluster` (`<cluster>-app-NNN`).
pub fn app_names(cluster: &str, apps: usize) -> Vec<String> {
    (0..apps).map(|a| format!("{cluster}-app-{a:03}")).collect()
}

/// A status revision that carries the change's version, read back by the checker.
pub fn revision_of(version: u64) -> String {
    format!("v{version}")
}

/// The version a status revision carries.
pub fn version_of(revision: &str) -> Option<u64> {
    revision.strip_prefix('v')?.parse().ok()
}

/// A sent, unacknowledged batch: its body and the (app, version) pairs it carries.
struct Outgoing {
    body: v1::spoke_message::Body,
    changes: Vec<(usize, u64)>,
}

/// One simulated spoke: its cluster's apps and the stream's state.
pub struct SimCluster {
    pub cluster: String,
    /// This cluster's index in the journal.
    index: usize,
    /// Index of this cluster's first app in the journal.
    first_app: usize,
    names: Vec<String>,
    /// Current status version of each app (what the cluster shows now).
    versions: Vec<u64>,
    /// Apps changed since last sent.
    dirty: BTreeSet<usize>,
    epoch: String,
    next_seq: u64,
    outbox: BTreeMap<u64, Outgoing>,
    executed: BTreeSet<String>,
    journal: Arc<Journal>,
    settings: SpokeSettings,
}

/// Why a connection ended.
enum Ended {
    Stopped,
}

/// A short form of why a stream ended, to count losses by: the status code and the first words of its
/// message, or the first words of the error.
fn loss_cause(error: &anyhow::Error) -> String {
    let words = |text: &str| {
        text.split_whitespace()
            .take(5)
            .collect::<Vec<_>>()
            .join(" ")
    };
    match error.downcast_ref::<tonic::Status>() {
        Some(status) => format!("{:?}: {}", status.code(), words(status.message())),
        None => words(&error.to_string()),
    }
}

impl SimCluster {
    pub fn new(
        cluster: &str,
        index: usize,
        first_app: usize,
        apps: usize,
        journal: Arc<Journal>,
        settings: SpokeSettings,
    ) -> Self {
        Self {
            cluster: cluster.to_owned(),
            index,
            first_app,
            names: app_names(cluster, apps),
            versions: vec![1; apps],
            dirty: (0..apps).collect(),
            epoch: uuid::Uuid::new_v4().to_string(),
            next_seq: 1,
            outbox: BTreeMap::new(),
            executed: BTreeSet::new(),
            journal,
            settings,
        }
    }

    /// Runs until `stop`: connects through `endpoint`, reconnecting with jittered back-off; `changes`
    /// delivers the indexes of this cluster's apps whose status changed locally.
    pub async fn run(
        mut self,
        endpoint: String,
        mut changes: mpsc::UnboundedReceiver<usize>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut attempt = 0_u32;
        let mut lost_at: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let hinted = match self
                .session(
                    &endpoint,
                    &mut changes,
                    &mut stop,
                    &mut lost_at,
                    &mut attempt,
                )
                .await
            {
                Ok(Ended::Stopped) => return,
                Err(error) => {
                    tracing::debug!(cluster = %self.cluster, %error, "simulated spoke: stream ended");
                    if lost_at.is_none() {
                        lost_at = Some(Instant::now());
                        self.journal.disconnected(&self.cluster, loss_cause(&error));
                    }
                    error
                        .downcast_ref::<tonic::Status>()
                        .and_then(edgecd_proto::retry::retry_after)
                }
            };
            // Full jitter: uniform in [0, min(cap, base · 2^attempt)].
            let ceiling = self
                .settings
                .backoff_min
                .saturating_mul(1 << attempt.min(10))
                .min(self.settings.backoff_max);
            attempt = attempt.saturating_add(1);
            let mut delay = ceiling.mul_f64(rand::rng().random::<f64>());
            // The hub's retry-after (its handshake turns all taken, its database unavailable) is a floor,
            // spread by up to 20 % as the spoke does.
            if let Some(hint) = hinted.filter(|hint| *hint > delay) {
                delay = hint.mul_f64(1.0 + 0.2 * rand::rng().random::<f64>());
            }
            // Local changes go on while the hub is out of reach.
            let wake = tokio::time::sleep(delay);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    () = &mut wake => break,
                    change = changes.recv() => match change {
                        Some(app) => self.change(app),
                        None => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        }
    }

    fn change(&mut self, app: usize) {
        if let Some(v) = self.versions.get_mut(app) {
            *v += 1;
            self.dirty.insert(app);
            self.journal.changed(self.first_app + app, *v);
            self.journal.set_pending(self.index, true);
        }
    }

    /// One stream: handshake, resume, then status, heartbeats, acknowledgements and commands until it fails.
    async fn session(
        &mut self,
        endpoint: &str,
        changes: &mut mpsc::UnboundedReceiver<usize>,
        stop: &mut watch::Receiver<bool>,
        lost_at: &mut Option<Instant>,
        attempt: &mut u32,
    ) -> anyhow::Result<Ended> {
        let channel = super::super::simspoke::channel(endpoint)?;
        let (tx, rx) = mpsc::channel::<v1::SpokeMessage>(1024);
        let mut hello =
            super::super::simspoke::hello(&self.cluster, "faults", &self.epoch, self.next_seq);
        hello.capabilities.push(names::COALESCED_RESUME.to_owned());
        tx.send(v1::SpokeMessage {
            seq: 0,
            ack: 0,
            body: Some(v1::spoke_message::Body::Hello(hello)),
        })
        .await
        .context("queueing Hello")?;
        let mut client = SpokeServiceClient::new(channel).max_decoding_message_size(64 << 20);
        let mut inbound = tokio::time::timeout(
            Duration::from_secs(20),
            client.connect(ReceiverStream::new(rx)),
        )
        .await
        .context("connect timed out")??
        .into_inner();
        let welcome = loop {
            let message = tokio::time::timeout(Duration::from_secs(20), inbound.message())
                .await
                .context("no Welcome within 20 s")??;
            match message.and_then(|m| m.body) {
                Some(v1::hub_message::Body::Welcome(w)) => break w,
                Some(v1::hub_message::Body::GoAway(g)) => bail!("GoAway: {}", g.message),
                None => bail!("stream ended before Welcome"),
                Some(_) => {}
            }
        };
        self.journal.welcomed(&self.cluster);
        if let Some(at) = lost_at.as_ref() {
            self.journal.reconnected(at.elapsed());
        }
        let mut hub_seq = welcome.resume_hub_seq;
        // The hub stored everything up to resume_spoke_seq: acknowledged.
        self.acknowledge(welcome.resume_spoke_seq);
        if welcome.full_status_resync {
            // The hub lost track (a new epoch on its side): everything is sent again, as new messages.
            self.dirty.extend(0..self.names.len());
        }
        if welcome
            .capabilities
            .iter()
            .any(|c| c == names::COALESCED_RESUME)
        {
            // As the spoke's outbox does (`Outbox::resume_coalesced`): what was in flight is sent again
            // coalesced by app (each changed app once, at its current version), numbered on from the resume
            // point; command results keep their order.
            let unacked = std::mem::take(&mut self.outbox);
            self.next_seq = welcome.resume_spoke_seq + 1;
            for outgoing in unacked.into_values() {
                if outgoing.changes.is_empty() {
                    self.outbox.insert(self.next_seq, outgoing);
                    self.next_seq += 1;
                } else {
                    self.dirty
                        .extend(outgoing.changes.iter().map(|(app, _)| *app));
                }
            }
        }
        for (seq, outgoing) in &self.outbox {
            tx.send(v1::SpokeMessage {
                seq: *seq,
                ack: hub_seq,
                body: Some(outgoing.body.clone()),
            })
            .await
            .context("retransmitting")?;
        }
        let window = u64::from(welcome.window.max(1));
        let heartbeat = welcome
            .heartbeat_interval
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(self.settings.heartbeat);
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resynced = false;
        // A hub silent for three heartbeats is gone (a dead link shows no error): reconnect, as a real spoke does.
        let silence_limit = heartbeat.saturating_mul(3);
        let mut heard = Instant::now();
        let mut watchdog = tokio::time::interval(heartbeat);
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Changed apps go out as soon as the window allows (every event that adds one or frees the
            // window comes through here), what arrived together in one batch: no timer per stream.
            while let Ok(app) = changes.try_recv() {
                self.change(app);
            }
            while !self.dirty.is_empty() && (self.outbox.len() as u64) < window {
                let body = self.next_batch();
                let seq = self.next_seq - 1;
                tx.send(v1::SpokeMessage {
                    seq,
                    ack: hub_seq,
                    body: Some(body),
                })
                .await
                .context("sending status")?;
            }
            let idle = self.outbox.is_empty() && self.dirty.is_empty();
            self.journal.set_pending(self.index, !idle);
            if !resynced && idle {
                resynced = true;
                *attempt = 0;
                self.journal.resynced(&self.cluster, lost_at.take());
            }
            tokio::select! {
                _ = stop.changed() => return Ok(Ended::Stopped),
                change = changes.recv() => match change {
                    Some(app) => self.change(app),
                    None => return Ok(Ended::Stopped),
                },
                _ = watchdog.tick() => {
                    if heard.elapsed() > silence_limit {
                        bail!("the hub has been silent for {:?}", heard.elapsed());
                    }
                }
                _ = beat.tick() => {
                    tx.send(v1::SpokeMessage {
                        seq: 0,
                        ack: hub_seq,
                        body: Some(v1::spoke_message::Body::Heartbeat(v1::Heartbeat::default())),
                    })
                    .await
                    .context("sending a heartbeat")?;
                }
                message = inbound.message() => {
                    let Some(message) = message? else {
                        bail!("the hub closed the stream");
                    };
                    heard = Instant::now();
                    self.acknowledge(message.ack);
                    if message.seq > 0 {
                        hub_seq = hub_seq.max(message.seq);
                    }
                    match message.body {
                        Some(v1::hub_message::Body::Command(command)) => {
                            if self.executed.insert(command.id.clone()) {
                                self.journal.executed(&command.id);
                            } else {
                                self.journal.redelivered(&command.id);
                            }
                            let seq = self.next_seq;
                            self.next_seq += 1;
                            let body = super::super::simspoke::SimSpoke::succeeded(&command.id);
                            self.outbox.insert(seq, Outgoing { body: body.clone(), changes: Vec::new() });
                            tx.send(v1::SpokeMessage { seq, ack: hub_seq, body: Some(body) })
                                .await
                                .context("reporting a command")?;
                        }
                        Some(v1::hub_message::Body::GoAway(g)) => bail!("GoAway: {}", g.message),
                        _ => {
                            if message.seq > 0 {
                                tx.send(v1::SpokeMessage { seq: 0, ack: hub_seq, body: None })
                                    .await
                                    .context("acknowledging")?;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The next batch of changed apps, with their current versions, as a sequenced message in the outbox.
    fn next_batch(&mut self) -> v1::spoke_message::Body {
        let take: Vec<usize> = self
            .dirty
            .iter()
            .copied()
            .take(self.settings.batch.max(1))
            .collect();
        let mut changes = Vec::with_capacity(take.len());
        let reports = take
            .iter()
            .map(|&app| {
                self.dirty.remove(&app);
                let version = self.versions[app];
                changes.push((app, version));
                report(&self.names[app], version)
            })
            .collect();
        let body = v1::spoke_message::Body::AppStatus(v1::AppStatusBatch {
            reports,
            ..v1::AppStatusBatch::default()
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.insert(
            seq,
            Outgoing {
                body: body.clone(),
                changes,
            },
        );
        body
    }

    /// Everything up to `ack` is stored at the hub: out of the outbox, into the journal.
    fn acknowledge(&mut self, ack: u64) {
        let done: Vec<u64> = self.outbox.range(..=ack).map(|(seq, _)| *seq).collect();
        for seq in done {
            if let Some(outgoing) = self.outbox.remove(&seq) {
                for (app, version) in outgoing.changes {
                    self.journal.acknowledged(self.first_app + app, version);
                }
            }
        }
    }
}

/// One app's status at `version`: synced and healthy, the version in the revision.
fn report(name: &str, version: u64) -> v1::AppStatusReport {
    v1::AppStatusReport {
        app: Some(v1::AppRef {
            project: PROJECT.to_owned(),
            name: name.to_owned(),
        }),
        status: Some(v1::ApplicationStatus {
            sync: Some(v1::SyncStatus {
                status: v1::SyncStatusCode::Synced as i32,
                revision: revision_of(version),
            }),
            health: Some(v1::HealthStatus {
                status: v1::HealthStatusCode::Healthy as i32,
                message: String::new(),
            }),
            observed_spec_version: 1,
            status_version: version,
            ..v1::ApplicationStatus::default()
        }),
        origin: v1::AppOrigin::Managed as i32,
        meta: None,
        spec: None,
    }
}
