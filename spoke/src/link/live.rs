//! Live sessions the hub opens on the stream (`live-sessions.v1`, `live-exec.v1`): a managed resource's live manifest, its events, its pods' logs (tail or follow), and commands run in their containers (exec, over the API server's `pods/exec` WebSocket), on an operator's behalf. Only objects the app manages and the pods they own are served; exec only while this spoke's `--exec` allows it. Each session sends at most the hub's credit ahead (so a slow reader slows only its session), takes exec input at most its own credit ahead, is bounded in bytes and time, is cancelled when the hub says so or the stream ends, and goes to the hub behind the link's own reports.
//!
//! ```text
//!  LiveOpen ─► Live::open ─► task: find app ─► check object is its own ─► read (get / events / logs) or exec
//!                                 └─► Emitter: ≤16 KiB chunks, credit (semaphore), byte cap ─► low-priority queue ─► stream
//!  LiveCredit ─► semaphore += bytes      LiveCancel / stream end ─► task aborted (the API request is dropped)
//!  LiveInput ─► the session's input (bounded by INPUT_LIMIT) ─► pump ─► the command's stdin / terminal size ─► LiveCredit to the hub
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use edgecd_core::app::ResourceKey;
use edgecd_proto::convert as pc;
use edgecd_proto::v1::{self, LiveEndCode, spoke_message};
use futures::{AsyncBufReadExt as _, SinkExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::{Api, AttachParams, ListParams, LogParams, TerminalSize};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::cluster::{ClusterError, LiveCluster};
use crate::crd::{self, Application};

/// Most data in one chunk.
const CHUNK: usize = 16 * 1024;
/// Bytes one session may send at most, whatever the hub asks.
const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// How long one session may last at most, whatever the hub asks.
const MAX_DURATION: Duration = Duration::from_secs(4 * 3600);
/// Sessions open at once on this spoke.
const MAX_SESSIONS: usize = 64;
/// Pods one log session reads at once.
const MAX_PODS: usize = 20;
/// How deep a pod's owners are followed (Pod → ReplicaSet → Deployment; Pod → Job → CronJob).
const OWNER_DEPTH: usize = 3;
/// Chunks waiting to go on the stream; the link's own reports never wait behind more than this.
const QUEUE: usize = 8;
/// Exec input bytes a session holds before its command takes them: twice what the hub sends ahead of this
/// spoke's input credit (its window, plus one request). A hub sending more ends the session.
const INPUT_LIMIT: usize = 2 * 64 * 1024 + 32 * 1024;

/// Why a session ended early.
#[derive(Debug)]
struct Failure {
    code: LiveEndCode,
    message: String,
}

impl Failure {
    fn new(code: LiveEndCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn cluster(error: &ClusterError) -> Self {
        match error {
            ClusterError::UnknownKind { .. } => Self::new(LiveEndCode::NotFound, error.to_string()),
            _ => Self::new(LiveEndCode::Unavailable, error.to_string()),
        }
    }

    fn kube(what: &str, error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) if status.code == 404 => {
                Self::new(LiveEndCode::NotFound, format!("{what}: {}", status.message))
            }
            kube::Error::Api(status) if status.code == 400 => {
                Self::new(LiveEndCode::Invalid, format!("{what}: {}", status.message))
            }
            _ => Self::new(LiveEndCode::Unavailable, format!("{what}: {error}")),
        }
    }
}

type Outcome = Result<(), Failure>;
/// How a session ended well: an exec session's exit code.
type Ended = Result<Option<i32>, Failure>;

/// The live sessions of one stream. Dropped (the stream ended), every session is aborted.
pub(super) struct Live {
    cluster: LiveCluster,
    apps: Api<Application>,
    cluster_name: String,
    /// Exec sessions are served (`--exec`).
    exec: bool,
    running: HashMap<String, Running>,
    queue: mpsc::Sender<v1::SpokeMessage>,
    forwarder: JoinHandle<()>,
}

struct Running {
    credit: Arc<Semaphore>,
    /// Bytes the hub lets the session have outstanding.
    window: usize,
    /// Exec input on its way to the command, and its bytes.
    input: mpsc::UnboundedSender<v1::live_input::Input>,
    input_held: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// An exec session's input, as its task takes it.
struct Input {
    rx: mpsc::UnboundedReceiver<v1::live_input::Input>,
    held: Arc<AtomicUsize>,
}

use edgecd_proto::convert::live_input_cost as input_cost;

impl Drop for Live {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
        self.forwarder.abort();
    }
}

impl Live {
    /// Sessions answering on `outbound`, behind what the link itself sends there.
    pub(super) fn new(
        cluster: LiveCluster,
        apps: Api<Application>,
        cluster_name: String,
        exec: bool,
        outbound: mpsc::Sender<v1::SpokeMessage>,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        Self {
            cluster,
            apps,
            cluster_name,
            exec,
            running: HashMap::new(),
            queue,
            forwarder: tokio::spawn(forward(rx, outbound)),
        }
    }

