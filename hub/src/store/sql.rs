//! The fleet store's queries, written once for both backends: this file is compiled inside `postgres.rs` and inside `sqlite.rs`, where `Db`, `Backend` and `dialect` name that backend's.
//!
//! PostgreSQL and SQLite take the same SQL for nearly everything: `$n`
//! placeholders, times as BIGINT Unix milliseconds (`codec::to_ms`), JSON
//! bound with `sqlx::types::Json` (JSONB on PostgreSQL, TEXT on SQLite),
//! `ON CONFLICT`, `UPDATE … FROM`, `RETURNING`. Where they really differ
//! (transactions and row locks, arrays, the ingest lookup, notifications,
//! roles, plans) the code here asks `dialect`: the backend module's
//! `// === The dialect` section, tabled in docs/store.md ("One body, two
//! backends"). Every query is one round trip or one transaction, with a
//! `tracing` span naming what it touches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use edgecd_core::app::{AppOrigin, ApplicationSpec, ApplicationStatus, OperationPhase, OwnerRef};
use edgecd_core::deployment::Deployment;
use edgecd_core::project::ProjectSpec;
use edgecd_core::selector::LabelSelector;
use edgecd_core::{AppRef, ClusterName, ProjectName};
use futures::stream::BoxStream;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row as _};
use time::OffsetDateTime;

use super as dialect;
use super::{Backend, Db};
use crate::store::codec::{
    ManagedWrites, ReportedApp, error_conditions, from_ms, now_ms, opt_from_ms, parse_connection,
    parse_health, parse_origin, parse_outcome, parse_phase, parse_severity, parse_sync, phase_of,
    plan_managed_reports, to_i64, to_ms, to_u64,
};
use crate::store::model::*;
use crate::store::query::{self, Bind, Sql};
use crate::store::{
    APPS_CHANNEL, CLUSTERS_CHANNEL, COMMAND_UPDATES_CHANNEL, COMMANDS_CHANNEL, EVENTS_CHANNEL,
    Leadership, Result, Store, StoreError, command_update_payloads,
};

/// `impl $trait for Backend`: the items given, and for each signature
/// listed a method that boxes the future of `Backend`'s `async fn` of the
/// same name. The traits are object safe (the hub holds an `Arc<dyn Store>`);
/// the queries are plain `async fn`s.
macro_rules! boxed_impl {
    (
        impl $trait:path { $($item:item)* }
        $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $out:ty;)*
    ) => {
        impl $trait for Backend {
            $($item)*
            $(fn $name<'a>(&'a self $(, $arg: $ty)*) -> crate::store::StoreFuture<'a, $out> {
                Box::pin(Backend::$name(self $(, $arg)*))
            })*
        }
    };
}

#[path = "appsets_sql.rs"]
mod appsets;
#[path = "security_sql.rs"]
mod security;

pub(super) type Conn = <Db as sqlx::Database>::Connection;
type Row = <Db as sqlx::Database>::Row;
type DbArgs = <Db as sqlx::Database>::Arguments;

/// Values bound while a statement's text is built: `add` returns the
/// value's placeholder (`$n`).
#[derive(Default)]
pub(super) struct Args(pub(super) DbArgs);

impl Args {
    pub(super) fn add<'q, T>(&mut self, value: T) -> Result<String>
    where
        T: sqlx::Encode<'q, Db> + sqlx::Type<Db>,
    {
        sqlx::Arguments::add(&mut self.0, value)
            .map_err(|error| StoreError::Database(sqlx::Error::Encode(error)))?;
        Ok(format!("${}", sqlx::Arguments::len(&self.0)))
    }
}

/// The values of a statement built by `query`, in placeholder order.
fn args(binds: Vec<Bind>) -> Result<DbArgs> {
    let mut args = Args::default();
    for bind in binds {
        match bind {
            Bind::Text(text) => args.add(text)?,
            Bind::Int(n) => args.add(n)?,
        };
    }
    Ok(args.0)
}

/// A column of values bound as one parameter per column (`dialect::table`),
/// or a list (`dialect::in_list`).
pub(super) enum Column<'a> {
    Text(Vec<Option<&'a str>>),
    BigInt(Vec<i64>),
    Bool(Vec<bool>),
}

impl<'a> Column<'a> {
    fn text(values: impl IntoIterator<Item = &'a str>) -> Self {
        Self::Text(values.into_iter().map(Some).collect())
    }
}

/// A table of values for a `FROM` clause, built a column at a time (in
/// row order): `dialect::table` binds it.
#[derive(Default)]
struct Table<'a>(Vec<(&'static str, Column<'a>)>);

impl<'a> Table<'a> {
    fn text(self, name: &'static str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.column(name, Column::text(values))
    }

    fn opt_text(self, name: &'static str, values: impl Iterator<Item = Option<&'a str>>) -> Self {
        self.column(name, Column::Text(values.collect()))
    }

    fn bigint(self, name: &'static str, values: impl Iterator<Item = i64>) -> Self {
        self.column(name, Column::BigInt(values.collect()))
    }

    fn bool(self, name: &'static str, values: impl Iterator<Item = bool>) -> Self {
        self.column(name, Column::Bool(values.collect()))
    }

    fn column(mut self, name: &'static str, column: Column<'a>) -> Self {
        self.0.push((name, column));
        self
    }

    /// The table as `alias(names…, ord)`, `ord` following the rows.
    fn bind(self, args: &mut Args, alias: &str) -> Result<String> {
        dialect::table(args, alias, self.0)
    }
}

/// Notifications a write sends with its commit (`dialect::commit`): on
/// PostgreSQL inside the transaction, on SQLite on the bus after it, so
/// that listeners only ever hear of committed changes.
#[derive(Default)]
pub(super) struct Notes(pub(super) Vec<(&'static str, String)>);

impl Notes {
    /// Announces changed commands on `COMMAND_UPDATES_CHANNEL`.
    pub(super) fn commands<S: AsRef<str>>(&mut self, ids: &[S]) {
        for payload in command_update_payloads(ids) {
            self.0.push((COMMAND_UPDATES_CHANNEL, payload));
        }
    }
}

// === Rows ===

fn link_state_from_row(row: &Row) -> Result<LinkState> {
    Ok(LinkState {
        spoke_epoch: row.try_get("spoke_epoch")?,
        spoke_seq: to_u64(row.try_get("spoke_seq")?),
        desired_version: to_u64(row.try_get("desired_version")?),
    })
}

fn project_from_row(row: &Row) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        name: row.try_get("name")?,
        spec: row.try_get::<Json<ProjectSpec>, _>("spec")?.0,
        version: to_u64(row.try_get("version")?),
        created_at: from_ms(row.try_get("created_at")?),
    })
}

const CLUSTER_COLUMNS: &str = "name, labels, annotations, server_url, versions, conn_state, \
     conn_since, last_heartbeat, hub_replica, certificate_not_after, revoked_at, created_at, version";

fn cluster_from_row(row: &Row) -> Result<ClusterRecord> {
    Ok(ClusterRecord {
        name: row.try_get("name")?,
        labels: row.try_get::<Json<Labels>, _>("labels")?.0,
        annotations: row.try_get::<Json<Labels>, _>("annotations")?.0,
        server_url: row.try_get("server_url")?,
        versions: row.try_get::<Json<ClusterVersions>, _>("versions")?.0,
        connection: ClusterConnection {
            state: parse_connection(row.try_get("conn_state")?)?,
            since: opt_from_ms(row.try_get("conn_since")?),
            last_heartbeat: opt_from_ms(row.try_get("last_heartbeat")?),
            hub_replica: row.try_get("hub_replica")?,
        },
        certificate_not_after: opt_from_ms(row.try_get("certificate_not_after")?),
        revoked_at: opt_from_ms(row.try_get("revoked_at")?),
        created_at: from_ms(row.try_get("created_at")?),
        version: to_u64(row.try_get("version")?),
    })
}

const APP_COLUMNS: &str = "a.id, a.uid, a.project, a.name, a.spec, a.labels, a.origin, a.owner_kind, \
     a.owner_project, a.owner_name, a.owner_scope, a.spec_version, a.cluster, a.namespace, \
     a.desired_version, a.created_at, s.updated_at, s.status";

fn owner_from_row(row: &Row) -> Result<Option<OwnerRef>> {
    let kind: Option<String> = row.try_get("owner_kind")?;
    let text = |column: &str| -> Result<String> {
        Ok(row
            .try_get::<Option<String>, _>(column)?
            .unwrap_or_default())
    };
    Ok(match kind {
        Some(kind) => Some(OwnerRef {
            kind,
            project: text("owner_project")?,
            name: text("owner_name")?,
            scope: text("owner_scope")?,
        }),
        None => None,
    })
}

fn app_from_row(row: &Row) -> Result<AppRecord> {
    Ok(AppRecord {
        uid: row.try_get("uid")?,
        project: row.try_get("project")?,
        name: row.try_get("name")?,
        spec: row.try_get::<Json<ApplicationSpec>, _>("spec")?.0,
        labels: row.try_get::<Json<Labels>, _>("labels")?.0,
        origin: parse_origin(row.try_get("origin")?)?,
        owner: owner_from_row(row)?,
        spec_version: to_u64(row.try_get("spec_version")?),
        cluster: row.try_get("cluster")?,
        namespace: row.try_get("namespace")?,
        desired_version: to_u64(row.try_get("desired_version")?),
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        status: row
            .try_get::<Option<Json<ApplicationStatus>>, _>("status")?
            .map(|s| s.0),
    })
}

fn summary_from_row(row: &Row) -> Result<AppSummary> {
    let conn: Option<&str> = row.try_get("conn_state")?;
    Ok(AppSummary {
        project: row.try_get("project")?,
        name: row.try_get("name")?,
        cluster: row.try_get("cluster")?,
        namespace: row.try_get("namespace")?,
        repo_url: row.try_get("repo_url")?,
        path: row.try_get("path")?,
        target_revision: row.try_get("target_revision")?,
        sync: parse_sync(row.try_get("sync")?)?,
        health: parse_health(row.try_get("health")?)?,
        revision: row.try_get("revision")?,
        operation_phase: parse_phase(row.try_get("operation_phase")?)?,
        labels: row.try_get::<Json<Labels>, _>("labels")?.0,
        updated_at: from_ms(row.try_get("updated_at")?),
        origin: parse_origin(row.try_get("origin")?)?,
        owner: owner_from_row(row)?,
        cluster_connection: conn.map(parse_connection).transpose()?,
        spec_version: to_u64(row.try_get("spec_version")?),
        automated: row.try_get("automated")?,
        error_conditions: u32::try_from(row.try_get::<i32, _>("error_conditions")?).unwrap_or(0),
        status_version: to_u64(row.try_get("status_version")?),
    })
}

const COMMAND_COLUMNS: &str = "seq, id, project, app, cluster, kind, payload, issued_by, issued_at, \
     deadline, outcome, message, result, delivered_at, updated_at, traceparent, tracestate";

fn command_from_row(row: &Row) -> Result<CommandRecord> {
    Ok(CommandRecord {
        id: row.try_get("id")?,
        seq: to_u64(row.try_get("seq")?),
        project: row.try_get("project")?,
        app: row.try_get("app")?,
        cluster: row.try_get("cluster")?,
        kind: row.try_get("kind")?,
        payload: row.try_get::<Json<serde_json::Value>, _>("payload")?.0,
        issued_by: row.try_get("issued_by")?,
        issued_at: from_ms(row.try_get("issued_at")?),
        deadline: from_ms(row.try_get("deadline")?),
        outcome: parse_outcome(row.try_get("outcome")?)?,
        message: row.try_get("message")?,
        result: row
            .try_get::<Option<Json<serde_json::Value>>, _>("result")?
            .map(|r| r.0),
        delivered_at: opt_from_ms(row.try_get("delivered_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        trace: edgecd_telemetry::TraceContext::parse(
            row.try_get("traceparent")?,
            row.try_get("tracestate")?,
        ),
    })
}

fn event_from_row(row: &Row) -> Result<EventRecord> {
    Ok(EventRecord {
        id: row.try_get("id")?,
        cluster: row.try_get("cluster")?,
        project: row.try_get("project")?,
        app: row.try_get("app")?,
        resource: row.try_get("resource")?,
        severity: parse_severity(row.try_get("severity")?)?,
        reason: row.try_get("reason")?,
        message: row.try_get("message")?,
        time: from_ms(row.try_get("time")?),
        seq: to_u64(row.try_get("seq")?),
    })
}

fn deployment_from_row(row: &Row) -> Result<Deployment> {
    let result: String = row.try_get("result")?;
    let kind: String = row.try_get("kind")?;
    Ok(Deployment {
        cluster: row.try_get("cluster")?,
        project: row.try_get("project")?,
        app: row.try_get("app")?,
        history_id: row.try_get("history_id")?,
        rollback_of: (kind == "rollback")
            .then(|| row.try_get("rollback_of"))
            .transpose()?,
        result: OperationPhase::parse(&result).ok_or_else(|| StoreError::Corrupt {
            reason: format!("deployment result {result:?}"),
        })?,
        from_revision: row.try_get("from_revision")?,
        to_revision: row.try_get("to_revision")?,
        initiated_by: row.try_get("initiated_by")?,
        started_at: from_ms(row.try_get("started_at")?),
        finished_at: from_ms(row.try_get("finished_at")?),
        trace_id: row.try_get("trace_id")?,
        message: row.try_get("message")?,
        command_id: row.try_get("command_id")?,
    })
}

const USER_COLUMNS: &str = "name, password_hash, admin, roles, created_at, version";

fn user_from_row(row: &Row) -> Result<UserRecord> {
    Ok(UserRecord {
        name: row.try_get("name")?,
        password_hash: row
            .try_get::<Option<String>, _>("password_hash")?
            .map(Redacted),
        admin: row.try_get("admin")?,
        roles: row.try_get::<Json<Vec<String>>, _>("roles")?.0,
        created_at: from_ms(row.try_get("created_at")?),
        version: to_u64(row.try_get("version")?),
    })
}

const TOKEN_COLUMNS: &str =
    "id, owner, description, token_hash, roles, created_at, expires_at, revoked_at";

fn token_from_row(row: &Row) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        description: row.try_get("description")?,
        token_hash: Redacted(row.try_get("token_hash")?),
        roles: row.try_get::<Json<Vec<String>>, _>("roles")?.0,
        created_at: from_ms(row.try_get("created_at")?),
        expires_at: opt_from_ms(row.try_get("expires_at")?),
        revoked_at: opt_from_ms(row.try_get("revoked_at")?),
    })
}

