//! `AppSetStore` for both backends: part of the queries written once (`sql.rs`), so compiled inside each backend module.

use sqlx::{AssertSqlSafe, Row as _};

use super::{
    Backend, Row, conflict, expect_one, invalid, keyed, owner_from_row, require_project, row_by,
};
use crate::store::appsets::{AppSetRecord, AppSetStatus, AppSetStore, DecisionRecord, NewAppSet};
use crate::store::codec::{
    checked_from_ms, checked_version, error_conditions, now_ms, phase_of, to_i64,
};
use crate::store::{Result, StoreError};

fn what(project: &str, name: &str) -> String {
    format!("application set {project}/{name}")
}

fn check_names(set: &NewAppSet) -> Result<()> {
    edgecd_core::ProjectName::parse(&set.project).map_err(invalid)?;
    edgecd_core::names::AppName::parse(&set.name).map_err(invalid)?;
    edgecd_core::appset::AppSetScope::parse(&set.scope).map_err(|e| StoreError::Invalid {
        reason: e.to_string(),
    })?;
    Ok(())
}

const COLUMNS: &str = "project, name, scope, spec, status, version, created_at, updated_at, \
                       owner_kind, owner_project, owner_name, owner_scope";

fn from_row(row: &Row) -> Result<AppSetRecord> {
    let spec: String = row.try_get("spec")?;
    let status: String = row.try_get("status")?;
    Ok(AppSetRecord {
        owner: owner_from_row(row)?,
        project: row.try_get("project")?,
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        spec: serde_json::from_str(&spec)?,
        status: serde_json::from_str::<AppSetStatus>(&status)?,
        version: checked_version(row.try_get("version")?)?,
        created_at: checked_from_ms(row.try_get("created_at")?)?,
        updated_at: checked_from_ms(row.try_get("updated_at")?)?,
    })
}

