//! One spoke stream at the hub: handshake (Hello → Welcome or GoAway), then the sequenced session: durable ingest before every acknowledgement, desired-set and command delivery from the store, heartbeats, staleness and digests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgecd_core::ClusterName;
use edgecd_core::link::{Capabilities, Inbox, NegotiationError, ProtocolVersion, Receipt, digest};
use edgecd_proto::v1::{
    GoAway, Heartbeat, Hello, HubMessage, ResyncRequest, SpokeMessage, Welcome, go_away,
    hub_message, resync_request, spoke_message,
};
use edgecd_telemetry::propagation;
use futures::{FutureExt as _, StreamExt};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};
use tracing::Instrument as _;

use super::convert::{self, CommandPayload};
use super::{LinkConfig, Signal};
use crate::store::{
    AppFilter, AppQuery, ClusterConnection, ClusterVersions, CommandOutcome, CommandRecord,
    CommandUpdate, ConnectionKind, DesiredChange, DesiredChanges, SpokeSeq, StatusBatch,
    StatusReport, StatusWrite, Store, StoreError,
};

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
    #[error("spoke acknowledged hub message {acked} but only {sent} were sent")]
    AckBeyondSent { acked: u64, sent: u64 },
    #[error("the hub's database is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("the spoke went away")]
    ClientGone,
}

impl SessionError {
    pub fn into_status(self) -> Status {
        match &self {
            Self::HelloTimeout(_) => Status::deadline_exceeded(self.to_string()),
            Self::NotHello | Self::SequenceGap { .. } | Self::AckBeyondSent { .. } => {
                Status::invalid_argument(self.to_string())
            }
            Self::Negotiation(_) => Status::failed_precondition(self.to_string()),
            Self::Transport(status) => status.clone(),
            Self::Store(StoreError::Superseded { .. }) => {
                Status::aborted("a newer stream of this cluster took over")
            }
            // Never leak database details to the peer.
            Self::Store(_) => crate::retry::database_unavailable(),
            Self::ClientGone => Status::cancelled(self.to_string()),
        }
    }
}

/// Boxed: a bounded channel allocates its first block of 32 slots when it
/// is created, and 10,000 idle streams each pay for that block (216 bytes
/// per unboxed message, 16 boxed).
type Outbound = mpsc::Sender<Result<Box<HubMessage>, Status>>;

/// Messages already received that one turn of the session takes together.
const MAX_MESSAGES_PER_TURN: usize = 16;

/// The first pause before a store call that failed transiently is tried again; it doubles up to
/// [`MAX_STORE_PAUSE`], with jitter.
const FIRST_STORE_PAUSE: Duration = Duration::from_millis(100);
const MAX_STORE_PAUSE: Duration = Duration::from_secs(2);

