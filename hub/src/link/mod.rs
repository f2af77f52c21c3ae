//! The hub side of `SpokeService`: accepts spoke streams, authenticates the cluster, negotiates the protocol, runs the sequenced session against the store, and routes desired-state and command signals to the replica holding each stream.
//!
//! ```text
//!   store.listen(commands, desired, revoked) ──► router ──► Registry ──► session (one per stream)
//!   API writes (any replica) ── notify ───────┘                         │
//!                                                   Connect stream ◄─────┘
//! ```

mod convert;
mod group;
mod heartbeats;
pub mod live;
mod session;
mod turns;
mod watch;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edgecd_core::ClusterName;
use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_proto::v1::spoke_service_server::SpokeService;
use edgecd_proto::v1::{
    EnrollRequest, EnrollResponse, HubMessage, RenewCertificateRequest, SpokeMessage,
};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub(crate) use self::convert::command as command_message;
pub use self::convert::{CommandPayload, command_payload_kind};
pub use self::heartbeats::HeartbeatBook;
pub use self::session::SessionError;
use crate::store::{COMMANDS_CHANNEL, ListenEvent, Store};

pub use crate::store::{APPS_CHANNEL, CLUSTERS_CHANNEL, DESIRED_CHANNEL, REVOKED_CHANNEL};

/// Counters of the link, exported by the hub's `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct LinkCounters {
    /// Status messages stored.
    pub ingested: prometheus_client::metrics::counter::Counter,
    /// Application status reports written (newer than the stored status).
    pub status_reports: prometheus_client::metrics::counter::Counter,
    /// Commands acknowledged by spokes.
    pub commands_delivered: prometheus_client::metrics::counter::Counter,
    /// Reports of edge-created apps refused (project unknown or not allowing the cluster).
    pub edge_apps_refused: prometheus_client::metrics::counter::Counter,
    /// New streams refused because too many handshakes ran at once (`LinkConfig::max_handshakes`).
    pub handshakes_deferred: prometheus_client::metrics::counter::Counter,
    /// Store calls of a session tried again after a transient database error (rather than ending the stream).
    pub store_retries: prometheus_client::metrics::counter::Counter,
    /// Statements that recorded heartbeats of many sessions together ([`HeartbeatBook`]).
    pub heartbeat_writes: prometheus_client::metrics::counter::Counter,
    /// Groups of status batches stored together by the replica's writers ([`group`]): with `ingested`, the
    /// mean group size.
    pub status_groups: prometheus_client::metrics::counter::Counter,
}

/// How the hub learns which cluster is at the other end of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityMode {
    /// Trust the name in `Hello`. Only for tests and local development
    /// without TLS; never the default of `edgecd-hub serve`.
    TrustHelloInsecure,
    /// Take the identity from the verified client certificate only (mTLS):
    /// a known, live serial issued to a registered cluster; a `Hello`
    /// naming another cluster is refused. Needs [`SpokeLink::with_pki`].
    ClientCertificate,
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
    /// A connected cluster silent for this long is marked Stale.
    pub stale_after: Duration,
    pub digest_interval: Duration,
    /// Maximum unacknowledged sequenced messages per direction.
    pub window: u32,
    /// How long a new stream may take to send Hello.
    pub hello_timeout: Duration,
    /// Streams whose handshake (Hello to Welcome, a few database round trips each) runs at once; more wait
    /// up to `hello_timeout` for a turn, then are refused with UNAVAILABLE and a `retry-after` of how long
    /// those still waiting will take at the measured pace, jittered ([`turns`]). In a reconnect storm this
    /// keeps the handshakes from starving each other of database connections.
    pub max_handshakes: usize,
    pub identity: IdentityMode,
    pub counters: LinkCounters,
    /// How long after its expiry a certificate may still be renewed through `RenewCertificate` (a spoke that
    /// was offline longer than its certificate's remaining life); beyond it the spoke needs a new bootstrap
    /// token. Zero disables the grace (only unexpired certificates renew).
    pub renew_grace: Duration,
}

