//! The ApplicationSet controller of the spoke: evaluates each set for this cluster and creates, updates and deletes the Application CRs it owns, per the set's `applicationsSync` policy; never touches anything when evaluation fails.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use edgecd_core::appset::{
    self, ApplicationSetSpec, ClusterFacts, EvalContext, ExistingApp, GeneratedApp,
};
use futures::{FutureExt as _, StreamExt as _};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use rand::Rng as _;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::Instrument as _;

use super::{
    AppSetCondition, ApplicationSet, ApplicationSetStatus, GitCommitUsed, OWNER_KIND,
    OWNER_KIND_LABEL, OWNER_NAME_LABEL, OWNER_PROJECT_LABEL, conditions,
};
use crate::crd::{self, Application, ORIGIN_LABEL, PROJECT_LABEL, REFRESH_ANNOTATION};
use crate::git::GitCache;
use crate::git::tree::RepoSnapshots;
use crate::reconcile::Engine;

/// Field manager of the Application CRs a set writes.
pub const APPSET_MANAGER: &str = "edgecd-appset";
/// Field manager of the hub-managed ApplicationSet CRs the hub link writes.
pub const HUB_SET_MANAGER: &str = "edgecd-hub-link";
/// The in-cluster API server address, the `server` of this cluster in the clusters generator.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

/// Why one evaluation could not finish (retried after 5 s); evaluation failures are conditions, not errors.
#[derive(Debug, thiserror::Error)]
pub enum AppSetReconcileError {
    #[error("{action} for ApplicationSet {set}: {source}")]
    Kube {
        set: String,
        action: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// What the hub told about this cluster (labels and annotations for the clusters generator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HubFacts {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    server_url: String,
}

/// Shared state of the ApplicationSet controller.
#[derive(Debug)]
pub struct AppSets {
    engine: Arc<Engine>,
    git: GitCache,
    facts: Mutex<HubFacts>,
    triggers: mpsc::UnboundedSender<ObjectRef<ApplicationSet>>,
    store: OnceLock<Store<ApplicationSet>>,
}

impl AppSets {
    /// The controller's state and the receiver of its extra triggers (pass both to [`run`]).
    pub fn new(
        engine: Arc<Engine>,
        git: GitCache,
    ) -> (
        Arc<Self>,
        mpsc::UnboundedReceiver<ObjectRef<ApplicationSet>>,
    ) {
        let (triggers, receiver) = mpsc::unbounded_channel();
        let sets = Arc::new(Self {
            engine,
            git,
            facts: Mutex::new(HubFacts::default()),
            triggers,
            store: OnceLock::new(),
        });
        (sets, receiver)
    }

    fn namespace(&self) -> &str {
        &self.engine.config().namespace
    }

    fn cluster_name(&self) -> &str {
        &self.engine.config().cluster_name
    }

    fn client(&self) -> kube::Client {
        self.engine.cluster().client().clone()
    }

    /// Keeps the hub's labels and annotations of this cluster; every set is re-evaluated when they changed.
    pub fn set_cluster_metadata(
        &self,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        server_url: String,
    ) {
        let new = HubFacts {
            labels,
            annotations,
            server_url,
        };
        let changed = {
            let mut facts = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = *facts != new;
            *facts = new;
            changed
        };
        if changed {
            tracing::info!("Cluster labels from the hub changed; re-evaluating ApplicationSets.");
            self.trigger_all();
        }
    }

    /// This cluster as the clusters generator sees it.
    pub fn cluster_facts(&self) -> ClusterFacts {
        let facts = self
            .facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        ClusterFacts {
            name: self.cluster_name().to_owned(),
            server: IN_CLUSTER_SERVER.to_owned(),
            labels: facts.labels,
            annotations: facts.annotations,
        }
    }

    /// Re-evaluates one set now.
    pub fn trigger(&self, cr_name: &str) {
        let _ = self
            .triggers
            .send(ObjectRef::new(cr_name).within(self.namespace()));
    }

    /// Re-evaluates every set the controller knows.
    pub fn trigger_all(&self) {
        if let Some(store) = self.store.get() {
            for set in store.state() {
                if let Some(name) = &set.metadata.name {
                    self.trigger(name);
                }
            }
        }
    }

