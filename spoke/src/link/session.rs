//! The spoke's hub link session: reconnects with jittered backoff, reports app statuses through a coalescing outbox that survives reconnects, writes the hub's desired apps into Application CRs, turns commands into CR operations and reports their results, heartbeats and digests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{AppOrigin, OperationPhase};
use edgecd_core::link::backoff::SessionOutcome;
use edgecd_core::link::capabilities::names;
use edgecd_core::link::{
    Backoff, Capabilities, Inbox, Outbox, OutboxError, ProtocolVersion, Receipt, digest,
};
use edgecd_proto::convert as pc;
use edgecd_proto::v1::{
    self, AppRemoved, AppStatusBatch, AppStatusReport, CommandStatus, CommandStatusBatch,
    Heartbeat, HubMessage, SpokeMessage, command, command_status, go_away, hub_message,
    spoke_message,
};
use edgecd_telemetry::propagation::{self, TraceContext};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tracing::Instrument as _;

use super::{HelloParams, LinkError, Negotiated, handshake, reports};
use crate::crd::{
    self, APPLY_OUT_OF_SYNC_ONLY, Application, ORIGIN_LABEL, OperationRequest, PROJECT_LABEL,
    REFRESH_ANNOTATION, RollbackRequest, SPEC_VERSION_ANNOTATION, SyncRequest, SyncResource,
};
use crate::reconcile::Engine;

/// Field manager for the CRs the link writes.
const LINK_MANAGER: &str = "edgecd-hub-link";
/// Reports per status message in a full snapshot.
const SNAPSHOT_CHUNK: usize = 100;
/// Commands remembered for idempotent redelivery.
const REMEMBERED_COMMANDS: usize = 1024;
/// Holds an Application the hub deleted with cascade until its resources are gone (`delete_cr`).
const CASCADE_FINALIZER: &str = "edgecd.io/cascade-delete";
/// Rounds of a cascading delete (each after the last found something to delete), and the pause between them.
const CASCADE_ROUNDS: usize = 10;
const CASCADE_ROUND_DELAY: Duration = Duration::from_millis(300);
/// Events buffered while the outbox has no room (beyond, the oldest are dropped and reported as dropped).
const EVENT_BUFFER: usize = 1000;
/// Deployments buffered while the outbox has no room (beyond, every app's history is sent again later).
const DEPLOYMENT_BUFFER: usize = 10_000;

/// Settings of the hub link.
#[derive(Debug, Clone)]
pub struct HubLinkConfig {
    /// `http(s)://host:port` of the hub's gRPC endpoint.
    pub endpoint: String,
    pub cluster_name: String,
    /// The release this spoke announces (its crate version; a release build's tag).
    pub spoke_version: String,
    /// The wire protocol it speaks (`edgecd_proto::PROTOCOL_MAJOR`/`MINOR` of this build).
    pub protocol: ProtocolVersion,
    /// Namespace of the Application CRs.
    pub namespace: String,
    pub capabilities: Capabilities,
    /// Sequenced messages buffered while the hub is unreachable; beyond it,
    /// statuses are coalesced per app and a full report follows later.
    pub buffer_capacity: usize,
    pub connect_timeout: Duration,
    /// mTLS identity (enrolled certificate), renewed over the stream; `None`
    /// connects without TLS (local development only).
    pub identity: Option<Arc<super::enroll::IdentityManager>>,
    /// The ApplicationSet controller: hub-assigned sets and this cluster's labels go there. Without it the
    /// spoke does not announce `application-sets.v1`.
    pub appsets: Option<Arc<crate::appset::AppSets>>,
    /// The API server URL the spoke's kube client uses, reported in Hello; the hub keeps a URL
    /// set when the cluster was added (in-cluster, this is only the service address).
    pub server_url: String,
    /// Where hub-delivered repository credentials go (merged with the local Secrets' and kept in
    /// the Secret `edgecd-hub-repo-credentials`). Without it the spoke does not announce
    /// `repo-credentials.v1`.
    pub credentials: Option<crate::credentials::CredentialSources>,
    /// Receives every reconnect delay the link chooses (tests and diagnostics); `None` in production.
    pub reconnect_delays: Option<mpsc::UnboundedSender<Duration>>,
    /// Exec sessions are served (`--exec`); when off, each is refused with FORBIDDEN.
    pub exec: bool,
}

impl HubLinkConfig {
    pub fn new(
        endpoint: impl Into<String>,
        cluster_name: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        use edgecd_core::link::capabilities::names;
        Self {
            endpoint: endpoint.into(),
            cluster_name: cluster_name.into(),
            spoke_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: ProtocolVersion {
                major: edgecd_proto::PROTOCOL_MAJOR,
                minor: edgecd_proto::PROTOCOL_MINOR,
            },
            namespace: namespace.into(),
            // Repository credentials (`repo-credentials.v1`) are announced when
            // `credentials` is set.
            capabilities: Capabilities::from_names([
                names::STATUS_DELTAS,
                names::DIGEST,
                names::DESIRED_APPS,
                names::COMMANDS,
                names::COMMAND_QUERIES,
                names::AUTONOMOUS_APPS,
                names::COMMAND_TERMINATE,
                names::COMMAND_DELETE,
                names::COMMAND_SYNC_OPTIONS,
                names::RESOURCE_TREES,
                names::TRACE_CONTEXT,
                names::EVENTS,
                names::PROJECT_POLICIES,
                names::DEPLOYMENTS,
                names::LIVE_SESSIONS,
                names::LIVE_EXEC,
                names::MULTI_SOURCE,
                names::COALESCED_RESUME,
            ]),
            buffer_capacity: 10_000,
            connect_timeout: Duration::from_secs(10),
            identity: None,
            appsets: None,
            server_url: String::new(),
            credentials: None,
            reconnect_delays: None,
            exec: true,
        }
    }
}

/// What the link tells about one app (the outbox coalesces by app).
#[derive(Debug, Clone)]
enum Report {
    Status(Box<AppStatusReport>),
    Removed(v1::AppRef),
    Snapshot(AppStatusBatch),
    Commands(CommandStatusBatch),
    Digest(v1::Digest),
    Tree(Box<v1::ResourceTree>),
    Events(v1::EventBatch),
    Deployments(v1::DeploymentBatch),
    Renew(v1::RenewRequest),
}

impl Report {
    fn body(self) -> spoke_message::Body {
        match self {
            Report::Status(report) => spoke_message::Body::AppStatus(AppStatusBatch {
                reports: vec![*report],
                full_snapshot: false,
                snapshot_id: String::new(),
                snapshot_last: false,
            }),
            Report::Removed(app) => spoke_message::Body::AppRemoved(AppRemoved { app: Some(app) }),
            Report::Snapshot(batch) => spoke_message::Body::AppStatus(batch),
            Report::Commands(batch) => spoke_message::Body::CommandStatus(batch),
            Report::Digest(d) => spoke_message::Body::Digest(d),
            Report::Tree(tree) => spoke_message::Body::ResourceTree(*tree),
            Report::Events(batch) => spoke_message::Body::Events(batch),
            Report::Deployments(batch) => spoke_message::Body::Deployments(batch),
            Report::Renew(r) => spoke_message::Body::Renew(r),
        }
    }
}

/// State that outlives a single stream.
struct Link {
    config: HubLinkConfig,
    engine: Arc<Engine>,
    apps: Api<Application>,
    epoch: String,
    outbox: Outbox<String, Report>,
    /// Status version last queued per app (CR name), to report only changes.
    reported: HashMap<String, u64>,
    /// Desired-set version applied in this process (0: ask for a full set).
    desired_version: u64,
    /// Desired spec per managed CR, to revert local edits.
    desired: HashMap<String, v1::DesiredApp>,
    /// Hub apps not written because an Application created at the edge holds
    /// their CR name, by CR name (the edge app is never overwritten; the hub
    /// app reports a `NameConflictError` until the edge app is gone).
    conflicts: HashMap<String, v1::DesiredApp>,
    /// Known results of recent commands, by id.
    commands: HashMap<String, CommandStatus>,
    command_order: std::collections::VecDeque<String>,
    /// Commands waiting for their operation to finish, by CR name: the command's id and the trace its
    /// result report continues.
    pending_operations: HashMap<String, (String, Option<TraceContext>)>,
    /// Terminate commands waiting for the operation they stop to end, by CR name: (command id, asked at).
    pending_terminations: HashMap<String, (String, OffsetDateTime)>,
    /// Resource-tree hashes last queued, by CR name.
    trees: reports::TreeHashes,
    /// Every app's resource tree is owed (after a resync request or a lost hub state).
    trees_owed: bool,
    /// Each app's status as last seen, to derive events.
    seen: HashMap<String, reports::Seen>,
    /// Events waiting for room in the outbox.
    events: reports::EventBuffer,
    /// Finished syncs and rollbacks waiting for room in the outbox.
    deployments: reports::DeploymentBuffer,
    /// Every app's deployments are owed (the buffer overflowed, or the hub lost this spoke's reports): sent
    /// with the next full status report.
    deployments_owed: bool,
    /// The objects of every app's last resource tree, to forward Kubernetes events about them.
    involved: super::kube_events::Involved,
    /// Capabilities agreed on the last stream (None before the first Welcome).
    agreed: Option<Capabilities>,
    /// A full status report is owed (after Welcome, a resync request, or a full buffer).
    snapshot_owed: bool,
    /// When the current stream got its Welcome (`None` before, and for a failed attempt).
    established_at: Option<tokio::time::Instant>,
}

