//! PostgreSQL backend: plain `async fn`s over a `PgPool` or a transaction, shared by several hub replicas, with LISTEN/NOTIFY.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use edgecd_core::app::{AppOrigin, ApplicationSpec, ApplicationStatus, OwnerRef};
use edgecd_core::project::ProjectSpec;
use edgecd_core::selector::LabelSelector;
use edgecd_core::{AppRef, ClusterName, ProjectName};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgConnection, Row as _};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::codec::{
    ManagedWrites, ReportedApp, from_ms, now_ms, opt_from_ms, parse_connection, parse_health,
    parse_origin, parse_outcome, parse_phase, parse_severity, parse_sync, phase_str,
    plan_managed_reports, to_i64, to_ms, to_u64,
};
use super::model::*;
use super::query::{self, Bind, Sql};
use super::{
    COMMAND_UPDATES_CHANNEL, COMMANDS_CHANNEL, EVENTS_CHANNEL, Result, Store, StoreError,
    command_update_payloads,
};

/// The PostgreSQL store. Cloning shares the pools: one for the API and
/// everything else, one for the spoke link's ingest and outbox delivery, so
/// that streams of status reports never queue API reads behind them.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    link: PgPool,
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
        let pool_with = |connections: u32, acquire_timeout: Duration| {
            PgPoolOptions::new()
                .max_connections(connections)
                // sqlx retries a refused connection until this deadline.
                .acquire_timeout(acquire_timeout)
                // A connection broken by a server restart is found and replaced
                // at checkout instead of failing a query.
                .test_before_acquire(true)
                .connect_lazy_with(options.clone())
        };
        let pool = pool_with(settings.max_connections, settings.acquire_timeout);
        let link = pool_with(settings.link_connections, settings.link_acquire_timeout);
        // Start-up goes through the more patient link pool: a database that
        // is still starting gets the link pool's acquire timeout.
        sqlx::migrate!("./migrations/postgres")
            .run(&link)
            .await
            .map_err(StoreError::Migrate)?;
        let (name, spec) = super::default_project();
        sqlx::query(
            "INSERT INTO projects (name, spec, version, created_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(Json(&spec))
        .bind(now_ms())
        .execute(&link)
        .await?;
        Ok(Self { pool, link })
    }

    /// Connects with default settings to a `postgres://` URL.
    pub async fn connect_url(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(|_| StoreError::Invalid {
            reason: "malformed PostgreSQL URL".into(),
        })?;
        Self::connect(options, &PgSettings::default()).await
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The plans of the queries the first page of `query` runs (see
    /// [`explain_list_apps`]): which indexes answer a filter.
    pub async fn explain_list_apps(&self, query: &AppQuery) -> Result<Vec<String>> {
        explain_list_apps(&self.pool, query).await
    }
}

// === Projects ===

fn project_from_row(row: &PgRow) -> Result<ProjectRecord> {
    Ok(ProjectRecord {
        name: row.try_get("name")?,
        spec: row.try_get::<Json<ProjectSpec>, _>("spec")?.0,
        version: to_u64(row.try_get("version")?),
        created_at: from_ms(row.try_get("created_at")?),
    })
}

#[tracing::instrument(skip_all, fields(project = name))]
pub async fn create_project(
    pool: &PgPool,
    name: &str,
    spec: &ProjectSpec,
) -> Result<ProjectRecord> {
    ProjectName::parse(name).map_err(invalid)?;
    let row = sqlx::query(
        "INSERT INTO projects (name, spec, version, created_at) VALUES ($1, $2, 1, $3) \
         RETURNING name, spec, version, created_at",
    )
    .bind(name)
    .bind(Json(spec))
    .bind(now_ms())
    .fetch_one(pool)
    .await
    .map_err(StoreError::classify(|| format!("project {name}")))?;
    project_from_row(&row)
}

#[tracing::instrument(skip_all, fields(project = name))]
pub async fn get_project(pool: &PgPool, name: &str) -> Result<ProjectRecord> {
    let row = sqlx::query("SELECT name, spec, version, created_at FROM projects WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| not_found(format!("project {name}")))?;
    project_from_row(&row)
}

#[tracing::instrument(skip_all)]
pub async fn list_projects(pool: &PgPool) -> Result<Vec<ProjectRecord>> {
    let rows = sqlx::query("SELECT name, spec, version, created_at FROM projects ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter().map(project_from_row).collect()
}

#[tracing::instrument(skip_all, fields(project = name, expected_version))]
pub async fn update_project(
    pool: &PgPool,
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
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => project_from_row(&row),
        None => {
            let current = get_project(pool, name).await?;
            Err(conflict(
                format!("project {name}"),
                expected_version,
                current.version,
            ))
        }
    }
}

#[tracing::instrument(skip_all, fields(project = name))]
pub async fn delete_project(pool: &PgPool, name: &str) -> Result<()> {
    let result = sqlx::query("DELETE FROM projects WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await
        .map_err(StoreError::classify(|| format!("project {name}")))?;
    if result.rows_affected() == 0 {
        return Err(not_found(format!("project {name}")));
    }
    Ok(())
}

// === Clusters ===

const CLUSTER_COLUMNS: &str = "name, labels, annotations, server_url, versions, conn_state, \
     conn_since, last_heartbeat, hub_replica, certificate_not_after, revoked_at, created_at, version";

fn cluster_from_row(row: &PgRow) -> Result<ClusterRecord> {
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

async fn replace_cluster_labels(
    conn: &mut PgConnection,
    cluster: &str,
    labels: &Labels,
) -> Result<()> {
    sqlx::query("DELETE FROM cluster_labels WHERE cluster = $1")
        .bind(cluster)
        .execute(&mut *conn)
        .await?;
    if labels.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    let values: Vec<&str> = labels.values().map(String::as_str).collect();
    sqlx::query(
        "INSERT INTO cluster_labels (cluster, key, value) \
         SELECT $1, k, v FROM UNNEST($2::text[], $3::text[]) AS t(k, v)",
    )
    .bind(cluster)
    .bind(&keys)
    .bind(&values)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(cluster = %cluster.name))]
pub async fn create_cluster(pool: &PgPool, cluster: &NewCluster) -> Result<ClusterRecord> {
    ClusterName::parse(&cluster.name).map_err(invalid)?;
    let mut tx = pool.begin().await?;
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
    replace_cluster_labels(&mut tx, &cluster.name, &cluster.labels).await?;
    tx.commit().await?;
    cluster_from_row(&row)
}

#[tracing::instrument(skip_all, fields(cluster = name))]
pub async fn get_cluster(pool: &PgPool, name: &str) -> Result<ClusterRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found(format!("cluster {name}")))?;
    cluster_from_row(&row)
}

#[tracing::instrument(skip_all)]
pub async fn list_clusters(pool: &PgPool, selector: &LabelSelector) -> Result<Vec<ClusterRecord>> {
    let filter = AppFilter {
        cluster_selector: selector.clone(),
        ..AppFilter::default()
    };
    let mut sql = Sql::default();
    let condition = query::where_clause(&filter, &mut sql).replace("a.cluster", "name");
    sql.text = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE {condition} ORDER BY name");
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds)
        .fetch_all(pool)
        .await?;
    rows.iter().map(cluster_from_row).collect()
}

#[tracing::instrument(skip_all, fields(cluster = name, expected_version))]
pub async fn update_cluster_labels(
    pool: &PgPool,
    name: &str,
    expected_version: u64,
    labels: &Labels,
    annotations: &Labels,
) -> Result<ClusterRecord> {
    let mut tx = pool.begin().await?;
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
        let current = get_cluster(pool, name).await?;
        return Err(conflict(
            format!("cluster {name}"),
            expected_version,
            current.version,
        ));
    };
    replace_cluster_labels(&mut tx, name, labels).await?;
    tx.commit().await?;
    cluster_from_row(&row)
}

#[tracing::instrument(skip_all, fields(cluster = name))]
pub async fn record_cluster_hello(
    pool: &PgPool,
    name: &str,
    server_url: &str,
    versions: &ClusterVersions,
    certificate_not_after: Option<OffsetDateTime>,
) -> Result<()> {
    let result = sqlx::query(
        "UPDATE clusters SET server_url = CASE WHEN server_url = '' AND NOT EXISTS \
         (SELECT 1 FROM clusters o WHERE o.server_url = $2 AND o.name <> $1) THEN $2 ELSE server_url END, \
         versions = $3, certificate_not_after = $4 WHERE name = $1",
    )
    .bind(name)
    .bind(server_url)
    .bind(Json(versions))
    .bind(certificate_not_after.map(to_ms))
    .execute(pool)
    .await?;
    expect_one(result.rows_affected(), || format!("cluster {name}"))
}