    /// Whether `destination` means this cluster: no cluster given, `in-cluster`, this cluster's name, the
    /// in-cluster API server, or the server URL the hub knows this cluster by.
    fn is_local(&self, destination: &edgecd_core::app::Destination) -> bool {
        let server_url = self
            .facts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .server_url
            .clone();
        let cluster_ok = matches!(destination.cluster.as_str(), "" | "in-cluster")
            || destination.cluster == self.cluster_name();
        let server = destination.server.trim_end_matches('/');
        let server_ok = server.is_empty()
            || server == IN_CLUSTER_SERVER
            || (!server_url.is_empty() && server == server_url.trim_end_matches('/'));
        cluster_ok && server_ok
    }
}

impl AppSets {
    /// Creates or overwrites the hub-managed ApplicationSet CR `cr_name` (labels `edgecd.io/origin=hub` and
    /// `edgecd.io/project`); a spec edited in the cluster is replaced whole.
    pub async fn write_hub_set(
        &self,
        cr_name: &str,
        project: &str,
        spec: &ApplicationSetSpec,
    ) -> Result<(), String> {
        let spec = serde_json::to_value(spec)
            .map_err(|e| format!("ApplicationSet {cr_name}: encoding the spec: {e}"))?;
        let project = if project.is_empty() {
            "default"
        } else {
            project
        };
        let api: Api<ApplicationSet> = Api::namespaced(self.client(), self.namespace());
        let body = serde_json::json!({
            "apiVersion": crd::API_VERSION,
            "kind": OWNER_KIND,
            "metadata": {
                "name": cr_name,
                "namespace": self.namespace(),
                "labels": { ORIGIN_LABEL: "hub", PROJECT_LABEL: project },
            },
            "spec": spec,
        });
        let written = api
            .patch(
                cr_name,
                &PatchParams::apply(HUB_SET_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| format!("writing ApplicationSet {cr_name}: {e}"))?;
        if written.spec != spec {
            // Keys added by someone else survive a server-side apply: replace the spec whole.
            let mut replaced = written;
            replaced.spec = spec;
            api.replace(cr_name, &kube::api::PostParams::default(), &replaced)
                .await
                .map_err(|e| format!("reverting local edits of ApplicationSet {cr_name}: {e}"))?;
        }
        Ok(())
    }

    /// CR names of the hub-managed ApplicationSets in the state namespace.
    pub async fn hub_set_names(&self) -> Result<BTreeSet<String>, String> {
        let api: Api<ApplicationSet> = Api::namespaced(self.client(), self.namespace());
        let list = api
            .list(&ListParams::default().labels(&format!("{ORIGIN_LABEL}=hub")))
            .await
            .map_err(|e| format!("listing ApplicationSets: {e}"))?;
        Ok(list
            .items
            .iter()
            .filter(|s| s.is_hub_managed())
            .filter_map(|s| s.metadata.name.clone())
            .collect())
    }

    /// Deletes a set and the apps it owns (their objects too, unless the set preserves resources on
    /// deletion; an unreadable spec preserves them).
    pub async fn delete_set(&self, cr_name: &str) -> Result<(), String> {
        let api: Api<ApplicationSet> = Api::namespaced(self.client(), self.namespace());
        let Some(set) = api
            .get_opt(cr_name)
            .await
            .map_err(|e| format!("reading ApplicationSet {cr_name}: {e}"))?
        else {
            return Ok(());
        };
        let preserve = ApplicationSetSpec::from_json(&set.spec).map_or(true, |spec| {
            spec.sync_policy
                .is_some_and(|p| p.preserve_resources_on_deletion)
        });
        let apps: Api<Application> = Api::namespaced(self.client(), self.namespace());
        let listed = apps
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing the Applications of ApplicationSet {cr_name}: {e}"))?;
        for app in listed.items.iter().filter(|a| owned_by(a, &set)) {
            let name = app.metadata.name.clone().unwrap_or_default();
            delete_app(&apps, self, &name, preserve)
                .await
                .map_err(|e| {
                    format!("deleting Application {name} of ApplicationSet {cr_name}: {e}")
                })?;
        }
        match api.delete(cr_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(format!("deleting ApplicationSet {cr_name}: {e}")),
        }
        tracing::info!(set = %cr_name, preserve, "ApplicationSet deleted with its applications.");
        Ok(())
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    sets: Arc<AppSets>,
    triggers: mpsc::UnboundedReceiver<ObjectRef<ApplicationSet>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ApplicationSet> = Api::namespaced(sets.client(), sets.namespace());
    let apps: Api<Application> = Api::namespaced(sets.client(), sets.namespace());
    let controller =
        Controller::new(api, watcher::Config::default()).owns(apps, watcher::Config::default());
    let _ = sets.store.set(controller.store());
    let config = kube::runtime::controller::Config::default()
        .concurrency(2)
        .debounce(Duration::from_millis(200));
    controller
        .with_config(config)
        .reconcile_on(UnboundedReceiverStream::new(triggers))
        .graceful_shutdown_on(shutdown.shared())
        .run(reconcile, error_policy, sets)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "ApplicationSet controller event.");
            }
        })
        .await;
}