/// Runs the hub link until `shutdown` resolves: connect, run a session,
/// back off, repeat. Statuses are buffered meanwhile.
pub async fn run(
    config: HubLinkConfig,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let apps: Api<Application> =
        Api::namespaced(engine.cluster().client().clone(), &config.namespace);
    let (events_tx, mut events) = mpsc::channel::<Input>(1024);
    let watch_api = apps.clone();
    let apps_tx = events_tx.clone();
    let watch = tokio::spawn(async move {
        let mut stream = watcher(watch_api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            if let Ok(event) = event
                && apps_tx.send(Input::App(Box::new(event))).await.is_err()
            {
                return;
            }
        }
    });
    let kube_watch = tokio::spawn(watch_kube_events(
        engine.cluster().client().clone(),
        events_tx,
    ));
    let mut link = Link {
        outbox: Outbox::new(1, 256, config.buffer_capacity),
        config,
        engine,
        apps,
        epoch: uuid_like(),
        reported: HashMap::new(),
        conflicts: HashMap::new(),
        desired_version: 0,
        desired: HashMap::new(),
        commands: HashMap::new(),
        command_order: Default::default(),
        pending_operations: HashMap::new(),
        pending_terminations: HashMap::new(),
        trees: reports::TreeHashes::new(),
        trees_owed: false,
        seen: HashMap::new(),
        events: reports::EventBuffer::new(EVENT_BUFFER),
        deployments: reports::DeploymentBuffer::new(DEPLOYMENT_BUFFER),
        deployments_owed: false,
        involved: super::kube_events::Involved::default(),
        agreed: None,
        snapshot_owed: true,
        established_at: None,
    };
    let mut backoff = Backoff::reconnect();
    tokio::pin!(shutdown);
    loop {
        link.established_at = None;
        let result = tokio::select! {
            _ = &mut shutdown => break,
            result = link.connect_and_serve(&mut events) => result,
        };
        let lasted = link.established_at.map(|at| at.elapsed());
        match &result {
            Ok(()) => tracing::info!("The hub closed the stream."),
            Err(LinkError::GoAway {
                reason, message, ..
            }) => {
                tracing::warn!(?reason, %message, "The hub asked this spoke to go away.");
            }
            Err(error) => tracing::warn!(%error, "Hub link failed."),
        }
        let delay = backoff.delay_after(&mut rand::rng(), session_outcome(&result, lasted));
        tracing::info!(
            ?delay,
            buffered = link.outbox.len(),
            "Reconnecting to the hub later."
        );
        if let Some(observer) = &link.config.reconnect_delays {
            let _ = observer.send(delay);
        }
        tokio::select! {
            _ = &mut shutdown => break,
            () = tokio::time::sleep(delay) => {}
            // Keep buffering statuses while disconnected.
            () = link.buffer_while_waiting(&mut events, delay) => {}
        }
    }
    watch.abort();
    kube_watch.abort();
}

/// What the link's loop reads besides the hub's messages.
enum Input {
    /// A change of an Application CR.
    App(Box<watcher::Event<Application>>),
    /// A Kubernetes Event somewhere in the cluster (forwarded if it concerns an app's object).
    Kube(Box<k8s_openapi::api::core::v1::Event>),
}

/// Watches every core/v1 Event of the cluster for the link. Without the right to list events (narrowed
/// RBAC) it says so once an hour and keeps retrying with backoff; the rest of the link is unaffected.
async fn watch_kube_events(client: kube::Client, tx: mpsc::Sender<Input>) {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::all(client);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut last_warning: Option<tokio::time::Instant> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                if tx.send(Input::Kube(Box::new(object))).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => {
                if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
                    last_warning = Some(tokio::time::Instant::now());
                    tracing::warn!(%error, "Cannot watch Kubernetes events; the hub shows edgecd's events only.");
                }
            }
        }
    }
}

/// How a connection attempt ended, for the reconnect backoff: `lasted` is how long the session ran
/// after the hub's Welcome (`None`: it never got one).
///
/// A `GoAway` draining or replaced ending an established session is the hub moving this spoke on
/// purpose: the backoff resets and the hub's retry-after is the delay. A session that ran for a
/// while resets it too; failures before Welcome (unreachable, TLS, refused, `GoAway` instead of
/// Welcome) grow it.
///
/// A refusal with a `retry-after` (the hub's handshakes are all taken in a reconnect storm, its database
/// is unavailable) is a failure whose hint is a floor, before Welcome and after it.
fn session_outcome(result: &Result<(), LinkError>, lasted: Option<Duration>) -> SessionOutcome {
    let hinted = match result {
        Err(LinkError::GoAway {
            reason,
            retry_after,
            ..
        }) => Some((*reason, *retry_after)),
        Err(LinkError::Refused(status)) => edgecd_proto::retry::retry_after(status)
            .map(|hint| (go_away::Reason::Overloaded, Some(hint))),
        _ => None,
    };
    match (lasted, hinted) {
        (None, hinted) => SessionOutcome::Failed {
            retry_after: hinted.and_then(|(_, retry_after)| retry_after),
        },
        (Some(_), Some((go_away::Reason::Draining | go_away::Reason::Replaced, retry_after))) => {
            SessionOutcome::Redirected { retry_after }
        }
        // Revoked, overloaded, an unsupported protocol: not a healthy end, the hint is a floor.
        (Some(_), Some((_, retry_after))) => SessionOutcome::Failed { retry_after },
        (Some(lasted), None) => SessionOutcome::Ended { lasted },
    }
}

fn uuid_like() -> String {
    use rand::Rng;
    let value: u128 = rand::rng().random();
    format!("{value:032x}")
}

fn is_managed(app: &Application) -> bool {
    app.origin() == AppOrigin::Managed
}