    pub(super) fn open(&mut self, open: v1::LiveOpen) {
        self.running.retain(|_, r| !r.task.is_finished());
        let id = open.session_id.clone();
        if self.running.contains_key(&id) || id.is_empty() || id.len() > 128 {
            tracing::warn!(session = %id, "A live session with a used or invalid id; ignored.");
            return;
        }
        let window = (open.window as usize).clamp(CHUNK, 4 * 1024 * 1024);
        let credit = Arc::new(Semaphore::new(window));
        let emitter = Emitter {
            id: id.clone(),
            credit: Arc::clone(&credit),
            queue: self.queue.clone(),
            sent: 0,
            max_bytes: match open.max_bytes {
                0 => MAX_BYTES,
                n => n.min(MAX_BYTES),
            },
        };
        if self.running.len() >= MAX_SESSIONS {
            let queue = self.queue.clone();
            tokio::spawn(async move {
                let end = end_message(
                    &id,
                    Err(Failure::new(
                        LiveEndCode::Limit,
                        format!("this spoke already serves {MAX_SESSIONS} live sessions"),
                    )),
                );
                let _ = queue.send(end).await;
            });
            return;
        }
        let server = Server {
            cluster: self.cluster.clone(),
            apps: self.apps.clone(),
            cluster_name: self.cluster_name.clone(),
            exec: self.exec,
        };
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let input_held = Arc::new(AtomicUsize::new(0));
        let input = Input {
            rx: input_rx,
            held: Arc::clone(&input_held),
        };
        let duration = open
            .max_duration
            .as_ref()
            .and_then(pc::from_duration)
            .filter(|d| !d.is_zero())
            .map_or(MAX_DURATION, |d| d.min(MAX_DURATION));
        let span = tracing::info_span!("live_session", session = %id, app = ?open.app.as_ref().map(|a| format!("{}/{}", a.project, a.name)));
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let queue = emitter.queue.clone();
                let id = emitter.id.clone();
                let outcome = match tokio::time::timeout(
                    duration,
                    server.serve(open, emitter, input),
                )
                .await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::new(
                        LiveEndCode::Limit,
                        format!(
                            "the session reached its time limit ({}s)",
                            duration.as_secs()
                        ),
                    )),
                };
                if let Err(failure) = &outcome {
                    tracing::debug!(code = ?failure.code, message = %failure.message, "Live session ended early.");
                }
                let _ = queue.send(end_message(&id, outcome)).await;
            },
            span,
        ));
        self.running.insert(
            id,
            Running {
                credit,
                window,
                input: input_tx,
                input_held,
                task,
            },
        );
    }

    /// Exec input from the hub, for the session's command.
    pub(super) fn input(&mut self, input: &v1::LiveInput) {
        let Some(piece) = input.input.clone() else {
            return;
        };
        let Some(running) = self.running.get(&input.session_id) else {
            return;
        };
        if running.task.is_finished() {
            // Keys typed after the command ended: nothing takes them.
            self.running.remove(&input.session_id);
            return;
        }
        let cost = input_cost(&piece);
        let held = running.input_held.fetch_add(cost, Ordering::AcqRel) + cost;
        if held > INPUT_LIMIT || running.input.send(piece).is_err() {
            // A hub ignoring this spoke's input credit: the session ends rather than buffer without bound.
            if let Some(running) = self.running.remove(&input.session_id) {
                running.task.abort();
                let queue = self.queue.clone();
                let end = end_message(
                    &input.session_id,
                    Err(Failure::new(
                        LiveEndCode::Limit,
                        format!("more than {INPUT_LIMIT} bytes of input ahead of the command"),
                    )),
                );
                tokio::spawn(async move {
                    let _ = queue.send(end).await;
                });
            }
        }
    }

    pub(super) fn credit(&self, credit: &v1::LiveCredit) {
        if let Some(running) = self.running.get(&credit.session_id) {
            // Never more than the window's worth outstanding: a hub granting more is capped.
            let room = running
                .window
                .saturating_sub(running.credit.available_permits());
            running
                .credit
                .add_permits((credit.bytes as usize).min(room));
        }
    }

    pub(super) fn cancel(&mut self, cancel: &v1::LiveCancel) {
        if let Some(running) = self.running.remove(&cancel.session_id) {
            running.task.abort();
            tracing::debug!(session = %cancel.session_id, "Live session cancelled by the hub.");
        }
    }
}

fn end_message(id: &str, outcome: Ended) -> v1::SpokeMessage {
    let (code, message, exit_code) = match outcome {
        Ok(exit_code) => (LiveEndCode::Ok, String::new(), exit_code),
        Err(failure) => (failure.code, failure.message, None),
    };
    v1::SpokeMessage {
        seq: 0,
        ack: 0,
        body: Some(spoke_message::Body::LiveEnd(v1::LiveEnd {
            session_id: id.to_owned(),
            code: code as i32,
            message,
            exit_code,
        })),
    }
}

