//! App of apps at the hub: an application whose destination is the hub itself (`in-cluster`) is rendered here, and its Application and ApplicationSet documents become child objects owned by it.
//!
//! ```text
//!  parent (cluster = in-cluster) ─ git (edgecd-git) ─ render (edgecd-render, the spoke's renderer)
//!     ─► documents ─ core::argo::parse_document ─► children (same project as the parent)
//!     ─► compare with the children it owns ─► Synced | OutOfSync (per child resource status)
//!     ─► on automated sync or a sync command: create / update (and prune when asked)
//!     ─► parent status: sync, health rolled up from the children, conditions, operation
//! ```
//!
//! Commands for a parent sit in the outbox under cluster `in-cluster`; no
//! spoke claims them, this controller does. A child in another project than
//! its parent is refused: a parent must not create apps where its owners
//! may not.

use std::collections::{BTreeMap, BTreeSet};

use edgecd_core::app::{
    ApplicationSpec, Condition, HealthReport, OperationPhase, OperationState, OwnerRef,
    ResourceKey, ResourceStatus, SyncReport,
};
use edgecd_core::argo::{Document, parse_document};
use edgecd_core::{Health, SyncStatus};
use edgecd_git::{RefreshMode, RepoUrl, Revision};
use time::OffsetDateTime;

use super::{APPSETS_CHANNEL, AppSetController, resolve_destination};
use crate::link::{CommandPayload, DESIRED_CHANNEL};
use crate::store::appsets::HUB_SCOPE;
use crate::store::{
    AppFilter, AppQuery, AppRecord, CommandOutcome, CommandRecord, CommandUpdate, NewApp,
    NewAppSet, StoreError,
};

/// The destination cluster name that means the hub itself (Argo CD's name for the local cluster).
pub const HUB_CLUSTER: &str = "in-cluster";
/// Owner kind recorded on the children of a parent application.
pub const PARENT_KIND: &str = "Application";

/// One child a parent renders.
#[derive(Debug, Clone)]
enum Child {
    App {
        name: String,
        labels: BTreeMap<String, String>,
        spec: Box<ApplicationSpec>,
    },
    Set {
        name: String,
        spec: serde_json::Value,
    },
}

impl Child {
    fn name(&self) -> &str {
        match self {
            Self::App { name, .. } | Self::Set { name, .. } => name,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::App { .. } => "Application",
            Self::Set { .. } => "ApplicationSet",
        }
    }
}

/// What a sync command asked for.
#[derive(Debug, Clone, Copy, Default)]
struct SyncAsk {
    prune: bool,
    dry_run: bool,
}

