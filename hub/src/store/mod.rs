//! The hub's fleet store: one small `Store` trait over two real backends, embedded SQLite and shared PostgreSQL, with every query written once.
//!
//! ```text
//!   hub (link, api) ── Arc<dyn Store> ──┬── PgStore     (postgres.rs: pools, dialect) ┐ sql.rs: the queries,
//!                                       └── SqliteStore (sqlite.rs:   pool, dialect)  ┘ compiled in each
//!   shared: model.rs (records), query.rs (list filter → SQL, cursors), codec.rs (column ⇄ domain)
//! ```
//!
//! The rest of the hub holds an `Arc<dyn Store>`: the backend is chosen at
//! start-up from configuration, and boxing one future per database call costs
//! nothing next to the call itself. `sql.rs` implements the traits once, as
//! plain `async fn`s compiled inside each backend module; what the two SQL
//! dialects do differently is that module's `dialect` section; there is no
//! other layer. See `docs/store.md` for the schema and the rules.

pub mod appsets;
mod codec;
pub mod model;
pub mod postgres;
mod query;
pub mod security;
pub mod sqlite;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use time::OffsetDateTime;

use edgecd_core::deployment::Deployment;
use edgecd_core::project::ProjectSpec;

pub use self::appsets::{AppSetRecord, AppSetStatus, AppSetStore, NewAppSet};
pub use self::model::*;
pub use self::postgres::PgStore;
pub use self::security::SecurityStore;
pub use self::sqlite::SqliteStore;

/// Channel on which a newly enqueued command is announced; the payload is the
/// cluster name.
pub const COMMANDS_CHANNEL: &str = "edgecd_commands";

// The notification channels of the modules above the store live here, below all of them, so that a module
// announcing on another's channel (the PKI on the link's, the set controller on the API's) needs no import
// of that module: every arrow points down to the store.

/// Notification channel: a cluster's desired set changed (payload: cluster).
pub const DESIRED_CHANNEL: &str = "edgecd_desired";
/// Notification channel: statuses of a cluster's apps changed (payload: cluster); a status batch that
/// changed something announces it in its own transaction.
pub const APPS_CHANNEL: &str = "edgecd_apps";
/// Notification channel: a cluster's connection state changed (payload: cluster); a handshake announces its
/// cluster in its own transaction.
pub const CLUSTERS_CHANNEL: &str = "edgecd_clusters";
/// Notification channel: a cluster was revoked or removed (payload: cluster).
pub const REVOKED_CHANNEL: &str = "edgecd_revoked";
/// Notification channel: a managed app was deleted (payload `project/name`).
pub const APP_DELETED_CHANNEL: &str = "edgecd_app_deleted";
/// Notification channel: an application set was created, changed or deleted (payload `project/name`, or `*`).
pub const APPSETS_CHANNEL: &str = "edgecd_appsets";

/// Channel on which every change of a command's record (enqueued, delivered,
/// progress, result, expiry) is announced, in the same transaction; the
/// payload is a comma-separated list of command ids (at most
/// [`IDS_PER_NOTIFICATION`] per notification).
pub const COMMAND_UPDATES_CHANNEL: &str = "edgecd_command_updates";

/// Channel on which stored Kubernetes and sync events are announced, in the
/// same transaction; the payload is the cluster name.
pub const EVENTS_CHANNEL: &str = "edgecd_events";

/// Command ids per notification payload (PostgreSQL limits a payload to 8000 bytes).
pub const IDS_PER_NOTIFICATION: usize = 150;

/// The payloads announcing `ids` on [`COMMAND_UPDATES_CHANNEL`].
pub fn command_update_payloads<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    ids.chunks(IDS_PER_NOTIFICATION)
        .map(|chunk| {
            chunk
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<&str>>()
                .join(",")
        })
        .collect()
}

