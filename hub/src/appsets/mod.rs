//! Application sets evaluated at the hub: generators over enrolled clusters and git, then the policy's create/update/delete of the apps they own.
//!
//! ```text
//!  triggers: set created/changed (APPSETS_CHANNEL) · cluster joined/relabelled/removed
//!            (CLUSTERS_CHANNEL, looked at once a second at most, re-evaluated only if cluster facts changed) · git poll tick
//!      │
//!      ▼
//!  evaluate(set) ─ spec ─ clusters (store) ─ RepoSnapshots (edgecd-git) ─► generate (core)
//!      ─► resolve destination (name | server URL → cluster) ─► project policy
//!      ─► plan(policy, owned apps, generated) ─► create / update / delete (store)
//!      ─► announce DESIRED_CHANNEL per touched cluster ─► status (conditions, generated, commits)
//! ```
//!
//! Sets whose scope is a cluster are not evaluated here: the hub hands them
//! to that cluster's spoke (`SpokeApplicationSets`), which evaluates them for
//! its own cluster. One replica evaluates: the one holding the store's
//! `appsets` role (`Store::try_lead`); the others try to take it over every
//! `LEAD_RETRY`. Writes are version-checked and idempotent, so two replicas
//! evaluating at once (a lost role noticed late) still converge.

mod app_of_apps;
pub mod decisions;
mod rollout;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{Condition, OwnerRef};
use edgecd_core::appset::{
    AppSetScope, ApplicationSetSpec, ClusterFacts, EvalContext, ExistingApp, GeneratedApp,
    generate_each, plan,
};
use edgecd_core::selector::LabelSelector;
use edgecd_git::GitCache;
use edgecd_git::tree::RepoSnapshots;
use futures::StreamExt as _;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

pub use app_of_apps::{HUB_CLUSTER, PARENT_KIND};

use crate::link::{CLUSTERS_CHANNEL, DESIRED_CHANNEL};
use crate::store::appsets::HUB_SCOPE;
use crate::store::{
    AppFilter, AppQuery, AppSetRecord, AppSetStatus, ClusterRecord, ListenEvent, NewApp, Store,
    StoreError,
};

pub use crate::store::APPSETS_CHANNEL;
/// Notification channel: the hub's evaluation gave a set a new status (payload `project/name`); the console listens, the controller does not.
pub const APPSET_STATUS_CHANNEL: &str = "edgecd_appset_status";
/// The store role whose holder evaluates the hub's sets and parents.
pub const LEADER_ROLE: &str = "appsets";
/// How often a replica that does not evaluate tries to take the role over.
const LEAD_RETRY: Duration = Duration::from_secs(10);
/// Owner kind recorded on generated apps.
pub const OWNER_KIND: &str = "ApplicationSet";
/// The API server URL that means "the cluster evaluating the set" in Argo CD.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The `APPSETS_CHANNEL` payload announcing that decision resources changed: the controller evaluates the
/// sets that read them; watchers ignore it.
pub const DECISIONS_CHANGED: &str = "decisions";

pub use crate::store::appsets::{evaluated_at, scope_from, scope_of};

/// The registered clusters a set's scope reaches (none for a hub-scoped set).
pub async fn clusters_reached(
    store: &dyn Store,
    scope: &AppSetScope,
) -> Result<Vec<String>, StoreError> {
    if scope.is_hub() {
        return Ok(Vec::new());
    }
    Ok(store
        .list_clusters(&LabelSelector::default())
        .await?
        .into_iter()
        .filter(|c| scope.includes(&c.name, &c.labels))
        .map(|c| c.name)
        .collect())
}

/// Settings of the hub's application-set controller.
#[derive(Debug, Clone)]
pub struct AppSetConfig {
    /// How often every hub-scoped set is re-evaluated (git revisions polled).
    pub interval: Duration,
}

impl Default for AppSetConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(180),
        }
    }
}

/// A repository credential's URL prefix and the projects it is given to (empty: all).
type CredentialScope = (String, Vec<String>);

/// Evaluates hub-scoped application sets and applies their plans.
#[derive(Debug, Clone)]
pub struct AppSetController {
    store: Arc<dyn Store>,
    git: GitCache,
    config: AppSetConfig,
    /// Clusters where children of app-of-apps parents run: their status
    /// changes make the parents' health worth recomputing.
    child_clusters: Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// Opens the hub's sealed repository credentials for its own git reads; `None` without a PKI.
    pki: Option<Arc<crate::pki::Pki>>,
    /// URL prefix → projects allowed to use its credential (empty: all), as last loaded.
    credential_projects: Arc<std::sync::Mutex<Vec<CredentialScope>>>,
    /// Set to 1 while this replica holds `LEADER_ROLE`.
    leader_gauge: prometheus_client::metrics::gauge::Gauge,
    /// Renders app-of-apps parents that are Helm charts; `None`: such parents are refused.
    helm: Option<Arc<edgecd_helm::HelmRenderer>>,
}

/// What one evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
}

