//! Hub-local records read from and written to the store; domain types come from `edgecd-core`, and no sqlx type appears here.

use edgecd_telemetry::TraceContext;
use std::collections::BTreeMap;
use std::fmt;

use edgecd_core::app::{AppOrigin, ApplicationSpec, ApplicationStatus, OperationPhase, OwnerRef};
use edgecd_core::project::ProjectSpec;
use edgecd_core::selector::LabelSelector;
use edgecd_core::{AppRef, Health, SyncStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Labels or annotations.
pub type Labels = BTreeMap<String, String>;

// === Projects ===

/// A project as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub name: String,
    pub spec: ProjectSpec,
    /// Bumped on every update; updates name the version they expect.
    pub version: u64,
    pub created_at: OffsetDateTime,
}

// === Clusters ===

/// What the spoke reported about its software at the last handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterVersions {
    pub spoke_version: String,
    pub kubernetes_version: String,
    pub protocol_major: u32,
    pub protocol_minor: u32,
    pub capabilities: Vec<String>,
}

/// The kind of a cluster's connection state (see `edgecd_core::ConnectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConnectionKind {
    Pending,
    Connected,
    Stale,
    Disconnected,
    Revoked,
}

impl ConnectionKind {
    /// Whether the hub hears from the cluster now: only then is what its
    /// apps last reported shown, counted and filtered as their health
    /// (invariant 5); otherwise they count as Unknown.
    pub fn reachable(self) -> bool {
        matches!(self, Self::Connected)
    }
}

/// A cluster's connection as last recorded by the hub replica holding (or
/// last holding) its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConnection {
    pub state: ConnectionKind,
    pub since: Option<OffsetDateTime>,
    pub last_heartbeat: Option<OffsetDateTime>,
    /// Name of the hub replica holding the stream (empty when none).
    pub hub_replica: String,
}

/// A spoke stream heard at `at` (a heartbeat), for [`crate::store::Store::record_heartbeats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBeat {
    pub cluster: String,
    /// The stream's id, as given to `Store::open_link`.
    pub stream: String,
    pub at: OffsetDateTime,
}

/// What [`crate::store::Store::record_heartbeats`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatsRecorded {
    /// Clusters updated.
    pub written: u64,
    /// Streams whose heartbeat was not written because the cluster's connection record is no longer
    /// theirs (a newer stream's handshake took it, or a disconnect gave it up).
    pub disowned: Vec<String>,
}

/// What a hub replica reads once a heartbeat on behalf of every session it holds
/// ([`crate::store::Store::link_watch`]): instead of each session polling, the replica wakes those it concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkWatch {
    /// Clusters with a command to deliver: pending, or delivered without a result, before its deadline.
    pub clusters_with_commands: Vec<String>,
    /// Changes whenever a project or an application set is created, edited or deleted.
    pub settings: SettingsMark,
    /// Every cluster's version: bumped when its labels or annotations change or it is revoked.
    pub cluster_versions: Vec<(String, u64)>,
}

/// A mark of the projects and application sets: their counts, the sums of their versions (each edit bumps
/// one) and the sums of their creation times (a set deleted and another created keep the count and may keep
/// the versions' sum, not that one unless both were created in the same millisecond; no clock need agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsMark {
    pub projects: (i64, i64, i64),
    pub appsets: (i64, i64, i64),
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// The API server URL the spoke reports; informational, never dialled.
    pub server_url: String,
    pub versions: ClusterVersions,
    pub connection: ClusterConnection,
    pub certificate_not_after: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    /// Bumped on every metadata update (labels, annotations, revocation).
    pub version: u64,
}

/// A cluster to register.
#[derive(Debug, Clone, Default)]
pub struct NewCluster {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub server_url: String,
}

/// Durable link state of one cluster: where the spoke→hub stream stands and
/// the version of the cluster's desired application set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkState {
    /// Epoch of the spoke process whose messages were last processed.
    pub spoke_epoch: String,
    /// Highest spoke sequence number durably processed in that epoch.
    pub spoke_seq: u64,
    /// Version of the desired set; bumped by every managed-app change.
    pub desired_version: u64,
}

