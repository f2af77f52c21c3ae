//! The reconcile loop of one Application: git → render → compare → (auto-)sync → status and history in the CR, driven by kube-runtime's controller, with watchers on managed objects for self-heal.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash as _, Hasher as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_core::app::{
    ApplicationSource, ApplicationStatus, BuildEnv, HistoryEntry, OperationPhase, OperationState,
    ResourceKey, SyncReport,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_render::{RenderCache, Value};
use futures::{FutureExt as _, StreamExt};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::cluster::{ClusterError, LiveCluster};
use crate::crd::{Application, OperationRequest, REFRESH_ANNOTATION};
use crate::decide::{self, AutoSync, Facts};
use crate::git::{GitCache, GitError, RefreshMode, RepoUrl, Revision};
use crate::live::LiveIndex;
use crate::plan::APP_LABEL;
use crate::sources::{SourceRefs, Wanted};
use crate::sync::{AppTarget, Comparison, ResourceDiff, SyncOptions, Termination, compare, sync};

/// Condition types the engine sets.
pub mod conditions {
    pub const COMPARISON_ERROR: &str = "ComparisonError";
    pub const SYNC_ERROR: &str = "SyncError";
    pub const INVALID_SPEC: &str = "InvalidSpecError";
    /// The app's project (as the hub sent it) refuses its source or one of its objects: nothing is applied.
    pub const POLICY_VIOLATION: &str = "ProjectPolicyViolation";
    /// An object of the app is tracked by another app too (Argo CD's condition of the same name).
    pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
    /// The app's destination namespace holds objects no app tracks, and its project asks to be warned
    /// (`orphanedResources`; Argo CD's condition of the same name).
    pub const ORPHANED_RESOURCE_WARNING: &str = "OrphanedResourceWarning";
    /// The API server refused the full status for its size; it was written without its resource lists.
    pub const STATUS_WRITE_ERROR: &str = "StatusWriteError";
}

/// When an app whose comparison the cluster refused (for example Forbidden by RBAC) is looked at again.
const COMPARE_RETRY: Duration = Duration::from_secs(30);

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Namespace holding the Application CRs.
    pub namespace: String,
    /// How often every app is re-checked against git (jittered ±10 %).
    pub poll_interval: Duration,
    /// Re-check interval while an app is Progressing.
    pub progress_interval: Duration,
    /// Apps reconciled at once.
    pub concurrency: u16,
    pub sync: SyncOptions,
    /// Name of the spoke in `initiatedBy`.
    pub identity: String,
    /// This cluster's name in the fleet, for the destinations of project policies (empty: any destination's
    /// cluster matches).
    pub cluster_name: String,
    /// An app found Synced is re-compared in full (server-side dry runs) at least this often; in between, a
    /// reconcile whose inputs (commit, source, destination, inventory) and live resourceVersions are unchanged
    /// reuses the last comparison. Zero compares in full every time.
    pub full_compare_interval: Duration,
    /// The helm binary rendering Helm sources (a bare name is looked up on `PATH` at start).
    pub helm_binary: PathBuf,
    /// Helm's home, chart packages and scratch files; `None`: `$TMPDIR/edgecd-helm`.
    pub helm_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            namespace: "edgecd-system".into(),
            poll_interval: Duration::from_secs(180),
            progress_interval: Duration::from_secs(5),
            concurrency: 8,
            sync: SyncOptions::default(),
            identity: "edgecd-spoke".into(),
            cluster_name: String::new(),
            full_compare_interval: Duration::from_secs(1800),
            helm_binary: PathBuf::from("helm"),
            helm_dir: None,
        }
    }
}

/// Why one reconcile failed (the app is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error("reading or writing {app}: {source}")]
    Status {
        app: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// Shared state of the reconcile loop.
pub struct Engine {
    cluster: LiveCluster,
    git: GitCache,
    renders: Arc<Mutex<RenderCache>>,
    /// Helm sources: `helm template` runs and chart repositories.
    helm: Arc<edgecd_helm::HelmRenderer>,
    config: EngineConfig,
    triggers: mpsc::UnboundedSender<ObjectRef<Application>>,
    watched: Mutex<HashSet<(String, String, String)>>,
    /// Reconciles run, by app (for tests and metrics).
    reconciles: Mutex<HashMap<String, u64>>,
    /// resourceVersions of managed objects, from the watchers.
    live: Arc<LiveIndex>,
    /// Per app (CR name): what the engine last saw and wrote.
    memory: Mutex<HashMap<String, AppMemory>>,
    /// Reconciles that reused the last comparison, and full comparisons (for tests and metrics).
    compares: CompareCounts,
    /// Sync operations running now, by CR name, with their termination switch.
    running: Mutex<HashMap<String, Termination>>,
    /// Project policies from the hub, enforced before anything is applied.
    policies: Arc<crate::policy::Policies>,
    /// Orphan candidates by namespace, for projects with `orphanedResources`.
    orphans: crate::orphans::ListingCache,
    /// Observability hooks set by the runtime shell.
    hooks: Hooks,
}

// --- observability hooks (runtime shell: `crate::metrics`) ---

/// Told about every reconcile and sync the engine runs (metrics).
pub trait ReconcileObserver: Send + Sync + 'static {
    /// One reconcile ended: `ok` is false when it failed and will be retried.
    fn reconciled(&self, ok: bool, duration: Duration);
    /// One sync operation ended with `phase`.
    fn synced(&self, phase: OperationPhase);
}

/// Hooks filled once by the runtime shell.
#[derive(Default)]
struct Hooks {
    observer: std::sync::OnceLock<Arc<dyn ReconcileObserver>>,
    apps: std::sync::OnceLock<kube::runtime::reflector::Store<Application>>,
}

/// What an operation asks of a sync beyond the app's own sync options.
#[derive(Debug, Clone, Default)]
struct Asked {
    prune: bool,
    dry_run: bool,
    /// Replace what cannot be patched.
    force: bool,
    /// A selective sync's resources (empty: all).
    only: Vec<crate::crd::SyncResource>,
    /// Sync options of this operation only (`ApplyOutOfSyncOnly=true`).
    options: Vec<String>,
    /// A rollback: the history entry it deploys again.
    rollback_of: Option<i64>,
}

impl Engine {
    /// Installs the observer of reconciles and syncs (once; later calls are ignored).
    pub fn set_observer(&self, observer: Arc<dyn ReconcileObserver>) {
        let _ = self.hooks.observer.set(observer);
    }

    /// The controller's cache of Application CRs, once [`run`] has started.
    pub fn apps(&self) -> Option<&kube::runtime::reflector::Store<Application>> {
        self.hooks.apps.get()
    }

    /// Entries in the render cache.
    pub fn render_cache_len(&self) -> usize {
        self.renders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn observe(&self, f: impl FnOnce(&dyn ReconcileObserver)) {
        if let Some(observer) = self.hooks.observer.get() {
            f(observer.as_ref());
        }
    }
}

// --- end of observability hooks ---

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What the engine remembers about one app between reconciles.
#[derive(Debug, Default)]
struct AppMemory {
    /// resourceVersion of the CR as last read or written by the engine.
    cr_version: Option<String>,
    /// resourceVersion produced by the engine's own last write of the CR.
    own_write: Option<String>,
    /// When the next reconcile is due (the requeue of the last one).
    due: Option<Instant>,
    /// The last full comparison, if it found the app Synced.
    comparison: Option<ComparisonMemo>,
}

/// A full comparison that found the app Synced: valid while its inputs and every compared object's
/// resourceVersion are unchanged.
#[derive(Debug)]
struct ComparisonMemo {
    inputs: u64,
    live: Vec<(ResourceKey, String)>,
    at: Instant,
}

/// Counts of comparisons, by kind.
#[derive(Debug, Default)]
pub struct CompareCounts {
    full: std::sync::atomic::AtomicU64,
    reused: std::sync::atomic::AtomicU64,
}

impl CompareCounts {
    /// (full comparisons, reused comparisons) so far.
    pub fn get(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.full.load(Relaxed), self.reused.load(Relaxed))
    }
}

/// What a comparison depends on besides the live objects: the rendered objects are a function of the commit and
/// the source; the rest names the app, its destination and inventory, its spec's generation and the project
/// policies it was checked against.
#[derive(Clone, Copy)]
struct CompareInputs<'a> {
    sources: &'a [ApplicationSource],
    commit: &'a str,
    app: &'a str,
    app_label: &'a str,
    namespace: &'a str,
    inventory: &'a [ResourceKey],
    generation: Option<i64>,
    policies: u64,
}

impl CompareInputs<'_> {
    /// A hash of the inputs (within this process only).
    fn hash(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        // The source has no `Hash`; its JSON is streamed into the hasher (no string built).
        let _ = serde_json::to_writer(HashWriter(&mut hasher), self.sources);
        self.commit.hash(&mut hasher);
        self.app.hash(&mut hasher);
        self.app_label.hash(&mut hasher);
        self.namespace.hash(&mut hasher);
        self.inventory.hash(&mut hasher);
        self.generation.hash(&mut hasher);
        self.policies.hash(&mut hasher);
        hasher.finish()
    }
}

/// A multi-source app's refs as the Helm renderer takes them (`$name/…` files resolve in `root`).
fn helm_refs(refs: &SourceRefs) -> edgecd_helm::SourceRefs {
    refs.iter()
        .map(|(name, root, commit)| {
            (
                name.to_owned(),
                edgecd_helm::SourceRef {
                    root: root.to_path_buf(),
                    commit: commit.to_owned(),
                },
            )
        })
        .collect()
}

/// Feeds written bytes into a hasher.
struct HashWriter<'a, H>(&'a mut H);