// === Helpers over a connection (inside a transaction or not) ===

/// Replaces a cluster's rows in `cluster_labels`, or an app's in `app_labels`.
async fn replace_labels<T>(
    conn: &mut Conn,
    table: &str,
    owner_column: &str,
    owner: T,
    labels: &Labels,
) -> Result<()>
where
    T: Copy + for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db>,
{
    let mut args = Args::default();
    let p = args.add(owner)?;
    let delete = format!("DELETE FROM {table} WHERE {owner_column} = {p}");
    sqlx::query_with(AssertSqlSafe(delete), args.0)
        .execute(&mut *conn)
        .await?;
    if labels.is_empty() {
        return Ok(());
    }
    let mut args = Args::default();
    let p = args.add(owner)?;
    let rows = Table::default()
        .text("k", labels.keys().map(String::as_str))
        .text("v", labels.values().map(String::as_str))
        .bind(&mut args, "t")?;
    let insert =
        format!("INSERT INTO {table} ({owner_column}, key, value) SELECT {p}, k, v FROM {rows}");
    sqlx::query_with(AssertSqlSafe(insert), args.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Allocates the next desired-set version of a cluster. The row lock it
/// takes serialises desired-set changes of one cluster, so versions commit
/// in order.
async fn bump_desired_version(conn: &mut Conn, cluster: &str) -> Result<i64> {
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO cluster_link (cluster, desired_version) VALUES ($1, 1) \
         ON CONFLICT (cluster) DO UPDATE SET desired_version = cluster_link.desired_version + 1 \
         RETURNING desired_version",
    )
    .bind(cluster)
    .fetch_one(&mut *conn)
    .await?;
    Ok(version)
}

/// Begins the transaction storing a sequenced spoke message and records
/// `(epoch, seq)` as processed in it, locking the cluster's link row; `None`
/// if it already was (a duplicate: nothing is written).
async fn begin_ingest<'c>(
    pool: &'c sqlx::Pool<Db>,
    cluster: &str,
    at: &SpokeSeq,
) -> Result<Option<sqlx::Transaction<'c, Db>>> {
    let mut tx = pool.begin_with(dialect::BEGIN_WRITE).await?;
    // One statement: a conflicting row is locked even when the WHERE clause
    // leaves it unchanged (a duplicate), and nothing is returned then.
    // A stream that no longer owns the link stores nothing: the WHERE clause is checked on the row as locked,
    // after an `open_link` that committed meanwhile.
    let fresh = sqlx::query(
        "INSERT INTO cluster_link (cluster, spoke_epoch, spoke_seq, stream) VALUES ($1, $2, $3, COALESCE($4, '')) \
         ON CONFLICT (cluster) DO UPDATE SET spoke_epoch = EXCLUDED.spoke_epoch, spoke_seq = EXCLUDED.spoke_seq \
         WHERE NOT (cluster_link.spoke_epoch = EXCLUDED.spoke_epoch AND cluster_link.spoke_seq >= EXCLUDED.spoke_seq) \
         AND ($4 IS NULL OR cluster_link.stream = $4) \
         RETURNING 1",
    )
    .bind(cluster)
    .bind(&at.epoch)
    .bind(to_i64(at.seq))
    .bind(at.stream.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    if fresh.is_some() {
        return Ok(Some(tx));
    }
    // A duplicate, or a stream taken over.
    if let Some(stream) = &at.stream {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT stream FROM cluster_link WHERE cluster = $1")
                .bind(cluster)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.as_deref() != Some(stream.as_str()) {
            return Err(StoreError::Superseded {
                what: format!("the stream of cluster {cluster}"),
            });
        }
    }
    Ok(None)
}

async fn fetch_app(conn: &mut Conn, project: &str, name: &str) -> Result<AppRecord> {
    let sql = format!(
        "SELECT {APP_COLUMNS} FROM applications a JOIN app_status s ON s.app_id = a.id \
         WHERE a.project = $1 AND a.name = $2"
    );
    let row = keyed(&sql, &[project, name]).fetch_optional(conn).await?;
    app_from_row(&row.ok_or_else(|| not_found(format!("application {project}/{name}")))?)
}

/// The destination cluster: `destination.name`, or the registered cluster
/// whose reported API server URL is `destination.server`.
async fn resolve_destination(conn: &mut Conn, spec: &ApplicationSpec) -> Result<String> {
    if !spec.destination.cluster.is_empty() {
        ClusterName::parse(&spec.destination.cluster).map_err(invalid)?;
        return Ok(spec.destination.cluster.clone());
    }
    if spec.destination.server.is_empty() {
        return Err(StoreError::Invalid {
            reason: "destination names no cluster".into(),
        });
    }
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM clusters WHERE server_url = $1 ORDER BY name LIMIT 1")
            .bind(&spec.destination.server)
            .fetch_optional(&mut *conn)
            .await?;
    name.ok_or_else(|| StoreError::Invalid {
        reason: format!("no cluster reports server {}", spec.destination.server),
    })
}

async fn require_project(conn: &mut Conn, project: &str) -> Result<()> {
    let row = keyed("SELECT 1 FROM projects WHERE name = $1", &[project]).fetch_optional(conn);
    row.await?
        .map(|_| ())
        .ok_or_else(|| not_found(format!("project {project}")))
}

/// An app to insert: its spec with the project set, its cluster and that
/// cluster's desired version (0 for an app created at an edge).
struct AppRow<'a> {
    app: &'a NewApp,
    spec: ApplicationSpec,
    cluster: &'a str,
    desired_version: i64,
}

impl<'a> AppRow<'a> {
    fn new(app: &'a NewApp, cluster: &'a str, desired_version: i64) -> Self {
        let mut spec = app.spec.clone();
        spec.project = app.project.clone();
        Self {
            app,
            spec,
            cluster,
            desired_version,
        }
    }
}