#[tracing::instrument(skip_all, fields(cluster = name))]
pub async fn set_cluster_server_url(pool: &PgPool, name: &str, server_url: &str) -> Result<()> {
    let result = sqlx::query("UPDATE clusters SET server_url = $2 WHERE name = $1")
        .bind(name)
        .bind(server_url)
        .execute(pool)
        .await?;
    expect_one(result.rows_affected(), || format!("cluster {name}"))
}

#[tracing::instrument(skip_all, fields(cluster = name, state = connection.state.as_str()))]
pub async fn set_cluster_connection(
    pool: &PgPool,
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
    .execute(pool)
    .await?;
    expect_one(result.rows_affected(), || format!("cluster {name}"))
}

#[tracing::instrument(skip_all, fields(cluster))]
pub async fn delete_edge_apps(
    pool: &PgPool,
    cluster: &str,
    app: Option<(&str, &str)>,
) -> Result<u64> {
    let (project, name) = app.unwrap_or_default();
    let deleted = sqlx::query(
        "DELETE FROM applications WHERE cluster = $1 AND origin = 'Autonomous' \
         AND ($2 = '' OR (project = $2 AND name = $3))",
    )
    .bind(cluster)
    .bind(project)
    .bind(name)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

#[tracing::instrument(skip_all)]
pub async fn disconnect_silent_clusters(
    pool: &PgPool,
    silent_since: OffsetDateTime,
) -> Result<Vec<String>> {
    let names = sqlx::query_scalar(
        "UPDATE clusters SET conn_state = 'Disconnected', conn_since = last_heartbeat \
         WHERE conn_state IN ('Connected', 'Stale') AND last_heartbeat < $1 RETURNING name",
    )
    .bind(to_ms(silent_since))
    .fetch_all(pool)
    .await?;
    Ok(names)
}

#[tracing::instrument(skip_all, fields(cluster = name))]
pub async fn revoke_cluster(pool: &PgPool, name: &str, at: OffsetDateTime) -> Result<()> {
    let result = sqlx::query(
        "UPDATE clusters SET revoked_at = COALESCE(revoked_at, $2), conn_state = 'Revoked', \
         conn_since = COALESCE(revoked_at, $2), version = version + 1 WHERE name = $1",
    )
    .bind(name)
    .bind(to_ms(at))
    .execute(pool)
    .await?;
    expect_one(result.rows_affected(), || format!("cluster {name}"))
}

#[tracing::instrument(skip_all, fields(cluster = name))]
pub async fn delete_cluster(pool: &PgPool, name: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
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
pub async fn get_link_state(pool: &PgPool, cluster: &str) -> Result<LinkState> {
    let row = sqlx::query(
        "SELECT spoke_epoch, spoke_seq, desired_version FROM cluster_link WHERE cluster = $1",
    )
    .bind(cluster)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => LinkState {
            spoke_epoch: row.try_get("spoke_epoch")?,
            spoke_seq: to_u64(row.try_get("spoke_seq")?),
            desired_version: to_u64(row.try_get("desired_version")?),
        },
        None => LinkState::default(),
    })
}

/// Allocates the next desired-set version of a cluster. The row lock it
/// takes serialises desired-set changes of one cluster, so versions commit
/// in order.
async fn bump_desired_version(conn: &mut PgConnection, cluster: &str) -> Result<i64> {
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

/// Records `(epoch, seq)` as processed unless it already was; returns
/// `false` for a duplicate. Locks the cluster's link row for the transaction.
async fn advance_spoke_seq(conn: &mut PgConnection, cluster: &str, at: &SpokeSeq) -> Result<bool> {
    // One statement: a conflicting row is locked even when the WHERE clause
    // leaves it unchanged (a duplicate), and nothing is returned then.
    let fresh = sqlx::query(
        "INSERT INTO cluster_link (cluster, spoke_epoch, spoke_seq) VALUES ($1, $2, $3) \
         ON CONFLICT (cluster) DO UPDATE SET spoke_epoch = EXCLUDED.spoke_epoch, spoke_seq = EXCLUDED.spoke_seq \
         WHERE NOT (cluster_link.spoke_epoch = EXCLUDED.spoke_epoch AND cluster_link.spoke_seq >= EXCLUDED.spoke_seq) \
         RETURNING 1",
    )
    .bind(cluster)
    .bind(&at.epoch)
    .bind(to_i64(at.seq))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(fresh.is_some())
}

// === Applications ===

const APP_COLUMNS: &str = "a.id, a.uid, a.project, a.name, a.spec, a.labels, a.origin, a.owner_kind, \
     a.owner_project, a.owner_name, a.owner_scope, a.spec_version, a.cluster, a.namespace, \
     a.desired_version, a.created_at, s.updated_at, s.status";

fn owner_from_row(row: &PgRow) -> Result<Option<OwnerRef>> {
    let kind: Option<String> = row.try_get("owner_kind")?;
    Ok(match kind {
        Some(kind) => Some(OwnerRef {
            kind,
            project: row
                .try_get::<Option<String>, _>("owner_project")?
                .unwrap_or_default(),
            name: row
                .try_get::<Option<String>, _>("owner_name")?
                .unwrap_or_default(),
            scope: row
                .try_get::<Option<String>, _>("owner_scope")?
                .unwrap_or_default(),
        }),
        None => None,
    })
}

fn app_from_row(row: &PgRow) -> Result<AppRecord> {
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

fn summary_from_row(row: &PgRow) -> Result<AppSummary> {
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

async fn fetch_app(conn: &mut PgConnection, project: &str, name: &str) -> Result<AppRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {APP_COLUMNS} FROM applications a JOIN app_status s ON s.app_id = a.id \
         WHERE a.project = $1 AND a.name = $2"
    )))
    .bind(project)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| not_found(format!("application {project}/{name}")))?;
    app_from_row(&row)
}

async fn replace_app_labels(conn: &mut PgConnection, app_id: i64, labels: &Labels) -> Result<()> {
    sqlx::query("DELETE FROM app_labels WHERE app_id = $1")
        .bind(app_id)
        .execute(&mut *conn)
        .await?;
    if labels.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = labels.keys().map(String::as_str).collect();
    let values: Vec<&str> = labels.values().map(String::as_str).collect();
    sqlx::query(
        "INSERT INTO app_labels (app_id, key, value) \
         SELECT $1, k, v FROM UNNEST($2::text[], $3::text[]) AS t(k, v)",
    )
    .bind(app_id)
    .bind(&keys)
    .bind(&values)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The destination cluster: `destination.name`, or the registered cluster
/// whose reported API server URL is `destination.server`.
async fn resolve_destination(conn: &mut PgConnection, spec: &ApplicationSpec) -> Result<String> {
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

async fn require_project(conn: &mut PgConnection, project: &str) -> Result<()> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM projects WHERE name = $1")
        .bind(project)
        .fetch_optional(&mut *conn)
        .await?;
    exists
        .map(|_| ())
        .ok_or_else(|| not_found(format!("project {project}")))
}

#[tracing::instrument(skip_all, fields(project = %app.project, app = %app.name))]
pub async fn create_app(pool: &PgPool, app: &NewApp) -> Result<AppRecord> {
    AppRef::parse_hub(&app.project, &app.name).map_err(invalid)?;
    let mut spec = app.spec.clone();
    spec.project = app.project.clone();
    let mut tx = pool.begin().await?;
    require_project(&mut tx, &app.project).await?;
    let cluster = resolve_destination(&mut tx, &spec).await?;
    let version = bump_desired_version(&mut tx, &cluster).await?;
    let now = now_ms();
    let owner = app.owner.as_ref();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO applications (uid, project, name, spec, labels, origin, owner_kind, owner_project, \
         owner_name, owner_scope, spec_version, cluster, namespace, repo_url, path, target_revision, \
         automated, desired_version, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'Managed', $6, $7, $8, $9, 1, $10, $11, $12, $13, $14, $15, $16, $17) \
         RETURNING id",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&app.project)
    .bind(&app.name)
    .bind(Json(&spec))
    .bind(Json(&app.labels))
    .bind(owner.map(|o| o.kind.as_str()))
    .bind(owner.map(|o| o.project.as_str()))
    .bind(owner.map(|o| o.name.as_str()))
    .bind(owner.map(|o| o.scope.as_str()))
    .bind(&cluster)
    .bind(&spec.destination.namespace)
    .bind(&spec.source.repo_url)
    .bind(&spec.source.path)
    .bind(&spec.source.target_revision)
    .bind(spec.automated().is_some())
    .bind(version)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::classify(|| format!("application {}/{}", app.project, app.name)))?;
    replace_app_labels(&mut tx, id, &app.labels).await?;
    sqlx::query("DELETE FROM app_tombstones WHERE cluster = $1 AND project = $2 AND name = $3")
        .bind(&cluster)
        .bind(&app.project)
        .bind(&app.name)
        .execute(&mut *tx)
        .await?;
    let record = fetch_app(&mut tx, &app.project, &app.name).await?;
    tx.commit().await?;
    Ok(record)
}

