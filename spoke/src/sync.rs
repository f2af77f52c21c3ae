//! Comparing an app's rendered objects with the cluster (through server-side dry-run apply) and running a sync: prerequisites, waves with health gates, prune.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edgecd_core::Health;
use edgecd_core::SyncStatus;
use edgecd_core::app::{
    HealthReport, IgnoreDifference, ManagedNamespaceMetadata, OperationPhase, ResourceKey,
    ResourceResult, ResourceStatus,
};
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument as _;

use crate::cluster::{ApplyOptions, ClusterError, LiveCluster, Propagation};
use crate::crd::SyncResource;
use crate::health;
use crate::plan::{self, Plan, Planned};

/// The app being compared or synced.
#[derive(Debug, Clone, Default)]
pub struct AppTarget {
    /// `project/name`, written into tracking annotations.
    pub app: String,
    /// Value of the `edgecd.io/app` label.
    pub app_label: String,
    /// Destination namespace for namespaced objects without one.
    pub namespace: String,
    /// Commit the objects were rendered from.
    pub revision: String,
    /// Rendered objects.
    pub objects: Vec<Value>,
    /// Keys of objects applied by earlier syncs (the inventory).
    pub inventory: Vec<ResourceKey>,
    /// The app's `ignoreDifferences`: fields that never make an object OutOfSync nor show in its diff.
    pub ignore_differences: Vec<IgnoreDifference>,
}

/// One resource after comparison.
#[derive(Debug, Clone)]
pub struct ResourceState {
    pub key: ResourceKey,
    pub wave: i32,
    /// The prepared desired object; `None` for objects to prune.
    pub desired: Option<Value>,
    pub live: Option<Value>,
    /// The live object as it would be after apply (dry run).
    pub predicted: Option<Value>,
    pub sync: SyncStatus,
    pub health: Option<HealthReport>,
    pub requires_pruning: bool,
    pub message: String,
    /// The app's `ignoreDifferences` rules that apply to this object.
    pub ignored: Vec<IgnoreDifference>,
}

impl ResourceState {
    /// `obj` as compared and shown: without bookkeeping, status and the fields the app ignores.
    pub fn compared(&self, obj: &Value) -> Value {
        ignoring(obj, self.live.as_ref(), &self.ignored)
    }
}

/// Desired against live for one resource, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDiff {
    pub key: ResourceKey,
    pub live_yaml: String,
    pub desired_yaml: String,
    pub diff: String,
    pub modified: bool,
}

/// The result of comparing an app with its cluster.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub revision: String,
    pub resources: Vec<ResourceState>,
    /// Objects that could not be prepared (unknown kind, invalid): they make
    /// the app OutOfSync and are reported as conditions.
    pub errors: Vec<String>,
    /// Objects of this app whose live tracking annotation names another app (Argo CD's
    /// `SharedResourceWarning`): two apps applying the same object take it from each other.
    pub shared: Vec<String>,
}

impl Comparison {
    pub fn sync_status(&self) -> SyncStatus {
        if self.errors.is_empty()
            && self
                .resources
                .iter()
                .all(|r| r.sync == SyncStatus::Synced && !r.requires_pruning)
        {
            SyncStatus::Synced
        } else {
            SyncStatus::OutOfSync
        }
    }

    pub fn health(&self) -> HealthReport {
        let worst = self
            .resources
            .iter()
            .filter(|r| !r.requires_pruning)
            .filter_map(|r| r.health.as_ref())
            .max_by_key(|h| h.status.severity());
        match worst {
            Some(h) => h.clone(),
            None => HealthReport {
                status: Health::Healthy,
                message: String::new(),
            },
        }
    }

    /// Per-resource status for the app's status.
    pub fn resource_statuses(&self) -> Vec<ResourceStatus> {
        self.resources
            .iter()
            .map(|r| ResourceStatus {
                key: r.key.clone(),
                status: r.sync,
                health: r.health.clone(),
                requires_pruning: r.requires_pruning,
                sync_wave: r.wave,
            })
            .collect()
    }

    /// Every resource with its normalised live and desired YAML and their diff.
    pub fn resource_diffs(&self) -> Vec<ResourceDiff> {
        self.resources
            .iter()
            .map(|r| {
                // Compared forms, with a Secret's values masked (equal ones alike, changed ones not).
                let mut live = r.live.as_ref().map(|obj| r.compared(obj));
                let mut desired = if r.requires_pruning {
                    None
                } else {
                    r.predicted
                        .as_ref()
                        .or(r.desired.as_ref())
                        .map(|obj| r.compared(obj))
                };
                edgecd_core::secrets::mask_pair(live.as_mut(), desired.as_mut());
                let shown = |obj: Value| edgecd_render::to_yaml(&[obj]);
                let live_yaml = live.map(shown).unwrap_or_default();
                let desired_yaml = desired.map(shown).unwrap_or_default();
                let modified = r.sync != SyncStatus::Synced || r.requires_pruning;
                let diff = if modified {
                    unified_diff(&r.key, &live_yaml, &desired_yaml)
                } else {
                    String::new()
                };
                ResourceDiff {
                    key: r.key.clone(),
                    live_yaml,
                    desired_yaml,
                    diff,
                    modified,
                }
            })
            .collect()
    }