/// Runs a store call, and runs it again while it fails transiently (the pool saturated, the server
/// restarting or failing over) as long as a try can start before `deadline`. A session waits out a
/// short hiccup of the database instead of ending its stream: an ended stream sends its spoke back
/// through the handshake, into the same crowd, with more work for the same database. Only idempotent
/// calls go through here (a failed transaction changed nothing). The deadline is the session turn's
/// ([`Session::patience_deadline`]), so that waits within one turn do not add up.
async fn patiently<T, Fut>(
    deadline: Instant,
    retries: &prometheus_client::metrics::counter::Counter,
    what: &'static str,
    mut call: impl FnMut() -> Fut,
) -> Result<T, StoreError>
where
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut pauses = StorePauses::until(deadline);
    loop {
        match call().await {
            Err(error) if error.is_transient() => {
                let Some(wait) = pauses.next() else {
                    return Err(error);
                };
                retries.inc();
                tracing::debug!(%error, what, ?wait, "Waiting out a transient database error.");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// The pauses between tries of a store call that failed transiently: from [`FIRST_STORE_PAUSE`],
/// doubling up to [`MAX_STORE_PAUSE`], each jittered down to half; none that would end past the deadline.
struct StorePauses {
    next: Duration,
    deadline: Instant,
}

impl StorePauses {
    fn until(deadline: Instant) -> Self {
        Self {
            next: FIRST_STORE_PAUSE,
            deadline,
        }
    }

    /// The next pause, or `None`: give up.
    fn next(&mut self) -> Option<Duration> {
        let wait = self.next.mul_f64(rand::random_range(0.5..=1.0));
        if Instant::now() + wait >= self.deadline {
            return None;
        }
        self.next = (self.next * 2).min(MAX_STORE_PAUSE);
        Some(wait)
    }
}

/// Consecutive status deltas of one turn, merged: per app only the report
/// with the highest status version is kept (a status is state, and a newer
/// one supersedes an older one entirely).
#[derive(Default)]
struct MergedStatus {
    /// Sequence number of the last message merged.
    last_seq: u64,
    messages: u64,
    reports: Vec<StatusReport>,
    /// Index into `reports` per `(project, name)`.
    index: HashMap<(String, String), usize>,
}

impl MergedStatus {
    fn add(&mut self, seq: u64, batch: StatusBatch) {
        self.last_seq = seq;
        self.messages += 1;
        for report in batch.reports {
            let key = (report.project.clone(), report.name.clone());
            match self.index.get(&key) {
                Some(&at) => {
                    if report.status.status_version >= self.reports[at].status.status_version {
                        self.reports[at] = report;
                    }
                }
                None => {
                    self.index.insert(key, self.reports.len());
                    self.reports.push(report);
                }
            }
        }
    }

    /// The merged batch, its last sequence number and how many messages it holds.
    fn take(&mut self) -> Option<(u64, StatusBatch, u64)> {
        if self.messages == 0 {
            return None;
        }
        let merged = std::mem::take(self);
        Some((
            merged.last_seq,
            StatusBatch {
                reports: merged.reports,
                ..StatusBatch::default()
            },
            merged.messages,
        ))
    }
}

/// The projects of the apps a full desired set upserts.
fn projects_of(desired: &DesiredChanges) -> std::collections::BTreeSet<String> {
    desired
        .changes
        .iter()
        .filter_map(|c| match c {
            DesiredChange::Upsert(app) => Some(app.project.clone()),
            DesiredChange::Delete { .. } => None,
        })
        .collect()
}

/// What every session needs.
pub(super) struct Context {
    pub config: Arc<LinkConfig>,
    pub store: Arc<dyn Store>,
    pub cluster: ClusterName,
    /// Signs renewals; `None` when the hub has no CA.
    pub pki: Option<Arc<crate::pki::Pki>>,
    /// Expiry of the client certificate the stream was opened with.
    pub certificate_not_after: Option<OffsetDateTime>,
    /// The cluster's record as the link's opening wrote it ([`open`]); `None` before.
    pub accepted_record: Option<crate::store::ClusterRecord>,
    /// The signals this session has not handled yet; its channel of wake-ups says when to look.
    pub pending: Arc<super::Pending>,
    /// The projects and application sets as this replica's watch last read them, for handshakes.
    pub settings: Arc<super::watch::SettingsCache>,
    /// This replica's sessions write their heartbeats together.
    pub heartbeats: Arc<super::HeartbeatBook>,
    /// And their status batches ([`super::group`]).
    pub statuses: Arc<super::group::StatusGroups>,
    /// This stream's id: its handshake makes it the owner of the cluster's connection record, and its
    /// later writes there apply only while it still is (`Store::set_stream_connection`).
    pub stream: String,
}

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

/// Records that the stream is gone, unless a newer stream (on any replica) holds the cluster now.
pub(super) async fn disconnected(ctx: &Context) {
    let name = ctx.cluster.as_str();
    let connection = ClusterConnection {
        state: ConnectionKind::Disconnected,
        since: Some(OffsetDateTime::now_utc()),
        // Its last heartbeat, if not written yet.
        last_heartbeat: ctx.heartbeats.forget(name, &ctx.stream),
        hub_replica: String::new(),
    };
    match ctx
        .store
        .set_stream_connection(name, &ctx.stream, &connection)
        .await
    {
        Ok(true) => notify(ctx, super::CLUSTERS_CHANNEL).await,
        // A newer stream owns the record, or the cluster is gone.
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "Cannot record the disconnect."),
    }
}

/// Announces a change of this cluster on `channel` (payload: the cluster
/// name), for watchers on any replica. Best effort: watchers resync on lag.
async fn notify(ctx: &Context, channel: &str) {
    if let Err(error) = ctx.store.notify(channel, ctx.cluster.as_str()).await {
        tracing::debug!(%error, channel, "Cannot announce a change.");
    }
}

/// The hub's half of one stream.
struct Session<'a> {
    ctx: &'a Context,
    outbound: Outbound,
    capabilities: Capabilities,
    epoch: String,
    inbox: Inbox,
    /// Last hub seq used and acknowledged on this stream.
    hub_seq: u64,
    hub_acked: u64,
    /// Command ids carried by each unacknowledged hub seq.
    delivering: BTreeMap<u64, Vec<String>>,
    /// Desired-set version the spoke has (as far as this session knows).
    spoke_desired: u64,
    /// The desired set's version when the link opened, until the first desired pass: a spoke that has it
    /// already (a reconnect with nothing changed) needs no read.
    opened_desired: Option<u64>,
    sent_commands: HashSet<String>,
    desired_dirty: bool,
    commands_dirty: bool,
    /// Repository credentials may have changed; and a hash of the set last sent.
    credentials_dirty: bool,
    credentials_sent: Option<String>,
    /// Project policies may have changed; and a hash of the set last sent.
    policies_dirty: bool,
    policies_sent: Option<u64>,
    /// The projects of the cluster's desired apps, from the last full read of its desired set while no read
    /// since found a change: the policies need no read of their own (at a handshake, both are sent together;
    /// after a project edit, every session re-checks them).
    desired_projects: Option<std::collections::BTreeSet<String>>,
    /// The cluster's record as the handshake wrote it, for the first application-set pass.
    accepted_record: Option<crate::store::ClusterRecord>,
    /// The next pass takes the projects and sets from the replica's watch ([`Context::settings`]): at the
    /// handshake, and after the watch signalled their edit; a fresh read otherwise.
    settings_from_watch: bool,
    /// Application sets assigned to this cluster may have changed; and a hash of the snapshot last sent.
    appsets_dirty: bool,
    appsets_sent: Option<u64>,
    last_seen: Instant,
    last_seen_at: OffsetDateTime,
    stale: bool,
    /// `(project, name)` of the apps this cluster created at the edge, in the
    /// spoke's names (the hub's are `name@cluster`): what a message without
    /// an origin (removal, tree, events) names is an edge app if it is here.
    /// Read when first needed (a message without an origin, a command to check): `None` until then.
    edge_apps: Option<HashSet<(String, String)>>,
    /// Live sessions open on this stream (their readers, by id).
    live: super::live::Sessions,
    /// The end of this turn's patience with the database ([`Session::patience_deadline`]).
    deadline: Option<Instant>,
}

/// A stream past its handshake's store work, for [`run`].
pub(super) struct Opening {
    /// The capabilities both sides agreed on.
    agreed: Capabilities,
    /// Where the spoke resumes, and whether its epoch is the one the link knew.
    resume: u64,
    same_epoch: bool,
    /// The desired set's version when the link opened.
    desired_version: u64,
    /// Whether the cluster had commands to deliver when the link opened.
    commands_open: bool,
    /// The end of the handshake's patience with the database.
    deadline: Instant,
    at: OffsetDateTime,
    /// The stream's handshake turn, held until it has sent Welcome.
    turn: super::turns::Turn,
}

/// How [`open`] ended without an opening.
pub(super) enum Refusal {
    /// The stream is refused with this status; nothing was recorded.
    Status(Status),
    /// The spoke was sent a GoAway (no protocol in common): the stream ends after it.
    GoneAway,
}

/// The handshake's store work, before the session starts: negotiates the protocol, then opens the link in
/// one transaction ([`Store::open_link`]: the stream's claim, the hello, the announcement, the resume point,
/// the desired set's version and whether commands wait). Sets [`Context::accepted_record`].
pub(super) async fn open(
    ctx: &mut Context,
    hello: &Hello,
    outbound: &Outbound,
    turn: super::turns::Turn,
) -> Result<Opening, Refusal> {
    let config = &ctx.config;
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
                return Err(
                    match go_away(
                        outbound,
                        go_away::Reason::ProtocolUnsupported,
                        error.to_string(),
                        Duration::from_secs(300),
                    )
                    .await
                    {
                        Ok(()) => Refusal::GoneAway,
                        Err(error) => Refusal::Status(error.into_status()),
                    },
                );
            }
        };

    let name = ctx.cluster.as_str();
    // The handshake's patience ends with the Hello timeout: a spoke waiting longer for its Welcome
    // has likely given up, and the stream holds a handshake turn.
    let deadline = Instant::now() + config.store_patience().min(config.hello_timeout);
    let retries = &config.counters.store_retries;
    let now = OffsetDateTime::now_utc();
    let link_hello = crate::store::LinkHello {
        server_url: hello.server_url.clone(),
        versions: ClusterVersions {
            spoke_version: hello.spoke_version.clone(),
            kubernetes_version: hello.kubernetes_version.clone(),
            protocol_major: theirs.major,
            protocol_minor: theirs.minor,
            capabilities: agreed.iter().map(str::to_owned).collect(),
        },
        certificate_not_after: ctx.certificate_not_after,
        connection: ClusterConnection {
            state: ConnectionKind::Connected,
            since: Some(now),
            last_heartbeat: Some(now),
            hub_replica: config.replica.clone(),
        },
    };
    // From here on only this stream's messages are stored: nothing past the resume point it is told can be
    // stored by an older one still open (on this replica or another), so the spoke may renumber what it resends.
    let opened = patiently(deadline, retries, "open_link", || {
        ctx.store.open_link(name, &ctx.stream, &link_hello, now)
    })
    .await;
    let link = match opened {
        Ok(crate::store::LinkOpened::Open(link)) => *link,
        Ok(crate::store::LinkOpened::Revoked) => {
            return Err(Refusal::Status(Status::permission_denied(format!(
                "cluster {name} has been revoked"
            ))));
        }
        Err(StoreError::NotFound { .. }) => {
            return Err(Refusal::Status(Status::not_found(format!(
                "cluster {name} is not registered at this hub"
            ))));
        }
        Err(error) => {
            tracing::warn!(%error, "Cannot open the cluster's link.");
            return Err(Refusal::Status(SessionError::from(error).into_status()));
        }
    };
    let same_epoch = !hello.spoke_epoch.is_empty() && link.state.spoke_epoch == hello.spoke_epoch;
    let resume = if same_epoch { link.state.spoke_seq } else { 0 };
    tracing::info!(
        spoke_version = %hello.spoke_version,
        protocol = %theirs,
        resume,
        same_epoch,
        "Spoke connected."
    );
    let skew = edgecd_core::link::skew::POLICY.assess(&config.hub_version, &hello.spoke_version);
    if let edgecd_core::link::Skew::Unsupported { reason } = &skew {
        // It still connects: capabilities govern what either side sends; the API shows the skew.
        tracing::warn!(spoke_version = %hello.spoke_version, %reason, "Spoke release outside the supported version skew.");
    }
    ctx.accepted_record = Some(link.cluster);
    Ok(Opening {
        agreed,
        resume,
        same_epoch,
        desired_version: link.state.desired_version,
        commands_open: link.commands_open,
        deadline,
        at: now,
        turn,
    })
}