/// Imports many new managed apps (with optional initial statuses) in one
/// transaction of multi-row inserts: each destination cluster's desired
/// version is bumped once for the whole import. Fails with
/// `AlreadyExists` if any app exists. For migrations and benchmarks.
#[tracing::instrument(skip_all, fields(apps = apps.len()))]
pub async fn import_apps(pool: &PgPool, apps: &[ImportedApp]) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let mut versions: BTreeMap<&str, i64> = BTreeMap::new();
    for imported in apps {
        AppRef::parse_hub(&imported.app.project, &imported.app.name).map_err(invalid)?;
        let cluster = imported.app.spec.destination.cluster.as_str();
        ClusterName::parse(cluster).map_err(invalid)?;
        if !versions.contains_key(cluster) {
            let version = bump_desired_version(&mut tx, cluster).await?;
            versions.insert(cluster, version);
        }
    }
    let now = now_ms();
    for chunk in apps.chunks(query::IMPORT_CHUNK) {
        let rows: Vec<query::ImportRow<'_>> = chunk
            .iter()
            .map(|imported| {
                let cluster = imported.app.spec.destination.cluster.as_str();
                query::ImportRow {
                    imported,
                    cluster,
                    desired_version: versions.get(cluster).copied().unwrap_or(0),
                    uid: uuid::Uuid::new_v4().to_string(),
                }
            })
            .collect();
        for sql in query::import_sql(&rows, "::jsonb", now)? {
            bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::classify(|| {
                    "an imported application".to_owned()
                }))?;
        }
    }
    tx.commit().await?;
    Ok(apps.len() as u64)
}

