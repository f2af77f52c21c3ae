//! What the hub link reports besides statuses: each app's live resource tree (managed objects and their children through ownerReferences, sent when its hash changes), events derived from status transitions (sync started, succeeded or failed, health changed, drift healed, prune), buffered with a bound that never drops silently, and each new history entry as a deployment for the fleet's record (never dropped: owed again on overflow).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{Hash as _, Hasher as _};

use edgecd_core::Health;
use edgecd_core::app::{ApplicationStatus, OperationPhase, ResourceKey};
use edgecd_core::deployment::Deployment;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;
use time::OffsetDateTime;

use crate::cluster::LiveCluster;
use crate::crd::Application;

/// Events per `EventBatch` message.
pub(super) const EVENTS_PER_BATCH: usize = 100;

/// Events waiting for room in the outbox, oldest first. Beyond `capacity` the oldest are dropped, counted,
/// and reported by a Warning event in the next batch: never silently.
#[derive(Debug)]
pub(super) struct EventBuffer {
    events: VecDeque<v1::Event>,
    capacity: usize,
    dropped: u64,
}

impl EventBuffer {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, event: v1::Event) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// The next batch (at most [`EVENTS_PER_BATCH`] events), if any.
    pub(super) fn take_batch(&mut self, cluster: &str) -> Option<v1::EventBatch> {
        if self.events.is_empty() && self.dropped == 0 {
            return None;
        }
        let mut events = Vec::new();
        if self.dropped > 0 {
            let now = OffsetDateTime::now_utc();
            events.push(v1::Event {
                id: format!("events-dropped/{}", now.unix_timestamp_nanos()),
                cluster: cluster.to_owned(),
                app: None,
                resource: None,
                severity: v1::EventSeverity::Warning as i32,
                reason: "EventsDropped".into(),
                message: format!(
                    "{} older events were dropped: the spoke's event buffer was full while the hub was unreachable",
                    self.dropped
                ),
                time: Some(pc::timestamp(now)),
            });
            self.dropped = 0;
        }
        while events.len() < EVENTS_PER_BATCH {
            let Some(event) = self.events.pop_front() else {
                break;
            };
            events.push(event);
        }
        Some(v1::EventBatch { events })
    }
}

/// Deployments waiting for room in the outbox, oldest first. Nothing is dropped: beyond `capacity` the buffer
/// is emptied and the deployments are owed (every app's history is sent again; the hub stores each once).
#[derive(Debug)]
pub(super) struct DeploymentBuffer {
    deployments: VecDeque<v1::Deployment>,
    capacity: usize,
}

impl DeploymentBuffer {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            deployments: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Buffers `found`; `false` when it overflowed (the buffer is then empty and everything is owed).
    #[must_use]
    pub(super) fn push(&mut self, found: Vec<Deployment>) -> bool {
        self.deployments.extend(found.iter().map(pc::deployment));
        if self.deployments.len() > self.capacity {
            self.deployments.clear();
            return false;
        }
        true
    }

    pub(super) fn clear(&mut self) {
        self.deployments.clear();
    }

    /// The next batch (at most [`edgecd_core::deployment::PER_BATCH`]), if any.
    pub(super) fn take_batch(&mut self) -> Option<v1::DeploymentBatch> {
        let n = self
            .deployments
            .len()
            .min(edgecd_core::deployment::PER_BATCH);
        (n > 0).then(|| v1::DeploymentBatch {
            deployments: self.deployments.drain(..n).collect(),
        })
    }
}

/// The deployments of `app` not reported yet: its history entries after the one last seen (all of them for an
/// app not seen yet, or whose history started over).
pub(super) fn new_deployments(
    cluster: &str,
    app: &Application,
    before: Option<&Seen>,
) -> Vec<Deployment> {
    let Some(status) = app.status.as_ref() else {
        return Vec::new();
    };
    let last = edgecd_core::deployment::last_history_id(&status.history);
    let after = before
        .and_then(|b| b.last_history_id)
        .filter(|seen| last.is_some_and(|now| now >= *seen));
    edgecd_core::deployment::new_deployments(
        cluster,
        app.project(),
        &app.app_name(),
        &status.history,
        status.operation_state.as_ref(),
        after,
    )
}