impl<H: std::hash::Hasher> std::io::Write for HashWriter<'_, H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the reuse check before rendering found.
enum Early {
    /// The last comparison stands.
    Reused,
    /// Render and compare (or reuse after rendering, for a commit-id revision).
    Render,
    /// The git server could not be asked: as a failed render.
    GitFailed(String),
}

/// What the reconcile of one app decided and did, before writing status.
struct Outcome {
    status: ApplicationStatus,
    /// Whether anything but the reconcile time changed.
    changed: bool,
    clear_operation: bool,
    requeue: Duration,
}

impl Engine {
    /// Creates the engine; the returned receiver feeds [`run`].
    pub fn new(
        cluster: LiveCluster,
        git: GitCache,
        config: EngineConfig,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<ObjectRef<Application>>) {
        let (triggers, rx) = mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            cluster,
            git,
            renders: Arc::new(Mutex::new(RenderCache::new(256))),
            helm: Arc::new(edgecd_helm::HelmRenderer::new(
                edgecd_helm::HelmConfig::new(
                    config.helm_binary.clone(),
                    config
                        .helm_dir
                        .clone()
                        .unwrap_or_else(|| std::env::temp_dir().join("edgecd-helm")),
                ),
            )),
            config,
            triggers,
            watched: Mutex::default(),
            reconciles: Mutex::default(),
            live: Arc::default(),
            memory: Mutex::default(),
            compares: CompareCounts::default(),
            running: Mutex::default(),
            policies: Arc::default(),
            orphans: crate::orphans::ListingCache::default(),
            hooks: Hooks::default(),
        });
        (engine, rx)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn cluster(&self) -> &LiveCluster {
        &self.cluster
    }

    /// Asks for a reconcile of the app whose CR is named `cr_name`.
    pub fn trigger(&self, cr_name: &str) {
        let _ = self
            .triggers
            .send(ObjectRef::new(cr_name).within(&self.config.namespace));
    }

    /// How many times the app's reconcile has run.
    pub fn reconcile_count(&self, cr_name: &str) -> u64 {
        self.reconciles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cr_name)
            .copied()
            .unwrap_or(0)
    }

    /// Asks the sync operation running for the app `cr_name` to stop at its next step boundary; `by` names
    /// who asked. False when no operation is running.
    pub fn terminate(&self, cr_name: &str, by: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.get(cr_name) {
            Some(termination) => {
                termination.request(by);
                tracing::info!(
                    app = cr_name,
                    by,
                    "Termination of the running operation requested."
                );
                true
            }
            None => false,
        }
    }

    /// The project policies enforced by this engine (updated by the hub link).
    pub fn policies(&self) -> &crate::policy::Policies {
        &self.policies
    }

    /// The repositories a render of `app` may fetch charts from (dependencies, `helmCharts` repos, OCI
    /// registries): those its project's `sourceRepos` allow, by the policy the hub sent. With no policy known for
    /// the project, every repository (as before the hub sent one).
    fn allowed_repos(&self, app: &Application) -> Option<Arc<edgecd_helm::RepoCheck>> {
        crate::policy::repo_check(self.policies.get(app.project()), app.project())
    }

    /// What every Helm render and chart or artifact fetch of one source is given: the credentials now, the
    /// refs' checkouts, the project's repository check, and whether the refresh is hard.
    fn render_parts(&self, app: &Application, refs: &SourceRefs, mode: RefreshMode) -> RenderParts {
        RenderParts {
            credentials: self.git.credentials().snapshot(),
            refs: helm_refs(refs),
            allowed: self.allowed_repos(app),
            hard: mode == RefreshMode::Hard,
        }
    }

    /// Every rendered object (and the source) the app's project refuses, as messages naming the object and
    /// the rule. Kinds the cluster does not know are left to the comparison, which reports them.
    async fn policy_violations(
        &self,
        project: &str,
        spec: &edgecd_core::project::ProjectSpec,
        sources: &[ApplicationSource],
        target: &AppTarget,
    ) -> Vec<String> {
        let mut refused = Vec::new();
        // Every source, a multi-source app's refs included: a values repository is a source too.
        for source in sources {
            if let Err(violation) = crate::policy::check_source(spec, project, &source.repo_url) {
                refused.push(format!("source {}: {violation}", source.repo_url));
            }
        }
        let cluster = if self.config.cluster_name.is_empty() {
            "*"
        } else {
            self.config.cluster_name.as_str()
        };
        for object in &target.objects {
            let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
            let (Some(api_version), Some(kind)) = (text("/apiVersion"), text("/kind")) else {
                continue;
            };
            let name = text("/metadata/name").unwrap_or("?");
            let Ok(resolved) = self.cluster.resolve(api_version, kind).await else {
                continue;
            };
            let namespace = resolved.namespaced.then(|| {
                text("/metadata/namespace")
                    .filter(|n| !n.is_empty())
                    .unwrap_or(if target.namespace.is_empty() {
                        "default"
                    } else {
                        target.namespace.as_str()
                    })
            });
            if let Err(violation) = crate::policy::check_object(
                spec,
                project,
                cluster,
                &resolved.resource.group,
                kind,
                name,
                namespace,
            ) {
                let what = match namespace {
                    Some(ns) => format!("{kind} {ns}/{name}"),
                    None => format!("{kind} {name}"),
                };
                refused.push(format!("{what}: {violation}"));
            }
        }
        refused
    }

    /// Whether a sync operation is running for the app `cr_name`.
    pub fn is_syncing(&self, cr_name: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(cr_name)
    }

    /// Full and reused comparisons so far.
    pub fn compare_counts(&self) -> (u64, u64) {
        self.compares.get()
    }

    /// The index of managed objects' resourceVersions.
    pub fn live_index(&self) -> &LiveIndex {
        &self.live
    }

    fn remember<R>(&self, cr_name: &str, f: impl FnOnce(&mut AppMemory) -> R) -> R {
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        f(memory.entry(cr_name.to_owned()).or_default())
    }

    /// Forgets everything about an app (deleted).
    fn forget(&self, cr_name: &str) {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cr_name);
    }

    /// Whether the last full comparison of the app still holds: same inputs, every compared object at the
    /// same resourceVersion (as the watchers see it), and not older than the full-compare interval.
    fn comparison_holds(&self, cr_name: &str, inputs: u64) -> bool {
        let interval = self.config.full_compare_interval;
        self.remember(cr_name, |m| {
            let Some(memo) = &m.comparison else {
                return false;
            };
            memo.inputs == inputs
                && memo.at.elapsed() < interval
                && memo.live.iter().all(|(key, version)| {
                    self.live
                        .resource_version(key)
                        .is_some_and(|v| v.as_deref() == Some(version.as_str()))
                })
        })
    }

    /// Records a full comparison: kept for reuse only when it found the app Synced with every object live.
    fn memo_comparison(
        &self,
        cr_name: &str,
        sources: &[ApplicationSource],
        target: &AppTarget,
        comparison: &Comparison,
        generation: Option<i64>,
        policies: u64,
    ) {
        let live: Option<Vec<(ResourceKey, String)>> = comparison
            .resources
            .iter()
            .map(|r| {
                let version = r
                    .live
                    .as_ref()?
                    .pointer("/metadata/resourceVersion")?
                    .as_str()?;
                Some((r.key.clone(), version.to_owned()))
            })
            .collect();
        let memo = match live {
            Some(live)
                if comparison.sync_status() == SyncStatus::Synced
                    && !self.config.full_compare_interval.is_zero() =>
            {
                // The next reconcile's inventory is this comparison's resources.
                let inventory: Vec<ResourceKey> =
                    comparison.resources.iter().map(|r| r.key.clone()).collect();
                Some(ComparisonMemo {
                    inputs: CompareInputs {
                        sources,
                        commit: &comparison.revision,
                        app: &target.app,
                        app_label: &target.app_label,
                        namespace: &target.namespace,
                        inventory: &inventory,
                        generation,
                        policies,
                    }
                    .hash(),
                    live,
                    at: Instant::now(),
                })
            }
            _ => None,
        };
        self.remember(cr_name, |m| m.comparison = memo);
    }

    fn jittered(&self, interval: Duration) -> Duration {
        let factor = rand::rng().random_range(0.9..1.1);
        interval.mul_f64(factor)
    }

    /// Starts a watcher on `resource` (once per kind) that triggers the owning
    /// app's reconcile on any change of a managed object: drift detection for
    /// self-heal, and prompt health updates.
    fn watch_kind(&self, resource: &ApiResource) {
        let key = (
            resource.group.clone(),
            resource.version.clone(),
            resource.kind.clone(),
        );
        {
            let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
            if !watched.insert(key) {
                return;
            }
        }
        // Metadata only: the index needs names and resourceVersions, the trigger the app label.
        let api: Api<kube::core::PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.cluster.client().clone(), resource);
        let triggers = self.triggers.clone();
        let namespace = self.config.namespace.clone();
        let live = Arc::clone(&self.live);
        let (group, kind) = (resource.group.clone(), resource.kind.clone());
        let config = watcher::Config::default().labels(APP_LABEL);
        tokio::spawn(async move {
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let Ok(event) = event else { continue };
                let touched = match event {
                    watcher::Event::Init => {
                        live.list_started(&group, &kind);
                        continue;
                    }
                    watcher::Event::InitDone => {
                        live.list_done(&group, &kind);
                        continue;
                    }
                    watcher::Event::InitApply(obj) => {
                        let meta = &obj.metadata;
                        live.listed(
                            &group,
                            &kind,
                            meta.namespace.as_deref().unwrap_or_default(),
                            meta.name.as_deref().unwrap_or_default(),
                            meta.resource_version.as_deref().unwrap_or_default(),
                        );
                        obj
                    }
                    watcher::Event::Apply(obj) => {
                        let meta = &obj.metadata;
                        live.applied(
                            &group,
                            &kind,
                            meta.namespace.as_deref().unwrap_or_default(),
                            meta.name.as_deref().unwrap_or_default(),
                            meta.resource_version.as_deref().unwrap_or_default(),
                        );
                        obj
                    }
                    watcher::Event::Delete(obj) => {
                        let meta = &obj.metadata;
                        live.deleted(
                            &group,
                            &kind,
                            meta.namespace.as_deref().unwrap_or_default(),
                            meta.name.as_deref().unwrap_or_default(),
                        );
                        obj
                    }
                };
                let owner = touched
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(APP_LABEL));
                if let Some(owner) = owner
                    && triggers
                        .send(ObjectRef::new(owner).within(&namespace))
                        .is_err()
                {
                    return;
                }
            }
        });
    }

    /// Renders what a reconcile wants: the one source of a single-source app, or every source of a
    /// multi-source app (refs checked out first, for `$ref/…` value files), their objects combined. Returns each
    /// source's resolved revision (commit or chart version) and the objects.
    #[tracing::instrument(skip_all, fields(app = %app.qualified_name(), sources = wanted.sources.len()))]
    async fn render_wanted(
        &self,
        app: &Application,
        wanted: &Wanted,
        mode: RefreshMode,
    ) -> Result<(Vec<String>, Vec<Value>), String> {
        if mode == RefreshMode::Hard {
            // A CRD installed by someone else is in the capabilities Helm charts see from now on.
            self.cluster.forget_capabilities().await;
        }
        if let Some((source, revision)) = wanted.single() {
            let (commit, objects) = self
                .render_source(app, source, revision, mode, &SourceRefs::default())
                .await?;
            return Ok((vec![commit], objects));
        }
        // The refs' checkouts, held (leased) until every source is rendered.
        let mut refs = SourceRefs::default();
        let mut resolved: Vec<Option<String>> = vec![None; wanted.sources.len()];
        for (i, (source, revision)) in wanted.sources.iter().zip(&wanted.revisions).enumerate() {
            if source.ref_name.is_empty() {
                continue;
            }
            let at = |e: String| format!("spec.sources[{i}] (ref {}): {e}", source.ref_name);
            let (commit, checkout) = self
                .checkout(source, revision, "", mode)
                .await
                .map_err(at)?;
            resolved[i] = Some(commit.clone());
            refs.insert(&source.ref_name, checkout, commit);
        }
        let mut per_source = Vec::new();
        for (i, (source, revision)) in wanted.sources.iter().zip(&wanted.revisions).enumerate() {
            if !source.is_rendered() {
                continue;
            }
            let (commit, objects) = self
                .render_source(app, source, revision, mode, &refs)
                .await
                .map_err(|e| format!("spec.sources[{i}]: {e}"))?;
            resolved[i] = Some(commit);
            per_source.push(objects);
        }
        // Objects of a namespaced kind without a namespace are the destination namespace's (as the sync applies
        // them), so two sources naming one object with and without its namespace are one object (as Argo CD).
        let destination = app.spec.destination.namespace.as_str();
        if !destination.is_empty() {
            for object in per_source.iter_mut().flatten() {
                let text = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_owned);
                let (Some(api_version), Some(kind)) = (text("/apiVersion"), text("/kind")) else {
                    continue;
                };
                if text("/metadata/namespace").is_some_and(|n| !n.is_empty()) {
                    continue;
                }
                let namespaced = self
                    .cluster
                    .resolve(&api_version, &kind)
                    .await
                    .is_ok_and(|r| r.namespaced);
                if namespaced
                    && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.insert("namespace".into(), Value::String(destination.to_owned()));
                }
            }
        }
        let (objects, replaced) = crate::sources::combine(per_source);
        if !replaced.is_empty() {
            tracing::warn!(app = %app.qualified_name(), objects = %replaced.join(", "), "Several sources render the same objects: the last source's are used.");
        }
        let revisions = resolved
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        Ok((revisions, objects))
    }

    /// Resolves `revision` of a git source (empty: `HEAD`) and materialises its checkout with `path` inside;
    /// errors are shown without the spoke's cache paths.
    async fn checkout(
        &self,
        source: &ApplicationSource,
        revision: &str,
        path: &str,
        mode: RefreshMode,
    ) -> Result<(String, crate::git::Checkout), String> {
        let url = RepoUrl::parse(&source.repo_url).map_err(|e| e.to_string())?;
        let revision = if revision.is_empty() {
            Revision::head()
        } else {
            Revision::new(revision)
        };
        let repo_cache = self.git.repo_cache_path(&url);
        let cache_dir = repo_cache.parent().and_then(std::path::Path::parent);
        let commit = self
            .git
            .refresh(&url, &revision, mode)
            .await
            .map_err(|e: GitError| without_host_paths(&e.to_string(), None, cache_dir))?;
        let checkout = self
            .git
            .materialise(&url, commit, path)
            .await
            .map_err(|e| without_host_paths(&e.to_string(), None, cache_dir))?;
        Ok((commit.to_string(), checkout))
    }

    /// Renders one source at `revision` (or its target revision). A Helm chart of a chart repository is
    /// rendered at the version its target revision resolves to, which is returned as the revision.
    #[tracing::instrument(skip_all, fields(app = %app.qualified_name(), repo = %source.repo_url, path = %source.path, revision))]
    async fn render_source(
        &self,
        app: &Application,
        source: &ApplicationSource,
        revision: &str,
        mode: RefreshMode,
        refs: &SourceRefs,
    ) -> Result<(String, Vec<Value>), String> {
        if source.is_oci_artifact() {
            return self
                .render_artifact(app, source, revision, mode, refs)
                .await;
        }
        if !source.chart.is_empty() {
            // A rollback or a sync to a given version renders that version, not what the range resolves to now.
            if !revision.is_empty() && revision != source.target_revision {
                let pinned = ApplicationSource {
                    target_revision: revision.to_owned(),
                    ..source.clone()
                };
                return self.render_repo_chart(app, &pinned, mode, refs).await;
            }
            return self.render_repo_chart(app, source, mode, refs).await;
        }
        let (commit_text, checkout) = self.checkout(source, revision, &source.path, mode).await?;
        let url = RepoUrl::parse(&source.repo_url).map_err(|e| e.to_string())?;
        // `<cache>/repos/<key>.git`: the cache directory, hidden from messages.
        let repo_cache = self.git.repo_cache_path(&url);
        let tree = Tree {
            root: checkout.root().to_path_buf(),
            dir: checkout.dir().to_path_buf(),
            revision: commit_text.clone(),
            app_revision: commit_text.clone(),
            cache_key: format!("{}@{commit_text}", url.cache_key()),
            cache_dir: repo_cache
                .parent()
                .and_then(std::path::Path::parent)
                .map(std::path::Path::to_path_buf),
            // The checkout lease keeps the directory alive while rendering.
            guard: checkout,
        };
        let objects = self
            .render_tree(
                app,
                source,
                tree,
                source.helm.is_some(),
                self.render_parts(app, refs, mode),
            )
            .await?;
        Ok((commit_text, objects))
    }

    /// Renders the directory of `tree`: with helm when `helm` (the chart directory, its dependencies fetched),
    /// else as plain YAML, kustomize (`helmCharts` inflated by edgecd-helm with this cluster's capabilities) or
    /// Jsonnet with Argo CD's build environment. Application and ApplicationSet documents become this spoke's
    /// own CRs (app of apps). Errors name files relative to the tree's root, never a host path.
    async fn render_tree<G: Send + 'static>(
        &self,
        app: &Application,
        source: &ApplicationSource,
        tree: Tree<G>,
        helm: bool,
        parts: RenderParts,
    ) -> Result<Vec<Value>, String> {
        let Tree {
            root,
            dir,
            revision,
            app_revision,
            cache_key,
            cache_dir,
            guard,
        } = tree;
        let hide = |e: String| without_host_paths(&e, Some(&root), cache_dir.as_deref());
        if helm {
            let capabilities = self
                .cluster
                .capabilities()
                .await
                .map_err(|e| e.to_string())?;
            let app_name = app.app_name();
            let context = edgecd_helm::RenderContext {
                app_name: &app_name,
                namespace: &app.spec.destination.namespace,
                capabilities: &capabilities,
            };
            let objects = self
                .helm
                .render_dir_with(source, &context, &parts.inputs(), &root, &dir, &revision)
                .await
                .map_err(|e| hide(e.to_string()))?;
            drop(guard);
            return crate::argo::edge_children(objects.as_ref().clone(), &self.config.namespace);
        }
        // Argo CD's build environment ($ARGOCD_APP_NAME, $ARGOCD_APP_REVISION, …) for kustomize values and Jsonnet variables.
        let env = BuildEnv::for_app(
            &app.app_name(),
            &app.spec.destination.namespace,
            app.project(),
            &app_revision,
            source,
        );
        let options = source.render_options_in(root.clone(), &env);
        let renders = Arc::clone(&self.renders);
        let span = tracing::info_span!("render", commit = %revision);
        // A kustomization's helmCharts are inflated by edgecd-helm, with this cluster's capabilities.
        let inflator = crate::helm_charts::SpokeInflator {
            handle: tokio::runtime::Handle::current(),
            helm: Arc::clone(&self.helm),
            cluster: self.cluster.clone(),
            credentials: parts.credentials,
            allowed_repos: parts.allowed,
            hard: parts.hard,
            repo_url: source.repo_url.clone(),
            root: root.clone(),
            commit: revision,
            budget: crate::helm_charts::InflationBudget::default(),
        };
        let objects = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            // The guard (a checkout lease) keeps the directory alive while rendering.
            let _guard = guard;
            RenderCache::render_shared(&renders, &cache_key, &dir, &options, Some(&inflator))
                .map(|objects| objects.as_ref().clone())
        })
        .await
        .map_err(|e| format!("render task failed: {e}"))?
        .map_err(|e| hide(e.to_string()))?;
        crate::argo::edge_children(objects, &self.config.namespace)
    }

    /// Renders an OCI artifact source (Argo CD's OCI sources: `repoURL: oci://registry/path/name`, no `chart`)
    /// at the tag `revision` or its target revision resolves to: the artifact's content layer, verified and
    /// unpacked once per digest by edgecd-helm, and `source.path` inside it rendered as a git directory is
    /// (plain YAML, kustomize, Jsonnet), or with helm when the source has `helm` options or the layer is a
    /// Helm chart. Returns the tag and the objects.
    async fn render_artifact(
        &self,
        app: &Application,
        source: &ApplicationSource,
        revision: &str,
        mode: RefreshMode,
        refs: &SourceRefs,
    ) -> Result<(String, Vec<Value>), String> {
        // A rollback or a sync to a given tag renders that tag, not what the range resolves to now.
        let pinned;
        let source = if !revision.is_empty() && revision != source.target_revision {
            pinned = ApplicationSource {
                target_revision: revision.to_owned(),
                ..source.clone()
            };
            &pinned
        } else {
            source
        };
        let parts = self.render_parts(app, refs, mode);
        // Checked at the hub, and again here: an Application written at the spoke has not been through the hub.
        edgecd_core::app::check_source_path(&source.path)
            .map_err(|e| format!("spec.source.path: {e}"))?;
        let cache_dir = self.helm.config().dir.clone();
        let artifact = self
            .helm
            .fetch_artifact(source, &parts.inputs())
            .await
            .map_err(|e| without_host_paths(&e.to_string(), None, Some(&cache_dir)))?;
        let dir = artifact.root.join(&source.path);
        // The tree holds no links; a `..` that stays inside is allowed by the check above, so the resolved
        // directory is checked to be inside the tree too.
        let inside = match (dir.canonicalize(), artifact.root.canonicalize()) {
            (Ok(dir), Ok(root)) => dir.starts_with(root),
            _ => false,
        };
        if !inside || !dir.is_dir() {
            return Err(format!(
                "spec.source.path: {:?} is not a directory of the artifact {} {}",
                source.path, source.repo_url, artifact.version
            ));
        }
        let digest = format!("sha256:{}", artifact.digest);
        let tree = Tree {
            root: artifact.root.clone(),
            dir,
            cache_key: format!("{}@{digest}", source.repo_url),
            revision: digest,
            app_revision: artifact.revision.clone(),
            cache_dir: Some(cache_dir),
            guard: (),
        };
        let helm = source.helm.is_some() || artifact.helm_chart;
        let objects = self.render_tree(app, source, tree, helm, parts).await?;
        Ok((artifact.revision, objects))
    }

    /// Renders a chart of a Helm chart repository (`source.chart`) with the cluster's capabilities and the
    /// repository credential whose URL prefix matches; returns the chart version and the objects.
    async fn render_repo_chart(
        &self,
        app: &Application,
        source: &ApplicationSource,
        mode: RefreshMode,
        refs: &SourceRefs,
    ) -> Result<(String, Vec<Value>), String> {
        let capabilities = self
            .cluster
            .capabilities()
            .await
            .map_err(|e| e.to_string())?;
        // The longest matching URL prefix wins, for the chart and for each dependency it fetches.
        let parts = self.render_parts(app, refs, mode);
        let inputs = parts.inputs();
        let app_name = app.app_name();
        let context = edgecd_helm::RenderContext {
            app_name: &app_name,
            namespace: &app.spec.destination.namespace,
            capabilities: &capabilities,
        };
        let (version, objects) = self
            .helm
            .render_repo_chart_with(source, &context, &inputs)
            .await
            .map_err(|e| e.to_string())?;
        let objects = crate::argo::edge_children(objects.as_ref().clone(), &self.config.namespace)?;
        Ok((version, objects))
    }

    /// The reuse check before rendering, for an app found Synced with no operation or refresh requested: when
    /// its revision still points to the commit of the last full comparison (asked of the git cache's
    /// `ls-remote`, which answers from memory within its TTL) and nothing else the comparison depends on
    /// changed (see [`comparison_holds`](Self::comparison_holds)), the result in the status stands and nothing
    /// is fetched, materialised or rendered.
    async fn reuse_before_render(
        &self,
        app: &Application,
        source: &ApplicationSource,
        revision: &str,
        status: &ApplicationStatus,
        policies: u64,
    ) -> Early {
        let Some(cr_name) = app.metadata.name.as_deref() else {
            return Early::Render;
        };
        // A chart of a chart repository has no git revision to ask for: rendered (its index is cached briefly).
        if !self.remember(cr_name, |m| m.comparison.is_some())
            || !source.chart.is_empty()
            || source.is_oci_artifact()
        {
            return Early::Render;
        }
        let Ok(url) = RepoUrl::parse(&source.repo_url) else {
            return Early::Render;
        };
        let revision = if revision.is_empty() {
            Revision::head()
        } else {
            Revision::new(revision)
        };
        let commit = match self.git.ls_remote(&url, &revision).await {
            Ok(Some(commit)) => commit.to_string(),
            // A commit id: rendered and checked as usual.
            Ok(None) => return Early::Render,
            // As the refresh before rendering would fail: reported the same way, without asking the server twice.
            Err(error) => return Early::GitFailed(error.to_string()),
        };
        if status.sync.revision != commit {
            return Early::Render;
        }
        let inventory: Vec<ResourceKey> = status.resources.iter().map(|r| r.key.clone()).collect();
        let inputs = CompareInputs {
            sources: std::slice::from_ref(source),
            commit: &commit,
            app: &app.qualified_name(),
            app_label: cr_name,
            namespace: &app.spec.destination.namespace,
            inventory: &inventory,
            generation: app.metadata.generation,
            policies,
        }
        .hash();
        if self.comparison_holds(cr_name, inputs) {
            Early::Reused
        } else {
            Early::Render
        }
    }

    async fn reconcile_app(&self, app: &Application) -> Result<Outcome, ReconcileError> {
        let now = OffsetDateTime::now_utc();
        // Read before the policies are checked: a comparison is remembered under the generation it was checked
        // against, so a policy update in between only causes one more full comparison.
        let policies = self.policies.generation();
        let mut status = app.status.clone().unwrap_or_default();
        let previous = status.clone();
        let mut interrupted = false;
        if let Some(op) = status.operation_state.as_mut()
            && matches!(
                op.phase,
                OperationPhase::Running | OperationPhase::Terminating
            )
        {
            interrupted = true;
            // The controller never reconciles an app twice at once, so nothing runs for it now: an operation
            // still shown as running was cut short (the spoke stopped), or termination was asked of nothing.
            op.message = if op.phase == OperationPhase::Terminating {
                crate::sync::terminated_message(
                    "a Terminating request in the Application's status",
                    "(it was not running)",
                )
            } else {
                "Operation interrupted: the spoke stopped while it ran".to_owned()
            };
            op.phase = OperationPhase::Failed;
            op.finished_at = Some(now);
        }
        let request = app.operation.clone();
        let hard = app
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REFRESH_ANNOTATION))
            .is_some_and(|v| v == "hard");
        let mode = if hard {
            RefreshMode::Hard
        } else {
            RefreshMode::Normal
        };

        // What to render: the spec, or a history entry for a rollback.
        let wanted = match request.as_ref().and_then(|r| r.rollback.as_ref()) {
            Some(rollback) => match status.history.iter().find(|h| h.id == rollback.id) {
                Some(entry) => Wanted::from_history(entry),
                None => Err(format!(
                    "rollback: no history entry with id {}",
                    rollback.id
                )),
            },
            None => {
                let sync_revision = request
                    .as_ref()
                    .and_then(|r| r.sync.as_ref())
                    .map(|s| s.revision.clone())
                    .filter(|r| !r.is_empty());
                Wanted::from_spec(&app.spec, sync_revision)
            }
        };
        let wanted = match wanted {
            Ok(wanted) => wanted,
            Err(message) => {
                status.operation_state = Some(finished_operation(
                    request.as_ref(),
                    OperationPhase::Failed,
                    &message,
                    now,
                ));
                return Ok(self.finish(status, &previous, true, now));
            }
        };

        let refresh_requested = app
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION));
        let early = if request.is_none()
            && !refresh_requested
            && !interrupted
            && status.sync.status == SyncStatus::Synced
            && let Some((source, revision)) = wanted.single()
        {
            self.reuse_before_render(app, source, revision, &status, policies)
                .await
        } else {
            // A multi-source app is rendered (each source's ls-remote and render are cached); the comparison
            // after rendering is still reused when nothing changed.
            Early::Render
        };
        let rendered = match early {
            Early::Reused => {
                // Nothing the comparison depends on changed: its result (in the status) stands.
                self.compares
                    .reused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(app = %app.qualified_name(), "Unchanged since the last comparison (not rendered).");
                // Objects no app tracks do not change the comparison: looked for on every reconcile.
                self.check_orphans(app, &mut status.conditions, now).await;
                return Ok(self.finish(status, &previous, false, now));
            }
            Early::GitFailed(message) => Err(message),
            Early::Render => self.render_wanted(app, &wanted, mode).await,
        };
        let (revisions, objects) = match rendered {
            Ok(rendered) => rendered,
            Err(message) => {
                // Never touch live objects when the source cannot be rendered.
                tracing::warn!(app = %app.qualified_name(), error = %message, "Cannot render the app's source.");
                decide::set_condition(
                    &mut status.conditions,
                    conditions::COMPARISON_ERROR,
                    Some(message.clone()),
                    now,
                );
                status.sync = SyncReport {
                    status: SyncStatus::Unknown,
                    revision: status.sync.revision.clone(),
                };
                if request.is_some() {
                    status.operation_state = Some(finished_operation(
                        request.as_ref(),
                        OperationPhase::Error,
                        &message,
                        now,
                    ));
                }
                return Ok(self.finish(status, &previous, request.is_some(), now));
            }
        };

        let commit = edgecd_core::app::joined_revision(&revisions);
        let inventory: Vec<ResourceKey> = status.resources.iter().map(|r| r.key.clone()).collect();
        let target = AppTarget {
            app: app.qualified_name(),
            app_label: app.metadata.name.clone().unwrap_or_default(),
            namespace: app.spec.destination.namespace.clone(),
            revision: commit.clone(),
            objects,
            inventory,
            ignore_differences: app.spec.ignore_differences.clone(),
        };
        let cr_name = app.metadata.name.clone().unwrap_or_default();
        let generation = app.metadata.generation;
        let violations = match self.policies.get(app.project()) {
            Some(policy) => {
                self.policy_violations(app.project(), &policy, &wanted.sources, &target)
                    .await
            }
            None => Vec::new(),
        };
        let refused = (!violations.is_empty()).then(|| {
            format!(
                "refused by the project's policy, nothing was applied: {}",
                violations.join("; ")
            )
        });
        decide::set_condition(
            &mut status.conditions,
            conditions::POLICY_VIOLATION,
            refused.clone(),
            now,
        );
        if let Some(message) = refused {
            tracing::warn!(app = %app.qualified_name(), %message, "Project policy refuses the app.");
            self.remember(&cr_name, |m| m.comparison = None);
            status.sync = SyncReport {
                status: SyncStatus::Unknown,
                revision: commit.clone(),
            };
            if request.is_some() {
                status.operation_state = Some(finished_operation(
                    request.as_ref(),
                    OperationPhase::Failed,
                    &message,
                    now,
                ));
            }
            return Ok(self.finish(status, &previous, request.is_some(), now));
        }
        if request.is_none()
            && !refresh_requested
            && status.sync.status == SyncStatus::Synced
            && status.sync.revision == commit
        {
            let inputs = CompareInputs {
                sources: &wanted.sources,
                commit: &commit,
                app: &target.app,
                app_label: &target.app_label,
                namespace: &target.namespace,
                inventory: &target.inventory,
                generation,
                policies,
            }
            .hash();
            if self.comparison_holds(&cr_name, inputs) {
                // Nothing the comparison depends on changed: its result (in the status) stands.
                self.compares
                    .reused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(app = %app.qualified_name(), %commit, "Unchanged since the last comparison.");
                self.check_orphans(app, &mut status.conditions, now).await;
                return Ok(self.finish(status, &previous, false, now));
            }
        }
        self.compares
            .full
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let comparison = match compare(&self.cluster, &target).await {
            Ok(comparison) => comparison,
            // The network or an overloaded server: retried soon, the status left as it was.
            Err(error) if error.is_transient() => return Err(error.into()),
            Err(error) => {
                // A live object the spoke may not read (RBAC), or one the server refuses to show: the app
                // says why, and nothing is applied.
                let message = format!("cannot compare with the cluster: {error}");
                tracing::warn!(app = %app.qualified_name(), error = %message, "Cannot compare the app with the cluster.");
                self.remember(&cr_name, |m| m.comparison = None);
                decide::set_condition(
                    &mut status.conditions,
                    conditions::COMPARISON_ERROR,
                    Some(message.clone()),
                    now,
                );
                status.sync = SyncReport {
                    status: SyncStatus::Unknown,
                    revision: commit.clone(),
                };
                if request.is_some() {
                    status.operation_state = Some(finished_operation(
                        request.as_ref(),
                        OperationPhase::Error,
                        &message,
                        now,
                    ));
                }
                let mut outcome = self.finish(status, &previous, request.is_some(), now);
                // Permissions are often fixed by hand: look again well before the next poll.
                outcome.requeue = outcome.requeue.min(COMPARE_RETRY);
                return Ok(outcome);
            }
        };
        self.watch_kinds(&comparison).await;
        let comparison_errors =
            (!comparison.errors.is_empty()).then(|| comparison.errors.join("; "));
        decide::set_condition(
            &mut status.conditions,
            conditions::COMPARISON_ERROR,
            comparison_errors,
            now,
        );

        // Run a requested operation, or decide on automated sync.
        let mut ran = None;
        if let Some(request) = &request {
            let asked = match (&request.sync, &request.rollback) {
                (_, Some(rollback)) => Asked {
                    prune: rollback.prune,
                    dry_run: rollback.dry_run,
                    rollback_of: Some(rollback.id),
                    ..Asked::default()
                },
                (Some(sync_req), None) => Asked {
                    prune: sync_req.prune,
                    dry_run: sync_req.dry_run,
                    force: sync_req.force,
                    only: sync_req.resources.clone(),
                    options: sync_req.sync_options.clone(),
                    rollback_of: None,
                },
                (None, None) => Asked::default(),
            };
            let initiated = if request.initiated_by.is_empty() {
                "user".to_owned()
            } else {
                request.initiated_by.clone()
            };
            ran = Some(
                self.run_sync(
                    app,
                    (&wanted, &revisions),
                    &target,
                    &comparison,
                    &asked,
                    request.command_id.clone(),
                    initiated,
                    0,
                    &mut status,
                )
                .await,
            );
        } else {
            let facts = Facts {
                spec: &app.spec,
                sync: comparison.sync_status(),
                revision: &commit,
                rendered: target.objects.len(),
                last_operation: status.operation_state.as_ref(),
                now,
            };
            match decide::auto_sync(&facts) {
                decision @ (AutoSync::Sync | AutoSync::Heal) => {
                    let initiated = if decision == AutoSync::Heal {
                        decide::SELF_HEAL
                    } else {
                        decide::AUTOMATED
                    };
                    let prune = app.spec.automated().is_some_and(|a| a.prune);
                    let retry_count = match &status.operation_state {
                        Some(last)
                            if last.revision == commit
                                && last.phase != OperationPhase::Succeeded =>
                        {
                            last.retry_count + 1
                        }
                        _ => 0,
                    };
                    ran = Some(
                        self.run_sync(
                            app,
                            (&wanted, &revisions),
                            &target,
                            &comparison,
                            &Asked {
                                prune,
                                ..Asked::default()
                            },
                            String::new(),
                            initiated.into(),
                            retry_count,
                            &mut status,
                        )
                        .await,
                    );
                }
                AutoSync::RetryAfter(delay) => {
                    self.remember(&cr_name, |m| m.comparison = None);
                    let mut outcome = self.status_from(&comparison, status, &previous, false, now);
                    outcome.requeue = delay;
                    return Ok(outcome);
                }
                AutoSync::Skip(reason) => {
                    tracing::debug!(app = %app.qualified_name(), reason, "No automated sync.")
                }
            }
        }

        let comparison = match ran {
            Some(new_inventory) => {
                let after = AppTarget {
                    inventory: new_inventory,
                    ..target
                };
                let comparison = compare(&self.cluster, &after).await?;
                self.watch_kinds(&comparison).await;
                self.memo_comparison(
                    &cr_name,
                    &wanted.sources,
                    &after,
                    &comparison,
                    generation,
                    policies,
                );
                comparison
            }
            None => {
                self.memo_comparison(
                    &cr_name,
                    &wanted.sources,
                    &target,
                    &comparison,
                    generation,
                    policies,
                );
                comparison
            }
        };
        self.check_orphans(app, &mut status.conditions, now).await;
        let mut outcome = self.status_from(&comparison, status, &previous, request.is_some(), now);
        // An operation at another source or revision than the spec's (a rollback, a sync to a given
        // revision) leaves a status that describes what it applied: compare with the spec again
        // soon, so the app shows OutOfSync against its target as Argo CD does, not at the next poll.
        if request.is_some() && !wanted.is_spec(&app.spec) {
            outcome.requeue = outcome.requeue.min(self.config.progress_interval);
        }
        Ok(outcome)
    }

    /// Runs a sync and records it in `status`; returns the new inventory.
    #[allow(clippy::too_many_arguments)]
    async fn run_sync(
        &self,
        app: &Application,
        (wanted, revisions): (&Wanted, &[String]),
        target: &AppTarget,
        comparison: &Comparison,
        asked: &Asked,
        command_id: String,
        initiated_by: String,
        retry_count: u32,
        status: &mut ApplicationStatus,
    ) -> Vec<ResourceKey> {
        let dry_run = asked.dry_run;
        let out_of_sync_only = app.spec.sync_option_enabled("ApplyOutOfSyncOnly")
            || asked
                .options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(crate::crd::APPLY_OUT_OF_SYNC_ONLY));
        let skip = if out_of_sync_only {
            comparison
                .resources
                .iter()
                .filter(|r| r.sync == SyncStatus::Synced && !r.requires_pruning)
                .map(|r| r.key.clone())
                .collect()
        } else {
            Default::default()
        };
        // An option of the operation wins over the app's (Argo CD's `sync --sync-option`).
        let option = |key: &str| -> Option<String> {
            asked
                .options
                .iter()
                .find_map(|opt| {
                    let (k, v) = opt.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case(key)
                        .then(|| v.trim().to_owned())
                })
                .or_else(|| {
                    app.spec
                        .sync_policy
                        .as_ref()
                        .and_then(|p| p.option(key))
                        .map(str::to_owned)
                })
        };
        let enabled = |key: &str| option(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let options = SyncOptions {
            prune: asked.prune,
            dry_run,
            create_namespace: enabled("CreateNamespace"),
            prune_last: enabled("PruneLast"),
            replace: asked.force,
            only: asked.only.clone(),
            skip,
            namespace_metadata: app.spec.managed_namespace_metadata.clone(),
            prune_propagation: option("PrunePropagationPolicy")
                .and_then(|v| crate::cluster::Propagation::parse(&v))
                .unwrap_or(self.config.sync.prune_propagation),
            fail_on_shared_resource: enabled("FailOnSharedResource"),
            respect_ignore_differences: enabled("RespectIgnoreDifferences"),
            replace_objects: enabled("Replace"),
            skip_field_validation: option("Validate")
                .is_some_and(|v| v.eq_ignore_ascii_case("false")),
            ..self.config.sync.clone()
        };
        let cr_name = app.metadata.name.clone().unwrap_or_default();
        let termination = Termination::default();
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cr_name.clone(), termination.clone());
        self.report_running(
            &cr_name,
            &target.revision,
            &command_id,
            &initiated_by,
            retry_count,
        )
        .await;
        let watcher = tokio::spawn(watch_for_termination(
            Api::namespaced(self.cluster.client().clone(), &self.config.namespace),
            cr_name.clone(),
            termination.clone(),
        ));
        let outcome = sync(&self.cluster, target, &options, &termination).await;
        watcher.abort();
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&cr_name);
        tracing::info!(
            app = %app.qualified_name(),
            revision = %target.revision,
            phase = ?outcome.phase,
            message = %outcome.message,
            "Sync finished."
        );
        self.observe(|o| o.synced(outcome.phase));
        let trace_id = operation_trace_id(app.operation.as_ref());
        let operation = OperationState {
            command_id,
            phase: outcome.phase,
            message: outcome.message.clone(),
            started_at: outcome.started_at,
            finished_at: Some(outcome.finished_at),
            revision: target.revision.clone(),
            resources: outcome.resources.clone(),
            retry_count,
            initiated_by: initiated_by.clone(),
            trace_id: trace_id.clone(),
        };
        let sync_error =
            (outcome.phase != OperationPhase::Succeeded).then(|| outcome.message.clone());
        decide::set_condition(
            &mut status.conditions,
            conditions::SYNC_ERROR,
            sync_error,
            outcome.finished_at,
        );
        // A selective sync is not a deployment of the revision: nothing to roll back to (as in Argo CD).
        if !dry_run && options.only.is_empty() {
            let entry = HistoryEntry {
                id: decide::next_history_id(&status.history),
                revision: target.revision.clone(),
                // A multi-source app's entry names every source and its revision (a rollback deploys them).
                source: match wanted.single() {
                    Some((source, _)) => source.clone(),
                    None => ApplicationSource::default(),
                },
                sources: if wanted.multi {
                    wanted.sources.clone()
                } else {
                    vec![]
                },
                revisions: if wanted.multi {
                    revisions.to_vec()
                } else {
                    vec![]
                },
                started_at: outcome.started_at,
                deployed_at: outcome.finished_at,
                result: outcome.phase,
                initiated_by,
                resources: outcome.resources,
                trace_id,
                rollback_of: asked.rollback_of,
            };
            decide::push_history(&mut status.history, entry, app.spec.history_limit());
        }
        status.operation_state = Some(operation);
        if dry_run {
            target.inventory.clone()
        } else {
            outcome.applied
        }
    }

    /// Sets or clears the `OrphanedResourceWarning` condition: only for an app whose project (as the hub sent it)
    /// has `orphanedResources` with `warn`, and a destination namespace. Run on every reconcile (also those that
    /// reuse the last comparison); the namespace's listing is shared by its apps and reused for the poll interval
    /// (at most a minute), so a namespace costs at most one listing pass per interval. A listing that fails
    /// leaves the condition as it was.
    async fn check_orphans(
        &self,
        app: &Application,
        found: &mut Vec<edgecd_core::app::Condition>,
        now: OffsetDateTime,
    ) {
        let namespace = &app.spec.destination.namespace;
        let policy = self
            .policies
            .get(app.project())
            .and_then(|p| p.orphaned_resources)
            .filter(|o| o.warns() && !namespace.is_empty());
        let Some(policy) = policy else {
            decide::set_condition(found, conditions::ORPHANED_RESOURCE_WARNING, None, now);
            return;
        };
        let ttl = self.config.poll_interval.min(Duration::from_secs(60));
        match self.orphans.get(&self.cluster, namespace, ttl).await {
            Ok(listing) => {
                let report = crate::orphans::Report::of(&listing, &policy);
                decide::set_condition(
                    found,
                    conditions::ORPHANED_RESOURCE_WARNING,
                    (report.count > 0).then(|| report.message()),
                    now,
                );
            }
            Err(error) => {
                tracing::debug!(app = %app.qualified_name(), %error, "Cannot list the namespace's orphans.");
            }
        }
    }

    /// Shows the operation as Running in the CR while it runs (so it can be seen and terminated). Best effort:
    /// the final status is written when the operation ends.
    async fn report_running(
        &self,
        cr_name: &str,
        revision: &str,
        command_id: &str,
        initiated_by: &str,
        retry_count: u32,
    ) {
        let api: Api<Application> =
            Api::namespaced(self.cluster.client().clone(), &self.config.namespace);
        let started = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let patch = serde_json::json!({"status": {"operationState": {
            "commandId": command_id,
            "phase": OperationPhase::Running,
            "message": "sync in progress",
            "startedAt": started,
            "finishedAt": null,
            "revision": revision,
            "resources": null,
            "retryCount": retry_count,
            "initiatedBy": initiated_by,
        }}});
        match api
            .patch_status(cr_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => self.remember(cr_name, |m| {
                m.cr_version = written.metadata.resource_version.clone();
                m.own_write = written.metadata.resource_version.clone();
            }),
            Err(error) => {
                tracing::debug!(app = cr_name, %error, "Cannot show the operation as Running.");
            }
        }
    }

    /// The per-resource differences between git and the cluster, for the
    /// hub's `GetApplicationDiff` (only the spoke can see live state).
    pub async fn diff(&self, app: &Application) -> Result<Vec<ResourceDiff>, String> {
        let wanted = Wanted::from_spec(&app.spec, None)?;
        let (revisions, objects) = self
            .render_wanted(app, &wanted, RefreshMode::Normal)
            .await?;
        let commit = edgecd_core::app::joined_revision(&revisions);
        let inventory = app
            .status
            .as_ref()
            .map(|s| s.resources.iter().map(|r| r.key.clone()).collect())
            .unwrap_or_default();
        let target = AppTarget {
            app: app.qualified_name(),
            app_label: app.metadata.name.clone().unwrap_or_default(),
            namespace: app.spec.destination.namespace.clone(),
            revision: commit,
            objects,
            inventory,
            ignore_differences: app.spec.ignore_differences.clone(),
        };
        let comparison = compare(&self.cluster, &target)
            .await
            .map_err(|e| e.to_string())?;
        Ok(comparison.resource_diffs())
    }

    /// The rendered manifests of an app at `revision` (its target revision
    /// when empty), as YAML documents.
    pub async fn manifests(
        &self,
        app: &Application,
        revision: &str,
    ) -> Result<(String, Vec<String>), String> {
        let wanted = Wanted::from_spec(
            &app.spec,
            (!revision.is_empty()).then(|| revision.to_owned()),
        )?;
        let (revisions, objects) = self
            .render_wanted(app, &wanted, RefreshMode::Normal)
            .await?;
        let commit = edgecd_core::app::joined_revision(&revisions);
        let documents = objects
            .iter()
            .map(|o| edgecd_render::to_yaml(std::slice::from_ref(o)))
            .collect();
        Ok((commit, documents))
    }

    async fn watch_kinds(&self, comparison: &Comparison) {
        for resource in &comparison.resources {
            let api_version = if resource.key.group.is_empty() {
                resource.key.version.clone()
            } else {
                format!("{}/{}", resource.key.group, resource.key.version)
            };
            if let Ok(resolved) = self.cluster.resolve(&api_version, &resource.key.kind).await {
                self.watch_kind(&resolved.resource);
            }
        }
    }

    fn status_from(
        &self,
        comparison: &Comparison,
        mut status: ApplicationStatus,
        previous: &ApplicationStatus,
        clear_operation: bool,
        now: OffsetDateTime,
    ) -> Outcome {
        status.sync = SyncReport {
            status: comparison.sync_status(),
            revision: comparison.revision.clone(),
        };
        status.health = comparison.health();
        status.resources = comparison.resource_statuses();
        decide::set_condition(
            &mut status.conditions,
            conditions::SHARED_RESOURCE_WARNING,
            (!comparison.shared.is_empty()).then(|| comparison.shared.join("; ")),
            now,
        );
        self.finish(status, previous, clear_operation, now)
    }

    fn finish(
        &self,
        mut status: ApplicationStatus,
        previous: &ApplicationStatus,
        clear_operation: bool,
        now: OffsetDateTime,
    ) -> Outcome {
        // A large app's lists are shortened to keep the object writable
        // (etcd refuses objects over 1.5 MiB); the status says what was left out.
        let truncated = status.fit_within(edgecd_core::status_budget::MAX_STATUS_BYTES);
        decide::set_condition(
            &mut status.conditions,
            edgecd_core::status_budget::TRUNCATED_CONDITION,
            truncated,
            now,
        );
        status.reconciled_at = Some(now);
        let changed = changed(previous, &status);
        if changed {
            status.status_version = previous.status_version + 1;
        }
        let requeue = match status.health.status {
            Health::Progressing | Health::Missing => self.config.progress_interval,
            _ if status
                .conditions
                .iter()
                .any(|c| c.kind == conditions::COMPARISON_ERROR) =>
            {
                self.config
                    .progress_interval
                    .max(Duration::from_secs(30))
                    .min(self.config.poll_interval)
            }
            _ => self.jittered(self.config.poll_interval),
        };
        Outcome {
            status,
            changed,
            clear_operation,
            requeue,
        }
    }

    async fn write(&self, app: &Application, outcome: &Outcome) -> Result<(), ReconcileError> {
        let name = app.metadata.name.clone().unwrap_or_default();
        let api: Api<Application> =
            Api::namespaced(self.cluster.client().clone(), &self.config.namespace);
        let status_error = |e| ReconcileError::Status {
            app: app.qualified_name(),
            source: Box::new(e),
        };
        // An unchanged status is not written again (a write costs an API call and wakes the controller's own
        // watch), except to refresh `reconciledAt` once it is older than the longer of the poll interval and
        // the full-compare interval (a full comparison at most that long ago found it as it is).
        let refresh_requested = app
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION));
        let last_written = app.status.as_ref().and_then(|s| s.reconciled_at);
        let refresh_every = self
            .config
            .poll_interval
            .max(self.config.full_compare_interval);
        let fresh = last_written
            .is_some_and(|t| (OffsetDateTime::now_utc() - t).unsigned_abs() < refresh_every);
        if !outcome.changed && !outcome.clear_operation && !refresh_requested && fresh {
            return Ok(());
        }
        let patch =
            serde_json::json!({ "status": status_patch(app.status.as_ref(), &outcome.status) });
        let written = match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => written,
            // Still too large for the API server: write the status without
            // its lists, saying why, so that the hub sees it and the
            // operation ends instead of showing Running forever.
            Err(error) if too_large(&error) => {
                tracing::warn!(app = %app.qualified_name(), %error, "The status is too large to write; writing it without its resource lists.");
                let mut minimal = outcome.status.clone();
                minimal.resources.clear();
                for entry in &mut minimal.history {
                    entry.resources.clear();
                }
                if let Some(operation) = &mut minimal.operation_state {
                    operation.resources.clear();
                }
                decide::set_condition(
                    &mut minimal.conditions,
                    conditions::STATUS_WRITE_ERROR,
                    Some(format!(
                        "the full status of {} resources could not be written ({error}); it is shown without its resource lists",
                        outcome.status.resources.len()
                    )),
                    OffsetDateTime::now_utc(),
                );
                let patch =
                    serde_json::json!({ "status": status_patch(app.status.as_ref(), &minimal) });
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(status_error)?
            }
            Err(error) => return Err(status_error(error)),
        };
        self.remember(&name, |m| {
            m.cr_version = written.metadata.resource_version.clone();
            m.own_write = written.metadata.resource_version.clone();
        });
        // Clear the operation we ran and the refresh request we served, but
        // only if nobody wrote a new one meanwhile: compare with the object
        // as it is now and make the clearing conditional on its version.
        let annotation = |a: &Application| {
            a.metadata
                .annotations
                .as_ref()
                .and_then(|m| m.get(REFRESH_ANNOTATION))
                .cloned()
        };
        let clear_operation = outcome.clear_operation && written.operation == app.operation;
        let clear_refresh = annotation(app).is_some() && annotation(&written) == annotation(app);
        if clear_operation || clear_refresh {
            let mut patch = serde_json::json!({
                "metadata": { "resourceVersion": written.metadata.resource_version },
            });
            if clear_operation {
                patch["operation"] = Value::Null;
            }
            if clear_refresh {
                patch["metadata"]["annotations"] = serde_json::json!({ REFRESH_ANNOTATION: null });
            }
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(cleared) => self.remember(&name, |m| {
                    m.cr_version = cleared.metadata.resource_version.clone();
                    m.own_write = cleared.metadata.resource_version.clone();
                }),
                // Changed meanwhile: the next reconcile sees the new request.
                Err(kube::Error::Api(status)) if status.code == 409 => self.trigger(&name),
                Err(e) => return Err(status_error(e)),
            }
        }
        Ok(())
    }
}