impl Link {
    async fn buffer_while_waiting(&mut self, events: &mut mpsc::Receiver<Input>, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            self.on_input(event).await;
        }
    }

    async fn on_input(&mut self, input: Input) {
        match input {
            Input::App(event) => self.on_app_event(*event).await,
            Input::Kube(event) => {
                if self.agreed_to(edgecd_core::link::capabilities::names::EVENTS)
                    && let Some(event) = self
                        .involved
                        .to_hub_event(&self.config.cluster_name, &event)
                {
                    self.events.push(event);
                }
            }
        }
    }

    /// The configured capabilities, plus `application-sets.v1` and `application-sets.argo-spec.v1` when the ApplicationSet controller runs and
    /// `repo-credentials.v1` when hub credentials have somewhere to go.
    fn announced_capabilities(&self) -> Capabilities {
        use edgecd_core::link::capabilities::names;
        let mut all: Vec<String> = self.config.capabilities.iter().map(str::to_owned).collect();
        if self.config.appsets.is_some() {
            all.push(names::APPLICATION_SETS.to_owned());
            all.push(names::APPSET_ARGO_SPEC.to_owned());
        }
        if self.config.credentials.is_some() {
            all.push(names::REPO_CREDENTIALS.to_owned());
        }
        Capabilities::from_names(all)
    }

    fn hello(&self) -> HelloParams {
        HelloParams {
            cluster_name: self.config.cluster_name.clone(),
            spoke_version: self.config.spoke_version.clone(),
            protocol: self.config.protocol,
            capabilities: self.announced_capabilities(),
            kubernetes_version: String::new(),
            server_url: self.config.server_url.clone(),
            epoch: self.epoch.clone(),
            last_hub_seq: 0,
            desired_version: self.desired_version,
            next_spoke_seq: self.outbox.next_seq(),
        }
    }

    async fn connect_and_serve(
        &mut self,
        events: &mut mpsc::Receiver<Input>,
    ) -> Result<(), LinkError> {
        let channel = match &self.config.identity {
            // Built per connection from the current (possibly renewed) certificate.
            Some(identity) => {
                // A certificate that expired (or nearly) while the stream could not renew it is renewed
                // first, through the hub's expiry grace: an expired one cannot open the stream.
                let renew = super::enroll::RenewParams {
                    hub_address: self.config.endpoint.clone(),
                    spoke_version: self.config.spoke_version.clone(),
                    connect_timeout: self.config.connect_timeout,
                };
                match identity.renew_before_connect(&renew).await {
                    Ok(true) => tracing::info!("Renewed the hub certificate before connecting."),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "Cannot renew the hub certificate before connecting; trying it as it is.");
                    }
                }
                let tls = super::tls::mtls_config(&identity.current())
                    .map_err(|e| LinkError::Tls(e.to_string()))?;
                super::tls::channel(&self.config.endpoint, tls, self.config.connect_timeout)
                    .await
                    .map_err(|e| LinkError::Tls(e.to_string()))?
            }
            None => {
                let endpoint = Endpoint::from_shared(self.config.endpoint.clone())
                    .map_err(LinkError::Unreachable)?
                    .connect_timeout(self.config.connect_timeout)
                    .http2_keep_alive_interval(Duration::from_secs(20))
                    .keep_alive_while_idle(true);
                endpoint.connect().await?
            }
        };
        let mut hello = self.hello();
        hello.kubernetes_version = self
            .engine
            .cluster()
            .server_version()
            .await
            .unwrap_or_default();
        let mut session = handshake(channel, &hello).await?;
        self.established_at = Some(tokio::time::Instant::now());
        let negotiated = session.negotiated.clone();
        tracing::info!(hub = %negotiated.hub_replica, resume = negotiated.resume_spoke_seq, "Connected to the hub.");
        // A hub that has less of this epoch than it acknowledged (its database restored from a backup) would
        // see a gap in what is resent and end every stream: start a fresh epoch, which also makes it ask for
        // every app's status again.
        if negotiated.resume_spoke_seq < self.outbox.acked() {
            tracing::warn!(
                resume = negotiated.resume_spoke_seq,
                acknowledged = self.outbox.acked(),
                "The hub lost reports it had acknowledged (a restored database?); starting a new stream epoch."
            );
            self.epoch = uuid_like();
            self.outbox = Outbox::new(1, 256, self.config.buffer_capacity);
            self.snapshot_owed = true;
            self.trees_owed = true;
            self.deployments_owed = true;
            return Err(LinkError::Protocol(
                "a resume point before what the hub acknowledged",
            ));
        }
        // Drop what the hub has and resend the rest first: coalesced by app and numbered on from the resume
        // point where the hub fences older streams off (after a long outage, what piled up in flight is sent
        // once per app), else message by message as sent.
        let resumed = if negotiated.capabilities.contains(names::COALESCED_RESUME) {
            self.outbox
                .resume_coalesced(negotiated.resume_spoke_seq)
                .map(|()| Vec::new())
        } else {
            self.outbox.resume(negotiated.resume_spoke_seq)
        };
        let resend = match resumed {
            Ok(resend) => resend,
            // Only an acknowledgement beyond what was sent fails here: the
            // hub knows a later seq of this epoch than we ever sent, so
            // start a fresh epoch.
            Err(_) => {
                self.epoch = uuid_like();
                self.outbox = Outbox::new(1, 256, self.config.buffer_capacity);
                self.snapshot_owed = true;
                return Err(LinkError::Protocol(
                    "a resume point beyond what this spoke sent",
                ));
            }
        };
        if negotiated.full_status_resync {
            self.snapshot_owed = true;
            self.trees_owed = true;
            // A hub that knew this spoke and lost its reports lost its deployments too (on the first stream,
            // every app's are sent as the watch first lists it).
            self.deployments_owed |= self.agreed.is_some();
        }
        if !negotiated.capabilities.contains(names::DEPLOYMENTS) {
            self.deployments.clear();
            self.deployments_owed = false;
        }
        self.agreed = Some(negotiated.capabilities.clone());
        let mut inbox = Inbox::new(negotiated.resume_hub_seq);
        for (seq, report) in resend {
            send(&session.outbound, seq, inbox.ack(), report.body()).await?;
        }
        let mut heartbeat = tokio::time::interval(negotiated.heartbeat_interval);
        let mut digest_timer = tokio::time::interval(negotiated.digest_interval);
        heartbeat.tick().await;
        // Live sessions of this stream; they end with it.
        let mut live = negotiated
            .capabilities
            .contains(names::LIVE_SESSIONS)
            .then(|| {
                super::live::Live::new(
                    self.engine.cluster().clone(),
                    self.apps.clone(),
                    self.config.cluster_name.clone(),
                    self.config.exec,
                    session.outbound.clone(),
                )
            });
        let renewal = negotiated
            .capabilities
            .contains(edgecd_core::link::capabilities::names::CERT_RENEWAL);
        // The renewal point already asked for on this stream (a renewed
        // certificate moves it, allowing the next one).
        let mut renewal_asked: Option<OffsetDateTime> = None;
        loop {
            let due = if renewal { self.renewal_due() } else { None };
            let renew_in = match due {
                Some(at) if Some(at) != renewal_asked => {
                    Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO)
                }
                _ => Duration::from_secs(365 * 24 * 3600),
            };
            if self.snapshot_owed {
                self.queue_snapshot().await;
            }
            if self.trees_owed {
                self.queue_all_trees().await;
            }
            self.pump(&session.outbound, &inbox).await?;
            tokio::select! {
                message = session.inbound.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let message = message?;
                    if let Some(live) = live.as_mut() {
                        match &message.body {
                            Some(hub_message::Body::LiveOpen(open)) => live.open(open.clone()),
                            Some(hub_message::Body::LiveCredit(credit)) => live.credit(credit),
                            Some(hub_message::Body::LiveCancel(cancel)) => live.cancel(cancel),
                            Some(hub_message::Body::LiveInput(input)) => live.input(input),
                            _ => {}
                        }
                    }
                    self.on_hub_message(message, &mut inbox, &negotiated, &session.outbound).await?;
                }
                event = events.recv() => {
                    match event {
                        Some(event) => self.on_input(event).await,
                        None => return Ok(()),
                    }
                }
                _ = heartbeat.tick() => {
                    let beat = Heartbeat {
                        sent_at: Some(pc::timestamp(OffsetDateTime::now_utc())),
                        in_flight: self.outbox.in_flight() as u32,
                        buffered: self.outbox.pending() as u32,
                    };
                    send(&session.outbound, 0, inbox.ack(), spoke_message::Body::Heartbeat(beat)).await?;
                }
                () = tokio::time::sleep(renew_in) => {
                    renewal_asked = due;
                    self.request_renewal();
                }
                _ = digest_timer.tick() => {
                    if negotiated.capabilities.contains(edgecd_core::link::capabilities::names::DIGEST) {
                        let digest = self.digest().await;
                        self.queue(None, Report::Digest(digest));
                    }
                }
            }
        }
    }

    /// When the current certificate is due for renewal (two thirds of its lifetime).
    fn renewal_due(&self) -> Option<OffsetDateTime> {
        let identity = self.config.identity.as_ref()?;
        identity
            .renew_at()
            .inspect_err(|error| tracing::warn!(%error, "Cannot read the certificate's lifetime."))
            .ok()
    }

    /// Queues a `RenewRequest` with a CSR for a fresh key (sequenced: it
    /// survives a reconnect until the hub acknowledges it).
    fn request_renewal(&mut self) {
        let Some(identity) = &self.config.identity else {
            return;
        };
        match identity.renewal_csr() {
            Ok(csr_pem) => {
                tracing::info!("Requesting a renewed certificate from the hub.");
                self.queue(None, Report::Renew(v1::RenewRequest { csr_pem }));
            }
            Err(error) => tracing::warn!(%error, "Cannot create a renewal request."),
        }
    }

    /// Sends queued reports while the window allows.
    async fn pump(
        &mut self,
        outbound: &mpsc::Sender<SpokeMessage>,
        inbox: &Inbox,
    ) -> Result<(), LinkError> {
        // Buffered events move into the outbox while it has room.
        while self.events.len() > 0 && self.outbox.len() + 1 < self.config.buffer_capacity {
            let Some(batch) = self.events.take_batch(&self.config.cluster_name) else {
                break;
            };
            self.queue(None, Report::Events(batch));
        }
        while self.outbox.len() + 1 < self.config.buffer_capacity {
            let Some(batch) = self.deployments.take_batch() else {
                break;
            };
            self.queue(None, Report::Deployments(batch));
        }
        while let Some((seq, report)) = self.outbox.next_to_send() {
            send(outbound, seq, inbox.ack(), report.body()).await?;
        }
        Ok(())
    }

    fn queue(&mut self, key: Option<String>, report: Report) {
        if let Err(OutboxError::Full { capacity }) = self.outbox.push(key, report) {
            // Nothing is dropped: the status stays in the CR and a full
            // report is sent once the buffer drains.
            tracing::warn!(
                capacity,
                "Hub link buffer is full; a full status report will follow."
            );
            self.snapshot_owed = true;
        }
    }

    async fn queue_snapshot(&mut self) {
        if self.outbox.len() + 1 >= self.config.buffer_capacity {
            return;
        }
        let Ok(mut list) = self.apps.list(&ListParams::default()).await else {
            return;
        };
        list.items.retain(|app| self.reportable(app));
        self.snapshot_owed = false;
        let cluster = self.config.cluster_name.clone();
        let mut reports: Vec<AppStatusReport> =
            list.items.iter().map(|a| report_of(a, &cluster)).collect();
        reports.extend(
            self.conflicts
                .iter()
                .filter_map(|(name, desired)| conflict_report(desired, name, &cluster)),
        );
        for app in &list.items {
            let status_version = app.status.as_ref().map_or(0, |s| s.status_version);
            self.reported.insert(
                app.metadata.name.clone().unwrap_or_default(),
                status_version,
            );
        }
        if std::mem::take(&mut self.deployments_owed) {
            tracing::info!("Reporting every app's deployments again.");
            for app in &list.items {
                let found = reports::new_deployments(&cluster, app, None);
                self.buffer_deployments(found);
            }
        }
        let snapshot_id = uuid_like();
        let chunks: Vec<Vec<AppStatusReport>> = if reports.is_empty() {
            vec![vec![]]
        } else {
            reports.chunks(SNAPSHOT_CHUNK).map(<[_]>::to_vec).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let batch = AppStatusBatch {
                reports: chunk,
                full_snapshot: true,
                snapshot_id: snapshot_id.clone(),
                snapshot_last: i == last,
            };
            self.queue(None, Report::Snapshot(batch));
        }
    }

    async fn on_app_event(&mut self, event: watcher::Event<Application>) {
        match event {
            watcher::Event::Apply(app) | watcher::Event::InitApply(app) => self.on_app(&app).await,
            watcher::Event::Delete(app) => {
                if !self.reportable(&app) {
                    return;
                }
                let name = app.metadata.name.clone().unwrap_or_default();
                self.reported.remove(&name);
                self.trees.remove(&name);
                self.involved.forget(&name);
                self.seen.remove(&name);
                let app_ref = v1::AppRef {
                    project: app.project().to_owned(),
                    name: app.app_name(),
                };
                self.queue(Some(app.qualified_name()), Report::Removed(app_ref));
                // The edge app that held a hub app's name is gone: the hub app is written now.
                if let Some(desired) = self.conflicts.get(&name).cloned()
                    && let Err(error) = self.write_desired(&desired).await
                {
                    tracing::warn!(%error, app = %name, "Cannot write a hub app whose name was freed.");
                }
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    async fn on_app(&mut self, app: &Application) {
        let name = app.metadata.name.clone().unwrap_or_default();
        // A cascading delete this spoke started and did not finish (it stopped halfway): finish it.
        if app.metadata.deletion_timestamp.is_some()
            && app
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == CASCADE_FINALIZER)
        {
            if let Err(error) = self.finish_cascade(&name, app).await {
                tracing::warn!(%error, app = %name, "Cannot finish deleting an app and its resources.");
            }
            return;
        }
        // Revert local edits of hub-managed apps.
        if is_managed(app)
            && let Some(desired) = self.desired.get(&name).cloned()
        {
            let want = desired
                .spec
                .as_ref()
                .and_then(|s| pc::from_application_spec(s, app.project()).ok());
            if want.as_ref().is_some_and(|w| w != &app.spec) {
                tracing::info!(app = %app.qualified_name(), "Reverting a local edit of a hub-managed app.");
                if let Err(error) = self.write_desired(&desired).await {
                    tracing::warn!(%error, "Cannot revert the managed app.");
                }
            }
        }
        if !self.reportable(app) {
            return;
        }
        let status_version = app.status.as_ref().map_or(0, |s| s.status_version);
        if self.reported.get(&name) != Some(&status_version) {
            self.reported.insert(name.clone(), status_version);
            self.queue(
                Some(app.qualified_name()),
                Report::Status(Box::new(report_of(app, &self.config.cluster_name))),
            );
            if self.agreed_to(edgecd_core::link::capabilities::names::RESOURCE_TREES) {
                self.queue_tree(app).await;
            }
        }
        if let Some(status) = &app.status {
            let before = self.seen.get(&name);
            let events = reports::events_between(&self.config.cluster_name, app, before);
            if self.agreed_to(edgecd_core::link::capabilities::names::EVENTS) {
                for event in events {
                    self.events.push(event);
                }
            }
            if self.agreed_to(names::DEPLOYMENTS) {
                let found = reports::new_deployments(&self.config.cluster_name, app, before);
                self.buffer_deployments(found);
            }
            self.seen.insert(name.clone(), reports::Seen::of(status));
        }
        // A command's operation finished: report its result.
        self.report_finished_operation(&name, app);
        // A terminated operation ended: the terminate command's result.
        if let Some((command_id, asked_at)) = self.pending_terminations.get(&name).cloned()
            && let Some(op) = app.status.as_ref().and_then(|s| s.operation_state.as_ref())
            && op.phase.is_finished()
            && op.finished_at.is_some_and(|at| at >= asked_at)
        {
            self.pending_terminations.remove(&name);
            let terminated = op.message.starts_with("Operation terminated");
            let (outcome, message) = if terminated {
                (v1::CommandOutcome::Succeeded, op.message.clone())
            } else {
                (
                    v1::CommandOutcome::Failed,
                    format!(
                        "the operation ended ({:?}) before it could be terminated: {}",
                        op.phase, op.message
                    ),
                )
            };
            let status = CommandStatus {
                command_id,
                outcome: outcome as i32,
                message,
                updated_at: Some(pc::timestamp(OffsetDateTime::now_utc())),
                payload: Some(command_status::Payload::Operation(pc::operation_state(op))),
                ..CommandStatus::default()
            };
            self.report_command(status);
        }
    }

    /// Reports the result of the command whose operation the app's CR shows finished, if one is pending
    /// for it; true when it did (the entry is then gone).
    fn report_finished_operation(&mut self, name: &str, app: &Application) -> bool {
        if let Some((command_id, trace)) = self.pending_operations.get(name).cloned()
            && let Some(op) = app.status.as_ref().and_then(|s| s.operation_state.as_ref())
            && op.command_id == command_id
            && op.phase.is_finished()
        {
            self.pending_operations.remove(name);
            // The way back: the result's report is a span of the action's trace.
            let span = tracing::info_span!(
                "report_result",
                otel.kind = "producer",
                command = %command_id,
                app = %app.qualified_name(),
                phase = ?op.phase,
            );
            if let Some(parent) = &trace {
                propagation::set_parent(&span, parent);
            }
            let _entered = span.enter();
            let outcome = if op.phase == OperationPhase::Succeeded {
                v1::CommandOutcome::Succeeded
            } else {
                v1::CommandOutcome::Failed
            };
            let status = CommandStatus {
                command_id,
                outcome: outcome as i32,
                message: op.message.clone(),
                updated_at: Some(pc::timestamp(OffsetDateTime::now_utc())),
                payload: Some(command_status::Payload::Operation(pc::operation_state(op))),
                ..CommandStatus::default()
            };
            self.report_command(status);
            return true;
        }
        false
    }

    /// Whether the hub agreed to `capability` on the last stream (assumed before the first one).
    /// Buffers deployments for the hub; on overflow they are owed with the next full report (never dropped).
    fn buffer_deployments(&mut self, found: Vec<edgecd_core::deployment::Deployment>) {
        if found.is_empty() {
            return;
        }
        if !self.deployments.push(found) {
            tracing::warn!(
                capacity = DEPLOYMENT_BUFFER,
                "The deployment buffer is full; every app's deployments will be reported again."
            );
            self.deployments_owed = true;
            self.snapshot_owed = true;
        }
    }

    fn agreed_to(&self, capability: &str) -> bool {
        self.agreed.as_ref().is_none_or(|c| c.contains(capability))
    }

    /// Whether the hub hears about `app` at all: an app created at the edge only under `autonomous-apps.v1`
    /// (a hub without it knows no such app; nothing about it, status, tree, events or deployments, is sent).
    fn reportable(&self, app: &Application) -> bool {
        app.origin() != AppOrigin::Autonomous || self.agreed_to(names::AUTONOMOUS_APPS)
    }

    /// Queues the app's resource tree if it changed since it was last queued (coalesced per app: the newest
    /// tree wins).
    async fn queue_tree(&mut self, app: &Application) {
        let name = app.metadata.name.clone().unwrap_or_default();
        let tree = reports::resource_tree(self.engine.cluster(), app).await;
        self.involved.record(&name, &tree);
        let hash = reports::tree_hash(&tree);
        if self.trees.get(&name) == Some(&hash) {
            return;
        }
        let key = format!("tree:{}", app.qualified_name());
        match self.outbox.push(Some(key), Report::Tree(Box::new(tree))) {
            Ok(()) => {
                self.trees.insert(name, hash);
            }
            Err(OutboxError::Full { capacity }) => {
                // Not recorded as sent: the next change (or a resync) sends it.
                tracing::warn!(capacity, app = %app.qualified_name(), "Hub link buffer is full; the resource tree follows later.");
                self.trees.remove(&name);
            }
            Err(error) => tracing::warn!(%error, "Cannot queue a resource tree."),
        }
    }

    /// Queues every app's resource tree (after a resync request or when the hub lost its state).
    async fn queue_all_trees(&mut self) {
        if !self.agreed_to(edgecd_core::link::capabilities::names::RESOURCE_TREES) {
            self.trees_owed = false;
            return;
        }
        let Ok(list) = self.apps.list(&ListParams::default()).await else {
            return;
        };
        self.trees_owed = false;
        self.trees.clear();
        for app in &list.items {
            self.queue_tree(app).await;
        }
    }

    /// Keeps the project policies the hub sent (durably, in the state namespace) and has every app
    /// re-checked against them.
    async fn apply_policies(&mut self, policies: v1::ProjectPolicies) {
        let mut projects = if policies.full_snapshot {
            HashMap::new()
        } else {
            self.engine.policies().all()
        };
        for project in &policies.projects {
            match pc::from_project(project) {
                Ok(spec) => {
                    projects.insert(project.name.clone(), spec);
                }
                Err(error) => {
                    tracing::warn!(project = %project.name, %error, "Ignoring a project policy that cannot be read.");
                }
            }
        }
        tracing::info!(
            projects = projects.len(),
            full = policies.full_snapshot,
            "Project policies received."
        );
        if let Err(error) = crate::policy::store(
            self.engine.cluster().client(),
            &self.config.namespace,
            &projects,
        )
        .await
        {
            // Still enforced from memory; stored with the next update.
            tracing::warn!(%error, "Cannot store the project policies.");
        }
        self.engine.policies().update(projects, true);
        if let Some(store) = self.engine.apps() {
            for app in store.state() {
                if let Some(name) = &app.metadata.name {
                    self.engine.trigger(name);
                }
            }
        }
    }

    /// Takes the hub's repository credentials: a complete set replaces the previous hub set (a partial one
    /// adds to it), merged with the local Secrets' (a local Secret wins for the same prefix) and kept in
    /// the Secret `edgecd-hub-repo-credentials` for restarts without the hub. Only prefixes are logged.
    async fn apply_credentials(&mut self, message: &v1::RepositoryCredentials) {
        use crate::credentials::{StoredCredential, credentials_from_hub, store_hub};
        let Some(sources) = self.config.credentials.clone() else {
            tracing::debug!("Ignoring repository credentials: this spoke did not ask for them.");
            return;
        };
        let received: Vec<StoredCredential> = message
            .credentials
            .iter()
            .map(StoredCredential::from)
            .collect();
        let received = credentials_from_hub(&received);
        let set = if message.full_snapshot {
            received
        } else {
            crate::git::Credentials::merged(&received, &sources.hub())
        };
        let prefixes: Vec<&str> = set.prefixes().collect();
        tracing::info!(
            count = set.len(),
            ?prefixes,
            full = message.full_snapshot,
            "Repository credentials received from the hub."
        );
        sources.set_hub(set.clone());
        if let Err(error) =
            store_hub(self.engine.cluster().client(), &self.config.namespace, &set).await
        {
            // Still used from memory; stored with the next set.
            tracing::warn!(%error, "Cannot keep the hub's repository credentials.");
        }
        // Apps that could not read their repository may now.
        if let Some(store) = self.engine.apps() {
            for app in store.state() {
                if let Some(name) = &app.metadata.name {
                    self.engine.trigger(name);
                }
            }
        }
    }

    /// Keeps exactly the hub's sets for this cluster as hub-managed ApplicationSet CRs (local edits reverted,
    /// hub sets no longer sent deleted with their apps) and the hub's labels of this cluster.
    async fn apply_application_sets(&mut self, message: v1::SpokeApplicationSets) {
        let Some(appsets) = self.config.appsets.clone() else {
            tracing::debug!(
                "Ignoring application sets: the ApplicationSet controller does not run."
            );
            return;
        };
        let mut desired = std::collections::BTreeSet::new();
        for set in &message.sets {
            let name = crd::cr_name(&set.project, &set.name);
            desired.insert(name.clone());
            let spec = match pc::appset_spec_from_proto(set) {
                Ok(spec) => spec,
                Err(error) => {
                    tracing::warn!(project = %set.project, set = %set.name, %error, "Ignoring an application set that cannot be read; its CR is left as it is.");
                    continue;
                }
            };
            if let Err(error) = appsets.write_hub_set(&name, &set.project, &spec).await {
                tracing::warn!(set = %name, %error, "Cannot write a hub-assigned ApplicationSet.");
            }
        }
        match appsets.hub_set_names().await {
            Ok(existing) => {
                for name in existing.difference(&desired) {
                    if let Err(error) = appsets.delete_set(name).await {
                        tracing::warn!(set = %name, %error, "Cannot delete an ApplicationSet the hub no longer assigns.");
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot list the hub-assigned ApplicationSets."),
        }
        tracing::info!(sets = desired.len(), "Application sets received.");
        appsets.set_cluster_metadata(
            message.cluster_labels.into_iter().collect(),
            message.cluster_annotations.into_iter().collect(),
            message.cluster_server_url,
        );
    }

    fn report_command(&mut self, status: CommandStatus) {
        let id = status.command_id.clone();
        if !self.commands.contains_key(&id) {
            self.command_order.push_back(id.clone());
            if self.command_order.len() > REMEMBERED_COMMANDS
                && let Some(old) = self.command_order.pop_front()
            {
                self.commands.remove(&old);
            }
        }
        self.commands.insert(id, status.clone());
        self.queue(
            None,
            Report::Commands(CommandStatusBatch {
                statuses: vec![status],
            }),
        );
    }

    async fn on_hub_message(
        &mut self,
        message: HubMessage,
        inbox: &mut Inbox,
        negotiated: &Negotiated,
        outbound: &mpsc::Sender<SpokeMessage>,
    ) -> Result<(), LinkError> {
        if message.ack > 0
            && let Err(error) = self.outbox.ack(message.ack)
        {
            tracing::warn!(%error, "The hub acknowledged an unknown message.");
            return Err(LinkError::Protocol(
                "an acknowledgement beyond what was sent",
            ));
        }
        if let Some(hub_message::Body::GoAway(go_away)) = &message.body {
            return Err(LinkError::GoAway {
                reason: go_away.reason(),
                message: go_away.message.clone(),
                retry_after: go_away.retry_after.as_ref().and_then(pc::from_duration),
            });
        }
        if message.seq == 0 {
            return Ok(());
        }
        match inbox.receive(message.seq) {
            Receipt::Duplicate => {}
            Receipt::Gap { expected } => {
                tracing::warn!(
                    expected,
                    got = message.seq,
                    "The hub skipped sequence numbers; reconnecting."
                );
                return Err(LinkError::Protocol("a gap in hub sequence numbers"));
            }
            Receipt::New => {
                self.process(message.body, negotiated).await;
                inbox.processed(message.seq);
            }
        }
        send(
            outbound,
            0,
            inbox.ack(),
            spoke_message::Body::Heartbeat(Heartbeat::default()),
        )
        .await
    }

    async fn process(&mut self, body: Option<hub_message::Body>, negotiated: &Negotiated) {
        match body {
            Some(hub_message::Body::DesiredApps(desired)) => self.apply_desired(desired).await,
            Some(hub_message::Body::Command(command)) => self.run_command(command).await,
            Some(hub_message::Body::Resync(resync)) => {
                use v1::resync_request::Scope;
                let scope = resync.scope();
                if matches!(scope, Scope::Status | Scope::All | Scope::Unspecified) {
                    self.snapshot_owed = true;
                }
                if matches!(scope, Scope::ResourceTrees | Scope::All) {
                    self.trees_owed = true;
                }
            }
            Some(hub_message::Body::ProjectPolicies(policies)) => {
                self.apply_policies(policies).await;
            }
            Some(hub_message::Body::ApplicationSets(sets)) => {
                self.apply_application_sets(sets).await;
            }
            Some(hub_message::Body::RepositoryCredentials(credentials)) => {
                self.apply_credentials(&credentials).await;
            }
            Some(hub_message::Body::Renew(response)) => {
                if let Some(identity) = &self.config.identity
                    && let Err(error) = identity.renewed(&response).await
                {
                    tracing::warn!(%error, "Certificate renewal failed; retrying on the next connection.");
                }
            }
            Some(hub_message::Body::Digest(_)) => {
                let digest = self.digest().await;
                self.queue(None, Report::Digest(digest));
            }
            Some(other) => {
                tracing::debug!(capabilities = ?negotiated.capabilities, message = ?std::mem::discriminant(&other), "Ignoring a hub message this spoke does not handle.");
            }
            None => tracing::debug!("Ignoring an unknown hub message type."),
        }
    }

    async fn apply_desired(&mut self, desired: v1::DesiredApps) {
        if !desired.full_snapshot && desired.base_version != self.desired_version {
            tracing::warn!(
                base = desired.base_version,
                ours = self.desired_version,
                "Desired-set delta does not fit; asking for a full set."
            );
            self.desired_version = 0;
            let digest = self.digest().await;
            self.queue(None, Report::Digest(digest));
            return;
        }
        let mut failed = false;
        for app in &desired.upserts {
            if let Err(error) = self.write_desired(app).await {
                tracing::warn!(%error, "Cannot write a desired app.");
                failed = true;
            }
        }
        let mut delete: Vec<String> = desired
            .deletes
            .iter()
            .map(|a| crd::cr_name(&a.project, &a.name))
            .collect();
        let keep_resources: HashSet<String> = desired
            .keep_resources
            .iter()
            .map(|a| crd::cr_name(&a.project, &a.name))
            .collect();
        if desired.full_snapshot {
            let keep: Vec<String> = desired
                .upserts
                .iter()
                .filter_map(|a| a.meta.as_ref())
                .map(|m| crd::cr_name(&m.project, &m.name))
                .collect();
            let selector = format!("{ORIGIN_LABEL}=hub");
            if let Ok(list) = self
                .apps
                .list(&ListParams::default().labels(&selector))
                .await
            {
                delete.extend(
                    list.items
                        .into_iter()
                        .filter_map(|a| a.metadata.name)
                        .filter(|n| !keep.contains(n)),
                );
            }
            self.desired.retain(|name, _| keep.contains(name));
            self.conflicts.retain(|name, _| keep.contains(name));
        }
        for name in delete {
            self.desired.remove(&name);
            if let Err(error) = self.delete_app(&name, keep_resources.contains(&name)).await {
                tracing::warn!(%error, app = %name, "Cannot delete a removed app.");
                failed = true;
            }
        }
        if !failed {
            self.desired_version = desired.version;
        }
    }

    async fn write_desired(&mut self, desired: &v1::DesiredApp) -> Result<(), kube::Error> {
        let Some(meta) = desired.meta.as_ref() else {
            return Ok(());
        };
        let Some(spec) = desired
            .spec
            .as_ref()
            .and_then(|s| pc::from_application_spec(s, &meta.project).ok())
        else {
            tracing::warn!(project = %meta.project, app = %meta.name, "Ignoring a desired app with an invalid spec.");
            return Ok(());
        };
        let name = crd::cr_name(&meta.project, &meta.name);
        // Never overwrite an Application created at the edge with a hub app of
        // the same name (docs/appsets.md, "Identity"): the hub app is not
        // applied here, and its status names the conflict.
        if let Some(existing) = self.apps.get_opt(&name).await?
            && existing.origin() == AppOrigin::Autonomous
        {
            let cluster = self.config.cluster_name.clone();
            if !self.conflicts.contains_key(&name) {
                tracing::warn!(
                    app = %format!("{}/{}", meta.project, meta.name),
                    cr = %name,
                    "A hub app has the name of an Application created at the edge; not applying it."
                );
            }
            self.conflicts.insert(name.clone(), desired.clone());
            if let Some(report) = conflict_report(desired, &name, &cluster) {
                self.queue(
                    Some(format!("conflict:{}/{}", meta.project, meta.name)),
                    Report::Status(Box::new(report)),
                );
            }
            return Ok(());
        }
        if self.conflicts.remove(&name).is_some() {
            // The hub forgets the conflict's status; the CR's own reports follow.
            tracing::info!(cr = %name, "The name is free again; applying the hub app.");
            self.queue(
                Some(format!("conflict:{}/{}", meta.project, meta.name)),
                Report::Removed(v1::AppRef {
                    project: meta.project.clone(),
                    name: meta.name.clone(),
                }),
            );
        }
        let mut labels: BTreeMap<String, String> = pc::from_labels(&meta.labels);
        labels.insert(ORIGIN_LABEL.into(), "hub".into());
        labels.insert(PROJECT_LABEL.into(), meta.project.clone());
        let body = serde_json::json!({
            "apiVersion": crd::API_VERSION,
            "kind": "Application",
            "metadata": {
                "name": name,
                "namespace": self.config.namespace,
                "labels": labels,
                "annotations": { SPEC_VERSION_ANNOTATION: meta.spec_version.to_string() },
            },
            "spec": spec,
        });
        let params = PatchParams::apply(LINK_MANAGER).force();
        self.apps
            .patch(&name, &params, &Patch::Apply(&body))
            .await?;
        self.desired.insert(name, desired.clone());
        Ok(())
    }

    /// Deletes a managed app: first its resources in the cluster (cascade,
    /// unless the hub deleted it without cascade or the app is labelled to
    /// preserve them), then its CR.
    async fn delete_app(&mut self, name: &str, keep_resources: bool) -> Result<(), kube::Error> {
        if self.conflicts.remove(name).is_some() {
            tracing::info!(app = %name, "A hub app that was never applied (its name is taken at the edge) was deleted.");
        }
        let Some(app) = self.apps.get_opt(name).await? else {
            return Ok(());
        };
        if app.origin() == AppOrigin::Autonomous {
            // Not the hub's: an app created at the edge holds the name.
            tracing::info!(app = %name, "Not deleting an Application created at the edge for a deleted hub app.");
            return Ok(());
        }
        self.delete_cr(name, &app, keep_resources).await
    }

    /// Deletes the app whose CR is `name`: first its resources in the cluster (unless `keep_resources` or the
    /// app is labelled to preserve them), then its CR.
    async fn delete_cr(
        &self,
        name: &str,
        app: &crd::Application,
        keep_resources: bool,
    ) -> Result<(), kube::Error> {
        let preserve = app
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(edgecd_core::app::PRESERVE_RESOURCES_LABEL))
            .is_some_and(|v| v == "true");
        if keep_resources {
            tracing::info!(app = %name, "Deleting the app and keeping its resources (deleted without cascade).");
        } else if preserve {
            tracing::info!(app = %name, "Deleting the app and keeping its resources (preserve-resources-on-deletion).");
        } else if app.status.as_ref().is_some_and(|s| !s.resources.is_empty()) {
            // A cascade: the app is marked deleted first (held by a finalizer of ours), so the engine stops
            // reconciling it (no self-heal brings back what is deleted next); then its resources go, then the
            // finalizer. A spoke that stops halfway finishes when it sees the app again (`on_app`).
            let mut finalizers = app.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == CASCADE_FINALIZER) {
                finalizers.push(CASCADE_FINALIZER.to_owned());
                let patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
                self.apps
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            return match self.apps.delete(name, &DeleteParams::default()).await {
                Ok(_) => self.finish_cascade(name, app).await,
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                Err(e) => Err(e),
            };
        }
        match self.apps.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The second half of a cascading delete (`delete_cr`): the app, marked deleted and held by our finalizer,
    /// loses the resources it manages, then the finalizer (and with it the Application).
    async fn finish_cascade(&self, name: &str, app: &crd::Application) -> Result<(), kube::Error> {
        // Only what the app manages: its status also lists objects it never applied. A sync of the app that was
        // already running when it was marked deleted may still apply an object after its deletion: rounds
        // follow until one finds nothing left to delete. An object that cannot be deleted keeps the finalizer
        // (the delete is tried again with the next desired set, or the app's next change).
        let owner = app.qualified_name();
        let mut failed = None;
        for round in 0..CASCADE_ROUNDS {
            let mut deleted = 0;
            for resource in app.status.iter().flat_map(|s| &s.resources) {
                match self
                    .engine
                    .cluster()
                    .delete_managed(&owner, &resource.key)
                    .await
                {
                    Ok(true) => deleted += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "Cannot delete a resource of a removed app.");
                        failed = Some(error);
                    }
                }
            }
            if deleted == 0 {
                break;
            }
            if round > 0 {
                tracing::info!(app = %name, deleted, "Deleted again objects of a removed app that came back.");
            }
            tokio::time::sleep(CASCADE_ROUND_DELAY).await;
        }
        if let Some(error) = failed {
            return Err(kube::Error::Service(Box::new(error)));
        }
        let Some(current) = self.apps.get_opt(name).await? else {
            return Ok(());
        };
        let finalizers: Vec<String> = current
            .metadata
            .finalizers
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != CASCADE_FINALIZER)
            .collect();
        let patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs a command in a span that continues the trace of the action that issued it.
    async fn run_command(&mut self, command: v1::Command) {
        let kind = match &command.kind {
            Some(command::Kind::Sync(_)) => "sync",
            Some(command::Kind::Rollback(_)) => "rollback",
            Some(command::Kind::Refresh(_)) => "refresh",
            Some(command::Kind::Terminate(_)) => "terminate",
            Some(command::Kind::Diff(_)) => "diff",
            Some(command::Kind::Manifests(_)) => "manifests",
            Some(command::Kind::Delete(_)) => "delete",
            None => "unknown",
        };
        let app = command.app.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "command",
            otel.kind = "consumer",
            command = %command.id,
            kind,
            app = %format_args!("{}/{}", app.project, app.name),
            cluster = %self.config.cluster_name,
        );
        let received = TraceContext::parse(&command.traceparent, &command.tracestate);
        if let Some(parent) = &received {
            propagation::set_parent(&span, parent);
        }
        let trace = propagation::pass_on(&span, received.as_ref());
        self.handle_command(command, trace).instrument(span).await;
    }

    async fn handle_command(&mut self, command: v1::Command, trace: Option<TraceContext>) {
        let id = command.id.clone();
        if let Some(known) = self.commands.get(&id).cloned() {
            // A redelivery: answer with what we know, never run it twice.
            self.queue(
                None,
                Report::Commands(CommandStatusBatch {
                    statuses: vec![known],
                }),
            );
            return;
        }
        let status = |outcome: v1::CommandOutcome, message: String| CommandStatus {
            command_id: id.clone(),
            outcome: outcome as i32,
            message,
            updated_at: Some(pc::timestamp(OffsetDateTime::now_utc())),
            payload: None,
            ..CommandStatus::default()
        };
        let now = OffsetDateTime::now_utc();
        if command
            .deadline
            .as_ref()
            .and_then(pc::from_timestamp)
            .is_some_and(|d| d < now)
        {
            self.report_command(status(
                v1::CommandOutcome::Expired,
                "the command's deadline passed before it could start".into(),
            ));
            return;
        }
        let app_ref = command.app.clone().unwrap_or_default();
        let found = crd::find_app(&self.apps, &app_ref.project, &app_ref.name).await;
        let app = match found {
            Ok(Some(app)) => app,
            Ok(None) => {
                self.report_command(status(
                    v1::CommandOutcome::Rejected,
                    format!(
                        "no application {}/{} on cluster {}",
                        app_ref.project, app_ref.name, self.config.cluster_name
                    ),
                ));
                return;
            }
            Err(error) => {
                self.report_command(status(
                    v1::CommandOutcome::Failed,
                    format!("reading the application: {error}"),
                ));
                return;
            }
        };
        // The CR's own name: a hub app's, or the name an app created at the edge keeps.
        let name = app.metadata.name.clone().unwrap_or_default();
        // One operation at a time, as in Argo CD: a second sync or rollback while a command's operation
        // is pending would overwrite it, and the first command would never get its result.
        // The pending entry counts only while the CR shows that command's operation as requested or
        // running: one whose operation was replaced, whose app was deleted and created again, or whose end
        // was never seen is dropped, so it cannot refuse every later operation.
        if matches!(
            command.kind,
            Some(command::Kind::Sync(_) | command::Kind::Rollback(_))
        ) && let Some((running, _)) = self.pending_operations.get(&name).cloned()
            && running != id
        {
            let requested = app
                .operation
                .as_ref()
                .is_some_and(|op| op.command_id == running);
            let in_progress = app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .is_some_and(|op| op.command_id == running && !op.phase.is_finished());
            if requested || in_progress {
                let message = format!(
                    "another operation is already in progress for {} (command {running}); retry when it has finished",
                    app.qualified_name()
                );
                self.report_command(status(v1::CommandOutcome::Failed, message));
                return;
            }
            // Its operation finished and the watch has not delivered that yet: report the result now, or
            // the entry is replaced below and the first command never gets its answer.
            if !self.report_finished_operation(&name, &app) {
                self.pending_operations.remove(&name);
            }
        }
        let initiated_by = command.issued_by.clone();
        let result = match command.kind {
            Some(command::Kind::Sync(sync)) => {
                let request = OperationRequest {
                    command_id: id.clone(),
                    initiated_by,
                    sync: Some(SyncRequest {
                        revision: sync.revision,
                        prune: sync.prune,
                        dry_run: sync.dry_run,
                        resources: sync
                            .resources
                            .iter()
                            .map(|key| SyncResource {
                                group: key.group.clone(),
                                kind: key.kind.clone(),
                                name: key.name.clone(),
                                namespace: key.namespace.clone(),
                            })
                            .collect(),
                        force: sync.force,
                        sync_options: if sync.apply_out_of_sync_only {
                            vec![APPLY_OUT_OF_SYNC_ONLY.to_owned()]
                        } else {
                            Vec::new()
                        },
                    }),
                    rollback: None,
                    info: OperationRequest::trace_info(trace.as_ref()),
                };
                self.request_operation(&name, request).await
            }
            Some(command::Kind::Rollback(rollback)) => {
                if app.spec.automated().is_some() {
                    Err(format!(
                        "rollback of {} is refused while automated sync is on (it would sync back at once)",
                        app.qualified_name()
                    ))
                } else {
                    let request = OperationRequest {
                        command_id: id.clone(),
                        initiated_by,
                        sync: None,
                        rollback: Some(RollbackRequest {
                            id: rollback.history_id,
                            prune: rollback.prune,
                            dry_run: rollback.dry_run,
                        }),
                        info: OperationRequest::trace_info(trace.as_ref()),
                    };
                    self.request_operation(&name, request).await
                }
            }
            Some(command::Kind::Refresh(refresh)) => {
                let value = if refresh.hard { "hard" } else { "normal" };
                let patch =
                    serde_json::json!({"metadata": {"annotations": {REFRESH_ANNOTATION: value}}});
                match self
                    .apps
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        self.engine.trigger(&name);
                        self.report_command(status(
                            v1::CommandOutcome::Succeeded,
                            format!("{value} refresh requested"),
                        ));
                        return;
                    }
                    Err(error) => Err(format!("requesting a refresh: {error}")),
                }
            }
            Some(command::Kind::Diff(_)) => match self.engine.diff(&app).await {
                Ok(diffs) => {
                    let payload = v1::DiffResult {
                        resources: diffs
                            .into_iter()
                            .map(|d| v1::ResourceDiff {
                                key: Some(pc::resource_key(&d.key)),
                                live_yaml: d.live_yaml,
                                desired_yaml: d.desired_yaml,
                                diff: d.diff,
                                modified: d.modified,
                            })
                            .collect(),
                    };
                    let mut done = status(v1::CommandOutcome::Succeeded, String::new());
                    done.payload = Some(command_status::Payload::Diff(payload));
                    self.report_command(done);
                    return;
                }
                Err(error) => Err(error),
            },
            Some(command::Kind::Manifests(manifests)) => {
                match self.engine.manifests(&app, &manifests.revision).await {
                    Ok((revision, documents)) => {
                        let mut done = status(v1::CommandOutcome::Succeeded, String::new());
                        done.payload =
                            Some(command_status::Payload::Manifests(v1::ManifestsResult {
                                revision,
                                manifests_yaml: documents,
                            }));
                        self.report_command(done);
                        return;
                    }
                    Err(error) => Err(error),
                }
            }
            Some(command::Kind::Delete(delete)) => {
                // A hub app goes when the hub stops desiring it; only an app created here is deleted on command.
                if app.origin() != AppOrigin::Autonomous {
                    self.report_command(status(
                        v1::CommandOutcome::Rejected,
                        format!(
                            "{} is defined at the hub; it is deleted there, not on command",
                            app.qualified_name()
                        ),
                    ));
                    return;
                }
                let outcome = match self.delete_cr(&name, &app, !delete.cascade).await {
                    Ok(()) => status(
                        v1::CommandOutcome::Succeeded,
                        if delete.cascade {
                            format!("deleted {} and its resources", app.qualified_name())
                        } else {
                            format!(
                                "deleted {}; its resources are left in the cluster",
                                app.qualified_name()
                            )
                        },
                    ),
                    Err(error) => status(
                        v1::CommandOutcome::Failed,
                        format!("deleting {}: {error}", app.qualified_name()),
                    ),
                };
                self.report_command(outcome);
                return;
            }
            Some(command::Kind::Terminate(_)) => {
                let by = if command.issued_by.is_empty() {
                    "the hub".to_owned()
                } else {
                    command.issued_by.clone()
                };
                if self.engine.terminate(&name, &by) {
                    self.pending_terminations
                        .insert(name, (id.clone(), OffsetDateTime::now_utc()));
                    let running = status(
                        v1::CommandOutcome::Running,
                        "termination requested; the operation stops at its next step".into(),
                    );
                    // Not remembered as final: the result follows when the operation ends.
                    self.queue(
                        None,
                        Report::Commands(CommandStatusBatch {
                            statuses: vec![running],
                        }),
                    );
                } else {
                    self.report_command(status(
                        v1::CommandOutcome::Failed,
                        format!(
                            "no operation is running for {}; nothing to terminate",
                            app.qualified_name()
                        ),
                    ));
                }
                return;
            }
            None => {
                self.report_command(status(
                    v1::CommandOutcome::Unsupported,
                    "this spoke does not support the command".into(),
                ));
                return;
            }
        };
        match result {
            Ok(()) => {
                self.pending_operations
                    .insert(name, (id.clone(), trace.clone()));
                let running = status(v1::CommandOutcome::Running, "operation requested".into());
                // Not remembered as final: the result follows.
                self.queue(
                    None,
                    Report::Commands(CommandStatusBatch {
                        statuses: vec![running],
                    }),
                );
            }
            Err(message) => self.report_command(status(v1::CommandOutcome::Failed, message)),
        }
    }

    async fn request_operation(&self, name: &str, request: OperationRequest) -> Result<(), String> {
        let patch = serde_json::json!({ "operation": request });
        self.apps
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("requesting the operation: {e}"))?;
        self.engine.trigger(name);
        Ok(())
    }

    async fn digest(&self) -> v1::Digest {
        let Ok(list) = self.apps.list(&ListParams::default()).await else {
            return v1::Digest::default();
        };
        // Hub apps held back by a name conflict count as held: the hub knows
        // them, and their status is the conflict's.
        let held_back = self
            .conflicts
            .values()
            .filter_map(|d| d.meta.as_ref())
            .map(|m| (m.project.clone(), m.name.clone(), m.spec_version));
        let conflict_statuses: Vec<(String, String, u64)> = self
            .conflicts
            .values()
            .filter_map(|d| d.meta.as_ref())
            .map(|m| (m.project.clone(), m.name.clone(), 1))
            .collect();
        let managed: Vec<(String, String, u64)> = list
            .items
            .iter()
            .filter(|a| is_managed(a))
            .map(|a| {
                let version = a
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|an| an.get(SPEC_VERSION_ANNOTATION))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                (a.project().to_owned(), a.app_name(), version)
            })
            .chain(held_back)
            .collect();
        let statuses: Vec<(String, String, u64)> = list
            .items
            .iter()
            .map(|a| {
                (
                    a.project().to_owned(),
                    a.app_name(),
                    a.status.as_ref().map_or(0, |s| s.status_version),
                )
            })
            .chain(conflict_statuses)
            .collect();
        v1::Digest {
            desired_version: self.desired_version,
            desired_hash: digest::digest(
                managed.iter().map(|(p, n, v)| (p.as_str(), n.as_str(), *v)),
            ),
            status_hash: digest::digest(
                statuses
                    .iter()
                    .map(|(p, n, v)| (p.as_str(), n.as_str(), *v)),
            ),
            app_count: list.items.len() as u32,
        }
    }
}