    /// A unified diff per modified resource (live → desired).
    pub fn diffs(&self) -> Vec<(ResourceKey, String)> {
        self.resource_diffs()
            .into_iter()
            .filter(|d| d.modified)
            .map(|d| (d.key, d.diff))
            .collect()
    }
}

/// Fields that differ between two reads of an unchanged object.
const VOLATILE_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// The object without server bookkeeping and status, for comparison.
pub fn normalize(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in VOLATILE_METADATA {
                meta.remove(*field);
            }
        }
    }
    obj
}

/// `obj` normalised, less the fields `rules` ignore (`live` supplies the field managers of
/// `managedFieldsManagers` rules).
fn ignoring(obj: &Value, live: Option<&Value>, rules: &[IgnoreDifference]) -> Value {
    let normalized = normalize(obj);
    if rules.is_empty() {
        return normalized;
    }
    let rules: Vec<&IgnoreDifference> = rules.iter().collect();
    edgecd_core::ignore::strip_ignored(&normalized, live, &rules)
}

/// The rules of the app's `ignoreDifferences` that apply to the prepared object `obj`.
fn rules_for(target: &AppTarget, obj: &Value) -> Vec<IgnoreDifference> {
    edgecd_core::ignore::rules_for(&target.ignore_differences, obj)
        .into_iter()
        .cloned()
        .collect()
}

/// `desired` with every field `rules` ignore taken from `live` (Argo CD's `RespectIgnoreDifferences=true`):
/// an ignored field the live object has keeps its live value, one it lacks is left out, so applying the result
/// changes no ignored field. Lists are taken whole, as a JSON merge patch takes them.
pub fn keep_live_ignored(desired: &Value, live: &Value, rules: &[IgnoreDifference]) -> Value {
    fn restore(target: &mut Value, live: &Value, stripped: &Value) {
        let (Some(live), Some(stripped)) = (live.as_object(), stripped.as_object()) else {
            return;
        };
        if !target.is_object() {
            *target = Value::Object(Default::default());
        }
        let Some(target) = target.as_object_mut() else {
            return;
        };
        for (key, live_value) in live {
            match stripped.get(key) {
                None => {
                    target.insert(key.clone(), live_value.clone());
                }
                Some(kept) if kept != live_value && live_value.is_object() && kept.is_object() => {
                    let entry = target.entry(key.clone()).or_insert(Value::Null);
                    restore(entry, live_value, kept);
                }
                Some(kept) if kept != live_value => {
                    target.insert(key.clone(), live_value.clone());
                }
                Some(_) => {}
            }
        }
    }
    if rules.is_empty() {
        return desired.clone();
    }
    let refs: Vec<&IgnoreDifference> = rules.iter().collect();
    let mut out = edgecd_core::ignore::strip_ignored(desired, Some(live), &refs);
    let live_normalized = normalize(live);
    let live_stripped = edgecd_core::ignore::strip_ignored(&live_normalized, Some(live), &refs);
    restore(&mut out, &live_normalized, &live_stripped);
    out
}

fn unified_diff(key: &ResourceKey, live: &str, desired: &str) -> String {
    similar::TextDiff::from_lines(live, desired)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live {key}"), &format!("desired {key}"))
        .to_string()
}

fn health_of(live: Option<&Value>) -> Option<HealthReport> {
    match live {
        None => Some(HealthReport {
            status: Health::Missing,
            message: "resource does not exist".into(),
        }),
        Some(obj) => health::assess(obj),
    }
}