/// What the link last saw of an app's status, to derive events and deployments from the next one.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen {
    health: Option<Health>,
    operation: Option<(OperationPhase, i128)>,
    /// The highest history id seen (its deployments are reported).
    last_history_id: Option<i64>,
}

impl Seen {
    pub(super) fn of(status: &ApplicationStatus) -> Self {
        Self {
            health: Some(status.health.status),
            operation: status
                .operation_state
                .as_ref()
                .map(|op| (op.phase, op.started_at.unix_timestamp_nanos())),
            last_history_id: edgecd_core::deployment::last_history_id(&status.history),
        }
    }
}

fn short(revision: &str) -> &str {
    revision.get(..8).unwrap_or(revision)
}

/// Events for the change from `before` (None: the app was not seen yet) to the app's current status.
pub(super) fn events_between(
    cluster: &str,
    app: &Application,
    before: Option<&Seen>,
) -> Vec<v1::Event> {
    let Some(status) = app.status.as_ref() else {
        return Vec::new();
    };
    let app_ref = v1::AppRef {
        project: app.project().to_owned(),
        name: app.app_name(),
    };
    let base = format!("{}/{}", app_ref.project, app_ref.name);
    let event = |id: String,
                 severity: v1::EventSeverity,
                 reason: &str,
                 message: String,
                 key: Option<&ResourceKey>,
                 at: OffsetDateTime| v1::Event {
        id: format!("{base}/{id}"),
        cluster: cluster.to_owned(),
        app: Some(app_ref.clone()),
        resource: key.map(pc::resource_key),
        severity: severity as i32,
        reason: reason.to_owned(),
        message,
        time: Some(pc::timestamp(at)),
    };
    let mut events = Vec::new();
    if let Some(op) = &status.operation_state {
        let started = op.started_at.unix_timestamp_nanos();
        let seen = before.and_then(|b| b.operation);
        let new_operation = seen.is_none_or(|(_, at)| at != started);
        let by = if op.initiated_by.is_empty() {
            "a user".to_owned()
        } else {
            op.initiated_by.clone()
        };
        // Only operations that start or end while the link watches (not those found at start-up).
        if op.phase == OperationPhase::Running && new_operation && before.is_some() {
            events.push(event(
                format!("SyncStarted/{started}"),
                v1::EventSeverity::Normal,
                "SyncStarted",
                format!("sync to {} started by {by}", short(&op.revision)),
                None,
                op.started_at,
            ));
        }
        let finished_now = op.phase.is_finished()
            && before.is_some()
            && seen.is_none_or(|(phase, at)| at != started || !phase.is_finished());
        if finished_now {
            let at = op.finished_at.unwrap_or(op.started_at);
            if op.phase == OperationPhase::Succeeded {
                // Only a sync started to heal drift (never one with selfHeal off: a retry, a first sync).
                let healed = op.initiated_by == crate::decide::SELF_HEAL;
                let (reason, message) = if healed {
                    (
                        "DriftHealed",
                        format!(
                            "live objects had drifted from revision {}; self-heal synced them back",
                            short(&op.revision)
                        ),
                    )
                } else {
                    ("SyncSucceeded", op.message.clone())
                };
                events.push(event(
                    format!("{reason}/{started}"),
                    v1::EventSeverity::Normal,
                    reason,
                    message,
                    None,
                    at,
                ));
            } else {
                events.push(event(
                    format!("SyncFailed/{started}"),
                    v1::EventSeverity::Warning,
                    "SyncFailed",
                    format!("{:?}: {}", op.phase, op.message),
                    None,
                    at,
                ));
            }
            for resource in op.resources.iter().filter(|r| r.status == "Pruned") {
                events.push(event(
                    format!("Pruned/{started}/{}", resource.key),
                    v1::EventSeverity::Normal,
                    "Pruned",
                    format!("{} pruned: no longer in git", resource.key),
                    Some(&resource.key),
                    at,
                ));
            }
        }
    }
    if let Some(before) = before
        && before.health != Some(status.health.status)
    {
        let severity = match status.health.status {
            Health::Degraded | Health::Missing => v1::EventSeverity::Warning,
            _ => v1::EventSeverity::Normal,
        };
        let from = before
            .health
            .map_or_else(|| "Unknown".to_owned(), |h| h.to_string());
        let mut message = format!("health {from} → {}", status.health.status);
        if !status.health.message.is_empty() {
            message.push_str(&format!(": {}", status.health.message));
        }
        events.push(event(
            format!("HealthChanged/{}", status.status_version),
            severity,
            "HealthChanged",
            message,
            None,
            status.reconciled_at.unwrap_or_else(OffsetDateTime::now_utc),
        ));
    }
    events
}