/// The owner of an app generated by a spoke-side ApplicationSet (labels written by the set's controller).
fn owner_of(app: &Application, cluster: &str) -> Option<v1::OwnerRef> {
    use crate::appset::{OWNER_KIND, OWNER_KIND_LABEL, OWNER_NAME_LABEL, OWNER_PROJECT_LABEL};
    let labels = app.metadata.labels.as_ref()?;
    if labels.get(OWNER_KIND_LABEL).map(String::as_str) != Some(OWNER_KIND) {
        return None;
    }
    Some(v1::OwnerRef {
        kind: OWNER_KIND.to_owned(),
        project: labels
            .get(OWNER_PROJECT_LABEL)
            .filter(|p| !p.is_empty())
            .cloned()
            .unwrap_or_else(|| "default".to_owned()),
        name: labels.get(OWNER_NAME_LABEL)?.clone(),
        scope: cluster.to_owned(),
    })
}

/// Condition of a hub app that an Application created at the edge keeps from being applied.
pub const NAME_CONFLICT_CONDITION: &str = "NameConflictError";

/// The status of a hub app not applied because the edge Application `cr`
/// holds its name: sync and health Unknown, and a condition naming both apps
/// and what to do.
fn conflict_report(desired: &v1::DesiredApp, cr: &str, cluster: &str) -> Option<AppStatusReport> {
    let meta = desired.meta.as_ref()?;
    let (project, name) = (&meta.project, &meta.name);
    let message = format!(
        "cluster {cluster} already has an Application {cr} created at the edge \
         ({project}/{name}@{cluster} at the hub); the hub app {project}/{name} is not applied there, \
         and the edge app is left as it is. Rename the hub app, or delete or rename the edge \
         Application; the hub app is applied as soon as the name is free"
    );
    let status = edgecd_core::app::ApplicationStatus {
        status_version: 1,
        conditions: vec![edgecd_core::app::Condition {
            kind: NAME_CONFLICT_CONDITION.into(),
            message,
            last_transition_time: OffsetDateTime::now_utc(),
        }],
        ..Default::default()
    };
    Some(AppStatusReport {
        app: Some(v1::AppRef {
            project: project.clone(),
            name: name.clone(),
        }),
        status: Some(pc::application_status(&status)),
        origin: pc::origin_code(AppOrigin::Managed) as i32,
        meta: None,
        spec: None,
    })
}