/// Prepares every rendered object (resolving kinds and namespaces); objects
/// that cannot be prepared become error messages.
pub async fn prepare_all(cluster: &LiveCluster, target: &AppTarget) -> (Vec<Planned>, Vec<String>) {
    let mut planned = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for obj in &target.objects {
        match cluster
            .prepare(
                &target.app,
                &target.app_label,
                &target.namespace,
                obj.clone(),
            )
            .await
        {
            Ok((key, object)) => {
                if !seen.insert(key.clone()) {
                    errors.push(format!("{key} is rendered twice"));
                    continue;
                }
                planned.push(Planned {
                    wave: plan::sync_wave(&object),
                    key,
                    object,
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (planned, errors)
}

/// Compares desired objects with live ones. A failure to reach the cluster
/// is an error; problems with single objects are recorded in the result.
#[tracing::instrument(skip_all, fields(app = %target.app, revision = %target.revision))]
pub async fn compare(
    cluster: &LiveCluster,
    target: &AppTarget,
) -> Result<Comparison, ClusterError> {
    let (planned, mut errors) = prepare_all(cluster, target).await;
    let desired_keys: BTreeSet<ResourceKey> = planned.iter().map(|p| p.key.clone()).collect();
    let mut resources = Vec::new();
    let mut shared = Vec::new();
    for p in planned {
        let live = cluster.get(&p.key).await?;
        let ignored = rules_for(target, &p.object);
        let mut message = String::new();
        if let Some(other) = live.as_ref().and_then(plan::tracking_app)
            && other != target.app
        {
            shared.push(format!(
                "{}/{} is also managed by application {other}",
                p.key.kind, p.key.name
            ));
        }
        let (sync, predicted) = match &live {
            None => (SyncStatus::OutOfSync, None),
            Some(live_obj) => {
                let options = ApplyOptions {
                    dry_run: true,
                    force: true,
                    ..ApplyOptions::default()
                };
                match cluster.apply(&p.key, &p.object, options).await {
                    Ok(predicted) => {
                        let same = ignoring(&predicted, Some(live_obj), &ignored)
                            == ignoring(live_obj, Some(live_obj), &ignored);
                        (
                            if same {
                                SyncStatus::Synced
                            } else {
                                SyncStatus::OutOfSync
                            },
                            Some(predicted),
                        )
                    }
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => {
                        message = e.to_string();
                        (SyncStatus::OutOfSync, None)
                    }
                }
            }
        };
        resources.push(ResourceState {
            health: health_of(live.as_ref()),
            key: p.key,
            wave: p.wave,
            desired: Some(p.object),
            live,
            predicted,
            sync,
            requires_pruning: false,
            message,
            ignored,
        });
    }
    for key in &target.inventory {
        if desired_keys.contains(key) {
            continue;
        }
        let live = match cluster.get(key).await {
            Ok(live) => live,
            // The kind may be gone with its CRD: nothing to prune then.
            Err(ClusterError::UnknownKind { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(live) = live else { continue };
        if !plan::is_managed_by(&live, &target.app, key) {
            continue;
        }
        resources.push(ResourceState {
            key: key.clone(),
            wave: plan::sync_wave(&live),
            desired: None,
            health: health::assess(&live),
            live: Some(live),
            predicted: None,
            sync: SyncStatus::OutOfSync,
            requires_pruning: true,
            message: "not in git any more".into(),
            ignored: Vec::new(),
        });
    }
    errors.sort();
    Ok(Comparison {
        revision: target.revision.clone(),
        resources,
        errors,
        shared,
    })
}

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub prune: bool,
    pub dry_run: bool,
    pub create_namespace: bool,
    pub prune_last: bool,
    /// How long a wave may take to become healthy before the next one.
    pub wave_timeout: Duration,
    /// How often to poll health while waiting.
    pub poll_interval: Duration,
    /// Delete and create again an object the server refuses to change in place (Argo CD's `--force`).
    pub replace: bool,
    /// A selective sync: only these resources are applied or pruned (empty: all).
    pub only: Vec<SyncResource>,
    /// Resources left untouched because they are in sync (`ApplyOutOfSyncOnly`).
    pub skip: BTreeSet<ResourceKey>,
    /// Labels and annotations of the namespace `create_namespace` creates (`managedNamespaceMetadata`).
    pub namespace_metadata: Option<ManagedNamespaceMetadata>,
    /// How pruned objects' dependents are deleted (`PrunePropagationPolicy`).
    pub prune_propagation: Propagation,
    /// Fail before applying anything when an object is already tracked by another app
    /// (`FailOnSharedResource=true`).
    pub fail_on_shared_resource: bool,
    /// Keep the fields the app's `ignoreDifferences` ignore out of the apply: live values stay
    /// (`RespectIgnoreDifferences=true`).
    pub respect_ignore_differences: bool,
    /// Replace objects (PUT, or create) instead of applying them server-side (`Replace=true`); one the
    /// server refuses to replace is deleted and created again.
    pub replace_objects: bool,
    /// Ask the server to ignore unknown fields silently (`Validate=false`: `fieldValidation=Ignore`).
    pub skip_field_validation: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            prune: false,
            dry_run: false,
            create_namespace: false,
            prune_last: false,
            wave_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(500),
            replace: false,
            only: Vec::new(),
            skip: BTreeSet::new(),
            namespace_metadata: None,
            prune_propagation: Propagation::default(),
            fail_on_shared_resource: false,
            respect_ignore_differences: false,
            replace_objects: false,
            skip_field_validation: false,
        }
    }
}

impl SyncOptions {
    /// Whether the sync touches only part of the app (selected resources, or only what is out of sync).
    pub fn is_partial(&self) -> bool {
        !self.only.is_empty() || !self.skip.is_empty()
    }
}

/// Keeps in `plan` only what `options` selects: the selected resources (applied or pruned), less those in sync
/// when only out-of-sync ones are applied. A selected resource the app neither renders nor prunes is an error.
fn narrow(plan: &mut Plan, options: &SyncOptions, namespace: &str) -> Result<(), String> {
    if !options.is_partial() {
        return Ok(());
    }
    let selected = |key: &ResourceKey| {
        options.only.is_empty() || options.only.iter().any(|r| r.matches(key, namespace))
    };
    let unknown: Vec<String> = options
        .only
        .iter()
        .filter(|r| {
            let planned = plan
                .prerequisites
                .iter()
                .chain(plan.waves.iter().flat_map(|(_, objects)| objects))
                .any(|p| r.matches(&p.key, namespace));
            !planned && !plan.prune.iter().any(|k| r.matches(k, namespace))
        })
        .map(|r| {
            let group = if r.group.is_empty() {
                String::new()
            } else {
                format!("{}/", r.group)
            };
            let namespace = if r.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", r.namespace)
            };
            format!("{group}{} {namespace}{}", r.kind, r.name)
        })
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "selected resources are not part of the application: {}",
            unknown.join(", ")
        ));
    }
    let keep = |key: &ResourceKey| selected(key) && !options.skip.contains(key);
    plan.prerequisites.retain(|p| keep(&p.key));
    for (_, objects) in &mut plan.waves {
        objects.retain(|p| keep(&p.key));
    }
    plan.waves.retain(|(_, objects)| !objects.is_empty());
    plan.prune.retain(|key| selected(key));
    Ok(())
}

/// Whether `error` is the server refusing to change an object in place (an immutable field: 422 Invalid), which
/// a replace can get past.
fn needs_replace(error: &ClusterError) -> bool {
    match error {
        ClusterError::Api { source, .. } => matches!(
            source.as_ref(),
            kube::Error::Api(status) if status.code == 422
        ),
        _ => false,
    }
}

/// Applies one object; with `options.replace`, an object the server refuses to patch is deleted, awaited gone
/// and created again. Returns the result's message ("" for a plain apply).
async fn apply_one(
    cluster: &LiveCluster,
    p: &Planned,
    apply_options: ApplyOptions,
    options: &SyncOptions,
) -> Result<String, ClusterError> {
    let first = if options.replace_objects {
        cluster.replace(&p.key, &p.object, apply_options).await
    } else {
        cluster.apply(&p.key, &p.object, apply_options).await
    };
    let refused = match first {
        Ok(_) if options.replace_objects => return Ok("replaced".to_owned()),
        Ok(_) => return Ok(String::new()),
        Err(e) if (options.replace || options.replace_objects) && needs_replace(&e) => e,
        Err(e) => return Err(e),
    };
    if options.dry_run {
        return Ok(format!(
            "(dry run) would be deleted and created again: {refused}"
        ));
    }
    tracing::info!(resource = %p.key, error = %refused, "Replacing an object the server refuses to patch.");
    cluster.delete(&p.key).await?;
    let deadline = tokio::time::Instant::now() + options.wave_timeout;
    while cluster.get(&p.key).await?.is_some() {
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::InvalidObject {
                what: format!("replacing {}", p.key),
                reason: format!(
                    "the old object is still there after {:?} (finalizers?)",
                    options.wave_timeout
                ),
            });
        }
        tokio::time::sleep(options.poll_interval).await;
    }
    if options.replace_objects {
        cluster.replace(&p.key, &p.object, apply_options).await?;
    } else {
        cluster.apply(&p.key, &p.object, apply_options).await?;
    }
    Ok(format!("replaced (deleted and created again): {refused}"))
}