fn error_policy(set: Arc<ApplicationSet>, error: &AppSetReconcileError, _: Arc<AppSets>) -> Action {
    tracing::warn!(set = set.metadata.name.as_deref().unwrap_or_default(), %error, "ApplicationSet reconcile failed; retrying.");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(
    set: Arc<ApplicationSet>,
    sets: Arc<AppSets>,
) -> Result<Action, AppSetReconcileError> {
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = set.metadata.name.clone().unwrap_or_default();
    let span = tracing::info_span!("appset_reconcile", set = %name, project = %set.project());
    async {
        let evaluation = evaluate(&set, &sets).await?;
        write_status(&set, &sets, evaluation).await?;
        clear_refresh(&set, &sets).await?;
        Ok(Action::requeue(jittered(
            sets.engine.config().poll_interval,
        )))
    }
    .instrument(span)
    .await
}

fn jittered(interval: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    interval.mul_f64(factor)
}

/// The outcome of one evaluation, for the status.
#[derive(Debug, Default)]
struct Evaluation {
    /// (reason, message) when evaluation failed; nothing was changed.
    failed: Option<(&'static str, String)>,
    /// Problems applying the plan (conflicts, writes that failed).
    problems: Vec<String>,
    applications: Option<Vec<String>>,
    commits: Vec<GitCommitUsed>,
}

impl Evaluation {
    fn failed(reason: &'static str, message: String) -> Self {
        tracing::warn!(reason, %message, "ApplicationSet evaluation failed; its applications are left as they are.");
        Self {
            failed: Some((reason, message)),
            ..Self::default()
        }
    }
}

async fn evaluate(
    set: &ApplicationSet,
    sets: &AppSets,
) -> Result<Evaluation, AppSetReconcileError> {
    let set_cr = set.metadata.name.clone().unwrap_or_default();
    let spec = match ApplicationSetSpec::from_json(&set.spec) {
        Ok(spec) => spec,
        Err(error) => {
            return Ok(Evaluation::failed(
                "InvalidSpec",
                format!("ApplicationSet {set_cr}: invalid spec: {error}"),
            ));
        }
    };
    // Generating its apps here while ignoring what only the hub can honour would defeat the set's purpose.
    if let Some(why) = spec.hub_only() {
        return Ok(Evaluation::failed(
            "InvalidSpec",
            format!(
                "ApplicationSet {set_cr}: the set is evaluated at the hub only ({why}); apply it to the hub"
            ),
        ));
    }
    let snapshots = match RepoSnapshots::load(&sets.git, &spec.git_sources()).await {
        Ok(snapshots) => snapshots,
        Err(error) => {
            return Ok(Evaluation::failed(
                "GitError",
                format!("ApplicationSet {set_cr}: {error}"),
            ));
        }
    };
    let commits: Vec<GitCommitUsed> = snapshots
        .commits()
        .into_iter()
        .map(|((repo_url, revision), commit)| GitCommitUsed {
            repo_url,
            revision,
            commit: commit.to_string(),
        })
        .collect();
    let clusters = [sets.cluster_facts()];
    let generated = {
        // Scoped: the context borrows non-`Sync` trait objects and must not live across an await.
        let context = EvalContext {
            clusters: &clusters,
            git: &snapshots,
            decisions: &edgecd_core::appset::NoDecisions,
        };
        appset::generate_each(&spec, &context)
    };
    // A name rendered twice is left out and reported; the rest proceeds.
    let mut duplicated: Vec<(String, String)> = Vec::new();
    let generated = match generated.map(|g| {
        duplicated = g
            .duplicates
            .into_iter()
            .map(|(name, error)| (name, format!("ApplicationSet {set_cr}: {error}")))
            .collect();
        g.apps
    }) {
        Ok(mut generated) => {
            // The CR carries the project explicitly, so the plan compares like with like.
            for app in &mut generated {
                if app.spec.project.is_empty() {
                    app.spec.project = app.project.clone();
                }
            }
            generated
        }
        Err(error) => {
            let mut evaluation = Evaluation::failed(
                "ApplicationGenerationFromParamsError",
                format!("ApplicationSet {set_cr}: {error}"),
            );
            evaluation.commits = commits;
            return Ok(evaluation);
        }
    };
    let elsewhere: Vec<String> = generated
        .iter()
        .filter(|app| !sets.is_local(&app.spec.destination))
        .map(|app| {
            let d = &app.spec.destination;
            format!(
                "application {} has destination {} which is not this cluster ({})",
                app.name,
                if d.cluster.is_empty() {
                    &d.server
                } else {
                    &d.cluster
                },
                sets.cluster_name()
            )
        })
        .collect();
    if !elsewhere.is_empty() {
        let mut evaluation = Evaluation::failed(
            "InvalidDestination",
            format!(
                "ApplicationSet {set_cr}: a spoke's application set generates apps for its own cluster only: {}",
                elsewhere.join("; ")
            ),
        );
        evaluation.commits = commits;
        return Ok(evaluation);
    }

    let apps: Api<Application> = Api::namespaced(sets.client(), sets.namespace());
    let listed =
        apps.list(&ListParams::default())
            .await
            .map_err(|source| AppSetReconcileError::Kube {
                set: set_cr.clone(),
                action: "listing Applications".into(),
                source: Box::new(source),
            })?;
    // An app whose name is now rendered twice is neither updated nor deleted: left as it was.
    let existing: Vec<ExistingApp> = listed
        .items
        .iter()
        .map(|a| existing_app(a, set))
        .filter(|a| !duplicated.iter().any(|(name, _)| *name == a.name))
        .collect();
    let generated_names: Vec<String> = generated.iter().map(|a| a.name.clone()).collect();
    let plan = appset::plan(&spec, &existing, generated);
    tracing::debug!(
        create = plan.create.len(),
        update = plan.update.len(),
        delete = plan.delete.len(),
        unchanged = plan.unchanged.len(),
        conflicts = plan.conflicts.len(),
        "ApplicationSet planned."
    );

    let mut problems: Vec<String> = duplicated.iter().map(|(_, why)| why.clone()).collect();
    problems.extend(plan.conflicts.iter().map(|(_, why)| why.clone()));
    for app in plan.create.iter().chain(&plan.update) {
        if let Err(error) = apply_app(&apps, set, app).await {
            problems.push(format!("writing Application {}: {error}", app.name));
        } else {
            tracing::info!(app = %app.name, "Application written by its ApplicationSet.");
        }
    }
    let preserve = spec
        .sync_policy
        .as_ref()
        .is_some_and(|p| p.preserve_resources_on_deletion);
    for name in &plan.delete {
        if let Err(error) = delete_app(&apps, sets, name, preserve).await {
            problems.push(format!("deleting Application {name}: {error}"));
        } else {
            tracing::info!(app = %name, preserve, "Application no longer generated; deleted.");
        }
    }
    let conflicting: BTreeSet<&str> = plan.conflicts.iter().map(|(n, _)| n.as_str()).collect();
    Ok(Evaluation {
        failed: None,
        problems,
        applications: Some(
            generated_names
                .into_iter()
                .filter(|n| !conflicting.contains(n.as_str()))
                .collect(),
        ),
        commits,
    })
}

/// Labels the set itself puts on its apps (not compared with the template's).
fn is_bookkeeping_label(key: &str) -> bool {
    [
        OWNER_KIND_LABEL,
        OWNER_NAME_LABEL,
        OWNER_PROJECT_LABEL,
        ORIGIN_LABEL,
        PROJECT_LABEL,
    ]
    .contains(&key)
}

/// Annotations written by edgecd or kubectl (not compared with the template's).
fn is_bookkeeping_annotation(key: &str) -> bool {
    key.starts_with("edgecd.io/") || key.starts_with("kubectl.kubernetes.io/")
}

fn owned_by(app: &Application, set: &ApplicationSet) -> bool {
    let Some(uid) = set.metadata.uid.as_deref() else {
        let labels = app.metadata.labels.clone().unwrap_or_default();
        return labels.get(OWNER_KIND_LABEL).map(String::as_str) == Some(OWNER_KIND)
            && labels.get(OWNER_NAME_LABEL) == Some(&set.set_name())
            && labels.get(OWNER_PROJECT_LABEL) == Some(&set.project());
    };
    app.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == OWNER_KIND && o.uid == uid)
}

fn existing_app(app: &Application, set: &ApplicationSet) -> ExistingApp {
    let labels = app
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !is_bookkeeping_label(k))
        .collect();
    let annotations = app
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !is_bookkeeping_annotation(k))
        .collect();
    ExistingApp {
        name: app.metadata.name.clone().unwrap_or_default(),
        project: app.project().to_owned(),
        labels,
        annotations,
        spec: app.spec.clone(),
        owned_by_this_set: owned_by(app, set),
    }
}