/// What a spoke's handshake records ([`Store::open_link`](super::Store::open_link)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHello {
    /// The API server URL the spoke reports: recorded unless the cluster has one (the operator's URL is what
    /// Argo CD `destination.server` values name) or another cluster has this one (a URL names one cluster).
    pub server_url: String,
    pub versions: ClusterVersions,
    /// When the stream's client certificate expires, if it has one.
    pub certificate_not_after: Option<OffsetDateTime>,
    /// The connection state the handshake leaves.
    pub connection: ClusterConnection,
}

/// What a handshake's one transaction found ([`Store::open_link`](super::Store::open_link)).
#[derive(Debug, Clone, PartialEq)]
pub enum LinkOpened {
    /// The stream owns the cluster's link and connection record now.
    Open(Box<OpenLink>),
    /// The cluster is revoked: nothing was written.
    Revoked,
}

/// A link a stream has just opened.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenLink {
    /// Where the spoke's messages stand (its resume point) and the desired set's version, as claimed.
    pub state: LinkState,
    /// The cluster's record with the handshake written into it.
    pub cluster: ClusterRecord,
    /// Whether the cluster had commands to deliver (pending, or delivered and unanswered) when the link opened:
    /// without any, the session reads none until it is told of one.
    pub commands_open: bool,
}

/// Position of a sequenced spoke message: `(epoch, seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpokeSeq {
    pub epoch: String,
    pub seq: u64,
    /// The stream the message came on (the id its handshake gave `Store::open_link`): the message is
    /// stored only while that stream owns the cluster's link. `None` stores it whichever stream does.
    pub stream: Option<String>,
}

// === Applications ===

/// A full application: metadata, spec and (if any) the last reported status.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRecord {
    pub uid: String,
    pub project: String,
    pub name: String,
    pub spec: ApplicationSpec,
    pub labels: Labels,
    pub origin: AppOrigin,
    pub owner: Option<OwnerRef>,
    pub spec_version: u64,
    /// Destination cluster name (the spoke reporting it, for autonomous apps).
    pub cluster: String,
    pub namespace: String,
    /// The cluster's desired-set version at which this app last changed (0
    /// for autonomous apps, which are not part of the desired set).
    pub desired_version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Last reported status, if any was reported.
    pub status: Option<ApplicationStatus>,
}

impl AppRecord {
    /// The app's `project/name` identity.
    pub fn app_ref(&self) -> Result<AppRef, edgecd_core::NameError> {
        AppRef::parse(&self.project, &self.name)
    }
}

/// A managed application to create.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub project: String,
    pub name: String,
    pub spec: ApplicationSpec,
    pub labels: Labels,
    pub owner: Option<OwnerRef>,
}

/// A managed app for a bulk import, with an optional initial status.
#[derive(Debug, Clone)]
pub struct ImportedApp {
    pub app: NewApp,
    pub status: Option<ApplicationStatus>,
}

/// One row of an application list: indexed columns only, no status JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSummary {
    pub project: String,
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    pub repo_url: String,
    pub path: String,
    pub target_revision: String,
    pub sync: SyncStatus,
    pub health: Health,
    pub revision: String,
    pub operation_phase: Option<OperationPhase>,
    pub labels: Labels,
    pub updated_at: OffsetDateTime,
    pub origin: AppOrigin,
    pub owner: Option<OwnerRef>,
    /// Connection state of the destination cluster; `None` when the cluster
    /// is not registered.
    pub cluster_connection: Option<ConnectionKind>,
    pub spec_version: u64,
    pub automated: bool,
    pub error_conditions: u32,
    pub status_version: u64,
}

impl AppSummary {
    /// The health the hub counts and filters by: the reported one while the
    /// app's cluster is connected (or is no registered cluster: the hub's own
    /// app-of-apps parents), Unknown while it is pending, stale, disconnected
    /// or revoked. `health` keeps the last report, shown beside the cluster's
    /// connection state.
    pub fn health_shown(&self) -> Health {
        match self.cluster_connection {
            Some(connection) if !connection.reachable() => Health::Unknown,
            _ => self.health,
        }
    }
}

/// One change of a cluster's desired set.
#[derive(Debug, Clone, PartialEq)]
pub enum DesiredChange {
    /// The app was created or changed (or moved to this cluster).
    Upsert(Box<DesiredApp>),
    /// The app was deleted (or moved away from this cluster).
    Delete {
        project: String,
        name: String,
        uid: String,
        desired_version: u64,
        /// Deleted without cascade: the spoke keeps the app's resources.
        keep_resources: bool,
    },
}