impl Backend {
    #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name))]
    async fn create_appset(&self, set: &NewAppSet) -> Result<AppSetRecord> {
        check_names(set)?;
        require_project(&mut *self.pool().acquire().await?, &set.project).await?;
        let now = now_ms();
        let row = sqlx::query(AssertSqlSafe(format!(
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

    #[tracing::instrument(skip_all, fields(project, appset = name))]
    async fn get_appset(&self, project: &str, name: &str) -> Result<AppSetRecord> {
        let select =
            format!("SELECT {COLUMNS} FROM application_sets WHERE project = $1 AND name = $2");
        let row = row_by(self.pool(), &select, &[project, name], || {
            what(project, name)
        })
        .await?;
        from_row(&row)
    }

    #[tracing::instrument(skip_all, fields(projects = projects.len(), scope))]
    async fn list_appsets(
        &self,
        projects: &[String],
        scope: Option<&str>,
    ) -> Result<Vec<AppSetRecord>> {
        // The number of sets is small (one per fan-out, not per app):
        // filter projects here rather than build an IN list.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM application_sets \
             WHERE (CAST($1 AS TEXT) IS NULL OR scope = CAST($1 AS TEXT)) \
             ORDER BY project, name"
        )))
        .bind(scope)
        .fetch_all(self.pool())
        .await?;
        let sets = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        let readable = |set: &AppSetRecord| projects.is_empty() || projects.contains(&set.project);
        Ok(sets.into_iter().filter(readable).collect())
    }

    #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name, expected_version))]
    async fn update_appset(&self, set: &NewAppSet, expected_version: u64) -> Result<AppSetRecord> {
        check_names(set)?;
        let row = sqlx::query(AssertSqlSafe(format!(
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
                let what = what(&set.project, &set.name);
                Err(conflict(what, expected_version, current.version))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(project, appset = name))]
    async fn set_appset_status(
        &self,
        project: &str,
        name: &str,
        status: &AppSetStatus,
    ) -> Result<()> {
        let result =
            sqlx::query("UPDATE application_sets SET status = $3 WHERE project = $1 AND name = $2")
                .bind(project)
                .bind(name)
                .bind(serde_json::to_string(status)?)
                .execute(self.pool())
                .await?;
        expect_one(result.rows_affected(), || what(project, name))
    }

    #[tracing::instrument(skip_all, fields(project, appset = name))]
    async fn delete_appset(&self, project: &str, name: &str) -> Result<()> {
        let delete = "DELETE FROM application_sets WHERE project = $1 AND name = $2";
        let result = keyed(delete, &[project, name]).execute(self.pool()).await?;
        expect_one(result.rows_affected(), || what(project, name))
    }

    #[tracing::instrument(skip_all, fields(project, app = name))]
    async fn set_hub_app_status(
        &self,
        project: &str,
        name: &str,
        status: &edgecd_core::app::ApplicationStatus,
    ) -> Result<()> {
        let result = sqlx::query(
            "UPDATE app_status SET sync = $3, health = $4, revision = $5, \
             operation_phase = $6, error_conditions = $7, \
             status_version = status_version + 1, updated_at = $8, status = $9 \
             WHERE app_id = (SELECT id FROM applications WHERE project = $1 AND name = $2)",
        )
        .bind(project)
        .bind(name)
        .bind(status.sync.status.as_str())
        .bind(status.health.status.as_str())
        .bind(&status.sync.revision)
        .bind(phase_of(status))
        .bind(error_conditions(status))
        .bind(now_ms())
        .bind(sqlx::types::Json(status))
        .execute(self.pool())
        .await?;
        expect_one(result.rows_affected(), || {
            format!("application {project}/{name}")
        })
    }
}

impl Backend {
    #[tracing::instrument(skip_all, fields(api_version, kind, name))]
    async fn put_decision_resource(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        body: &serde_json::Value,
    ) -> Result<bool> {
        let labels = serde_json::to_string(labels)?;
        let body = serde_json::to_string(body)?;
        // Written only when something differs, so an unchanged apply re-evaluates nothing.
        let result = sqlx::query(
            "INSERT INTO decision_resources (api_version, kind, name, labels, body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (api_version, kind, name) DO UPDATE \
             SET labels = excluded.labels, body = excluded.body, updated_at = excluded.updated_at \
             WHERE decision_resources.labels <> excluded.labels \
                OR decision_resources.body <> excluded.body",
        )
        .bind(api_version)
        .bind(kind)
        .bind(name)
        .bind(labels)
        .bind(body)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all)]
    async fn list_decision_resources(&self) -> Result<Vec<DecisionRecord>> {
        let rows = sqlx::query(
            "SELECT api_version, kind, name, labels, body, updated_at FROM decision_resources \
             ORDER BY api_version, kind, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let labels: String = row.try_get("labels")?;
                let body: String = row.try_get("body")?;
                Ok(DecisionRecord {
                    api_version: row.try_get("api_version")?,
                    kind: row.try_get("kind")?,
                    name: row.try_get("name")?,
                    labels: serde_json::from_str(&labels)?,
                    body: serde_json::from_str(&body)?,
                    updated_at: checked_from_ms(row.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(skip_all, fields(api_version, kind, name))]
    async fn delete_decision_resource(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<()> {
        let delete =
            "DELETE FROM decision_resources WHERE api_version = $1 AND kind = $2 AND name = $3";
        let result = keyed(delete, &[api_version, kind, name])
            .execute(self.pool())
            .await?;
        expect_one(result.rows_affected(), || {
            format!("{kind} {name} ({api_version})")
        })
    }
}

boxed_impl! {
    impl AppSetStore {}
    fn put_decision_resource(&self, api_version: &'a str, kind: &'a str, name: &'a str, labels: &'a std::collections::BTreeMap<String, String>, body: &'a serde_json::Value) -> bool;
    fn list_decision_resources(&self) -> Vec<DecisionRecord>;
    fn delete_decision_resource(&self, api_version: &'a str, kind: &'a str, name: &'a str) -> ();
    fn create_appset(&self, set: &'a NewAppSet) -> AppSetRecord;
    fn get_appset(&self, project: &'a str, name: &'a str) -> AppSetRecord;
    fn list_appsets(&self, projects: &'a [String], scope: Option<&'a str>) -> Vec<AppSetRecord>;
    fn update_appset(&self, set: &'a NewAppSet, expected_version: u64) -> AppSetRecord;
    fn set_appset_status(&self, project: &'a str, name: &'a str, status: &'a AppSetStatus) -> ();
    fn delete_appset(&self, project: &'a str, name: &'a str) -> ();
    fn set_hub_app_status(&self, project: &'a str, name: &'a str, status: &'a edgecd_core::app::ApplicationStatus) -> ();
}