/// Creates or updates one generated Application CR (server-side apply, field manager `edgecd-appset`).
async fn apply_app(
    apps: &Api<Application>,
    set: &ApplicationSet,
    app: &GeneratedApp,
) -> Result<(), kube::Error> {
    let mut labels = app.labels.clone();
    labels.insert(OWNER_KIND_LABEL.into(), OWNER_KIND.into());
    labels.insert(OWNER_NAME_LABEL.into(), set.set_name());
    labels.insert(OWNER_PROJECT_LABEL.into(), set.project());
    let spec = &app.spec;
    let mut owner = serde_json::json!({
        "apiVersion": crd::API_VERSION,
        "kind": OWNER_KIND,
        "name": set.metadata.name.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    });
    if let Some(uid) = &set.metadata.uid {
        owner["uid"] = serde_json::Value::String(uid.clone());
    }
    let body = serde_json::json!({
        "apiVersion": crd::API_VERSION,
        "kind": "Application",
        "metadata": {
            "name": app.name,
            "namespace": set.metadata.namespace,
            "labels": labels,
            "annotations": app.annotations,
            "ownerReferences": [owner],
        },
        "spec": spec,
    });
    apps.patch(
        &app.name,
        &PatchParams::apply(APPSET_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// Deletes an app no longer generated: its CR, then (unless `preserve`) the objects it deployed.
async fn delete_app(
    apps: &Api<Application>,
    sets: &AppSets,
    name: &str,
    preserve: bool,
) -> Result<(), String> {
    let Some(app) = apps.get_opt(name).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    // The CR goes first, so the engine stops reconciling (and self-healing) the app.
    match apps.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error.to_string()),
    }
    if preserve {
        return Ok(());
    }
    let mut failures = Vec::new();
    let owner = app.qualified_name();
    for resource in app.status.iter().flat_map(|s| &s.resources) {
        if let Err(error) = sets
            .engine
            .cluster()
            .delete_managed(&owner, &resource.key)
            .await
        {
            failures.push(error.to_string());
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the CR is deleted but some of its objects are not: {}",
            failures.join("; ")
        ))
    }
}