impl DesiredChange {
    pub fn desired_version(&self) -> u64 {
        match self {
            Self::Upsert(app) => app.desired_version,
            Self::Delete {
                desired_version, ..
            } => *desired_version,
        }
    }
}

/// A managed app as the spoke receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredApp {
    pub project: String,
    pub name: String,
    pub uid: String,
    pub spec: ApplicationSpec,
    pub labels: Labels,
    pub spec_version: u64,
    pub desired_version: u64,
}

/// Changes of a cluster's desired set after some version.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredChanges {
    /// The cluster's current desired-set version.
    pub version: u64,
    /// Changes with a version above the requested one, in version order.
    pub changes: Vec<DesiredChange>,
}

// === Status ingest ===

/// Spec and metadata of an app created at the edge, reported with its status.
#[derive(Debug, Clone, PartialEq)]
pub struct AutonomousApp {
    pub spec: ApplicationSpec,
    pub labels: Labels,
    pub owner: Option<OwnerRef>,
}

/// One app's status as reported by a spoke.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    pub project: String,
    pub name: String,
    pub status: ApplicationStatus,
    /// `Some` for autonomous apps (origin Autonomous), `None` for managed ones.
    pub autonomous: Option<AutonomousApp>,
}

/// Which part of a full snapshot a batch is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPart {
    pub snapshot_id: String,
    /// The last part: apps of the cluster not reported in any part are gone.
    pub last: bool,
}

/// One `AppStatusBatch` (plus `AppRemoved` messages, which are folded in).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusBatch {
    pub reports: Vec<StatusReport>,
    /// Apps the spoke says are gone (`AppRemoved`).
    pub removed: Vec<(String, String)>,
    pub snapshot: Option<SnapshotPart>,
}

/// One status batch of a group stored together ([`Store::ingest_status_group`](super::Store::ingest_status_group)).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusWrite {
    pub cluster: String,
    pub at: SpokeSeq,
    pub batch: StatusBatch,
}

impl StatusWrite {
    /// Whether it can share statements with others of its group: managed apps' reports only, from a stream
    /// (fenced), with nothing removed and no snapshot. The others are stored one by one.
    pub fn groupable(&self) -> bool {
        self.at.stream.is_some()
            && self.batch.snapshot.is_none()
            && self.batch.removed.is_empty()
            && self.batch.reports.iter().all(|r| r.autonomous.is_none())
    }
}

/// What one ingest call did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// The `(epoch, seq)` was already processed: nothing was written.
    pub duplicate: bool,
    /// Reports stored.
    pub applied: u32,
    /// Reports ignored because their status version was not newer.
    pub stale: u32,
    /// Autonomous apps created.
    pub created: u32,
    /// Reports refused: unknown app, app of another cluster, autonomous report
    /// for a managed app, or unknown project.
    pub rejected: u32,
    /// Autonomous apps deleted (removed, or missing from a full snapshot).
    pub deleted: u32,
    /// Managed apps whose status was reset because a full snapshot lacked them.
    pub reset: u32,
    /// Stored in one transaction with other batches ([`Store::ingest_status_group`](super::Store::ingest_status_group)).
    pub shared: bool,
}

// === Fleet queries ===

/// Filters of an application list or count; empty fields filter nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AppFilter {
    pub projects: Vec<String>,
    pub clusters: Vec<String>,
    pub cluster_selector: LabelSelector,
    pub app_selector: LabelSelector,
    pub sync: Vec<SyncStatus>,
    pub health: Vec<Health>,
    pub origin: Option<AppOrigin>,
    pub owner: Option<OwnerRef>,
    pub connection: Vec<ConnectionKind>,
    /// Case-insensitive substring of the app name.
    pub search: String,
    /// Apps named exactly one of these: the hub app `nginx` and every edge
    /// app `nginx@<cluster>` for `nginx`. One range of the `(name, project)`
    /// index per name.
    pub names: Vec<String>,
    /// Set by the store only: the ids the app-label selector resolved to
    /// before the page query (callers leave it `None`).
    #[serde(skip)]
    #[doc(hidden)]
    pub resolved_app_ids: Option<Vec<i64>>,
}

/// Sort column of an application list; ties break on `(project, name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SortKey {
    #[default]
    Name,
    Project,
    Cluster,
    Sync,
    Health,
    UpdatedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AppSort {
    pub key: SortKey,
    pub descending: bool,
}

