//! PostgreSQL backend, shared by several hub replicas: the pools, and the dialect `sql.rs` is compiled against (arrays, row locks, LISTEN/NOTIFY, advisory locks).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::codec::to_u64;
use super::model::ListenEvent;
use super::{COMMAND_UPDATES_CHANNEL, IDS_PER_NOTIFICATION, Leadership, Result, StoreError};
use sql::{Args, Column, Notes};

#[path = "pg_primary.rs"]
mod pg_primary;

/// The queries, written once for both backends (see `sql.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

type Db = Postgres;
type Backend = PgStore;

/// The PostgreSQL store. Cloning shares the pools: one for the API and
/// everything else, one for the spoke link's ingest and outbox delivery, so
/// that streams of status reports never queue API reads behind them.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    link: PgPool,
    /// With several hosts in the URL: the task following the primary (stopped with the last clone).
    _primary_watch: Option<Arc<AbortOnDrop>>,
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pool settings; the connection options carry the credentials.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Connections of the API pool.
    pub max_connections: u32,
    /// Connections of the link pool (spoke ingest and command delivery).
    pub link_connections: u32,
    /// How long an API call waits for a connection (a free one, or a new
    /// one while the server refuses connections) before it fails with
    /// `StoreError::Unavailable`: short, so that during an outage calls
    /// fail fast with UNAVAILABLE and `retry-after` instead of piling up.
    pub acquire_timeout: Duration,
    /// The same for the link pool: spoke sessions end on a store error, so
    /// they wait longer through a saturated pool.
    pub link_acquire_timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            link_connections: 16,
            acquire_timeout: Duration::from_secs(1),
            link_acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl PgStore {
    /// Connects, runs the migrations (serialised across replicas by an
    /// advisory lock) and makes sure the `default` project exists.
    #[tracing::instrument(skip_all, fields(db.system = "postgresql"))]
    pub async fn connect(options: PgConnectOptions, settings: &PgSettings) -> Result<Self> {
        Self::connect_hosts(vec![options], settings).await
    }

    /// [`Self::connect`] to one of several hosts: the one that accepts writes, followed when the primary moves
    /// (`pg_primary`).
    #[tracing::instrument(skip_all, fields(db.system = "postgresql", hosts = hosts.len()))]
    pub async fn connect_hosts(
        hosts: Vec<PgConnectOptions>,
        settings: &PgSettings,
    ) -> Result<Self> {
        let (primary, options) = if hosts.len() > 1 {
            let wait = settings.link_acquire_timeout.max(Duration::from_secs(10));
            let primary = Arc::new(pg_primary::Primary::find(hosts, wait).await);
            let options = primary.options();
            (Some(primary), options)
        } else {
            let options = hosts
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::Invalid {
                    reason: "no PostgreSQL host".into(),
                })?;
            (None, options)
        };
        let pool_with = |connections: u32, acquire_timeout: Duration| {
            let mut pool = PgPoolOptions::new()
                .max_connections(connections)
                // sqlx retries a refused connection until this deadline.
                .acquire_timeout(acquire_timeout)
                // A connection broken by a server restart is found and replaced
                // at checkout instead of failing a query.
                .test_before_acquire(true);
            if let Some(primary) = &primary {
                // After the primary moved, connections to the old one (alive, now a standby or cut off) go.
                let fresh = primary.fresh_check();
                pool = pool.before_acquire(move |_, meta| {
                    let keep = fresh(meta.age);
                    Box::pin(async move { Ok(keep) })
                });
            }
            pool.connect_lazy_with(options.clone())
        };
        let pool = pool_with(settings.max_connections, settings.acquire_timeout);
        let link = pool_with(settings.link_connections, settings.link_acquire_timeout);
        // Start-up goes through the more patient link pool: a database that
        // is still starting gets the link pool's acquire timeout.
        sqlx::migrate!("./migrations/postgres")
            .run(&link)
            .await
            .map_err(StoreError::Migrate)?;
        sql::create_default_project(&link).await?;
        let _primary_watch =
            primary.map(|p| Arc::new(AbortOnDrop(p.watch([pool.clone(), link.clone()]))));
        Ok(Self {
            pool,
            link,
            _primary_watch,
        })
    }

    /// Connects with default settings to a `postgres://` URL.
    pub async fn connect_url(url: &str) -> Result<Self> {
        Self::connect_url_with_ca(url, None).await
    }

    /// Connects with default settings to a `postgres://` URL; with `ca_file`, over TLS verifying the server's
    /// certificate and name against that CA (PEM), as `sslmode=verify-full&sslrootcert=FILE` would (an explicit
    /// `verify-ca` or `require` in the URL is kept; `disable` is refused as contradicting the CA file).
    pub async fn connect_url_with_ca(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self> {
        use sqlx::postgres::PgSslMode;
        let mut hosts = Vec::new();
        for url in pg_primary::split_hosts(url)? {
            let mut options: PgConnectOptions = url.parse().map_err(|_| StoreError::Invalid {
                reason: "malformed PostgreSQL URL".into(),
            })?;
            if let Some(ca_file) = ca_file {
                options = match options.get_ssl_mode() {
                    PgSslMode::Disable => {
                        return Err(StoreError::Invalid {
                            reason: "the PostgreSQL URL says sslmode=disable, but a database CA file is given"
                                .into(),
                        });
                    }
                    PgSslMode::Allow | PgSslMode::Prefer => options.ssl_mode(PgSslMode::VerifyFull),
                    PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => options,
                }
                .ssl_root_cert(ca_file);
            }
            hosts.push(options);
        }
        Self::connect_hosts(hosts, &PgSettings::default()).await
    }

    /// The pool of the spoke link's ingest and outbox delivery.
    fn link(&self) -> &PgPool {
        &self.link
    }
}