impl AppSetController {
    pub fn new(store: Arc<dyn Store>, git: GitCache, config: AppSetConfig) -> Self {
        Self {
            store,
            git,
            config,
            child_clusters: Arc::default(),
            pki: None,
            credential_projects: Arc::default(),
            leader_gauge: prometheus_client::metrics::gauge::Gauge::default(),
            helm: None,
        }
    }

    /// Renders Helm app-of-apps parents with `helm`.
    pub fn with_helm(mut self, helm: Arc<edgecd_helm::HelmRenderer>) -> Self {
        self.helm = Some(helm);
        self
    }

    /// The hub's repository credentials that `project` may use (a credential scoped to other projects is left
    /// out), for a Helm parent's chart repository and dependencies.
    pub(crate) fn credentials_for(&self, project: &str) -> edgecd_git::Credentials {
        let scopes = self
            .credential_projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let all = self.git.credentials().snapshot();
        credentials_for_project(&all, &scopes, project)
    }

    /// Reports whether this replica evaluates the sets on `gauge`.
    pub fn with_leader_gauge(mut self, gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        self.leader_gauge = gauge;
        self
    }

    /// Whether this replica still holds the role; forgets a lost one.
    fn holds(&self, leadership: &mut Option<crate::store::Leadership>) -> bool {
        if leadership
            .as_ref()
            .is_some_and(crate::store::Leadership::is_lost)
        {
            *leadership = None;
            self.leader_gauge.set(0);
            tracing::warn!(
                "Application sets: this replica lost the role; another one evaluates now."
            );
        }
        leadership.is_some()
    }

    /// Tries to take the role; true if this replica holds it now.
    async fn take_lead(&self, leadership: &mut Option<crate::store::Leadership>) -> bool {
        if self.holds(leadership) {
            return true;
        }
        match self.store.try_lead(LEADER_ROLE).await {
            Ok(Some(held)) => {
                *leadership = Some(held);
                self.leader_gauge.set(1);
                tracing::info!("Application sets: this replica evaluates them now.");
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(%error, "Application sets: cannot try to take the evaluation role.");
                false
            }
        }
    }

    /// Uses the hub's repository credentials (sealed with its master key) for its own git reads.
    pub fn with_pki(mut self, pki: Arc<crate::pki::Pki>) -> Self {
        self.pki = Some(pki);
        self
    }