/// One page of an application list.
#[derive(Debug, Clone)]
pub struct AppQuery {
    pub filter: AppFilter,
    pub sort: AppSort,
    /// Rows per page, clamped to 1..=1000.
    pub page_size: u32,
    /// Continuation from the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque continuation; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Exact number of matching rows (application lists only).
    pub total: Option<u64>,
}

/// Aggregate counts for dashboards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppCounts {
    pub total: u64,
    pub by_sync: BTreeMap<String, u64>,
    pub by_health: BTreeMap<String, u64>,
    /// Keyed by connection kind name; apps of unregistered clusters under `Unregistered`.
    pub by_connection: BTreeMap<String, u64>,
    pub by_project: BTreeMap<String, u64>,
}

// === Commands ===

/// Outcome of a command in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandOutcome {
    Pending,
    Delivered,
    Running,
    Succeeded,
    Failed,
    Expired,
    Unsupported,
    Rejected,
}

/// A command to enqueue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    /// The id it takes: a caller's request id (a UUID, which makes the call
    /// idempotent), or `None` for a fresh one.
    pub id: Option<String>,
    pub project: String,
    pub app: String,
    pub cluster: String,
    /// `sync`, `refresh`, `rollback`, `terminate`, `diff`, `manifests`.
    pub kind: String,
    pub payload: serde_json::Value,
    pub issued_by: String,
    pub deadline: OffsetDateTime,
    /// The W3C trace context of the action that issued it.
    pub trace: Option<TraceContext>,
}

/// A command in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    pub id: String,
    /// Issue order (database sequence).
    pub seq: u64,
    pub project: String,
    pub app: String,
    pub cluster: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub issued_by: String,
    pub issued_at: OffsetDateTime,
    pub deadline: OffsetDateTime,
    pub outcome: CommandOutcome,
    pub message: String,
    pub result: Option<serde_json::Value>,
    pub delivered_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
    /// The W3C trace context stored with it (read back through `TraceContext::parse`).
    pub trace: Option<TraceContext>,
}

/// Progress or result of a command, reported by the spoke.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandUpdate {
    pub id: String,
    pub outcome: CommandOutcome,
    pub message: String,
    pub result: Option<serde_json::Value>,
}

/// Which commands to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandScope {
    App { project: String, name: String },
    Cluster(String),
}

// === Events and audit ===

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSeverity {
    Normal,
    Warning,
}

/// A Kubernetes or sync event reported by a spoke.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Unique per cluster: replays are dropped.
    pub id: String,
    /// Store order (0 until stored): within one cluster, later events have
    /// higher numbers, since one stream at a time stores a cluster's events.
    pub seq: u64,
    pub cluster: String,
    pub project: String,
    pub app: String,
    /// `Kind namespace/name` of the object, if any.
    pub resource: String,
    pub severity: EventSeverity,
    pub reason: String,
    pub message: String,
    pub time: OffsetDateTime,
}

/// Which events to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    pub cluster: Option<String>,
    pub app: Option<(String, String)>,
}

/// Which deployments to list (every set field must match).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentFilter {
    pub cluster: Option<String>,
    /// Only these projects (empty: all); the API narrows it to what the caller may read.
    pub projects: Vec<String>,
    pub app: Option<String>,
    pub initiated_by: Option<String>,
    /// Only these results (empty: all).
    pub results: Vec<edgecd_core::app::OperationPhase>,
    /// Finished at or after.
    pub since: Option<OffsetDateTime>,
    /// Finished before.
    pub until: Option<OffsetDateTime>,
}

/// One audit-log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Where the request came from (address, client).
    pub source: String,
    pub result: String,
    pub message: String,
    pub time: OffsetDateTime,
}

// === Accounts ===

/// A secret-bearing string (password or token hash) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub name: String,
    /// Argon2 PHC string; `None` for SSO-only users.
    pub password_hash: Option<Redacted>,
    pub admin: bool,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub owner: String,
    pub description: String,
    /// Hash of the token; the token itself is never stored.
    pub token_hash: Redacted,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

// === Notifications ===

/// What a `listen` stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEvent {
    Notification {
        channel: String,
        payload: String,
    },
    /// Notifications may have been missed (connection lost and regained, or
    /// the consumer fell behind): re-read durable state.
    Lagged,
}