// === The dialect: what `sql.rs` asks of PostgreSQL ===

/// Write transactions: row locks (`FOR_UPDATE`) and upserts serialise what
/// must be.
const BEGIN_WRITE: &str = "BEGIN";
/// Read-only transactions that need one snapshot (a page and its total).
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// Locks the rows read for an update until the transaction ends.
const FOR_UPDATE: &str = " FOR UPDATE";
/// The cast of JSON text a statement builds into a `JSONB` column.
const JSONB: &str = "::jsonb";
const EXPLAIN: &str = "EXPLAIN (COSTS OFF)";
const PLAN_COLUMN: &str = "QUERY PLAN";
/// `VACUUM` also sets the visibility map of freshly written pages, so that
/// counts and id lookups are index-only scans at once instead of after the
/// next autovacuum.
const ANALYZE: &str = "VACUUM (ANALYZE)";

fn check_intact(_: &PgStore) -> Result<()> {
    Ok(())
}

/// A column bound as an array: `$n::type[]`.
fn array(args: &mut Args, column: Column<'_>) -> Result<String> {
    Ok(match column {
        Column::Text(values) => format!("{}::text[]", args.add(values)?),
        Column::BigInt(values) => format!("{}::bigint[]", args.add(values)?),
        Column::Bool(values) => format!("{}::boolean[]", args.add(values)?),
    })
}

