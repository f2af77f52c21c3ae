//! The status engine: kwok-style stages that give workloads realistic status, plus garbage collection.
//!
//! The engine subscribes to the store's change stream and, after a configurable delay, plays the part of
//! kube-controller-manager and the kubelet: Deployments get ReplicaSets and Pods, StatefulSets, DaemonSets and
//! Jobs get Pods and status, PVCs bind, LoadBalancer Services and Ingresses get an address, CRDs become
//! established, terminating Pods and Namespaces go away, and dependents of deleted owners are collected.
//! Every write goes through the store like a client write (resourceVersion bump, watch event), and every
//! reconcile is idempotent, so an unchanged object produces no further events.
//!
//! Fault injection (see `e2e/README.md`): the label [`FAULT_LABEL`] on a workload or its pod template
//! (`crashloop` or `stuck`), or a container image containing `fail`, makes the workload fail.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{broadcast, watch};

use super::resources::ResourceType;
use super::store::{DeleteOptions, Event, EventType, Store, Subresource, now_rfc3339, set_in};

/// Label (on a workload or its pod template) that injects a fault: `crashloop` or `stuck`.
pub const FAULT_LABEL: &str = "emulator.edgecd.io/fault";
/// Annotation overriding the stage delay for one object, in milliseconds.
pub const DELAY_ANNOTATION: &str = "emulator.edgecd.io/delay-ms";
/// Name of the single simulated node.
pub const NODE_NAME: &str = "emulator-node";
/// Address of the simulated node.
pub const NODE_IP: &str = "172.18.0.2";

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// Delay before a stage writes status (per object overridable with [`DELAY_ANNOTATION`]).
    pub delay: Duration,
    /// Cap on a Deployment's `spec.progressDeadlineSeconds` (`None`: honoured in full).
    pub max_progress_deadline: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    CrashLoop,
    Stuck,
}

type PendingKey = (usize, String, String, String, String);

#[derive(Debug, Clone)]
struct Engine {
    store: Arc<Store>,
    config: StageConfig,
    pending: Arc<Mutex<HashSet<PendingKey>>>,
}