/// A request to stop a running sync at its next step boundary (before a prerequisite or a wave is applied,
/// between health polls of a wave, before pruning). Clones share the request.
#[derive(Debug, Clone, Default)]
pub struct Termination(Arc<Mutex<Option<String>>>);

impl Termination {
    /// Asks the sync to stop; `by` says who asked (kept from the first request).
    pub fn request(&self, by: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| by.to_owned());
    }

    /// Who asked the sync to stop, if anybody did.
    pub fn requested(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The message of a terminated operation (Argo CD's wording, plus who asked and where it stopped).
pub fn terminated_message(by: &str, at: &str) -> String {
    format!("Operation terminated by {by} {at}")
}

/// The outcome of a sync.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    pub phase: OperationPhase,
    pub message: String,
    pub resources: Vec<ResourceResult>,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// Keys applied by this sync: the new inventory.
    pub applied: Vec<ResourceKey>,
    /// Whether the sync stopped because termination was requested (the phase is then `Failed`).
    pub terminated: bool,
}

fn result(
    key: &ResourceKey,
    wave: i32,
    status: &str,
    message: impl Into<String>,
) -> ResourceResult {
    ResourceResult {
        key: key.clone(),
        status: status.to_owned(),
        message: message.into(),
        sync_wave: wave,
    }
}

/// Runs a sync of `target`: namespaces and CRDs first (CRDs awaited until
/// established), then each wave in order, each awaited healthy before the
/// next, then prune. Stops at the first failure.
#[tracing::instrument(skip_all, fields(app = %target.app, revision = %target.revision, dry_run = options.dry_run))]
pub async fn sync(
    cluster: &LiveCluster,
    target: &AppTarget,
    options: &SyncOptions,
    termination: &Termination,
) -> SyncOutcome {
    let started_at = OffsetDateTime::now_utc();
    let mut results = Vec::new();
    let finish = |phase, message: String, results, applied| SyncOutcome {
        phase,
        message,
        resources: results,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        applied,
        terminated: false,
    };
    let terminated = |by: String, at: &str, results, applied| SyncOutcome {
        phase: OperationPhase::Failed,
        message: terminated_message(&by, at),
        resources: results,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        applied,
        terminated: true,
    };
    if let Some(by) = termination.requested() {
        return terminated(by, "before it started", results, target.inventory.clone());
    }
    let (mut planned, errors) = prepare_all(cluster, target).await;
    // A kind that is unknown because its CRD is part of this very sync is
    // retried after the CRDs are established.
    let crd_in_sync = planned
        .iter()
        .any(|p| p.key.kind == "CustomResourceDefinition");
    let mut deferred = Vec::new();
    for error in errors {
        if crd_in_sync && error.contains("does not know kind") {
            deferred.push(error);
        } else {
            return finish(
                OperationPhase::Failed,
                error,
                results,
                target.inventory.clone(),
            );
        }
    }
    if let Err(message) = adjust_for_options(cluster, target, options, &mut planned).await {
        return finish(
            OperationPhase::Failed,
            message,
            results,
            target.inventory.clone(),
        );
    }
    let mut live_managed = BTreeMap::new();
    for key in &target.inventory {
        if planned.iter().any(|p| &p.key == key) {
            continue;
        }
        match cluster.get(key).await {
            Ok(Some(live)) if plan::is_managed_by(&live, &target.app, key) => {
                live_managed.insert(key.clone(), live);
            }
            Ok(_) | Err(ClusterError::UnknownKind { .. }) => {}
            Err(e) => {
                return finish(
                    OperationPhase::Error,
                    e.to_string(),
                    results,
                    target.inventory.clone(),
                );
            }
        }
    }
    let mut the_plan = plan::plan(planned, &live_managed);
    if let Err(message) = narrow(&mut the_plan, options, &target.namespace) {
        return finish(
            OperationPhase::Failed,
            message,
            results,
            target.inventory.clone(),
        );
    }
    let apply_options = ApplyOptions {
        dry_run: options.dry_run,
        force: true,
        skip_field_validation: options.skip_field_validation,
    };
    let mut applied: Vec<ResourceKey> = Vec::new();

    if options.create_namespace && !target.namespace.is_empty() {
        let exists = the_plan
            .prerequisites
            .iter()
            .any(|p| p.key.kind == "Namespace" && p.key.name == target.namespace);
        if !exists {
            let ns_key = ResourceKey {
                group: String::new(),
                version: "v1".into(),
                kind: "Namespace".into(),
                namespace: String::new(),
                name: target.namespace.clone(),
            };
            let mut ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target.namespace}});
            // Applied on every sync by the same field manager: a label or annotation removed from
            // `managedNamespaceMetadata` is removed from the namespace, others' stay.
            if let Some(metadata) = &options.namespace_metadata {
                if !metadata.labels.is_empty() {
                    ns["metadata"]["labels"] = serde_json::json!(metadata.labels);
                }
                if !metadata.annotations.is_empty() {
                    ns["metadata"]["annotations"] = serde_json::json!(metadata.annotations);
                }
            }
            if let Err(e) = cluster.apply(&ns_key, &ns, apply_options).await {
                return finish(
                    OperationPhase::Failed,
                    e.to_string(),
                    results,
                    target.inventory.clone(),
                );
            }
        }
    }

    for p in &the_plan.prerequisites {
        if let Some(by) = termination.requested() {
            return terminated(
                by,
                &format!("before applying {}", p.key),
                results,
                merge_inventory(&target.inventory, &applied),
            );
        }
        match apply_one(cluster, p, apply_options, options).await {
            Ok(message) => {
                results.push(result(&p.key, p.wave, "Synced", message));
                applied.push(p.key.clone());
            }
            Err(e) => {
                results.push(result(&p.key, p.wave, "SyncFailed", e.to_string()));
                return finish(
                    OperationPhase::Failed,
                    e.to_string(),
                    results,
                    merge_inventory(&target.inventory, &applied),
                );
            }
        }
    }
    let crds: Vec<&Planned> = the_plan
        .prerequisites
        .iter()
        .filter(|p| p.key.kind == "CustomResourceDefinition")
        .collect();
    if !crds.is_empty() && !options.dry_run {
        for crd in &crds {
            match wait_healthy(cluster, &[&crd.key], options, termination).await {
                Ok(()) => {}
                Err(Waited::Terminated(by)) => {
                    return terminated(
                        by,
                        &format!("while waiting for {} to be established", crd.key),
                        results,
                        merge_inventory(&target.inventory, &applied),
                    );
                }
                Err(Waited::Failed(message)) => {
                    return finish(
                        OperationPhase::Failed,
                        message,
                        results,
                        merge_inventory(&target.inventory, &applied),
                    );
                }
            }
        }
        cluster.forget_kinds().await;
        if !deferred.is_empty() {
            let (mut replanned, errors) = prepare_all(cluster, target).await;
            if let Some(error) = errors.into_iter().next() {
                return finish(
                    OperationPhase::Failed,
                    error,
                    results,
                    merge_inventory(&target.inventory, &applied),
                );
            }
            if let Err(message) = adjust_for_options(cluster, target, options, &mut replanned).await
            {
                return finish(
                    OperationPhase::Failed,
                    message,
                    results,
                    merge_inventory(&target.inventory, &applied),
                );
            }
            the_plan = plan::plan(replanned, &live_managed);
            if let Err(message) = narrow(&mut the_plan, options, &target.namespace) {
                return finish(
                    OperationPhase::Failed,
                    message,
                    results,
                    merge_inventory(&target.inventory, &applied),
                );
            }
        }
    }

    let wave_count = the_plan.waves.len();
    for (index, (wave, objects)) in the_plan.waves.iter().enumerate() {
        let wave_span = tracing::info_span!("wave", wave = *wave, objects = objects.len());
        if let Some(by) = termination.requested() {
            return terminated(
                by,
                &format!("before wave {wave}"),
                results,
                merge_inventory(&target.inventory, &applied),
            );
        }
        for p in objects {
            match apply_one(cluster, p, apply_options, options)
                .instrument(wave_span.clone())
                .await
            {
                Ok(message) => {
                    results.push(result(&p.key, *wave, "Synced", message));
                    applied.push(p.key.clone());
                }
                Err(e) => {
                    results.push(result(&p.key, *wave, "SyncFailed", e.to_string()));
                    return finish(
                        OperationPhase::Failed,
                        e.to_string(),
                        results,
                        merge_inventory(&target.inventory, &applied),
                    );
                }
            }
        }
        let last = index + 1 == wave_count;
        if !options.dry_run && (!last || (options.prune_last && options.prune)) {
            let keys: Vec<&ResourceKey> = objects.iter().map(|p| &p.key).collect();
            match wait_healthy(cluster, &keys, options, termination)
                .instrument(wave_span.clone())
                .await
            {
                Ok(()) => {}
                Err(Waited::Terminated(by)) => {
                    return terminated(
                        by,
                        &format!("while waiting for wave {wave} to become healthy"),
                        results,
                        merge_inventory(&target.inventory, &applied),
                    );
                }
                Err(Waited::Failed(message)) => {
                    return finish(
                        OperationPhase::Failed,
                        format!("wave {wave}: {message}"),
                        results,
                        merge_inventory(&target.inventory, &applied),
                    );
                }
            }
        }
    }

    if !the_plan.prune.is_empty()
        && let Some(by) = termination.requested()
    {
        return terminated(
            by,
            "before pruning",
            results,
            merge_inventory(&target.inventory, &applied),
        );
    }
    let mut kept = Vec::new();
    let mut pruned = Vec::new();
    // A span only when something is to be pruned (no empty `prune` span in every trace).
    let prune_span = if the_plan.prune.is_empty() {
        tracing::Span::none()
    } else {
        tracing::info_span!("prune", objects = the_plan.prune.len())
    };
    for key in &the_plan.prune {
        if !options.prune {
            results.push(result(
                key,
                plan::sync_wave(&live_managed[key]),
                "PruneSkipped",
                "prune is disabled",
            ));
            kept.push(key.clone());
            continue;
        }
        if options.dry_run {
            results.push(result(key, 0, "Pruned", "(dry run)"));
            continue;
        }
        match cluster
            .delete_with(key, options.prune_propagation)
            .instrument(prune_span.clone())
            .await
        {
            Ok(_) => {
                results.push(result(key, 0, "Pruned", ""));
                pruned.push(key.clone());
            }
            Err(e) => {
                results.push(result(key, 0, "SyncFailed", e.to_string()));
                kept.push(key.clone());
            }
        }
    }
    // Objects from earlier syncs that were kept stay in the inventory.
    let mut inventory = applied;
    inventory.extend(kept);
    for key in live_managed.keys() {
        if the_plan.prune.iter().all(|k| k != key) && !inventory.contains(key) {
            inventory.push(key.clone());
        }
    }
    // A partial sync leaves what it did not touch as it was: still applied, still in the inventory.
    if options.is_partial() {
        for key in &target.inventory {
            if !pruned.contains(key) && !inventory.contains(key) {
                inventory.push(key.clone());
            }
        }
    }
    let failed = results.iter().any(|r| r.status == "SyncFailed");
    let (phase, message) = if failed {
        (
            OperationPhase::Failed,
            "one or more objects failed to sync".to_owned(),
        )
    } else if options.dry_run {
        (
            OperationPhase::Succeeded,
            "dry run: nothing changed".to_owned(),
        )
    } else if options.is_partial() {
        let touched = results
            .iter()
            .filter(|r| r.status != "PruneSkipped")
            .count();
        (
            OperationPhase::Succeeded,
            format!(
                "successfully synced {touched} of the app's resources (revision {}; {})",
                short(&target.revision),
                if options.only.is_empty() {
                    "only those out of sync"
                } else {
                    "selected resources"
                }
            ),
        )
    } else {
        (
            OperationPhase::Succeeded,
            format!("successfully synced (revision {})", short(&target.revision)),
        )
    };
    finish(phase, message, results, inventory)
}