/// Inserts apps of one origin (the insert trigger of migration 0011 adds
/// their status rows) and their labels, in two statements over tables of
/// values; returns their ids in row order. `what` names them if one exists.
async fn insert_apps(
    conn: &mut Conn,
    origin: &str,
    rows: &[AppRow<'_>],
    what: impl Fn() -> String,
) -> Result<Vec<i64>> {
    let uids: Vec<String> = rows
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let json = |f: fn(&AppRow) -> serde_json::Result<String>| {
        rows.iter()
            .map(f)
            .collect::<std::result::Result<Vec<_>, _>>()
    };
    let specs = json(|r| serde_json::to_string(&r.spec))?;
    let labels = json(|r| serde_json::to_string(&r.app.labels))?;
    let owner = |f: fn(&OwnerRef) -> &str| rows.iter().map(move |r| r.app.owner.as_ref().map(f));
    let spec = || rows.iter().map(|r| &r.spec);
    let mut args = Args::default();
    let (origin, now) = (args.add(origin)?, args.add(now_ms())?);
    let t = Table::default()
        .text("uid", uids.iter().map(String::as_str))
        .text("project", rows.iter().map(|r| r.app.project.as_str()))
        .text("name", rows.iter().map(|r| r.app.name.as_str()))
        .text("spec", specs.iter().map(String::as_str))
        .text("labels", labels.iter().map(String::as_str))
        .opt_text("owner_kind", owner(|o| &o.kind))
        .opt_text("owner_project", owner(|o| &o.project))
        .opt_text("owner_name", owner(|o| &o.name))
        .opt_text("owner_scope", owner(|o| &o.scope))
        .text("cluster", rows.iter().map(|r| r.cluster))
        .text("namespace", spec().map(|s| &*s.destination.namespace))
        .text("repo_url", spec().map(|s| &*s.primary_source().repo_url))
        .text("path", spec().map(|s| &*s.primary_source().path))
        .text(
            "target_revision",
            spec().map(|s| &*s.primary_source().target_revision),
        )
        .bool("automated", spec().map(|s| s.automated().is_some()))
        .bigint("desired_version", rows.iter().map(|r| r.desired_version))
        .bind(&mut args, "t")?;
    let insert = format!(
        "INSERT INTO applications (uid, project, name, spec, labels, origin, owner_kind, owner_project, \
         owner_name, owner_scope, spec_version, cluster, namespace, repo_url, path, target_revision, \
         automated, desired_version, created_at) \
         SELECT uid, project, name, spec{jsonb}, labels{jsonb}, {origin}, owner_kind, owner_project, \
         owner_name, owner_scope, 1, cluster, namespace, repo_url, path, target_revision, automated, \
         desired_version, {now} FROM {t} ORDER BY ord RETURNING uid, id",
        jsonb = dialect::JSONB
    );
    let inserted: HashMap<String, i64> = sqlx::query_as_with(AssertSqlSafe(insert), args.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::classify(&what))?
        .into_iter()
        .collect();
    let ids = uids
        .iter()
        .map(|uid| inserted.get(uid).copied().ok_or_else(not_returned))
        .collect::<Result<Vec<i64>>>()?;
    // Each label names its app's cluster, so the label trigger (0007) has
    // nothing to look up.
    let labels: Vec<(i64, &str, &str, &str)> = ids
        .iter()
        .zip(rows)
        .flat_map(|(id, r)| {
            r.app
                .labels
                .iter()
                .map(move |(k, v)| (*id, r.cluster, k.as_str(), v.as_str()))
        })
        .collect();
    if !labels.is_empty() {
        let mut args = Args::default();
        let l = Table::default()
            .bigint("app_id", labels.iter().map(|l| l.0))
            .text("cluster", labels.iter().map(|l| l.1))
            .text("k", labels.iter().map(|l| l.2))
            .text("v", labels.iter().map(|l| l.3))
            .bind(&mut args, "l")?;
        let insert = format!(
            "INSERT INTO app_labels (app_id, cluster, key, value) SELECT app_id, cluster, k, v FROM {l}"
        );
        sqlx::query_with(AssertSqlSafe(insert), args.0)
            .execute(&mut *conn)
            .await?;
    }
    Ok(ids)
}

async fn delete_tombstone(conn: &mut Conn, cluster: &str, project: &str, name: &str) -> Result<()> {
    let delete = "DELETE FROM app_tombstones WHERE cluster = $1 AND project = $2 AND name = $3";
    keyed(delete, &[cluster, project, name])
        .execute(conn)
        .await?;
    Ok(())
}

/// The locked identity columns of an app, for updates.
struct LockedApp {
    id: i64,
    uid: String,
    origin: AppOrigin,
    spec_version: u64,
    cluster: String,
    status_version: u64,
}

async fn lock_app(conn: &mut Conn, project: &str, name: &str) -> Result<Option<LockedApp>> {
    let sql = format!(
        "SELECT a.id, a.uid, a.origin, a.spec_version, a.cluster, s.status_version \
         FROM applications a JOIN app_status s ON s.app_id = a.id \
         WHERE a.project = $1 AND a.name = $2{}",
        dialect::FOR_UPDATE
    );
    let row = keyed(&sql, &[project, name]).fetch_optional(conn).await?;
    row.map(|row| {
        Ok(LockedApp {
            id: row.try_get("id")?,
            uid: row.try_get("uid")?,
            origin: parse_origin(row.try_get("origin")?)?,
            spec_version: to_u64(row.try_get("spec_version")?),
            cluster: row.try_get("cluster")?,
            status_version: to_u64(row.try_get("status_version")?),
        })
    })
    .transpose()
}

async fn write_tombstone(
    conn: &mut Conn,
    cluster: &str,
    project: &str,
    name: &str,
    uid: &str,
    keep_resources: bool,
) -> Result<()> {
    let version = bump_desired_version(conn, cluster).await?;
    sqlx::query(
        "INSERT INTO app_tombstones (cluster, project, name, uid, desired_version, deleted_at, keep_resources) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cluster, project, name) \
         DO UPDATE SET uid = EXCLUDED.uid, desired_version = EXCLUDED.desired_version, \
         deleted_at = EXCLUDED.deleted_at, keep_resources = EXCLUDED.keep_resources",
    )
    .bind(cluster)
    .bind(project)
    .bind(name)
    .bind(uid)
    .bind(version)
    .bind(now_ms())
    .bind(keep_resources)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The filter to run in SQL, with cluster-side filters resolved to cluster
/// names when that is exact (see `query::cluster_prefilter`) and selective
/// app-label selectors or name searches resolved to app ids (see
/// `query::app_label_prefilter`, `query::search_prefilter`); `None` if
/// nothing can match. The second value is the exact total when the
/// resolved ids are the whole answer (no count query needed).
async fn resolve_filter(
    conn: &mut Conn,
    filter: &AppFilter,
) -> Result<Option<(AppFilter, Option<i64>)>> {
    let mut filter = match query::cluster_prefilter(filter) {
        None => filter.clone(),
        Some(pre) => {
            let names: Vec<String> =
                sqlx::query_scalar_with(AssertSqlSafe(pre.text), args(pre.binds)?)
                    .fetch_all(&mut *conn)
                    .await?;
            match query::apply_prefilter(filter, names) {
                Some(filter) => filter,
                None => return Ok(None),
            }
        }
    };
    let mut total = None;
    for (kind, pre) in [
        (
            query::Prefilter::AppLabels,
            query::app_label_prefilter(&filter),
        ),
        (query::Prefilter::Search, query::search_prefilter(&filter)),
    ] {
        // At most one prefilter resolves ids (the search one never runs
        // with an app-label selector).
        let Some(pre) = pre else { continue };
        let ids: Vec<i64> = sqlx::query_scalar_with(AssertSqlSafe(pre.text), args(pre.binds)?)
            .fetch_all(&mut *conn)
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        if ids.len() <= query::MAX_RESOLVED_APPS {
            if query::prefilter_is_whole(&filter, kind) {
                total = i64::try_from(ids.len()).ok();
            }
            filter.resolved_app_ids = Some(ids);
        }
    }
    Ok(Some((filter, total)))
}

/// The exact total of a resolved filter: known from the prefilter, a sum
/// over the counts table, or a `count(*)`.
async fn filter_total(conn: &mut Conn, filter: &AppFilter, known: Option<i64>) -> Result<i64> {
    if let Some(total) = known {
        return Ok(total);
    }
    let count = query::counts_total_sql(filter).unwrap_or_else(|| query::count_sql(filter));
    Ok(
        sqlx::query_scalar_with(AssertSqlSafe(count.text), args(count.binds)?)
            .fetch_one(&mut *conn)
            .await?,
    )
}

impl Backend {
    /// The pool of API calls and everything else.
    pub fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    /// The plans (`dialect::EXPLAIN` lines) of the queries the first page of
    /// `query` runs after its prefilters: the page, then the total when one
    /// is counted. For tests and for diagnosing a slow list: which index
    /// answers a filter.
    pub async fn explain_list_apps(&self, query: &AppQuery) -> Result<Vec<String>> {
        let page_size = query::clamp_page_size(query.page_size);
        let mut tx = self.pool.begin_with(dialect::BEGIN_READ).await?;
        let Some((sql_filter, known_total)) = resolve_filter(&mut tx, &query.filter).await? else {
            return Ok(Vec::new());
        };
        let list = query::list_sql(&sql_filter, &query.filter, query.sort, None, page_size)?;
        let mut statements = vec![list];
        if known_total.is_none() {
            statements.push(
                query::counts_total_sql(&sql_filter)
                    .unwrap_or_else(|| query::count_sql(&sql_filter)),
            );
        }
        let mut plan = Vec::new();
        for statement in statements {
            let text = format!("{} {}", dialect::EXPLAIN, statement.text);
            let rows = sqlx::query_with(AssertSqlSafe(text), args(statement.binds)?)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                plan.push(row.try_get::<String, _>(dialect::PLAN_COLUMN)?);
            }
        }
        tx.commit().await?;
        Ok(plan)
    }
}

/// Makes sure the `default` project exists (at open, after the migrations).
pub(super) async fn create_default_project(pool: &sqlx::Pool<Db>) -> Result<()> {
    let (name, spec) = crate::store::default_project();
    sqlx::query(
        "INSERT INTO projects (name, spec, version, created_at) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(Json(&spec))
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

// === Status ingest ===

async fn write_status(
    conn: &mut Conn,
    app_id: i64,
    status: &ApplicationStatus,
    snapshot: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE app_status SET sync = $2, health = $3, revision = $4, operation_phase = $5, \
         error_conditions = $6, status_version = $7, updated_at = $8, snapshot_id = COALESCE($9, snapshot_id), \
         status = $10 WHERE app_id = $1",
    )
    .bind(app_id)
    .bind(status.sync.status.as_str())
    .bind(status.health.status.as_str())
    .bind(&status.sync.revision)
    .bind(phase_of(status))
    .bind(error_conditions(status))
    .bind(to_i64(status.status_version))
    .bind(now)
    .bind(snapshot)
    .bind(Json(status))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets apps the spoke no longer reports: deletes the autonomous ones
/// `apps` selects (over `applications`) and resets the status of the managed
/// ones `statuses` selects (over their status rows `s`), both with `binds`.
async fn forget(
    conn: &mut Conn,
    apps: &str,
    statuses: &str,
    binds: Vec<Bind>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    let delete = format!("DELETE FROM applications WHERE origin = 'Autonomous' AND {apps}");
    let deleted = sqlx::query_with(AssertSqlSafe(delete), args(binds.clone())?)
        .execute(&mut *conn)
        .await?;
    outcome.deleted += to_u32(deleted.rows_affected());
    let reset = format!(
        "UPDATE app_status AS s SET sync = 'Unknown', health = 'Unknown', revision = '', \
         operation_phase = '', error_conditions = 0, status_version = 0, updated_at = {}, \
         status = NULL FROM applications a \
         WHERE a.id = s.app_id AND a.origin = 'Managed' AND {statuses}",
        now_ms()
    );
    let reset = sqlx::query_with(AssertSqlSafe(reset), args(binds)?)
        .execute(&mut *conn)
        .await?;
    outcome.reset += to_u32(reset.rows_affected());
    Ok(())
}

async fn ingest_report(
    conn: &mut Conn,
    cluster: &str,
    report: &StatusReport,
    snapshot: Option<&str>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    let now = now_ms();
    let Some(app) = lock_app(conn, &report.project, &report.name).await? else {
        let Some(autonomous) = &report.autonomous else {
            outcome.rejected += 1;
            return Ok(());
        };
        // An edge app is named `name@cluster` after the cluster that reports it
        // (the link translates); a report naming another cluster is refused.
        if AppRef::parse(&report.project, &report.name).is_err()
            || edgecd_core::split_edge_app_name(&report.name).1 != Some(cluster)
            || require_project(conn, &report.project).await.is_err()
        {
            outcome.rejected += 1;
            return Ok(());
        }
        let app = NewApp {
            project: report.project.clone(),
            name: report.name.clone(),
            spec: autonomous.spec.clone(),
            labels: autonomous.labels.clone(),
            owner: autonomous.owner.clone(),
        };
        let what = || format!("application {}/{}", app.project, app.name);
        let ids = insert_apps(conn, "Autonomous", &[AppRow::new(&app, cluster, 0)], what).await?;
        let id = ids.first().copied().ok_or_else(not_returned)?;
        write_status(conn, id, &report.status, snapshot, now).await?;
        outcome.created += 1;
        return Ok(());
    };
    let origin_matches = (app.origin == AppOrigin::Autonomous) == report.autonomous.is_some();
    if app.cluster != cluster || !origin_matches {
        outcome.rejected += 1;
        return Ok(());
    }
    if let Some(snapshot) = snapshot {
        sqlx::query("UPDATE app_status SET snapshot_id = $2 WHERE app_id = $1")
            .bind(app.id)
            .bind(snapshot)
            .execute(&mut *conn)
            .await?;
    }
    if report.status.status_version <= app.status_version {
        outcome.stale += 1;
        return Ok(());
    }
    if let Some(autonomous) = &report.autonomous {
        let mut spec = autonomous.spec.clone();
        spec.project = report.project.clone();
        let owner = autonomous.owner.as_ref();
        sqlx::query(
            "UPDATE applications SET spec = $2, labels = $3, owner_kind = $4, owner_project = $5, \
             owner_name = $6, owner_scope = $7, namespace = $8, repo_url = $9, path = $10, \
             target_revision = $11, automated = $12, \
             spec_version = spec_version + CASE WHEN spec = $2 AND labels = $3 THEN 0 ELSE 1 END \
             WHERE id = $1",
        )
        .bind(app.id)
        .bind(Json(&spec))
        .bind(Json(&autonomous.labels))
        .bind(owner.map(|o| o.kind.as_str()))
        .bind(owner.map(|o| o.project.as_str()))
        .bind(owner.map(|o| o.name.as_str()))
        .bind(owner.map(|o| o.scope.as_str()))
        .bind(&spec.destination.namespace)
        .bind(&spec.primary_source().repo_url)
        .bind(&spec.primary_source().path)
        .bind(&spec.primary_source().target_revision)
        .bind(spec.automated().is_some())
        .execute(&mut *conn)
        .await?;
        replace_labels(conn, "app_labels", "app_id", app.id, &autonomous.labels).await?;
    }
    write_status(conn, app.id, &report.status, snapshot, now).await?;
    outcome.applied += 1;
    Ok(())
}

/// The apps `reports` name, by (project, name), as one lookup reads them: id, cluster, origin, status version.
async fn reported_apps(
    conn: &mut Conn,
    reports: &[&StatusReport],
) -> Result<HashMap<(String, String), ReportedApp>> {
    let mut known = HashMap::with_capacity(reports.len());
    if reports.is_empty() {
        return Ok(known);
    }
    let mut args = Args::default();
    let pairs = Table::default()
        .text("project", reports.iter().map(|r| r.project.as_str()))
        .text("name", reports.iter().map(|r| r.name.as_str()))
        .bind(&mut args, "r")?;
    let rows = sqlx::query_with(AssertSqlSafe(dialect::reported_apps(&pairs)), args.0)
        .fetch_all(&mut *conn)
        .await?;
    for row in &rows {
        known.insert(
            (row.try_get("project")?, row.try_get("name")?),
            ReportedApp {
                id: row.try_get("id")?,
                cluster: row.try_get("cluster")?,
                origin: parse_origin(row.try_get("origin")?)?,
                status_version: to_u64(row.try_get("status_version")?),
            },
        );
    }
    Ok(known)
}

/// Stores the managed apps' reports of a batch set-based: one lookup of
/// every reported app (`dialect::reported_apps`), the ingest rules applied
/// in memory in batch order (`codec::plan_managed_reports`), then one
/// statement that updates the status rows (columns and document) of the
/// newest report per app (the stale-version check repeated in SQL), and,
/// for a snapshot part, one statement stamping the snapshot id on reported
/// apps whose status was stale. Same outcome as taking the reports one by
/// one in order.
async fn ingest_managed_reports(
    conn: &mut Conn,
    cluster: &str,
    reports: &[&StatusReport],
    snapshot: Option<&str>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let known = reported_apps(conn, reports).await?;
    let ManagedWrites { newest, stale } = plan_managed_reports(cluster, reports, known, outcome);
    if !newest.is_empty() {
        let rows: Vec<(i64, &StatusReport, &str)> =
            newest.iter().map(|(id, r)| (*id, *r, cluster)).collect();
        let written = write_newest(conn, &rows, snapshot).await?;
        // A concurrent move of an app to another cluster: not written after all.
        let lost = to_u32((newest.len() as u64).saturating_sub(written.len() as u64));
        outcome.applied = outcome.applied.saturating_sub(lost);
        outcome.rejected += lost;
    }
    if let Some(snapshot) = snapshot
        && !stale.is_empty()
    {
        let mut args = Args::default();
        let ids = dialect::in_list(&mut args, Column::BigInt(stale))?;
        let snapshot = args.add(snapshot)?;
        let cluster = args.add(cluster)?;
        sqlx::query_with(
            AssertSqlSafe(format!(
                "UPDATE app_status SET snapshot_id = {snapshot} WHERE app_id {ids} \
                 AND cluster = {cluster} AND snapshot_id IS DISTINCT FROM {snapshot}"
            )),
            args.0,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes the newest status of each app in `rows` (id, report, the reporting cluster) in one statement, where
/// the app is still that cluster's and its stored version older (a concurrent change is never overwritten),
/// stamping `snapshot` if given; returns the ids written.
async fn write_newest(
    conn: &mut Conn,
    rows: &[(i64, &StatusReport, &str)],
    snapshot: Option<&str>,
) -> Result<BTreeSet<i64>> {
    let statuses: Vec<&ApplicationStatus> = rows.iter().map(|(_, r, _)| &r.status).collect();
    let documents = documents(&statuses)?;
    let mut args = Args::default();
    let v = Table::default()
        .bigint("id", rows.iter().map(|(id, ..)| *id))
        .text("cluster", rows.iter().map(|(_, _, cluster)| *cluster));
    let v = status_columns(v, &statuses, &documents).bind(&mut args, "v")?;
    let now = args.add(now_ms())?;
    let snapshot_id = args.add(snapshot)?;
    // One narrow status row per app (migration 0011); an app's origin never changes, so the lookup's Managed
    // check holds.
    let probe = dialect::probe_ids(
        &mut args,
        "s.app_id",
        rows.iter().map(|(id, ..)| *id).collect(),
    )?;
    let written = sqlx::query_scalar_with(
        AssertSqlSafe(format!(
            "UPDATE app_status AS s SET sync = v.sync, health = v.health, revision = v.revision, \
             operation_phase = v.phase, error_conditions = v.errors, status_version = v.status_version, \
             updated_at = {now}, snapshot_id = COALESCE({snapshot_id}, s.snapshot_id), \
             status = v.status{jsonb} FROM {v} \
             WHERE {probe}s.app_id = v.id AND s.cluster = v.cluster \
             AND s.status_version < v.status_version RETURNING app_id",
            jsonb = dialect::JSONB
        )),
        args.0,
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(written.into_iter().collect())
}

/// Stores groupable status batches of distinct clusters (sorted by cluster) in one transaction: one statement
/// fences them all (as `begin_ingest` fences one), one looks their apps up, one writes the newest statuses,
/// one announces the clusters that changed. Each batch's outcome is what `ingest_status_batch` gives it.
async fn ingest_shared(
    store: &Backend,
    writes: &[&StatusWrite],
) -> Result<Vec<Result<IngestOutcome>>> {
    let mut tx = store.link().begin_with(dialect::BEGIN_WRITE).await?;
    let mut args = Args::default();
    let fence = Table::default()
        .text("cluster", writes.iter().map(|w| w.cluster.as_str()))
        .text("epoch", writes.iter().map(|w| w.at.epoch.as_str()))
        .bigint("seq", writes.iter().map(|w| to_i64(w.at.seq)))
        .text(
            "stream",
            writes
                .iter()
                .map(|w| w.at.stream.as_deref().unwrap_or_default()),
        )
        .bind(&mut args, "f")?;
    // `WHERE true`: SQLite reads `ON CONFLICT` after a bare `FROM` as a join's.
    let fresh: BTreeSet<String> = sqlx::query_scalar_with(
        AssertSqlSafe(format!(
            "INSERT INTO cluster_link (cluster, spoke_epoch, spoke_seq, stream) \
             SELECT f.cluster, f.epoch, f.seq, f.stream FROM {fence} WHERE true ORDER BY f.ord \
             ON CONFLICT (cluster) DO UPDATE SET spoke_epoch = EXCLUDED.spoke_epoch, spoke_seq = EXCLUDED.spoke_seq \
             WHERE NOT (cluster_link.spoke_epoch = EXCLUDED.spoke_epoch AND cluster_link.spoke_seq >= EXCLUDED.spoke_seq) \
             AND cluster_link.stream = EXCLUDED.stream \
             RETURNING cluster"
        )),
        args.0,
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // The others: duplicates, or streams taken over.
    let stale: Vec<&str> = writes
        .iter()
        .filter(|w| !fresh.contains(&w.cluster))
        .map(|w| w.cluster.as_str())
        .collect();
    let mut owners = HashMap::new();
    if !stale.is_empty() {
        let mut args = Args::default();
        let list = dialect::in_list(&mut args, Column::text(stale.iter().copied()))?;
        let rows: Vec<(String, String)> = sqlx::query_as_with(
            AssertSqlSafe(format!(
                "SELECT cluster, stream FROM cluster_link WHERE cluster {list}"
            )),
            args.0,
        )
        .fetch_all(&mut *tx)
        .await?;
        owners.extend(rows);
    }
    let mut outcomes: Vec<Result<IngestOutcome>> = Vec::with_capacity(writes.len());
    let mut newest: Vec<(i64, &StatusReport, &str, usize)> = Vec::new();
    let reports: Vec<&StatusReport> = writes
        .iter()
        .filter(|w| fresh.contains(&w.cluster))
        .flat_map(|w| w.batch.reports.iter())
        .collect();
    let known = reported_apps(&mut tx, &reports).await?;
    for (index, write) in writes.iter().enumerate() {
        let cluster = write.cluster.as_str();
        if !fresh.contains(cluster) {
            // As `begin_ingest`: a duplicate only while the stream owns the link.
            outcomes.push(match owners.get(cluster) {
                Some(owner) if Some(owner) == write.at.stream.as_ref() => Ok(IngestOutcome {
                    shared: true,
                    ..duplicate()
                }),
                _ => Err(StoreError::Superseded {
                    what: format!("the stream of cluster {cluster}"),
                }),
            });
            continue;
        }
        let reports: Vec<&StatusReport> = write.batch.reports.iter().collect();
        // This cluster's apps only: an app belongs to one cluster, so no other write of the group plans it.
        let mine = reports
            .iter()
            .filter_map(|r| {
                let key = (r.project.clone(), r.name.clone());
                known
                    .get(&key)
                    .filter(|app| app.cluster == cluster)
                    .map(|app| (key, app.clone()))
            })
            .collect();
        let mut outcome = IngestOutcome {
            shared: true,
            ..IngestOutcome::default()
        };
        let ManagedWrites {
            newest: planned, ..
        } = plan_managed_reports(cluster, &reports, mine, &mut outcome);
        newest.extend(planned.into_iter().map(|(id, r)| (id, r, cluster, index)));
        outcomes.push(Ok(outcome));
    }
    let mut notes = Notes::default();
    if !newest.is_empty() {
        let rows: Vec<(i64, &StatusReport, &str)> = newest
            .iter()
            .map(|(id, r, cluster, _)| (*id, *r, *cluster))
            .collect();
        let written = write_newest(&mut tx, &rows, None).await?;
        // A concurrent move of an app to another cluster: not written after all.
        for (id, _, _, index) in &newest {
            if !written.contains(id)
                && let Some(Ok(outcome)) = outcomes.get_mut(*index)
            {
                outcome.applied = outcome.applied.saturating_sub(1);
                outcome.rejected += 1;
            }
        }
    }
    for (write, outcome) in writes.iter().zip(&outcomes) {
        if let Ok(outcome) = outcome
            && outcome.applied > 0
        {
            notes.0.push((APPS_CHANNEL, write.cluster.clone()));
        }
    }
    dialect::commit(store, tx, notes).await?;
    Ok(outcomes)
}

/// The serialised status documents.
fn documents(statuses: &[&ApplicationStatus]) -> Result<Vec<String>> {
    let documents = statuses.iter().map(serde_json::to_string);
    Ok(documents.collect::<std::result::Result<_, _>>()?)
}

/// Adds a status row's columns (sync, health, revision, phase, errors,
/// status_version, status) to a table of values.
fn status_columns<'a>(
    table: Table<'a>,
    statuses: &[&'a ApplicationStatus],
    documents: &'a [String],
) -> Table<'a> {
    let each = || statuses.iter();
    table
        .text("sync", each().map(|s| s.sync.status.as_str()))
        .text("health", each().map(|s| s.health.status.as_str()))
        .text("revision", each().map(|s| s.sync.revision.as_str()))
        .text("phase", each().map(|s| phase_of(s)))
        .bigint("errors", each().map(|s| i64::from(error_conditions(s))))
        .bigint("status_version", each().map(|s| to_i64(s.status_version)))
        .text("status", documents.iter().map(String::as_str))
}

/// Applies one command update; `None` if the command is unknown (or of
/// another cluster), `Some(false)` if ignored as a regression.
async fn apply_command_update(
    conn: &mut Conn,
    cluster: Option<&str>,
    update: &CommandUpdate,
) -> Result<Option<bool>> {
    let sql = format!(
        "SELECT cluster, outcome FROM commands WHERE id = $1{}",
        dialect::FOR_UPDATE
    );
    let row = keyed(&sql, &[&update.id])
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let owner: String = row.try_get("cluster")?;
    if cluster.is_some_and(|c| c != owner) {
        return Ok(None);
    }
    let current = parse_outcome(row.try_get("outcome")?)?;
    if current.is_finished() || update.outcome.stage() < current.stage() {
        return Ok(Some(false));
    }
    sqlx::query(
        "UPDATE commands SET outcome = $2, message = $3, result = COALESCE($4, result), updated_at = $5, \
         delivered_at = COALESCE(delivered_at, CASE WHEN $2 <> 'Pending' THEN $5 END) WHERE id = $1",
    )
    .bind(&update.id)
    .bind(update.outcome.as_str())
    .bind(&update.message)
    .bind(update.result.as_ref().map(Json))
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(Some(true))
}

// === Small helpers ===

/// A page of rows, newest first (`newest_first`), to be decoded.
struct Rows {
    rows: Vec<Row>,
    next_cursor: Option<String>,
}

impl Rows {
    fn map<T>(self, from_row: impl Fn(&Row) -> Result<T>) -> Result<Page<T>> {
        Ok(Page {
            items: self.rows.iter().map(from_row).collect::<Result<_>>()?,
            next_cursor: self.next_cursor,
            total: None,
        })
    }
}

/// One page of `select` (`SELECT seq, … FROM table`) with `conditions`
/// (binds in `args`), newest first: the rows before the cursor's `seq`.
async fn newest_first(
    pool: &sqlx::Pool<Db>,
    select: &str,
    mut args: Args,
    mut conditions: Vec<String>,
    page_size: u32,
    cursor: Option<&str>,
) -> Result<Rows> {
    let page_size = query::clamp_page_size(page_size) as usize;
    let after = args.add(query::decode_id_cursor(cursor)?)?;
    conditions.push(format!("seq < {after}"));
    let limit = args.add(page_size as i64 + 1)?;
    let conditions = conditions.join(" AND ");
    let text = format!("{select} WHERE {conditions} ORDER BY seq DESC LIMIT {limit}");
    let mut rows = sqlx::query_with(AssertSqlSafe(text), args.0)
        .fetch_all(pool)
        .await?;
    let mut next_cursor = None;
    if rows.len() > page_size {
        rows.truncate(page_size);
        if let Some(last) = rows.last() {
            next_cursor = Some(query::encode_id_cursor(last.try_get("seq")?));
        }
    }
    Ok(Rows { rows, next_cursor })
}

/// `sql` with its `$1…` text keys bound.
fn keyed<'q>(sql: &'q str, keys: &[&'q str]) -> sqlx::query::Query<'q, Db, DbArgs> {
    let query = sqlx::query(AssertSqlSafe(sql));
    keys.iter().fold(query, |query, key| query.bind(*key))
}

/// The row `sql` finds by its `$1…` keys, or `NotFound` naming `what`.
async fn row_by(
    pool: &sqlx::Pool<Db>,
    sql: &str,
    keys: &[&str],
    what: impl FnOnce() -> String,
) -> Result<Row> {
    let row = keyed(sql, keys).fetch_optional(pool).await?;
    row.ok_or_else(|| not_found(what()))
}

/// Every row `sql` finds by its `$1…` keys, decoded.
async fn rows_by<T>(
    pool: &sqlx::Pool<Db>,
    sql: &str,
    keys: &[&str],
    from_row: fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let rows = keyed(sql, keys).fetch_all(pool).await?;
    rows.iter().map(from_row).collect()
}

/// What storing a message already stored did: nothing.
fn duplicate() -> IngestOutcome {
    IngestOutcome {
        duplicate: true,
        ..IngestOutcome::default()
    }
}

/// An inserted row that `RETURNING` did not return.
fn not_returned() -> StoreError {
    StoreError::Corrupt {
        reason: "an inserted row was not returned".into(),
    }
}

fn not_found(what: String) -> StoreError {
    StoreError::NotFound { what }
}

fn conflict(what: String, expected: u64, actual: u64) -> StoreError {
    StoreError::Conflict {
        what,
        expected,
        actual,
    }
}

fn invalid(error: edgecd_core::NameError) -> StoreError {
    StoreError::Invalid {
        reason: error.to_string(),
    }
}

fn expect_one(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows == 0 {
        Err(not_found(what()))
    } else {
        Ok(())
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// === impl Store ===

impl Backend {
    // --- projects ---
    #[tracing::instrument(skip_all, fields(project = name))]
    async fn create_project(&self, name: &str, spec: &ProjectSpec) -> Result<ProjectRecord> {
        ProjectName::parse(name).map_err(invalid)?;
        let row = sqlx::query(
            "INSERT INTO projects (name, spec, version, created_at) VALUES ($1, $2, 1, $3) \
             RETURNING name, spec, version, created_at",
        )
        .bind(name)
        .bind(Json(spec))
        .bind(now_ms())
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::classify(|| format!("project {name}")))?;
        project_from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(project = name))]
    async fn get_project(&self, name: &str) -> Result<ProjectRecord> {
        let select = "SELECT name, spec, version, created_at FROM projects WHERE name = $1";
        let row = row_by(self.pool(), select, &[name], || format!("project {name}")).await?;
        project_from_row(&row)
    }

    #[tracing::instrument(skip_all)]
    async fn list_projects(&self) -> Result<Vec<ProjectRecord>> {
        let select = "SELECT name, spec, version, created_at FROM projects ORDER BY name";
        rows_by(self.pool(), select, &[], project_from_row).await
    }

    #[tracing::instrument(skip_all, fields(project = name, expected_version))]
    async fn update_project(
        &self,
        name: &str,
        expected_version: u64,
        spec: &ProjectSpec,
    ) -> Result<ProjectRecord> {
        let row = sqlx::query(
            "UPDATE projects SET spec = $2, version = version + 1 WHERE name = $1 AND version = $3 \
             RETURNING name, spec, version, created_at",
        )
        .bind(name)
        .bind(Json(spec))
        .bind(to_i64(expected_version))
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => project_from_row(&row),
            None => {
                let current = self.get_project(name).await?.version;
                Err(conflict(
                    format!("project {name}"),
                    expected_version,
                    current,
                ))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(project = name))]
    async fn delete_project(&self, name: &str) -> Result<()> {
        let delete = keyed("DELETE FROM projects WHERE name = $1", &[name]).execute(self.pool());
        let result = delete
            .await
            .map_err(StoreError::classify(|| format!("project {name}")))?;
        expect_one(result.rows_affected(), || format!("project {name}"))
    }

    // --- clusters ---
    #[tracing::instrument(skip_all, fields(cluster = %cluster.name))]
    async fn create_cluster(&self, cluster: &NewCluster) -> Result<ClusterRecord> {
        ClusterName::parse(&cluster.name).map_err(invalid)?;
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO clusters (name, labels, annotations, server_url, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {CLUSTER_COLUMNS}"
        )))
        .bind(&cluster.name)
        .bind(Json(&cluster.labels))
        .bind(Json(&cluster.annotations))
        .bind(&cluster.server_url)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::classify(|| format!("cluster {}", cluster.name)))?;
        let name = cluster.name.as_str();
        replace_labels(&mut tx, "cluster_labels", "cluster", name, &cluster.labels).await?;
        tx.commit().await?;
        cluster_from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(cluster = name))]
    async fn get_cluster(&self, name: &str) -> Result<ClusterRecord> {
        let select = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = $1");
        let row = row_by(self.pool(), &select, &[name], || format!("cluster {name}")).await?;
        cluster_from_row(&row)
    }

    #[tracing::instrument(skip_all)]
    async fn list_clusters(&self, selector: &LabelSelector) -> Result<Vec<ClusterRecord>> {
        let filter = AppFilter {
            cluster_selector: selector.clone(),
            ..AppFilter::default()
        };
        let mut sql = Sql::default();
        let condition = query::where_clause(&filter, &mut sql).replace("a.cluster", "name");
        let text =
            format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE {condition} ORDER BY name");
        let rows = sqlx::query_with(AssertSqlSafe(text), args(sql.binds)?)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(cluster_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(cluster = name, expected_version))]
    async fn update_cluster_labels(
        &self,
        name: &str,
        expected_version: u64,
        labels: &Labels,
        annotations: &Labels,
    ) -> Result<ClusterRecord> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE clusters SET labels = $2, annotations = $3, version = version + 1 \
             WHERE name = $1 AND version = $4 RETURNING {CLUSTER_COLUMNS}"
        )))
        .bind(name)
        .bind(Json(labels))
        .bind(Json(annotations))
        .bind(to_i64(expected_version))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            let current = self.get_cluster(name).await?.version;
            return Err(conflict(
                format!("cluster {name}"),
                expected_version,
                current,
            ));
        };
        replace_labels(&mut tx, "cluster_labels", "cluster", name, labels).await?;
        tx.commit().await?;
        cluster_from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(cluster = name, state = connection.state.as_str()))]
    async fn set_stream_connection(
        &self,
        name: &str,
        stream: &str,
        connection: &ClusterConnection,
    ) -> Result<bool> {
        let release = connection.state == ConnectionKind::Disconnected;
        let result = sqlx::query(
            "UPDATE clusters SET conn_state = CASE WHEN revoked_at IS NULL THEN $3 ELSE 'Revoked' END, \
             conn_since = CASE WHEN revoked_at IS NULL THEN $4 ELSE conn_since END, \
             last_heartbeat = CASE WHEN last_heartbeat IS NULL OR last_heartbeat < $5 THEN $5 \
             ELSE last_heartbeat END, \
             hub_replica = $6, conn_stream = CASE WHEN $7 THEN '' ELSE conn_stream END \
             WHERE name = $1 AND conn_stream = $2 AND conn_stream <> ''",
        )
        .bind(name)
        .bind(stream)
        .bind(connection.state.as_str())
        .bind(connection.since.map(to_ms))
        .bind(connection.last_heartbeat.map(to_ms))
        .bind(&connection.hub_replica)
        .bind(release)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(cluster = name))]
    async fn set_cluster_server_url(&self, name: &str, server_url: &str) -> Result<()> {
        let update = keyed(
            "UPDATE clusters SET server_url = $2 WHERE name = $1",
            &[name, server_url],
        );
        expect_one(update.execute(self.pool()).await?.rows_affected(), || {
            format!("cluster {name}")
        })
    }

    #[tracing::instrument(skip_all, fields(cluster = name, state = connection.state.as_str()))]
    async fn set_cluster_connection(
        &self,
        name: &str,
        connection: &ClusterConnection,
    ) -> Result<()> {
        // A revoked cluster stays revoked whatever a replica reports later.
        let result = sqlx::query(
            "UPDATE clusters SET conn_state = CASE WHEN revoked_at IS NULL THEN $2 ELSE 'Revoked' END, \
             conn_since = $3, last_heartbeat = $4, hub_replica = $5 WHERE name = $1",
        )
        .bind(name)
        .bind(connection.state.as_str())
        .bind(connection.since.map(to_ms))
        .bind(connection.last_heartbeat.map(to_ms))
        .bind(&connection.hub_replica)
        .execute(self.pool())
        .await?;
        expect_one(result.rows_affected(), || format!("cluster {name}"))
    }

    #[tracing::instrument(skip_all, fields(clusters = beats.len()))]
    async fn record_heartbeats(&self, beats: &[StreamBeat]) -> Result<HeartbeatsRecorded> {
        if beats.is_empty() {
            return Ok(HeartbeatsRecorded::default());
        }
        let mut args = Args::default();
        let t = Table::default()
            .text("cluster", beats.iter().map(|b| b.cluster.as_str()))
            .text("stream", beats.iter().map(|b| b.stream.as_str()))
            .bigint("at", beats.iter().map(|b| to_ms(b.at)))
            .bind(&mut args, "t")?;
        // Old values on the right of SET: a cluster Connected already keeps its `conn_since`. (SQLite's
        // RETURNING takes unqualified columns of the updated table only: the table of values names none alike.)
        let update = format!(
            "UPDATE clusters AS c SET \
             conn_state = CASE WHEN c.revoked_at IS NULL THEN 'Connected' ELSE 'Revoked' END, \
             conn_since = CASE WHEN c.revoked_at IS NULL AND c.conn_state <> 'Connected' THEN t.at \
             ELSE c.conn_since END, \
             last_heartbeat = t.at FROM {t} \
             WHERE c.name = t.cluster AND c.conn_stream = t.stream AND c.conn_stream <> '' \
             AND (c.last_heartbeat IS NULL OR c.last_heartbeat < t.at) RETURNING name"
        );
        let written: BTreeSet<String> = sqlx::query_scalar_with(AssertSqlSafe(update), args.0)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .collect();
        let mut recorded = HeartbeatsRecorded {
            written: written.len() as u64,
            disowned: Vec::new(),
        };
        // Why the others were not written: a newer heartbeat or Stale mark of the same stream (nothing to
        // do), or the record is no longer the stream's.
        let unwritten: Vec<&StreamBeat> = beats
            .iter()
            .filter(|b| !written.contains(&b.cluster))
            .collect();
        if unwritten.is_empty() {
            return Ok(recorded);
        }
        let mut args = Args::default();
        let names = dialect::in_list(
            &mut args,
            Column::text(unwritten.iter().map(|b| b.cluster.as_str())),
        )?;
        let select = format!("SELECT name, conn_stream FROM clusters WHERE name {names}");
        let owners: HashMap<String, String> = sqlx::query_with(AssertSqlSafe(select), args.0)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("conn_stream")?)))
            .collect::<Result<_>>()?;
        recorded.disowned = unwritten
            .into_iter()
            .filter(|b| {
                owners
                    .get(&b.cluster)
                    .is_some_and(|owner| *owner != b.stream)
            })
            .map(|b| b.stream.clone())
            .collect();
        Ok(recorded)
    }

    #[tracing::instrument(skip_all, fields(cluster = name))]
    async fn revoke_cluster(&self, name: &str, at: OffsetDateTime) -> Result<()> {
        let result = sqlx::query(
            "UPDATE clusters SET revoked_at = COALESCE(revoked_at, $2), conn_state = 'Revoked', \
             conn_since = COALESCE(revoked_at, $2), version = version + 1 WHERE name = $1",
        )
        .bind(name)
        .bind(to_ms(at))
        .execute(self.pool())
        .await?;
        expect_one(result.rows_affected(), || format!("cluster {name}"))
    }

    #[tracing::instrument(skip_all, fields(cluster))]
    async fn delete_edge_apps(&self, cluster: &str, app: Option<(&str, &str)>) -> Result<u64> {
        let (project, name) = app.unwrap_or_default();
        let delete = "DELETE FROM applications WHERE cluster = $1 AND origin = 'Autonomous' \
                      AND ($2 = '' OR (project = $2 AND name = $3))";
        let deleted = keyed(delete, &[cluster, project, name])
            .execute(self.pool())
            .await?;
        Ok(deleted.rows_affected())
    }

    #[tracing::instrument(skip_all)]
    async fn link_watch(&self, now: OffsetDateTime) -> Result<LinkWatch> {
        // The partial index `commands_open` holds only open commands.
        let clusters_with_commands = sqlx::query_scalar(
            "SELECT DISTINCT cluster FROM commands \
             WHERE outcome IN ('Pending', 'Delivered') AND deadline > $1",
        )
        .bind(to_ms(now))
        .fetch_all(self.pool())
        .await?;
        let mark: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM projects), \
                    (SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM projects), \
                    (SELECT CAST(COALESCE(SUM(created_at), 0) AS BIGINT) FROM projects), \
                    (SELECT count(*) FROM application_sets), \
                    (SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM application_sets), \
                    (SELECT CAST(COALESCE(SUM(created_at), 0) AS BIGINT) FROM application_sets)",
        )
        .fetch_one(self.pool())
        .await?;
        let versions: Vec<(String, i64)> = sqlx::query_as("SELECT name, version FROM clusters")
            .fetch_all(self.pool())
            .await?;
        Ok(LinkWatch {
            clusters_with_commands,
            settings: SettingsMark {
                projects: (mark.0, mark.1, mark.2),
                appsets: (mark.3, mark.4, mark.5),
            },
            cluster_versions: versions
                .into_iter()
                .map(|(name, version)| (name, u64::try_from(version).unwrap_or_default()))
                .collect(),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn disconnect_silent_clusters(
        &self,
        silent_since: OffsetDateTime,
    ) -> Result<Vec<String>> {
        let names = sqlx::query_scalar(
            "UPDATE clusters SET conn_state = 'Disconnected', conn_since = last_heartbeat \
             WHERE conn_state IN ('Connected', 'Stale') AND last_heartbeat < $1 RETURNING name",
        )
        .bind(to_ms(silent_since))
        .fetch_all(self.pool())
        .await?;
        Ok(names)
    }

    #[tracing::instrument(skip_all, fields(cluster = name))]
    async fn delete_cluster(&self, name: &str) -> Result<()> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let managed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM applications WHERE cluster = $1 AND origin = 'Managed'",
        )
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if managed > 0 {
            return Err(StoreError::InUse {
                what: format!("cluster {name}"),
                reason: format!("{managed} managed apps target it"),
            });
        }
        let result = sqlx::query("DELETE FROM clusters WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        expect_one(result.rows_affected(), || format!("cluster {name}"))?;
        for statement in [
            "DELETE FROM applications WHERE cluster = $1",
            "DELETE FROM cluster_link WHERE cluster = $1",
            "DELETE FROM app_tombstones WHERE cluster = $1",
            "DELETE FROM commands WHERE cluster = $1 AND outcome IN ('Pending', 'Delivered')",
        ] {
            sqlx::query(statement).bind(name).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(cluster))]
    async fn open_link(
        &self,
        cluster: &str,
        stream: &str,
        hello: &LinkHello,
        now: OffsetDateTime,
    ) -> Result<LinkOpened> {
        let mut tx = self.link().begin_with(dialect::BEGIN_WRITE).await?;
        // The link row first, as a status batch being stored takes it (`begin_ingest`): this waits for one of an
        // older stream to commit, and the batch after it finds the link taken.
        let link = sqlx::query(
            "INSERT INTO cluster_link (cluster, stream) VALUES ($1, $2) \
             ON CONFLICT (cluster) DO UPDATE SET stream = EXCLUDED.stream \
             RETURNING spoke_epoch, spoke_seq, desired_version",
        )
        .bind(cluster)
        .bind(stream)
        .fetch_one(&mut *tx)
        .await?;
        // The connection record is the new stream's too, at once: an older stream's writes there (its
        // disconnect, its heartbeats) change nothing from now on.
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE clusters SET conn_stream = $2, \
             server_url = CASE WHEN server_url = '' AND NOT EXISTS \
             (SELECT 1 FROM clusters o WHERE o.server_url = $3 AND o.name <> $1) THEN $3 ELSE server_url END, \
             versions = $4, certificate_not_after = $5, conn_state = $6, conn_since = $7, last_heartbeat = $8, \
             hub_replica = $9 WHERE name = $1 AND revoked_at IS NULL RETURNING {CLUSTER_COLUMNS}"
        )))
        .bind(cluster)
        .bind(stream)
        .bind(&hello.server_url)
        .bind(Json(&hello.versions))
        .bind(hello.certificate_not_after.map(to_ms))
        .bind(hello.connection.state.as_str())
        .bind(hello.connection.since.map(to_ms))
        .bind(hello.connection.last_heartbeat.map(to_ms))
        .bind(&hello.connection.hub_replica)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Revoked, or not registered: nothing is written (the link row above goes with the rollback).
            let revoked: Option<Option<i64>> =
                sqlx::query_scalar("SELECT revoked_at FROM clusters WHERE name = $1")
                    .bind(cluster)
                    .fetch_optional(&mut *tx)
                    .await?;
            drop(tx);
            return match revoked {
                Some(_) => Ok(LinkOpened::Revoked),
                None => Err(not_found(format!("cluster {cluster}"))),
            };
        };
        // The partial index `commands_open` holds only open commands.
        let commands_open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM commands WHERE cluster = $1 \
             AND outcome IN ('Pending', 'Delivered') AND deadline > $2)",
        )
        .bind(cluster)
        .bind(to_ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let mut notes = Notes::default();
        notes.0.push((CLUSTERS_CHANNEL, cluster.to_owned()));
        dialect::commit(self, tx, notes).await?;
        Ok(LinkOpened::Open(Box::new(OpenLink {
            state: link_state_from_row(&link)?,
            cluster: cluster_from_row(&row)?,
            commands_open,
        })))
    }

    #[tracing::instrument(skip_all, fields(cluster))]
    async fn get_link_state(&self, cluster: &str) -> Result<LinkState> {
        let select =
            "SELECT spoke_epoch, spoke_seq, desired_version FROM cluster_link WHERE cluster = $1";
        let row = keyed(select, &[cluster])
            .fetch_optional(self.pool())
            .await?;
        row.as_ref()
            .map_or(Ok(LinkState::default()), link_state_from_row)
    }

    // --- applications ---
    #[tracing::instrument(skip_all, fields(project = %app.project, app = %app.name))]
    async fn create_app(&self, app: &NewApp) -> Result<AppRecord> {
        AppRef::parse_hub(&app.project, &app.name).map_err(invalid)?;
        let mut spec = app.spec.clone();
        spec.project = app.project.clone();
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        require_project(&mut tx, &app.project).await?;
        let cluster = resolve_destination(&mut tx, &spec).await?;
        let version = bump_desired_version(&mut tx, &cluster).await?;
        let (project, name) = (app.project.as_str(), app.name.as_str());
        let row = AppRow::new(app, &cluster, version);
        insert_apps(&mut tx, "Managed", &[row], || {
            format!("application {project}/{name}")
        })
        .await?;
        delete_tombstone(&mut tx, &cluster, project, name).await?;
        let record = fetch_app(&mut tx, project, name).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Imports many new managed apps (with optional initial statuses) in one
    /// transaction of multi-row inserts: each destination cluster's desired
    /// version is bumped once for the whole import. Fails with
    /// `AlreadyExists` if any app exists. For migrations and benchmarks.
    #[tracing::instrument(skip_all, fields(apps = apps.len()))]
    async fn import_apps(&self, apps: &[ImportedApp]) -> Result<u64> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let mut clusters = BTreeSet::new();
        for imported in apps {
            AppRef::parse_hub(&imported.app.project, &imported.app.name).map_err(invalid)?;
            let cluster = imported.app.spec.destination.cluster.as_str();
            ClusterName::parse(cluster).map_err(invalid)?;
            clusters.insert(cluster);
        }
        // In the order of their names, as a group of status batches locks link rows.
        let mut versions: BTreeMap<&str, i64> = BTreeMap::new();
        for cluster in clusters {
            versions.insert(cluster, bump_desired_version(&mut tx, cluster).await?);
        }
        for chunk in apps.chunks(query::IMPORT_CHUNK) {
            let rows: Vec<AppRow> = chunk
                .iter()
                .map(|imported| {
                    let cluster = imported.app.spec.destination.cluster.as_str();
                    let version = versions.get(cluster).copied().unwrap_or(0);
                    AppRow::new(&imported.app, cluster, version)
                })
                .collect();
            let what = || "an imported application".to_owned();
            let ids = insert_apps(&mut tx, "Managed", &rows, what).await?;
            // The initial statuses given, in one statement.
            let (ids, statuses): (Vec<i64>, Vec<&ApplicationStatus>) = ids
                .into_iter()
                .zip(chunk)
                .filter_map(|(id, imported)| Some((id, imported.status.as_ref()?)))
                .unzip();
            if statuses.is_empty() {
                continue;
            }
            let documents = documents(&statuses)?;
            let mut args = Args::default();
            let v = Table::default().bigint("id", ids.into_iter());
            let v = status_columns(v, &statuses, &documents).bind(&mut args, "v")?;
            let update = format!(
                "UPDATE app_status AS s SET sync = v.sync, health = v.health, revision = v.revision, \
                 operation_phase = v.phase, error_conditions = v.errors, \
                 status_version = v.status_version, status = v.status{jsonb} FROM {v} \
                 WHERE s.app_id = v.id",
                jsonb = dialect::JSONB
            );
            sqlx::query_with(AssertSqlSafe(update), args.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(apps.len() as u64)
    }

    #[tracing::instrument(skip_all, fields(project, app = name))]
    async fn get_app(&self, project: &str, name: &str) -> Result<AppRecord> {
        let mut conn = self.pool().acquire().await?;
        fetch_app(&mut conn, project, name).await
    }

    #[tracing::instrument(skip_all, fields(project, app = name, expected_spec_version))]
    async fn update_app(
        &self,
        project: &str,
        name: &str,
        expected_spec_version: u64,
        spec: &ApplicationSpec,
        labels: &Labels,
    ) -> Result<AppRecord> {
        let what = || format!("application {project}/{name}");
        let mut spec = spec.clone();
        spec.project = project.to_owned();
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let app = lock_app(&mut tx, project, name)
            .await?
            .ok_or_else(|| not_found(what()))?;
        if app.origin == AppOrigin::Autonomous {
            return Err(StoreError::ReadOnly { what: what() });
        }
        if app.spec_version != expected_spec_version {
            return Err(conflict(what(), expected_spec_version, app.spec_version));
        }
        let cluster = resolve_destination(&mut tx, &spec).await?;
        if cluster != app.cluster {
            // Moved: the old cluster deletes the app's resources.
            write_tombstone(&mut tx, &app.cluster, project, name, &app.uid, false).await?;
            delete_tombstone(&mut tx, &cluster, project, name).await?;
        }
        let version = bump_desired_version(&mut tx, &cluster).await?;
        sqlx::query(
            "UPDATE applications SET spec = $2, labels = $3, spec_version = spec_version + 1, cluster = $4, \
             namespace = $5, repo_url = $6, path = $7, target_revision = $8, automated = $9, \
             desired_version = $10 WHERE id = $1",
        )
        .bind(app.id)
        .bind(Json(&spec))
        .bind(Json(labels))
        .bind(&cluster)
        .bind(&spec.destination.namespace)
        .bind(&spec.primary_source().repo_url)
        .bind(&spec.primary_source().path)
        .bind(&spec.primary_source().target_revision)
        .bind(spec.automated().is_some())
        .bind(version)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE app_status SET updated_at = $2 WHERE app_id = $1")
            .bind(app.id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        replace_labels(&mut tx, "app_labels", "app_id", app.id, labels).await?;
        let record = fetch_app(&mut tx, project, name).await?;
        tx.commit().await?;
        Ok(record)
    }

    #[tracing::instrument(skip_all, fields(project, app = name))]
    async fn delete_app_with(
        &self,
        project: &str,
        name: &str,
        expected_spec_version: Option<u64>,
        keep_resources: bool,
    ) -> Result<()> {
        let what = || format!("application {project}/{name}");
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let app = lock_app(&mut tx, project, name)
            .await?
            .ok_or_else(|| not_found(what()))?;
        if app.origin == AppOrigin::Autonomous {
            return Err(StoreError::ReadOnly { what: what() });
        }
        if let Some(expected) = expected_spec_version
            && expected != app.spec_version
        {
            return Err(conflict(what(), expected, app.spec_version));
        }
        let (cluster, uid) = (&app.cluster, &app.uid);
        write_tombstone(&mut tx, cluster, project, name, uid, keep_resources).await?;
        sqlx::query("DELETE FROM applications WHERE id = $1")
            .bind(app.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(cluster, since))]
    async fn desired_changes(&self, cluster: &str, since: u64) -> Result<DesiredChanges> {
        // One snapshot for the version and the changes.
        let mut tx = self.pool().begin_with(dialect::BEGIN_READ).await?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT desired_version FROM cluster_link WHERE cluster = $1")
                .bind(cluster)
                .fetch_optional(&mut *tx)
                .await?;
        let rows = sqlx::query(
            "SELECT project, name, uid, spec, labels, spec_version, desired_version, FALSE AS keep_resources \
             FROM applications \
             WHERE cluster = $1 AND origin = 'Managed' AND desired_version > $2 \
             UNION ALL \
             SELECT project, name, uid, NULL, NULL, 0, desired_version, keep_resources FROM app_tombstones \
             WHERE cluster = $1 AND desired_version > $2 AND $2 > 0 \
             ORDER BY desired_version",
        )
        .bind(cluster)
        .bind(to_i64(since))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let changes = rows
            .iter()
            .map(|row| {
                let project: String = row.try_get("project")?;
                let name: String = row.try_get("name")?;
                let uid: String = row.try_get("uid")?;
                let desired_version = to_u64(row.try_get("desired_version")?);
                let Some(spec) = row.try_get::<Option<Json<ApplicationSpec>>, _>("spec")? else {
                    let keep_resources = row.try_get("keep_resources")?;
                    return Ok(DesiredChange::Delete {
                        project,
                        name,
                        uid,
                        desired_version,
                        keep_resources,
                    });
                };
                Ok(DesiredChange::Upsert(Box::new(DesiredApp {
                    project,
                    name,
                    uid,
                    spec: spec.0,
                    labels: row
                        .try_get::<Option<Json<Labels>>, _>("labels")?
                        .map(|l| l.0)
                        .unwrap_or_default(),
                    spec_version: to_u64(row.try_get("spec_version")?),
                    desired_version,
                })))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DesiredChanges {
            version: to_u64(version.unwrap_or(0)),
            changes,
        })
    }

    #[tracing::instrument(skip_all, fields(sort = ?query.sort.key, page_size = query.page_size))]
    async fn list_apps(&self, query: &AppQuery) -> Result<Page<AppSummary>> {
        let page_size = query::clamp_page_size(query.page_size);
        let mut tx = self.pool().begin_with(dialect::BEGIN_READ).await?;
        let Some((sql_filter, known_total)) = resolve_filter(&mut tx, &query.filter).await? else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
                total: Some(0),
            });
        };
        let cursor = query.cursor.as_deref();
        let list = query::list_sql(&sql_filter, &query.filter, query.sort, cursor, page_size)?;
        let rows = sqlx::query_with(AssertSqlSafe(list.text), args(list.binds)?)
            .fetch_all(&mut *tx)
            .await?;
        // The exact total is computed with the first page only; later pages
        // follow a cursor and do not pay for a count again.
        let total: Option<i64> = if cursor.is_none() {
            Some(filter_total(&mut tx, &sql_filter, known_total).await?)
        } else {
            None
        };
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(summary_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > page_size as usize {
            items.truncate(page_size as usize);
            items
                .last()
                .map(|last| query::encode_cursor(&query.filter, query.sort, last))
        } else {
            None
        };
        Ok(Page {
            items,
            next_cursor,
            total: total.map(to_u64),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn count_apps(&self, filter: &AppFilter) -> Result<AppCounts> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_READ).await?;
        let mut counts = AppCounts::default();
        let Some((filter, _)) = resolve_filter(&mut tx, filter).await? else {
            return Ok(counts);
        };
        let groups: [(query::CountGroup, &mut BTreeMap<String, u64>); 4] = [
            (query::CountGroup::Sync, &mut counts.by_sync),
            (query::CountGroup::Health, &mut counts.by_health),
            (query::CountGroup::Connection, &mut counts.by_connection),
            (query::CountGroup::Project, &mut counts.by_project),
        ];
        for (group, map) in groups {
            let sql = query::group_count_sql(&filter, group);
            let rows: Vec<(String, i64)> =
                sqlx::query_as_with(AssertSqlSafe(sql.text), args(sql.binds)?)
                    .fetch_all(&mut *tx)
                    .await?;
            for (key, n) in rows {
                map.insert(key, to_u64(n));
            }
        }
        tx.commit().await?;
        counts.total = counts.by_sync.values().sum();
        Ok(counts)
    }

    #[tracing::instrument(skip_all, fields(project, app = name))]
    async fn get_resource_tree(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>> {
        let tree: Option<Json<serde_json::Value>> = sqlx::query_scalar(
            "SELECT t.tree FROM applications a LEFT JOIN app_trees t ON t.app_id = a.id \
             WHERE a.project = $1 AND a.name = $2",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| not_found(format!("application {project}/{name}")))?;
        Ok(tree.map(|t| t.0))
    }

    // --- spoke ingest: each call is one transaction that also records (epoch, seq) ---
    #[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, reports = batch.reports.len()))]
    async fn ingest_status_batch(
        &self,
        cluster: &str,
        at: &SpokeSeq,
        batch: &StatusBatch,
    ) -> Result<IngestOutcome> {
        let Some(mut tx) = begin_ingest(self.link(), cluster, at).await? else {
            return Ok(duplicate());
        };
        let mut outcome = IngestOutcome::default();
        let snapshot = batch.snapshot.as_ref().map(|s| s.snapshot_id.as_str());
        let (managed, autonomous): (Vec<&StatusReport>, Vec<&StatusReport>) =
            batch.reports.iter().partition(|r| r.autonomous.is_none());
        ingest_managed_reports(&mut tx, cluster, &managed, snapshot, &mut outcome).await?;
        for report in autonomous {
            ingest_report(&mut tx, cluster, report, snapshot, &mut outcome).await?;
        }
        for (project, name) in &batch.removed {
            let binds = vec![
                Bind::Text(project.clone()),
                Bind::Text(name.clone()),
                Bind::Text(cluster.to_owned()),
            ];
            let apps = "project = $1 AND name = $2 AND cluster = $3";
            let statuses = "s.project = $1 AND s.name = $2 AND s.cluster = $3";
            forget(&mut tx, apps, statuses, binds, &mut outcome).await?;
        }
        if let Some(snapshot) = batch.snapshot.as_ref().filter(|s| s.last) {
            let binds = vec![
                Bind::Text(cluster.to_owned()),
                Bind::Text(snapshot.snapshot_id.clone()),
            ];
            let apps = "cluster = $1 AND id IN (SELECT app_id FROM app_status \
                        WHERE cluster = $1 AND snapshot_id IS DISTINCT FROM $2)";
            let statuses =
                "s.cluster = $1 AND s.snapshot_id IS DISTINCT FROM $2 AND s.status_version > 0";
            forget(&mut tx, apps, statuses, binds, &mut outcome).await?;
        }
        // Announced in the same transaction: no second one (and no second connection) per batch.
        let mut notes = Notes::default();
        if outcome.applied + outcome.created + outcome.deleted + outcome.reset > 0 {
            notes.0.push((APPS_CHANNEL, cluster.to_owned()));
        }
        dialect::commit(self, tx, notes).await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(writes = writes.len()))]
    async fn ingest_status_group(
        &self,
        writes: &[StatusWrite],
    ) -> Result<Vec<Result<IngestOutcome>>> {
        let mut results: Vec<Option<Result<IngestOutcome>>> = writes.iter().map(|_| None).collect();
        let mut clusters = BTreeSet::new();
        // In the order of their clusters: concurrent groups lock link rows in one order.
        let mut shared: Vec<usize> = (0..writes.len())
            .filter(|&i| writes[i].groupable() && clusters.insert(writes[i].cluster.as_str()))
            .collect();
        shared.sort_by(|&a, &b| writes[a].cluster.cmp(&writes[b].cluster));
        if shared.len() > 1 {
            let group: Vec<&StatusWrite> = shared.iter().map(|&i| &writes[i]).collect();
            let outcomes = ingest_shared(self, &group).await?;
            for (i, outcome) in shared.into_iter().zip(outcomes) {
                results[i] = Some(outcome);
            }
        }
        let mut out = Vec::with_capacity(writes.len());
        for (write, result) in writes.iter().zip(results) {
            out.push(match result {
                Some(result) => result,
                None => {
                    self.ingest_status_batch(&write.cluster, &write.at, &write.batch)
                        .await
                }
            });
        }
        Ok(out)
    }

    #[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, project, app = name))]
    async fn ingest_resource_tree(
        &self,
        cluster: &str,
        at: &SpokeSeq,
        project: &str,
        name: &str,
        tree: &serde_json::Value,
    ) -> Result<IngestOutcome> {
        let Some(mut tx) = begin_ingest(self.link(), cluster, at).await? else {
            return Ok(duplicate());
        };
        let mut outcome = IngestOutcome::default();
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM applications WHERE project = $1 AND name = $2 AND cluster = $3",
        )
        .bind(project)
        .bind(name)
        .bind(cluster)
        .fetch_optional(&mut *tx)
        .await?;
        match id {
            Some(id) => {
                sqlx::query(
                    "INSERT INTO app_trees (app_id, tree, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (app_id) DO UPDATE SET tree = EXCLUDED.tree, updated_at = EXCLUDED.updated_at",
                )
                .bind(id)
                .bind(Json(tree))
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                outcome.applied = 1;
            }
            None => outcome.rejected = 1,
        }
        tx.commit().await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, events = events.len()))]
    async fn ingest_events(
        &self,
        cluster: &str,
        at: &SpokeSeq,
        events: &[EventRecord],
    ) -> Result<IngestOutcome> {
        let Some(mut tx) = begin_ingest(self.link(), cluster, at).await? else {
            return Ok(duplicate());
        };
        let mut outcome = IngestOutcome::default();
        for event in events {
            let result = sqlx::query(
                // A cluster speaks only for its own apps: an event naming an app
                // that runs elsewhere (or nowhere) is dropped; cluster-wide
                // events (no app) are kept for the cluster's own event list.
                "INSERT INTO events (cluster, id, project, app, resource, severity, reason, message, time) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
                 WHERE ($3 = '' AND $4 = '') OR EXISTS (SELECT 1 FROM applications \
                   WHERE project = $3 AND name = $4 AND cluster = $1) \
                 ON CONFLICT (cluster, id) DO NOTHING",
            )
            .bind(cluster)
            .bind(&event.id)
            .bind(&event.project)
            .bind(&event.app)
            .bind(&event.resource)
            .bind(event.severity.as_str())
            .bind(&event.reason)
            .bind(&event.message)
            .bind(to_ms(event.time))
            .execute(&mut *tx)
            .await?;
            if result.rows_affected() == 1 {
                outcome.applied += 1;
            } else {
                outcome.stale += 1;
            }
        }
        let mut notes = Notes::default();
        if outcome.applied > 0 {
            notes.0.push((EVENTS_CHANNEL, cluster.to_owned()));
        }
        dialect::commit(self, tx, notes).await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, deployments = deployments.len()))]
    async fn ingest_deployments(
        &self,
        cluster: &str,
        at: &SpokeSeq,
        deployments: &[Deployment],
    ) -> Result<IngestOutcome> {
        let Some(mut tx) = begin_ingest(self.link(), cluster, at).await? else {
            return Ok(duplicate());
        };
        let mut outcome = IngestOutcome::default();
        if !deployments.is_empty() {
            let mut args = Args::default();
            let cluster_arg = args.add(cluster)?;
            let kinds: Vec<&str> = deployments
                .iter()
                .map(|d| {
                    if d.rollback_of.is_some() {
                        "rollback"
                    } else {
                        "sync"
                    }
                })
                .collect();
            let rows = Table::default()
                .text("project", deployments.iter().map(|d| d.project.as_str()))
                .text("app", deployments.iter().map(|d| d.app.as_str()))
                .bigint("history_id", deployments.iter().map(|d| d.history_id))
                .text("kind", kinds)
                .bigint(
                    "rollback_of",
                    deployments
                        .iter()
                        .map(|d| d.rollback_of.unwrap_or_default()),
                )
                .text("result", deployments.iter().map(|d| d.result.as_str()))
                .text(
                    "from_revision",
                    deployments.iter().map(|d| d.from_revision.as_str()),
                )
                .text(
                    "to_revision",
                    deployments.iter().map(|d| d.to_revision.as_str()),
                )
                .text(
                    "initiated_by",
                    deployments.iter().map(|d| d.initiated_by.as_str()),
                )
                .bool("automated", deployments.iter().map(Deployment::automated))
                .bigint(
                    "started_at",
                    deployments.iter().map(|d| to_ms(d.started_at)),
                )
                .bigint(
                    "finished_at",
                    deployments.iter().map(|d| to_ms(d.finished_at)),
                )
                .text("trace_id", deployments.iter().map(|d| d.trace_id.as_str()))
                .text("message", deployments.iter().map(|d| d.message.as_str()))
                .text(
                    "command_id",
                    deployments.iter().map(|d| d.command_id.as_str()),
                )
                .bind(&mut args, "d")?;
            // A cluster speaks only for its own apps: a deployment of an app that
            // runs elsewhere (or nowhere) is dropped. A replay is stored once.
            let text = format!(
                "INSERT INTO deployments (cluster, project, app, history_id, kind, rollback_of, result, \
                 from_revision, to_revision, initiated_by, automated, started_at, finished_at, trace_id, \
                 message, command_id) \
                 SELECT {cluster_arg}, d.project, d.app, d.history_id, d.kind, d.rollback_of, d.result, \
                 d.from_revision, d.to_revision, d.initiated_by, d.automated, d.started_at, d.finished_at, \
                 d.trace_id, d.message, d.command_id FROM {rows} \
                 WHERE EXISTS (SELECT 1 FROM applications a \
                   WHERE a.project = d.project AND a.name = d.app AND a.cluster = {cluster_arg}) \
                 ON CONFLICT (cluster, project, app, history_id, started_at) DO NOTHING"
            );
            let result = sqlx::query_with(AssertSqlSafe(text), args.0)
                .execute(&mut *tx)
                .await?;
            let stored = u32::try_from(result.rows_affected()).unwrap_or(u32::MAX);
            outcome.applied = stored;
            outcome.stale = u32::try_from(deployments.len())
                .unwrap_or(u32::MAX)
                .saturating_sub(stored);
        }
        tx.commit().await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, updates = updates.len()))]
    async fn ingest_command_statuses(
        &self,
        cluster: &str,
        at: &SpokeSeq,
        updates: &[CommandUpdate],
    ) -> Result<IngestOutcome> {
        let Some(mut tx) = begin_ingest(self.link(), cluster, at).await? else {
            return Ok(duplicate());
        };
        let mut outcome = IngestOutcome::default();
        let mut changed = Vec::new();
        for update in updates {
            match apply_command_update(&mut tx, Some(cluster), update).await? {
                Some(true) => {
                    outcome.applied += 1;
                    changed.push(update.id.as_str());
                }
                Some(false) => outcome.stale += 1,
                None => outcome.rejected += 1,
            }
        }
        let mut notes = Notes::default();
        notes.commands(&changed);
        dialect::commit(self, tx, notes).await?;
        Ok(outcome)
    }

    // --- command outbox ---
    #[tracing::instrument(skip_all, fields(project = %command.project, app = %command.app, cluster = %command.cluster, kind = %command.kind))]
    async fn enqueue_command(&self, command: &NewCommand) -> Result<CommandRecord> {
        let mut records = self.enqueue_commands(std::slice::from_ref(command)).await?;
        records.pop().ok_or_else(not_returned)
    }

    /// Many commands in one transaction: one multi-row insert (`dialect::table`,
    /// in input order, so their seqs follow it) and one notification per
    /// distinct cluster, sent with the commit.
    #[tracing::instrument(skip_all, fields(commands = commands.len()))]
    async fn enqueue_commands(&self, commands: &[NewCommand]) -> Result<Vec<CommandRecord>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = commands
            .iter()
            .map(|c| {
                c.id.clone()
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
            })
            .collect();
        let payloads = commands
            .iter()
            .map(|c| serde_json::to_string(&c.payload))
            .collect::<std::result::Result<Vec<String>, _>>()?;
        let text = |f: fn(&NewCommand) -> &str| commands.iter().map(f);
        let mut args = Args::default();
        let now = args.add(now_ms())?;
        let c = Table::default()
            .text("id", ids.iter().map(String::as_str))
            .text("project", text(|c| &c.project))
            .text("app", text(|c| &c.app))
            .text("cluster", text(|c| &c.cluster))
            .text("kind", text(|c| &c.kind))
            .text("payload", payloads.iter().map(String::as_str))
            .text("issued_by", text(|c| &c.issued_by))
            .bigint("deadline", commands.iter().map(|c| to_ms(c.deadline)))
            .text(
                "traceparent",
                text(|c| c.trace.as_ref().map_or("", |t| t.traceparent.as_str())),
            )
            .text(
                "tracestate",
                text(|c| c.trace.as_ref().map_or("", |t| t.tracestate.as_str())),
            )
            .bind(&mut args, "c")?;
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let rows = sqlx::query_with(
            AssertSqlSafe(format!(
                "INSERT INTO commands (id, project, app, cluster, kind, payload, issued_by, issued_at, \
                 deadline, updated_at, traceparent, tracestate) \
                 SELECT id, project, app, cluster, kind, payload{jsonb}, issued_by, {now}, deadline, {now}, \
                 traceparent, tracestate \
                 FROM {c} ORDER BY ord RETURNING {COMMAND_COLUMNS}",
                jsonb = dialect::JSONB
            )),
            args.0,
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut notes = Notes::default();
        let clusters: BTreeSet<&str> = commands.iter().map(|c| c.cluster.as_str()).collect();
        for cluster in clusters {
            notes.0.push((COMMANDS_CHANNEL, cluster.to_owned()));
        }
        notes.commands(&ids);
        dialect::commit(self, tx, notes).await?;
        let mut by_id: HashMap<String, CommandRecord> = rows
            .iter()
            .map(|row| command_from_row(row).map(|r| (r.id.clone(), r)))
            .collect::<Result<_>>()?;
        ids.iter()
            .map(|id| by_id.remove(id).ok_or_else(not_returned))
            .collect()
    }

    #[tracing::instrument(skip_all, fields(clusters = filter.clusters.len()))]
    async fn count_apps_by_cluster(
        &self,
        filter: &AppFilter,
    ) -> Result<BTreeMap<String, AppCounts>> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_READ).await?;
        let Some((filter, _)) = resolve_filter(&mut tx, filter).await? else {
            return Ok(BTreeMap::new());
        };
        let sql = query::cluster_counts_sql(&filter);
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as_with(AssertSqlSafe(sql.text), args(sql.binds)?)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(query::fold_cluster_counts(rows))
    }

    #[tracing::instrument(skip_all, fields(command = id))]
    async fn get_command(&self, id: &str) -> Result<CommandRecord> {
        let mut commands = self.get_commands(&[id.to_owned()]).await?;
        commands
            .pop()
            .ok_or_else(|| not_found(format!("command {id}")))
    }

    #[tracing::instrument(skip_all, fields(ids = ids.len()))]
    async fn get_commands(&self, ids: &[String]) -> Result<Vec<CommandRecord>> {
        let mut args = Args::default();
        let ids = dialect::in_list(&mut args, Column::text(ids.iter().map(String::as_str)))?;
        let rows = sqlx::query_with(
            AssertSqlSafe(format!(
                "SELECT {COMMAND_COLUMNS} FROM commands WHERE id {ids} ORDER BY seq"
            )),
            args.0,
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(command_from_row).collect()
    }

    /// The newest still-Pending commands of one kind for an app (at most 16).
    #[tracing::instrument(skip_all, fields(project, app, kind))]
    async fn pending_commands_of_app(
        &self,
        project: &str,
        app: &str,
        kind: &str,
    ) -> Result<Vec<CommandRecord>> {
        let select = format!(
            "SELECT {COMMAND_COLUMNS} FROM commands WHERE project = $1 AND app = $2 AND kind = $3 \
             AND outcome = 'Pending' ORDER BY seq DESC LIMIT 16"
        );
        rows_by(
            self.pool(),
            &select,
            &[project, app, kind],
            command_from_row,
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(cluster))]
    async fn list_deliverable_commands(
        &self,
        cluster: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<CommandRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COMMAND_COLUMNS} FROM commands WHERE cluster = $1 \
             AND outcome IN ('Pending', 'Delivered') AND deadline > $2 ORDER BY seq"
        )))
        .bind(cluster)
        .bind(to_ms(now))
        .fetch_all(self.link())
        .await?;
        rows.iter().map(command_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(commands = ids.len()))]
    async fn mark_commands_delivered(&self, ids: &[String], at: OffsetDateTime) -> Result<u64> {
        let mut args = Args::default();
        let ids = dialect::in_list(&mut args, Column::text(ids.iter().map(String::as_str)))?;
        let at = args.add(to_ms(at))?;
        let update = format!(
            "UPDATE commands SET outcome = 'Delivered', delivered_at = {at}, updated_at = {at} \
             WHERE id {ids} AND outcome = 'Pending' RETURNING id"
        );
        dialect::update_commands(self, &update, args).await
    }

    #[tracing::instrument(skip_all, fields(command = %update.id, outcome = update.outcome.as_str()))]
    async fn record_command_status(&self, update: &CommandUpdate) -> Result<bool> {
        let mut tx = self.pool().begin_with(dialect::BEGIN_WRITE).await?;
        let applied = apply_command_update(&mut tx, None, update)
            .await?
            .ok_or_else(|| not_found(format!("command {}", update.id)))?;
        let mut notes = Notes::default();
        if applied {
            notes.commands(&[update.id.as_str()]);
        }
        dialect::commit(self, tx, notes).await?;
        Ok(applied)
    }

    #[tracing::instrument(skip_all)]
    async fn expire_commands(&self, now: OffsetDateTime) -> Result<u64> {
        let mut args = Args::default();
        let now = args.add(to_ms(now))?;
        let update = format!(
            "UPDATE commands SET outcome = 'Expired', message = 'deadline passed before the command started', \
             updated_at = {now} WHERE outcome IN ('Pending', 'Delivered') AND deadline <= {now} RETURNING id"
        );
        dialect::update_commands(self, &update, args).await
    }

    #[tracing::instrument(skip_all, fields(page_size))]
    async fn list_commands(
        &self,
        scope: &CommandScope,
        page_size: u32,
        cursor: Option<&str>,
    ) -> Result<Page<CommandRecord>> {
        let mut args = Args::default();
        let condition = match scope {
            CommandScope::App { project, name } => {
                let (p, a) = (args.add(project)?, args.add(name)?);
                format!("project = {p} AND app = {a}")
            }
            CommandScope::Cluster(cluster) => format!("cluster = {}", args.add(cluster)?),
        };
        let select = format!("SELECT {COMMAND_COLUMNS} FROM commands");
        let rows = newest_first(
            self.pool(),
            &select,
            args,
            vec![condition],
            page_size,
            cursor,
        );
        rows.await?.map(command_from_row)
    }

    // --- events and audit ---
    #[tracing::instrument(skip_all, fields(page_size))]
    async fn list_events(
        &self,
        filter: &EventFilter,
        page_size: u32,
        cursor: Option<&str>,
    ) -> Result<Page<EventRecord>> {
        let mut args = Args::default();
        let mut conditions = Vec::new();
        if let Some(cluster) = &filter.cluster {
            conditions.push(format!("cluster = {}", args.add(cluster)?));
        }
        if let Some((project, app)) = &filter.app {
            let (p, a) = (args.add(project)?, args.add(app)?);
            conditions.push(format!("project = {p} AND app = {a}"));
        }
        let select = "SELECT seq, cluster, id, project, app, resource, severity, reason, message, \
                      time FROM events";
        let rows = newest_first(self.pool(), select, args, conditions, page_size, cursor);
        rows.await?.map(event_from_row)
    }

    #[tracing::instrument(skip_all, fields(page_size))]
    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page_size: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Deployment>> {
        let page_size = query::clamp_page_size(page_size) as usize;
        let (after_time, after_seq) = query::decode_time_cursor(cursor)?;
        let mut args = Args::default();
        let mut conditions = Vec::new();
        if let Some(cluster) = &filter.cluster {
            conditions.push(format!("cluster = {}", args.add(cluster)?));
        }
        if !filter.projects.is_empty() {
            let projects = filter.projects.iter().map(String::as_str);
            conditions.push(format!(
                "project {}",
                dialect::in_list(&mut args, Column::text(projects))?
            ));
        }
        if let Some(app) = &filter.app {
            conditions.push(format!("app = {}", args.add(app)?));
        }
        if let Some(user) = &filter.initiated_by {
            conditions.push(format!("initiated_by = {}", args.add(user)?));
        }
        if !filter.results.is_empty() {
            let results = filter.results.iter().map(|r| r.as_str());
            conditions.push(format!(
                "result {}",
                dialect::in_list(&mut args, Column::text(results))?
            ));
        }
        if let Some(since) = filter.since {
            conditions.push(format!("finished_at >= {}", args.add(to_ms(since))?));
        }
        if let Some(until) = filter.until {
            conditions.push(format!("finished_at < {}", args.add(to_ms(until))?));
        }
        let (time, seq) = (args.add(after_time)?, args.add(after_seq)?);
        conditions.push(format!(
            "(finished_at < {time} OR (finished_at = {time} AND seq < {seq}))"
        ));
        let limit = args.add(page_size as i64 + 1)?;
        let text = format!(
            "SELECT seq, cluster, project, app, history_id, kind, rollback_of, result, from_revision, \
             to_revision, initiated_by, started_at, finished_at, trace_id, message, command_id \
             FROM deployments WHERE {} ORDER BY finished_at DESC, seq DESC LIMIT {limit}",
            conditions.join(" AND ")
        );
        let mut rows = sqlx::query_with(AssertSqlSafe(text), args.0)
            .fetch_all(self.pool())
            .await?;
        let mut next_cursor = None;
        if rows.len() > page_size {
            rows.truncate(page_size);
            if let Some(last) = rows.last() {
                next_cursor = Some(query::encode_time_cursor(
                    last.try_get("finished_at")?,
                    last.try_get("seq")?,
                ));
            }
        }
        Rows { rows, next_cursor }.map(deployment_from_row)
    }

    #[tracing::instrument(skip_all, fields(actor = %entry.actor, action = %entry.action))]
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (actor, action, target, source, result, message, time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.source)
        .bind(&entry.result)
        .bind(&entry.message)
        .bind(to_ms(entry.time))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(page_size))]
    async fn list_audit(&self, page_size: u32, cursor: Option<&str>) -> Result<Page<AuditEntry>> {
        let select =
            "SELECT seq, actor, action, target, source, result, message, time FROM audit_log";
        let rows = newest_first(
            self.pool(),
            select,
            Args::default(),
            Vec::new(),
            page_size,
            cursor,
        );
        rows.await?.map(|row| {
            Ok(AuditEntry {
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                target: row.try_get("target")?,
                source: row.try_get("source")?,
                result: row.try_get("result")?,
                message: row.try_get("message")?,
                time: from_ms(row.try_get("time")?),
            })
        })
    }

    // --- accounts ---
    #[tracing::instrument(skip_all, fields(user = %user.name))]
    async fn create_user(&self, user: &UserRecord) -> Result<UserRecord> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO users (name, password_hash, admin, roles, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
        )))
        .bind(&user.name)
        .bind(user.password_hash.as_ref().map(|h| h.0.as_str()))
        .bind(user.admin)
        .bind(Json(&user.roles))
        .bind(to_ms(user.created_at))
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::classify(|| format!("user {}", user.name)))?;
        user_from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(user = name))]
    async fn get_user(&self, name: &str) -> Result<UserRecord> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = row_by(self.pool(), &select, &[name], || format!("user {name}")).await?;
        user_from_row(&row)
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let select = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        rows_by(self.pool(), &select, &[], user_from_row).await
    }

    #[tracing::instrument(skip_all, fields(user = name))]
    async fn delete_user(&self, name: &str) -> Result<()> {
        let delete = keyed("DELETE FROM users WHERE name = $1", &[name]);
        expect_one(delete.execute(self.pool()).await?.rows_affected(), || {
            format!("user {name}")
        })
    }

    #[tracing::instrument(skip_all, fields(token = %token.id, owner = %token.owner))]
    async fn create_token(&self, token: &TokenRecord) -> Result<TokenRecord> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO api_tokens (id, owner, description, token_hash, roles, created_at, expires_at, \
             revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"
        )))
        .bind(&token.id)
        .bind(&token.owner)
        .bind(&token.description)
        .bind(&token.token_hash.0)
        .bind(Json(&token.roles))
        .bind(to_ms(token.created_at))
        .bind(token.expires_at.map(to_ms))
        .bind(token.revoked_at.map(to_ms))
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::classify(|| format!("token {} (or its owner)", token.id)))?;
        token_from_row(&row)
    }

    #[tracing::instrument(skip_all)]
    async fn find_token_by_hash(&self, token_hash: &str) -> Result<TokenRecord> {
        let select = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1");
        let row = row_by(self.pool(), &select, &[token_hash], || "token".to_owned()).await?;
        token_from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(owner))]
    async fn list_tokens(&self, owner: &str) -> Result<Vec<TokenRecord>> {
        let select = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE owner = $1 ORDER BY created_at, id"
        );
        rows_by(self.pool(), &select, &[owner], token_from_row).await
    }

    #[tracing::instrument(skip_all, fields(token = id))]
    async fn revoke_token(&self, id: &str, at: OffsetDateTime) -> Result<()> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(to_ms(at))
        .execute(self.pool())
        .await?;
        expect_one(result.rows_affected(), || format!("token {id}"))
    }

    // --- replicas ---
    #[tracing::instrument(skip(self))]
    async fn register_replica(&self, id: &str, peer_address: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO hub_replicas (id, peer_address, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET peer_address = excluded.peer_address, seen_at = excluded.seen_at",
        )
        .bind(id)
        .bind(peer_address)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(StoreError::classify(|| format!("hub replica {id}")))?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn replica_address(&self, id: &str) -> Result<Option<String>> {
        let row = keyed("SELECT peer_address FROM hub_replicas WHERE id = $1", &[id])
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    // --- maintenance, roles and notifications ---
    #[tracing::instrument(skip_all)]
    async fn analyze(&self) -> Result<()> {
        // Sent as a simple query: `VACUUM` cannot run in a transaction block.
        sqlx::raw_sql(dialect::ANALYZE).execute(self.pool()).await?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn try_lead(&self, role: &str) -> Result<Option<Leadership>> {
        dialect::try_lead(self, role).await
    }

    #[tracing::instrument(skip_all, fields(channel))]
    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        dialect::notify(self, channel, payload).await
    }

    #[tracing::instrument(skip_all, fields(channels = ?channels))]
    async fn listen(&self, channels: &[&str]) -> Result<BoxStream<'static, ListenEvent>> {
        dialect::listen(self, channels).await
    }
}

