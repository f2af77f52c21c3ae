//! The object store of one simulated cluster: resourceVersions, writes, deletion, and the event history.
//!
//! All objects live in one ordered map keyed by (group, plural, namespace, name) behind a mutex, with one
//! revision counter for the whole cluster (like an etcd revision). Every write that changes something bumps
//! the counter, appends an event to a bounded history ring (which drives `410 Expired` on old watches) and
//! broadcasts it to open watches and the stage engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::defaults::apply_defaults;
use super::resources::{Registry, ResourceType};
use super::schema::{FieldSchema, ListType};
use super::selectors::{FieldSelector, LabelSelector};
use super::ssa::{self, ManagedEntry, Writer};
use super::status::{ApiError, ApiResult, delete_success};
use super::validation::validate;

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

/// One change in the store.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion of this change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// API group of the object.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// The object after the change (its last state for deletions).
    pub object: Value,
    /// The object before a modification, so that watches with selectors can tell entering from leaving.
    pub previous: Option<Value>,
}

/// Key of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjKey {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// Which endpoint of an object a write goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object itself.
    Main,
    /// `/status`.
    Status,
    /// `/scale`.
    Scale,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`, or one derived from the User-Agent.
    pub field_manager: Option<String>,
    /// `force=true` (apply only).
    pub force: bool,
}

/// The body of a PATCH request.
#[derive(Debug, Clone)]
pub enum PatchBody {
    /// Server-side apply configuration.
    Apply(Value),
    /// JSON merge patch (RFC 7386).
    Merge(Value),
    /// JSON patch (RFC 6902).
    Json(json_patch::Patch),
    /// Strategic merge patch (list-maps merged by key, `null` deletes).
    Strategic(Value),
}

/// `DeleteOptions` from a DELETE body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<String>,
    /// `dryRun: ["All"]`.
    pub dry_run: bool,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_rv: Option<String>,
}

/// Parameters of a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Page size.
    pub limit: Option<usize>,
    /// Continue token from a previous page.
    pub continue_token: Option<String>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// Replay history after this resourceVersion.
    After(u64),
    /// Start with the current state (synthetic ADDED events).
    Snapshot,
}

/// What a watch gets when it starts.
#[derive(Debug)]
pub struct WatchStarted {
    /// Events to send first (replayed history, or synthetic ADDED events of the snapshot).
    pub initial: Vec<Arc<Event>>,
    /// The store revision at subscription time.
    pub rv: u64,
    /// Live events after `rv`.
    pub receiver: broadcast::Receiver<Arc<Event>>,
}

/// Tunables of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Number of events kept for watch resumption.
    pub history: usize,
}

/// One simulated cluster's objects.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Event>>,
    history: usize,
    /// Pod log follows being served (`pods/log?follow=true`).
    log_follows: Arc<std::sync::atomic::AtomicUsize>,
    execs: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug)]
struct State {
    rv: u64,
    objects: BTreeMap<ObjKey, Value>,
    events: VecDeque<Arc<Event>>,
    evicted: u64,
    registry: Registry,
    allocated: u32,
}

/// One open pod log follow (or exec session); dropped, it is closed.
#[derive(Debug)]
pub(crate) struct LogFollow(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for LogFollow {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The name of the field manager used by the emulator's own controllers.
pub const CONTROLLER_MANAGER: &str = "edgecd-emulator-controller";

/// Formats "now" as the API server does (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Sets `value` at `path`, turning missing or non-object intermediate values into objects (never panics).
pub fn set_in(v: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *v = value;
        return;
    };
    let mut cur = v;
    for key in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        cur = map
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert((*last).to_string(), value);
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(map) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.shift_remove(k);
        }
    }
    v
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len)
        .map(|_| {
            let i = rand::random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

fn owner_uids(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// === impl ObjKey ===

impl ObjKey {
    /// The key of `name` of type `rt` in `namespace`.
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

// === impl Store ===

impl Store {
    /// A store with the built-in types, the standard namespaces and one ready node.
    pub fn new(config: &StoreConfig) -> Self {
        let history = config.history.max(1);
        let (tx, _) = broadcast::channel(history.clamp(16, 4096));
        let store = Self {
            state: Mutex::new(State {
                rv: 0,
                objects: BTreeMap::new(),
                events: VecDeque::new(),
                evicted: 0,
                registry: Registry::builtin(),
                allocated: 0,
            }),
            tx,
            history,
            log_follows: Arc::default(),
            execs: Arc::default(),
        };
        store.bootstrap();
        store
    }

    /// Pod log follows open now: a client that went away has closed its follow.
    pub fn open_log_follows(&self) -> usize {
        self.log_follows.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts a follow for as long as the returned guard lives.
    pub(crate) fn log_follow(&self) -> LogFollow {
        self.log_follows
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        LogFollow(Arc::clone(&self.log_follows))
    }

    /// Exec sessions running now: a client that went away has ended its command.
    pub fn open_execs(&self) -> usize {
        self.execs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts an exec session for as long as the returned guard lives.
    pub(crate) fn exec_session(&self) -> LogFollow {
        self.execs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        LogFollow(Arc::clone(&self.execs))
    }

    fn bootstrap(&self) {
        let opts = WriteOptions {
            field_manager: Some("kube-apiserver".into()),
            ..WriteOptions::default()
        };
        let registry = self.registry();
        if let Some(ns) = registry.find("", "v1", "namespaces") {
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let body =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                let _ = self.create(&ns, "", body, &opts);
            }
        }
        if let Some(nodes) = registry.find("", "v1", "nodes") {
            let body = json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": super::stages::NODE_NAME, "labels": {
                    "kubernetes.io/hostname": super::stages::NODE_NAME, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}},
                "spec": {"podCIDR": "10.244.0.0/24"},
            });
            let _ = self.create(&nodes, "", body, &opts);
            let now = now_rfc3339();
            let _ = self.controller_update(&nodes, "", super::stages::NODE_NAME, Subresource::Status, |n| {
                n["status"] = json!({
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status (emulated)",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
                    "addresses": [{"type": "InternalIP", "address": super::stages::NODE_IP},
                        {"type": "Hostname", "address": super::stages::NODE_NAME}],
                    "capacity": {"cpu": "1k", "memory": "1Ti", "pods": "1M"},
                    "allocatable": {"cpu": "1k", "memory": "1Ti", "pods": "1M"},
                    "nodeInfo": {"kubeletVersion": "v1.33.0", "operatingSystem": "linux",
                        "architecture": "amd64", "containerRuntimeVersion": "emulated://1.0",
                        "kernelVersion": "", "osImage": "edgecd kube emulator", "kubeProxyVersion": "",
                        "machineID": "", "systemUUID": "", "bootID": ""},
                    "phase": "Running",
                });
            });
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-written in a way we could repair,
        // so keep serving what is there.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the served types.
    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    /// Registers the types of an established CRD.
    pub fn register_crd(&self, crd: &Value) {
        self.lock().registry.register_crd(crd);
    }

    /// The current revision.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// Subscribes to all changes (used by the stage engine).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Reads one object.
    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> ApiResult<Value> {
        let st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        st.objects
            .get(&key)
            .map(|o| with_type(o, rt))
            .ok_or_else(|| ApiError::not_found(rt.gr(), name))
    }

    /// Reads one object if present.
    pub fn get_opt(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        self.get(rt, namespace, name).ok()
    }

    /// Lists objects of a type, optionally in one namespace.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        q: &ListQuery,
    ) -> ApiResult<Value> {
        let st = self.lock();
        let (list_rv, after) = match &q.continue_token {
            Some(token) => decode_continue(token)?,
            None => (st.rv, None),
        };
        let mut items = Vec::new();
        let mut next = None;
        for (key, obj) in st.range(rt, namespace) {
            // Positions compare as (namespace, name), the order of the map.
            if after.as_ref().is_some_and(|(ns, name)| {
                (key.namespace.as_str(), key.name.as_str()) <= (ns.as_str(), name.as_str())
            }) {
                continue;
            }
            if !q.labels.matches(obj) || !q.fields.matches(obj) {
                continue;
            }
            if q.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                next = items.last().map(|o: &Value| {
                    (
                        str_at(o, "/metadata/namespace").to_string(),
                        str_at(o, "/metadata/name").to_string(),
                    )
                });
                break;
            }
            items.push(with_type(obj, rt));
        }
        let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
        if let Some(pos) = next {
            metadata["continue"] = json!(encode_continue(list_rv, &pos));
        }
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// All objects of a type matching a predicate (controller helper).
    pub fn find(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let st = self.lock();
        st.range(rt, namespace)
            .filter(|(_, o)| pred(o))
            .map(|(_, o)| with_type(o, rt))
            .collect()
    }

    /// Every object that lists `uid` among its owner references, with its type.
    pub fn dependents(&self, uid: &str) -> Vec<(Arc<ResourceType>, Value)> {
        let st = self.lock();
        st.objects
            .iter()
            .filter(|(_, o)| owner_uids(o).contains(&uid))
            .filter_map(|(k, o)| {
                let rt = st.registry.find_any_version(&k.group, &k.plural)?;
                Some((rt.clone(), with_type(o, &rt)))
            })
            .collect()
    }

    /// Every object in a namespace, with its type.
    pub fn namespace_contents(&self, namespace: &str) -> Vec<(Arc<ResourceType>, Value)> {
        let st = self.lock();
        st.objects
            .iter()
            .filter(|(k, _)| k.namespace == namespace)
            .filter_map(|(k, o)| {
                let rt = st.registry.find_any_version(&k.group, &k.plural)?;
                Some((rt.clone(), with_type(o, &rt)))
            })
            .collect()
    }

    /// Creates an object (POST).
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        mut body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        check_type(rt, &body)?;
        let mut st = self.lock();
        let meta = meta_mut(&mut body).ok_or_else(|| ApiError::bad_request("invalid metadata"))?;
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => format!("{prefix}{}", random_suffix(5)),
                _ => String::new(),
            },
        };
        meta.insert("name".into(), json!(name));
        st.check_namespace(rt, namespace, meta)?;
        let key = ObjKey::new(rt, namespace, &name);
        if !name.is_empty() && st.objects.contains_key(&key) {
            return Err(ApiError::already_exists(rt.gr(), &name));
        }
        reset_server_fields(&mut body);
        if rt.status
            && rt.crd.is_some()
            && let Some(map) = body.as_object_mut()
        {
            map.shift_remove("status");
        }
        apply_defaults(&rt.group, &rt.kind, &mut body);
        validate(rt, &body, None)?;
        if rt.is("", "services") {
            st.allocate_service_addresses(&mut body);
        }
        let manager = opts
            .field_manager
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let now = now_rfc3339();
        let writer = Writer {
            manager: &manager,
            api_version: &rt.api_version(),
            subresource: None,
            now: &now,
        };
        let entries = ssa::update(&json!({}), &body, Vec::new(), &writer, &rt.schema);
        ManagedEntry::write_all(&mut body, &entries);
        init_identity(&mut body, rt);
        check_size(&body)?;
        Ok(self.commit(&mut st, rt, key, None, body, opts.dry_run))
    }

    /// Replaces an object (PUT), on the main resource or a subresource.
    pub fn replace(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        opts: &WriteOptions,
        sub: Subresource,
    ) -> ApiResult<Value> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let mut st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        let old = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.gr(), name))?;
        if sub == Subresource::Scale {
            return self.write_scale(&mut st, rt, key, &old, &body, opts);
        }
        check_type(rt, &body)?;
        check_name(&body, name, namespace, rt)?;
        let body_rv = str_at(&body, "/metadata/resourceVersion");
        if !body_rv.is_empty() && body_rv != str_at(&old, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(rt.gr(), name));
        }
        self.update_object(&mut st, rt, key, &old, body, opts, sub)
    }

    /// Patches an object; an apply patch of a missing object creates it (the `bool` is true then).
    pub fn patch(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch: PatchBody,
        opts: &WriteOptions,
        sub: Subresource,
    ) -> ApiResult<(Value, bool)> {
        let mut st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        let old = st.objects.get(&key).cloned();
        if let PatchBody::Apply(config) = patch {
            return self.apply(&mut st, rt, key, old, config, opts, sub);
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt.gr(), name))?;
        if sub == Subresource::Scale {
            let mut scale = scale_of(&old);
            patch_value(&mut scale, &patch, rt)?;
            return self
                .write_scale(&mut st, rt, key, &old, &scale, opts)
                .map(|v| (v, false));
        }
        let mut doc = with_type(&old, rt);
        patch_value(&mut doc, &patch, rt)?;
        check_name(&doc, name, namespace, rt)?;
        let patched_rv = str_at(&doc, "/metadata/resourceVersion");
        if !patched_rv.is_empty() && patched_rv != str_at(&old, "/metadata/resourceVersion") {
            return Err(ApiError::conflict(rt.gr(), name));
        }
        self.update_object(&mut st, rt, key, &old, doc, opts, sub)
            .map(|v| (v, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        old: Option<Value>,
        mut config: Value,
        opts: &WriteOptions,
        sub: Subresource,
    ) -> ApiResult<(Value, bool)> {
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "the apply configuration must be an object",
            ));
        }
        check_type(rt, &config)?;
        if config.pointer("/metadata/managedFields").is_some() {
            return Err(ApiError::bad_request(
                "metadata.managedFields must be nil when applying a configuration",
            ));
        }
        check_name(&config, &key.name, &key.namespace, rt)?;
        let manager = opts.field_manager.clone().unwrap_or_default();
        let api_version = rt.api_version();
        let now = now_rfc3339();
        let sub_name = match sub {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
            Subresource::Scale => Some("scale"),
        };
        let writer = Writer {
            manager: &manager,
            api_version: &api_version,
            subresource: sub_name,
            now: &now,
        };
        let created = old.is_none();
        let live = match &old {
            Some(o) => o.clone(),
            None => {
                if sub != Subresource::Main {
                    return Err(ApiError::not_found(rt.gr(), &key.name));
                }
                let mut meta = Map::new();
                meta.insert("name".into(), json!(key.name));
                st.check_namespace(rt, &key.namespace, &mut meta)?;
                if rt.namespaced {
                    meta.insert("namespace".into(), json!(key.namespace));
                }
                json!({"apiVersion": api_version, "kind": rt.kind, "metadata": meta})
            }
        };
        // Only the part of the configuration that this endpoint owns is applied.
        if let Some(map) = config.as_object_mut() {
            match sub {
                Subresource::Main if rt.status => {
                    map.shift_remove("status");
                }
                Subresource::Status => {
                    let status = map.get("status").cloned();
                    map.retain(|k, _| k == "apiVersion" || k == "kind" || k == "metadata");
                    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.retain(|k, _| k == "name" || k == "namespace");
                    }
                    if let Some(status) = status {
                        map.insert("status".into(), status);
                    }
                }
                _ => {}
            }
        }
        let entries = ManagedEntry::read_all(&live);
        let mut live_bare = live.clone();
        strip_managed(&mut live_bare);
        let group = rt.group.clone();
        let kind = rt.kind.clone();
        let default = move |o: &mut Value| apply_defaults(&group, &kind, o);
        let applied = ssa::apply(
            &live_bare, &config, entries, &writer, opts.force, &rt.schema, &default,
        )?;
        let mut new = applied.object;
        if let Some(old) = &old {
            restore_server_fields(&mut new, old);
            match sub {
                Subresource::Main if rt.status => copy_status(&mut new, old),
                Subresource::Status => {
                    let status = new.get("status").cloned();
                    new = old.clone();
                    set_status(&mut new, status);
                }
                _ => {}
            }
        } else {
            reset_server_fields(&mut new);
            if rt.status
                && let Some(map) = new.as_object_mut()
            {
                map.shift_remove("status");
            }
            apply_defaults(&rt.group, &rt.kind, &mut new);
            if rt.is("", "services") {
                st.allocate_service_addresses(&mut new);
            }
        }
        validate(rt, &new, old.as_ref())?;
        ManagedEntry::write_all(&mut new, &applied.entries);
        check_size(&new)?;
        match &old {
            Some(old) => {
                bump_generation(&mut new, old, rt);
                Ok((
                    self.commit(st, rt, key, Some(old), new, opts.dry_run),
                    false,
                ))
            }
            None => {
                init_identity(&mut new, rt);
                Ok((self.commit(st, rt, key, None, new, opts.dry_run), created))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn update_object(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        old: &Value,
        mut new: Value,
        opts: &WriteOptions,
        sub: Subresource,
    ) -> ApiResult<Value> {
        // As the real server does, managedFields sent with an update of the main resource replace the
        // live ones (kubectl's client-side to server-side apply migration relies on it); an absent or
        // empty list, or one that does not decode, keeps the live ones.
        let sent_entries = match new
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
        {
            Some(list)
                if sub == Subresource::Main
                    && !list.is_empty()
                    && list.iter().all(|e| {
                        e.as_object().is_some_and(|m| {
                            m.is_empty() || m.get("manager").is_some_and(Value::is_string)
                        })
                    }) =>
            {
                Some(ManagedEntry::read_all(&new))
            }
            _ => None,
        };
        restore_server_fields(&mut new, old);
        match sub {
            Subresource::Main if rt.status => copy_status(&mut new, old),
            Subresource::Status => {
                let status = new.get("status").cloned();
                new = old.clone();
                set_status(&mut new, status);
            }
            _ => {}
        }
        apply_defaults(&rt.group, &rt.kind, &mut new);
        if rt.is("", "services") {
            keep_cluster_ip(&mut new, old);
        }
        validate(rt, &new, Some(old))?;
        let manager = opts
            .field_manager
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let api_version = rt.api_version();
        let now = now_rfc3339();
        let sub_name = match sub {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
            Subresource::Scale => Some("scale"),
        };
        let writer = Writer {
            manager: &manager,
            api_version: &api_version,
            subresource: sub_name,
            now: &now,
        };
        let mut old_bare = old.clone();
        strip_managed(&mut old_bare);
        strip_managed(&mut new);
        let entries = ssa::update(
            &old_bare,
            &new,
            sent_entries.unwrap_or_else(|| ManagedEntry::read_all(old)),
            &writer,
            &rt.schema,
        );
        ManagedEntry::write_all(&mut new, &entries);
        bump_generation(&mut new, old, rt);
        check_size(&new)?;
        Ok(self.commit(st, rt, key, Some(old), new, opts.dry_run))
    }

    fn write_scale(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        old: &Value,
        scale: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        if !rt.scale {
            return Err(ApiError::path_not_found());
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::bad_request("spec.replicas is required"))?;
        let mut new = old.clone();
        set_in(&mut new, &["spec", "replicas"], json!(replicas));
        let updated = self.update_object(st, rt, key, old, new, opts, Subresource::Scale)?;
        Ok(scale_of(&updated))
    }

    /// Reads the `/scale` subresource.
    pub fn get_scale(&self, rt: &ResourceType, namespace: &str, name: &str) -> ApiResult<Value> {
        if !rt.scale {
            return Err(ApiError::path_not_found());
        }
        self.get(rt, namespace, name).map(|o| scale_of(&o))
    }

    /// Deletes an object, honouring finalizers, propagation policy and graceful pod deletion.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let mut st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        let old = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt.gr(), name))?;
        if opts
            .precondition_uid
            .as_deref()
            .is_some_and(|u| u != str_at(&old, "/metadata/uid"))
            || opts
                .precondition_rv
                .as_deref()
                .is_some_and(|r| r != str_at(&old, "/metadata/resourceVersion"))
        {
            return Err(ApiError::conflict(rt.gr(), name));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            if rt.is("", "pods") && opts.grace_period == Some(0) {
                return Ok(self.remove(&mut st, rt, key, &old, opts.dry_run));
            }
            return Ok(with_type(&old, rt));
        }
        let policy = opts.propagation.as_deref().unwrap_or("Background");
        if !matches!(policy, "Background" | "Foreground" | "Orphan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![super::status::Cause {
                    reason: "FieldValueNotSupported",
                    message: format!(
                        "Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                    field: "propagationPolicy".into(),
                }],
            ));
        }
        let uid = str_at(&old, "/metadata/uid").to_string();
        if policy == "Orphan" && !opts.dry_run {
            self.orphan_dependents(&mut st, &uid);
        }
        let mut fins = finalizers(&old);
        if rt.is_namespace() {
            fins.push("kubernetes".into());
        }
        if policy == "Foreground" && !fins.iter().any(|f| f == "foregroundDeletion") {
            fins.push("foregroundDeletion".into());
        }
        let graceful_pod = rt.is("", "pods") && opts.grace_period != Some(0);
        if fins.is_empty() && !graceful_pod {
            return Ok(self.remove(&mut st, rt, key, &old, opts.dry_run));
        }
        let mut new = old.clone();
        if let Some(meta) = meta_mut(&mut new) {
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            let grace = if graceful_pod {
                opts.grace_period
                    .or_else(|| {
                        old.pointer("/spec/terminationGracePeriodSeconds")
                            .and_then(Value::as_i64)
                    })
                    .unwrap_or(30)
            } else {
                0
            };
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            let own_fins: Vec<String> = fins
                .iter()
                .filter(|f| f.as_str() != "kubernetes" || !rt.is_namespace())
                .cloned()
                .collect();
            if !own_fins.is_empty() {
                meta.insert("finalizers".into(), json!(own_fins));
            }
        }
        if rt.is_namespace() {
            set_in(&mut new, &["status", "phase"], json!("Terminating"));
        }
        Ok(self.commit(&mut st, rt, key, Some(&old), new, opts.dry_run))
    }

    /// Deletes every matching object of a type (DELETE on a collection).
    pub fn delete_collection(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        q: &ListQuery,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let targets = self.find(rt, namespace, |o| {
            q.labels.matches(o) && q.fields.matches(o)
        });
        let mut items = Vec::new();
        for obj in targets {
            let ns = str_at(&obj, "/metadata/namespace").to_string();
            let name = str_at(&obj, "/metadata/name").to_string();
            if let Ok(v) = self.delete(rt, &ns, &name, opts)
                && v.get("kind").and_then(Value::as_str) != Some("Status")
            {
                items.push(v);
            }
        }
        let rv = self.current_rv();
        Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        }))
    }

    fn orphan_dependents(&self, st: &mut State, uid: &str) {
        let keys: Vec<ObjKey> = st
            .objects
            .iter()
            .filter(|(_, o)| owner_uids(o).contains(&uid))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let Some(rt) = st.registry.find_any_version(&key.group, &key.plural) else {
                continue;
            };
            let Some(old) = st.objects.get(&key).cloned() else {
                continue;
            };
            let mut new = old.clone();
            if let Some(refs) = new
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                if refs.is_empty()
                    && let Some(meta) = meta_mut(&mut new)
                {
                    meta.shift_remove("ownerReferences");
                }
            }
            self.commit(st, &rt, key, Some(&old), new, false);
        }
    }

    fn remove(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        old: &Value,
        dry_run: bool,
    ) -> Value {
        let uid = str_at(old, "/metadata/uid").to_string();
        let mut last = with_type(old, rt);
        if !dry_run {
            st.rv += 1;
            let rv = st.rv;
            st.objects.remove(&key);
            if let Some(meta) = meta_mut(&mut last) {
                meta.insert("resourceVersion".into(), json!(rv.to_string()));
            }
            self.publish(st, rt, EventType::Deleted, &key, last.clone(), None);
            if rt.is("apiextensions.k8s.io", "customresourcedefinitions") {
                self.remove_custom_resources(st, old);
                st.registry.unregister_crd(&key.name);
            }
        }
        if rt.return_deleted {
            last
        } else {
            delete_success(rt.gr(), &key.name, &uid)
        }
    }

    /// Removes every object of a deleted CRD's kind (with DELETED events), before its type goes away.
    fn remove_custom_resources(&self, st: &mut State, crd: &Value) {
        let group = str_at(crd, "/spec/group");
        let plural = str_at(crd, "/spec/names/plural");
        let Some(crt) = st.registry.find_any_version(group, plural) else {
            return;
        };
        let keys: Vec<ObjKey> = st
            .objects
            .keys()
            .filter(|k| k.group == group && k.plural == plural)
            .cloned()
            .collect();
        for key in keys {
            if let Some(obj) = st.objects.get(&key).cloned() {
                self.remove(st, &crt, key, &obj, false);
            }
        }
    }

    /// Writes `new` unless it equals `old` (no-op): bumps the revision, stores, records and broadcasts.
    fn commit(
        &self,
        st: &mut State,
        rt: &ResourceType,
        key: ObjKey,
        old: Option<&Value>,
        mut new: Value,
        dry_run: bool,
    ) -> Value {
        if let Some(map) = new.as_object_mut() {
            map.insert("apiVersion".into(), json!(rt.api_version()));
            map.insert("kind".into(), json!(rt.kind));
        }
        if let Some(old) = old
            && with_type(old, rt) == new
        {
            return new;
        }
        // An object being deleted whose last finalizer went away is removed now.
        let finished = new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&new).is_empty()
            && !(rt.is("", "pods")
                && new
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    > 0)
            && !rt.is_namespace();
        if finished && let Some(old) = old {
            let mut last = new.clone();
            if let Some(meta) = meta_mut(&mut last) {
                meta.insert(
                    "resourceVersion".into(),
                    json!(str_at(old, "/metadata/resourceVersion")),
                );
            }
            self.remove(st, rt, key, &last, dry_run);
            return with_type(&new, rt);
        }
        if dry_run {
            return new;
        }
        st.rv += 1;
        let rv = st.rv;
        if let Some(meta) = meta_mut(&mut new) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        st.objects.insert(key.clone(), new.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.publish(
            st,
            rt,
            kind,
            &key,
            new.clone(),
            old.map(|o| with_type(o, rt)),
        );
        new
    }

    fn publish(
        &self,
        st: &mut State,
        rt: &ResourceType,
        kind: EventType,
        key: &ObjKey,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(Event {
            rv: st.rv,
            kind,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: key.namespace.clone(),
            object,
            previous,
        });
        st.events.push_back(event.clone());
        while st.events.len() > self.history {
            if let Some(old) = st.events.pop_front() {
                st.evicted = old.rv;
            }
        }
        // Nobody listening is fine.
        let _ = self.tx.send(event);
    }

    /// Starts a watch: replays history after an RV (or the current state) and subscribes, atomically.
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        start: WatchStart,
    ) -> ApiResult<WatchStarted> {
        let st = self.lock();
        let receiver = self.tx.subscribe();
        let initial = match start {
            WatchStart::Snapshot => st
                .range(rt, namespace)
                .map(|(k, o)| {
                    Arc::new(Event {
                        rv: str_at(o, "/metadata/resourceVersion").parse().unwrap_or(0),
                        kind: EventType::Added,
                        group: k.group.clone(),
                        plural: k.plural.clone(),
                        namespace: k.namespace.clone(),
                        object: with_type(o, rt),
                        previous: None,
                    })
                })
                .collect(),
            WatchStart::After(rv) => {
                if rv < st.evicted {
                    let oldest = st.events.front().map_or(st.rv, |e| e.rv);
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({oldest})"
                    )));
                }
                st.events
                    .iter()
                    .filter(|e| e.rv > rv && e.group == rt.group && e.plural == rt.plural)
                    .filter(|e| namespace.is_none_or(|ns| e.namespace == ns))
                    .cloned()
                    .collect()
            }
        };
        Ok(WatchStarted {
            initial,
            rv: st.rv,
            receiver,
        })
    }

    /// Applies a controller change to an object (status or main resource); returns the stored object.
    pub fn controller_update(
        &self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        sub: Subresource,
        mutate: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let mut st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        let old = st.objects.get(&key).cloned()?;
        let mut new = old.clone();
        mutate(&mut new);
        if new == old {
            return Some(old);
        }
        let opts = WriteOptions {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            ..WriteOptions::default()
        };
        self.update_object(&mut st, rt, key, &old, new, &opts, sub)
            .ok()
    }

    /// Creates an object on behalf of a controller (no namespace-terminating check bypass).
    pub fn controller_create(
        &self,
        rt: &ResourceType,
        namespace: &str,
        body: Value,
    ) -> Option<Value> {
        let opts = WriteOptions {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            ..WriteOptions::default()
        };
        self.create(rt, namespace, body, &opts).ok()
    }

    /// Removes an object immediately, ignoring finalizers (used by namespace cleanup and pod termination).
    pub fn force_remove(&self, rt: &ResourceType, namespace: &str, name: &str) {
        let mut st = self.lock();
        let key = ObjKey::new(rt, namespace, name);
        if let Some(old) = st.objects.get(&key).cloned() {
            self.remove(&mut st, rt, key, &old, false);
        }
    }
}

/// etcd's default request limit (`--max-request-bytes`): the API server cannot store a larger object.
const MAX_OBJECT_BYTES: usize = 1_572_864;

/// Refuses an object too large for etcd, as a real API server does (500, "etcdserver: request is too large").
fn check_size(object: &Value) -> ApiResult<()> {
    let size = serde_json::to_vec(object).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_OBJECT_BYTES {
        return Err(ApiError::internal("etcdserver: request is too large"));
    }
    Ok(())
}

// === impl State ===

impl State {
    /// Gives a new Service a cluster IP and, for NodePort/LoadBalancer, node ports.
    fn allocate_service_addresses(&mut self, svc: &mut Value) {
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let kind = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if kind == "ExternalName" {
            return;
        }
        if spec
            .get("clusterIP")
            .is_none_or(|ip| ip.as_str().is_none_or(str::is_empty))
        {
            self.allocated += 1;
            let n = self.allocated;
            let ip = format!("10.96.{}.{}", (n / 250) % 256, n % 250 + 1);
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        if (kind == "NodePort" || kind == "LoadBalancer")
            && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
        {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                if port.get("nodePort").is_none() {
                    self.allocated += 1;
                    port.insert("nodePort".into(), json!(30000 + self.allocated % 2768));
                }
            }
        }
    }

    fn range<'a>(
        &'a self,
        rt: &ResourceType,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        let start = ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            name: String::new(),
        };
        let group = rt.group.clone();
        let plural = rt.plural.clone();
        let namespaced = rt.namespaced;
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.group == group && k.plural == plural)
            .filter(move |(k, _)| !namespaced || namespace.is_none_or(|ns| k.namespace == ns))
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        namespace: &str,
        meta: &mut Map<String, Value>,
    ) -> ApiResult<()> {
        if !rt.namespaced {
            meta.shift_remove("namespace");
            return Ok(());
        }
        if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
            && !body_ns.is_empty()
            && body_ns != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta.insert("namespace".into(), json!(namespace));
        let key = ObjKey {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: namespace.to_string(),
        };
        match self.objects.get(&key) {
            None => Err(ApiError::not_found(
                super::status::GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                namespace,
            )),
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(
                    format!(
                        "unable to create new content in namespace {namespace} because it is being terminated"
                    ),
                    Some(json!({"name": namespace, "kind": "namespaces", "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {namespace} is being terminated"),
                    "field": "metadata.namespace"}]})),
                ))
            }
            Some(_) => Ok(()),
        }
    }
}

fn with_type(obj: &Value, rt: &ResourceType) -> Value {
    let mut obj = obj.clone();
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
    }
    obj
}

fn check_type(rt: &ResourceType, body: &Value) -> ApiResult<()> {
    let kind = body.get("kind").and_then(Value::as_str);
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    if kind.is_some_and(|k| k != rt.kind) || api_version.is_some_and(|v| v != rt.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            api_version.unwrap_or_default(),
            rt.api_version()
        )));
    }
    Ok(())
}

fn check_name(body: &Value, name: &str, namespace: &str, rt: &ResourceType) -> ApiResult<()> {
    let body_name = str_at(body, "/metadata/name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = str_at(body, "/metadata/namespace");
    if rt.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Clears fields only the server sets (for creates).
fn reset_server_fields(obj: &mut Value) {
    if let Some(meta) = meta_mut(obj) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.shift_remove(k);
        }
    }
}

/// Copies identity and server-managed metadata from the live object into an update.
fn restore_server_fields(new: &mut Value, old: &Value) {
    let Some(old_meta) = old.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let Some(meta) = meta_mut(new) else {
        return;
    };
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "managedFields",
    ] {
        match old_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.shift_remove(k);
            }
        }
    }
    // Finalizers may only be removed once deletion started, never added.
    if old_meta.contains_key("deletionTimestamp") {
        let old_fins: Vec<Value> = old_meta
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(fins) = meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            fins.retain(|f| old_fins.contains(f));
            if fins.is_empty() {
                meta.shift_remove("finalizers");
            }
        }
    }
}

/// An update that leaves out the allocated cluster IP keeps it (it is immutable once set).
fn keep_cluster_ip(new: &mut Value, old: &Value) {
    for field in ["clusterIP", "clusterIPs"] {
        if let Some(ip) = old.pointer(&format!("/spec/{field}"))
            && new.pointer(&format!("/spec/{field}")).is_none()
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert(field.into(), ip.clone());
        }
    }
}

fn init_identity(obj: &mut Value, rt: &ResourceType) {
    if let Some(meta) = meta_mut(obj) {
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if rt.generation {
            meta.insert("generation".into(), json!(1));
        }
    }
}

fn bump_generation(new: &mut Value, old: &Value, rt: &ResourceType) {
    if !rt.generation {
        return;
    }
    let old_gen = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let gen_ = if spec_part(old) != spec_part(new) {
        old_gen + 1
    } else {
        old_gen
    };
    if let Some(meta) = meta_mut(new) {
        meta.insert("generation".into(), json!(gen_));
    }
}

fn strip_managed(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
}

fn copy_status(new: &mut Value, old: &Value) {
    set_status(new, old.get("status").cloned());
}

fn set_status(obj: &mut Value, status: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match status {
            Some(s) => {
                map.insert("status".into(), s);
            }
            None => {
                map.shift_remove("status");
            }
        }
    }
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": str_at(obj, "/metadata/name"),
            "namespace": str_at(obj, "/metadata/namespace"),
            "uid": str_at(obj, "/metadata/uid"),
            "resourceVersion": str_at(obj, "/metadata/resourceVersion"),
            "creationTimestamp": str_at(obj, "/metadata/creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

fn patch_value(doc: &mut Value, patch: &PatchBody, rt: &ResourceType) -> ApiResult<()> {
    match patch {
        PatchBody::Merge(p) => {
            json_patch::merge(doc, p);
            Ok(())
        }
        PatchBody::Json(p) => {
            json_patch::patch(doc, p).map_err(|e| ApiError::unprocessable(e.to_string()))
        }
        PatchBody::Strategic(p) => {
            let vs = ssa::walk::root_schema(&rt.schema);
            strategic_merge(doc, p, &vs);
            Ok(())
        }
        PatchBody::Apply(_) => Err(ApiError::internal("apply is not a plain patch")),
    }
}

/// A strategic merge patch: like a merge patch, but list-maps merge by key and sets by value.
fn strategic_merge(doc: &mut Value, patch: &Value, vs: &FieldSchema) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, pv) in p {
                if k.starts_with("$") {
                    continue;
                }
                if pv.is_null() {
                    d.shift_remove(k);
                    continue;
                }
                let fs = vs.child.field(k);
                match d.get_mut(k) {
                    Some(dv) => strategic_merge(dv, pv, &fs),
                    None => {
                        d.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(p)) => match &vs.list {
            ListType::Map(keys) => {
                let item_vs = FieldSchema {
                    list: ListType::Atomic,
                    map_atomic: false,
                    child: vs.child.clone(),
                };
                for item in p {
                    let key = ssa::walk::item_key(item, keys);
                    match d
                        .iter_mut()
                        .find(|x| key.is_some() && ssa::walk::item_key(x, keys) == key)
                    {
                        Some(existing) => strategic_merge(existing, item, &item_vs),
                        None => d.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in p {
                    if !d.contains(item) {
                        d.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *d = p.clone(),
        },
        (d, p) => *d = p.clone(),
    }
}

fn encode_continue(rv: u64, (namespace, name): &(String, String)) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"rv": rv, "namespace": namespace, "name": name}).to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, Option<(String, String)>)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?;
    let namespace = v.get("namespace").and_then(Value::as_str).ok_or_else(bad)?;
    let name = v.get("name").and_then(Value::as_str).ok_or_else(bad)?;
    Ok((rv, Some((namespace.to_string(), name.to_string()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_in_replaces_non_objects_instead_of_panicking() {
        let mut v = json!({"spec": "not an object"});
        set_in(&mut v, &["spec", "replicas"], json!(3));
        assert_eq!(v, json!({"spec": {"replicas": 3}}));
        let mut v = json!(null);
        set_in(&mut v, &["a", "b"], json!(1));
        assert_eq!(v, json!({"a": {"b": 1}}));
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(7, &("a-b".to_string(), "x".to_string()));
        assert_eq!(
            decode_continue(&token).unwrap(),
            (7, Some(("a-b".into(), "x".into())))
        );
        assert_eq!(decode_continue("garbage").unwrap_err().code, 400);
    }
}