fn condition(
    previous: &[AppSetCondition],
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: &str,
) -> AppSetCondition {
    let mut new = AppSetCondition {
        type_: type_.to_owned(),
        status: if status { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time: now.to_owned(),
    };
    if let Some(old) = previous.iter().find(|c| c.type_ == type_)
        && old.status == new.status
        && old.reason == new.reason
        && old.message == new.message
    {
        new.last_transition_time = old.last_transition_time.clone();
    }
    new
}

/// The status an evaluation leads to (times of unchanged conditions kept).
fn next_status(set: &ApplicationSet, evaluation: Evaluation, now: &str) -> ApplicationSetStatus {
    let previous = set.status.clone().unwrap_or_default();
    let old = &previous.conditions;
    let conditions = match &evaluation.failed {
        Some((reason, message)) => vec![
            condition(
                old,
                conditions::ERROR_OCCURRED,
                true,
                reason,
                message.clone(),
                now,
            ),
            condition(
                old,
                conditions::PARAMETERS_GENERATED,
                false,
                reason,
                message.clone(),
                now,
            ),
            condition(
                old,
                conditions::RESOURCES_UP_TO_DATE,
                false,
                reason,
                "applications left unchanged because the evaluation failed".into(),
                now,
            ),
        ],
        None if !evaluation.problems.is_empty() => {
            let message = evaluation.problems.join("; ");
            vec![
                condition(
                    old,
                    conditions::ERROR_OCCURRED,
                    true,
                    "ApplicationSetApplyError",
                    message.clone(),
                    now,
                ),
                condition(
                    old,
                    conditions::PARAMETERS_GENERATED,
                    true,
                    "ParametersGenerated",
                    "successfully generated parameters for all applications".into(),
                    now,
                ),
                condition(
                    old,
                    conditions::RESOURCES_UP_TO_DATE,
                    false,
                    "ApplicationSetApplyError",
                    message,
                    now,
                ),
            ]
        }
        None => vec![
            condition(
                old,
                conditions::ERROR_OCCURRED,
                false,
                "ApplicationSetUpToDate",
                "all applications have been generated successfully".into(),
                now,
            ),
            condition(
                old,
                conditions::PARAMETERS_GENERATED,
                true,
                "ParametersGenerated",
                "successfully generated parameters for all applications".into(),
                now,
            ),
            condition(
                old,
                conditions::RESOURCES_UP_TO_DATE,
                true,
                "ApplicationSetUpToDate",
                "all applications have been generated successfully".into(),
                now,
            ),
        ],
    };
    let failed = evaluation.failed.is_some();
    ApplicationSetStatus {
        conditions,
        applications: evaluation.applications.unwrap_or(previous.applications),
        observed_generation: set.metadata.generation,
        git_commits: if failed && evaluation.commits.is_empty() {
            previous.git_commits
        } else {
            evaluation.commits
        },
    }
}

async fn write_status(
    set: &ApplicationSet,
    sets: &AppSets,
    evaluation: Evaluation,
) -> Result<(), AppSetReconcileError> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let status = next_status(set, evaluation, &now);
    if set.status.as_ref() == Some(&status) {
        return Ok(());
    }
    // Every field explicitly, so a merge patch also clears emptied lists.
    let patch = serde_json::json!({
        "status": {
            "conditions": status.conditions,
            "applications": status.applications,
            "observedGeneration": status.observed_generation,
            "gitCommits": status.git_commits,
        }
    });
    let api: Api<ApplicationSet> = Api::namespaced(sets.client(), sets.namespace());
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| AppSetReconcileError::Kube {
            set: name.clone(),
            action: "writing the status".into(),
            source: Box::new(source),
        })?;
    Ok(())
}