impl AppSetController {
    /// Reconciles every hub-evaluated parent and answers the commands queued for them.
    #[tracing::instrument(skip_all)]
    pub async fn reconcile_parents(&self) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let commands = self
            .store
            .list_deliverable_commands(HUB_CLUSTER, now)
            .await?;
        if !commands.is_empty() {
            let ids: Vec<String> = commands.iter().map(|c| c.id.clone()).collect();
            self.store.mark_commands_delivered(&ids, now).await?;
        }
        let mut by_app: BTreeMap<(String, String), Vec<CommandRecord>> = BTreeMap::new();
        for command in commands {
            by_app
                .entry((command.project.clone(), command.app.clone()))
                .or_default()
                .push(command);
        }
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list_apps(&AppQuery {
                    filter: AppFilter {
                        clusters: vec![HUB_CLUSTER.into()],
                        ..AppFilter::default()
                    },
                    sort: Default::default(),
                    page_size: 500,
                    cursor,
                })
                .await?;
            for summary in &page.items {
                let key = (summary.project.clone(), summary.name.clone());
                let commands = by_app.remove(&key).unwrap_or_default();
                match self.store.get_app(&summary.project, &summary.name).await {
                    Ok(parent) => self.reconcile_parent(&parent, commands).await?,
                    Err(StoreError::NotFound { .. }) => {
                        self.answer(
                            &commands,
                            CommandOutcome::Failed,
                            "the application was deleted",
                        )
                        .await;
                    }
                    Err(error) => return Err(error),
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        for commands in by_app.into_values() {
            self.answer(
                &commands,
                CommandOutcome::Failed,
                "the application does not exist",
            )
            .await;
        }
        Ok(())
    }

    async fn answer(&self, commands: &[CommandRecord], outcome: CommandOutcome, message: &str) {
        for command in commands {
            let update = CommandUpdate {
                id: command.id.clone(),
                outcome,
                message: message.to_owned(),
                result: None,
            };
            if let Err(error) = self.store.record_command_status(&update).await {
                tracing::warn!(command = %command.id, %error, "Cannot record a command's result.");
            }
        }
    }

    /// Renders one parent, compares its children, applies them when asked, and records its status.
    #[tracing::instrument(skip_all, fields(project = %parent.project, app = %parent.name))]
    async fn reconcile_parent(
        &self,
        parent: &AppRecord,
        commands: Vec<CommandRecord>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut sync_ask: Option<SyncAsk> = None;
        let mut hard = false;
        let mut sync_commands = Vec::new();
        for command in commands {
            match serde_json::from_value::<CommandPayload>(command.payload.clone()) {
                Ok(CommandPayload::Sync {
                    prune,
                    dry_run,
                    resources,
                    ..
                }) if resources.is_empty() => {
                    let ask = sync_ask.get_or_insert_with(SyncAsk::default);
                    ask.prune |= prune;
                    ask.dry_run |= dry_run;
                    sync_commands.push(command);
                }
                Ok(CommandPayload::Refresh { hard: h }) => {
                    hard |= h;
                    self.answer(&[command], CommandOutcome::Succeeded, "refreshed")
                        .await;
                }
                _ => {
                    self.answer(
                        &[command],
                        CommandOutcome::Unsupported,
                        "not supported for an application evaluated at the hub (sync of all its children and refresh are)",
                    )
                    .await;
                }
            }
        }

        let previous = parent.status.clone().unwrap_or_default();
        let mut status = previous.clone();
        status.reconciled_at = Some(now);
        status.observed_spec_version = parent.spec_version;
        status.conditions.clear();
        let (commit, children) = match self.render_children(parent, hard).await {
            Ok(rendered) => rendered,
            Err(message) => {
                status.sync = SyncReport {
                    status: SyncStatus::Unknown,
                    revision: status.sync.revision.clone(),
                };
                status
                    .conditions
                    .push(condition("ComparisonError", message.clone()));
                if !sync_commands.is_empty() {
                    status.operation_state = Some(operation(
                        &sync_commands,
                        OperationPhase::Failed,
                        &message,
                        now,
                        "",
                    ));
                }
                self.store
                    .appsets()
                    .set_hub_app_status(&parent.project, &parent.name, &status)
                    .await?;
                self.answer(&sync_commands, CommandOutcome::Failed, &message)
                    .await;
                return Ok(());
            }
        };
        let owner = OwnerRef {
            kind: PARENT_KIND.into(),
            project: parent.project.clone(),
            name: parent.name.clone(),
            scope: HUB_SCOPE.into(),
        };
        let automated = parent.spec.automated().cloned();
        let apply = automated.is_some() || sync_ask.is_some_and(|a| !a.dry_run);
        let prune =
            automated.as_ref().is_some_and(|a| a.prune) || sync_ask.is_some_and(|a| a.prune);
        let mut problems = Vec::new();
        let report = self
            .sync_children(parent, &owner, &children, apply, prune, &mut problems)
            .await?;

        status.sync = SyncReport {
            status: if report.out_of_sync.is_empty() {
                SyncStatus::Synced
            } else {
                SyncStatus::OutOfSync
            },
            revision: commit.clone(),
        };
        status.health = HealthReport {
            status: Health::roll_up(
                report
                    .resources
                    .iter()
                    .filter_map(|r| r.health.as_ref().map(|h| h.status)),
            ),
            message: String::new(),
        };
        if report.resources.is_empty() {
            status.health.status = Health::Healthy;
        }
        status.resources = report.resources;
        for problem in &problems {
            status
                .conditions
                .push(condition("SyncError", problem.clone()));
        }
        if !sync_commands.is_empty() {
            let (phase, message) = if problems.is_empty() {
                (
                    OperationPhase::Succeeded,
                    format!("{} children applied", children.len()),
                )
            } else {
                (OperationPhase::Failed, problems.join("; "))
            };
            status.operation_state = Some(operation(&sync_commands, phase, &message, now, &commit));
            let outcome = if problems.is_empty() {
                CommandOutcome::Succeeded
            } else {
                CommandOutcome::Failed
            };
            self.answer(&sync_commands, outcome, &message).await;
        }
        // Unchanged apart from the time: nothing to write or announce.
        let mut unchanged = status.clone();
        unchanged.reconciled_at = previous.reconciled_at;
        if unchanged == previous && parent.status.is_some() {
            return Ok(());
        }
        self.store
            .appsets()
            .set_hub_app_status(&parent.project, &parent.name, &status)
            .await?;
        let _ = self
            .store
            .notify(crate::link::APPS_CHANNEL, HUB_CLUSTER)
            .await;
        Ok(())
    }

    /// The parent's documents at its target revision, as children; errors name the document.
    async fn render_children(
        &self,
        parent: &AppRecord,
        hard: bool,
    ) -> Result<(String, Vec<Child>), String> {
        if parent.spec.is_multi_source() {
            return Err(
                "spec.sources: multi-source app-of-apps parents are not rendered by the hub yet; give the parent one spec.source"
                    .into(),
            );
        }
        let source = &parent.spec.source;
        if source.is_oci_artifact() {
            return Err(
                "spec.source.repoURL: an OCI artifact parent is not rendered by the hub yet (spokes render OCI artifacts); give the parent a git source or a chart"
                    .into(),
            );
        }
        self.check_repo(&parent.project, &source.repo_url).await?;
        if source.is_helm() {
            return self.render_helm_children(parent, hard).await;
        }
        let (commit, checkout) = self.checkout(source, hard).await?;
        let options = source.render_options(checkout.root().to_path_buf());
        let dir = checkout.dir().to_path_buf();
        let objects = tokio::task::spawn_blocking(move || {
            let _checkout = checkout;
            edgecd_render::render(&dir, &options)
        })
        .await
        .map_err(|e| format!("render task failed: {e}"))?
        .map_err(|e| e.to_string())?;
        Ok((commit.to_string(), children_of(parent, &objects)?))
    }

    /// The parent's git source at its target revision (fetched again with `hard`), materialised with its path.
    async fn checkout(
        &self,
        source: &edgecd_core::app::ApplicationSource,
        hard: bool,
    ) -> Result<(edgecd_git::CommitId, edgecd_git::Checkout), String> {
        let url = RepoUrl::parse(&source.repo_url).map_err(|e| e.to_string())?;
        let revision = if source.target_revision.is_empty() {
            Revision::head()
        } else {
            Revision::new(&source.target_revision)
        };
        let mode = if hard {
            RefreshMode::Hard
        } else {
            RefreshMode::Normal
        };
        let commit = self
            .git
            .refresh(&url, &revision, mode)
            .await
            .map_err(|e| e.to_string())?;
        let checkout = self
            .git
            .materialise(&url, commit, &source.path)
            .await
            .map_err(|e| e.to_string())?;
        Ok((commit, checkout))
    }

    /// A Helm parent's children: its chart (a directory in git or a chart of a chart repository) rendered with
    /// `helm template` as at a spoke, but with Helm's default capabilities (the hub is no cluster; the parent's
    /// `helm.kubeVersion`/`apiVersions` set them) and the hub's repository credentials its project may use.
    async fn render_helm_children(
        &self,
        parent: &AppRecord,
        hard: bool,
    ) -> Result<(String, Vec<Child>), String> {
        let source = &parent.spec.source;
        let Some(helm) = &self.helm else {
            return Err(format!(
                "{}: this hub renders no Helm parents (it was started without a helm binary)",
                if source.chart.is_empty() {
                    "spec.source.helm"
                } else {
                    "spec.source.chart"
                }
            ));
        };
        let capabilities = edgecd_helm::Capabilities::default();
        let context = edgecd_helm::RenderContext {
            app_name: &parent.name,
            namespace: &parent.spec.destination.namespace,
            capabilities: &capabilities,
        };
        let credentials = self.credentials_for(&parent.project);
        let refs = edgecd_helm::SourceRefs::default();
        // Dependencies' repositories must be allowed by the parent's project `sourceRepos`, as at a spoke.
        let policy = self
            .store
            .get_project(&parent.project)
            .await
            .map_err(|e| e.to_string())?
            .spec;
        let project = parent.project.clone();
        let allowed = move |url: &str| {
            policy
                .check_source(&project, url)
                .map_err(|v| v.to_string())
        };
        let inputs = edgecd_helm::RenderInputs {
            refs: &refs,
            credentials: Some(&credentials),
            hard,
            allowed_repos: Some(&allowed),
        };
        let (revision, objects) = if source.chart.is_empty() {
            let (commit, checkout) = self.checkout(source, hard).await?;
            let commit = commit.to_string();
            // The checkout lease keeps the directory alive while rendering.
            let objects = helm
                .render_dir_with(
                    source,
                    &context,
                    &inputs,
                    checkout.root(),
                    checkout.dir(),
                    &commit,
                )
                .await
                .map_err(|e| {
                    e.to_string()
                        .replace(&format!("{}/", checkout.root().display()), "")
                })?;
            (commit, objects)
        } else {
            helm.render_repo_chart_with(source, &context, &inputs)
                .await
                .map_err(|e| e.to_string())?
        };
        Ok((revision, children_of(parent, &objects)?))
    }
}

/// The children a parent's rendered `objects` declare: Applications (in the parent's project) and
/// ApplicationSets; errors name the document.
fn children_of(parent: &AppRecord, objects: &[serde_json::Value]) -> Result<Vec<Child>, String> {
    let mut children = Vec::with_capacity(objects.len());
    let mut names = BTreeSet::new();
    for object in objects {
        let document = parse_document(object).map_err(|e| e.to_string())?;
        let child = match document {
            Document::Application(app) => {
                let project = if app.project.is_empty() {
                    "default"
                } else {
                    app.project.as_str()
                };
                if project != parent.project {
                    return Err(format!(
                        "Application {}: its project {project} is not its parent's ({}); children live in their parent's project",
                        app.name, parent.project
                    ));
                }
                let mut spec = app.spec;
                spec.project = parent.project.clone();
                Child::App {
                    name: app.name,
                    labels: app.labels,
                    spec: Box::new(spec),
                }
            }
            Document::ApplicationSet(set) => Child::Set {
                spec: serde_json::to_value(&set.spec).map_err(|e| e.to_string())?,
                name: set.name,
            },
            Document::Project(project) => {
                return Err(format!(
                    "AppProject {}: a parent application does not create projects; apply projects with `edgecd apply`",
                    project.name
                ));
            }
        };
        if !names.insert((child.kind(), child.name().to_owned())) {
            return Err(format!(
                "{} {} is rendered twice",
                child.kind(),
                child.name()
            ));
        }
        children.push(child);
    }
    Ok(children)
}

impl AppSetController {
    /// Compares (and, if `apply`, creates, updates and prunes) the parent's children.
    async fn sync_children(
        &self,
        parent: &AppRecord,
        owner: &OwnerRef,
        children: &[Child],
        apply: bool,
        prune: bool,
        problems: &mut Vec<String>,
    ) -> Result<ChildReport, StoreError> {
        let clusters = self.cluster_facts().await?;
        let mut report = ChildReport::default();
        let mut touched = BTreeSet::new();
        let mut rendered_apps = BTreeSet::new();
        let mut rendered_sets = BTreeSet::new();
        let mut child_clusters = BTreeSet::new();
        for child in children {
            let key = ResourceKey {
                group: "edgecd.io".into(),
                version: "v1alpha1".into(),
                kind: child.kind().into(),
                namespace: String::new(),
                name: child.name().to_owned(),
            };
            let state = match child {
                Child::App { name, labels, spec } => {
                    rendered_apps.insert(name.clone());
                    match resolve_child_destination(spec, &clusters) {
                        Ok(spec) => {
                            child_clusters.insert(spec.destination.cluster.clone());
                            self.sync_app_child(
                                parent,
                                owner,
                                name,
                                labels,
                                &spec,
                                &clusters,
                                apply,
                                &mut touched,
                            )
                            .await?
                        }
                        Err(why) => ChildState::problem(None, format!("Application {name}: {why}")),
                    }
                }
                Child::Set { name, spec } => {
                    rendered_sets.insert(name.clone());
                    self.sync_set_child(parent, owner, name, spec, apply)
                        .await?
                }
            };
            let (in_sync, health) = (state.in_sync, state.health);
            if let Some(problem) = state.problem {
                problems.push(problem);
            }
            if !in_sync {
                report.out_of_sync.push(child.name().to_owned());
            }
            report.resources.push(resource(
                key,
                if in_sync {
                    SyncStatus::Synced
                } else {
                    SyncStatus::OutOfSync
                },
                health,
            ));
        }

        // Children no longer rendered.
        let owned_apps = super::owned_summaries(self.store.as_ref(), owner).await?;
        for app in owned_apps {
            let (name, cluster) = (app.name, app.cluster);
            if rendered_apps.contains(&name) {
                continue;
            }
            if apply && prune {
                match self.store.delete_app(&parent.project, &name, None).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {
                        touched.insert(cluster);
                        let _ = self
                            .store
                            .notify(
                                crate::store::APP_DELETED_CHANNEL,
                                &format!("{}/{name}", parent.project),
                            )
                            .await;
                    }
                    Err(error) => problems.push(format!("pruning Application {name}: {error}")),
                }
            } else {
                report.out_of_sync.push(name.clone());
                let mut status = resource(
                    ResourceKey {
                        group: "edgecd.io".into(),
                        version: "v1alpha1".into(),
                        kind: "Application".into(),
                        namespace: String::new(),
                        name,
                    },
                    SyncStatus::OutOfSync,
                    None,
                );
                status.requires_pruning = true;
                report.resources.push(status);
            }
        }
        let owned_sets: Vec<_> = self
            .store
            .appsets()
            .list_appsets(std::slice::from_ref(&parent.project), Some(HUB_SCOPE))
            .await?
            .into_iter()
            .filter(|s| s.owner.as_ref() == Some(owner) && !rendered_sets.contains(&s.name))
            .collect();
        for set in owned_sets {
            if apply && prune {
                let set_owner = OwnerRef {
                    kind: super::OWNER_KIND.into(),
                    project: set.project.clone(),
                    name: set.name.clone(),
                    scope: HUB_SCOPE.into(),
                };
                match self
                    .store
                    .appsets()
                    .delete_appset(&set.project, &set.name)
                    .await
                {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {
                        if let Err(error) =
                            super::delete_owned(self.store.as_ref(), &set_owner).await
                        {
                            problems.push(format!(
                                "pruning the apps of ApplicationSet {}: {error}",
                                set.name
                            ));
                        }
                    }
                    Err(error) => {
                        problems.push(format!("pruning ApplicationSet {}: {error}", set.name))
                    }
                }
            } else {
                report.out_of_sync.push(set.name.clone());
                let mut status = resource(
                    ResourceKey {
                        group: "edgecd.io".into(),
                        version: "v1alpha1".into(),
                        kind: "ApplicationSet".into(),
                        namespace: String::new(),
                        name: set.name,
                    },
                    SyncStatus::OutOfSync,
                    None,
                );
                status.requires_pruning = true;
                report.resources.push(status);
            }
        }
        for cluster in &touched {
            let _ = self.store.notify(DESIRED_CHANNEL, cluster).await;
        }
        {
            let mut watched = self
                .child_clusters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            watched.extend(child_clusters);
            watched.extend(touched);
        }
        Ok(report)
    }