/// The app other than `target` that tracks `live`: by its tracking annotation, else by the app label.
fn other_app(live: &Value, target: &AppTarget) -> Option<String> {
    match plan::tracking_app(live) {
        Some(app) if app != target.app => Some(app.to_owned()),
        Some(_) => None,
        None => plan::label(live, plan::APP_LABEL)
            .filter(|label| *label != target.app_label)
            .map(|label| format!("{label} (by its label {})", plan::APP_LABEL)),
    }
}

/// Reads the live objects the sync options need before anything is applied: with `FailOnSharedResource=true`,
/// fails naming every object another app tracks; with `RespectIgnoreDifferences=true`, gives ignored fields
/// their live values in the objects to apply.
async fn adjust_for_options(
    cluster: &LiveCluster,
    target: &AppTarget,
    options: &SyncOptions,
    planned: &mut [Planned],
) -> Result<(), String> {
    let respect = options.respect_ignore_differences && !target.ignore_differences.is_empty();
    if !options.fail_on_shared_resource && !respect {
        return Ok(());
    }
    let mut shared = Vec::new();
    for p in planned.iter_mut() {
        let rules = if respect {
            rules_for(target, &p.object)
        } else {
            Vec::new()
        };
        if !options.fail_on_shared_resource && rules.is_empty() {
            continue;
        }
        let Some(live) = cluster.get(&p.key).await.map_err(|e| e.to_string())? else {
            continue;
        };
        if options.fail_on_shared_resource
            && let Some(other) = other_app(&live, target)
        {
            shared.push(format!(
                "{} is already managed by application {other}",
                p.key
            ));
        }
        if !rules.is_empty() {
            p.object = keep_live_ignored(&p.object, &live, &rules);
        }
    }
    if shared.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "shared resource found (FailOnSharedResource=true), nothing was applied: {}",
            shared.join("; ")
        ))
    }
}