#[tracing::instrument(skip_all, fields(project, app = name))]
pub async fn get_app(pool: &PgPool, project: &str, name: &str) -> Result<AppRecord> {
    let mut conn = pool.acquire().await?;
    fetch_app(&mut conn, project, name).await
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

async fn lock_app(conn: &mut PgConnection, project: &str, name: &str) -> Result<Option<LockedApp>> {
    let row = sqlx::query(
        "SELECT a.id, a.uid, a.origin, a.spec_version, a.cluster, s.status_version \
         FROM applications a JOIN app_status s ON s.app_id = a.id \
         WHERE a.project = $1 AND a.name = $2 FOR UPDATE",
    )
    .bind(project)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
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
    conn: &mut PgConnection,
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

#[tracing::instrument(skip_all, fields(project, app = name, expected_spec_version))]
pub async fn update_app(
    pool: &PgPool,
    project: &str,
    name: &str,
    expected_spec_version: u64,
    spec: &ApplicationSpec,
    labels: &Labels,
) -> Result<AppRecord> {
    let what = || format!("application {project}/{name}");
    let mut spec = spec.clone();
    spec.project = project.to_owned();
    let mut tx = pool.begin().await?;
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
        sqlx::query("DELETE FROM app_tombstones WHERE cluster = $1 AND project = $2 AND name = $3")
            .bind(&cluster)
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await?;
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
    .bind(&spec.source.repo_url)
    .bind(&spec.source.path)
    .bind(&spec.source.target_revision)
    .bind(spec.automated().is_some())
    .bind(version)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE app_status SET updated_at = $2 WHERE app_id = $1")
        .bind(app.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    replace_app_labels(&mut tx, app.id, labels).await?;
    let record = fetch_app(&mut tx, project, name).await?;
    tx.commit().await?;
    Ok(record)
}

#[tracing::instrument(skip_all, fields(project, app = name))]
pub async fn delete_app(
    pool: &PgPool,
    project: &str,
    name: &str,
    expected_spec_version: Option<u64>,
    keep_resources: bool,
) -> Result<()> {
    let what = || format!("application {project}/{name}");
    let mut tx = pool.begin().await?;
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
    write_tombstone(
        &mut tx,
        &app.cluster,
        project,
        name,
        &app.uid,
        keep_resources,
    )
    .await?;
    sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(app.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(cluster, since))]
pub async fn desired_changes(pool: &PgPool, cluster: &str, since: u64) -> Result<DesiredChanges> {
    // One snapshot for the version and the changes.
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
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
         SELECT project, name, uid, NULL::jsonb, NULL::jsonb, 0, desired_version, keep_resources FROM app_tombstones \
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
            Ok(
                match row.try_get::<Option<Json<ApplicationSpec>>, _>("spec")? {
                    Some(spec) => DesiredChange::Upsert(Box::new(DesiredApp {
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
                    })),
                    None => DesiredChange::Delete {
                        project,
                        name,
                        uid,
                        desired_version,
                        keep_resources: row.try_get("keep_resources")?,
                    },
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DesiredChanges {
        version: to_u64(version.unwrap_or(0)),
        changes,
    })
}

/// The filter to run in SQL, with cluster-side filters resolved to cluster
/// names when that is exact (see `query::cluster_prefilter`) and selective
/// app-label selectors or name searches resolved to app ids (see
/// `query::app_label_prefilter`, `query::search_prefilter`); `None` if
/// nothing can match. The second value is the exact total when the
/// resolved ids are the whole answer (no count query needed).
async fn resolve_filter(
    conn: &mut PgConnection,
    filter: &AppFilter,
) -> Result<Option<(AppFilter, Option<i64>)>> {
    let mut filter = match query::cluster_prefilter(filter) {
        None => filter.clone(),
        Some(pre) => {
            let names: Vec<String> =
                bind_all_scalar(sqlx::query_scalar(AssertSqlSafe(pre.text)), pre.binds)
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
        let ids: Vec<i64> = bind_all_scalar(sqlx::query_scalar(AssertSqlSafe(pre.text)), pre.binds)
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
async fn filter_total(
    conn: &mut PgConnection,
    filter: &AppFilter,
    known: Option<i64>,
) -> Result<i64> {
    if let Some(total) = known {
        return Ok(total);
    }
    let count = query::counts_total_sql(filter).unwrap_or_else(|| query::count_sql(filter));
    Ok(
        bind_all_scalar(sqlx::query_scalar(AssertSqlSafe(count.text)), count.binds)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The plans of the queries the first page of `query` runs after its
/// prefilters: the page, then the total when one is counted; `EXPLAIN (COSTS OFF)`
/// lines. For tests and for diagnosing a slow list: which index answers a
/// filter.
pub async fn explain_list_apps(pool: &PgPool, query: &AppQuery) -> Result<Vec<String>> {
    let page_size = query::clamp_page_size(query.page_size);
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let Some((sql_filter, known_total)) = resolve_filter(&mut tx, &query.filter).await? else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let list = query::list_sql(&sql_filter, &query.filter, query.sort, None, page_size)?;
    let mut statements = vec![list];
    if known_total.is_none() {
        statements.push(
            query::counts_total_sql(&sql_filter).unwrap_or_else(|| query::count_sql(&sql_filter)),
        );
    }
    let mut plan = Vec::new();
    for statement in statements {
        let text = format!("EXPLAIN (COSTS OFF) {}", statement.text);
        let binds = statement.binds;
        let lines: Vec<String> = bind_all_scalar(sqlx::query_scalar(AssertSqlSafe(text)), binds)
            .fetch_all(&mut *tx)
            .await?;
        plan.extend(lines);
    }
    tx.commit().await?;
    Ok(plan)
}

#[tracing::instrument(skip_all, fields(sort = ?query.sort.key, page_size = query.page_size))]
pub async fn list_apps(pool: &PgPool, query: &AppQuery) -> Result<Page<AppSummary>> {
    let page_size = query::clamp_page_size(query.page_size);
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let Some((sql_filter, known_total)) = resolve_filter(&mut tx, &query.filter).await? else {
        tx.commit().await?;
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
            total: Some(0),
        });
    };
    let list = query::list_sql(
        &sql_filter,
        &query.filter,
        query.sort,
        query.cursor.as_deref(),
        page_size,
    )?;
    let rows = bind_all(sqlx::query(AssertSqlSafe(list.text)), list.binds)
        .fetch_all(&mut *tx)
        .await?;
    // The exact total is computed with the first page only; later pages
    // follow a cursor and do not pay for a count again.
    let total: Option<i64> = if query.cursor.is_none() {
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
pub async fn count_apps(pool: &PgPool, filter: &AppFilter) -> Result<AppCounts> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let mut counts = AppCounts::default();
    let Some((filter, _)) = resolve_filter(&mut tx, filter).await? else {
        tx.commit().await?;
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
            bind_all_as(sqlx::query_as(AssertSqlSafe(sql.text)), sql.binds)
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

#[tracing::instrument(skip_all, fields(clusters = filter.clusters.len()))]
pub async fn count_apps_by_cluster(
    pool: &PgPool,
    filter: &AppFilter,
) -> Result<BTreeMap<String, AppCounts>> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let Some((filter, _)) = resolve_filter(&mut tx, filter).await? else {
        tx.commit().await?;
        return Ok(BTreeMap::new());
    };
    let sql = query::cluster_counts_sql(&filter);
    let rows: Vec<(String, String, String, i64)> =
        bind_all_as(sqlx::query_as(AssertSqlSafe(sql.text)), sql.binds)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(query::fold_cluster_counts(rows))
}

#[tracing::instrument(skip_all, fields(project, app = name))]
pub async fn get_resource_tree(
    pool: &PgPool,
    project: &str,
    name: &str,
) -> Result<Option<serde_json::Value>> {
    let mut conn = pool.acquire().await?;
    let id = app_id(&mut conn, project, name).await?;
    let tree: Option<Json<serde_json::Value>> =
        sqlx::query_scalar("SELECT tree FROM app_trees WHERE app_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(tree.map(|t| t.0))
}

async fn app_id(conn: &mut PgConnection, project: &str, name: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM applications WHERE project = $1 AND name = $2")
        .bind(project)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(format!("application {project}/{name}")))
}

// === Status ingest ===

/// Number of conditions of an error type (Argo CD's `*Error` condition types).
fn error_conditions(status: &ApplicationStatus) -> i32 {
    let n = status
        .conditions
        .iter()
        .filter(|c| c.kind.ends_with("Error"))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn write_status(
    conn: &mut PgConnection,
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
    .bind(status.operation_state.as_ref().map_or("", |o| phase_str(o.phase)))
    .bind(error_conditions(status))
    .bind(to_i64(status.status_version))
    .bind(now)
    .bind(snapshot)
    .bind(Json(status))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Resets the status of a managed app the spoke no longer reports;
/// `condition` is over its status row `s`.
async fn reset_status(conn: &mut PgConnection, condition: &str, binds: Vec<Bind>) -> Result<u64> {
    let reset = bind_all(
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE app_status s SET sync = 'Unknown', health = 'Unknown', revision = '', \
             operation_phase = '', error_conditions = 0, status_version = 0, updated_at = {}, \
             status = NULL FROM applications a \
             WHERE a.id = s.app_id AND a.origin = 'Managed' AND {condition}",
            now_ms()
        ))),
        binds,
    )
    .execute(&mut *conn)
    .await?;
    Ok(reset.rows_affected())
}

async fn ingest_report(
    conn: &mut PgConnection,
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
        let mut spec = autonomous.spec.clone();
        spec.project = report.project.clone();
        let owner = autonomous.owner.as_ref();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO applications (uid, project, name, spec, labels, origin, owner_kind, owner_project, \
             owner_name, owner_scope, spec_version, cluster, namespace, repo_url, path, target_revision, \
             automated, desired_version, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'Autonomous', $6, $7, $8, $9, 1, $10, $11, $12, $13, $14, $15, 0, $16) \
             RETURNING id",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&report.project)
        .bind(&report.name)
        .bind(Json(&spec))
        .bind(Json(&autonomous.labels))
        .bind(owner.map(|o| o.kind.as_str()))
        .bind(owner.map(|o| o.project.as_str()))
        .bind(owner.map(|o| o.name.as_str()))
        .bind(owner.map(|o| o.scope.as_str()))
        .bind(cluster)
        .bind(&spec.destination.namespace)
        .bind(&spec.source.repo_url)
        .bind(&spec.source.path)
        .bind(&spec.source.target_revision)
        .bind(spec.automated().is_some())
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        replace_app_labels(conn, id, &autonomous.labels).await?;
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
        .bind(&spec.source.repo_url)
        .bind(&spec.source.path)
        .bind(&spec.source.target_revision)
        .bind(spec.automated().is_some())
        .execute(&mut *conn)
        .await?;
        replace_app_labels(conn, app.id, &autonomous.labels).await?;
    }
    write_status(conn, app.id, &report.status, snapshot, now).await?;
    outcome.applied += 1;
    Ok(())
}

/// Stores the managed apps' reports of a batch set-based: one lookup of every
/// reported app, then one statement that updates the status rows (columns and
/// document) of the newer reports (the stale-version check is repeated in
/// SQL), and, for a snapshot part, one statement stamping the
/// snapshot id on reported apps whose status was stale. Same outcome as taking
/// the reports one by one in order.
async fn ingest_managed_reports(
    conn: &mut PgConnection,
    cluster: &str,
    reports: &[&StatusReport],
    snapshot: Option<&str>,
    outcome: &mut IngestOutcome,
) -> Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    let projects: Vec<&str> = reports.iter().map(|r| r.project.as_str()).collect();
    let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
    // One unique-index probe per reported app (LATERAL … LIMIT 1): a plain
    // join of a 100-element array may be planned as a hash join over a
    // sequential scan, which reads every dead row version a busy status
    // table accumulates between vacuums (seconds per batch).
    let rows = sqlx::query(
        "SELECT a.id, a.project, a.name, a.cluster, a.origin, a.status_version \
         FROM UNNEST($1::text[], $2::text[]) AS r(project, name) \
         CROSS JOIN LATERAL (SELECT x.id, x.project, x.name, x.cluster, x.origin, st.status_version \
         FROM applications x JOIN app_status st ON st.app_id = x.id \
         WHERE x.project = r.project COLLATE \"C\" AND x.name = r.name COLLATE \"C\" LIMIT 1) a",
    )
    .bind(&projects)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut known = HashMap::with_capacity(rows.len());
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
    let ManagedWrites { newest, stale } = plan_managed_reports(cluster, reports, known, outcome);
    if !newest.is_empty() {
        let mut ids = Vec::with_capacity(newest.len());
        let mut syncs = Vec::with_capacity(newest.len());
        let mut healths = Vec::with_capacity(newest.len());
        let mut revisions = Vec::with_capacity(newest.len());
        let mut phases = Vec::with_capacity(newest.len());
        let mut errors = Vec::with_capacity(newest.len());
        let mut versions = Vec::with_capacity(newest.len());
        let mut documents = Vec::with_capacity(newest.len());
        for (id, report) in &newest {
            let status = &report.status;
            ids.push(*id);
            syncs.push(status.sync.status.as_str());
            healths.push(status.health.status.as_str());
            revisions.push(status.sync.revision.as_str());
            phases.push(
                status
                    .operation_state
                    .as_ref()
                    .map_or("", |o| phase_str(o.phase)),
            );
            errors.push(error_conditions(status));
            versions.push(to_i64(status.status_version));
            documents.push(serde_json::to_string(status)?);
        }
        // One narrow status row per app (migration 0011). `s.app_id =
        // ANY($1)` keeps the update on primary-key probes whatever the
        // planner estimates for the array (see the lookup above). An app's
        // origin never changes, so the lookup's Managed check holds.
        let written = sqlx::query(
            "UPDATE app_status s SET sync = v.sync, health = v.health, revision = v.revision, \
             operation_phase = v.phase, error_conditions = v.errors, status_version = v.status_version, \
             updated_at = $9, snapshot_id = COALESCE($10, s.snapshot_id), status = v.status::jsonb \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::int[], $7::bigint[], $8::text[]) \
             AS v(id, sync, health, revision, phase, errors, status_version, status) \
             WHERE s.app_id = ANY($1::bigint[]) AND s.app_id = v.id AND s.cluster = $11 \
             AND s.status_version < v.status_version",
        )
        .bind(&ids)
        .bind(&syncs)
        .bind(&healths)
        .bind(&revisions)
        .bind(&phases)
        .bind(&errors)
        .bind(&versions)
        .bind(&documents)
        .bind(now_ms())
        .bind(snapshot)
        .bind(cluster)
        .execute(&mut *conn)
        .await?;
        // A concurrent move of an app to another cluster: not written after all.
        let lost = (ids.len() as u64).saturating_sub(written.rows_affected());
        let lost = u32::try_from(lost).unwrap_or(u32::MAX);
        outcome.applied = outcome.applied.saturating_sub(lost);
        outcome.rejected += lost;
    }
    if let Some(snapshot) = snapshot
        && !stale.is_empty()
    {
        sqlx::query(
            "UPDATE app_status SET snapshot_id = $2 WHERE app_id = ANY($1) AND cluster = $3 \
             AND snapshot_id IS DISTINCT FROM $2",
        )
        .bind(&stale)
        .bind(snapshot)
        .bind(cluster)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, reports = batch.reports.len()))]
pub async fn ingest_status_batch(
    pool: &PgPool,
    cluster: &str,
    at: &SpokeSeq,
    batch: &StatusBatch,
) -> Result<IngestOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = IngestOutcome::default();
    if !advance_spoke_seq(&mut tx, cluster, at).await? {
        outcome.duplicate = true;
        return Ok(outcome);
    }
    let snapshot = batch.snapshot.as_ref().map(|s| s.snapshot_id.as_str());
    let (managed, autonomous): (Vec<&StatusReport>, Vec<&StatusReport>) =
        batch.reports.iter().partition(|r| r.autonomous.is_none());
    ingest_managed_reports(&mut tx, cluster, &managed, snapshot, &mut outcome).await?;
    for report in autonomous {
        ingest_report(&mut tx, cluster, report, snapshot, &mut outcome).await?;
    }
    for (project, name) in &batch.removed {
        let deleted = sqlx::query(
            "DELETE FROM applications WHERE project = $1 AND name = $2 AND cluster = $3 AND origin = 'Autonomous'",
        )
        .bind(project)
        .bind(name)
        .bind(cluster)
        .execute(&mut *tx)
        .await?;
        outcome.deleted += u32::try_from(deleted.rows_affected()).unwrap_or(u32::MAX);
        let reset = reset_status(
            &mut tx,
            "s.project = $1 AND s.name = $2 AND s.cluster = $3",
            vec![
                Bind::Text(project.clone()),
                Bind::Text(name.clone()),
                Bind::Text(cluster.to_owned()),
            ],
        )
        .await?;
        outcome.reset += u32::try_from(reset).unwrap_or(u32::MAX);
    }
    if let Some(snapshot) = batch.snapshot.as_ref().filter(|s| s.last) {
        let deleted = sqlx::query(
            "DELETE FROM applications WHERE cluster = $1 AND origin = 'Autonomous' \
             AND id IN (SELECT app_id FROM app_status WHERE cluster = $1 \
             AND snapshot_id IS DISTINCT FROM $2)",
        )
        .bind(cluster)
        .bind(&snapshot.snapshot_id)
        .execute(&mut *tx)
        .await?;
        outcome.deleted += u32::try_from(deleted.rows_affected()).unwrap_or(u32::MAX);
        let reset = reset_status(
            &mut tx,
            "s.cluster = $1 AND s.snapshot_id IS DISTINCT FROM $2 AND s.status_version > 0",
            vec![
                Bind::Text(cluster.to_owned()),
                Bind::Text(snapshot.snapshot_id.clone()),
            ],
        )
        .await?;
        outcome.reset += u32::try_from(reset).unwrap_or(u32::MAX);
    }
    tx.commit().await?;
    Ok(outcome)
}

#[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, project, app = name))]
pub async fn ingest_resource_tree(
    pool: &PgPool,
    cluster: &str,
    at: &SpokeSeq,
    project: &str,
    name: &str,
    tree: &serde_json::Value,
) -> Result<IngestOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = IngestOutcome::default();
    if !advance_spoke_seq(&mut tx, cluster, at).await? {
        outcome.duplicate = true;
        return Ok(outcome);
    }
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
pub async fn ingest_events(
    pool: &PgPool,
    cluster: &str,
    at: &SpokeSeq,
    events: &[EventRecord],
) -> Result<IngestOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = IngestOutcome::default();
    if !advance_spoke_seq(&mut tx, cluster, at).await? {
        outcome.duplicate = true;
        return Ok(outcome);
    }
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
    if outcome.applied > 0 {
        notify_in(&mut tx, EVENTS_CHANNEL, cluster).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

#[tracing::instrument(skip_all, fields(cluster, epoch = %at.epoch, seq = at.seq, updates = updates.len()))]
pub async fn ingest_command_statuses(
    pool: &PgPool,
    cluster: &str,
    at: &SpokeSeq,
    updates: &[CommandUpdate],
) -> Result<IngestOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = IngestOutcome::default();
    if !advance_spoke_seq(&mut tx, cluster, at).await? {
        outcome.duplicate = true;
        return Ok(outcome);
    }
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
    announce_commands(&mut tx, &changed).await?;
    tx.commit().await?;
    Ok(outcome)
}

// === Commands ===

const COMMAND_COLUMNS: &str = "seq, id, project, app, cluster, kind, payload, issued_by, issued_at, \
     deadline, outcome, message, result, delivered_at, updated_at";

fn command_from_row(row: &PgRow) -> Result<CommandRecord> {
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
    })
}

#[tracing::instrument(skip_all, fields(project = %command.project, app = %command.app, cluster = %command.cluster, kind = %command.kind))]
pub async fn enqueue_command(pool: &PgPool, command: &NewCommand) -> Result<CommandRecord> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO commands (id, project, app, cluster, kind, payload, issued_by, issued_at, deadline, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8) RETURNING {COMMAND_COLUMNS}"
    )))
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&command.project)
    .bind(&command.app)
    .bind(&command.cluster)
    .bind(&command.kind)
    .bind(Json(&command.payload))
    .bind(&command.issued_by)
    .bind(now)
    .bind(to_ms(command.deadline))
    .fetch_one(&mut *tx)
    .await?;
    notify_in(&mut tx, COMMANDS_CHANNEL, &command.cluster).await?;
    let record = command_from_row(&row)?;
    announce_commands(&mut tx, &[record.id.as_str()]).await?;
    tx.commit().await?;
    Ok(record)
}