/// Whether the API server refused a write for its size (413, or etcd's "request is too large").
fn too_large(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code == 413
                || status.message.contains("too large")
                || status.message.contains("Too long")
        }
        _ => false,
    }
}

/// The merge patch that makes the stored status `next`: a JSON merge patch keeps what it does not mention, and
/// empty fields are left out when a status is serialised (a Healthy report has no message, a status without
/// conditions no `conditions`), so every field `previous` has and `next` lacks is set to null; otherwise the
/// message of a past Progressing state, or a cleared condition, would stay forever.
fn status_patch(
    previous: Option<&ApplicationStatus>,
    next: &ApplicationStatus,
) -> serde_json::Value {
    let mut patch = serde_json::to_value(next).unwrap_or(serde_json::Value::Null);
    if let Some(previous) = previous.and_then(|p| serde_json::to_value(p).ok()) {
        null_removed(&mut patch, &previous);
    }
    patch
}

/// Sets to null, in `patch`, every object member `previous` has and `patch` lacks (recursively through objects
/// both have; lists are replaced whole by a merge patch).
fn null_removed(patch: &mut serde_json::Value, previous: &serde_json::Value) {
    let (serde_json::Value::Object(patch), serde_json::Value::Object(previous)) = (patch, previous)
    else {
        return;
    };
    for (key, old) in previous {
        match patch.get_mut(key) {
            Some(new) => null_removed(new, old),
            None => {
                patch.insert(key.clone(), serde_json::Value::Null);
            }
        }
    }
}