fn short(revision: &str) -> &str {
    revision.get(..8).unwrap_or(revision)
}

fn merge_inventory(previous: &[ResourceKey], applied: &[ResourceKey]) -> Vec<ResourceKey> {
    let mut all: Vec<ResourceKey> = previous.to_vec();
    for key in applied {
        if !all.contains(key) {
            all.push(key.clone());
        }
    }
    all
}

/// Why waiting for health ended without success.
enum Waited {
    Failed(String),
    /// Termination was requested (by whom).
    Terminated(String),
}

/// Polls until every object is healthy (or has no health); fails on Degraded
/// or when the wave timeout passes; stops between polls when termination is requested.
#[tracing::instrument(skip_all, fields(objects = keys.len()))]
async fn wait_healthy(
    cluster: &LiveCluster,
    keys: &[&ResourceKey],
    options: &SyncOptions,
    termination: &Termination,
) -> Result<(), Waited> {
    let deadline = tokio::time::Instant::now() + options.wave_timeout;
    loop {
        if let Some(by) = termination.requested() {
            return Err(Waited::Terminated(by));
        }
        let mut pending = None;
        for key in keys {
            let live = cluster
                .get(key)
                .await
                .map_err(|e| Waited::Failed(e.to_string()))?;
            match health_of(live.as_ref()) {
                None => {}
                Some(h) if h.status == Health::Healthy => {}
                Some(h) if h.status == Health::Degraded => {
                    return Err(Waited::Failed(format!("{key} is Degraded: {}", h.message)));
                }
                Some(h) => pending = Some(format!("{key} is {}: {}", h.status, h.message)),
            }
        }
        let Some(pending) = pending else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Waited::Failed(format!(
                "timed out waiting for health: {pending}"
            )));
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secrets_diff_shows_which_keys_change_never_their_values() {
        let secret = |password: &str| {
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "web"},
                "data": {"password": password, "user": "YWRtaW4="}})
        };
        let comparison = Comparison {
            revision: "r".into(),
            resources: vec![ResourceState {
                key: ResourceKey {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Secret".into(),
                    namespace: "web".into(),
                    name: "db".into(),
                },
                wave: 0,
                desired: Some(secret("bmV3LXBhc3N3b3Jk")),
                live: Some(secret("b2xkLXBhc3N3b3Jk")),
                predicted: None,
                sync: SyncStatus::OutOfSync,
                health: None,
                requires_pruning: false,
                message: String::new(),
                ignored: Vec::new(),
            }],
            errors: Vec::new(),
            shared: Vec::new(),
        };
        let diff = &comparison.resource_diffs()[0];
        let shown = format!("{}{}{}", diff.live_yaml, diff.desired_yaml, diff.diff);
        for value in ["bmV3LXBhc3N3b3Jk", "b2xkLXBhc3N3b3Jk", "YWRtaW4="] {
            assert!(!shown.contains(value), "{value} shown: {shown}");
        }
        // The changed key is in the diff; the unchanged one is not.
        assert!(diff.diff.contains("password"), "{}", diff.diff);
        assert!(
            !diff.diff.contains("+  user") && !diff.diff.contains("-  user"),
            "{}",
            diff.diff
        );
    }

    #[test]
    fn normalization_ignores_bookkeeping_and_status() {
        let a = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1", "managedFields": []}, "data": {"k": "v"}, "status": {"x": 1}});
        let b = json!({"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "9", "uid": "u"}, "data": {"k": "v"}});
        assert_eq!(normalize(&a), normalize(&b));
        let c = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "w"}});
        assert_ne!(normalize(&a), normalize(&c));
    }

    #[test]
    fn ignored_fields_keep_their_live_values() {
        let rule = |pointers: &[&str], jq: &[&str]| IgnoreDifference {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
            jq_path_expressions: jq.iter().map(|p| (*p).to_owned()).collect(),
            ..IgnoreDifference::default()
        };
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"a": "git"}},
            "spec": {"replicas": 1, "paused": false, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "7", "labels": {"a": "live"}},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
            "status": {"replicas": 5}});
        let rules = [rule(&["/spec/replicas", "/spec/paused"], &[])];
        let out = keep_live_ignored(&desired, &live, &rules);
        // The live value stays; a field the live object lacks is left out; the rest is git's.
        assert_eq!(out["spec"]["replicas"], 5);
        assert!(out["spec"].get("paused").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2"
        );
        assert_eq!(out["metadata"]["labels"]["a"], "git");
        assert!(out.get("status").is_none() && out["metadata"].get("resourceVersion").is_none());

        // A jq rule inside a list: the list is the live one (a merge patch's semantics).
        let rules = [rule(&[], &[".spec.template.spec.containers[].image"])];
        let out = keep_live_ignored(&desired, &live, &rules);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(keep_live_ignored(&desired, &live, &[]), desired);
    }

    #[test]
    fn diff_names_the_object() {
        let key = ResourceKey {
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "web".into(),
            name: "cfg".into(),
            ..Default::default()
        };
        let d = unified_diff(&key, "data:\n  k: v\n", "data:\n  k: w\n");
        assert!(d.contains("-  k: v") && d.contains("+  k: w"), "{d}");
        assert!(d.contains("live ConfigMap web/cfg"));
    }
}