    /// One Application child: compared with the app it owns, created or updated when `apply`.
    #[allow(clippy::too_many_arguments)]
    async fn sync_app_child(
        &self,
        parent: &AppRecord,
        owner: &OwnerRef,
        name: &str,
        labels: &BTreeMap<String, String>,
        spec: &ApplicationSpec,
        clusters: &[edgecd_core::appset::ClusterFacts],
        apply: bool,
        touched: &mut BTreeSet<String>,
    ) -> Result<ChildState, StoreError> {
        let existing = match self.store.get_app(&parent.project, name).await {
            Ok(existing) => Some(existing),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        let health = existing.as_ref().map_or(Some(Health::Missing), |e| {
            e.status.as_ref().map(|s| s.health.status)
        });
        if let Some(existing) = &existing {
            if existing.owner.as_ref() != Some(owner) {
                return Ok(ChildState::problem(
                    None,
                    format!(
                        "Application {name} exists and is not owned by {}/{}",
                        parent.project, parent.name
                    ),
                ));
            }
            if &existing.spec == spec && &existing.labels == labels {
                return Ok(ChildState::synced(health));
            }
        }
        if !apply {
            return Ok(ChildState::out_of_sync(health));
        }
        if let Err(why) = self.admit_child(spec, clusters).await {
            return Ok(ChildState::problem(
                health,
                format!("Application {name}: {why}"),
            ));
        }
        let written = match &existing {
            Some(existing) => self
                .store
                .update_app(&parent.project, name, existing.spec_version, spec, labels)
                .await
                .map(|updated| {
                    touched.insert(existing.cluster.clone());
                    updated.cluster
                }),
            None => self
                .store
                .create_app(&NewApp {
                    project: parent.project.clone(),
                    name: name.to_owned(),
                    spec: spec.clone(),
                    labels: labels.clone(),
                    owner: Some(owner.clone()),
                })
                .await
                .map(|created| created.cluster),
        };
        Ok(match written {
            Ok(cluster) => {
                touched.insert(cluster);
                ChildState::synced(health)
            }
            Err(error) => ChildState::problem(health, format!("Application {name}: {error}")),
        })
    }

    /// One ApplicationSet child: compared with the set it owns, created or updated when `apply`.
    async fn sync_set_child(
        &self,
        parent: &AppRecord,
        owner: &OwnerRef,
        name: &str,
        spec: &serde_json::Value,
        apply: bool,
    ) -> Result<ChildState, StoreError> {
        let existing = match self.store.appsets().get_appset(&parent.project, name).await {
            Ok(existing) => Some(existing),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error),
        };
        let health = Some(
            existing
                .as_ref()
                .map_or(Health::Missing, |e| set_health(&e.status)),
        );
        if let Some(existing) = &existing {
            if existing.owner.as_ref() != Some(owner) {
                return Ok(ChildState::problem(
                    None,
                    format!(
                        "ApplicationSet {name} exists and is not owned by {}/{}",
                        parent.project, parent.name
                    ),
                ));
            }
            if &existing.spec == spec && existing.scope == HUB_SCOPE {
                return Ok(ChildState::synced(health));
            }
        }
        if !apply {
            return Ok(ChildState::out_of_sync(health));
        }
        let new = NewAppSet {
            project: parent.project.clone(),
            name: name.to_owned(),
            scope: HUB_SCOPE.into(),
            spec: spec.clone(),
            owner: Some(owner.clone()),
        };
        let written = match &existing {
            Some(existing) => self
                .store
                .appsets()
                .update_appset(&new, existing.version)
                .await
                .map(|_| ()),
            None => self.store.appsets().create_appset(&new).await.map(|_| ()),
        };
        Ok(match written {
            Ok(()) => {
                let _ = self
                    .store
                    .notify(APPSETS_CHANNEL, &format!("{}/{name}", parent.project))
                    .await;
                ChildState::synced(health)
            }
            Err(error) => ChildState::problem(health, format!("ApplicationSet {name}: {error}")),
        })
    }