/// Default of [`LinkConfig::renew_grace`]: seven days.
pub const DEFAULT_RENEW_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

impl LinkConfig {
    pub fn protocol() -> ProtocolVersion {
        ProtocolVersion {
            major: edgecd_proto::PROTOCOL_MAJOR,
            minor: edgecd_proto::PROTOCOL_MINOR,
        }
    }

    /// How long one turn of a session waits out transient database errors before it ends its stream: two
    /// heartbeat intervals, so that the hub is never silent on a stream for long (no heartbeat goes out
    /// while a turn waits); a spoke that watches for three silent intervals, as the faults harness's
    /// simulated spokes do, does not give up on the hub first.
    pub fn store_patience(&self) -> Duration {
        self.heartbeat_interval * 2
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            replica: format!("hub-{}", uuid::Uuid::new_v4().simple()),
            hub_version: env!("CARGO_PKG_VERSION").to_owned(),
            // Every v1 capability; terminate is carried out by spokes that offer it.
            capabilities: Capabilities::all_v1(),
            required: vec![edgecd_core::link::capabilities::names::STATUS_DELTAS],
            heartbeat_interval: Duration::from_secs(10),
            stale_after: Duration::from_secs(30),
            digest_interval: Duration::from_secs(300),
            window: 256,
            hello_timeout: Duration::from_secs(10),
            max_handshakes: 128,
            identity: IdentityMode::TrustHelloInsecure,
            counters: LinkCounters::default(),
            renew_grace: DEFAULT_RENEW_GRACE,
        }
    }
}

/// What a session is told by the rest of the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    DesiredChanged,
    CommandsPending,
    /// Projects, application sets or the cluster's labels changed: re-check policies, sets and credentials.
    SettingsChanged,
    /// Notifications may have been missed: check everything.
    Resync,
    /// Another stream of the same cluster took over.
    Replaced,
    Revoked,
    /// This replica is shutting down: send `GoAway` (draining) and end.
    Drain(Duration),
}

/// The signals a session has not handled yet, kept as a set: a burst of one kind (commands issued one after
/// another) never crowds out another (a revocation, a project edit), as it could in a bounded queue of signals.
/// The session's channel only wakes it; it then takes them all ([`Pending::take`]).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    bits: std::sync::atomic::AtomicU8,
    drain_ms: std::sync::atomic::AtomicU64,
}

impl Pending {
    const DESIRED: u8 = 1;
    const COMMANDS: u8 = 1 << 1;
    const SETTINGS: u8 = 1 << 2;
    const RESYNC: u8 = 1 << 3;
    const REPLACED: u8 = 1 << 4;
    const REVOKED: u8 = 1 << 5;
    const DRAIN: u8 = 1 << 6;

    pub(crate) fn add(&self, signal: Signal) {
        use std::sync::atomic::Ordering;
        let bit = match signal {
            Signal::DesiredChanged => Self::DESIRED,
            Signal::CommandsPending => Self::COMMANDS,
            Signal::SettingsChanged => Self::SETTINGS,
            Signal::Resync => Self::RESYNC,
            Signal::Replaced => Self::REPLACED,
            Signal::Revoked => Self::REVOKED,
            Signal::Drain(retry_after) => {
                let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                self.drain_ms.store(ms, Ordering::Release);
                Self::DRAIN
            }
        };
        self.bits.fetch_or(bit, Ordering::AcqRel);
    }