/// Tells the hub the command took `bytes` of input.
fn input_credit(id: &str, bytes: usize) -> v1::SpokeMessage {
    v1::SpokeMessage {
        seq: 0,
        ack: 0,
        body: Some(spoke_message::Body::LiveCredit(v1::LiveCredit {
            session_id: id.to_owned(),
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        })),
    }
}

/// Moves queued chunks onto the stream while it has room, so a status report or a command result the link
/// sends never waits behind more than a few chunks.
async fn forward(
    mut rx: mpsc::Receiver<v1::SpokeMessage>,
    outbound: mpsc::Sender<v1::SpokeMessage>,
) {
    let keep_free = outbound.max_capacity() / 2;
    while let Some(message) = rx.recv().await {
        while outbound.capacity() <= keep_free {
            if outbound.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if outbound.send(message).await.is_err() {
            return;
        }
    }
}

/// Sends one session's data: in chunks, within the hub's credit and the session's bytes.
struct Emitter {
    id: String,
    credit: Arc<Semaphore>,
    queue: mpsc::Sender<v1::SpokeMessage>,
    sent: u64,
    max_bytes: u64,
}

impl Emitter {
    async fn charge(&mut self, bytes: usize) -> Outcome {
        let bytes = bytes.max(1);
        self.sent += bytes as u64;
        if self.sent > self.max_bytes {
            return Err(Failure::new(
                LiveEndCode::Limit,
                format!("the session reached its limit of {} bytes", self.max_bytes),
            ));
        }
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        match self.credit.acquire_many(permits).await {
            Ok(granted) => {
                granted.forget();
                Ok(())
            }
            Err(_) => Err(Failure::new(LiveEndCode::Cancelled, "cancelled")),
        }
    }

    async fn send(&mut self, chunk: v1::LiveChunk) -> Outcome {
        let message = v1::SpokeMessage {
            seq: 0,
            ack: 0,
            body: Some(spoke_message::Body::LiveChunk(chunk)),
        };
        self.queue
            .send(message)
            .await
            .map_err(|_| Failure::new(LiveEndCode::Cancelled, "the stream ended"))
    }

    async fn data(&mut self, pod: &str, container: &str, data: &[u8]) -> Outcome {
        for piece in data.chunks(CHUNK) {
            self.charge(piece.len()).await?;
            self.send(v1::LiveChunk {
                session_id: self.id.clone(),
                data: piece.to_vec(),
                pod: pod.to_owned(),
                container: container.to_owned(),
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// A command's output, on `channel`.
    async fn output(&mut self, channel: v1::LiveChannel, data: &[u8]) -> Outcome {
        for piece in data.chunks(CHUNK) {
            self.charge(piece.len()).await?;
            self.send(v1::LiveChunk {
                session_id: self.id.clone(),
                data: piece.to_vec(),
                channel: channel as i32,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    async fn events(&mut self, events: Vec<v1::Event>) -> Outcome {
        for batch in events.chunks(100) {
            let size: usize = batch.iter().map(pc::live_event_bytes).sum();
            self.charge(size).await?;
            self.send(v1::LiveChunk {
                session_id: self.id.clone(),
                events: batch.to_vec(),
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }
}

/// What a session reads with.
struct Server {
    cluster: LiveCluster,
    apps: Api<Application>,
    cluster_name: String,
    exec: bool,
}

fn same_object(a: &ResourceKey, b: &ResourceKey) -> bool {
    a.group == b.group && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

fn key_of(key: Option<&v1::ResourceKey>) -> Result<ResourceKey, Failure> {
    let key = key
        .map(pc::from_resource_key)
        .filter(|k| !k.kind.is_empty() && !k.name.is_empty())
        .ok_or_else(|| Failure::new(LiveEndCode::Invalid, "no resource named"))?;
    Ok(key)
}

fn is_pod(key: &ResourceKey) -> bool {
    key.group.is_empty() && key.kind == "Pod"
}

/// `(group, kind)` of an owner reference.
fn owner_kind(
    owner: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> (String, String) {
    let group = owner
        .api_version
        .split_once('/')
        .map(|(g, _)| g.to_owned())
        .unwrap_or_default();
    (group, owner.kind.clone())
}

impl Server {
    async fn serve(&self, open: v1::LiveOpen, mut out: Emitter, input: Input) -> Ended {
        let app_ref = open
            .app
            .clone()
            .ok_or_else(|| Failure::new(LiveEndCode::Invalid, "no application named"))?;
        let app = self.find_app(&app_ref).await?;
        let managed: Vec<ResourceKey> = app
            .status
            .as_ref()
            .map(|s| s.resources.iter().map(|r| r.key.clone()).collect())
            .unwrap_or_default();
        let app_name = format!("{}/{}", app_ref.project, app_ref.name);
        match open.request {
            Some(v1::live_open::Request::Manifest(request)) => {
                let key = key_of(request.resource.as_ref())?;
                let object = self.object_of_app(&app_name, &managed, &key).await?;
                self.manifest(object, request.managed_fields, &mut out)
                    .await
                    .map(|()| None)
            }
            Some(v1::live_open::Request::Events(request)) => {
                let key = key_of(request.resource.as_ref())?;
                let object = self.object_of_app(&app_name, &managed, &key).await?;
                self.events(&app_ref, &key, &object, &mut out)
                    .await
                    .map(|()| None)
            }
            Some(v1::live_open::Request::Logs(request)) => {
                let key = key_of(request.resource.as_ref())?;
                self.object_of_app(&app_name, &managed, &key).await?;
                self.logs(&key, &request, &mut out).await.map(|()| None)
            }
            Some(v1::live_open::Request::Exec(request)) => {
                if !self.exec {
                    return Err(Failure::new(
                        LiveEndCode::Forbidden,
                        format!(
                            "exec is turned off on the spoke of cluster {} (its --exec=false, Helm value exec.enabled=false)",
                            self.cluster_name
                        ),
                    ));
                }
                let key = key_of(request.resource.as_ref())?;
                self.object_of_app(&app_name, &managed, &key).await?;
                self.exec(&key, request, &mut out, input).await.map(Some)
            }
            None => Err(Failure::new(
                LiveEndCode::Invalid,
                "a request this spoke does not know; upgrade it",
            )),
        }
    }

    /// The app's CR: by its hub name, or an app created at the edge under its own name.
    async fn find_app(&self, app_ref: &v1::AppRef) -> Result<Application, Failure> {
        crd::find_app(&self.apps, &app_ref.project, &app_ref.name)
            .await
            .map_err(|e| {
                Failure::new(
                    LiveEndCode::Unavailable,
                    format!("reading the application: {e}"),
                )
            })?
            .ok_or_else(|| {
                Failure::new(
                    LiveEndCode::NotFound,
                    format!(
                        "no application {}/{} on cluster {}",
                        app_ref.project, app_ref.name, self.cluster_name
                    ),
                )
            })
    }

    /// The live object `key`, if the app manages it or it is a pod an object of the app owns.
    async fn object_of_app(
        &self,
        app: &str,
        managed: &[ResourceKey],
        key: &ResourceKey,
    ) -> Result<Value, Failure> {
        let not_ours = || {
            Failure::new(
                LiveEndCode::Forbidden,
                format!("{key} is not an object of application {app} (nor a pod one of them owns)"),
            )
        };
        if let Some(found) = managed.iter().find(|m| same_object(m, key)) {
            let mut wanted = key.clone();
            if wanted.version.is_empty() {
                wanted.version.clone_from(&found.version);
            }
            return self
                .cluster
                .get(&wanted)
                .await
                .map_err(|e| Failure::cluster(&e))?
                .ok_or_else(|| {
                    Failure::new(
                        LiveEndCode::NotFound,
                        format!("{key} does not exist on cluster {}", self.cluster_name),
                    )
                });
        }
        if !is_pod(key) {
            return Err(not_ours());
        }
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &key.namespace);
        let pod = pods
            .get_opt(&key.name)
            .await
            .map_err(|e| Failure::kube(&format!("reading pod {}/{}", key.namespace, key.name), &e))?
            .ok_or_else(|| {
                Failure::new(
                    LiveEndCode::NotFound,
                    format!(
                        "pod {}/{} does not exist on cluster {}",
                        key.namespace, key.name, self.cluster_name
                    ),
                )
            })?;
        let reaches = |group: &str, kind: &str, name: &str| {
            managed.iter().any(|m| {
                m.group == group && m.kind == kind && m.name == name && m.namespace == key.namespace
            })
        };
        if self.owner_chain_reaches(&pod, &reaches).await? {
            return serde_json::to_value(&pod)
                .map_err(|e| Failure::new(LiveEndCode::Unavailable, e.to_string()));
        }
        Err(not_ours())
    }

    /// Whether an owner of `pod` (following ReplicaSets and Jobs up to [`OWNER_DEPTH`]) is one `target` accepts.
    async fn owner_chain_reaches(
        &self,
        pod: &Pod,
        target: &(dyn Fn(&str, &str, &str) -> bool + Sync),
    ) -> Result<bool, Failure> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let mut frontier = pod.metadata.owner_references.clone().unwrap_or_default();
        for _ in 0..OWNER_DEPTH {
            let mut next = Vec::new();
            for owner in &frontier {
                let (group, kind) = owner_kind(owner);
                if target(&group, &kind, &owner.name) {
                    return Ok(true);
                }
                let key = match (group.as_str(), kind.as_str()) {
                    ("apps", "ReplicaSet") => ResourceKey {
                        group,
                        version: "v1".into(),
                        kind,
                        namespace: namespace.clone(),
                        name: owner.name.clone(),
                    },
                    ("batch", "Job") => ResourceKey {
                        group,
                        version: "v1".into(),
                        kind,
                        namespace: namespace.clone(),
                        name: owner.name.clone(),
                    },
                    _ => continue,
                };
                let parent = self
                    .cluster
                    .get(&key)
                    .await
                    .map_err(|e| Failure::cluster(&e))?;
                if let Some(refs) = parent
                    .as_ref()
                    .and_then(|p| p.pointer("/metadata/ownerReferences"))
                    .and_then(|r| {
                        serde_json::from_value::<
                            Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
                        >(r.clone())
                        .ok()
                    })
                {
                    next.extend(refs);
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        Ok(false)
    }

    async fn manifest(
        &self,
        mut object: Value,
        managed_fields: bool,
        out: &mut Emitter,
    ) -> Outcome {
        if !managed_fields
            && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
        }
        // A Secret's values are never shown.
        edgecd_core::secrets::mask(&mut object);
        let yaml = edgecd_render::to_yaml(&[object]);
        out.data("", "", yaml.as_bytes()).await
    }

    /// The events of `object` and, for an object owning pods, of its pods, oldest first.
    async fn events(
        &self,
        app: &v1::AppRef,
        key: &ResourceKey,
        object: &Value,
        out: &mut Emitter,
    ) -> Outcome {
        let namespace = key.namespace.clone();
        let mut involved: Vec<(String, v1::ResourceKey)> = Vec::new();
        if let Some(uid) = object.pointer("/metadata/uid").and_then(Value::as_str) {
            involved.push((uid.to_owned(), pc::resource_key(key)));
        }
        if !is_pod(key) && !namespace.is_empty() {
            for pod in self.pods_of(key).await? {
                if let Some(uid) = pod.metadata.uid.clone() {
                    let pod_key = ResourceKey {
                        group: String::new(),
                        version: "v1".into(),
                        kind: "Pod".into(),
                        namespace: namespace.clone(),
                        name: pod.metadata.name.clone().unwrap_or_default(),
                    };
                    involved.push((uid, pc::resource_key(&pod_key)));
                }
            }
        }
        let api: Api<KubeEvent> = if namespace.is_empty() {
            Api::all(self.cluster.client().clone())
        } else {
            Api::namespaced(self.cluster.client().clone(), &namespace)
        };
        let mut found = Vec::new();
        for (uid, resource) in &involved {
            let params = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
            let list = api
                .list(&params)
                .await
                .map_err(|e| Failure::kube("listing events", &e))?;
            found.extend(list.items.iter().filter_map(|event| {
                super::kube_events::hub_event(
                    &self.cluster_name,
                    event,
                    app.clone(),
                    resource.clone(),
                )
            }));
        }
        found.sort_by_key(|e| e.time.as_ref().map(|t| (t.seconds, t.nanos)));
        out.events(found).await
    }

    /// The pods `owner` owns (directly, or through its ReplicaSets and Jobs), at most [`MAX_PODS`].
    async fn pods_of(&self, owner: &ResourceKey) -> Result<Vec<Pod>, Failure> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &owner.namespace);
        let list = pods
            .list(&ListParams::default())
            .await
            .map_err(|e| Failure::kube("listing pods", &e))?;
        let target = |group: &str, kind: &str, name: &str| {
            group == owner.group && kind == owner.kind && name == owner.name
        };
        let mut found = Vec::new();
        for pod in list.items {
            if found.len() >= MAX_PODS {
                break;
            }
            if self.owner_chain_reaches(&pod, &target).await? {
                found.push(pod);
            }
        }
        found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(found)
    }

    async fn logs(
        &self,
        key: &ResourceKey,
        request: &v1::LiveLogsRequest,
        out: &mut Emitter,
    ) -> Outcome {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &key.namespace);
        let targets = if is_pod(key) {
            let pod = pods
                .get(&key.name)
                .await
                .map_err(|e| Failure::kube(&format!("reading pod {}", key.name), &e))?;
            vec![pod]
        } else {
            self.pods_of(key).await?
        };
        if targets.is_empty() {
            return Err(Failure::new(
                LiveEndCode::NotFound,
                format!("{key} has no pods"),
            ));
        }
        let mut chosen = Vec::with_capacity(targets.len());
        for pod in &targets {
            let name = pod.metadata.name.clone().unwrap_or_default();
            chosen.push((name.clone(), container_of(pod, &request.container)?));
        }
        let limit_bytes = Some(i64::try_from(out.max_bytes).unwrap_or(i64::MAX));
        let params = |container: &str| LogParams {
            container: Some(container.to_owned()),
            follow: request.follow,
            previous: request.previous,
            since_seconds: (request.since_seconds > 0).then_some(request.since_seconds),
            tail_lines: (request.tail_lines > 0).then_some(request.tail_lines),
            limit_bytes,
            ..LogParams::default()
        };
        if !request.follow {
            for (pod, container) in &chosen {
                let text = pods.logs(pod, &params(container)).await.map_err(|e| {
                    Failure::kube(&format!("reading the logs of {pod}/{container}"), &e)
                })?;
                out.data(pod, container, text.as_bytes()).await?;
            }
            return Ok(());
        }
        // Follow: every pod's lines as they come, batched per pod as far as they arrived together.
        let mut streams = Vec::with_capacity(chosen.len());
        for (pod, container) in chosen {
            let reader = pods
                .log_stream(&pod, &params(&container))
                .await
                .map_err(|e| {
                    Failure::kube(&format!("following the logs of {pod}/{container}"), &e)
                })?;
            let (pod, container) = (Arc::new(pod), Arc::new(container));
            streams.push(
                reader
                    .lines()
                    .map(move |line| (Arc::clone(&pod), Arc::clone(&container), line))
                    .boxed(),
            );
        }
        let mut lines = futures::stream::select_all(streams).ready_chunks(512);
        while let Some(batch) = lines.next().await {
            let mut by_pod: Vec<(Arc<String>, Arc<String>, Vec<u8>)> = Vec::new();
            for (pod, container, line) in batch {
                let line = line.map_err(|e| {
                    Failure::new(
                        LiveEndCode::Unavailable,
                        format!("reading the logs of {pod}: {e}"),
                    )
                })?;
                match by_pod
                    .iter_mut()
                    .find(|(p, c, _)| *p == pod && *c == container)
                {
                    Some((_, _, data)) => {
                        data.extend_from_slice(line.as_bytes());
                        data.push(b'\n');
                    }
                    None => {
                        let mut data = line.into_bytes();
                        data.push(b'\n');
                        by_pod.push((pod, container, data));
                    }
                }
            }
            for (pod, container, data) in by_pod {
                out.data(&pod, &container, &data).await?;
            }
        }
        Ok(())
    }
    /// Runs the command in a container of the pod `key` names (or of the first running pod it owns) through the
    /// API server's `pods/exec`: first a chunk naming pod and container, then the command's output as it comes,
    /// its input from the hub as the command takes it; the command's exit code ends it.
    async fn exec(
        &self,
        key: &ResourceKey,
        request: v1::LiveExecRequest,
        out: &mut Emitter,
        input: Input,
    ) -> Result<i32, Failure> {
        if request.command.is_empty() {
            return Err(Failure::new(LiveEndCode::Invalid, "exec needs a command"));
        }
        let pods: Api<Pod> = Api::namespaced(self.cluster.client().clone(), &key.namespace);
        let pod = if is_pod(key) {
            pods.get(&key.name)
                .await
                .map_err(|e| Failure::kube(&format!("reading pod {}", key.name), &e))?
        } else {
            self.pods_of(key)
                .await?
                .into_iter()
                .find(is_running)
                .ok_or_else(|| {
                    Failure::new(LiveEndCode::NotFound, format!("{key} has no running pod"))
                })?
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if !is_running(&pod) {
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "unknown".into());
            return Err(Failure::new(
                LiveEndCode::Invalid,
                format!("pod {name} is not running (phase {phase}): nothing to exec into"),
            ));
        }
        let container = container_of(&pod, &request.container)?;
        out.send(v1::LiveChunk {
            session_id: out.id.clone(),
            pod: name.clone(),
            container: container.clone(),
            ..Default::default()
        })
        .await?;
        let mut params = AttachParams::default()
            .container(container.clone())
            .stdin(request.stdin)
            .stdout(true)
            .stderr(!request.tty)
            .tty(request.tty);
        params.max_stdin_buf_size = Some(CHUNK);
        params.max_stdout_buf_size = Some(CHUNK);
        params.max_stderr_buf_size = Some(CHUNK);
        let mut process = pods
            .exec(&name, request.command.clone(), &params)
            .await
            .map_err(|e| Failure::kube(&format!("exec in {name}/{container}"), &e))?;
        let status = process.take_status();
        let mut stdout = process.stdout();
        let mut stderr = process.stderr();
        let pump = tokio::spawn(pump_input(
            input,
            process.stdin(),
            process.terminal_size(),
            request.size,
            out.id.clone(),
            out.queue.clone(),
        ));
        let _pump = AbortOnDrop(pump);
        let (mut out_open, mut err_open) = (stdout.is_some(), stderr.is_some());
        while out_open || err_open {
            tokio::select! {
                data = read_chunk(stdout.as_mut()), if out_open => {
                    if data.is_empty() {
                        out_open = false;
                    } else {
                        out.output(v1::LiveChannel::Stdout, &data).await?;
                    }
                }
                data = read_chunk(stderr.as_mut()), if err_open => {
                    if data.is_empty() {
                        err_open = false;
                    } else {
                        out.output(v1::LiveChannel::Stderr, &data).await?;
                    }
                }
            }
        }
        let status = match status {
            Some(status) => status.await,
            None => None,
        };
        exit_code(status.as_ref(), &name, &container)
    }
}

/// Whether `pod` runs (exec needs it).
fn is_running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Up to one chunk from a command's output; empty at its end.
async fn read_chunk(reader: Option<&mut tokio::io::ReadHalf<tokio::io::SimplexStream>>) -> Vec<u8> {
    let Some(reader) = reader else {
        return Vec::new();
    };
    let mut buf = vec![0; CHUNK];
    match reader.read(&mut buf).await {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(_) => Vec::new(),
    }
}

fn terminal_size(size: &v1::TerminalSize) -> TerminalSize {
    TerminalSize {
        width: u16::try_from(size.width).unwrap_or(u16::MAX),
        height: u16::try_from(size.height).unwrap_or(u16::MAX),
    }
}

/// Passes an exec session's input to its command as the command takes it, and tells the hub how much it took
/// (its input credit), once what arrived together is written.
async fn pump_input(
    mut input: Input,
    mut stdin: Option<tokio::io::WriteHalf<tokio::io::SimplexStream>>,
    mut resize: Option<futures::channel::mpsc::Sender<TerminalSize>>,
    first_size: Option<v1::TerminalSize>,
    id: String,
    queue: mpsc::Sender<v1::SpokeMessage>,
) {
    if let (Some(size), Some(sizes)) = (first_size.as_ref(), resize.as_mut()) {
        let _ = sizes.send(terminal_size(size)).await;
    }
    let mut owed = 0;
    while let Some(piece) = input.rx.recv().await {
        let cost = input_cost(&piece);
        match piece {
            v1::live_input::Input::Stdin(data) => {
                if let Some(writer) = stdin.as_mut()
                    && writer.write_all(&data).await.is_err()
                {
                    stdin = None;
                }
            }
            v1::live_input::Input::Resize(size) => {
                if let Some(sizes) = resize.as_mut() {
                    let _ = sizes.send(terminal_size(&size)).await;
                }
            }
            v1::live_input::Input::StdinClosed(_) => {
                if let Some(mut writer) = stdin.take() {
                    let _ = writer.shutdown().await;
                }
            }
        }
        input.held.fetch_sub(cost, Ordering::AcqRel);
        owed += cost;
        if input.rx.is_empty() {
            if queue.send(input_credit(&id, owed)).await.is_err() {
                return;
            }
            owed = 0;
        }
    }
}

/// Aborts a task when dropped (the session ended or was cancelled).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The exit code of a finished command from the status the API server sent (`Success`, or `NonZeroExitCode`
/// with an `ExitCode` cause); any other status is why the command could not run.
fn exit_code(
    status: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
    pod: &str,
    container: &str,
) -> Result<i32, Failure> {
    let Some(status) = status else {
        return Err(Failure::new(
            LiveEndCode::Unavailable,
            format!(
                "exec in {pod}/{container}: the API server ended the session without an exit status"
            ),
        ));
    };
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse::<i32>().ok());
    match code {
        Some(code) if status.reason.as_deref() == Some("NonZeroExitCode") => Ok(code),
        _ => Err(Failure::new(
            LiveEndCode::Unavailable,
            format!(
                "exec in {pod}/{container}: {}",
                status.message.as_deref().unwrap_or("the command failed")
            ),
        )),
    }
}

/// The container to read: the one asked for (it must exist), else the pod's default
/// (`kubectl.kubernetes.io/default-container`, else its first).
fn container_of(pod: &Pod, asked: &str) -> Result<String, Failure> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let names: Vec<String> = spec
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default();
    if !asked.is_empty() {
        return if names.iter().any(|n| n == asked) {
            Ok(asked.to_owned())
        } else {
            Err(Failure::new(
                LiveEndCode::NotFound,
                format!(
                    "container {asked} is not valid for pod {name}: choose one of [{}]",
                    names.join(" ")
                ),
            ))
        };
    }
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .filter(|c| names.contains(c));
    annotated
        .cloned()
        .or_else(|| names.first().cloned())
        .ok_or_else(|| {
            Failure::new(
                LiveEndCode::NotFound,
                format!("pod {name} has no containers"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[&str], default: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-1",
                "annotations": default.map(|d| serde_json::json!({"kubectl.kubernetes.io/default-container": d})),
            },
            "spec": {"containers": containers.iter().map(|c| serde_json::json!({"name": c})).collect::<Vec<_>>()},
        }))
        .unwrap()
    }

    #[test]
    fn the_container_is_the_one_asked_or_the_pods_default() {
        assert_eq!(
            container_of(&pod(&["app", "sidecar"], None), "").unwrap(),
            "app"
        );
        assert_eq!(
            container_of(&pod(&["app", "sidecar"], Some("sidecar")), "").unwrap(),
            "sidecar"
        );
        assert_eq!(
            container_of(&pod(&["app", "sidecar"], None), "sidecar").unwrap(),
            "sidecar"
        );
        let wrong = container_of(&pod(&["app", "sidecar"], None), "nope").unwrap_err();
        assert_eq!(wrong.code, LiveEndCode::NotFound);
        assert_eq!(
            wrong.message,
            "container nope is not valid for pod web-1: choose one of [app sidecar]"
        );
        assert!(container_of(&pod(&[], None), "").is_err());
    }

    fn status(json: serde_json::Value) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Status {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_exit_code_comes_from_the_api_servers_status() {
        let ok = status(serde_json::json!({"metadata": {}, "status": "Success"}));
        assert_eq!(exit_code(Some(&ok), "p", "c").unwrap(), 0);
        let three = status(serde_json::json!({
            "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        }));
        assert_eq!(exit_code(Some(&three), "p", "c").unwrap(), 3);
        let failed = status(serde_json::json!({
            "status": "Failure", "reason": "InternalError", "message": "container not found (\"web\")",
        }));
        let failure = exit_code(Some(&failed), "web-1", "web").unwrap_err();
        assert_eq!(failure.code, LiveEndCode::Unavailable);
        assert_eq!(
            failure.message,
            "exec in web-1/web: container not found (\"web\")"
        );
        let gone = exit_code(None, "web-1", "web").unwrap_err();
        assert!(
            gone.message.contains("without an exit status"),
            "{}",
            gone.message
        );
    }

    #[tokio::test]
    async fn input_beyond_the_spokes_credit_ends_the_session() {
        let (outbound, mut stream) = mpsc::channel(64);
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let mut live = Live::new(
            LiveCluster::new(client.clone()),
            Api::namespaced(client, "edgecd-system"),
            "edge-1".into(),
            true,
            outbound,
        );
        // A session whose task never takes its input (it waits on an API server that is not there).
        let (input_tx, _input_rx) = mpsc::unbounded_channel();
        live.running.insert(
            "s1".into(),
            Running {
                credit: Arc::new(Semaphore::new(0)),
                window: CHUNK,
                input: input_tx,
                input_held: Arc::new(AtomicUsize::new(0)),
                task: tokio::spawn(std::future::pending()),
            },
        );
        let piece = |n: usize| v1::LiveInput {
            session_id: "s1".into(),
            input: Some(v1::live_input::Input::Stdin(vec![b'x'; n])),
        };
        live.input(&piece(INPUT_LIMIT));
        assert!(live.running.contains_key("s1"), "within the limit");
        live.input(&piece(1));
        assert!(
            !live.running.contains_key("s1"),
            "the session kept input beyond its limit"
        );
        let end = tokio::time::timeout(Duration::from_secs(5), stream.recv())
            .await
            .unwrap()
            .unwrap();
        let Some(spoke_message::Body::LiveEnd(end)) = end.body else {
            panic!("not an end: {end:?}");
        };
        assert_eq!(end.code, LiveEndCode::Limit as i32);
        assert!(
            end.message.contains("input ahead of the command"),
            "{}",
            end.message
        );
    }

    #[tokio::test]
    async fn credit_paces_the_emitter_and_bytes_end_it() {
        let (queue, mut rx) = mpsc::channel(64);
        let credit = Arc::new(Semaphore::new(10));
        let mut out = Emitter {
            id: "s".into(),
            credit: Arc::clone(&credit),
            queue,
            sent: 0,
            max_bytes: 30,
        };
        out.data("p", "c", b"0123456789").await.unwrap();
        assert_eq!(rx.recv().await.map(|m| m.body.is_some()), Some(true));
        // No credit left: the next chunk waits until the hub grants more.
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), out.data("p", "c", b"abcde")).await;
        assert!(waiting.is_err(), "sent without credit");
        credit.add_permits(20);
        out.data("p", "c", b"abcde").await.unwrap();
        let over = out.data("p", "c", b"0123456789012345").await.unwrap_err();
        assert_eq!(over.code, LiveEndCode::Limit);
    }

    #[tokio::test]
    async fn the_forwarder_keeps_room_on_the_stream() {
        let (outbound, mut stream) = mpsc::channel(8);
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(forward(rx, outbound.clone()));
        for _ in 0..6 {
            queue.send(v1::SpokeMessage::default()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // At most half the stream's queue is taken by chunks: the link's own reports still get in.
        assert!(outbound.capacity() >= 4, "{}", outbound.capacity());
        assert!(outbound.try_send(v1::SpokeMessage::default()).is_ok());
        let mut seen = 0;
        while tokio::time::timeout(Duration::from_millis(100), stream.recv())
            .await
            .is_ok()
        {
            seen += 1;
        }
        assert_eq!(seen, 7);
    }
}