/// A table of values for a `FROM` clause, `alias(names…, ord)` in input
/// order: one array per column, `UNNEST`ed together.
fn table(args: &mut Args, alias: &str, columns: Vec<(&str, Column<'_>)>) -> Result<String> {
    let mut arrays = Vec::with_capacity(columns.len());
    let mut names = Vec::with_capacity(columns.len());
    for (name, column) in columns {
        arrays.push(array(args, column)?);
        names.push(name);
    }
    Ok(format!(
        "UNNEST({}) WITH ORDINALITY AS {alias}({}, ord)",
        arrays.join(", "),
        names.join(", ")
    ))
}

/// `IN` a list of values: `= ANY($n)`.
fn in_list(args: &mut Args, column: Column<'_>) -> Result<String> {
    Ok(format!("= ANY({})", array(args, column)?))
}

/// `column = ANY($n) AND `: keeps a join with a table of values on
/// primary-key probes of `column` whatever the planner estimates for the
/// arrays (see `reported_apps`).
fn probe_ids(args: &mut Args, column: &str, ids: Vec<i64>) -> Result<String> {
    Ok(format!(
        "{column} {} AND ",
        in_list(args, Column::BigInt(ids))?
    ))
}

/// The lookup of a status batch's apps, `pairs` being `r(project, name)`:
/// one unique-index probe per reported app (`LATERAL … LIMIT 1`). A plain
/// join of a 100-element array may be planned as a hash join over a
/// sequential scan, which reads every dead row version a busy status table
/// accumulates between vacuums (seconds per batch).
fn reported_apps(pairs: &str) -> String {
    format!(
        "SELECT a.id, a.project, a.name, a.cluster, a.origin, a.status_version FROM {pairs} \
         CROSS JOIN LATERAL (SELECT x.id, x.project, x.name, x.cluster, x.origin, st.status_version \
         FROM applications x JOIN app_status st ON st.app_id = x.id \
         WHERE x.project = r.project COLLATE \"C\" AND x.name = r.name COLLATE \"C\" LIMIT 1) a"
    )
}

/// Commits `tx` with its notifications, sent in it by one statement
/// (delivered to listeners when it commits).
async fn commit(_: &PgStore, mut tx: Transaction<'_, Postgres>, notes: Notes) -> Result<()> {
    if !notes.0.is_empty() {
        let (channels, payloads): (Vec<&str>, Vec<&str>) =
            notes.0.iter().map(|(c, p)| (*c, p.as_str())).unzip();
        sqlx::query("SELECT pg_notify(c, p) FROM UNNEST($1::text[], $2::text[]) AS n(c, p)")
            .bind(channels)
            .bind(payloads)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Runs `update` (an `UPDATE commands … RETURNING id`) on the link pool and
/// announces the ids it returns in the same statement, in chunks of
/// `IDS_PER_NOTIFICATION`; returns how many there were.
async fn update_commands(store: &PgStore, update: &str, args: Args) -> Result<u64> {
    let sql = format!(
        "WITH u AS ({update}) SELECT (SELECT count(*) FROM u) + 0 * \
         (SELECT count(pg_notify('{COMMAND_UPDATES_CHANNEL}', ids)) FROM (SELECT string_agg(id, ',') AS ids \
         FROM (SELECT id, (row_number() OVER () - 1) / {IDS_PER_NOTIFICATION} AS grp FROM u) x GROUP BY grp) g)"
    );
    let n: i64 = sqlx::query_scalar_with(AssertSqlSafe(sql), args.0)
        .fetch_one(&store.link)
        .await?;
    Ok(to_u64(n))
}

/// Sends a notification; delivered to listeners when the statement commits.
async fn notify(store: &PgStore, channel: &str, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// How often a held role's session is checked, and how long a check may take.
const LEADER_CHECK: Duration = Duration::from_secs(5);

/// A session advisory lock on `edgecd:<role>`, taken on a connection
/// detached from the pool and kept by a task that checks it every
/// `LEADER_CHECK`. When a check fails the role is reported lost and the
/// connection dropped: PostgreSQL releases the lock when the session ends
/// (at once, or when it notices a dead connection), and only then can
/// another replica take it.
async fn try_lead(store: &PgStore, role: &str) -> Result<Option<Leadership>> {
    let mut conn = store.pool.acquire().await?.detach();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("edgecd:{role}"))
        .fetch_one(&mut conn)
        .await?;
    if !held {
        return Ok(None);
    }
    let (report, lost) = tokio::sync::watch::channel(false);
    let role = role.to_owned();
    let keeper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEADER_CHECK).await;
            let check =
                tokio::time::timeout(LEADER_CHECK, sqlx::query("SELECT 1").execute(&mut conn));
            if !matches!(check.await, Ok(Ok(_))) {
                tracing::warn!(%role, "The database session holding this role failed a check; giving the role up.");
                let _ = report.send(true);
                return;
            }
        }
    });
    Ok(Some(Leadership::kept(lost, keeper)))
}

/// Listens on `channels` with a dedicated connection, reconnecting and
/// re-subscribing after a connection loss (then yielding `Lagged`).
async fn listen(store: &PgStore, channels: &[&str]) -> Result<BoxStream<'static, ListenEvent>> {
    let mut listener = PgListener::connect_with(&store.pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        // Set while the connection is (or was) down and `Lagged` is owed.
        let mut lost = false;
        loop {
            let received = tokio::select! {
                () = sender.closed() => break,
                received = listener.try_recv() => received,
            };
            let events = match received {
                Ok(Some(notification)) => {
                    let event = ListenEvent::Notification {
                        channel: notification.channel().to_owned(),
                        payload: notification.payload().to_owned(),
                    };
                    if std::mem::take(&mut lost) {
                        vec![ListenEvent::Lagged, event]
                    } else {
                        vec![event]
                    }
                }
                // The connection was lost and has been re-established (eager
                // reconnect), with every channel listened to again.
                Ok(None) => {
                    lost = false;
                    vec![ListenEvent::Lagged]
                }
                Err(error) => {
                    tracing::warn!(error = %error, "Listener connection failed; retrying.");
                    lost = true;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    // Reconnect (and re-listen) now rather than at the next
                    // notification, so `Lagged` is reported promptly.
                    if sqlx::query("SELECT 1").execute(&mut listener).await.is_ok() {
                        lost = false;
                        vec![ListenEvent::Lagged]
                    } else {
                        vec![]
                    }
                }
            };
            for event in events {
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(ReceiverStream::new(receiver).boxed())
}