/// Many commands in one transaction: one multi-row insert (`UNNEST` of
/// arrays, in input order, so their seqs follow it) and one `pg_notify` per
/// distinct cluster, all in one statement each.
#[tracing::instrument(skip_all, fields(commands = commands.len()))]
pub async fn enqueue_commands(
    pool: &PgPool,
    commands: &[NewCommand],
) -> Result<Vec<CommandRecord>> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let ids: Vec<String> = commands
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let column = |f: fn(&NewCommand) -> &str| commands.iter().map(f).collect::<Vec<&str>>();
    let payloads = commands
        .iter()
        .map(|c| serde_json::to_string(&c.payload))
        .collect::<std::result::Result<Vec<String>, _>>()?;
    let deadlines: Vec<i64> = commands.iter().map(|c| to_ms(c.deadline)).collect();
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO commands (id, project, app, cluster, kind, payload, issued_by, issued_at, deadline, updated_at) \
         SELECT id, project, app, cluster, kind, payload::jsonb, issued_by, $9, deadline, $9 \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[]) \
         WITH ORDINALITY AS c(id, project, app, cluster, kind, payload, issued_by, deadline, ord) \
         ORDER BY ord RETURNING {COMMAND_COLUMNS}"
    )))
    .bind(&ids)
    .bind(column(|c| c.project.as_str()))
    .bind(column(|c| c.app.as_str()))
    .bind(column(|c| c.cluster.as_str()))
    .bind(column(|c| c.kind.as_str()))
    .bind(&payloads)
    .bind(column(|c| c.issued_by.as_str()))
    .bind(&deadlines)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let clusters: std::collections::BTreeSet<&str> =
        commands.iter().map(|c| c.cluster.as_str()).collect();
    let clusters: Vec<&str> = clusters.into_iter().collect();
    sqlx::query("SELECT pg_notify($1, c) FROM UNNEST($2::text[]) AS c")
        .bind(COMMANDS_CHANNEL)
        .bind(&clusters)
        .execute(&mut *tx)
        .await?;
    announce_commands(&mut tx, &ids).await?;
    tx.commit().await?;
    let mut by_id: HashMap<String, CommandRecord> = rows
        .iter()
        .map(|row| command_from_row(row).map(|r| (r.id.clone(), r)))
        .collect::<Result<_>>()?;
    ids.iter()
        .map(|id| {
            by_id.remove(id).ok_or_else(|| StoreError::Corrupt {
                reason: "an inserted command was not returned".into(),
            })
        })
        .collect()
}

#[tracing::instrument(skip_all, fields(command = id))]
pub async fn get_command(pool: &PgPool, id: &str) -> Result<CommandRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COMMAND_COLUMNS} FROM commands WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found(format!("command {id}")))?;
    command_from_row(&row)
}