    /// Project limits of a child app (source repository, destination cluster and namespace).
    async fn admit_child(
        &self,
        spec: &ApplicationSpec,
        clusters: &[edgecd_core::appset::ClusterFacts],
    ) -> Result<(), String> {
        let project = self
            .store
            .get_project(&spec.project)
            .await
            .map_err(|e| e.to_string())?;
        project
            .spec
            .check_sources(&spec.project, spec)
            .map_err(|v| v.to_string())?;
        let (server, labels) = clusters
            .iter()
            .find(|c| c.name == spec.destination.cluster)
            .map(|c| (c.server.clone(), c.labels.clone()))
            .unwrap_or_default();
        project
            .spec
            .check_destination_at(
                &spec.project,
                &spec.destination.cluster,
                &server,
                &labels,
                &spec.destination.namespace,
            )
            .map_err(|v| v.to_string())
    }
}

/// Where one child stands after a pass.
#[derive(Debug)]
struct ChildState {
    in_sync: bool,
    health: Option<Health>,
    problem: Option<String>,
}

impl ChildState {
    fn synced(health: Option<Health>) -> Self {
        Self {
            in_sync: true,
            health,
            problem: None,
        }
    }

    fn out_of_sync(health: Option<Health>) -> Self {
        Self {
            in_sync: false,
            health,
            problem: None,
        }
    }