/// Whether anything but the reconcile time and the version changed.
fn changed(previous: &ApplicationStatus, next: &ApplicationStatus) -> bool {
    // Field by field, without cloning; a new field fails to compile here until it is decided on.
    let ApplicationStatus {
        sync,
        health,
        resources,
        conditions,
        operation_state,
        history,
        reconciled_at: _,
        observed_spec_version,
        status_version: _,
    } = next;
    previous.sync != *sync
        || previous.health != *health
        || previous.resources != *resources
        || previous.conditions != *conditions
        || previous.operation_state != *operation_state
        || previous.history != *history
        || previous.observed_spec_version != *observed_spec_version
}

/// While a sync runs, polls the app's CR for a termination request written into it (Argo CD's way:
/// `status.operationState.phase: Terminating`, e.g. with `kubectl patch --subresource=status`).
async fn watch_for_termination(api: Api<Application>, cr_name: String, termination: Termination) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(Some(app)) = api.get_opt(&cr_name).await else {
            continue;
        };
        let requested = app
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .is_some_and(|op| op.phase == OperationPhase::Terminating);
        if requested {
            termination.request("a Terminating request in the Application's status");
            return;
        }
    }
}

fn finished_operation(
    request: Option<&OperationRequest>,
    phase: OperationPhase,
    message: &str,
    now: OffsetDateTime,
) -> OperationState {
    OperationState {
        command_id: request.map(|r| r.command_id.clone()).unwrap_or_default(),
        phase,
        message: message.to_owned(),
        started_at: now,
        finished_at: Some(now),
        revision: String::new(),
        resources: vec![],
        retry_count: 0,
        initiated_by: request.map(|r| r.initiated_by.clone()).unwrap_or_default(),
        trace_id: operation_trace_id(request),
    }
}