/// The newest still-Pending commands of one kind for an app (at most 16).
#[tracing::instrument(skip_all, fields(project, app, kind))]
pub async fn pending_commands_of_app(
    pool: &PgPool,
    project: &str,
    app: &str,
    kind: &str,
) -> Result<Vec<CommandRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COMMAND_COLUMNS} FROM commands WHERE project = $1 AND app = $2 AND kind = $3 \
         AND outcome = 'Pending' ORDER BY seq DESC LIMIT 16"
    )))
    .bind(project)
    .bind(app)
    .bind(kind)
    .fetch_all(pool)
    .await?;
    rows.iter().map(command_from_row).collect()
}

#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn get_commands(pool: &PgPool, ids: &[String]) -> Result<Vec<CommandRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COMMAND_COLUMNS} FROM commands WHERE id = ANY($1) ORDER BY seq"
    )))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.iter().map(command_from_row).collect()
}

#[tracing::instrument(skip_all, fields(cluster))]
pub async fn list_deliverable_commands(
    pool: &PgPool,
    cluster: &str,
    now: OffsetDateTime,
) -> Result<Vec<CommandRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COMMAND_COLUMNS} FROM commands WHERE cluster = $1 \
         AND outcome IN ('Pending', 'Delivered') AND deadline > $2 ORDER BY seq"
    )))
    .bind(cluster)
    .bind(to_ms(now))
    .fetch_all(pool)
    .await?;
    rows.iter().map(command_from_row).collect()
}

#[tracing::instrument(skip_all, fields(commands = ids.len()))]
pub async fn mark_commands_delivered(
    pool: &PgPool,
    ids: &[String],
    at: OffsetDateTime,
) -> Result<u64> {
    // One statement: the update and its announcement.
    let marked: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH u AS (UPDATE commands SET outcome = 'Delivered', delivered_at = $2, updated_at = $2 \
         WHERE id = ANY($1) AND outcome = 'Pending' RETURNING id) {}",
        announce_updated("$3")
    )))
    .bind(ids)
    .bind(to_ms(at))
    .bind(COMMAND_UPDATES_CHANNEL)
    .fetch_one(pool)
    .await?;
    Ok(to_u64(marked))
}

/// The tail of a statement whose CTE `u` returns the ids of updated commands:
/// announces them on the channel bound as `channel` (e.g. `$3`), in chunks of
/// [`super::IDS_PER_NOTIFICATION`], and returns how many there were.
fn announce_updated(channel: &str) -> String {
    format!(
        "SELECT (SELECT count(*) FROM u) + 0 * (SELECT count(pg_notify({channel}, ids)) \
         FROM (SELECT string_agg(id, ',') AS ids FROM (SELECT id, (row_number() OVER () - 1) / {per} AS grp \
         FROM u) x GROUP BY grp) g)",
        per = super::IDS_PER_NOTIFICATION
    )
}

/// Announces changed commands on [`COMMAND_UPDATES_CHANNEL`] (delivered when the transaction commits).
async fn announce_commands<S: AsRef<str>>(conn: &mut PgConnection, ids: &[S]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let payloads = command_update_payloads(ids);
    sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
        .bind(COMMAND_UPDATES_CHANNEL)
        .bind(&payloads)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Applies one command update; `None` if the command is unknown (or of
/// another cluster), `Some(false)` if ignored as a regression.
async fn apply_command_update(
    conn: &mut PgConnection,
    cluster: Option<&str>,
    update: &CommandUpdate,
) -> Result<Option<bool>> {
    let row = sqlx::query("SELECT cluster, outcome FROM commands WHERE id = $1 FOR UPDATE")
        .bind(&update.id)
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
    let now = now_ms();
    sqlx::query(
        "UPDATE commands SET outcome = $2, message = $3, result = COALESCE($4, result), updated_at = $5, \
         delivered_at = COALESCE(delivered_at, CASE WHEN $2 <> 'Pending' THEN $5 END) WHERE id = $1",
    )
    .bind(&update.id)
    .bind(update.outcome.as_str())
    .bind(&update.message)
    .bind(update.result.as_ref().map(Json))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(true))
}

#[tracing::instrument(skip_all, fields(command = %update.id, outcome = update.outcome.as_str()))]
pub async fn record_command_status(pool: &PgPool, update: &CommandUpdate) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let applied = apply_command_update(&mut tx, None, update)
        .await?
        .ok_or_else(|| not_found(format!("command {}", update.id)))?;
    if applied {
        announce_commands(&mut tx, &[update.id.as_str()]).await?;
    }
    tx.commit().await?;
    Ok(applied)
}

#[tracing::instrument(skip_all)]
pub async fn expire_commands(pool: &PgPool, now: OffsetDateTime) -> Result<u64> {
    let expired: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH u AS (UPDATE commands SET outcome = 'Expired', message = 'deadline passed before the command started', \
         updated_at = $1 WHERE outcome IN ('Pending', 'Delivered') AND deadline <= $1 RETURNING id) {}",
        announce_updated("$2")
    )))
    .bind(to_ms(now))
    .bind(COMMAND_UPDATES_CHANNEL)
    .fetch_one(pool)
    .await?;
    Ok(to_u64(expired))
}

#[tracing::instrument(skip_all, fields(page_size))]
pub async fn list_commands(
    pool: &PgPool,
    scope: &CommandScope,
    page_size: u32,
    cursor: Option<&str>,
) -> Result<Page<CommandRecord>> {
    let page_size = query::clamp_page_size(page_size);
    let mut sql = Sql::default();
    let condition = match scope {
        CommandScope::App { project, name } => {
            let p = sql.bind(Bind::Text(project.clone()));
            let a = sql.bind(Bind::Text(name.clone()));
            format!("project = {p} AND app = {a}")
        }
        CommandScope::Cluster(cluster) => {
            format!("cluster = {}", sql.bind(Bind::Text(cluster.clone())))
        }
    };
    let after = sql.bind(Bind::Int(query::decode_id_cursor(cursor)?));
    let limit = sql.bind(Bind::Int(i64::from(page_size) + 1));
    sql.text = format!(
        "SELECT {COMMAND_COLUMNS} FROM commands WHERE {condition} AND seq < {after} ORDER BY seq DESC LIMIT {limit}"
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds)
        .fetch_all(pool)
        .await?;
    let mut items = rows
        .iter()
        .map(command_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(id_page(&mut items, page_size, |c| to_i64(c.seq)))
}

// === Events and audit ===

fn event_from_row(row: &PgRow) -> Result<EventRecord> {
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

#[tracing::instrument(skip_all, fields(page_size))]
pub async fn list_events(
    pool: &PgPool,
    filter: &EventFilter,
    page_size: u32,
    cursor: Option<&str>,
) -> Result<Page<EventRecord>> {
    let page_size = query::clamp_page_size(page_size);
    let mut sql = Sql::default();
    let mut conditions = Vec::new();
    if let Some(cluster) = &filter.cluster {
        conditions.push(format!(
            "cluster = {}",
            sql.bind(Bind::Text(cluster.clone()))
        ));
    }
    if let Some((project, app)) = &filter.app {
        let p = sql.bind(Bind::Text(project.clone()));
        let a = sql.bind(Bind::Text(app.clone()));
        conditions.push(format!("project = {p} AND app = {a}"));
    }
    let after = sql.bind(Bind::Int(query::decode_id_cursor(cursor)?));
    conditions.push(format!("seq < {after}"));
    let limit = sql.bind(Bind::Int(i64::from(page_size) + 1));
    sql.text = format!(
        "SELECT seq, cluster, id, project, app, resource, severity, reason, message, time FROM events \
         WHERE {} ORDER BY seq DESC LIMIT {limit}",
        conditions.join(" AND ")
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql.text)), sql.binds)
        .fetch_all(pool)
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(event_from_row(row)?);
        seqs.push(row.try_get::<i64, _>("seq")?);
    }
    Ok(seq_page(items, seqs, page_size))
}

#[tracing::instrument(skip_all, fields(actor = %entry.actor, action = %entry.action))]
pub async fn append_audit(pool: &PgPool, entry: &AuditEntry) -> Result<()> {
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
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(page_size))]
pub async fn list_audit(
    pool: &PgPool,
    page_size: u32,
    cursor: Option<&str>,
) -> Result<Page<AuditEntry>> {
    let page_size = query::clamp_page_size(page_size);
    let rows = sqlx::query(
        "SELECT seq, actor, action, target, source, result, message, time FROM audit_log \
         WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
    )
    .bind(query::decode_id_cursor(cursor)?)
    .bind(i64::from(page_size) + 1)
    .fetch_all(pool)
    .await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(AuditEntry {
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            target: row.try_get("target")?,
            source: row.try_get("source")?,
            result: row.try_get("result")?,
            message: row.try_get("message")?,
            time: from_ms(row.try_get("time")?),
        });
        seqs.push(row.try_get::<i64, _>("seq")?);
    }
    Ok(seq_page(items, seqs, page_size))
}

