//! `AppSetStore` for both backends: one macro expanded over each pool type, since the SQL is identical on SQLite and PostgreSQL.

use futures::FutureExt as _;
use sqlx::Row as _;
use time::OffsetDateTime;

use super::appsets::{AppSetRecord, AppSetStatus, AppSetStore, NewAppSet};
use super::{PgStore, Result, SqliteStore, StoreError};

fn now_ms() -> i64 {
    ms(OffsetDateTime::now_utc())
}

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|error| {
        StoreError::Corrupt {
            reason: format!("timestamp {ms}: {error}"),
        }
    })
}

fn version(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        reason: format!("negative version {v}"),
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn what(project: &str, name: &str) -> String {
    format!("application set {project}/{name}")
}

fn check_names(set: &NewAppSet) -> Result<()> {
    let invalid = |e: edgecd_core::NameError| StoreError::Invalid {
        reason: e.to_string(),
    };
    edgecd_core::ProjectName::parse(&set.project).map_err(invalid)?;
    edgecd_core::names::AppName::parse(&set.name).map_err(invalid)?;
    edgecd_core::appset::AppSetScope::parse(&set.scope).map_err(|e| StoreError::Invalid {
        reason: e.to_string(),
    })?;
    Ok(())
}

const COLUMNS: &str = "project, name, scope, spec, status, version, created_at, updated_at, \
                       owner_kind, owner_project, owner_name, owner_scope";

/// Number of conditions of an error type (Argo CD's `*Error` condition types).
fn error_conditions(status: &edgecd_core::app::ApplicationStatus) -> i32 {
    let n = status
        .conditions
        .iter()
        .filter(|c| c.kind.ends_with("Error"))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

macro_rules! impl_appset_store {
    ($store:ty, $module:ident, $row:ty) => {
        mod $module {
            use super::*;

            fn from_row(row: &$row) -> Result<AppSetRecord> {
                let spec: String = row.try_get("spec")?;
                let status: String = row.try_get("status")?;
                let owner_kind: Option<String> = row.try_get("owner_kind")?;
                let owner = match owner_kind {
                    Some(kind) => Some(edgecd_core::app::OwnerRef {
                        kind,
                        project: row.try_get::<Option<String>, _>("owner_project")?.unwrap_or_default(),
                        name: row.try_get::<Option<String>, _>("owner_name")?.unwrap_or_default(),
                        scope: row.try_get::<Option<String>, _>("owner_scope")?.unwrap_or_default(),
                    }),
                    None => None,
                };
                Ok(AppSetRecord {
                    owner,
                    project: row.try_get("project")?,
                    name: row.try_get("name")?,
                    scope: row.try_get("scope")?,
                    spec: serde_json::from_str(&spec)?,
                    status: serde_json::from_str::<AppSetStatus>(&status)?,
                    version: version(row.try_get("version")?)?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    updated_at: from_ms(row.try_get("updated_at")?)?,
                })
            }

            impl AppSetStore for $store {
                #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name))]
                fn create_appset<'a>(
                    &'a self,
                    set: &'a NewAppSet,
                ) -> futures::future::BoxFuture<'a, Result<AppSetRecord>> {
                    async move {
                        check_names(set)?;
                        let exists: Option<i32> =
                            sqlx::query_scalar("SELECT 1 FROM projects WHERE name = $1")
                                .bind(&set.project)
                                .fetch_optional(self.pool())
                                .await?;
                        if exists.is_none() {
                            return Err(StoreError::NotFound {
                                what: format!("project {}", set.project),
                            });
                        }
                        let now = now_ms();
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO application_sets \
                             (project, name, scope, spec, status, version, created_at, updated_at, \
                              owner_kind, owner_project, owner_name, owner_scope) \
                             VALUES ($1, $2, $3, $4, '{{}}', 1, $5, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
                        )))
                        .bind(&set.project)
                        .bind(&set.name)
                        .bind(&set.scope)
                        .bind(serde_json::to_string(&set.spec)?)
                        .bind(now)
                        .bind(set.owner.as_ref().map(|o| o.kind.clone()))
                        .bind(set.owner.as_ref().map(|o| o.project.clone()))
                        .bind(set.owner.as_ref().map(|o| o.name.clone()))
                        .bind(set.owner.as_ref().map(|o| o.scope.clone()))
                        .fetch_one(self.pool())
                        .await
                        .map_err(StoreError::classify(|| what(&set.project, &set.name)))?;
                        from_row(&row)
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(project, appset = name))]
                fn get_appset<'a>(
                    &'a self,
                    project: &'a str,
                    name: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<AppSetRecord>> {
                    async move {
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM application_sets WHERE project = $1 AND name = $2"
                        )))
                        .bind(project)
                        .bind(name)
                        .fetch_optional(self.pool())
                        .await?
                        .ok_or_else(|| StoreError::NotFound {
                            what: what(project, name),
                        })?;
                        from_row(&row)
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(projects = projects.len(), scope))]
                fn list_appsets<'a>(
                    &'a self,
                    projects: &'a [String],
                    scope: Option<&'a str>,
                ) -> futures::future::BoxFuture<'a, Result<Vec<AppSetRecord>>> {
                    async move {
                        // The number of sets is small (one per fan-out, not per app):
                        // filter projects here rather than build an IN list.
                        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM application_sets \
                             WHERE (CAST($1 AS TEXT) IS NULL OR scope = CAST($1 AS TEXT)) \
                             ORDER BY project, name"
                        )))
                        .bind(scope)
                        .fetch_all(self.pool())
                        .await?;
                        let mut sets = Vec::with_capacity(rows.len());
                        for row in &rows {
                            let set = from_row(row)?;
                            if projects.is_empty() || projects.contains(&set.project) {
                                sets.push(set);
                            }
                        }
                        Ok(sets)
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name, expected_version))]
                fn update_appset<'a>(
                    &'a self,
                    set: &'a NewAppSet,
                    expected_version: u64,
                ) -> futures::future::BoxFuture<'a, Result<AppSetRecord>> {
                    async move {
                        check_names(set)?;
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE application_sets SET spec = $3, scope = $4, \
                             version = version + 1, updated_at = $5 \
                             WHERE project = $1 AND name = $2 AND version = $6 RETURNING {COLUMNS}"
                        )))
                        .bind(&set.project)
                        .bind(&set.name)
                        .bind(serde_json::to_string(&set.spec)?)
                        .bind(&set.scope)
                        .bind(now_ms())
                        .bind(to_i64(expected_version))
                        .fetch_optional(self.pool())
                        .await?;
                        match row {
                            Some(row) => from_row(&row),
                            None => {
                                let current = self.get_appset(&set.project, &set.name).await?;
                                Err(StoreError::Conflict {
                                    what: what(&set.project, &set.name),
                                    expected: expected_version,
                                    actual: current.version,
                                })
                            }
                        }
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(project, appset = name))]
                fn set_appset_status<'a>(
                    &'a self,
                    project: &'a str,
                    name: &'a str,
                    status: &'a AppSetStatus,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        let result = sqlx::query(
                            "UPDATE application_sets SET status = $3 WHERE project = $1 AND name = $2",
                        )
                        .bind(project)
                        .bind(name)
                        .bind(serde_json::to_string(status)?)
                        .execute(self.pool())
                        .await?;
                        if result.rows_affected() == 0 {
                            return Err(StoreError::NotFound {
                                what: what(project, name),
                            });
                        }
                        Ok(())
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(project, appset = name))]
                fn delete_appset<'a>(
                    &'a self,
                    project: &'a str,
                    name: &'a str,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        let result = sqlx::query(
                            "DELETE FROM application_sets WHERE project = $1 AND name = $2",
                        )
                        .bind(project)
                        .bind(name)
                        .execute(self.pool())
                        .await?;
                        if result.rows_affected() == 0 {
                            return Err(StoreError::NotFound {
                                what: what(project, name),
                            });
                        }
                        Ok(())
                    }
                    .boxed()
                }

                #[tracing::instrument(skip_all, fields(project, app = name))]
                fn set_hub_app_status<'a>(
                    &'a self,
                    project: &'a str,
                    name: &'a str,
                    status: &'a edgecd_core::app::ApplicationStatus,
                ) -> futures::future::BoxFuture<'a, Result<()>> {
                    async move {
                        let id: Option<i64> = sqlx::query_scalar(
                            "UPDATE app_status SET sync = $3, health = $4, revision = $5, \
                             operation_phase = $6, error_conditions = $7, \
                             status_version = status_version + 1, updated_at = $8, status = $9 \
                             WHERE app_id = (SELECT id FROM applications WHERE project = $1 AND name = $2) \
                             RETURNING app_id",
                        )
                        .bind(project)
                        .bind(name)
                        .bind(status.sync.status.as_str())
                        .bind(status.health.status.as_str())
                        .bind(&status.sync.revision)
                        .bind(
                            status
                                .operation_state
                                .as_ref()
                                .map_or("", |o| super::super::codec::phase_str(o.phase)),
                        )
                        .bind(error_conditions(status))
                        .bind(now_ms())
                        .bind(sqlx::types::Json(status))
                        .fetch_optional(self.pool())
                        .await?;
                        id.ok_or_else(|| StoreError::NotFound {
                            what: format!("application {project}/{name}"),
                        })?;
                        Ok(())
                    }
                    .boxed()
                }
            }
        }
    };
}

impl_appset_store!(SqliteStore, sqlite_impl, sqlx::sqlite::SqliteRow);
impl_appset_store!(PgStore, postgres_impl, sqlx::postgres::PgRow);