    /// Takes every pending signal, those that end the session first (revoked, replaced, draining).
    pub(crate) fn take(&self) -> Vec<Signal> {
        use std::sync::atomic::Ordering;
        let bits = self.bits.swap(0, Ordering::AcqRel);
        let drain = Duration::from_millis(self.drain_ms.load(Ordering::Acquire));
        [
            (Self::REVOKED, Signal::Revoked),
            (Self::REPLACED, Signal::Replaced),
            (Self::DRAIN, Signal::Drain(drain)),
            (Self::RESYNC, Signal::Resync),
            (Self::DESIRED, Signal::DesiredChanged),
            (Self::COMMANDS, Signal::CommandsPending),
            (Self::SETTINGS, Signal::SettingsChanged),
        ]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, signal)| signal)
        .collect()
    }
}

/// The sessions held by this replica, by cluster.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Held>>,
    next_id: Mutex<u64>,
    heartbeats: Arc<HeartbeatBook>,
    settings: Arc<watch::SettingsCache>,
    statuses: Arc<group::StatusGroups>,
}

/// A stream's place in the [`Registry`], given up when dropped.
struct Registration {
    registry: Arc<Registry>,
    cluster: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(&self.cluster, self.id);
    }
}

/// One stream held by this replica: its registration, its signals, its live sessions.
#[derive(Debug)]
struct Held {
    id: u64,
    /// Wakes the session (capacity one: a full channel holds a wake-up it has not taken yet).
    wake: mpsc::Sender<()>,
    pending: Arc<Pending>,
    live: mpsc::Sender<live::LiveControl>,
}

impl Held {
    fn signal(&self, signal: Signal) {
        self.pending.add(signal);
        let _ = self.wake.try_send(());
    }
}

impl Registry {
    /// Registers a new session, telling an older one of the same cluster to go.
    fn register(
        &self,
        cluster: &str,
        wake: mpsc::Sender<()>,
        pending: Arc<Pending>,
        live: mpsc::Sender<live::LiveControl>,
    ) -> u64 {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(PoisonError::into_inner);
            *next += 1;
            *next
        };
        let old = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                cluster.to_owned(),
                Held {
                    id,
                    wake,
                    pending,
                    live,
                },
            );
        if let Some(old) = old {
            old.signal(Signal::Replaced);
        }
        id
    }

    /// Opens a live session on the stream of `cluster`, if this replica holds it.
    pub fn open_live(
        &self,
        cluster: &str,
        request: live::LiveRequest,
    ) -> Result<live::LiveStream, live::LiveError> {
        let control = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cluster)
            .map(|held| held.live.clone())
            .ok_or_else(|| live::LiveError::NotHere {
                cluster: cluster.to_owned(),
            })?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (reply, events) = mpsc::unbounded_channel();
        control
            .try_send(live::LiveControl::Open {
                id: id.clone(),
                request: Box::new(request),
                reply,
            })
            .map_err(|_| live::LiveError::NotHere {
                cluster: cluster.to_owned(),
            })?;
        Ok(live::LiveStream::new(id, events, control))
    }

    fn unregister(&self, cluster: &str, id: u64) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(cluster).is_some_and(|held| held.id == id) {
            sessions.remove(cluster);
        }
    }

    fn signal(&self, cluster: &str, signal: Signal) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = sessions.get(cluster) {
            held.signal(signal);
        }
    }

    fn signal_all(&self, signal: Signal) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        for held in sessions.values() {
            held.signal(signal);
        }
    }

    /// Clusters with a stream on this replica.
    pub fn connected(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }
}

/// The `SpokeService` implementation.
#[derive(Debug, Clone)]
pub struct SpokeLink {
    config: Arc<LinkConfig>,
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    pki: Option<Arc<crate::pki::Pki>>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// Turns for handshakes (`LinkConfig::max_handshakes`).
    handshakes: Arc<turns::HandshakeTurns>,
}

impl SpokeLink {
    pub fn new(config: LinkConfig, store: Arc<dyn Store>) -> Self {
        Self {
            handshakes: turns::HandshakeTurns::new(config.max_handshakes),
            config: Arc::new(config),
            store,
            registry: Arc::default(),
            pki: None,
            draining: Arc::default(),
        }
    }