// === Accounts ===

fn user_from_row(row: &PgRow) -> Result<UserRecord> {
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

fn token_from_row(row: &PgRow) -> Result<TokenRecord> {
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

const USER_COLUMNS: &str = "name, password_hash, admin, roles, created_at, version";
const TOKEN_COLUMNS: &str =
    "id, owner, description, token_hash, roles, created_at, expires_at, revoked_at";

#[tracing::instrument(skip_all, fields(user = %user.name))]
pub async fn create_user(pool: &PgPool, user: &UserRecord) -> Result<UserRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO users (name, password_hash, admin, roles, created_at) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {USER_COLUMNS}"
    )))
    .bind(&user.name)
    .bind(user.password_hash.as_ref().map(|h| h.0.as_str()))
    .bind(user.admin)
    .bind(Json(&user.roles))
    .bind(to_ms(user.created_at))
    .fetch_one(pool)
    .await
    .map_err(StoreError::classify(|| format!("user {}", user.name)))?;
    user_from_row(&row)
}

#[tracing::instrument(skip_all, fields(user = name))]
pub async fn get_user(pool: &PgPool, name: &str) -> Result<UserRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found(format!("user {name}")))?;
    user_from_row(&row)
}

#[tracing::instrument(skip_all)]
pub async fn list_users(pool: &PgPool) -> Result<Vec<UserRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY name"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(user_from_row).collect()
}

#[tracing::instrument(skip_all, fields(user = name))]
pub async fn delete_user(pool: &PgPool, name: &str) -> Result<()> {
    let result = sqlx::query("DELETE FROM users WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    expect_one(result.rows_affected(), || format!("user {name}"))
}

#[tracing::instrument(skip_all, fields(token = %token.id, owner = %token.owner))]
pub async fn create_token(pool: &PgPool, token: &TokenRecord) -> Result<TokenRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO api_tokens (id, owner, description, token_hash, roles, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TOKEN_COLUMNS}"
    )))
    .bind(&token.id)
    .bind(&token.owner)
    .bind(&token.description)
    .bind(&token.token_hash.0)
    .bind(Json(&token.roles))
    .bind(to_ms(token.created_at))
    .bind(token.expires_at.map(to_ms))
    .bind(token.revoked_at.map(to_ms))
    .fetch_one(pool)
    .await
    .map_err(StoreError::classify(|| format!("token {} (or its owner)", token.id)))?;
    token_from_row(&row)
}

#[tracing::instrument(skip_all)]
pub async fn find_token_by_hash(pool: &PgPool, token_hash: &str) -> Result<TokenRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
    )))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| not_found("token".to_owned()))?;
    token_from_row(&row)
}

#[tracing::instrument(skip_all, fields(owner))]
pub async fn list_tokens(pool: &PgPool, owner: &str) -> Result<Vec<TokenRecord>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE owner = $1 ORDER BY created_at, id"
    )))
    .bind(owner)
    .fetch_all(pool)
    .await?;
    rows.iter().map(token_from_row).collect()
}

#[tracing::instrument(skip_all, fields(token = id))]
pub async fn revoke_token(pool: &PgPool, id: &str, at: OffsetDateTime) -> Result<()> {
    let result =
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(to_ms(at))
            .execute(pool)
            .await?;
    expect_one(result.rows_affected(), || format!("token {id}"))
}

// === Maintenance ===

#[tracing::instrument(skip_all)]
pub async fn analyze(pool: &PgPool) -> Result<()> {
    // VACUUM also sets the visibility map of the freshly written pages, so
    // that counts and id lookups are index-only scans at once instead of
    // after the next autovacuum. It cannot run inside a transaction block:
    // sent as a simple query.
    sqlx::raw_sql("VACUUM (ANALYZE)").execute(pool).await?;
    Ok(())
}

// === Notifications ===

async fn notify_in(conn: &mut PgConnection, channel: &str, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sends a notification; delivered to listeners when the transaction (here:
/// the statement) commits.
#[tracing::instrument(skip_all, fields(channel))]
pub async fn notify(pool: &PgPool, channel: &str, payload: &str) -> Result<()> {
    let mut conn = pool.acquire().await?;
    notify_in(&mut conn, channel, payload).await
}

/// How often a held role's session is checked, and how long a check may take.
const LEADER_CHECK: Duration = Duration::from_secs(5);

/// A session advisory lock on `edgecd:<role>`, taken on a connection
/// detached from the pool and kept by a task that checks it every
/// `LEADER_CHECK`. When a check fails the role is reported lost and the
/// connection dropped: PostgreSQL releases the lock when the session ends
/// (at once, or when it notices a dead connection), and only then can
/// another replica take it.
#[tracing::instrument(skip(pool))]
pub async fn try_lead(pool: &PgPool, role: &str) -> Result<Option<super::Leadership>> {
    let mut conn = pool.acquire().await?.detach();
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
    Ok(Some(super::Leadership::kept(lost, keeper)))
}

/// Listens on `channels` with a dedicated connection, reconnecting and
/// re-subscribing after a connection loss (then yielding `Lagged`).
#[tracing::instrument(skip_all, fields(channels = ?channels))]
pub async fn listen(pool: &PgPool, channels: &[&str]) -> Result<BoxStream<'static, ListenEvent>> {
    let mut listener = PgListener::connect_with(pool).await?;
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

// === Helpers ===

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(n) => query.bind(n),
            Bind::Bool(b) => query.bind(b),
            Bind::OptText(text) => query.bind(text),
        };
    }
    query
}

fn bind_all_scalar<'q, O>(
    mut query: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(n) => query.bind(n),
            Bind::Bool(b) => query.bind(b),
            Bind::OptText(text) => query.bind(text),
        };
    }
    query
}

fn bind_all_as<'q, O>(
    mut query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(n) => query.bind(n),
            Bind::Bool(b) => query.bind(b),
            Bind::OptText(text) => query.bind(text),
        };
    }
    query
}

fn id_page<T>(items: &mut Vec<T>, page_size: u32, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = if items.len() > page_size as usize {
        items.truncate(page_size as usize);
        items.last().map(|last| query::encode_id_cursor(id(last)))
    } else {
        None
    };
    Page {
        items: std::mem::take(items),
        next_cursor,
        total: None,
    }
}