boxed_impl! {
    impl Store {
        fn check_intact(&self) -> Result<()> {
            dialect::check_intact(self)
        }

        fn pool_saturated(&self) -> bool {
            let pool = self.pool();
            pool.num_idle() == 0 && pool.size() >= pool.options().get_max_connections()
        }

        fn appsets(&self) -> &dyn crate::store::AppSetStore {
            self
        }
    }
    fn create_project(&self, name: &'a str, spec: &'a ProjectSpec) -> ProjectRecord;
    fn get_project(&self, name: &'a str) -> ProjectRecord;
    fn list_projects(&self) -> Vec<ProjectRecord>;
    fn update_project(&self, name: &'a str, expected_version: u64, spec: &'a ProjectSpec) -> ProjectRecord;
    fn delete_project(&self, name: &'a str) -> ();
    fn create_cluster(&self, cluster: &'a NewCluster) -> ClusterRecord;
    fn get_cluster(&self, name: &'a str) -> ClusterRecord;
    fn list_clusters(&self, selector: &'a LabelSelector) -> Vec<ClusterRecord>;
    fn update_cluster_labels(&self, name: &'a str, expected_version: u64, labels: &'a Labels, annotations: &'a Labels) -> ClusterRecord;
    fn set_cluster_server_url(&self, name: &'a str, server_url: &'a str) -> ();
    fn set_cluster_connection(&self, name: &'a str, connection: &'a ClusterConnection) -> ();
    fn revoke_cluster(&self, name: &'a str, at: OffsetDateTime) -> ();
    fn record_heartbeats(&self, beats: &'a [StreamBeat]) -> HeartbeatsRecorded;
    fn set_stream_connection(&self, name: &'a str, stream: &'a str, connection: &'a ClusterConnection) -> bool;
    fn delete_edge_apps(&self, cluster: &'a str, app: Option<(&'a str, &'a str)>) -> u64;
    fn link_watch(&self, now: OffsetDateTime) -> LinkWatch;
    fn disconnect_silent_clusters(&self, silent_since: OffsetDateTime) -> Vec<String>;
    fn delete_cluster(&self, name: &'a str) -> ();
    fn open_link(&self, cluster: &'a str, stream: &'a str, hello: &'a LinkHello, now: OffsetDateTime) -> LinkOpened;
    fn get_link_state(&self, cluster: &'a str) -> LinkState;
    fn create_app(&self, app: &'a NewApp) -> AppRecord;
    fn import_apps(&self, apps: &'a [ImportedApp]) -> u64;
    fn get_app(&self, project: &'a str, name: &'a str) -> AppRecord;
    fn update_app(&self, project: &'a str, name: &'a str, expected_spec_version: u64, spec: &'a ApplicationSpec, labels: &'a Labels) -> AppRecord;
    fn delete_app_with(&self, project: &'a str, name: &'a str, expected_spec_version: Option<u64>, keep_resources: bool) -> ();
    fn desired_changes(&self, cluster: &'a str, since: u64) -> DesiredChanges;
    fn list_apps(&self, query: &'a AppQuery) -> Page<AppSummary>;
    fn count_apps(&self, filter: &'a AppFilter) -> AppCounts;
    fn get_resource_tree(&self, project: &'a str, name: &'a str) -> Option<serde_json::Value>;
    fn ingest_status_batch(&self, cluster: &'a str, at: &'a SpokeSeq, batch: &'a StatusBatch) -> IngestOutcome;
    fn ingest_status_group(&self, writes: &'a [StatusWrite]) -> Vec<Result<IngestOutcome>>;
    fn ingest_resource_tree(&self, cluster: &'a str, at: &'a SpokeSeq, project: &'a str, name: &'a str, tree: &'a serde_json::Value) -> IngestOutcome;
    fn ingest_events(&self, cluster: &'a str, at: &'a SpokeSeq, events: &'a [EventRecord]) -> IngestOutcome;
    fn ingest_command_statuses(&self, cluster: &'a str, at: &'a SpokeSeq, updates: &'a [CommandUpdate]) -> IngestOutcome;
    fn ingest_deployments(&self, cluster: &'a str, at: &'a SpokeSeq, deployments: &'a [Deployment]) -> IngestOutcome;
    fn enqueue_command(&self, command: &'a NewCommand) -> CommandRecord;
    fn enqueue_commands(&self, commands: &'a [NewCommand]) -> Vec<CommandRecord>;
    fn count_apps_by_cluster(&self, filter: &'a AppFilter) -> BTreeMap<String, AppCounts>;
    fn get_command(&self, id: &'a str) -> CommandRecord;
    fn get_commands(&self, ids: &'a [String]) -> Vec<CommandRecord>;
    fn pending_commands_of_app(&self, project: &'a str, app: &'a str, kind: &'a str) -> Vec<CommandRecord>;
    fn list_deliverable_commands(&self, cluster: &'a str, now: OffsetDateTime) -> Vec<CommandRecord>;
    fn mark_commands_delivered(&self, ids: &'a [String], at: OffsetDateTime) -> u64;
    fn record_command_status(&self, update: &'a CommandUpdate) -> bool;
    fn expire_commands(&self, now: OffsetDateTime) -> u64;
    fn list_commands(&self, scope: &'a CommandScope, page_size: u32, cursor: Option<&'a str>) -> Page<CommandRecord>;
    fn list_events(&self, filter: &'a EventFilter, page_size: u32, cursor: Option<&'a str>) -> Page<EventRecord>;
    fn list_deployments(&self, filter: &'a DeploymentFilter, page_size: u32, cursor: Option<&'a str>) -> Page<Deployment>;
    fn append_audit(&self, entry: &'a AuditEntry) -> ();
    fn list_audit(&self, page_size: u32, cursor: Option<&'a str>) -> Page<AuditEntry>;
    fn create_user(&self, user: &'a UserRecord) -> UserRecord;
    fn get_user(&self, name: &'a str) -> UserRecord;
    fn list_users(&self) -> Vec<UserRecord>;
    fn delete_user(&self, name: &'a str) -> ();
    fn create_token(&self, token: &'a TokenRecord) -> TokenRecord;
    fn find_token_by_hash(&self, token_hash: &'a str) -> TokenRecord;
    fn list_tokens(&self, owner: &'a str) -> Vec<TokenRecord>;
    fn revoke_token(&self, id: &'a str, at: OffsetDateTime) -> ();
    fn analyze(&self) -> ();
    fn try_lead(&self, role: &'a str) -> Option<Leadership>;
    fn register_replica(&self, id: &'a str, peer_address: &'a str) -> ();
    fn replica_address(&self, id: &'a str) -> Option<String>;
    fn notify(&self, channel: &'a str, payload: &'a str) -> ();
    fn listen(&self, channels: &'a [&'a str]) -> BoxStream<'static, ListenEvent>;
}