    /// Enables `Enroll` and certificate renewal, and takes spoke identities
    /// from client certificates ([`IdentityMode::ClientCertificate`]).
    pub fn with_pki(mut self, pki: Arc<crate::pki::Pki>) -> Self {
        Arc::make_mut(&mut self.config).identity = IdentityMode::ClientCertificate;
        self.pki = Some(pki);
        self
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Routes store notifications (from any replica) to the sessions held
    /// here, for as long as the hub runs; after a gap in listening every
    /// session re-checks (`Resync`).
    pub async fn route_notifications(&self) {
        const CHANNELS: &[&str] = &[
            COMMANDS_CHANNEL,
            DESIRED_CHANNEL,
            REVOKED_CHANNEL,
            crate::pki::repos::REPO_CREDENTIALS_CHANNEL,
        ];
        let mut events = crate::store::follow(Arc::clone(&self.store), CHANNELS, "link router");
        while let Some(event) = events.next().await {
            match event {
                ListenEvent::Notification { channel, payload } => {
                    let signal = match channel.as_str() {
                        COMMANDS_CHANNEL => Signal::CommandsPending,
                        DESIRED_CHANNEL => Signal::DesiredChanged,
                        REVOKED_CHANNEL => Signal::Revoked,
                        crate::pki::repos::REPO_CREDENTIALS_CHANNEL => {
                            // Any cluster may be concerned: each session re-checks.
                            self.registry.signal_all(Signal::Resync);
                            continue;
                        }
                        _ => continue,
                    };
                    self.registry.signal(&payload, signal);
                }
                ListenEvent::Lagged => self.registry.signal_all(Signal::Resync),
            }
        }
    }

    /// Tells every spoke connected here to go elsewhere (`GoAway`, reason
    /// draining) and to come back no sooner than `retry_after`.
    pub fn drain(&self, retry_after: Duration) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.registry.signal_all(Signal::Drain(retry_after));
    }

    /// Spawns the sweep of silent clusters: every `stale_after`, clusters
    /// recorded Connected or Stale whose last heartbeat is older than twice
    /// `stale_after` (and three heartbeats) are marked Disconnected. A live stream refreshes its
    /// cluster's heartbeat on every replica's behalf, so what the sweep finds
    /// was held by a replica that crashed or lost its database: without it
    /// such a cluster stayed Connected (and its apps' last status trusted)
    /// until its spoke came back, across hub restarts (invariant 5).
    pub fn spawn_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let period = self.config.stale_after.max(Duration::from_millis(100));
        // Well past what a live session tolerates before it marks its own
        // cluster Stale, and past several heartbeats.
        let silence = period
            .saturating_mul(2)
            .max(self.config.heartbeat_interval.saturating_mul(3));
        tokio::spawn(
            async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let cutoff = time::OffsetDateTime::now_utc() - silence;
                    match store.disconnect_silent_clusters(cutoff).await {
                        Ok(clusters) => {
                            for cluster in clusters {
                                tracing::warn!(%cluster, silent_for = ?silence, "No replica holds this cluster's stream and it has been silent; marking it Disconnected.");
                                if let Err(error) = store.notify(CLUSTERS_CHANNEL, &cluster).await {
                                    tracing::debug!(%error, "Cannot announce a change.");
                                }
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "Cannot sweep silent clusters; retrying.");
                        }
                    }
                }
            }
            .instrument(tracing::info_span!("link_sweeper")),
        )
    }

    /// Spawns the replica's watch ([`watch`]): once a heartbeat, one read finds what the sessions held here
    /// would otherwise each poll for (commands to deliver, edited projects and application sets, relabelled
    /// clusters) and wakes the sessions it concerns; the same pass answers commands whose deadline passed.
    pub fn spawn_watch(&self) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let registry = Arc::clone(&self.registry);
        let period = self
            .config
            .heartbeat_interval
            .max(Duration::from_millis(100));
        tokio::spawn(
            async move {
                let mut seen = watch::Watch::default();
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let now = time::OffsetDateTime::now_utc();
                    match store.expire_commands(now).await {
                        Ok(0) => {}
                        Ok(expired) => tracing::info!(expired, "Commands expired undelivered."),
                        Err(error) => tracing::debug!(%error, "Cannot expire overdue commands; retrying on the next pass."),
                    }
                    let wake = match store.link_watch(now).await {
                        Ok(read) => seen.read(read),
                        Err(error) => {
                            tracing::warn!(%error, "Cannot read what the link watches; retrying on the next pass.");
                            continue;
                        }
                    };
                    // Before the wake-up: what woken sessions read is at least as new as the mark.
                    if wake.settings_everywhere
                        && let Err(error) = registry.settings.refresh(store.as_ref()).await
                    {
                        tracing::warn!(%error, "Cannot read the projects and application sets; handshakes read them themselves.");
                        seen.forget_settings();
                    }
                    for cluster in &wake.commands {
                        registry.signal(cluster, Signal::CommandsPending);
                    }
                    if wake.settings_everywhere {
                        registry.signal_all(Signal::SettingsChanged);
                    }
                    for cluster in &wake.settings {
                        registry.signal(cluster, Signal::SettingsChanged);
                    }
                }
            }
            .instrument(tracing::info_span!("link_watch")),
        )
    }

    /// Spawns [`route_notifications`](Self::route_notifications).
    pub fn spawn_router(&self) -> tokio::task::JoinHandle<()> {
        let link = self.clone();
        tokio::spawn(
            async move { link.route_notifications().await }
                .instrument(tracing::info_span!("link_router")),
        )
    }
}

