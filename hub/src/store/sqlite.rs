//! SQLite backend (the embedded single-node default), in WAL mode: the pool, the guard on the database file, and the dialect `sql.rs` is compiled against (JSON arrays, the in-process notification bus).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, Transaction};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::model::ListenEvent;
use super::{Leadership, Result, StoreError};
use sql::{Args, Column, Notes};

/// The queries, written once for both backends (see `sql.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

type Db = Sqlite;
type Backend = SqliteStore;

/// The SQLite store. Cloning shares the pool and the notification bus.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    bus: broadcast::Sender<(String, String)>,
    file: std::sync::Arc<DbFile>,
}

/// The database file a store opened. Removing or replacing it under a
/// running hub leaves the open connections on the old, unlinked file:
/// writes would be acknowledged and lost. Every connection checks the
/// path's identity (device and inode) when the pool hands it out or opens
/// it; once the path no longer names the file opened, connections are
/// switched to `query_only` (writes fail with SQLITE_READONLY, which the
/// store reports as `StoreError::Lost`) and `check_intact` fails, for good.
#[derive(Debug)]
struct DbFile {
    path: std::path::PathBuf,
    /// Set once the database is open; `None` until then (or if the path
    /// cannot be examined, e.g. not a regular file).
    identity: std::sync::OnceLock<(u64, u64)>,
    lost: std::sync::atomic::AtomicBool,
}

impl DbFile {
    fn check(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let Some(opened) = self.identity.get() else {
            return Ok(());
        };
        if !self.lost.load(Ordering::Acquire) {
            match file_identity(&self.path) {
                Ok(now) if now == *opened => return Ok(()),
                Ok(_) => self.mark_lost("replaced by another file"),
                Err(error) => self.mark_lost(&error.to_string()),
            }
        }
        Err(StoreError::Lost {
            reason: "the SQLite database file was removed or replaced while the hub ran".into(),
        })
    }

    fn mark_lost(&self, why: &str) {
        if !self.lost.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tracing::error!(
                path = %self.path.display(),
                why,
                "The hub's SQLite database file was removed or replaced while the hub ran: \
                 writes are refused from now on. Restore the file and restart the hub."
            );
        }
    }

    /// Switches `conn` to read-only if the file is no longer the one opened.
    async fn guard(&self, conn: &mut SqliteConnection) -> std::result::Result<(), sqlx::Error> {
        if self.check().is_err() {
            sqlx::query("PRAGMA query_only = ON").execute(conn).await?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    // Only removal is noticed where inodes are not available.
    std::fs::metadata(path).map(|_| (0, 0))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file in WAL mode, runs the
    /// migrations and makes sure the `default` project exists.
    #[tracing::instrument(skip_all, fields(db.system = "sqlite"))]
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let file = std::sync::Arc::new(DbFile {
            path: path.to_path_buf(),
            identity: std::sync::OnceLock::new(),
            lost: std::sync::atomic::AtomicBool::new(false),
        });
        let (on_acquire, on_connect) = (file.clone(), file.clone());
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .before_acquire(move |conn, _| {
                let file = on_acquire.clone();
                Box::pin(async move { file.guard(conn).await.map(|()| true) })
            })
            .after_connect(move |conn, _| {
                let file = on_connect.clone();
                Box::pin(async move { file.guard(conn).await })
            })
            .connect_with(options.clone())
            .await?;
        // From now on the pool never creates the file: a connection opened
        // after a removal fails (SQLITE_CANTOPEN) instead of starting an
        // empty database.
        pool.set_connect_options(options.create_if_missing(false));
        if let Ok(identity) = file_identity(path) {
            let _ = file.identity.set(identity);
        }
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        sql::create_default_project(&pool).await?;
        let (bus, _) = broadcast::channel(1024);
        Ok(Self { pool, bus, file })
    }

    /// The link's pool: the same one (one writer in any case).
    fn link(&self) -> &SqlitePool {
        &self.pool
    }
}

// === The dialect: what `sql.rs` asks of SQLite ===

/// Write transactions take the database lock up front (`BEGIN IMMEDIATE`),
/// so two writers queue on the busy timeout instead of failing to upgrade.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// A deferred transaction: one WAL snapshot from its first read.
const BEGIN_READ: &str = "BEGIN";
/// No row locks: a write transaction holds the whole database.
const FOR_UPDATE: &str = "";
/// JSON documents are TEXT: no cast.
const JSONB: &str = "";
const EXPLAIN: &str = "EXPLAIN QUERY PLAN";
const PLAN_COLUMN: &str = "detail";
const ANALYZE: &str = "ANALYZE";