/// Runs a session until the spoke disconnects or breaks the protocol.
pub(super) async fn run(
    ctx: &Context,
    hello: Hello,
    opening: Opening,
    mut inbound: Streaming<SpokeMessage>,
    mut signals: mpsc::Receiver<()>,
    mut live: mpsc::Receiver<super::live::LiveControl>,
    outbound: Outbound,
) -> Result<(), SessionError> {
    let config = &ctx.config;
    let name = ctx.cluster.as_str();
    let Opening {
        agreed,
        resume,
        same_epoch,
        desired_version,
        commands_open,
        deadline,
        at: now,
        turn: handshake_turn,
    } = opening;

    let mut session = Session {
        ctx,
        outbound,
        capabilities: agreed.clone(),
        epoch: hello.spoke_epoch.clone(),
        inbox: Inbox::new(resume),
        hub_seq: 0,
        hub_acked: 0,
        delivering: BTreeMap::new(),
        spoke_desired: hello.desired_version,
        opened_desired: Some(desired_version),
        sent_commands: HashSet::new(),
        desired_dirty: true,
        // Without any when the link opened, none is read until the router or the watch tells of one.
        commands_dirty: commands_open,
        credentials_dirty: true,
        credentials_sent: None,
        policies_dirty: true,
        policies_sent: None,
        desired_projects: None,
        accepted_record: ctx.accepted_record.clone(),
        settings_from_watch: true,
        appsets_dirty: true,
        appsets_sent: None,
        last_seen: Instant::now(),
        last_seen_at: now,
        stale: false,
        edge_apps: None,
        live: super::live::Sessions::default(),
        deadline: Some(deadline),
    };
    let welcome = Welcome {
        cluster_name: name.to_owned(),
        protocol: Some(edgecd_proto::v1::ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }),
        capabilities: agreed.iter().map(str::to_owned).collect(),
        resume_spoke_seq: resume,
        resume_hub_seq: 0,
        heartbeat_interval: Some(edgecd_proto::convert::duration(config.heartbeat_interval)),
        window: config.window,
        hub_replica: config.replica.clone(),
        hub_version: config.hub_version.clone(),
        full_status_resync: !same_epoch,
        digest_interval: Some(edgecd_proto::convert::duration(config.digest_interval)),
    };
    session
        .send_control(hub_message::Body::Welcome(welcome))
        .await?;
    session.flush().await?;
    session.settings_from_watch = false;
    // Labels change: later passes read the record again.
    session.accepted_record = None;
    // Handshake done: the next stream's turn.
    drop(handshake_turn);

    let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
    heartbeat.tick().await;
    loop {
        // Each turn has its own patience with the database.
        session.deadline = None;
        tokio::select! {
            message = inbound.next() => {
                let Some(message) = message else { return Ok(()) };
                // Take what else has already arrived, so that consecutive
                // status batches are stored in one transaction.
                let mut messages = vec![message?];
                let mut ended = false;
                while messages.len() < MAX_MESSAGES_PER_TURN {
                    match inbound.next().now_or_never() {
                        Some(Some(message)) => messages.push(message?),
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                session.receive(messages).await?;
                if ended {
                    return Ok(());
                }
                session.flush().await?;
            }
            Some(control) = live.recv() => {
                use edgecd_core::link::capabilities::names;
                let support = super::live::LiveSupport {
                    sessions: session.capabilities.contains(names::LIVE_SESSIONS),
                    exec: session.capabilities.contains(names::LIVE_EXEC),
                };
                if let Some(body) = session.live.control(control, name, support) {
                    session.send_control(body).await?;
                }
            }
            signal = signals.recv() => {
                // Unregistered: the cluster was revoked or removed.
                let pending = if signal.is_some() { ctx.pending.take() } else { vec![Signal::Revoked] };
                for signal in &pending {
                    match *signal {
                        Signal::DesiredChanged | Signal::Resync => {
                            session.desired_dirty = true;
                            session.credentials_dirty = true;
                            session.policies_dirty = true;
                            session.appsets_dirty = true;
                            if *signal == Signal::Resync {
                                session.commands_dirty = true;
                            }
                        }
                        Signal::CommandsPending => session.commands_dirty = true,
                        Signal::SettingsChanged => {
                            session.policies_dirty = true;
                            session.appsets_dirty = true;
                            // A set scoped to this cluster entitles it to its project's credentials.
                            session.credentials_dirty = true;
                        }
                        Signal::Replaced => {
                            go_away(&session.outbound, go_away::Reason::Replaced, "a newer stream of this cluster took over".into(), Duration::ZERO).await?;
                            return Ok(());
                        }
                        Signal::Drain(retry_after) => {
                            go_away(&session.outbound, go_away::Reason::Draining, "this hub replica is shutting down; reconnect to another".into(), retry_after).await?;
                            return Ok(());
                        }
                        Signal::Revoked => {
                            go_away(&session.outbound, go_away::Reason::Revoked, format!("cluster {name} was revoked or removed"), Duration::from_secs(3600)).await?;
                            return Ok(());
                        }
                    }
                }
                // The watch read the projects and sets before it signalled an edit of them: what it read serves
                // this pass, unless something else asks for a fresh read (an app or a set scoped here changed,
                // or notifications were missed).
                session.settings_from_watch = pending.contains(&Signal::SettingsChanged)
                    && !pending
                        .iter()
                        .any(|s| matches!(s, Signal::DesiredChanged | Signal::Resync));
                let flushed = session.flush().await;
                session.settings_from_watch = false;
                flushed?;
            }
            // Silent past the threshold: Stale now, not at the next heartbeat (up to one interval later).
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(
                session.last_seen + config.stale_after + Duration::from_millis(1),
            )), if !session.stale => {
                session.check_staleness().await?;
            }
            _ = heartbeat.tick() => {
                let beat = Heartbeat {
                    sent_at: Some(edgecd_proto::convert::timestamp(OffsetDateTime::now_utc())),
                    in_flight: (session.hub_seq - session.hub_acked) as u32,
                    buffered: 0,
                };
                session.send_control(hub_message::Body::Heartbeat(beat)).await?;
                // Another stream's handshake took the cluster's connection record (one that raced this one's,
                // or came later and ended): this one can no longer record its state; its spoke reconnects.
                if ctx.heartbeats.disowned(&ctx.stream) {
                    tracing::warn!("A newer stream of this cluster owns its connection record; asking the spoke to reconnect.");
                    go_away(&session.outbound, go_away::Reason::Replaced, "a newer stream of this cluster took over".into(), Duration::ZERO).await?;
                    return Ok(());
                }
                // The certificate the stream was opened with expired: the
                // spoke renewed it long ago (at two thirds) and must now
                // reconnect with the current one.
                if ctx.certificate_not_after.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
                    tracing::info!("The stream's client certificate expired; asking the spoke to reconnect.");
                    go_away(&session.outbound, go_away::Reason::Draining, "the client certificate of this stream expired; reconnect with the renewed one".into(), Duration::ZERO).await?;
                    return Ok(());
                }
                // Commands to deliver, project and set edits and relabelling reach the session as signals
                // from the replica's watch (`SpokeLink::spawn_watch`): an idle session reads nothing here.
                session.check_staleness().await?;
                session.flush().await?;
            }
        }
    }
}