impl SpokeLink {
    /// The cluster identity of a stream's verified client certificate.
    async fn authorize<T>(&self, request: &Request<T>) -> Result<crate::pki::CertIdentity, Status> {
        let Some(pki) = &self.pki else {
            return Err(Status::failed_precondition(
                "this hub requires client certificates but has no certificate authority",
            ));
        };
        let chain = request.peer_certs();
        pki.authorize_peer(chain.as_deref().map(Vec::as_slice))
            .await
            .map_err(|error| {
                tracing::warn!(%error, "Refusing a spoke stream.");
                error.into_status()
            })
    }
}

impl SpokeLink {
    /// Audits an attempt to obtain a certificate (`Enroll`, `RenewCertificate`)
    /// by `actor` from `source`, for `cluster` when the request names one
    /// whatever its outcome (else the issued certificate's), and answers it.
    async fn audit_issuance(
        &self,
        action: &str,
        actor: String,
        cluster: Option<String>,
        source: String,
        result: Result<crate::pki::IssuedClient, crate::pki::PkiError>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let cluster = cluster.or_else(|| result.as_ref().ok().map(|i| i.cluster.clone()));
        let entry = crate::store::AuditEntry {
            actor,
            action: action.into(),
            target: cluster.map(|c| format!("cluster:{c}")).unwrap_or_default(),
            source,
            result: if result.is_ok() { "ok" } else { "refused" }.into(),
            message: match &result {
                Ok(issued) => format!("certificate {}", issued.serial),
                Err(error) => error.to_string(),
            },
            time: time::OffsetDateTime::now_utc(),
        };
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::warn!(%error, "Cannot write the audit entry.");
        }
        match result {
            Ok(issued) => Ok(Response::new(EnrollResponse {
                cluster_name: issued.cluster,
                certificate_pem: issued.certificate_pem,
                ca_bundle_pem: issued.ca_pem,
                not_after: Some(edgecd_proto::convert::timestamp(issued.not_after)),
            })),
            Err(error) => {
                tracing::warn!(%error, action, "Certificate request refused.");
                Err(error.into_status())
            }
        }
    }
}