/// Why a store call failed. Only `Database`, `Unavailable` and `Migrate`
/// carry driver errors, as sources: their text is for logs, never for
/// API clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    AlreadyExists { what: String },
    #[error("{what} was changed concurrently: expected version {expected}, found {actual}")]
    Conflict {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is read-only at the hub (created at the edge)")]
    ReadOnly { what: String },
    #[error("{what} is still referenced: {reason}")]
    InUse { what: String, reason: String },
    #[error("invalid page cursor (expired, malformed, or used with another filter or sort)")]
    InvalidCursor,
    #[error("invalid input: {reason}")]
    Invalid { reason: String },
    #[error("stored data is corrupt: {reason}")]
    Corrupt { reason: String },
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database can no longer be written until an operator acts (its
    /// SQLite file was removed or replaced under the running hub, or is
    /// read-only); retrying does not help.
    #[error("the database cannot be written: {reason}")]
    Lost { reason: String },
    /// A spoke stream's message arrived after a newer stream of its cluster took the link over
    /// (`Store::open_link`): the older stream must end, unacknowledged.
    #[error("{what} was taken over by a newer stream")]
    Superseded { what: String },
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What every store method returns: one boxed future of a `Result` (the
/// store traits are object safe; the hub holds an `Arc<dyn Store>`).
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T>>;

/// The fleet store. Every method is one database round trip or one
/// transaction; none loads an unbounded set of apps.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Whether the database this store opened is still the one it writes:
    /// `Err(StoreError::Lost)` once an embedded database file was removed or
    /// replaced under the running hub (writes are then refused). No query;
    /// `/ready` calls it.
    fn check_intact(&self) -> Result<()> {
        Ok(())
    }

    /// Whether every connection of the API's pool is open and in use: a call that timed out waiting for
    /// one met a saturated pool (a slow database, more calls than connections), not a server that is
    /// down, where connections cannot be opened at all. No query.
    fn pool_saturated(&self) -> bool {
        false
    }

    // --- projects ---
    fn create_project<'a>(
        &'a self,
        name: &'a str,
        spec: &'a ProjectSpec,
    ) -> StoreFuture<'a, ProjectRecord>;
    fn get_project<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ProjectRecord>;
    fn list_projects(&self) -> StoreFuture<'_, Vec<ProjectRecord>>;
    fn update_project<'a>(
        &'a self,
        name: &'a str,
        expected_version: u64,
        spec: &'a ProjectSpec,
    ) -> StoreFuture<'a, ProjectRecord>;
    /// Refused with `InUse` while apps belong to the project.
    fn delete_project<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()>;

    // --- clusters ---
    fn create_cluster<'a>(&'a self, cluster: &'a NewCluster) -> StoreFuture<'a, ClusterRecord>;
    fn get_cluster<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ClusterRecord>;
    /// All clusters (at most a few thousand) matching a label selector, by name.
    fn list_clusters<'a>(
        &'a self,
        selector: &'a edgecd_core::selector::LabelSelector,
    ) -> StoreFuture<'a, Vec<ClusterRecord>>;
    fn update_cluster_labels<'a>(
        &'a self,
        name: &'a str,
        expected_version: u64,
        labels: &'a Labels,
        annotations: &'a Labels,
    ) -> StoreFuture<'a, ClusterRecord>;
    /// Records the connection state a stream leaves, only while `stream` still owns the cluster's connection
    /// record (no newer handshake, on any replica, took it): a late write of an ended or superseded stream
    /// changes nothing. The heartbeat recorded never goes back in time; a revoked cluster stays Revoked;
    /// a Disconnected state gives the record up (no later write of the stream applies). Returns whether
    /// the record was the stream's.
    fn set_stream_connection<'a>(
        &'a self,
        name: &'a str,
        stream: &'a str,
        connection: &'a ClusterConnection,
    ) -> StoreFuture<'a, bool>;
    /// Sets the API server URL Argo CD `destination.server` values name this cluster by.
    fn set_cluster_server_url<'a>(
        &'a self,
        name: &'a str,
        server_url: &'a str,
    ) -> StoreFuture<'a, ()>;
    fn set_cluster_connection<'a>(
        &'a self,
        name: &'a str,
        connection: &'a ClusterConnection,
    ) -> StoreFuture<'a, ()>;
    fn revoke_cluster<'a>(&'a self, name: &'a str, at: OffsetDateTime) -> StoreFuture<'a, ()>;
    /// Records heartbeats of many streams in one statement: each cluster whose connection record its
    /// stream still owns is Connected (a revoked one stays Revoked) with the heartbeat, unless the recorded
    /// heartbeat is as new or newer (a Stale mark of the same stream). A cluster that was not Connected (the
    /// sweeper marked it Disconnected while its heartbeats were late) is Connected since the heartbeat.
    /// Returns how many clusters were updated, and the streams whose cluster's record another stream owns
    /// now (their sessions should end, so that their spokes reconnect and claim it again).
    fn record_heartbeats<'a>(
        &'a self,
        beats: &'a [StreamBeat],
    ) -> StoreFuture<'a, HeartbeatsRecorded>;
    /// What a hub replica watches for its sessions, in one read: clusters with commands to deliver at
    /// `now`, a mark of the projects and application sets, and every cluster's version.
    fn link_watch<'a>(&'a self, now: OffsetDateTime) -> StoreFuture<'a, LinkWatch>;
    /// Deletes the hub's records of apps created at the edge of `cluster`
    /// (only the one named by `app`, if given): what an admin does to an
    /// edge-created app the hub should not show, and what revoking a cluster
    /// does to all of them. Nothing is sent to the spoke (the hub never
    /// manages these apps); a spoke that reports one again and is entitled
    /// to it brings it back. Returns how many were deleted.
    fn delete_edge_apps<'a>(
        &'a self,
        cluster: &'a str,
        app: Option<(&'a str, &'a str)>,
    ) -> StoreFuture<'a, u64>;
    /// Marks Disconnected (since their last heartbeat) the clusters recorded
    /// Connected or Stale whose last heartbeat is older than `silent_since`:
    /// the replica that held their stream is gone (crashed, or lost its
    /// database) and no replica holds them now, since a held stream's
    /// heartbeats keep `last_heartbeat` fresh. Returns their names.
    fn disconnect_silent_clusters(
        &self,
        silent_since: OffsetDateTime,
    ) -> StoreFuture<'_, Vec<String>>;
    /// Refused with `InUse` while managed apps target the cluster; its
    /// autonomous apps, link state and outbox go with it.
    fn delete_cluster<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()>;
    /// A spoke's handshake, in one transaction (a reconnect storm's handshakes take one each): makes `stream`
    /// (a fresh id per spoke stream) the owner of the cluster's link and connection record, after any message
    /// of an older stream being stored commits; records the handshake ([`LinkHello`]: versions, certificate
    /// expiry, the server URL the spoke reports unless the cluster has one or another cluster has that one, and
    /// the connection state); announces the cluster on `edgecd_clusters`; and returns the link's resume point,
    /// the desired set's version, the cluster's record and whether it has commands to deliver at `now`. From
    /// then on only `stream`'s messages are stored (`SpokeSeq::stream`), so nothing beyond the returned point
    /// can be stored by an older stream, and only its writes apply to the connection record
    /// ([`Store::set_stream_connection`]). A revoked cluster is [`LinkOpened::Revoked`] and nothing is
    /// written; an unknown one is `NotFound`.
    fn open_link<'a>(
        &'a self,
        cluster: &'a str,
        stream: &'a str,
        hello: &'a LinkHello,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, LinkOpened>;
    fn get_link_state<'a>(&'a self, cluster: &'a str) -> StoreFuture<'a, LinkState>;

    // --- applications ---
    fn create_app<'a>(&'a self, app: &'a NewApp) -> StoreFuture<'a, AppRecord>;
    /// Creates many managed apps (with optional initial statuses) in one
    /// transaction of multi-row inserts; fails if any exists.
    fn import_apps<'a>(&'a self, apps: &'a [ImportedApp]) -> StoreFuture<'a, u64>;
    fn get_app<'a>(&'a self, project: &'a str, name: &'a str) -> StoreFuture<'a, AppRecord>;
    /// Replaces spec and labels if the stored `spec_version` is `expected_spec_version`.
    fn update_app<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        expected_spec_version: u64,
        spec: &'a edgecd_core::app::ApplicationSpec,
        labels: &'a Labels,
    ) -> StoreFuture<'a, AppRecord>;
    /// Deletes a managed app and leaves a tombstone in its cluster's desired
    /// set; with `keep_resources` the tombstone tells the spoke to keep the
    /// app's resources in the cluster (delete without cascade).
    fn delete_app_with<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        expected_spec_version: Option<u64>,
        keep_resources: bool,
    ) -> StoreFuture<'a, ()>;
    /// Deletes a managed app with its resources (`delete_app_with`, cascade).
    fn delete_app<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        expected_spec_version: Option<u64>,
    ) -> StoreFuture<'a, ()> {
        self.delete_app_with(project, name, expected_spec_version, false)
    }
    /// Managed apps of a cluster changed after desired version `since`, with
    /// tombstones; `since = 0` gives the full desired set (no tombstones).
    fn desired_changes<'a>(
        &'a self,
        cluster: &'a str,
        since: u64,
    ) -> StoreFuture<'a, DesiredChanges>;
    fn list_apps<'a>(&'a self, query: &'a AppQuery) -> StoreFuture<'a, Page<AppSummary>>;
    fn count_apps<'a>(&'a self, filter: &'a AppFilter) -> StoreFuture<'a, AppCounts>;
    /// Latest resource tree of an app, if one was reported.
    fn get_resource_tree<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<serde_json::Value>>;

    // --- spoke ingest: each call is one transaction that also records (epoch, seq) ---
    /// Stores a status batch; one that changed an app's status or record announces the cluster on
    /// [`APPS_CHANNEL`] in the same transaction.
    fn ingest_status_batch<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        batch: &'a StatusBatch,
    ) -> StoreFuture<'a, IngestOutcome>;
    /// Stores many status batches, of any clusters, as [`Store::ingest_status_batch`] stores each, in one
    /// transaction of a few statements for those that can share them ([`StatusWrite::groupable`], one per
    /// cluster): a replica's group commit. The others are stored one by one after it. One result per write,
    /// in order; an error if the shared transaction failed, which then wrote nothing (the caller stores them
    /// one by one if the error was not transient, so that one bad batch costs the others nothing).
    fn ingest_status_group<'a>(
        &'a self,
        writes: &'a [StatusWrite],
    ) -> StoreFuture<'a, Vec<Result<IngestOutcome>>>;
    fn ingest_resource_tree<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        project: &'a str,
        name: &'a str,
        tree: &'a serde_json::Value,
    ) -> StoreFuture<'a, IngestOutcome>;
    fn ingest_events<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        events: &'a [EventRecord],
    ) -> StoreFuture<'a, IngestOutcome>;
    fn ingest_command_statuses<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        updates: &'a [CommandUpdate],
    ) -> StoreFuture<'a, IngestOutcome>;
    /// Stores the deployments `cluster` reported, each once; one naming an app that is not this cluster's is
    /// dropped (a spoke speaks only for its own apps).
    fn ingest_deployments<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        deployments: &'a [Deployment],
    ) -> StoreFuture<'a, IngestOutcome>;

    // --- command outbox ---
    /// Stores a Pending command and announces it on `COMMANDS_CHANNEL` in the same transaction.
    fn enqueue_command<'a>(&'a self, command: &'a NewCommand) -> StoreFuture<'a, CommandRecord>;
    /// Stores many Pending commands in one transaction (one multi-row insert)
    /// and announces each of their clusters once; the records in input order.
    fn enqueue_commands<'a>(
        &'a self,
        commands: &'a [NewCommand],
    ) -> StoreFuture<'a, Vec<CommandRecord>>;
    /// Totals and counts by sync and health of the apps matching `filter`, per
    /// cluster (one grouped query; `by_connection` and `by_project` stay empty).
    fn count_apps_by_cluster<'a>(
        &'a self,
        filter: &'a AppFilter,
    ) -> StoreFuture<'a, std::collections::BTreeMap<String, AppCounts>>;
    fn get_command<'a>(&'a self, id: &'a str) -> StoreFuture<'a, CommandRecord>;
    /// The commands with these ids that exist, in issue order (one query;
    /// unknown ids are skipped).
    fn get_commands<'a>(&'a self, ids: &'a [String]) -> StoreFuture<'a, Vec<CommandRecord>>;
    /// The newest commands of `kind` for an app that are still Pending (not
    /// yet delivered), newest first, at most 16; expired ones may be among
    /// them until the sweep marks them.
    fn pending_commands_of_app<'a>(
        &'a self,
        project: &'a str,
        app: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<CommandRecord>>;
    /// Pending or delivered-without-result commands of a cluster whose deadline has not passed, in issue order.
    fn list_deliverable_commands<'a>(
        &'a self,
        cluster: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Vec<CommandRecord>>;
    fn mark_commands_delivered<'a>(
        &'a self,
        ids: &'a [String],
        at: OffsetDateTime,
    ) -> StoreFuture<'a, u64>;
    /// Applies a progress report; returns `false` if ignored (finished
    /// outcome, or an older stage). Never regresses a finished outcome.
    fn record_command_status<'a>(&'a self, update: &'a CommandUpdate) -> StoreFuture<'a, bool>;
    /// Marks pending/delivered commands past their deadline Expired; returns how many.
    fn expire_commands(&self, now: OffsetDateTime) -> StoreFuture<'_, u64>;
    /// Newest first.
    fn list_commands<'a>(
        &'a self,
        scope: &'a CommandScope,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<CommandRecord>>;

    // --- events and audit ---
    /// Newest first.
    fn list_events<'a>(
        &'a self,
        filter: &'a EventFilter,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<EventRecord>>;
    /// The deployment record, newest first (by finish time).
    fn list_deployments<'a>(
        &'a self,
        filter: &'a DeploymentFilter,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<Deployment>>;

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> StoreFuture<'a, ()>;
    /// Newest first.
    fn list_audit<'a>(
        &'a self,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> StoreFuture<'a, Page<AuditEntry>>;

    // --- accounts (schema and CRUD; authentication lives elsewhere) ---
    fn create_user<'a>(&'a self, user: &'a UserRecord) -> StoreFuture<'a, UserRecord>;
    fn get_user<'a>(&'a self, name: &'a str) -> StoreFuture<'a, UserRecord>;
    fn list_users(&self) -> StoreFuture<'_, Vec<UserRecord>>;
    fn delete_user<'a>(&'a self, name: &'a str) -> StoreFuture<'a, ()>;
    fn create_token<'a>(&'a self, token: &'a TokenRecord) -> StoreFuture<'a, TokenRecord>;
    fn find_token_by_hash<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, TokenRecord>;
    fn list_tokens<'a>(&'a self, owner: &'a str) -> StoreFuture<'a, Vec<TokenRecord>>;
    fn revoke_token<'a>(&'a self, id: &'a str, at: OffsetDateTime) -> StoreFuture<'a, ()>;

    /// The application sets of this store.
    fn appsets(&self) -> &dyn AppSetStore;

    /// Refreshes the query planner's statistics (`ANALYZE`), e.g. after a bulk import.
    fn analyze(&self) -> StoreFuture<'_, ()>;

    // --- replicas ---
    /// Records where replica `id` answers its peers (`https://10.0.0.5:8443`), now.
    fn register_replica<'a>(&'a self, id: &'a str, peer_address: &'a str) -> StoreFuture<'a, ()>;
    /// Where replica `id` answers its peers, if it said.
    fn replica_address<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<String>>;

    /// Tries to become the one replica, among those sharing this store, that
    /// holds `role`; `None` if another holds it. The role is held until the
    /// returned [`Leadership`] is dropped or reports itself lost (on
    /// PostgreSQL a session advisory lock on a connection of its own, checked
    /// every few seconds; on SQLite, one hub process, always granted).
    fn try_lead<'a>(&'a self, role: &'a str) -> StoreFuture<'a, Option<Leadership>>;

    // --- notifications ---
    fn notify<'a>(&'a self, channel: &'a str, payload: &'a str) -> StoreFuture<'a, ()>;
    /// A stream of notifications on `channels` that survives reconnects
    /// (yielding `ListenEvent::Lagged` after one, since notifications sent
    /// meanwhile are lost).
    fn listen<'a>(
        &'a self,
        channels: &'a [&'a str],
    ) -> StoreFuture<'a, BoxStream<'static, ListenEvent>>;
}