impl Session<'_> {
    fn name(&self) -> &str {
        self.ctx.cluster.as_str()
    }

    /// The end of this turn's patience with the database: [`LinkConfig::store_patience`] from its first
    /// store call, reset every turn of the session loop (and the Hello timeout's end during the handshake).
    /// Waits within a turn share it, so no turn keeps the hub silent for much longer than that.
    fn patience_deadline(&mut self) -> Instant {
        let patience = self.ctx.config.store_patience();
        *self
            .deadline
            .get_or_insert_with(|| Instant::now() + patience)
    }

    /// Reads which of the cluster's apps were created at the edge, unless read already: only what needs it
    /// pays for it (most handshakes send and receive nothing that does).
    async fn load_edge_apps(&mut self) -> Result<(), SessionError> {
        if self.edge_apps.is_some() {
            return Ok(());
        }
        let mut edge_apps = HashSet::new();
        let mut cursor = None;
        loop {
            let query = AppQuery {
                filter: AppFilter {
                    clusters: vec![self.name().to_owned()],
                    origin: Some(edgecd_core::app::AppOrigin::Autonomous),
                    ..AppFilter::default()
                },
                sort: Default::default(),
                page_size: 1000,
                cursor: cursor.take(),
            };
            let (deadline, ctx) = (self.patience_deadline(), self.ctx);
            let page = patiently(
                deadline,
                &ctx.config.counters.store_retries,
                "list_apps",
                || ctx.store.list_apps(&query),
            )
            .await?;
            for app in page.items {
                let local = convert::spoke_name(&app.name).to_owned();
                edge_apps.insert((app.project, local));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => {
                    self.edge_apps = Some(edge_apps);
                    return Ok(());
                }
            }
        }
    }

    /// The hub's name of the app a message without an origin names as
    /// `local` (see [`convert::hub_name`]); `None` if a spoke may not name it.
    fn hub_name(&self, project: &str, local: &str) -> Option<String> {
        let edge = self
            .edge_apps
            .as_ref()
            .is_some_and(|apps| apps.contains(&(project.to_owned(), local.to_owned())));
        convert::hub_name(local, edge, self.name())
    }

    fn window_full(&self) -> bool {
        self.hub_seq - self.hub_acked >= u64::from(self.ctx.config.window)
    }

    async fn send_control(&self, body: hub_message::Body) -> Result<(), SessionError> {
        self.outbound
            .send(Ok(Box::new(HubMessage {
                seq: 0,
                ack: self.inbox.ack(),
                body: Some(body),
            })))
            .await
            .map_err(|_| SessionError::ClientGone)
    }

    async fn send_sequenced(
        &mut self,
        body: hub_message::Body,
        commands: Vec<String>,
    ) -> Result<(), SessionError> {
        self.hub_seq += 1;
        if !commands.is_empty() {
            self.delivering.insert(self.hub_seq, commands);
        }
        self.outbound
            .send(Ok(Box::new(HubMessage {
                seq: self.hub_seq,
                ack: self.inbox.ack(),
                body: Some(body),
            })))
            .await
            .map_err(|_| SessionError::ClientGone)
    }

    /// Sends what is pending, as far as the window allows; waits out a transient database error (what
    /// failed stays pending and is tried again) for the session's patience.
    async fn flush(&mut self) -> Result<(), SessionError> {
        let mut pauses = StorePauses::until(self.patience_deadline());
        loop {
            match self.flush_once().await {
                Err(SessionError::Store(error)) if error.is_transient() => {
                    let Some(wait) = pauses.next() else {
                        return Err(error.into());
                    };
                    self.ctx.config.counters.store_retries.inc();
                    tracing::debug!(%error, ?wait, "Waiting out a transient database error before sending.");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// One try of [`Self::flush`]: a part that fails is left pending.
    async fn flush_once(&mut self) -> Result<(), SessionError> {
        if self.desired_dirty && !self.window_full() {
            self.desired_dirty = false;
            self.send_desired()
                .await
                .inspect_err(|_| self.desired_dirty = true)?;
        }
        if self.commands_dirty && !self.window_full() {
            self.commands_dirty = false;
            self.send_commands()
                .await
                .inspect_err(|_| self.commands_dirty = true)?;
        }
        if self.credentials_dirty && !self.window_full() {
            self.credentials_dirty = false;
            self.send_credentials()
                .await
                .inspect_err(|_| self.credentials_dirty = true)?;
        }
        if self.policies_dirty && !self.window_full() {
            self.policies_dirty = false;
            self.send_policies()
                .await
                .inspect_err(|_| self.policies_dirty = true)?;
        }
        if self.appsets_dirty && !self.window_full() {
            self.appsets_dirty = false;
            self.send_appsets()
                .await
                .inspect_err(|_| self.appsets_dirty = true)?;
        }
        Ok(())
    }

    /// Sends the application sets evaluated at this cluster (scoped to it by name, list or selector), with the
    /// cluster's labels (a full snapshot, only when it changed).
    async fn send_appsets(&mut self) -> Result<(), SessionError> {
        use edgecd_core::link::capabilities::names;
        if !self.capabilities.contains(names::APPLICATION_SETS) {
            return Ok(());
        }
        // As the handshake wrote it (with the server URL the hello recorded, if the cluster had none), or read
        // again: labels change.
        let cluster = match self.accepted_record.take() {
            Some(record) => record,
            None => self.ctx.store.get_cluster(self.name()).await?,
        };
        let cached = self
            .settings_from_watch
            .then(|| self.ctx.settings.current())
            .flatten();
        let records = match cached {
            Some(settings) => crate::store::appsets::evaluated_among(&settings.appsets, &cluster),
            None => crate::store::appsets::evaluated_at(self.ctx.store.as_ref(), &cluster).await?,
        };
        let mut sets = Vec::with_capacity(records.len());
        let full_specs = self.capabilities.contains(names::APPSET_ARGO_SPEC);
        for record in &records {
            let converted = edgecd_core::appset::ApplicationSetSpec::from_json(&record.spec)
                .map_err(|e| e.to_string())
                .and_then(|spec| {
                    // A spoke that reads only the typed summary would generate other apps than the set says.
                    if !full_specs && spec.needs_full_spec() {
                        return Err(format!(
                            "the spoke does not support {} (Go templates, template patches, generator selectors or templates): upgrade it",
                            names::APPSET_ARGO_SPEC
                        ));
                    }
                    // The spoke sees a set scoped to its own cluster, also when the set's scope is a list or a
                    // selector: the apps it generates name this cluster as their owner's scope.
                    edgecd_proto::convert::appset_spec_to_proto(
                        &record.project,
                        &record.name,
                        self.name(),
                        &spec,
                    )
                    .map_err(|e| e.to_string())
                });
            match converted {
                Ok(mut set) => {
                    set.version = record.version;
                    sets.push(set);
                }
                // Stored sets were validated on the way in; one that no
                // longer converts is skipped, not allowed to stall the rest.
                Err(error) => {
                    tracing::warn!(project = %record.project, appset = %record.name, %error, "Cannot send an application set.")
                }
            }
        }
        let message = edgecd_proto::v1::SpokeApplicationSets {
            sets,
            cluster_labels: edgecd_proto::convert::labels(&cluster.labels),
            cluster_annotations: edgecd_proto::convert::labels(&cluster.annotations),
            cluster_server_url: cluster.server_url.clone(),
        };
        let hash = {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            let mut labels: Vec<_> = message.cluster_labels.iter().collect();
            labels.sort();
            let mut annotations: Vec<_> = message.cluster_annotations.iter().collect();
            annotations.sort();
            // Versions, not the messages: protobuf maps have no stable order.
            let versions: Vec<_> = records
                .iter()
                .map(|r| (&r.project, &r.name, r.version))
                .collect();
            format!(
                "{versions:?}{labels:?}{annotations:?}{}",
                message.cluster_server_url
            )
            .hash(&mut hasher);
            hasher.finish()
        };
        if self.appsets_sent == Some(hash) {
            return Ok(());
        }
        self.appsets_sent = Some(hash);
        tracing::debug!(sets = message.sets.len(), "Sending application sets.");
        self.send_sequenced(hub_message::Body::ApplicationSets(message), vec![])
            .await
    }

    /// Sends the policies of the projects of the cluster's desired apps (a full set, only when it changed),
    /// so the spoke enforces them again before applying anything.
    async fn send_policies(&mut self) -> Result<(), SessionError> {
        use edgecd_core::link::capabilities::names;
        if !self.capabilities.contains(names::PROJECT_POLICIES) {
            return Ok(());
        }
        let names = match &self.desired_projects {
            Some(names) => names.clone(),
            None => {
                let names = projects_of(&self.ctx.store.desired_changes(self.name(), 0).await?);
                self.desired_projects = Some(names.clone());
                names
            }
        };
        let cached = self
            .settings_from_watch
            .then(|| self.ctx.settings.current())
            .flatten();
        let mut projects = Vec::new();
        for name in &names {
            if let Some(record) = cached.as_ref().and_then(|c| c.projects.get(name)) {
                projects.push(edgecd_proto::convert::project(
                    &record.name,
                    &record.spec,
                    record.version,
                    Some(record.created_at),
                ));
                continue;
            }
            match self.ctx.store.get_project(name).await {
                Ok(record) => projects.push(edgecd_proto::convert::project(
                    &record.name,
                    &record.spec,
                    record.version,
                    Some(record.created_at),
                )),
                Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let hash = {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            format!("{projects:?}").hash(&mut hasher);
            hasher.finish()
        };
        if self.policies_sent == Some(hash) {
            return Ok(());
        }
        self.policies_sent = Some(hash);
        tracing::debug!(projects = projects.len(), "Sending project policies.");
        let message = edgecd_proto::v1::ProjectPolicies {
            projects,
            full_snapshot: true,
        };
        self.send_sequenced(hub_message::Body::ProjectPolicies(message), vec![])
            .await
    }

    /// Sends the repository credentials this cluster may use (a full set,
    /// only when it changed). Never logged.
    async fn send_credentials(&mut self) -> Result<(), SessionError> {
        use edgecd_core::link::capabilities::names;
        let Some(pki) = &self.ctx.pki else {
            return Ok(());
        };
        let Some(sealer) = pki.sealer() else {
            return Ok(());
        };
        if !self.capabilities.contains(names::REPO_CREDENTIALS) {
            return Ok(());
        }
        let credentials = match crate::pki::repos::for_cluster(
            self.ctx.store.as_ref(),
            pki.security().as_ref(),
            sealer,
            self.name(),
        )
        .await
        {
            Ok(credentials) => credentials,
            Err(crate::pki::PkiError::Store(error)) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%error, "Cannot open repository credentials; not sending them.");
                return Ok(());
            }
        };
        let fingerprint = {
            use sha2::Digest as _;
            let pairs: Vec<(&str, &crate::pki::repos::RepoSecret)> = credentials
                .iter()
                .map(|c| (c.url_prefix.as_str(), &c.secret))
                .collect();
            let bytes = serde_json::to_vec(&pairs).unwrap_or_default();
            format!("{:x}", sha2::Sha256::digest(&bytes))
        };
        let message = edgecd_proto::v1::RepositoryCredentials {
            credentials: credentials
                .into_iter()
                .map(|c| edgecd_proto::v1::RepositoryCredential {
                    url_prefix: c.url_prefix,
                    username: c.secret.username,
                    password: c.secret.password,
                    ssh_private_key: c.secret.ssh_private_key,
                    ssh_known_hosts: c.secret.ssh_known_hosts,
                })
                .collect(),
            full_snapshot: true,
        };
        if self.credentials_sent.as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        tracing::info!(
            count = message.credentials.len(),
            "Sending repository credentials."
        );
        self.credentials_sent = Some(fingerprint);
        self.send_sequenced(hub_message::Body::RepositoryCredentials(message), vec![])
            .await
    }

    async fn send_desired(&mut self) -> Result<(), SessionError> {
        use edgecd_core::link::capabilities::names;
        if !self.capabilities.contains(names::DESIRED_APPS) {
            // Nothing here reads the set, so nothing would notice it changed: the policies read it themselves.
            self.desired_projects = None;
            return Ok(());
        }
        let mut since = self.spoke_desired;
        // The spoke has the version the link opened at: nothing changed since (a change after the opening
        // is signalled to this session, which is registered by then, and makes a later pass read).
        if self.opened_desired.take() == Some(since) && since != 0 {
            return Ok(());
        }
        let mut changes = self.ctx.store.desired_changes(self.name(), since).await?;
        if since > changes.version {
            // The spoke is ahead of the database (restored backup): start over.
            since = 0;
            changes = self.ctx.store.desired_changes(self.name(), 0).await?;
        }
        // Known from a full read and kept while reads find nothing new; a change since is not folded in (read
        // again when the policies need it).
        if since == 0 {
            self.desired_projects = Some(projects_of(&changes));
        } else if !changes.changes.is_empty() {
            self.desired_projects = None;
        }
        if since == changes.version && since != 0 {
            return Ok(());
        }
        self.withhold_unsupported(&mut changes);
        let message = convert::desired_apps(&changes, since);
        tracing::debug!(
            base = since,
            version = changes.version,
            upserts = message.upserts.len(),
            deletes = message.deletes.len(),
            "Sending desired apps."
        );
        self.spoke_desired = changes.version;
        self.send_sequenced(hub_message::Body::DesiredApps(message), vec![])
            .await
    }

    /// Replaces, in `changes`, the apps this spoke cannot read by deletes that keep their resources: multi-source
    /// apps for a spoke without `multi-source.v1`, which would read them as apps without a source. The spoke stops
    /// managing such an app and leaves everything it deployed in place (an app that was single-source and became
    /// multi-source is not pruned); it is not in the hub's digest either, so the two agree. The hub warns, naming
    /// the capability.
    fn withhold_unsupported(&self, changes: &mut DesiredChanges) {
        use edgecd_core::link::capabilities::names;
        if self.capabilities.contains(names::MULTI_SOURCE) {
            return;
        }
        for change in &mut changes.changes {
            let DesiredChange::Upsert(app) = change else {
                continue;
            };
            if !app.spec.is_multi_source() {
                continue;
            }
            tracing::warn!(
                app = %format!("{}/{}", app.project, app.name),
                "Not sent to the spoke: it does not support {} (multi-source apps); it stops managing the app and keeps its resources. Upgrade it.",
                names::MULTI_SOURCE
            );
            *change = DesiredChange::Delete {
                project: app.project.clone(),
                name: app.name.clone(),
                uid: app.uid.clone(),
                desired_version: app.desired_version,
                keep_resources: true,
            };
        }
    }

    async fn send_commands(&mut self) -> Result<(), SessionError> {
        // Overdue commands are never delivered; the replica's watch answers them (expired).
        let now = OffsetDateTime::now_utc();
        let commands = self
            .ctx
            .store
            .list_deliverable_commands(self.name(), now)
            .await?;
        for record in commands {
            if self.sent_commands.contains(&record.id) {
                continue;
            }
            if self.window_full() {
                self.commands_dirty = true;
                break;
            }
            let payload: Result<CommandPayload, _> = serde_json::from_value(record.payload.clone());
            let payload = match payload {
                Ok(payload) => payload,
                Err(error) => {
                    self.reject(
                        &record.id,
                        CommandOutcome::Rejected,
                        format!("malformed command payload: {error}"),
                    )
                    .await?;
                    continue;
                }
            };
            let needed = convert::required_capability(&payload);
            if !self.capabilities.contains(needed) {
                self.reject(
                    &record.id,
                    CommandOutcome::Unsupported,
                    format!("the spoke does not support {needed}"),
                )
                .await?;
                continue;
            }
            self.load_edge_apps().await?;
            if let Some(why) = self.name_conflict(&record).await? {
                self.reject(&record.id, CommandOutcome::Rejected, why)
                    .await?;
                continue;
            }
            self.sent_commands.insert(record.id.clone());
            // The delivery is a span of the action's trace (however long after the call it comes), and the
            // spoke's work continues from it.
            let span = tracing::info_span!(
                "deliver_command",
                otel.kind = "producer",
                command = %record.id,
                kind = %record.kind,
                app = %record.app,
                project = %record.project,
                cluster = %record.cluster,
            );
            if let Some(parent) = &record.trace {
                propagation::set_parent(&span, parent);
            }
            let trace = propagation::pass_on(&span, record.trace.as_ref()).filter(|_| {
                self.capabilities
                    .contains(edgecd_core::link::capabilities::names::TRACE_CONTEXT)
            });
            let message = convert::command(&record, &payload, trace.as_ref());
            self.send_sequenced(hub_message::Body::Command(message), vec![record.id.clone()])
                .instrument(span)
                .await?;
        }
        Ok(())
    }

    /// Why a command may not be sent because a hub app and an edge app share
    /// a name on this cluster (docs/appsets.md, "Identity"): the spoke knows
    /// both by the same `(project, name)`, so it would act on the wrong one.
    async fn name_conflict(&self, record: &CommandRecord) -> Result<Option<String>, SessionError> {
        let cluster = self.name();
        let project = record.project.as_str();
        let (local, edge) = edgecd_core::split_edge_app_name(&record.app);
        if edge.is_none() {
            // A hub app whose name an edge app holds on this cluster: the spoke
            // never applied it there (it does not overwrite an edge app).
            if self
                .edge_apps
                .as_ref()
                .is_some_and(|apps| apps.contains(&(project.to_owned(), local.to_owned())))
            {
                return Ok(Some(format!(
                    "cluster {cluster} has an application {local} created at the edge \
                     ({project}/{local}@{cluster} at the hub), so the hub app {project}/{local} is not \
                     applied there and the command was not sent; rename the hub app or remove the \
                     edge one"
                )));
            }
            return Ok(None);
        }
        if project == "default" {
            // One Application CR per name: the spoke has only the edge one.
            return Ok(None);
        }
        match self.ctx.store.get_app(project, local).await {
            Ok(app)
                if app.cluster == cluster && app.origin == edgecd_core::app::AppOrigin::Managed =>
            {
                Ok(Some(format!(
                    "the hub app {project}/{local} also runs on cluster {cluster}, and its spoke \
                     knows both it and the edge app {project}/{local}@{cluster} as {project}/{local}; \
                     the command was not sent. Rename the hub app or the edge one"
                )))
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn reject(
        &self,
        id: &str,
        outcome: CommandOutcome,
        message: String,
    ) -> Result<(), SessionError> {
        let update = CommandUpdate {
            id: id.to_owned(),
            outcome,
            message,
            result: None,
        };
        self.ctx.store.record_command_status(&update).await?;
        Ok(())
    }

    async fn check_staleness(&mut self) -> Result<(), SessionError> {
        if !self.stale && self.last_seen.elapsed() > self.ctx.config.stale_after {
            self.stale = true;
            tracing::warn!(silent_for = ?self.last_seen.elapsed(), "Spoke went silent; marking its cluster Stale.");
            let connection = ClusterConnection {
                state: ConnectionKind::Stale,
                since: Some(self.last_seen_at),
                last_heartbeat: Some(self.last_seen_at),
                hub_replica: self.ctx.config.replica.clone(),
            };
            self.set_connection(&connection).await?;
            notify(self.ctx, super::CLUSTERS_CHANNEL).await;
        }
        Ok(())
    }

    /// Records the cluster's connection state, waiting out a transient database error; nothing when a
    /// newer stream owns the record (this one is about to end).
    async fn set_connection(&mut self, connection: &ClusterConnection) -> Result<(), StoreError> {
        let (deadline, ctx) = (self.patience_deadline(), self.ctx);
        let ours = patiently(
            deadline,
            &ctx.config.counters.store_retries,
            "set_stream_connection",
            || {
                ctx.store
                    .set_stream_connection(ctx.cluster.as_str(), &ctx.stream, connection)
            },
        )
        .await?;
        if !ours {
            tracing::info!(
                state = connection.state.as_str(),
                "A newer stream of this cluster holds its connection record; not recording."
            );
        }
        Ok(())
    }

    async fn seen(&mut self, heartbeat: bool) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc();
        let was_stale = self.stale;
        self.last_seen = Instant::now();
        self.last_seen_at = now;
        if was_stale {
            // Back from Stale: written at once, and announced.
            self.stale = false;
            let connection = ClusterConnection {
                state: ConnectionKind::Connected,
                since: Some(now),
                last_heartbeat: Some(now),
                hub_replica: self.ctx.config.replica.clone(),
            };
            self.set_connection(&connection).await?;
            notify(self.ctx, super::CLUSTERS_CHANNEL).await;
        } else if heartbeat {
            // Written with the other sessions' heartbeats, within a second.
            let ctx = self.ctx;
            ctx.heartbeats.beat(
                &ctx.store,
                &ctx.config,
                ctx.cluster.as_str(),
                &ctx.stream,
                now,
            );
        }
        Ok(())
    }

    /// Handles messages that arrived together, in order. Consecutive status
    /// deltas (not snapshot parts) are merged and stored in one transaction
    /// that records the last of their sequence numbers; one acknowledgement
    /// follows, sent only once everything is durably stored.
    async fn receive(&mut self, messages: Vec<SpokeMessage>) -> Result<(), SessionError> {
        let mut merged = MergedStatus::default();
        // A turn of live chunks alone needs no acknowledgement (they are not sequenced).
        let only_live = messages.iter().all(|m| {
            matches!(
                m.body,
                Some(
                    spoke_message::Body::LiveChunk(_)
                        | spoke_message::Body::LiveEnd(_)
                        | spoke_message::Body::LiveCredit(_)
                )
            )
        });
        for message in messages {
            self.seen(matches!(
                message.body,
                Some(spoke_message::Body::Heartbeat(_))
            ))
            .await?;
            self.acknowledged(message.ack).await?;
            if message.seq == 0 {
                match message.body {
                    Some(spoke_message::Body::LiveChunk(chunk)) => {
                        if let Some(cancel) = self.live.chunk(chunk) {
                            // Every message carries the inbox's acknowledgement, which already
                            // covers the deltas merged so far: store them first.
                            self.store_merged(&mut merged).await?;
                            self.send_control(cancel).await?;
                        }
                    }
                    Some(spoke_message::Body::LiveEnd(end)) => self.live.end(end),
                    Some(spoke_message::Body::LiveCredit(credit)) => {
                        self.live.input_credit(&credit)
                    }
                    _ => {}
                }
                continue;
            }
            match self.inbox.receive(message.seq) {
                Receipt::Duplicate => {}
                Receipt::Gap { expected } => {
                    return Err(SessionError::SequenceGap {
                        expected,
                        got: message.seq,
                    });
                }
                Receipt::New => match message.body {
                    Some(spoke_message::Body::AppStatus(batch))
                        if !batch.full_snapshot && batch.snapshot_id.is_empty() =>
                    {
                        let (batch, _) = convert::status_batch(self.name(), &batch);
                        merged.add(message.seq, batch);
                        // Nothing is sent before the merged batch is stored,
                        // so this cannot acknowledge it early.
                        self.inbox.processed(message.seq);
                    }
                    body => {
                        self.store_merged(&mut merged).await?;
                        let at = SpokeSeq {
                            epoch: self.epoch.clone(),
                            seq: message.seq,
                            stream: Some(self.ctx.stream.clone()),
                        };
                        self.process(&at, body).await?;
                        self.inbox.processed(message.seq);
                    }
                },
            }
        }
        self.store_merged(&mut merged).await?;
        if only_live {
            return Ok(());
        }
        // Acknowledge only what is durably stored.
        self.outbound
            .send(Ok(Box::new(HubMessage {
                seq: 0,
                ack: self.inbox.ack(),
                body: None,
            })))
            .await
            .map_err(|_| SessionError::ClientGone)
    }

    /// Stores the merged status deltas, if any, as of their last sequence number.
    async fn store_merged(&mut self, merged: &mut MergedStatus) -> Result<(), SessionError> {
        let Some((seq, batch, messages)) = merged.take() else {
            return Ok(());
        };
        let at = SpokeSeq {
            epoch: self.epoch.clone(),
            seq,
            stream: Some(self.ctx.stream.clone()),
        };
        self.ingest_status(&at, &batch, messages).await
    }

    /// Stores status reports (of `messages` messages) as of `at`, counts them
    /// and announces the cluster's apps changed.
    async fn ingest_status(
        &mut self,
        at: &SpokeSeq,
        batch: &StatusBatch,
        messages: u64,
    ) -> Result<(), SessionError> {
        let admitted = self.admit_edge_apps(batch).await?;
        let batch = admitted.as_ref().unwrap_or(batch);
        // Not read yet: a later read finds them in the store.
        if let Some(edge_apps) = self.edge_apps.as_mut() {
            for report in batch.reports.iter().filter(|r| r.autonomous.is_some()) {
                let local = convert::spoke_name(&report.name).to_owned();
                edge_apps.insert((report.project.clone(), local));
            }
        }
        let (deadline, ctx) = (self.patience_deadline(), self.ctx);
        let write = StatusWrite {
            cluster: ctx.cluster.as_str().to_owned(),
            at: at.clone(),
            batch: batch.clone(),
        };
        // With the batches of the replica's other sessions that are waiting too: one transaction for all.
        let outcome = patiently(
            deadline,
            &ctx.config.counters.store_retries,
            "ingest_status_batch",
            || {
                ctx.statuses.ingest(
                    &ctx.store,
                    &ctx.config.counters.status_groups,
                    write.clone(),
                    deadline,
                )
            },
        )
        .await?;
        self.ctx.config.counters.ingested.inc_by(messages);
        self.ctx
            .config
            .counters
            .status_reports
            .inc_by(u64::from(outcome.applied));
        // A batch that changed something was announced on `APPS_CHANNEL` in its own transaction.
        if outcome.rejected > 0 {
            tracing::warn!(
                rejected = outcome.rejected,
                "Status reports for apps this cluster does not hold were ignored."
            );
        }
        Ok(())
    }

    /// Edge-created apps are admitted by hub-defined facts only, never by what
    /// the spoke says of them (docs/security.md, "Edge-created apps"): the
    /// owner it names must be of its own cluster, and the app's project must
    /// exist and either allow this cluster (and the app's namespace and
    /// repository) by its policy, or own a set that the hub scoped to this
    /// cluster and that the app names as its owner. `None`: every report
    /// stands; otherwise the batch without the refused reports.
    async fn admit_edge_apps(
        &self,
        batch: &StatusBatch,
    ) -> Result<Option<StatusBatch>, SessionError> {
        if batch.reports.iter().all(|r| r.autonomous.is_none()) {
            return Ok(None);
        }
        let cluster = self.name();
        let record = self.ctx.store.get_cluster(cluster).await?;
        let sets: HashSet<(String, String)> =
            crate::store::appsets::evaluated_at(self.ctx.store.as_ref(), &record)
                .await?
                .into_iter()
                .map(|s| (s.project, s.name))
                .collect();
        let mut projects: HashMap<String, Option<edgecd_core::project::ProjectSpec>> =
            HashMap::new();
        let mut refused = Vec::new();
        for (index, report) in batch.reports.iter().enumerate() {
            let Some(edge) = &report.autonomous else {
                continue;
            };
            let spec = match projects.get(&report.project) {
                Some(spec) => spec.clone(),
                None => {
                    let spec = match self.ctx.store.get_project(&report.project).await {
                        Ok(record) => Some(record.spec),
                        Err(StoreError::NotFound { .. }) => None,
                        Err(error) => return Err(error.into()),
                    };
                    projects.insert(report.project.clone(), spec.clone());
                    spec
                }
            };
            let why = match (&edge.owner, spec) {
                (Some(owner), _) if owner.scope != cluster => Some(format!(
                    "it names an owner of scope {:?}, not of this cluster",
                    owner.scope
                )),
                (_, None) => Some(format!("project {} does not exist", report.project)),
                (Some(owner), Some(_))
                    if owner.kind == "ApplicationSet"
                        && owner.project == report.project
                        && sets.contains(&(owner.project.clone(), owner.name.clone())) =>
                {
                    None
                }
                (_, Some(spec)) => spec
                    .check_destination_at(
                        &report.project,
                        cluster,
                        &record.server_url,
                        &record.labels,
                        &edge.spec.destination.namespace,
                    )
                    .and_then(|()| spec.check_sources(&report.project, &edge.spec))
                    .err()
                    .map(|violation| violation.to_string()),
            };
            if let Some(why) = why {
                tracing::warn!(
                    project = %report.project,
                    app = %report.name,
                    reason = %why,
                    "An edge-created app was refused."
                );
                refused.push(index);
            }
        }
        if refused.is_empty() {
            return Ok(None);
        }
        let mut admitted = batch.clone();
        let mut index = 0;
        admitted.reports.retain(|_| {
            let keep = !refused.contains(&index);
            index += 1;
            keep
        });
        self.ctx
            .config
            .counters
            .edge_apps_refused
            .inc_by(refused.len() as u64);
        Ok(Some(admitted))
    }

    async fn acknowledged(&mut self, ack: u64) -> Result<(), SessionError> {
        if ack > self.hub_seq {
            return Err(SessionError::AckBeyondSent {
                acked: ack,
                sent: self.hub_seq,
            });
        }
        if ack <= self.hub_acked {
            return Ok(());
        }
        self.hub_acked = ack;
        let still_waiting = self.delivering.split_off(&(ack + 1));
        let delivered: Vec<String> = std::mem::replace(&mut self.delivering, still_waiting)
            .into_values()
            .flatten()
            .collect();
        if !delivered.is_empty() {
            let (deadline, ctx) = (self.patience_deadline(), self.ctx);
            let now = OffsetDateTime::now_utc();
            patiently(
                deadline,
                &ctx.config.counters.store_retries,
                "mark_commands_delivered",
                || ctx.store.mark_commands_delivered(&delivered, now),
            )
            .await?;
            self.ctx
                .config
                .counters
                .commands_delivered
                .inc_by(delivered.len() as u64);
        }
        Ok(())
    }

    /// Stores one sequenced message (recording `at` durably in the same transaction).
    async fn process(
        &mut self,
        at: &SpokeSeq,
        body: Option<spoke_message::Body>,
    ) -> Result<(), SessionError> {
        // What names an app without an origin is an edge app's message if the cluster has one by that name.
        if !matches!(body, Some(spoke_message::Body::AppStatus(_)) | None) {
            self.load_edge_apps().await?;
        }
        let store = &self.ctx.store;
        let name = self.ctx.cluster.as_str();
        match body {
            Some(spoke_message::Body::AppStatus(batch)) => {
                // A snapshot part (deltas are merged, see `receive`).
                let (batch, _) = convert::status_batch(name, &batch);
                self.ingest_status(at, &batch, 1).await?;
            }
            Some(spoke_message::Body::AppRemoved(removed)) => {
                let mut gone = Vec::new();
                if let Some(app) = removed.app
                    && let Some(hub_name) = self.hub_name(&app.project, &app.name)
                {
                    if let Some(edge_apps) = self.edge_apps.as_mut() {
                        edge_apps.remove(&(app.project.clone(), app.name));
                    }
                    gone.push((app.project, hub_name));
                }
                let batch = StatusBatch {
                    removed: gone,
                    ..StatusBatch::default()
                };
                // Announced on `APPS_CHANNEL` in its transaction when it removed something.
                store.ingest_status_batch(name, at, &batch).await?;
                self.ctx.config.counters.ingested.inc();
            }
            Some(spoke_message::Body::ResourceTree(tree)) => {
                let app = tree.app.clone().unwrap_or_default();
                let nodes: Vec<serde_json::Value> = tree
                    .nodes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "key": n.key.as_ref().map(edgecd_proto::convert::from_resource_key),
                            "uid": n.uid,
                            "parentUids": n.parent_uids,
                            "health": n.health.as_ref().map(|h| edgecd_proto::convert::from_health_code(h.status)),
                            "healthMessage": n.health.as_ref().map(|h| h.message.clone()),
                            "info": n.info,
                        })
                    })
                    .collect();
                let value =
                    serde_json::json!({ "nodes": nodes, "statusVersion": tree.status_version });
                match self.hub_name(&app.project, &app.name) {
                    Some(app_name) => {
                        store
                            .ingest_resource_tree(name, at, &app.project, &app_name, &value)
                            .await?;
                    }
                    // Nothing to store but the sequence number itself.
                    None => {
                        store.ingest_events(name, at, &[]).await?;
                    }
                }
            }
            Some(spoke_message::Body::Events(batch)) => {
                let events: Vec<_> = batch
                    .events
                    .iter()
                    .filter_map(|e| {
                        let app = e.app.clone().unwrap_or_default();
                        let app_name = if app.name.is_empty() {
                            String::new()
                        } else {
                            self.hub_name(&app.project, &app.name)?
                        };
                        Some(convert::event(name, e, app_name))
                    })
                    .collect();
                store.ingest_events(name, at, &events).await?;
            }
            Some(spoke_message::Body::Deployments(batch)) => {
                let limit = edgecd_core::deployment::PER_BATCH;
                if batch.deployments.len() > limit {
                    tracing::warn!(
                        sent = batch.deployments.len(),
                        limit,
                        "A deployment batch over the limit: only its first deployments are stored."
                    );
                }
                let mut refused = 0usize;
                let deployments: Vec<_> = batch
                    .deployments
                    .iter()
                    .take(limit)
                    .filter_map(|d| {
                        let app = d.app.as_ref()?;
                        let hub_name = self.hub_name(&app.project, &app.name)?;
                        match edgecd_proto::convert::from_deployment(name, d) {
                            Ok(mut deployment) => {
                                deployment.app = hub_name;
                                Some(deployment)
                            }
                            Err(error) => {
                                refused += 1;
                                tracing::debug!(%error, "A deployment refused.");
                                None
                            }
                        }
                    })
                    .collect();
                if refused > 0 {
                    tracing::warn!(
                        refused,
                        "Deployments refused: see debug logs for each cause."
                    );
                }
                store.ingest_deployments(name, at, &deployments).await?;
            }
            Some(spoke_message::Body::CommandStatus(batch)) => {
                let updates: Vec<_> = batch.statuses.iter().map(convert::command_update).collect();
                store.ingest_command_statuses(name, at, &updates).await?;
            }
            Some(spoke_message::Body::Renew(request)) => {
                self.renew(at, &request).await?;
            }
            Some(spoke_message::Body::Digest(theirs)) => {
                store.ingest_events(name, at, &[]).await?;
                self.check_digest(&theirs).await?;
            }
            other => {
                if other.is_none() {
                    tracing::debug!(
                        seq = at.seq,
                        "Acknowledging a message type this hub does not know."
                    );
                }
                // Nothing to store but the sequence number itself.
                store.ingest_events(name, at, &[]).await?;
            }
        }
        Ok(())
    }

    /// Certificate renewal over the stream: signs the CSR for this stream's
    /// cluster (the identity of its certificate), records the sequence
    /// number, and answers with a sequenced `RenewResponse`.
    async fn renew(
        &mut self,
        at: &SpokeSeq,
        request: &edgecd_proto::v1::RenewRequest,
    ) -> Result<(), SessionError> {
        use crate::pki::PkiError;
        let response = match &self.ctx.pki {
            None => edgecd_proto::v1::RenewResponse {
                error: "certificate renewal is not enabled on this hub".into(),
                ..Default::default()
            },
            Some(pki) => match pki.renew(self.name(), &request.csr_pem).await {
                Ok(issued) => edgecd_proto::v1::RenewResponse {
                    certificate_pem: issued.certificate_pem,
                    ca_bundle_pem: issued.ca_pem,
                    not_after: Some(edgecd_proto::convert::timestamp(issued.not_after)),
                    error: String::new(),
                },
                Err(PkiError::Store(error)) => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, "Certificate renewal refused.");
                    edgecd_proto::v1::RenewResponse {
                        error: error.to_string(),
                        ..Default::default()
                    }
                }
            },
        };
        self.ctx.store.ingest_events(self.name(), at, &[]).await?;
        self.send_sequenced(hub_message::Body::Renew(response), vec![])
            .await
    }

    /// Anti-entropy: compares the spoke's digest with the store and repairs.
    async fn check_digest(
        &mut self,
        theirs: &edgecd_proto::v1::Digest,
    ) -> Result<(), SessionError> {
        let name = self.ctx.cluster.as_str();
        let mut desired = self.ctx.store.desired_changes(name, 0).await?;
        self.withhold_unsupported(&mut desired);
        let entries: Vec<(String, String, u64)> = desired
            .changes
            .iter()
            .filter_map(|c| match c {
                DesiredChange::Upsert(app) => {
                    Some((app.project.clone(), app.name.clone(), app.spec_version))
                }
                DesiredChange::Delete { .. } => None,
            })
            .collect();
        let ours = digest::digest(entries.iter().map(|(p, n, v)| (p.as_str(), n.as_str(), *v)));
        if ours != theirs.desired_hash {
            tracing::info!(
                spoke_version = theirs.desired_version,
                hub_version = desired.version,
                "Desired-set digest differs; sending a full snapshot."
            );
            self.spoke_desired = 0;
            self.desired_dirty = true;
        }
        let mut statuses = Vec::new();
        let mut cursor = None;
        loop {
            let query = AppQuery {
                filter: AppFilter {
                    clusters: vec![name.to_owned()],
                    ..AppFilter::default()
                },
                sort: Default::default(),
                page_size: 1000,
                cursor: cursor.take(),
            };
            let page = self.ctx.store.list_apps(&query).await?;
            // In the spoke's names: an edge app's without its `@cluster`.
            statuses.extend(page.items.into_iter().map(|a| {
                let local = convert::spoke_name(&a.name).to_owned();
                (a.project, local, a.status_version)
            }));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let ours = digest::digest(
            statuses
                .iter()
                .map(|(p, n, v)| (p.as_str(), n.as_str(), *v)),
        );
        if ours != theirs.status_hash {
            tracing::info!("Status digest differs; asking the spoke for a full status report.");
            let request = ResyncRequest {
                scope: resync_request::Scope::Status as i32,
                reason: "status digest mismatch".into(),
                apps: vec![],
            };
            self.send_sequenced(hub_message::Body::Resync(request), vec![])
                .await?;
        }
        Ok(())
    }
}

async fn go_away(
    outbound: &Outbound,
    reason: go_away::Reason,
    message: String,
    retry_after: Duration,
) -> Result<(), SessionError> {
    let body = GoAway {
        reason: reason as i32,
        message,
        retry_after: Some(edgecd_proto::convert::duration(retry_after)),
    };
    outbound
        .send(Ok(Box::new(HubMessage {
            seq: 0,
            ack: 0,
            body: Some(hub_message::Body::GoAway(body)),
        })))
        .await
        .map_err(|_| SessionError::ClientGone)
}