/// The id of the trace an operation runs in: the current span's when the spoke traces, else the one its
/// command brought (so the history names the operator's trace either way); empty when neither.
fn operation_trace_id(request: Option<&OperationRequest>) -> String {
    edgecd_telemetry::propagation::current()
        .or_else(|| request.and_then(OperationRequest::trace_context))
        .map(|t| t.trace_id().to_owned())
        .unwrap_or_default()
}

async fn reconcile(app: Arc<Application>, engine: Arc<Engine>) -> Result<Action, ReconcileError> {
    let name = app.metadata.name.clone().unwrap_or_default();
    if app.metadata.deletion_timestamp.is_some() {
        engine.forget(&name);
        return Ok(Action::await_change());
    }
    if let Some(action) = own_write_echo(&app, &engine) {
        return Ok(action);
    }
    *engine
        .reconciles
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(name.clone())
        .or_default() += 1;
    let started = std::time::Instant::now();
    let result = reconcile_and_write(&app, &engine).await;
    engine.observe(|o| o.reconciled(result.is_ok(), started.elapsed()));
    result
}

/// When the controller wakes up for the engine's own status write (seen through the watch) before the app
/// is due and nothing else changed, the schedule is kept and nothing runs (not counted as a reconcile).
fn own_write_echo(cached: &Application, engine: &Engine) -> Option<Action> {
    let name = cached.metadata.name.as_deref().unwrap_or_default();
    let cached_version = cached.metadata.resource_version.as_ref()?;
    let refresh_requested = cached
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(REFRESH_ANNOTATION));
    if cached.operation.is_some() || refresh_requested {
        return None;
    }
    let (own_write, due) = engine.remember(name, |m| (m.own_write.clone(), m.due));
    let now = Instant::now();
    let due = due.filter(|due| *due > now)?;
    (own_write.as_ref() == Some(cached_version)).then(|| Action::requeue(due - now))
}

