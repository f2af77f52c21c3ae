//! Application-set records of the fleet store: the Argo CD-shaped spec, where it is evaluated, and the last evaluation's outcome.
//!
//! A trait of its own beside `Store` (like `SecurityStore`), implemented for
//! both backends by `appsets_sql.rs`, part of the queries written once.

use std::collections::BTreeMap;

use edgecd_core::app::{ApplicationStatus, Condition, OwnerRef};
use edgecd_core::appset::AppSetScope;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Result, StoreFuture};

/// Where a set is evaluated when it names no cluster.
pub const HUB_SCOPE: &str = "hub";

/// Where a stored set is evaluated. Stored scopes were parsed on the way in; one that no longer parses is
/// taken as a single cluster's name, as scopes were before fleet scopes existed.
pub fn scope_of(set: &AppSetRecord) -> AppSetScope {
    scope_from(&set.scope)
}

/// [`scope_of`] for a stored scope's text.
pub fn scope_from(text: &str) -> AppSetScope {
    AppSetScope::parse(text).unwrap_or_else(|_| AppSetScope::cluster(text))
}

/// The sets evaluated at `cluster`'s spoke: scoped to it by name, by a list that names it, or by a selector
/// its labels match (a fleet-scoped set).
pub async fn evaluated_at(
    store: &dyn super::Store,
    cluster: &super::ClusterRecord,
) -> Result<Vec<AppSetRecord>> {
    Ok(evaluated_among(
        &store.appsets().list_appsets(&[], None).await?,
        cluster,
    ))
}

/// Which of `sets` are evaluated at `cluster`'s spoke (see [`evaluated_at`]).
pub fn evaluated_among(sets: &[AppSetRecord], cluster: &super::ClusterRecord) -> Vec<AppSetRecord> {
    sets.iter()
        .filter(|set| scope_of(set).includes(&cluster.name, &cluster.labels))
        .cloned()
        .collect()
}

/// A stored application set.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSetRecord {
    pub project: String,
    pub name: String,
    /// `hub`, or the cluster whose spoke evaluates the set.
    pub scope: String,
    /// The Argo CD `spec` as JSON, validated by `ApplicationSetSpec::from_json` before it is stored.
    pub spec: serde_json::Value,
    pub status: AppSetStatus,
    /// The app-of-apps parent that created the set, if any.
    pub owner: Option<OwnerRef>,
    /// Bumped on every spec change; the optimistic-concurrency token.
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Outcome of the last evaluation of a set (at the hub), or what its spoke reported.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSetStatus {
    /// The apps the set generated (`project/name`), sorted.
    #[serde(default)]
    pub generated: Vec<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `repoURL@revision` → the commit the evaluation used.
    #[serde(default)]
    pub revisions: BTreeMap<String, String>,
    /// Spec version the evaluation used.
    #[serde(default)]
    pub observed_version: u64,
    /// A progressive sync's place of every app (`strategy: RollingSync`), kept between passes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout: Vec<edgecd_core::appset::rollout::RolloutAppStatus>,
    /// Generated apps (`project/name`) whose template asked automated sync with prune: a progressive sync
    /// turns automation off and asks their syncs with prune.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout_prune: Vec<String>,
}

/// A set to create or replace.
#[derive(Debug, Clone)]
pub struct NewAppSet {
    pub project: String,
    pub name: String,
    pub scope: String,
    pub spec: serde_json::Value,
    pub owner: Option<OwnerRef>,
}

/// A resource `clusterDecisionResource` generators read, applied to the hub: a ConfigMap naming a duck type
/// (`v1`, `ConfigMap`, `body` its `data`) or a decision resource (`body` its `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub body: serde_json::Value,
    pub updated_at: OffsetDateTime,
}

/// Application sets in the store, and the status of apps the hub evaluates itself.
pub trait AppSetStore: Send + Sync {
    /// Creates or replaces a decision resource (by apiVersion, kind and name); whether anything changed.
    fn put_decision_resource<'a>(
        &'a self,
        api_version: &'a str,
        kind: &'a str,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
        body: &'a serde_json::Value,
    ) -> StoreFuture<'a, bool>;
    /// Every decision resource, by apiVersion, kind and name.
    fn list_decision_resources(&self) -> StoreFuture<'_, Vec<DecisionRecord>>;
    /// Fails with `NotFound` if there is none.
    fn delete_decision_resource<'a>(
        &'a self,
        api_version: &'a str,
        kind: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// Fails with `AlreadyExists` if the set exists, `NotFound` if its project does not.
    fn create_appset<'a>(&'a self, set: &'a NewAppSet) -> StoreFuture<'a, AppSetRecord>;
    fn get_appset<'a>(&'a self, project: &'a str, name: &'a str) -> StoreFuture<'a, AppSetRecord>;
    /// Sets of `projects` (all when empty) and, if given, of one scope, by project and name.
    fn list_appsets<'a>(
        &'a self,
        projects: &'a [String],
        scope: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<AppSetRecord>>;
    /// Replaces spec and scope if the stored version is `expected_version`.
    fn update_appset<'a>(
        &'a self,
        set: &'a NewAppSet,
        expected_version: u64,
    ) -> StoreFuture<'a, AppSetRecord>;
    /// Records an evaluation; does not bump the version.
    fn set_appset_status<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        status: &'a AppSetStatus,
    ) -> StoreFuture<'a, ()>;
    fn delete_appset<'a>(&'a self, project: &'a str, name: &'a str) -> StoreFuture<'a, ()>;
    /// Records the status of an app evaluated by the hub itself (an app-of-apps parent),
    /// as a spoke's report would: the indexed columns and the full status.
    fn set_hub_app_status<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        status: &'a ApplicationStatus,
    ) -> StoreFuture<'a, ()>;
}