type HubStream = Pin<Box<dyn Stream<Item = Result<HubMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SpokeService for SpokeLink {
    #[tracing::instrument(skip_all, fields(peer = ?request.remote_addr()))]
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let Some(pki) = &self.pki else {
            return Err(Status::unimplemented(
                "enrollment is not enabled on this hub (no certificate authority configured)",
            ));
        };
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let request = request.into_inner();
        // The token id (never its secret) names the actor in the audit log.
        let token_id = request
            .bootstrap_token
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .take(16)
            .collect::<String>();
        let peer_ip = peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
        let result = pki
            .enroll_from(peer_ip, &request.bootstrap_token, &request.csr_pem)
            .await;
        self.audit_issuance(
            "Enroll",
            format!("bootstrap-token:{token_id}"),
            None,
            peer,
            result,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(peer = ?request.remote_addr()))]
    async fn renew_certificate(
        &self,
        request: Request<RenewCertificateRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let Some(pki) = &self.pki else {
            return Err(Status::unimplemented(
                "certificate renewal is not enabled on this hub (no certificate authority configured)",
            ));
        };
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let request = request.into_inner();
        let result = pki
            .renew_expired(
                &request.certificate_pem,
                &request.csr_pem,
                self.config.renew_grace,
            )
            .await;
        // The presented certificate names the actor (its cluster and serial), whatever the outcome.
        let presented = {
            use rustls_pki_types::pem::PemObject as _;
            rustls_pki_types::CertificateDer::from_pem_slice(request.certificate_pem.as_bytes())
                .ok()
                .and_then(|der| crate::pki::cert_identity(der.as_ref()).ok())
        };
        self.audit_issuance(
            "RenewCertificate",
            presented.as_ref().map_or_else(
                || "certificate:unreadable".to_owned(),
                |c| format!("certificate:{}", c.serial),
            ),
            presented.map(|c| c.cluster),
            peer,
            result,
        )
        .await
    }

    type ConnectStream = HubStream;

    #[tracing::instrument(skip_all, fields(peer = ?request.remote_addr(), cluster))]
    async fn connect(
        &self,
        request: Request<Streaming<SpokeMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        if self.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Status::unavailable(
                "this hub replica is shutting down; connect to another",
            ));
        }
        let certificate = match self.config.identity {
            IdentityMode::TrustHelloInsecure => None,
            IdentityMode::ClientCertificate => Some(self.authorize(&request).await?),
        };
        let mut inbound = request.into_inner();
        let hello = session::read_hello(&mut inbound, self.config.hello_timeout).await?;
        let cluster = match &certificate {
            None => ClusterName::parse(hello.cluster_name.clone())
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
            Some(identity) => {
                if !hello.cluster_name.is_empty() && hello.cluster_name != identity.cluster {
                    tracing::warn!(certificate = %identity.cluster, hello = %hello.cluster_name, "Refusing a spoke whose Hello names another cluster.");
                    return Err(Status::permission_denied(format!(
                        "the client certificate identifies cluster {} but Hello names cluster {}",
                        identity.cluster, hello.cluster_name
                    )));
                }
                ClusterName::parse(identity.cluster.clone())
                    .map_err(|e| Status::permission_denied(e.to_string()))?
            }
        };
        tracing::Span::current().record("cluster", cluster.as_str());
        // A turn for the handshake; held until the session has sent Welcome.
        let turn = match self.handshakes.take(self.config.hello_timeout).await {
            Ok(turn) => turn,
            Err(after) => {
                self.config.counters.handshakes_deferred.inc();
                // Told when those already waiting will have had their turns: a storm comes back spread out.
                return Err(crate::retry::with_retry_after(
                    Status::unavailable("too many spokes are connecting at once; retry later"),
                    after,
                ));
            }
        };
        let (tx, rx) = mpsc::channel(self.config.window as usize + 16);
        let (wake, signals) = mpsc::channel(1);
        let pending = Arc::new(Pending::default());
        let (live_tx, live_rx) = mpsc::channel(256);
        // Registered before the link opens: what changes for the cluster after the opening's read (a
        // command, a desired change, a revocation) is signalled to this session.
        // Unregistered when dropped: by an early return below, by the call being dropped (a spoke gone while
        // its handshake waited for the database), or when the session ends.
        let registration = Registration {
            id: self
                .registry
                .register(cluster.as_str(), wake, Arc::clone(&pending), live_tx),
            registry: Arc::clone(&self.registry),
            cluster: cluster.as_str().to_owned(),
        };
        if let (Some(pki), Some(identity)) = (&self.pki, &certificate) {
            // A revocation of the certificate between the check above and the registration would have found
            // no session to end: check once more.
            if let Err(error) = pki.check_still_valid(identity).await {
                return Err(error.into_status());
            }
        }
        let mut context = session::Context {
            config: Arc::clone(&self.config),
            store: Arc::clone(&self.store),
            cluster: cluster.clone(),
            pki: self.pki.clone(),
            certificate_not_after: certificate.as_ref().map(|c| c.not_after),
            heartbeats: Arc::clone(&self.registry.heartbeats),
            statuses: Arc::clone(&self.registry.statuses),
            settings: Arc::clone(&self.registry.settings),
            accepted_record: None,
            pending,
            stream: uuid::Uuid::new_v4().simple().to_string(),
        };
        // The cluster must be registered at the hub and not revoked; the handshake's store work is one
        // transaction.
        let opening = match session::open(&mut context, &hello, &tx, turn).await {
            Ok(opening) => opening,
            Err(refusal) => {
                drop(registration);
                return match refusal {
                    session::Refusal::Status(status) => Err(status),
                    // The GoAway is queued: the stream ends after it.
                    session::Refusal::GoneAway => {
                        drop(tx);
                        Ok(Response::new(Box::pin(
                            ReceiverStream::new(rx).map(|item| item.map(|message| *message)),
                        )))
                    }
                };
            }
        };
        tokio::spawn(
            async move {
                let result = session::run(
                    &context,
                    hello,
                    opening,
                    inbound,
                    signals,
                    live_rx,
                    tx.clone(),
                )
                .await;
                drop(registration);
                // A no-op when a newer stream owns the cluster's connection record.
                session::disconnected(&context).await;
                if let Err(error) = result {
                    tracing::info!(%error, "Spoke session ended.");
                    let _ = tx.send(Err(error.into_status())).await;
                }
            }
            .in_current_span(),
        );
        Ok(Response::new(Box::pin(
            ReceiverStream::new(rx).map(|item| item.map(|message| *message)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of one signal (commands issued one after another) never crowds out another: a revocation or a
    /// project edit behind it still reaches the session, which a bounded queue of signals dropped.
    #[tokio::test]
    async fn no_signal_crowds_out_another() {
        let registry = Registry::default();
        let (wake, mut woken) = mpsc::channel(1);
        let pending = Arc::new(Pending::default());
        let (live, _live) = mpsc::channel(1);
        registry.register("edge-1", wake, Arc::clone(&pending), live);
        for _ in 0..20 {
            registry.signal("edge-1", Signal::CommandsPending);
        }
        registry.signal("edge-1", Signal::SettingsChanged);
        registry.signal_all(Signal::Revoked);
        assert_eq!(woken.recv().await, Some(()));
        assert!(
            woken.try_recv().is_err(),
            "one wake-up, however many signals"
        );
        assert_eq!(
            pending.take(),
            [
                Signal::Revoked,
                Signal::CommandsPending,
                Signal::SettingsChanged
            ],
            "the ones that end the session first"
        );
        assert!(pending.take().is_empty(), "taken once");
        registry.signal("edge-1", Signal::Drain(Duration::from_secs(7)));
        assert_eq!(pending.take(), [Signal::Drain(Duration::from_secs(7))]);
    }
}