async fn reconcile_and_write(
    cached: &Arc<Application>,
    engine: &Engine,
) -> Result<Action, ReconcileError> {
    // The controller's cache may not have our last status write yet; a
    // reconcile computed from it would drop history or re-run a finished
    // operation. Read the object fresh: status is read-modify-write.
    let name = cached.metadata.name.clone().unwrap_or_default();
    let cached_version = cached.metadata.resource_version.clone();
    let known = engine.remember(&name, |m| m.cr_version.clone());
    let app = if cached_version.is_some() && cached_version == known {
        // The cache holds the version the engine last read or wrote: nothing newer is known.
        Arc::clone(cached)
    } else {
        let api: Api<Application> =
            Api::namespaced(engine.cluster.client().clone(), &engine.config.namespace);
        match api.get_opt(&name).await {
            Ok(Some(app)) => Arc::new(app),
            Ok(None) => {
                engine.forget(&name);
                return Ok(Action::await_change());
            }
            Err(e) => {
                return Err(ReconcileError::Status {
                    app: cached.qualified_name(),
                    source: Box::new(e),
                });
            }
        }
    };
    if app.metadata.deletion_timestamp.is_some() {
        engine.forget(&name);
        return Ok(Action::await_change());
    }
    engine.remember(&name, |m| {
        if m.cr_version != app.metadata.resource_version {
            m.cr_version = app.metadata.resource_version.clone();
            m.own_write = None;
        }
    });
    let span = tracing::info_span!(
        "reconcile",
        app = %app.qualified_name(),
        project = %app.project(),
        operation = app.operation.is_some(),
    );
    // An operation a command asked for continues the operator's trace; any other reconcile (a poll, a
    // watch event, self-heal) is a trace of its own.
    if let Some(parent) = app.operation.as_ref().and_then(|op| op.trace_context()) {
        edgecd_telemetry::propagation::set_parent(&span, &parent);
    }
    let outcome = tracing::Instrument::instrument(engine.reconcile_app(&app), span).await?;
    engine.write(&app, &outcome).await?;
    engine.remember(&name, |m| m.due = Some(Instant::now() + outcome.requeue));
    Ok(Action::requeue(outcome.requeue))
}