fn report_of(app: &Application, cluster: &str) -> AppStatusReport {
    let origin = app.origin();
    let mut status = app.status.clone().unwrap_or_default();
    status.observed_spec_version = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SPEC_VERSION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let autonomous = origin == AppOrigin::Autonomous;
    AppStatusReport {
        app: Some(v1::AppRef {
            project: app.project().to_owned(),
            name: app.app_name(),
        }),
        status: Some(pc::application_status(&status)),
        origin: pc::origin_code(origin) as i32,
        meta: autonomous.then(|| v1::ApplicationMeta {
            project: app.project().to_owned(),
            name: app.app_name(),
            labels: app
                .metadata
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            origin: pc::origin_code(origin) as i32,
            owner: owner_of(app, cluster),
            ..v1::ApplicationMeta::default()
        }),
        spec: autonomous.then(|| pc::application_spec(&app.spec)),
    }
}

async fn send(
    outbound: &mpsc::Sender<SpokeMessage>,
    seq: u64,
    ack: u64,
    body: spoke_message::Body,
) -> Result<(), LinkError> {
    outbound
        .send(SpokeMessage {
            seq,
            ack,
            body: Some(body),
        })
        .await
        .map_err(|_| LinkError::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spoke announces every capability of this build: the default list, plus those announced when
    /// their feature is configured (application sets, repository credentials, certificate renewal). A
    /// capability added to `ALL_V1` and forgotten here would silently never be negotiated.
    #[test]
    fn the_spoke_announces_every_capability_of_this_build() {
        use edgecd_core::link::capabilities::{ALL_V1, names};
        let config = HubLinkConfig::new("https://hub:7443", "c1", "edgecd");
        let mut announced: Vec<&str> = config.capabilities.iter().collect();
        announced.extend([
            names::APPLICATION_SETS,
            names::APPSET_ARGO_SPEC,
            names::REPO_CREDENTIALS,
            names::CERT_RENEWAL,
        ]);
        announced.sort_unstable();
        let mut all = ALL_V1.to_vec();
        all.sort_unstable();
        assert_eq!(announced, all);
    }

    fn go_away(reason: go_away::Reason, retry_after: Option<Duration>) -> Result<(), LinkError> {
        Err(LinkError::GoAway {
            reason,
            message: "draining".into(),
            retry_after,
        })
    }

    /// Regression (issue 17, finding 7): a drain of an established session used to grow the backoff like a
    /// failure, so every hub drain pushed the next reconnect further out (1.9 s → 51 s).
    #[test]
    fn a_drain_or_replacement_of_an_established_session_is_a_redirect() {
        let hint = Some(Duration::from_secs(1));
        for reason in [go_away::Reason::Draining, go_away::Reason::Replaced] {
            assert_eq!(
                session_outcome(&go_away(reason, hint), Some(Duration::from_millis(50))),
                SessionOutcome::Redirected { retry_after: hint }
            );
        }
        let mut backoff = Backoff::reconnect();
        let mut rng = rand::rng();
        for _ in 0..10 {
            let outcome = session_outcome(
                &go_away(go_away::Reason::Draining, hint),
                Some(Duration::from_secs(1)),
            );
            let delay = backoff.delay_after(&mut rng, outcome);
            assert!(delay <= Duration::from_millis(1200), "{delay:?}");
        }
    }

    #[test]
    fn refusals_before_welcome_and_revocations_are_failures() {
        let hint = Some(Duration::from_secs(3));
        assert_eq!(
            session_outcome(&go_away(go_away::Reason::Draining, hint), None),
            SessionOutcome::Failed { retry_after: hint }
        );
        assert_eq!(
            session_outcome(
                &go_away(go_away::Reason::Revoked, None),
                Some(Duration::from_secs(60))
            ),
            SessionOutcome::Failed { retry_after: None }
        );
        assert_eq!(
            session_outcome(&Err(LinkError::Closed), None),
            SessionOutcome::Failed { retry_after: None }
        );
    }

    /// A refusal's `retry-after` (the hub's handshake turns all taken, its database unavailable) is a floor
    /// on the next delay, before Welcome and after; a refusal without one is a plain failure or end.
    #[test]
    fn a_refusal_with_retry_after_is_a_failure_whose_hint_is_a_floor() {
        let refused = |hint: Option<&str>| {
            let mut status = tonic::Status::unavailable("too many handshakes at once");
            if let Some(hint) = hint {
                status
                    .metadata_mut()
                    .insert("retry-after", hint.parse().unwrap());
            }
            Err(LinkError::Refused(status))
        };
        let hint = Some(Duration::from_secs(7));
        for lasted in [None, Some(Duration::from_secs(120))] {
            assert_eq!(
                session_outcome(&refused(Some("7")), lasted),
                SessionOutcome::Failed { retry_after: hint }
            );
        }
        assert_eq!(
            session_outcome(&refused(None), None),
            SessionOutcome::Failed { retry_after: None }
        );
        let mut backoff = Backoff::reconnect();
        let delay =
            backoff.delay_after(&mut rand::rng(), session_outcome(&refused(Some("7")), None));
        assert!(
            delay >= Duration::from_secs(7) && delay <= Duration::from_millis(8400),
            "{delay:?}"
        );
    }

    #[test]
    fn a_broken_established_stream_reports_how_long_it_ran() {
        let lasted = Duration::from_secs(42);
        assert_eq!(
            session_outcome(&Err(LinkError::Closed), Some(lasted)),
            SessionOutcome::Ended { lasted }
        );
        assert_eq!(
            session_outcome(&Ok(()), Some(lasted)),
            SessionOutcome::Ended { lasted }
        );
    }
}