    fn problem(health: Option<Health>, problem: String) -> Self {
        Self {
            in_sync: false,
            health,
            problem: Some(problem),
        }
    }
}

/// A child's destination as an enrolled cluster (or the hub itself, for a nested parent).
fn resolve_child_destination(
    spec: &ApplicationSpec,
    clusters: &[edgecd_core::appset::ClusterFacts],
) -> Result<ApplicationSpec, String> {
    let mut spec = spec.clone();
    if spec.destination.cluster == HUB_CLUSTER {
        return Ok(spec);
    }
    match resolve_destination(
        &spec.destination.cluster,
        &spec.destination.server,
        clusters,
    ) {
        Ok(cluster) => spec.destination.cluster = cluster.name.clone(),
        Err(_) if spec.destination.server.trim_end_matches('/') == super::IN_CLUSTER_SERVER => {
            spec.destination.cluster = HUB_CLUSTER.into();
        }
        Err(why) => return Err(why),
    }
    Ok(spec)
}

/// Per-child sync and health of one parent.
#[derive(Debug, Default)]
struct ChildReport {
    resources: Vec<ResourceStatus>,
    out_of_sync: Vec<String>,
}

fn resource(key: ResourceKey, status: SyncStatus, health: Option<Health>) -> ResourceStatus {
    ResourceStatus {
        key,
        status,
        health: health.map(|status| HealthReport {
            status,
            message: String::new(),
        }),
        requires_pruning: false,
        sync_wave: 0,
    }
}

/// A set is Degraded while its last evaluation reported an error.
fn set_health(status: &crate::store::AppSetStatus) -> Health {
    if status.conditions.iter().any(|c| c.kind == "ErrorOccurred") {
        Health::Degraded
    } else if status.observed_version == 0 {
        Health::Progressing
    } else {
        Health::Healthy
    }
}

fn operation(
    commands: &[CommandRecord],
    phase: OperationPhase,
    message: &str,
    now: OffsetDateTime,
    revision: &str,
) -> OperationState {
    OperationState {
        command_id: commands.last().map(|c| c.id.clone()).unwrap_or_default(),
        phase,
        message: message.to_owned(),
        started_at: now,
        finished_at: Some(now),
        revision: revision.to_owned(),
        resources: Vec::new(),
        retry_count: 0,
        initiated_by: commands
            .last()
            .map(|c| c.issued_by.clone())
            .unwrap_or_default(),
        trace_id: commands
            .last()
            .and_then(|c| c.trace.as_ref())
            .map(|t| t.trace_id().to_owned())
            .unwrap_or_default(),
    }
}

fn condition(kind: &str, message: String) -> Condition {
    Condition {
        kind: kind.into(),
        message,
        last_transition_time: OffsetDateTime::now_utc(),
    }
}