/// Removes `edgecd.io/refresh` once the set was evaluated for it.
async fn clear_refresh(set: &ApplicationSet, sets: &AppSets) -> Result<(), AppSetReconcileError> {
    let requested = set
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION));
    if !requested {
        return Ok(());
    }
    let name = set.metadata.name.clone().unwrap_or_default();
    let patch = serde_json::json!({"metadata": {"annotations": {REFRESH_ANNOTATION: null}}});
    let api: Api<ApplicationSet> = Api::namespaced(sets.client(), sets.namespace());
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| AppSetReconcileError::Kube {
            set: name.clone(),
            action: "removing the refresh annotation".into(),
            source: Box::new(source),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ApplicationSet {
        let mut set = ApplicationSet::new("addons", "edgecd-system", serde_json::json!({}));
        set.metadata.generation = Some(3);
        set
    }

    #[test]
    fn a_failed_evaluation_keeps_the_applications_and_names_the_cause() {
        let mut set = set();
        set.status = Some(ApplicationSetStatus {
            applications: vec!["nginx".into()],
            ..ApplicationSetStatus::default()
        });
        let status = next_status(
            &set,
            Evaluation::failed(
                "GitError",
                "ApplicationSet addons: revision \"x\" not found".into(),
            ),
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(status.applications, ["nginx"]);
        assert_eq!(status.observed_generation, Some(3));
        let error = &status.conditions[0];
        assert_eq!(
            (error.type_.as_str(), error.status.as_str()),
            ("ErrorOccurred", "True")
        );
        assert!(error.message.contains("not found"));
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let mut set = set();
        let ok = || Evaluation {
            applications: Some(vec!["a".into()]),
            ..Evaluation::default()
        };
        let first = next_status(&set, ok(), "2026-01-01T00:00:00Z");
        set.status = Some(first.clone());
        let second = next_status(&set, ok(), "2026-01-02T00:00:00Z");
        assert_eq!(first, second);
    }

    #[test]
    fn bookkeeping_keys_are_not_compared() {
        assert!(is_bookkeeping_label(OWNER_NAME_LABEL));
        assert!(!is_bookkeeping_label("team"));
        assert!(is_bookkeeping_annotation(REFRESH_ANNOTATION));
        assert!(!is_bookkeeping_annotation("notes"));
    }
}
