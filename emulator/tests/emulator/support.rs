//! Shared helpers for the emulator conformance tests: starting an emulator, raw requests, fixtures.

use std::time::Duration;

use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};
use futures::StreamExt;
use http_body_util::BodyExt;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// An emulator with one cluster and a client for it.
pub struct Env {
    /// Kept alive for the duration of the test.
    #[allow(dead_code)]
    pub emu: KubeEmulator,
    pub client: Client,
}

/// Starts an emulator with test-friendly timings.
pub async fn start() -> Env {
    start_with(EmulatorConfig {
        stage_delay: Duration::from_millis(20),
        bookmark_interval: Duration::from_millis(200),
        ..EmulatorConfig::default()
    })
    .await
}

/// Starts an emulator with the given configuration.
///
/// With `EDGECD_EMULATOR_TEST_PREFIXED=1` the emulator hosts two clusters and the tests talk to the
/// second one under its `/clusters/cluster-2` prefix, so the whole suite also covers multiplexing.
pub async fn start_with(mut config: EmulatorConfig) -> Env {
    let prefixed =
        std::env::var("EDGECD_EMULATOR_TEST_PREFIXED").is_ok_and(|v| !v.is_empty() && v != "0");
    if prefixed {
        config.clusters = 2;
    }
    let emu = KubeEmulator::start(config).await.expect("emulator starts");
    let cluster = emu.clusters().last().expect("a cluster");
    if prefixed {
        assert!(cluster.url().ends_with("/clusters/cluster-2"));
    }
    let client = cluster.client().await.expect("client");
    Env { emu, client }
}

/// The ApiResource of a kind (plural guessed the way kube-rs does).
pub fn ar(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// A namespaced dynamic Api.
pub fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    ns: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ar(group, version, kind))
}

/// A cluster-wide dynamic Api.
pub fn api_all(client: &Client, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ar(group, version, kind))
}

/// Deserializes JSON into a DynamicObject.
pub fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("valid object")
}

/// Sends a raw request and returns the status and the JSON body (or `Value::String` for non-JSON).
pub async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let req = builder
        .body(kube::client::Body::from(bytes))
        .expect("request");
    let resp = client.send(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// Sends a GET with an Accept header and returns status, content type and JSON body.
pub async fn get_accept(client: &Client, path: &str, accept: &str) -> (u16, String, Value) {
    let req = http::Request::builder()
        .uri(path)
        .header("accept", accept)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let resp = client.send(req).await.expect("response");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        ct,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Opens a raw watch and returns a stream of the lines received (each a raw string).
pub async fn raw_watch(
    client: &Client,
    path: &str,
) -> (u16, futures::stream::BoxStream<'static, String>) {
    let req = http::Request::builder()
        .uri(path)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let resp = client.send(req).await.expect("response");
    let status = resp.status().as_u16();
    let body = resp.into_body().into_data_stream();
    let lines = body
        .map(|chunk| {
            chunk
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        })
        .scan(String::new(), |buf, chunk| {
            buf.push_str(&chunk);
            let mut out = Vec::new();
            while let Some(pos) = buf.find('\n') {
                out.push(buf[..pos].to_string());
                buf.replace_range(..=pos, "");
            }
            futures::future::ready(Some(futures::stream::iter(out)))
        })
        .flatten()
        .boxed();
    (status, lines)
}

/// Reads lines until `pred` matches one, or panics after `timeout`.
pub async fn next_line_matching(
    lines: &mut futures::stream::BoxStream<'static, String>,
    timeout: Duration,
    mut pred: impl FnMut(&Value) -> bool,
) -> Value {
    tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next().await {
            let v: Value = serde_json::from_str(&line).expect("each watch line is one JSON object");
            if pred(&v) {
                return v;
            }
        }
        panic!("watch ended before a matching line");
    })
    .await
    .expect("matching watch line in time")
}

/// Creates a namespace.
pub async fn create_ns(client: &Client, name: &str) {
    let nss = api_all(client, "", "v1", "Namespace");
    nss.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})),
    )
    .await
    .expect("namespace created");
}

/// A ConfigMap body.
pub fn configmap(name: &str, data: Value) -> DynamicObject {
    obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}))
}

/// A minimal Deployment apply configuration (no replicas, no strategy).
pub fn deployment(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

/// Postpones the simulated controllers for an object, so that only the test writes to it.
pub fn quiet(mut v: Value) -> Value {
    v["metadata"]["annotations"]["emulator.edgecd.io/delay-ms"] = json!("600000");
    v
}

/// Server-side applies `body` as `manager`.
pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    manager: &str,
    body: Value,
    force: bool,
) -> kube::Result<DynamicObject> {
    let mut pp = PatchParams::apply(manager);
    pp.force = force;
    api.patch(name, &pp, &Patch::Apply(body)).await
}

/// Polls `check` until it returns Some, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The managers listed in `metadata.managedFields`.
pub fn managers(o: &DynamicObject) -> Vec<(String, String)> {
    o.metadata
        .managed_fields
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect()
}

/// The fieldsV1 of one manager.
pub fn fields_of(o: &DynamicObject, manager: &str) -> Option<Value> {
    o.metadata
        .managed_fields
        .as_ref()?
        .iter()
        .find(|m| m.manager.as_deref() == Some(manager))
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
}

/// The resourceVersion as a number.
pub fn rv(o: &DynamicObject) -> u64 {
    o.metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .expect("numeric resourceVersion")
}