/// The default project every store has.
pub fn default_project() -> (&'static str, ProjectSpec) {
    ("default", ProjectSpec::permissive())
}

// === impl StoreError ===

impl StoreError {
    /// Classifies a driver error: connection trouble is `Unavailable`, a
    /// unique or foreign-key violation becomes `AlreadyExists` / `InUse` about `what`.
    pub(crate) fn classify(
        what: impl FnOnce() -> String,
    ) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::AlreadyExists { what: what() }
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::InUse {
                what: what(),
                reason: "a referenced or referencing row exists".into(),
            },
            _ => StoreError::from(error),
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Another error of the same kind, for each of the calls one failed shared transaction answers
    /// (`sqlx::Error` cannot be cloned): transient as this one is, with its message. `None` for others.
    pub fn transient_copy(&self) -> Option<StoreError> {
        let Self::Unavailable(source) = self else {
            return None;
        };
        Some(Self::Unavailable(match source {
            sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
            other => sqlx::Error::Io(std::io::Error::other(other.to_string())),
        }))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound { what: "row".into() },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(db) if sqlite_unwritable(db.as_ref()) => StoreError::Lost {
                reason: format!(
                    "the SQLite database file was removed or replaced while the hub ran, \
                     or is read-only ({})",
                    db.message()
                ),
            },
            sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
                reason: format!("column {index}: {source}"),
            },
            // Connection exceptions (08) and operator intervention such as a
            // shutdown (57): the server is going away, not the query's fault.
            // A deadlock or serialization failure (PostgreSQL's 40P01, 40001)
            // rolled the whole transaction back: trying it again is safe.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| {
                    code.starts_with("08")
                        || code.starts_with("57")
                        || code == "40P01"
                        || code == "40001"
                }) =>
            {
                StoreError::Unavailable(sqlx::Error::Database(db))
            }
            other => StoreError::Database(other),
        }
    }
}