fn check_intact(store: &SqliteStore) -> Result<()> {
    store.file.check()
}

/// The values of a column as JSON.
fn json_values(column: Column<'_>) -> Vec<serde_json::Value> {
    match column {
        Column::Text(values) => values.into_iter().map(serde_json::Value::from).collect(),
        Column::BigInt(values) => values.into_iter().map(serde_json::Value::from).collect(),
        Column::Bool(values) => values.into_iter().map(serde_json::Value::from).collect(),
    }
}

/// A table of values for a `FROM` clause, `alias(names…, ord)` in input
/// order: one JSON array of rows, read with `json_each`.
fn table(args: &mut Args, alias: &str, columns: Vec<(&str, Column<'_>)>) -> Result<String> {
    let mut rows: Vec<Vec<serde_json::Value>> = Vec::new();
    let mut fields = Vec::with_capacity(columns.len());
    for (i, (name, column)) in columns.into_iter().enumerate() {
        let values = json_values(column);
        rows.resize_with(values.len(), Vec::new);
        for (row, value) in rows.iter_mut().zip(values) {
            row.push(value);
        }
        fields.push(format!("json_extract(value, '$[{i}]') AS {name}"));
    }
    let rows = args.add(serde_json::to_string(&rows)?)?;
    Ok(format!(
        "(SELECT {}, key AS ord FROM json_each({rows})) AS {alias}",
        fields.join(", ")
    ))
}

/// `IN` a list of values: one JSON array, read with `json_each`.
fn in_list(args: &mut Args, column: Column<'_>) -> Result<String> {
    let list = args.add(serde_json::to_string(&json_values(column))?)?;
    Ok(format!("IN (SELECT value FROM json_each({list}))"))
}

/// Nothing: SQLite probes the primary key by itself, and an `IN` list
/// beside the join makes it scan the table of values once per row.
fn probe_ids(_: &mut Args, _: &str, _: Vec<i64>) -> Result<String> {
    Ok(String::new())
}

/// The lookup of a status batch's apps, `pairs` being `r(project, name)`:
/// a join probing the `(project, name)` index per pair.
fn reported_apps(pairs: &str) -> String {
    format!(
        "SELECT DISTINCT a.id, a.project, a.name, a.cluster, a.origin, s.status_version FROM {pairs} \
         JOIN applications a ON a.project = r.project AND a.name = r.name \
         JOIN app_status s ON s.app_id = a.id"
    )
}

/// Commits `tx`, then publishes its notifications on the bus: listeners
/// reading at once see the change.
async fn commit(store: &SqliteStore, tx: Transaction<'_, Sqlite>, notes: Notes) -> Result<()> {
    tx.commit().await?;
    publish(store, notes);
    Ok(())
}

fn publish(store: &SqliteStore, notes: Notes) {
    for (channel, payload) in notes.0 {
        // No subscriber is not an error: nobody is waiting.
        let _ = store.bus.send((channel.to_owned(), payload));
    }
}

/// Runs `update` (an `UPDATE commands … RETURNING id`), then announces the
/// ids it returned; returns how many there were.
async fn update_commands(store: &SqliteStore, update: &str, args: Args) -> Result<u64> {
    let ids: Vec<String> = sqlx::query_scalar_with(AssertSqlSafe(update), args.0)
        .fetch_all(&store.pool)
        .await?;
    let mut notes = Notes::default();
    notes.commands(&ids);
    publish(store, notes);
    Ok(ids.len() as u64)
}

/// Publishes on the in-process bus (SQLite serves a single hub process).
async fn notify(store: &SqliteStore, channel: &str, payload: &str) -> Result<()> {
    let _ = store.bus.send((channel.to_owned(), payload.to_owned()));
    Ok(())
}

/// One hub process owns a SQLite store: every role is granted.
async fn try_lead(_: &SqliteStore, _role: &str) -> Result<Option<Leadership>> {
    Ok(Some(Leadership::unshared()))
}

/// Subscribes to the in-process bus, filtered to `channels`; a consumer
/// that falls behind gets `Lagged`.
async fn listen(store: &SqliteStore, channels: &[&str]) -> Result<BoxStream<'static, ListenEvent>> {
    let channels: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
    Ok(BroadcastStream::new(store.bus.subscribe())
        .filter_map(move |item| {
            let event = match item {
                Ok((channel, payload)) => channels
                    .contains(&channel)
                    .then_some(ListenEvent::Notification { channel, payload }),
                Err(BroadcastStreamRecvError::Lagged(_)) => Some(ListenEvent::Lagged),
            };
            futures::future::ready(event)
        })
        .boxed())
}