fn error_policy(app: Arc<Application>, error: &ReconcileError, _engine: Arc<Engine>) -> Action {
    tracing::warn!(app = %app.qualified_name(), %error, "Reconcile failed; retrying.");
    Action::requeue(Duration::from_secs(5))
}

/// Loads the stored project policies; retried until the API server answers (nothing may be applied before
/// the policies are known).
async fn load_policies(engine: &Engine) {
    let mut delay = Duration::from_millis(200);
    loop {
        match crate::policy::load(engine.cluster.client(), &engine.config.namespace).await {
            Ok(projects) => {
                if !projects.is_empty() {
                    tracing::info!(projects = projects.len(), "Stored project policies loaded.");
                }
                engine.policies.update(projects, true);
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot read the stored project policies; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    engine: Arc<Engine>,
    triggers: mpsc::UnboundedReceiver<ObjectRef<Application>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    tokio::select! {
        () = load_policies(&engine) => {}
        () = shutdown.clone() => return,
    }
    let api: Api<Application> =
        Api::namespaced(engine.cluster.client().clone(), &engine.config.namespace);
    let config = kube::runtime::controller::Config::default()
        .concurrency(engine.config.concurrency)
        .debounce(Duration::from_millis(200));
    let controller = Controller::new(api, watcher::Config::default());
    let _ = engine.hooks.apps.set(controller.store());
    controller
        .with_config(config)
        .reconcile_on(UnboundedReceiverStream::new(triggers))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, engine)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "Controller event.");
            }
        })
        .await;
}