/// SQLITE_READONLY (a connection of a removed or replaced file is switched
/// to `query_only`, see `sqlite::DbFile`) and SQLITE_CANTOPEN (the file is
/// gone when the pool opens a connection), extended codes included.
fn sqlite_unwritable(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && db
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 8 | 14))
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Corrupt {
            reason: format!("JSON column: {error}"),
        }
    }
}

/// How long a feed waits before listening again after a failure.
const FOLLOW_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// [`Store::listen`] that never gives up, for the hub's long-running feeds
/// (watch changes, the spoke link's router, the console's set feed): a
/// stream of notifications on `channels` that, when listening fails or
/// ends, logs why, waits a second and listens again, then yields
/// `ListenEvent::Lagged` (notifications sent while not listening are lost).
/// `feed` names the caller in the log.
pub fn follow(
    store: std::sync::Arc<dyn Store>,
    channels: &'static [&'static str],
    feed: &'static str,
) -> BoxStream<'static, ListenEvent> {
    use futures::StreamExt as _;
    struct State {
        store: std::sync::Arc<dyn Store>,
        events: Option<BoxStream<'static, ListenEvent>>,
        /// Listening failed or ended since the last `Lagged`.
        missed: bool,
    }
    let state = State {
        store,
        events: None,
        missed: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(events) = state.events.as_mut() {
                if let Some(event) = events.next().await {
                    return Some((event, state));
                }
                tracing::warn!(feed, "Store notifications ended; listening again.");
                state.events = None;
                state.missed = true;
                tokio::time::sleep(FOLLOW_RETRY).await;
            }
            match state.store.listen(channels).await {
                Ok(events) => {
                    state.events = Some(events);
                    if std::mem::take(&mut state.missed) {
                        return Some((ListenEvent::Lagged, state));
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, feed, "Cannot listen for store notifications; retrying.");
                    state.missed = true;
                    tokio::time::sleep(FOLLOW_RETRY).await;
                }
            }
        }
    })
    .boxed()
}

/// A role held by this replica (see [`Store::try_lead`]). Dropping it gives
/// the role up.
#[derive(Debug)]
pub struct Leadership {
    lost: tokio::sync::watch::Receiver<bool>,
    /// Keeps the lock's database session alive; aborted on drop.
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl Leadership {
    /// A role that is never lost (a single hub process).
    pub fn unshared() -> Self {
        let (_, lost) = tokio::sync::watch::channel(false);
        Self { lost, keeper: None }
    }

    /// A role held as long as `keeper` runs; it reports loss on `lost`.
    pub(crate) fn kept(
        lost: tokio::sync::watch::Receiver<bool>,
        keeper: tokio::task::JoinHandle<()>,
    ) -> Self {
        Self {
            lost,
            keeper: Some(keeper),
        }
    }

    /// Whether the role may have passed to another replica (its database
    /// session failed a check); the holder should stop acting and drop it.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
    }
}