fn seq_page<T>(mut items: Vec<T>, seqs: Vec<i64>, page_size: u32) -> Page<T> {
    let next_cursor = if items.len() > page_size as usize {
        items.truncate(page_size as usize);
        seqs.get(page_size as usize - 1)
            .map(|seq| query::encode_id_cursor(*seq))
    } else {
        None
    };
    Page {
        items,
        next_cursor,
        total: None,
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

// === impl Store ===

impl Store for PgStore {
    fn create_project<'a>(
        &'a self,
        name: &'a str,
        spec: &'a ProjectSpec,
    ) -> BoxFuture<'a, Result<ProjectRecord>> {
        Box::pin(create_project(&self.pool, name, spec))
    }
    fn get_project<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<ProjectRecord>> {
        Box::pin(get_project(&self.pool, name))
    }
    fn list_projects(&self) -> BoxFuture<'_, Result<Vec<ProjectRecord>>> {
        Box::pin(list_projects(&self.pool))
    }
    fn update_project<'a>(
        &'a self,
        name: &'a str,
        expected_version: u64,
        spec: &'a ProjectSpec,
    ) -> BoxFuture<'a, Result<ProjectRecord>> {
        Box::pin(update_project(&self.pool, name, expected_version, spec))
    }
    fn delete_project<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(delete_project(&self.pool, name))
    }
    fn create_cluster<'a>(
        &'a self,
        cluster: &'a NewCluster,
    ) -> BoxFuture<'a, Result<ClusterRecord>> {
        Box::pin(create_cluster(&self.pool, cluster))
    }
    fn get_cluster<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<ClusterRecord>> {
        Box::pin(get_cluster(&self.pool, name))
    }
    fn list_clusters<'a>(
        &'a self,
        selector: &'a LabelSelector,
    ) -> BoxFuture<'a, Result<Vec<ClusterRecord>>> {
        Box::pin(list_clusters(&self.pool, selector))
    }
    fn update_cluster_labels<'a>(
        &'a self,
        name: &'a str,
        expected_version: u64,
        labels: &'a Labels,
        annotations: &'a Labels,
    ) -> BoxFuture<'a, Result<ClusterRecord>> {
        Box::pin(update_cluster_labels(
            &self.pool,
            name,
            expected_version,
            labels,
            annotations,
        ))
    }
    fn record_cluster_hello<'a>(
        &'a self,
        name: &'a str,
        server_url: &'a str,
        versions: &'a ClusterVersions,
        certificate_not_after: Option<OffsetDateTime>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(record_cluster_hello(
            &self.pool,
            name,
            server_url,
            versions,
            certificate_not_after,
        ))
    }
    fn set_cluster_server_url<'a>(
        &'a self,
        name: &'a str,
        server_url: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(set_cluster_server_url(&self.pool, name, server_url))
    }

    fn delete_edge_apps<'a>(
        &'a self,
        cluster: &'a str,
        app: Option<(&'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(delete_edge_apps(&self.pool, cluster, app))
    }
    fn disconnect_silent_clusters(
        &self,
        silent_since: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(disconnect_silent_clusters(&self.pool, silent_since))
    }
    fn set_cluster_connection<'a>(
        &'a self,
        name: &'a str,
        connection: &'a ClusterConnection,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(set_cluster_connection(&self.pool, name, connection))
    }
    fn revoke_cluster<'a>(
        &'a self,
        name: &'a str,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(revoke_cluster(&self.pool, name, at))
    }
    fn delete_cluster<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(delete_cluster(&self.pool, name))
    }
    fn get_link_state<'a>(&'a self, cluster: &'a str) -> BoxFuture<'a, Result<LinkState>> {
        Box::pin(get_link_state(&self.pool, cluster))
    }
    fn create_app<'a>(&'a self, app: &'a NewApp) -> BoxFuture<'a, Result<AppRecord>> {
        Box::pin(create_app(&self.pool, app))
    }
    fn import_apps<'a>(&'a self, apps: &'a [ImportedApp]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(import_apps(&self.pool, apps))
    }
    fn get_app<'a>(&'a self, project: &'a str, name: &'a str) -> BoxFuture<'a, Result<AppRecord>> {
        Box::pin(get_app(&self.pool, project, name))
    }
    fn update_app<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        expected_spec_version: u64,
        spec: &'a ApplicationSpec,
        labels: &'a Labels,
    ) -> BoxFuture<'a, Result<AppRecord>> {
        Box::pin(update_app(
            &self.pool,
            project,
            name,
            expected_spec_version,
            spec,
            labels,
        ))
    }
    fn delete_app_with<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        expected_spec_version: Option<u64>,
        keep_resources: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(delete_app(
            &self.pool,
            project,
            name,
            expected_spec_version,
            keep_resources,
        ))
    }
    fn desired_changes<'a>(
        &'a self,
        cluster: &'a str,
        since: u64,
    ) -> BoxFuture<'a, Result<DesiredChanges>> {
        Box::pin(desired_changes(&self.pool, cluster, since))
    }
    fn list_apps<'a>(&'a self, query: &'a AppQuery) -> BoxFuture<'a, Result<Page<AppSummary>>> {
        Box::pin(list_apps(&self.pool, query))
    }
    fn count_apps<'a>(&'a self, filter: &'a AppFilter) -> BoxFuture<'a, Result<AppCounts>> {
        Box::pin(count_apps(&self.pool, filter))
    }
    fn get_resource_tree<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>>> {
        Box::pin(get_resource_tree(&self.pool, project, name))
    }
    fn ingest_status_batch<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        batch: &'a StatusBatch,
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(ingest_status_batch(&self.link, cluster, at, batch))
    }
    fn ingest_resource_tree<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        project: &'a str,
        name: &'a str,
        tree: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(ingest_resource_tree(
            &self.link, cluster, at, project, name, tree,
        ))
    }
    fn ingest_events<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        events: &'a [EventRecord],
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(ingest_events(&self.link, cluster, at, events))
    }
    fn ingest_command_statuses<'a>(
        &'a self,
        cluster: &'a str,
        at: &'a SpokeSeq,
        updates: &'a [CommandUpdate],
    ) -> BoxFuture<'a, Result<IngestOutcome>> {
        Box::pin(ingest_command_statuses(&self.link, cluster, at, updates))
    }
    fn enqueue_command<'a>(
        &'a self,
        command: &'a NewCommand,
    ) -> BoxFuture<'a, Result<CommandRecord>> {
        Box::pin(enqueue_command(&self.pool, command))
    }
    fn enqueue_commands<'a>(
        &'a self,
        commands: &'a [NewCommand],
    ) -> BoxFuture<'a, Result<Vec<CommandRecord>>> {
        Box::pin(enqueue_commands(&self.pool, commands))
    }
    fn count_apps_by_cluster<'a>(
        &'a self,
        filter: &'a AppFilter,
    ) -> BoxFuture<'a, Result<BTreeMap<String, AppCounts>>> {
        Box::pin(count_apps_by_cluster(&self.pool, filter))
    }
    fn get_command<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<CommandRecord>> {
        Box::pin(get_command(&self.pool, id))
    }
    fn get_commands<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<CommandRecord>>> {
        Box::pin(get_commands(&self.pool, ids))
    }
    fn pending_commands_of_app<'a>(
        &'a self,
        project: &'a str,
        app: &'a str,
        kind: &'a str,
    ) -> BoxFuture<'a, Result<Vec<CommandRecord>>> {
        Box::pin(pending_commands_of_app(&self.pool, project, app, kind))
    }
    fn list_deliverable_commands<'a>(
        &'a self,
        cluster: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Vec<CommandRecord>>> {
        Box::pin(list_deliverable_commands(&self.link, cluster, now))
    }
    fn mark_commands_delivered<'a>(
        &'a self,
        ids: &'a [String],
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(mark_commands_delivered(&self.link, ids, at))
    }
    fn record_command_status<'a>(
        &'a self,
        update: &'a CommandUpdate,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(record_command_status(&self.pool, update))
    }
    fn expire_commands(&self, now: OffsetDateTime) -> BoxFuture<'_, Result<u64>> {
        Box::pin(expire_commands(&self.link, now))
    }
    fn list_commands<'a>(
        &'a self,
        scope: &'a CommandScope,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<CommandRecord>>> {
        Box::pin(list_commands(&self.pool, scope, page_size, cursor))
    }
    fn list_events<'a>(
        &'a self,
        filter: &'a EventFilter,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<EventRecord>>> {
        Box::pin(list_events(&self.pool, filter, page_size, cursor))
    }
    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> BoxFuture<'a, Result<()>> {
        Box::pin(append_audit(&self.pool, entry))
    }
    fn list_audit<'a>(
        &'a self,
        page_size: u32,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Page<AuditEntry>>> {
        Box::pin(list_audit(&self.pool, page_size, cursor))
    }
    fn create_user<'a>(&'a self, user: &'a UserRecord) -> BoxFuture<'a, Result<UserRecord>> {
        Box::pin(create_user(&self.pool, user))
    }
    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<UserRecord>> {
        Box::pin(get_user(&self.pool, name))
    }
    fn list_users(&self) -> BoxFuture<'_, Result<Vec<UserRecord>>> {
        Box::pin(list_users(&self.pool))
    }
    fn delete_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(delete_user(&self.pool, name))
    }
    fn create_token<'a>(&'a self, token: &'a TokenRecord) -> BoxFuture<'a, Result<TokenRecord>> {
        Box::pin(create_token(&self.pool, token))
    }
    fn find_token_by_hash<'a>(&'a self, token_hash: &'a str) -> BoxFuture<'a, Result<TokenRecord>> {
        Box::pin(find_token_by_hash(&self.pool, token_hash))
    }
    fn list_tokens<'a>(&'a self, owner: &'a str) -> BoxFuture<'a, Result<Vec<TokenRecord>>> {
        Box::pin(list_tokens(&self.pool, owner))
    }
    fn revoke_token<'a>(&'a self, id: &'a str, at: OffsetDateTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(revoke_token(&self.pool, id, at))
    }
    fn appsets(&self) -> &dyn super::AppSetStore {
        self
    }

    fn analyze(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(analyze(&self.pool))
    }
    fn notify<'a>(&'a self, channel: &'a str, payload: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(notify(&self.pool, channel, payload))
    }
    fn listen<'a>(
        &'a self,
        channels: &'a [&'a str],
    ) -> BoxFuture<'a, Result<BoxStream<'static, ListenEvent>>> {
        Box::pin(listen(&self.pool, channels))
    }
    fn try_lead<'a>(&'a self, role: &'a str) -> BoxFuture<'a, Result<Option<super::Leadership>>> {
        Box::pin(try_lead(&self.pool, role))
    }
}