    /// Reloads the repository credentials into the git cache. Never logs a secret.
    pub async fn load_credentials(&self) {
        let Some(pki) = &self.pki else { return };
        let Some(sealer) = pki.sealer() else { return };
        let records = match pki.security().list_repo_credentials().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "Cannot read the repository credentials.");
                return;
            }
        };
        let mut entries = Vec::with_capacity(records.len());
        let mut scopes = Vec::with_capacity(records.len());
        for record in &records {
            match crate::pki::repos::open(sealer, record) {
                Ok(secret) => {
                    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                    entries.push(edgecd_git::RepoCredential {
                        url_prefix: record.url_prefix.clone(),
                        username: text(&secret.username),
                        password: text(&secret.password).map(Into::into),
                        ssh_private_key: text(&secret.ssh_private_key).map(Into::into),
                        ssh_passphrase: None,
                        ssh_known_hosts: text(&secret.ssh_known_hosts),
                        ca_cert_pem: None,
                    });
                    scopes.push((record.url_prefix.clone(), record.projects.clone()));
                }
                Err(error) => {
                    tracing::warn!(url_prefix = %record.url_prefix, %error, "Cannot open a repository credential.");
                }
            }
        }
        // The scopes first, under the same lock as the swap: a reader never sees a credential whose scope is
        // not known yet (and `credentials_for` denies a prefix with no known scope anyway).
        let mut known = self
            .credential_projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *known = scopes;
        self.git
            .credentials()
            .replace(edgecd_git::Credentials::new(entries));
        drop(known);
    }

    /// Refuses a repository the project may not read from: not in its source repositories, or
    /// whose credential is reserved to other projects.
    pub(crate) async fn check_repo(&self, project: &str, repo_url: &str) -> Result<(), String> {
        let record = self
            .store
            .get_project(project)
            .await
            .map_err(|e| e.to_string())?;
        record
            .spec
            .check_source(project, repo_url)
            .map_err(|v| v.to_string())?;
        let scopes = self
            .credential_projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let best = scopes
            .iter()
            .filter(|(prefix, _)| credential_covers(prefix, repo_url))
            .max_by_key(|(prefix, _)| prefix.len());
        if let Some((prefix, projects)) = best
            && !projects.is_empty()
            && !projects.iter().any(|p| p == project)
        {
            return Err(format!(
                "the repository credential for {prefix} is not available to project {project}"
            ));
        }
        Ok(())
    }

    /// Runs until aborted: evaluates everything at start, then on notifications and every interval.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let channels = [
            APPSETS_CHANNEL,
            CLUSTERS_CHANNEL,
            DESIRED_CHANNEL,
            crate::store::COMMANDS_CHANNEL,
            crate::link::APPS_CHANNEL,
            crate::pki::repos::REPO_CREDENTIALS_CHANNEL,
        ];
        let mut notifications = loop {
            match self.store.listen(&channels).await {
                Ok(stream) => break stream,
                Err(error) => {
                    tracing::warn!(%error, "Application sets: cannot listen for changes; retrying.");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        };
        self.load_credentials().await;
        let mut tick = tokio::time::interval(self.config.interval);
        // Children's status changes come in bursts: parents' health is recomputed at most this often.
        let mut health_tick = tokio::time::interval(Duration::from_secs(2));
        let mut parents_dirty = false;
        let mut facts_seen: Option<Vec<ClusterFacts>> = None;
        // Cluster changes are looked at at most this often.
        let mut facts_tick = tokio::time::interval(Duration::from_secs(1));
        let mut clusters_dirty = false;
        // Only the replica holding the role evaluates; the first try is at once.
        let mut leadership: Option<crate::store::Leadership> = None;
        let mut lead_tick = tokio::time::interval(LEAD_RETRY);
        // Progressive syncs: looked at when an app's status changed (at most every tick), and every tick
        // while asked syncs have not started; status changes are ignored once a pass finds no rolling set,
        // until a set changes.
        let mut rollout_tick = tokio::time::interval(rollout::ROLLOUT_TICK);
        let mut rollouts_dirty = true;
        let mut rolling_sets = true;
        let mut rollouts_awaiting = false;
        loop {
            // What to do: sets (all, or one `project/name`), parents, or both.
            let (sets, parents): (Option<Option<String>>, bool) = tokio::select! {
                _ = lead_tick.tick() => {
                    if self.holds(&mut leadership) || !self.take_lead(&mut leadership).await {
                        continue;
                    }
                    // Taken (at start, or over from a replica that stopped):
                    // everything, since nobody evaluated meanwhile.
                    (Some(None), true)
                }
                _ = tick.tick() => (Some(None), true),
                _ = rollout_tick.tick() => {
                    let due = std::mem::take(&mut rollouts_dirty) && rolling_sets;
                    if !(due || rollouts_awaiting) || !self.holds(&mut leadership) {
                        continue;
                    }
                    (rolling_sets, rollouts_awaiting) = self.advance_rollouts().await;
                    continue;
                }
                _ = health_tick.tick() => {
                    if !std::mem::take(&mut parents_dirty) {
                        continue;
                    }
                    (None, true)
                }
                _ = facts_tick.tick() => {
                    if !std::mem::take(&mut clusters_dirty) {
                        continue;
                    }
                    // Re-evaluate only if the facts moved.
                    match self.cluster_facts().await {
                        Ok(facts) if facts_seen.as_ref() == Some(&facts) => continue,
                        Ok(facts) => {
                            facts_seen = Some(facts);
                            (Some(None), true)
                        }
                        Err(error) => {
                            tracing::debug!(%error, "Application sets: listing clusters failed.");
                            clusters_dirty = true;
                            continue;
                        }
                    }
                }
                event = notifications.next() => match event {
                    Some(ListenEvent::Notification { channel, payload }) => match channel.as_str() {
                        APPSETS_CHANNEL => {
                            rolling_sets = true;
                            rollouts_dirty = true;
                            (Some((payload != "*").then_some(payload)), false)
                        }
                        // A parent (an app at the hub itself) changed, or a command for one was queued.
                        DESIRED_CHANNEL | crate::store::COMMANDS_CHANNEL if payload == HUB_CLUSTER => (None, true),
                        crate::pki::repos::REPO_CREDENTIALS_CHANNEL => {
                            self.load_credentials().await;
                            (Some(None), true)
                        }
                        crate::link::APPS_CHANNEL => {
                            rollouts_dirty = true;
                            let watched = self
                                .child_clusters
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .contains(&payload);
                            parents_dirty |= watched;
                            continue;
                        }
                        CLUSTERS_CHANNEL => {
                            // Connection changes are frequent (a reconnect storm sends one per
                            // stream) and irrelevant to generators: the facts are compared at
                            // most once per `facts_tick`, not listed once per notification.
                            clusters_dirty = true;
                            continue;
                        }
                        _ => continue,
                    },
                    Some(ListenEvent::Lagged) => (Some(None), true),
                    None => return,
                },
            };
            if !self.holds(&mut leadership) {
                // Another replica evaluates (it hears the same notifications).
                continue;
            }
            if let Some(only) = sets {
                self.reconcile_sets(only.as_deref()).await;
                // Syncs a rollout asked while evaluating are watched from the next tick on.
                rollouts_dirty = true;
            }
            if parents && let Err(error) = self.reconcile_parents().await {
                tracing::warn!(%error, "App of apps: reconciling parents failed.");
            }
        }
    }

    /// Every hub-scoped set; `None` (logged) when the store cannot list them.
    async fn hub_sets(&self) -> Option<Vec<AppSetRecord>> {
        match self
            .store
            .appsets()
            .list_appsets(&[], Some(HUB_SCOPE))
            .await
        {
            Ok(sets) => Some(sets),
            Err(error) => {
                tracing::warn!(%error, "Application sets: listing failed.");
                None
            }
        }
    }

    /// Evaluates every hub-scoped set, or only `project/name`.
    async fn reconcile_sets(&self, only: Option<&str>) {
        let Some(sets) = self.hub_sets().await else {
            return;
        };
        for set in sets {
            if only == Some(DECISIONS_CHANGED) {
                let reads = ApplicationSetSpec::from_json(&set.spec)
                    .is_ok_and(|spec| spec.uses_decision_resources());
                if !reads {
                    continue;
                }
            } else if only.is_some_and(|o| o != format!("{}/{}", set.project, set.name)) {
                continue;
            }
            if let Err(error) = self.reconcile(&set).await {
                tracing::warn!(project = %set.project, appset = %set.name, %error, "Application set evaluation failed.");
            }
        }
    }

    /// Enrolled, unrevoked clusters as generator input, by name.
    pub async fn cluster_facts(&self) -> Result<Vec<ClusterFacts>, StoreError> {
        let clusters = self.store.list_clusters(&LabelSelector::default()).await?;
        Ok(clusters
            .into_iter()
            .filter(|c| c.revoked_at.is_none())
            .map(|c: ClusterRecord| ClusterFacts {
                name: c.name,
                server: c.server_url,
                labels: c.labels,
                annotations: c.annotations,
            })
            .collect())
    }

    /// Evaluates one set, applies its plan and records its status; returns what changed.
    #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name))]
    pub async fn reconcile(&self, set: &AppSetRecord) -> Result<Outcome, StoreError> {
        let mut status = AppSetStatus {
            observed_version: set.version,
            generated: set.status.generated.clone(),
            rollout: set.status.rollout.clone(),
            rollout_prune: set.status.rollout_prune.clone(),
            ..AppSetStatus::default()
        };
        let outcome = match self.evaluate(set, &mut status).await {
            Ok(outcome) => outcome,
            Err(message) => {
                status.conditions.push(condition("ErrorOccurred", message));
                Outcome::default()
            }
        };
        // A progressive sync moves on with what was just created or updated (or, after an error, with the
        // apps as they are).
        if let Ok(spec) = ApplicationSetSpec::from_json(&set.spec)
            && (spec.rolling_steps().is_some() || !status.rollout.is_empty())
            && let Err(error) = self.advance_rollout(set, &spec, &mut status).await
        {
            tracing::warn!(%error, "Rollout pass failed.");
        }
        self.record_status(set, &status).await?;
        Ok(outcome)
    }

    /// Stores `status` as `set`'s, announcing it to watchers when what they see changed.
    async fn record_status(
        &self,
        set: &AppSetRecord,
        status: &AppSetStatus,
    ) -> Result<(), StoreError> {
        self.store
            .appsets()
            .set_appset_status(&set.project, &set.name, status)
            .await?;
        if status_changed(&set.status, status) {
            let _ = self
                .store
                .notify(
                    APPSET_STATUS_CHANNEL,
                    &format!("{}/{}", set.project, set.name),
                )
                .await;
        }
        Ok(())
    }

    /// Generates the set's apps, resolves their destinations and checks their projects: the valid apps,
    /// the refused ones (name, why), and the commit of each git source.
    #[allow(clippy::type_complexity)]
    pub async fn preview(
        &self,
        project: &str,
        spec: &ApplicationSetSpec,
    ) -> Result<
        (
            Vec<GeneratedApp>,
            Vec<(String, String)>,
            BTreeMap<String, String>,
        ),
        String,
    > {
        for (repo, _) in spec.git_sources() {
            self.check_repo(project, &repo)
                .await
                .map_err(|why| format!("git generator {repo}: {why}"))?;
        }
        let clusters = self.cluster_facts().await.map_err(|e| e.to_string())?;
        let snapshots = RepoSnapshots::load(&self.git, &spec.git_sources())
            .await
            .map_err(|e| e.to_string())?;
        let revisions = snapshots
            .commits()
            .into_iter()
            .map(|((url, rev), commit)| (format!("{url}@{rev}"), commit.to_string()))
            .collect();
        let decisions = if spec.uses_decision_resources() {
            decisions::HubDecisions::new(
                self.store
                    .appsets()
                    .list_decision_resources()
                    .await
                    .map_err(|e| e.to_string())?,
            )
        } else {
            decisions::HubDecisions::default()
        };
        let generation = generate_each(
            spec,
            &EvalContext {
                clusters: &clusters,
                git: &snapshots,
                decisions: &decisions,
            },
        )
        .map_err(|e| e.to_string())?;
        let generated = generation.apps;
        // An invalid app, or a name rendered twice, is reported and skipped (an existing one is kept).
        let mut valid = Vec::with_capacity(generated.len());
        let mut refused: Vec<(String, String)> = generation
            .duplicates
            .into_iter()
            .map(|(name, error)| (name, error.to_string()))
            .collect();
        let decided = spec.uses_decision_resources();
        for mut app in generated {
            match self.admit(&mut app, &clusters, decided).await {
                Ok(()) => valid.push(app),
                Err(why) => refused.push((app.name, why)),
            }
        }
        Ok((valid, refused, revisions))
    }

    /// Generates and applies; an `Err` leaves every app untouched.
    async fn evaluate(
        &self,
        set: &AppSetRecord,
        status: &mut AppSetStatus,
    ) -> Result<Outcome, String> {
        let spec = ApplicationSetSpec::from_json(&set.spec).map_err(|e| e.to_string())?;
        let (mut valid, refused, revisions) = self.preview(&set.project, &spec).await?;
        if spec
            .sync_policy
            .as_ref()
            .is_some_and(|p| p.preserve_resources_on_deletion)
        {
            // The spoke keeps the resources of an app so labelled when it is deleted.
            for app in &mut valid {
                app.labels.insert(
                    edgecd_core::app::PRESERVE_RESOURCES_LABEL.into(),
                    "true".into(),
                );
            }
        }
        status.revisions = revisions;
        if spec.rolling_steps().is_some() {
            // The rollout asks each app's sync in its turn (with prune where the template's automation
            // asked it), so the apps have no automation of their own, as Argo CD's RollingSync does.
            status.rollout_prune = valid
                .iter()
                .filter(|app| app.spec.automated().is_some_and(|a| a.prune))
                .map(|app| format!("{}/{}", app.project, app.name))
                .collect();
            for app in &mut valid {
                without_automation(&mut app.spec);
            }
        } else {
            status.rollout_prune.clear();
        }
        let owner = OwnerRef {
            kind: OWNER_KIND.into(),
            project: set.project.clone(),
            name: set.name.clone(),
            scope: HUB_SCOPE.into(),
        };
        let (existing, versions) = self
            .existing(&owner, &valid)
            .await
            .map_err(|e| e.to_string())?;
        let generated_names: BTreeSet<String> = valid
            .iter()
            .map(|a| format!("{}/{}", a.project, a.name))
            .collect();
        // A refused app is still generated: if it exists it is kept (left as it was), as Argo CD
        // deletes only what its generators no longer produce. Everything else no longer
        // generated (a revoked cluster's app) is deleted per the policy.
        let mut plan = plan(&spec, &existing, valid);
        if spec.rolling_steps().is_some() {
            // Also where ignored differences (`/spec/syncPolicy`) kept an existing app's automation.
            for app in plan.create.iter_mut().chain(plan.update.iter_mut()) {
                without_automation(&mut app.spec);
            }
        }
        plan.delete
            .retain(|name| !refused.iter().any(|(refused, _)| refused == name));
        let mut problems: Vec<String> = refused
            .iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect();

        let mut outcome = Outcome::default();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        // Names another owner holds: generated, but not this set's apps (its list and count leave them out).
        let mut not_ours: BTreeSet<String> =
            plan.conflicts.iter().map(|(n, _)| n.clone()).collect();
        for app in plan.create {
            let new = NewApp {
                project: app.project.clone(),
                name: app.name.clone(),
                spec: app.spec.clone(),
                labels: app.labels.clone(),
                owner: Some(owner.clone()),
            };
            match self.store.create_app(&new).await {
                Ok(record) => {
                    touched.insert(record.cluster);
                    outcome.created.push(app.name);
                }
                Err(StoreError::AlreadyExists { .. }) => {
                    // Another replica may have just created it for this set.
                    match self.store.get_app(&app.project, &app.name).await {
                        Ok(record) if record.owner.as_ref() == Some(&owner) => {}
                        _ => {
                            problems.push(format!(
                                "{}: an application of that name exists and is not owned by this set",
                                app.name
                            ));
                            not_ours.insert(app.name.clone());
                        }
                    }
                }
                Err(error) => problems.push(format!("{}: {error}", app.name)),
            }
        }
        for app in plan.update {
            let Some(&(version, ref old_cluster)) =
                versions.get(&(app.project.clone(), app.name.clone()))
            else {
                continue;
            };
            match self
                .store
                .update_app(&app.project, &app.name, version, &app.spec, &app.labels)
                .await
            {
                Ok(record) => {
                    touched.insert(old_cluster.clone());
                    touched.insert(record.cluster);
                    outcome.updated.push(app.name);
                }
                Err(error) => problems.push(format!("{}: {error}", app.name)),
            }
        }
        if spec.rolling_steps().is_some() {
            // Automation off on every app the set owns, whatever the policy or ignored differences keep: an
            // app syncing on its own would skip the rollout's steps.
            for old in existing.iter().filter(|e| e.owned_by_this_set) {
                let Some(policy) = old.spec.sync_policy.as_ref() else {
                    continue;
                };
                if policy.automated.is_none() || outcome.updated.contains(&old.name) {
                    continue;
                }
                let Some(&(version, ref cluster)) =
                    versions.get(&(old.project.clone(), old.name.clone()))
                else {
                    continue;
                };
                let mut manual = old.spec.clone();
                without_automation(&mut manual);
                match self
                    .store
                    .update_app(&old.project, &old.name, version, &manual, &old.labels)
                    .await
                {
                    Ok(_) => {
                        touched.insert(cluster.clone());
                        outcome.updated.push(old.name.clone());
                    }
                    Err(error) => problems.push(format!("{}: {error}", old.name)),
                }
            }
        }
        for name in plan.delete {
            let Some(old) = existing
                .iter()
                .find(|e| e.name == name && e.owned_by_this_set)
            else {
                continue;
            };
            match self.store.delete_app(&old.project, &name, None).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {
                    if let Some((_, cluster)) = versions.get(&(old.project.clone(), name.clone())) {
                        touched.insert(cluster.clone());
                    }
                    let _ = self
                        .store
                        .notify(
                            crate::store::APP_DELETED_CHANNEL,
                            &format!("{}/{name}", old.project),
                        )
                        .await;
                    outcome.deleted.push(name);
                }
                Err(error) => problems.push(format!("{name}: {error}")),
            }
        }
        for (name, why) in plan.conflicts {
            problems.push(format!("{name}: {why}"));
        }
        for cluster in &touched {
            let _ = self.store.notify(DESIRED_CHANNEL, cluster).await;
        }

        status.generated = generated_names
            .into_iter()
            .filter(|qualified| {
                let name = qualified
                    .split_once('/')
                    .map_or(qualified.as_str(), |(_, n)| n);
                !not_ours.contains(name)
            })
            .collect();
        if problems.is_empty() {
            status.conditions.push(condition(
                "ResourcesUpToDate",
                format!(
                    "{} applications generated ({} created, {} updated, {} deleted)",
                    status.generated.len(),
                    outcome.created.len(),
                    outcome.updated.len(),
                    outcome.deleted.len()
                ),
            ));
        } else {
            status
                .conditions
                .push(condition("ErrorOccurred", problems.join("; ")));
        }
        if !outcome.created.is_empty() || !outcome.updated.is_empty() || !outcome.deleted.is_empty()
        {
            tracing::info!(
                created = outcome.created.len(),
                updated = outcome.updated.len(),
                deleted = outcome.deleted.len(),
                "Application set applied."
            );
        }
        Ok(outcome)
    }

    /// Checks the rendered spec and labels (`ApplicationSpec::validate`, Kubernetes' label rules),
    /// resolves the destination to an enrolled cluster and checks the app's project limits.
    async fn admit(
        &self,
        app: &mut GeneratedApp,
        clusters: &[ClusterFacts],
        decided: bool,
    ) -> Result<(), String> {
        app.spec.validate().map_err(|e| e.to_string())?;
        edgecd_core::app::validate_labels(&app.labels, "spec.template.metadata.labels")
            .map_err(|e| e.to_string())?;
        let placed = element_cluster(app, clusters)
            .or_else(|| decided.then(|| decided_cluster(app, clusters)).flatten());
        let cluster = match placed {
            Some(cluster) => cluster,
            None => resolve_destination(
                &app.spec.destination.cluster,
                &app.spec.destination.server,
                clusters,
            )?,
        };
        app.spec.destination.cluster = cluster.name.clone();
        if app.project.is_empty() {
            app.project = "default".into();
        }
        app.spec.project = app.project.clone();
        let project = self
            .store
            .get_project(&app.project)
            .await
            .map_err(|e| e.to_string())?;
        project
            .spec
            .check_sources(&app.project, &app.spec)
            .map_err(|v| v.to_string())?;
        project
            .spec
            .check_destination_at(
                &app.project,
                &cluster.name,
                &cluster.server,
                &cluster.labels,
                &app.spec.destination.namespace,
            )
            .map_err(|v| v.to_string())?;
        Ok(())
    }

    /// The apps this set owns, plus any app holding a generated name (a conflict unless owned).
    /// Also returns each one's spec version and cluster by (project, name).
    #[allow(clippy::type_complexity)]
    async fn existing(
        &self,
        owner: &OwnerRef,
        generated: &[GeneratedApp],
    ) -> Result<(Vec<ExistingApp>, BTreeMap<(String, String), (u64, String)>), StoreError> {
        let mut existing = Vec::new();
        let mut versions = BTreeMap::new();
        for summary in owned_summaries(self.store.as_ref(), owner).await? {
            let record = match self.store.get_app(&summary.project, &summary.name).await {
                Ok(record) => record,
                Err(StoreError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            versions.insert(
                (record.project.clone(), record.name.clone()),
                (record.spec_version, record.cluster.clone()),
            );
            existing.push(ExistingApp {
                name: record.name,
                project: record.project,
                labels: record.labels,
                annotations: BTreeMap::new(),
                spec: record.spec,
                owned_by_this_set: true,
            });
        }
        for app in generated {
            if existing.iter().any(|e| e.name == app.name) {
                continue;
            }
            match self.store.get_app(&app.project, &app.name).await {
                Ok(record) => existing.push(ExistingApp {
                    name: record.name,
                    project: record.project,
                    labels: record.labels,
                    annotations: BTreeMap::new(),
                    spec: record.spec,
                    owned_by_this_set: false,
                }),
                Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok((existing, versions))
    }

    /// Deletes every app the set owns (the set itself is deleted by the caller).
    pub async fn delete_generated(
        &self,
        project: &str,
        name: &str,
        scope: &str,
    ) -> Result<Vec<String>, StoreError> {
        let owner = OwnerRef {
            kind: OWNER_KIND.into(),
            project: project.into(),
            name: name.into(),
            scope: scope.into(),
        };
        delete_owned(self.store.as_ref(), &owner).await
    }
}

/// Every app `owner` owns (summaries, all pages).
pub(crate) async fn owned_summaries(
    store: &dyn Store,
    owner: &OwnerRef,
) -> Result<Vec<crate::store::AppSummary>, StoreError> {
    let mut owned = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_apps(&AppQuery {
                filter: AppFilter {
                    owner: Some(owner.clone()),
                    ..AppFilter::default()
                },
                sort: Default::default(),
                page_size: 1000,
                cursor,
            })
            .await?;
        owned.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(owned),
        }
    }
}

/// Deletes the children of an app-of-apps parent: its apps, and its sets with their apps.
pub async fn delete_children(
    store: &dyn Store,
    project: &str,
    name: &str,
) -> Result<(), StoreError> {
    let owner = OwnerRef {
        kind: PARENT_KIND.into(),
        project: project.into(),
        name: name.into(),
        scope: HUB_SCOPE.into(),
    };
    // Nested parents take their own children with them.
    let apps = store
        .list_apps(&AppQuery {
            filter: AppFilter {
                owner: Some(owner.clone()),
                clusters: vec![HUB_CLUSTER.into()],
                ..AppFilter::default()
            },
            sort: Default::default(),
            page_size: 1000,
            cursor: None,
        })
        .await?;
    for nested in &apps.items {
        Box::pin(delete_children(store, &nested.project, &nested.name)).await?;
    }
    delete_owned(store, &owner).await?;
    let sets = store
        .appsets()
        .list_appsets(&[project.to_owned()], Some(HUB_SCOPE))
        .await?;
    for set in sets
        .into_iter()
        .filter(|s| s.owner.as_ref() == Some(&owner))
    {
        match store.appsets().delete_appset(&set.project, &set.name).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        let set_owner = OwnerRef {
            kind: OWNER_KIND.into(),
            project: set.project.clone(),
            name: set.name.clone(),
            scope: HUB_SCOPE.into(),
        };
        delete_owned(store, &set_owner).await?;
    }
    Ok(())
}

/// Deletes every app owned by `owner`, announcing the clusters touched; returns their names.
pub async fn delete_owned(store: &dyn Store, owner: &OwnerRef) -> Result<Vec<String>, StoreError> {
    let mut deleted = Vec::new();
    let mut touched = BTreeSet::new();
    for app in owned_summaries(store, owner).await? {
        match store.delete_app(&app.project, &app.name, None).await {
            Ok(()) => {
                touched.insert(app.cluster.clone());
                let _ = store
                    .notify(
                        crate::store::APP_DELETED_CHANNEL,
                        &format!("{}/{}", app.project, app.name),
                    )
                    .await;
                deleted.push(app.name);
            }
            Err(StoreError::NotFound { .. }) => {}
            // Autonomous apps reported by a spoke are not the hub's to delete.
            Err(StoreError::ReadOnly { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    for cluster in &touched {
        let _ = store.notify(DESIRED_CHANNEL, cluster).await;
    }
    Ok(deleted)
}

/// The cluster of a clusters-generator element whose server URL is not known yet (registered without
/// `--server`, never connected): its `server` parameter is empty, so a template addressing clusters by
/// `destination.server: '{{server}}'` renders a destination naming no cluster. Such an app goes to the
/// element's cluster (its `name` parameter), so a cluster that has not connected yet is a valid
/// element, as every cluster secret is one in Argo CD, instead of an error that stops the set.
fn element_cluster<'a>(
    app: &GeneratedApp,
    clusters: &'a [ClusterFacts],
) -> Option<&'a ClusterFacts> {
    let destination = &app.spec.destination;
    if !destination.cluster.is_empty() || !destination.server.is_empty() {
        return None;
    }
    if app.params.get("server").and_then(serde_json::Value::as_str) != Some("") {
        return None;
    }
    let name = app.params.get("name")?.as_str()?;
    clusters
        .iter()
        .find(|c| c.name == name && c.server.is_empty())
}

/// For a set reading decision resources, an app whose destination is `in-cluster` goes to the cluster its
/// decision names (its `name` parameter): in Open Cluster Management's pull model the generated Application is
/// shipped to the decided cluster, where `https://kubernetes.default.svc` is that cluster itself.
fn decided_cluster<'a>(
    app: &GeneratedApp,
    clusters: &'a [ClusterFacts],
) -> Option<&'a ClusterFacts> {
    let destination = &app.spec.destination;
    let in_cluster = destination.cluster == HUB_CLUSTER
        || (destination.cluster.is_empty()
            && destination.server.trim_end_matches('/') == IN_CLUSTER_SERVER);
    if !in_cluster {
        return None;
    }
    let name = app.params.get("name")?.as_str()?;
    clusters.iter().find(|c| c.name == name)
}

/// The enrolled cluster an Argo CD destination names: `name` first, else the one cluster whose server URL is `server`.
pub fn resolve_destination<'a>(
    name: &str,
    server: &str,
    clusters: &'a [ClusterFacts],
) -> Result<&'a ClusterFacts, String> {
    if !name.is_empty() {
        return clusters.iter().find(|c| c.name == name).ok_or_else(|| {
            format!("destination.name: cluster {name} is not enrolled at this hub")
        });
    }
    if server.is_empty() {
        return Err(
            "destination names no cluster (set destination.name or destination.server)".into(),
        );
    }
    let matching: Vec<&ClusterFacts> = clusters.iter().filter(|c| c.server == server).collect();
    match matching.as_slice() {
        [one] => Ok(one),
        [] if server.trim_end_matches('/') == IN_CLUSTER_SERVER => Err(format!(
            "destination.server {server} is the hub's own cluster, which runs no applications: name an enrolled cluster"
        )),
        [] => Err(format!(
            "destination.server: no enrolled cluster has server URL {server} (set it with `edgecd cluster add --server`)"
        )),
        many => Err(format!(
            "destination.server: clusters {} all have server URL {server}; use destination.name",
            many.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether a new status differs from the stored one in what a reader sees
/// (conditions' transition times aside).
fn status_changed(old: &AppSetStatus, new: &AppSetStatus) -> bool {
    let conditions = |s: &AppSetStatus| -> Vec<(String, String)> {
        s.conditions
            .iter()
            .map(|c| (c.kind.clone(), c.message.clone()))
            .collect()
    };
    old.generated != new.generated
        || old.revisions != new.revisions
        || old.observed_version != new.observed_version
        || conditions(old) != conditions(new)
        || old.rollout != new.rollout
}

/// `spec` with automated sync off: a progressive sync's apps are synced by the rollout only.
fn without_automation(spec: &mut edgecd_core::app::ApplicationSpec) {
    if let Some(policy) = spec.sync_policy.as_mut() {
        policy.automated = None;
    }
}

fn condition(kind: &str, message: impl Into<String>) -> Condition {
    Condition {
        kind: kind.into(),
        message: message.into(),
        last_transition_time: OffsetDateTime::now_utc(),
    }
}

/// The credentials of `all` that `project` may use: those whose prefix has a known scope that is empty (every
/// project) or names `project`. A prefix with no known scope is denied.
fn credentials_for_project(
    all: &edgecd_git::Credentials,
    scopes: &[CredentialScope],
    project: &str,
) -> edgecd_git::Credentials {
    edgecd_git::Credentials::new(
        all.entries()
            .filter(|c| {
                scopes
                    .iter()
                    .find(|(prefix, _)| *prefix == c.url_prefix)
                    .is_some_and(|(_, projects)| {
                        projects.is_empty() || projects.iter().any(|p| p == project)
                    })
            })
            .cloned(),
    )
}

/// Whether the credential for `prefix` is the one the spoke would use for `repo_url` (the shared rule: a
/// boundary after the prefix; for an OCI registry, the same authority too).
fn credential_covers(prefix: &str, repo_url: &str) -> bool {
    if edgecd_helm::oci::is_oci(repo_url) {
        return edgecd_helm::oci::prefix_covers_oci(prefix, repo_url);
    }
    edgecd_git::RepoUrl::parse(repo_url)
        .is_ok_and(|url| edgecd_git::prefix_covers(prefix, url.as_str()))
}

#[cfg(test)]
mod credential_scope_tests {
    use super::*;

    fn credential(prefix: &str) -> edgecd_git::RepoCredential {
        edgecd_git::RepoCredential {
            url_prefix: prefix.to_owned(),
            username: Some("u".to_owned()),
            password: Some("p".to_owned().into()),
            ..edgecd_git::RepoCredential::default()
        }
    }

    #[test]
    fn a_prefix_with_no_known_scope_is_denied() {
        let all = edgecd_git::Credentials::new([
            credential("https://a.example/"),
            credential("https://b.example/"),
            credential("https://all.example/"),
            credential("https://unscoped.example/"),
        ]);
        let scopes = vec![
            ("https://a.example/".to_owned(), vec!["team-a".to_owned()]),
            ("https://b.example/".to_owned(), vec!["team-b".to_owned()]),
            ("https://all.example/".to_owned(), vec![]),
        ];
        let prefixes = |project: &str| {
            credentials_for_project(&all, &scopes, project)
                .prefixes()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            prefixes("team-a"),
            ["https://a.example/", "https://all.example/"]
        );
        assert_eq!(
            prefixes("team-b"),
            ["https://b.example/", "https://all.example/"]
        );
        assert_eq!(
            credentials_for_project(&all, &[], "team-a").len(),
            0,
            "credentials whose scopes are not known yet are denied"
        );
    }
}