/// The owned parts of [`edgecd_helm::RenderInputs`] for one source's render.
struct RenderParts {
    credentials: Arc<edgecd_git::Credentials>,
    refs: edgecd_helm::SourceRefs,
    allowed: Option<Arc<edgecd_helm::RepoCheck>>,
    hard: bool,
}

impl RenderParts {
    fn inputs(&self) -> edgecd_helm::RenderInputs<'_> {
        edgecd_helm::RenderInputs {
            refs: &self.refs,
            credentials: Some(&self.credentials),
            hard: self.hard,
            allowed_repos: self.allowed.as_deref(),
        }
    }
}

/// A directory to render (a checkout, an unpacked artifact) and what the render is keyed and reported by.
struct Tree<G> {
    root: PathBuf,
    /// The source's directory inside `root`.
    dir: PathBuf,
    /// The commit, or the artifact's `sha256:<digest>`: the render cache's key part and the helm commit.
    revision: String,
    /// `$ARGOCD_APP_REVISION`: the commit, or the artifact's tag.
    app_revision: String,
    cache_key: String,
    /// A cache directory hidden from messages.
    cache_dir: Option<PathBuf>,
    /// Kept until the render ends (a checkout lease).
    guard: G,
}

/// A git or render error as viewers see it (app conditions, the hub, the console): paths inside the
/// checkout are named relative to the repository root (`overlays/prod/kustomization.yaml: …`, the root
/// itself as `.`), and any other path in the git cache as `<git cache>/…`, so no host path of the spoke
/// leaves it. Canonical forms (symlinks resolved, as the renderer reports paths leaving the root) too.
pub(crate) fn without_host_paths(
    message: &str,
    checkout_root: Option<&std::path::Path>,
    cache_dir: Option<&std::path::Path>,
) -> String {
    let variants = |path: &std::path::Path| {
        let mut texts = vec![path.display().to_string()];
        if let Ok(canonical) = std::fs::canonicalize(path) {
            let canonical = canonical.display().to_string();
            if !texts.contains(&canonical) {
                texts.push(canonical);
            }
        }
        texts.retain(|t| t.len() > 1);
        texts
    };
    let mut out = message.to_owned();
    for root in checkout_root.map(variants).unwrap_or_default() {
        out = out.replace(&format!("{root}/"), "");
        out = out.replace(&root, ".");
    }
    for cache in cache_dir.map(variants).unwrap_or_default() {
        out = out.replace(&cache, "<git cache>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Healthy report has no message and a status without conditions no `conditions`: the merge patch must
    /// clear what the stored status still has, or a past Progressing message stays on a Healthy app.
    #[test]
    fn the_status_patch_clears_what_the_new_status_leaves_out() {
        let mut previous = ApplicationStatus::default();
        previous.health.status = Health::Progressing;
        previous.health.message = "Waiting for rollout to finish".into();
        previous.conditions.push(edgecd_core::app::Condition {
            kind: "SyncError".into(),
            message: "boom".into(),
            last_transition_time: OffsetDateTime::UNIX_EPOCH,
        });
        let mut next = ApplicationStatus::default();
        next.health.status = Health::Healthy;
        let patch = status_patch(Some(&previous), &next);
        assert_eq!(patch["health"]["status"], "Healthy");
        assert_eq!(patch["health"]["message"], serde_json::Value::Null);
        assert!(patch["health"].as_object().unwrap().contains_key("message"));
        assert!(patch.as_object().unwrap().contains_key("conditions"));
        assert_eq!(patch["conditions"], serde_json::Value::Null);
        // Applied as a merge patch to the stored status, it leaves exactly the new one.
        let mut stored = serde_json::to_value(&previous).unwrap();
        json_merge(&mut stored, &patch);
        assert_eq!(stored, serde_json::to_value(&next).unwrap());
        // Without a stored status, the patch is the status itself.
        assert_eq!(
            status_patch(None, &next),
            serde_json::to_value(&next).unwrap()
        );
    }

    /// RFC 7386 merge, to check the patch above.
    fn json_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        let serde_json::Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = serde_json::json!({});
        }
        let target = target.as_object_mut().unwrap();
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                json_merge(
                    target.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }

    /// Render errors name files relative to the repository root, never the checkout's host path.
    #[test]
    fn render_errors_name_paths_relative_to_the_repository_root() {
        let cache = tempfile::tempdir().unwrap();
        let root = cache.path().join("checkouts").join("0123abcd");
        let overlay = root.join("overlays/prod");
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            "resources: [missing.yaml]\n",
        )
        .unwrap();
        let error = edgecd_render::render(
            &overlay,
            &edgecd_render::RenderOptions {
                repo_root: Some(root.clone()),
                ..edgecd_render::RenderOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(&root.display().to_string()), "{error}");
        let shown = without_host_paths(&error, Some(&root), Some(cache.path()));
        assert!(shown.starts_with("overlays/prod/"), "{shown}");
        assert!(
            !shown.contains(&cache.path().display().to_string()),
            "{shown}"
        );

        // A path leaving the root: the root itself is `.`.
        let message = format!(
            "security; file '{}/../x' is not in or below '{}'",
            root.display(),
            root.display()
        );
        assert_eq!(
            without_host_paths(&message, Some(&root), Some(cache.path())),
            "security; file '../x' is not in or below '.'"
        );
        // Git errors about the cache name no host path either.
        let message = format!(
            "create {:?} for repository r: denied",
            cache.path().join("repos/k.git")
        );
        let shown = without_host_paths(&message, None, Some(cache.path()));
        assert_eq!(
            shown,
            "create \"<git cache>/repos/k.git\" for repository r: denied"
        );
    }

    #[test]
    fn status_version_moves_only_on_change() {
        let a = ApplicationStatus::default();
        let mut b = a.clone();
        b.reconciled_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert!(!changed(&a, &b));
        b.health.status = Health::Healthy;
        assert!(changed(&a, &b));
    }

    #[test]
    fn comparison_inputs_cover_commit_source_inventory_and_policies() {
        let source = ApplicationSource {
            repo_url: "https://git.example.com/apps".into(),
            path: "apps/web".into(),
            ..ApplicationSource::default()
        };
        let inventory = [ResourceKey {
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "web".into(),
            name: "config".into(),
            ..ResourceKey::default()
        }];
        let base = CompareInputs {
            sources: std::slice::from_ref(&source),
            commit: "a",
            app: "default/web",
            app_label: "web",
            namespace: "web",
            inventory: &inventory,
            generation: Some(1),
            policies: 0,
        };
        let hash = base.hash();
        assert_eq!(hash, CompareInputs { ..base }.hash());
        let other_source = ApplicationSource {
            path: "apps/other".into(),
            ..source.clone()
        };
        for changed in [
            CompareInputs {
                commit: "b",
                ..base
            },
            CompareInputs {
                sources: std::slice::from_ref(&other_source),
                ..base
            },
            CompareInputs {
                inventory: &[],
                ..base
            },
            CompareInputs {
                generation: Some(2),
                ..base
            },
            CompareInputs {
                policies: 1,
                ..base
            },
        ] {
            assert_ne!(changed.hash(), hash);
        }
    }
}