/// Runs the engine until `shutdown` flips.
pub async fn run(store: Arc<Store>, config: StageConfig, mut shutdown: watch::Receiver<bool>) {
    let mut rx = store.subscribe();
    let engine = Engine {
        store,
        config,
        pending: Arc::new(Mutex::new(HashSet::new())),
    };
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            received = rx.recv() => match received {
                Ok(event) => engine.handle(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => engine.resync(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn name_ns(obj: &Value) -> (String, String) {
    (
        s(obj, "/metadata/namespace").to_string(),
        s(obj, "/metadata/name").to_string(),
    )
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

fn fault_of(obj: &Value, template: Option<&Value>) -> Fault {
    let label = |v: &Value| {
        v.pointer("/metadata/labels")
            .and_then(|l| l.get(FAULT_LABEL))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let value = label(obj).or_else(|| template.and_then(label));
    match value.as_deref() {
        Some("crashloop") => return Fault::CrashLoop,
        Some("stuck") => return Fault::Stuck,
        _ => {}
    }
    let spec = template
        .and_then(|t| t.get("spec"))
        .or_else(|| obj.get("spec"));
    let failing_image = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| s(c, "/image").contains("fail")));
    if failing_image {
        Fault::CrashLoop
    } else {
        Fault::None
    }
}

/// A short, stable hash in the alphabet Kubernetes uses for generated names.
fn short_hash(input: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = std::collections::hash_map::DefaultHasher::new();
    input.hash(&mut h);
    let mut n = h.finish();
    (0..len)
        .map(|_| {
            let idx = usize::try_from(n % 27).unwrap_or(0);
            n /= 27;
            char::from(ALPHABET.get(idx).copied().unwrap_or(b'x'))
        })
        .collect()
}

fn owner_ref(owner: &Value, rt_api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": rt_api_version,
        "kind": kind,
        "name": s(owner, "/metadata/name"),
        "uid": s(owner, "/metadata/uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| s(r, "/uid") == uid))
}

/// When the rollout of ReplicaSet `rs_name` started, from the Deployment's `Progressing` condition
/// (`now` for a new rollout); `None` when its deadline was already reported exceeded.
fn progress_started_at(d: &Value, rs_name: &str, now: &str) -> Option<String> {
    let current = d
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "/type") == "Progressing"))
        .filter(|c| s(c, "/message").contains(&format!("\"{rs_name}\"")));
    match current.map(|c| s(c, "/reason")) {
        Some("ProgressDeadlineExceeded") => None,
        Some("ReplicaSetUpdated") => current.map(|c| s(c, "/lastUpdateTime").to_string()),
        _ => Some(now.to_string()),
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Replaces timestamps so that two statuses differing only in time compare equal.
fn without_times(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let timeish = k.ends_with("Time")
                        || k.ends_with("Timestamp")
                        || k == "startedAt"
                        || k == "finishedAt";
                    (
                        k.clone(),
                        if timeish {
                            Value::Null
                        } else {
                            without_times(v)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

/// Sets `status` unless the current one is the same apart from timestamps.
fn set_status_stable(obj: &mut Value, status: Value) {
    let current = obj.get("status").cloned().unwrap_or(Value::Null);
    if without_times(&current) != without_times(&status)
        && let Some(map) = obj.as_object_mut()
    {
        map.insert("status".into(), status);
    }
}

fn pod_running(pod: &Value, fault: Fault, now: &str) -> Value {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pod_ip = format!("10.244.0.{}", 2 + ip_octet(s(pod, "/metadata/name")));
    let ready = fault == Fault::None;
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            let (state, last) = match fault {
                Fault::None => (json!({"running": {"startedAt": now}}), json!({})),
                Fault::CrashLoop => (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container={} pod={}", s(c, "/name"), s(pod, "/metadata/name"))}}),
                    json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}),
                ),
                Fault::Stuck => (json!({"waiting": {"reason": "ContainerCreating"}}), json!({})),
            };
            json!({
                "name": s(c, "/name"), "image": s(c, "/image"), "imageID": format!("emulated://{}", s(c, "/image")),
                "containerID": format!("emulated://{}", short_hash(&format!("{}{}", s(pod, "/metadata/uid"), s(c, "/name")), 12)),
                "ready": ready, "started": fault == Fault::None, "restartCount": if fault == Fault::CrashLoop { 5 } else { 0 },
                "state": state, "lastState": last,
            })
        })
        .collect();
    let t = if ready { "True" } else { "False" };
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": if fault == Fault::Stuck { "False" } else { "True" }, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "Ready", "status": t, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "ContainersReady", "status": t, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
    ];
    if !ready {
        for c in conditions.iter_mut().skip(2).take(2) {
            c["reason"] = json!("ContainersNotReady");
        }
    }
    json!({
        "phase": if fault == Fault::Stuck { "Pending" } else { "Running" },
        "conditions": conditions,
        "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

fn ip_octet(name: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    usize::try_from(h.finish() % 250).unwrap_or(0)
}

fn pod_finished(pod: &Value, success: bool, now: &str) -> Value {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (code, reason) = if success {
        (0, "Completed")
    } else {
        (1, "Error")
    };
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| json!({
            "name": s(c, "/name"), "image": s(c, "/image"), "imageID": format!("emulated://{}", s(c, "/image")),
            "ready": false, "started": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": now, "finishedAt": now}},
            "lastState": {},
        }))
        .collect();
    json!({
        "phase": if success { "Succeeded" } else { "Failed" },
        "conditions": [
            {"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        ],
        "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}

/// Refuses a log request for a container the pod does not have, as the API server does.
pub fn check_log_container(
    pod: &Value,
    container: Option<&str>,
) -> Result<(), crate::status::ApiError> {
    let Some(container) = container else {
        return Ok(());
    };
    let names: Vec<&str> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .map(|c| s(c, "/name"))
        .collect();
    if names.contains(&container) {
        return Ok(());
    }
    let (_, name) = name_ns(pod);
    Err(crate::status::ApiError::bad_request(format!(
        "container {container} is not valid for pod {name}"
    )))
}

/// One more line of a followed log (`tick` counts from 1).
pub fn follow_line(pod: &Value, container: Option<&str>, tick: u64) -> String {
    let first = pod
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (ns, name) = name_ns(pod);
    format!(
        "{} [emulator] {ns}/{name}/{} tick {tick}\n",
        crate::store::now_rfc3339(),
        container.unwrap_or(first)
    )
}

/// Synthetic log text for a pod container.
pub fn pod_logs(pod: &Value, container: Option<&str>, tail: Option<usize>) -> String {
    let first = pod
        .pointer("/spec/containers/0/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let container = container.unwrap_or(first);
    let image = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| s(c, "/name") == container))
        .map(|c| s(c, "/image").to_string())
        .unwrap_or_default();
    let start = s(pod, "/status/startTime");
    let (ns, name) = name_ns(pod);
    let mut lines = vec![
        format!(
            "{start} [emulator] container {container} of pod {ns}/{name} started (image {image})"
        ),
        format!("{start} [emulator] listening on :8080"),
    ];
    match fault_of(pod, None) {
        Fault::CrashLoop => {
            lines.push(format!("{start} [emulator] fatal: injected failure ({FAULT_LABEL} or an image containing \"fail\")"));
        }
        _ if s(pod, "/status/phase") == "Succeeded" => {
            lines.push(format!("{start} [emulator] done"))
        }
        _ => lines.push(format!("{start} [emulator] ready")),
    }
    let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
    let mut out: String = lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

// === impl Engine ===

impl Engine {
    fn rt(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.store.registry().find_any_version(group, plural)
    }

    fn delay_for(&self, obj: &Value) -> Duration {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(DELAY_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|v| v.parse().ok())
            .map_or(self.config.delay, Duration::from_millis)
    }

    /// Runs `f` after the object's delay, at most once per object at a time.
    fn schedule(
        &self,
        group: &str,
        plural: &str,
        obj: &Value,
        f: fn(&Engine, &ResourceType, &str, &str),
    ) {
        let (ns, name) = name_ns(obj);
        // Different stages of one object are scheduled independently.
        let stage = f as usize;
        let key = (
            stage,
            group.to_string(),
            plural.to_string(),
            ns.clone(),
            name.clone(),
        );
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !pending.insert(key.clone()) {
                return;
            }
        }
        let delay = self.delay_for(obj);
        let engine = self.clone();
        let (group, plural) = (group.to_string(), plural.to_string());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            engine
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
            if let Some(rt) = engine.rt(&group, &plural) {
                f(&engine, &rt, &ns, &name);
            }
        });
    }

    fn resync(&self) {
        let registry = self.store.registry();
        for rt in registry.types() {
            for obj in self.store.find(rt, None, |_| true) {
                self.on_object(&rt.group, &rt.plural, EventType::Modified, &obj);
            }
        }
    }

    fn handle(&self, event: &Event) {
        self.on_object(&event.group, &event.plural, event.kind, &event.object);
    }

    fn on_object(&self, group: &str, plural: &str, kind: EventType, obj: &Value) {
        if kind == EventType::Deleted {
            self.on_deleted(obj);
            return;
        }
        let has_fin = |f: &str| {
            obj.pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == f))
        };
        if deleting(obj) {
            if has_fin("foregroundDeletion") {
                self.foreground(group, plural, obj);
            }
            match (group, plural) {
                ("", "pods") => self.schedule(group, plural, obj, Engine::finish_pod_deletion),
                ("", "namespaces") => self.purge_namespace(obj),
                _ => {}
            }
            return;
        }
        match (group, plural) {
            ("apps", "deployments") => {
                self.schedule(group, plural, obj, Engine::reconcile_deployment)
            }
            ("apps", "replicasets") if !has_controller(obj) => {
                self.schedule(group, plural, obj, Engine::reconcile_standalone_rs)
            }
            ("apps", "statefulsets") => {
                self.schedule(group, plural, obj, Engine::reconcile_statefulset)
            }
            ("apps", "daemonsets") => {
                self.schedule(group, plural, obj, Engine::reconcile_daemonset)
            }
            ("batch", "jobs") => self.schedule(group, plural, obj, Engine::reconcile_job),
            ("", "pods")
                if !has_controller(obj)
                    && obj.pointer("/status/phase").is_none_or(|p| p == "Pending") =>
            {
                self.schedule(group, plural, obj, Engine::reconcile_pod)
            }
            ("", "persistentvolumeclaims") if s(obj, "/status/phase") != "Bound" => {
                self.schedule(group, plural, obj, Engine::bind_pvc)
            }
            ("", "services")
                if s(obj, "/spec/type") == "LoadBalancer"
                    && obj.pointer("/status/loadBalancer/ingress").is_none() =>
            {
                self.schedule(group, plural, obj, Engine::provision_load_balancer)
            }
            ("networking.k8s.io", "ingresses")
                if obj.pointer("/status/loadBalancer/ingress").is_none() =>
            {
                self.schedule(group, plural, obj, Engine::provision_load_balancer)
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                if is_established(obj) {
                    self.store.register_crd(obj);
                } else {
                    self.schedule(group, plural, obj, Engine::establish_crd);
                }
            }
            _ => {}
        }
    }

    fn on_deleted(&self, obj: &Value) {
        let uid = s(obj, "/metadata/uid").to_string();
        // Background garbage collection of dependents.
        for (rt, dep) in self.store.dependents(&uid) {
            if deleting(&dep) {
                continue;
            }
            let (ns, name) = name_ns(&dep);
            let _ = self
                .store
                .delete(&rt, &ns, &name, &DeleteOptions::default());
        }
        // Owners waiting in foreground deletion may be done now.
        if let Some(refs) = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
        {
            for r in refs {
                let owner_uid = s(r, "/uid");
                let api_version = s(r, "/apiVersion");
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let Some(rt) = self.store.registry().find_kind(group, s(r, "/kind")) else {
                    continue;
                };
                let ns = s(obj, "/metadata/namespace");
                let ns = if rt.namespaced { ns } else { "" };
                if let Some(owner) = self.store.get_opt(&rt, ns, s(r, "/name"))
                    && s(&owner, "/metadata/uid") == owner_uid
                    && deleting(&owner)
                {
                    self.foreground(&rt.group, &rt.plural, &owner);
                }
            }
        }
        // A terminating namespace may be empty now.
        let ns = s(obj, "/metadata/namespace");
        if !ns.is_empty()
            && let Some(nsrt) = self.rt("", "namespaces")
            && let Some(namespace) = self.store.get_opt(&nsrt, "", ns)
            && deleting(&namespace)
        {
            self.purge_namespace(&namespace);
        }
    }

    fn foreground(&self, group: &str, plural: &str, obj: &Value) {
        let Some(rt) = self.rt(group, plural) else {
            return;
        };
        let uid = s(obj, "/metadata/uid");
        let dependents = self.store.dependents(uid);
        if dependents.is_empty() {
            let (ns, name) = name_ns(obj);
            self.store
                .controller_update(&rt, &ns, &name, Subresource::Main, |o| {
                    if let Some(fins) = o
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        fins.retain(|f| f != "foregroundDeletion");
                    }
                });
            return;
        }
        for (drt, dep) in dependents {
            if deleting(&dep) {
                continue;
            }
            let (ns, name) = name_ns(&dep);
            let opts = DeleteOptions {
                propagation: Some("Foreground".into()),
                ..DeleteOptions::default()
            };
            let _ = self.store.delete(&drt, &ns, &name, &opts);
        }
    }

    fn purge_namespace(&self, namespace: &Value) {
        let ns = s(namespace, "/metadata/name").to_string();
        let contents = self.store.namespace_contents(&ns);
        if contents.is_empty() {
            if let Some(nsrt) = self.rt("", "namespaces") {
                self.store.force_remove(&nsrt, "", &ns);
            }
            return;
        }
        for (rt, obj) in contents {
            if deleting(&obj) {
                if rt.is("", "pods") && obj.pointer("/metadata/finalizers").is_none() {
                    self.store.force_remove(&rt, &ns, s(&obj, "/metadata/name"));
                }
                continue;
            }
            let opts = DeleteOptions {
                grace_period: Some(0),
                ..DeleteOptions::default()
            };
            let _ = self
                .store
                .delete(&rt, &ns, s(&obj, "/metadata/name"), &opts);
        }
    }

    fn finish_pod_deletion(&self, rt: &ResourceType, ns: &str, name: &str) {
        if let Some(pod) = self.store.get_opt(rt, ns, name)
            && deleting(&pod)
            && pod
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        {
            self.store.force_remove(rt, ns, name);
        }
    }

    fn establish_crd(&self, rt: &ResourceType, _ns: &str, name: &str) {
        let now = now_rfc3339();
        let Some(crd) = self.store.controller_update(rt, "", name, Subresource::Status, |crd| {
            let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
            let stored: Vec<Value> = crd
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter(|v| v.get("storage") == Some(&json!(true))).filter_map(|v| v.get("name").cloned()).collect())
                .unwrap_or_default();
            crd["status"] = json!({
                "acceptedNames": names,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
                ],
                "storedVersions": stored,
            });
        }) else {
            return;
        };
        self.store.register_crd(&crd);
    }

    fn reconcile_pod(&self, rt: &ResourceType, ns: &str, name: &str) {
        let now = now_rfc3339();
        let Some(pod) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&pod) {
            return;
        }
        let fault = fault_of(&pod, None);
        self.store
            .controller_update(rt, ns, name, Subresource::Main, |p| {
                if p.pointer("/spec/nodeName").is_none() {
                    set_in(p, &["spec", "nodeName"], json!(NODE_NAME));
                }
            });
        self.store
            .controller_update(rt, ns, name, Subresource::Status, |p| {
                let status = pod_running(p, fault, &now);
                set_status_stable(p, status);
            });
    }

    /// Makes sure exactly `replicas` pods owned by `owner` exist (named by `name_of`) and sets their status.
    #[allow(clippy::too_many_arguments)]
    fn ensure_pods(
        &self,
        owner: &Value,
        owner_api_version: &str,
        owner_kind: &str,
        template: &Value,
        replicas: usize,
        extra_labels: &Map<String, Value>,
        name_of: &dyn Fn(usize) -> String,
        status_of: &dyn Fn(&Value) -> Value,
    ) -> Vec<Value> {
        let Some(pods_rt) = self.rt("", "pods") else {
            return Vec::new();
        };
        let (ns, _) = name_ns(owner);
        let uid = s(owner, "/metadata/uid").to_string();
        let existing = self.store.find(&pods_rt, Some(&ns), |p| owned_by(p, &uid));
        let wanted: Vec<String> = (0..replicas).map(name_of).collect();
        for pod in &existing {
            let name = s(pod, "/metadata/name");
            if !wanted.iter().any(|w| w == name) {
                self.store.force_remove(&pods_rt, &ns, name);
            }
        }
        let mut out = Vec::new();
        for name in wanted {
            if self.store.get_opt(&pods_rt, &ns, &name).is_none() {
                let mut labels = template
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                labels.extend(extra_labels.clone());
                let mut meta = json!({
                    "name": name, "namespace": ns, "labels": labels,
                    "ownerReferences": [owner_ref(owner, owner_api_version, owner_kind)],
                });
                if let Some(a) = template.pointer("/metadata/annotations") {
                    meta["annotations"] = a.clone();
                }
                let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
                set_in(&mut spec, &["nodeName"], json!(NODE_NAME));
                let body =
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
                self.store.controller_create(&pods_rt, &ns, body);
            }
            if let Some(pod) =
                self.store
                    .controller_update(&pods_rt, &ns, &name, Subresource::Status, |p| {
                        let status = status_of(p);
                        set_status_stable(p, status);
                    })
            {
                out.push(pod);
            }
        }
        out
    }

    fn reconcile_deployment(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(d) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&d) {
            return;
        }
        let Some(rs_rt) = self.rt("apps", "replicasets") else {
            return;
        };
        let now = now_rfc3339();
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let fault = fault_of(&d, Some(&template));
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let hash = short_hash(&template.to_string(), 10);
        let rs_name = format!("{name}-{hash}");
        let uid = s(&d, "/metadata/uid").to_string();
        // Old ReplicaSets are scaled down to zero.
        for old in self.store.find(&rs_rt, Some(ns), |r| {
            owned_by(r, &uid) && s(r, "/metadata/name") != rs_name
        }) {
            let old_name = s(&old, "/metadata/name").to_string();
            self.store
                .controller_update(&rs_rt, ns, &old_name, Subresource::Main, |r| {
                    set_in(r, &["spec", "replicas"], json!(0))
                });
            self.reconcile_rs(&rs_rt, ns, &old_name, fault);
        }
        let mut rs_template = template.clone();
        set_in(
            &mut rs_template,
            &["metadata", "labels", "pod-template-hash"],
            json!(hash),
        );
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        set_in(
            &mut selector,
            &["matchLabels", "pod-template-hash"],
            json!(hash),
        );
        if self.store.get_opt(&rs_rt, ns, &rs_name).is_none() {
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            set_in(&mut labels, &["pod-template-hash"], json!(hash));
            let body = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": "1"},
                    "ownerReferences": [owner_ref(&d, "apps/v1", "Deployment")]},
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            });
            self.store.controller_create(&rs_rt, ns, body);
        } else {
            self.store
                .controller_update(&rs_rt, ns, &rs_name, Subresource::Main, |r| {
                    set_in(r, &["spec", "replicas"], json!(replicas))
                });
        }
        let ready = self.reconcile_rs(&rs_rt, ns, &rs_name, fault);
        // Pods that never become ready: `Progressing` (since the rollout of this ReplicaSet started) until
        // `spec.progressDeadlineSeconds` has passed, then `ProgressDeadlineExceeded`, as the real deployment
        // controller does; `None` once the deadline has passed.
        let started_at = progress_started_at(&d, &rs_name, &now);
        let progress_started = if fault == Fault::CrashLoop {
            let remaining = started_at
                .as_deref()
                .map_or(Duration::ZERO, |t| self.progress_remaining(&d, t));
            if remaining.is_zero() {
                None
            } else {
                self.recheck_after(rt, ns, name, remaining);
                started_at.as_deref()
            }
        } else {
            None
        };
        let generation = d
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        self.store.controller_update(rt, ns, name, Subresource::Status, |obj| {
            let mut status = json!({"observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas});
            let conditions = match fault {
                Fault::None => {
                    status["readyReplicas"] = json!(ready);
                    status["availableReplicas"] = json!(ready);
                    vec![
                        condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", &now),
                        condition("Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{rs_name}\" has successfully progressed."), &now),
                    ]
                }
                Fault::CrashLoop => {
                    status["unavailableReplicas"] = json!(replicas);
                    let progressing = match progress_started {
                        None => condition("Progressing", "False", "ProgressDeadlineExceeded", &format!("ReplicaSet \"{rs_name}\" has timed out progressing."), &now),
                        Some(started) => condition("Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{rs_name}\" is progressing."), started),
                    };
                    vec![
                        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now),
                        progressing,
                    ]
                }
                Fault::Stuck => {
                    status["unavailableReplicas"] = json!(replicas);
                    vec![
                        condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now),
                        condition("Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{rs_name}\" is progressing."), &now),
                    ]
                }
            };
            if replicas == 0
                && let Some(m) = status.as_object_mut()
            {
                m.shift_remove("unavailableReplicas");
            }
            status["conditions"] = json!(conditions);
            set_status_stable(obj, status);
        });
    }

    /// How long until a Deployment whose rollout started at `started` passes its progress deadline.
    fn progress_remaining(&self, d: &Value, started: &str) -> Duration {
        let seconds = d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(600);
        let mut deadline = Duration::from_secs(seconds);
        if let Some(cap) = self.config.max_progress_deadline {
            deadline = deadline.min(cap);
        }
        let elapsed = OffsetDateTime::parse(started, &Rfc3339)
            .ok()
            .map_or(Duration::ZERO, |t| {
                Duration::try_from(OffsetDateTime::now_utc() - t).unwrap_or(Duration::ZERO)
            });
        deadline.saturating_sub(elapsed)
    }

    /// Reconciles a Deployment again after `after` (once per Deployment at a time): a progress deadline
    /// passing is not an event.
    fn recheck_after(&self, rt: &ResourceType, ns: &str, name: &str, after: Duration) {
        let key = (
            0,
            rt.group.clone(),
            rt.plural.clone(),
            ns.to_string(),
            name.to_string(),
        );
        if !self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone())
        {
            return;
        }
        let engine = self.clone();
        let (group, plural, ns, name) = (
            rt.group.clone(),
            rt.plural.clone(),
            ns.to_string(),
            name.to_string(),
        );
        tokio::spawn(async move {
            // Timestamps have second precision: wait past the second the deadline falls in.
            tokio::time::sleep(after + Duration::from_millis(1000)).await;
            engine
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
            if let Some(rt) = engine.rt(&group, &plural) {
                engine.reconcile_deployment(&rt, &ns, &name);
            }
        });
    }

    fn reconcile_standalone_rs(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(rs) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        let fault = fault_of(&rs, rs.pointer("/spec/template"));
        self.reconcile_rs(rt, ns, name, fault);
    }

    /// Pods and status of a ReplicaSet; returns the number of ready pods.
    fn reconcile_rs(&self, rt: &ResourceType, ns: &str, name: &str, fault: Fault) -> u64 {
        let Some(rs) = self.store.get_opt(rt, ns, name) else {
            return 0;
        };
        if deleting(&rs) {
            return 0;
        }
        let replicas = rs
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let now = now_rfc3339();
        let rs_name = name.to_string();
        let pods = self.ensure_pods(
            &rs,
            "apps/v1",
            "ReplicaSet",
            &template,
            usize::try_from(replicas).unwrap_or(0),
            &Map::new(),
            &|i| format!("{rs_name}-{}", short_hash(&format!("{rs_name}/{i}"), 5)),
            &|p| pod_running(p, fault, &now),
        );
        let ready = if fault == Fault::None {
            pods.len() as u64
        } else {
            0
        };
        let generation = rs
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        self.store.controller_update(rt, ns, name, Subresource::Status, |obj| {
            let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(), "observedGeneration": generation});
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
                status["availableReplicas"] = json!(ready);
            }
            set_status_stable(obj, status);
        });
        ready
    }

    fn reconcile_statefulset(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(sts) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&sts) {
            return;
        }
        let template = sts.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let fault = fault_of(&sts, Some(&template));
        let replicas = sts
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let revision = format!("{name}-{}", short_hash(&template.to_string(), 10));
        let now = now_rfc3339();
        let mut extra = Map::new();
        extra.insert("controller-revision-hash".into(), json!(revision));
        let sts_name = name.to_string();
        let pods = self.ensure_pods(
            &sts,
            "apps/v1",
            "StatefulSet",
            &template,
            usize::try_from(replicas).unwrap_or(0),
            &extra,
            &|i| format!("{sts_name}-{i}"),
            &|p| pod_running(p, fault, &now),
        );
        let ready = if fault == Fault::None { pods.len() } else { 0 };
        let generation = sts
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        self.store.controller_update(rt, ns, name, Subresource::Status, |obj| {
            let mut status = json!({
                "observedGeneration": generation, "replicas": pods.len(), "currentReplicas": pods.len(),
                "updatedReplicas": pods.len(), "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
                "availableReplicas": ready,
            });
            if ready > 0 {
                status["readyReplicas"] = json!(ready);
            }
            set_status_stable(obj, status);
        });
    }

    fn reconcile_daemonset(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(ds) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&ds) {
            return;
        }
        let template = ds.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let fault = fault_of(&ds, Some(&template));
        let now = now_rfc3339();
        let ds_name = name.to_string();
        let pods = self.ensure_pods(
            &ds,
            "apps/v1",
            "DaemonSet",
            &template,
            1,
            &Map::new(),
            &|_| {
                format!(
                    "{ds_name}-{}",
                    short_hash(&format!("{ds_name}/{NODE_NAME}"), 5)
                )
            },
            &|p| pod_running(p, fault, &now),
        );
        let scheduled = pods.len();
        let ready = if fault == Fault::None { scheduled } else { 0 };
        let generation = ds
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        self.store.controller_update(rt, ns, name, Subresource::Status, |obj| {
            let mut status = json!({
                "observedGeneration": generation, "desiredNumberScheduled": 1, "currentNumberScheduled": scheduled,
                "updatedNumberScheduled": scheduled, "numberMisscheduled": 0, "numberReady": ready,
            });
            if ready > 0 {
                status["numberAvailable"] = json!(ready);
            } else {
                status["numberUnavailable"] = json!(1);
            }
            set_status_stable(obj, status);
        });
    }

    fn reconcile_job(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(job) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&job) || job.pointer("/spec/suspend") == Some(&json!(true)) {
            return;
        }
        let finished = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
                })
            });
        if finished {
            return;
        }
        let template = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let fault = fault_of(&job, Some(&template));
        let success = fault == Fault::None;
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let now = now_rfc3339();
        let job_name = name.to_string();
        let mut extra = Map::new();
        extra.insert("job-name".into(), json!(name));
        extra.insert("batch.kubernetes.io/job-name".into(), json!(name));
        let pods = if fault == Fault::Stuck {
            0
        } else if success {
            completions
        } else {
            1
        };
        self.ensure_pods(
            &job,
            "batch/v1",
            "Job",
            &template,
            usize::try_from(pods).unwrap_or(0),
            &extra,
            &|i| format!("{job_name}-{}", short_hash(&format!("{job_name}/{i}"), 5)),
            &|p| pod_finished(p, success, &now),
        );
        if fault == Fault::Stuck {
            return;
        }
        self.store.controller_update(rt, ns, name, Subresource::Status, |obj| {
            let status = if success {
                json!({
                    "startTime": now, "completionTime": now, "succeeded": completions, "ready": 0, "terminating": 0,
                    "uncountedTerminatedPods": {},
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                        {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                    ],
                })
            } else {
                let limit = obj.pointer("/spec/backoffLimit").and_then(Value::as_u64).unwrap_or(6);
                json!({
                    "startTime": now, "failed": limit + 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
                    "conditions": [
                        {"type": "FailureTarget", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
                        {"type": "Failed", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
                    ],
                })
            };
            set_status_stable(obj, status);
        });
    }

    fn bind_pvc(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(pvc) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&pvc) || fault_of(&pvc, None) == Fault::Stuck {
            return;
        }
        let volume = format!("pvc-{}", s(&pvc, "/metadata/uid"));
        self.store
            .controller_update(rt, ns, name, Subresource::Main, |p| {
                if p.pointer("/spec/volumeName").is_none() {
                    set_in(p, &["spec", "volumeName"], json!(volume));
                }
                set_in(
                    p,
                    &["metadata", "annotations", "pv.kubernetes.io/bind-completed"],
                    json!("yes"),
                );
            });
        self.store.controller_update(rt, ns, name, Subresource::Status, |p| {
            let capacity = p.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"));
            let modes = p.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"]));
            p["status"] = json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": capacity}});
        });
    }

    fn provision_load_balancer(&self, rt: &ResourceType, ns: &str, name: &str) {
        let Some(obj) = self.store.get_opt(rt, ns, name) else {
            return;
        };
        if deleting(&obj) || fault_of(&obj, None) == Fault::Stuck {
            return;
        }
        let ip = format!("172.18.255.{}", 1 + ip_octet(&format!("{ns}/{name}")));
        self.store
            .controller_update(rt, ns, name, Subresource::Status, |o| {
                let ingress = if rt.is("", "services") {
                    json!([{"ip": ip, "ipMode": "VIP"}])
                } else {
                    json!([{"ip": ip}])
                };
                set_in(o, &["status", "loadBalancer"], json!({"ingress": ingress}));
            });
    }
}

fn has_controller(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller") == Some(&json!(true)))
        })
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}