fn uid_of(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn owner_uids(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .as_ref()
        .map(|refs| refs.iter().map(|r| r.uid.clone()).collect())
        .unwrap_or_default()
}

fn health_status(report: Option<&edgecd_core::app::HealthReport>) -> Option<v1::HealthStatus> {
    report.map(|h| v1::HealthStatus {
        status: pc::health_code(h.status) as i32,
        message: h.message.clone(),
    })
}

fn created_at(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<edgecd_proto::Timestamp> {
    let text = meta.creation_timestamp.as_ref()?.0.to_string();
    OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(pc::timestamp)
}

/// A child object (ReplicaSet, Pod, Job) as a tree node.
fn child_node<K>(
    object: &K,
    group: &str,
    kind: &str,
    info: BTreeMap<String, String>,
) -> Option<v1::ResourceNode>
where
    K: kube::Resource + serde::Serialize,
{
    let meta = object.meta();
    let value = serde_json::to_value(object).ok()?;
    let key = ResourceKey {
        group: group.to_owned(),
        version: "v1".into(),
        kind: kind.to_owned(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    };
    Some(v1::ResourceNode {
        key: Some(pc::resource_key(&key)),
        uid: meta.uid.clone().unwrap_or_default(),
        parent_uids: owner_uids(meta),
        health: health_status(crate::health::assess(&value).as_ref()),
        info: info.into_iter().collect(),
        created_at: created_at(meta),
    })
}

/// Kinds whose children the tree shows: Deployment → ReplicaSet → Pod, StatefulSet/DaemonSet/ReplicaSet →
/// Pod, CronJob → Job → Pod.
fn has_children(key: &ResourceKey) -> bool {
    matches!(
        (key.group.as_str(), key.kind.as_str()),
        (
            "apps",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        ) | ("batch", "Job" | "CronJob")
    )
}

/// The live tree of `app`: its managed objects (with sync status and health from its status) and their
/// children found through ownerReferences, two levels deep.
pub(super) async fn resource_tree(cluster: &LiveCluster, app: &Application) -> v1::ResourceTree {
    let status = app.status.clone().unwrap_or_default();
    let mut nodes = Vec::new();
    let mut parents: BTreeSet<String> = BTreeSet::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    for resource in &status.resources {
        let live = cluster.get(&resource.key).await.ok().flatten();
        let uid = live.as_ref().and_then(uid_of).unwrap_or_default();
        if has_children(&resource.key) && !uid.is_empty() {
            parents.insert(uid.clone());
            namespaces.insert(resource.key.namespace.clone());
        }
        let mut info = BTreeMap::new();
        info.insert("sync".to_owned(), resource.status.to_string());
        if resource.requires_pruning {
            info.insert("requiresPruning".to_owned(), "true".to_owned());
        }
        if let Some(images) = live.as_ref().and_then(images_of) {
            info.insert("images".to_owned(), images);
        }
        if let Some(replicas) = live.as_ref().and_then(|l| replicas_of(&resource.key, l)) {
            info.insert("replicas".to_owned(), replicas);
        }
        let created = live
            .as_ref()
            .and_then(|l| l.pointer("/metadata/creationTimestamp"))
            .and_then(Value::as_str)
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(pc::timestamp);
        nodes.push(v1::ResourceNode {
            key: Some(pc::resource_key(&resource.key)),
            uid,
            parent_uids: Vec::new(),
            health: health_status(resource.health.as_ref()),
            info: info.into_iter().collect(),
            created_at: created,
        });
    }
    let client = cluster.client().clone();
    for namespace in namespaces {
        let params = ListParams::default();
        let replica_sets: Vec<ReplicaSet> = Api::namespaced(client.clone(), &namespace)
            .list(&params)
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let jobs: Vec<Job> = Api::namespaced(client.clone(), &namespace)
            .list(&params)
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let pods: Vec<Pod> = Api::namespaced(client.clone(), &namespace)
            .list(&params)
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let owned =
            |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
             by: &BTreeSet<String>| { owner_uids(meta).iter().any(|u| by.contains(u)) };
        let mut second: BTreeSet<String> = parents.clone();
        for rs in replica_sets.iter().filter(|r| owned(&r.metadata, &parents)) {
            let mut info = BTreeMap::new();
            if let Some(s) = &rs.status {
                info.insert(
                    "replicas".to_owned(),
                    format!("{}/{}", s.ready_replicas.unwrap_or(0), s.replicas),
                );
            }
            if let Some(node) = child_node(rs, "apps", "ReplicaSet", info) {
                second.insert(node.uid.clone());
                nodes.push(node);
            }
        }
        for job in jobs.iter().filter(|j| owned(&j.metadata, &parents)) {
            if let Some(node) = child_node(job, "batch", "Job", BTreeMap::new()) {
                second.insert(node.uid.clone());
                nodes.push(node);
            }
        }
        for pod in pods.iter().filter(|p| owned(&p.metadata, &second)) {
            let mut info = BTreeMap::new();
            if let Some(phase) = pod.status.as_ref().and_then(|s| s.phase.clone()) {
                info.insert("phase".to_owned(), phase);
            }
            if let Some(node) = child_node(pod, "", "Pod", info) {
                nodes.push(node);
            }
        }
    }
    v1::ResourceTree {
        app: Some(v1::AppRef {
            project: app.project().to_owned(),
            name: app.app_name(),
        }),
        nodes,
        status_version: status.status_version,
    }
}

/// `ready/desired` of a workload: Deployments and StatefulSets by their replicas, DaemonSets by the pods they
/// should run.
fn replicas_of(key: &ResourceKey, obj: &Value) -> Option<String> {
    let number = |pointer: &str| obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    match (key.group.as_str(), key.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet") => {
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            Some(format!("{}/{desired}", number("/status/readyReplicas")))
        }
        ("apps", "DaemonSet") => Some(format!(
            "{}/{}",
            number("/status/numberReady"),
            number("/status/desiredNumberScheduled")
        )),
        _ => None,
    }
}

fn images_of(obj: &Value) -> Option<String> {
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)?;
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect();
    (!images.is_empty()).then(|| images.join(","))
}

/// A hash of the tree's content (not its status version), to send only changed trees.
pub(super) fn tree_hash(tree: &v1::ResourceTree) -> u64 {
    let mut nodes: Vec<String> = tree.nodes.iter().map(|n| format!("{n:?}")).collect();
    nodes.sort();
    let mut hasher = DefaultHasher::new();
    nodes.hash(&mut hasher);
    hasher.finish()
}

/// Tree hashes last queued, by app (CR name).
pub(super) type TreeHashes = HashMap<String, u64>;

#[cfg(test)]
mod tests {
    use edgecd_core::app::{HealthReport, OperationState, ResourceResult};

    use super::*;

    fn app_with(status: ApplicationStatus) -> Application {
        let mut app = Application::new("demo", "edgecd-system", Default::default());
        app.status = Some(status);
        app
    }

    fn operation(phase: OperationPhase, started: i64, by: &str) -> OperationState {
        OperationState {
            command_id: String::new(),
            phase,
            message: "done".into(),
            started_at: OffsetDateTime::from_unix_timestamp(started).unwrap(),
            finished_at: phase
                .is_finished()
                .then(|| OffsetDateTime::from_unix_timestamp(started + 1).unwrap()),
            revision: "abcdef0123".into(),
            resources: vec![],
            retry_count: 0,
            initiated_by: by.into(),
            trace_id: String::new(),
        }
    }

    /// An automated sync of the revision already synced that is not a heal (a retry, or selfHeal off) is a plain
    /// SyncSucceeded, never "DriftHealed … self-heal synced them back".
    #[test]
    fn only_a_self_heal_sync_reports_drift_healed() {
        let mut status = ApplicationStatus::default();
        status.sync.revision = "abcdef0123".into();
        status.operation_state = Some(operation(OperationPhase::Succeeded, 5, "alice"));
        let seen = Seen::of(app_with(status.clone()).status.as_ref().unwrap());
        for (by, reason) in [
            (crate::decide::AUTOMATED, "SyncSucceeded"),
            (crate::decide::SELF_HEAL, "DriftHealed"),
        ] {
            let mut after = status.clone();
            after.operation_state = Some(operation(OperationPhase::Succeeded, 10, by));
            let events = events_between("c", &app_with(after), Some(&seen));
            let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
            assert_eq!(reasons, [reason], "{by}");
        }
    }

    #[test]
    fn sync_health_heal_and_prune_events() {
        let mut status = ApplicationStatus::default();
        status.health = HealthReport {
            status: Health::Healthy,
            message: String::new(),
        };
        status.sync.revision = "abcdef0123".into();
        let first = app_with(status.clone());
        // Found at start-up: no events for the past.
        assert!(events_between("c", &first, None).is_empty());
        let seen = Seen::of(first.status.as_ref().unwrap());

        status.operation_state = Some(operation(OperationPhase::Running, 10, "alice"));
        let running = app_with(status.clone());
        let events = events_between("c", &running, Some(&seen));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "SyncStarted");
        let seen = Seen::of(running.status.as_ref().unwrap());

        let mut op = operation(OperationPhase::Succeeded, 10, crate::decide::SELF_HEAL);
        op.resources.push(ResourceResult {
            key: ResourceKey {
                version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: "web".into(),
                name: "old".into(),
                ..ResourceKey::default()
            },
            status: "Pruned".into(),
            message: String::new(),
            sync_wave: 0,
        });
        status.operation_state = Some(op);
        status.health.status = Health::Progressing;
        status.status_version = 7;
        let done = app_with(status);
        let events = events_between("c", &done, Some(&seen));
        let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["DriftHealed", "Pruned", "HealthChanged"]);
        assert!(events[1].resource.is_some());
        // Seen again: nothing new.
        let seen = Seen::of(done.status.as_ref().unwrap());
        assert!(events_between("c", &done, Some(&seen)).is_empty());
    }

    #[test]
    fn a_full_buffer_reports_what_it_dropped() {
        let mut buffer = EventBuffer::new(2);
        for i in 0..5 {
            buffer.push(v1::Event {
                id: i.to_string(),
                ..v1::Event::default()
            });
        }
        let batch = buffer.take_batch("c").unwrap();
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.events[0].reason, "EventsDropped");
        assert!(batch.events[0].message.starts_with("3 older events"));
        assert_eq!(batch.events[1].id, "3");
        assert!(buffer.take_batch("c").is_none());
    }
}
