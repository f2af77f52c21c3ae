//! Watch streams: chunked JSON lines with replay, bookmarks, streaming lists, timeouts and `410 Expired` events.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, ApiResult};
use super::store::{Event, EventType, Store, WatchStart};

/// The annotation that marks the end of the initial events of a streaming list.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Parameters of a watch request.
#[derive(Debug, Clone, Default)]
pub struct WatchParams {
    /// Namespace, or all namespaces.
    pub namespace: Option<String>,
    /// Send `PartialObjectMetadata` objects (the client asked for metadata only).
    pub metadata_only: bool,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

/// Validates a watch request before the stream starts (errors here are plain HTTP errors).
pub fn validate(params: &WatchParams) -> ApiResult<WatchStart> {
    if params.send_initial_events {
        if params.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![super::status::Cause {
                    reason: "FieldValueForbidden",
                    message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                    field: "sendInitialEvents".into(),
                }],
            ));
        }
        if !params.bookmarks {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![super::status::Cause {
                    reason: "FieldValueForbidden",
                    message:
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
                            .into(),
                    field: "allowWatchBookmarks".into(),
                }],
            ));
        }
        return Ok(WatchStart::Snapshot);
    }
    match params.resource_version.as_deref() {
        None | Some("") | Some("0") => Ok(WatchStart::Snapshot),
        Some(rv) => rv
            .parse()
            .map(WatchStart::After)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}"))),
    }
}

/// Runs a watch, writing JSON lines into `tx` until timeout, shutdown, lag, or the client going away.
pub async fn run(
    store: Arc<Store>,
    rt: Arc<ResourceType>,
    params: WatchParams,
    start: WatchStart,
    bookmark_interval: Duration,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let started = match store.watch(&rt, params.namespace.as_deref(), start) {
        Ok(s) => s,
        Err(err) => {
            let _ = tx.send(line("ERROR", &err.to_status())).await;
            return;
        }
    };
    let mut receiver = started.receiver;
    let mut last_seen = started.rv;
    for event in &started.initial {
        if let Some(line) = event_line(&params, event)
            && tx.send(line).await.is_err()
        {
            return;
        }
        last_seen = last_seen.max(event.rv);
    }
    if params.send_initial_events {
        let bookmark = bookmark(&rt, started.rv, true);
        if tx.send(bookmark).await.is_err() {
            return;
        }
    }
    let deadline = params.timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep_until_deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(sleep_until_deadline);
    let mut ticker = tokio::time::interval(bookmark_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = &mut sleep_until_deadline => return,
            _ = shutdown.changed() => return,
            _ = tx.closed() => return,
            _ = ticker.tick() => {
                if params.bookmarks && tx.send(bookmark(&rt, last_seen, false)).await.is_err() {
                    return;
                }
            }
            received = receiver.recv() => match received {
                Ok(event) => {
                    if event.rv <= last_seen {
                        continue;
                    }
                    last_seen = event.rv;
                    if event.group != rt.group || event.plural != rt.plural {
                        continue;
                    }
                    if params.namespace.as_deref().is_some_and(|ns| ns != event.namespace) {
                        continue;
                    }
                    if let Some(line) = event_line(&params, &event)
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let err = ApiError::expired(format!("too old resource version: {last_seen} ({})", store.current_rv()));
                    let _ = tx.send(line("ERROR", &err.to_status())).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

fn matches(params: &WatchParams, obj: &Value) -> bool {
    params.labels.matches(obj) && params.fields.matches(obj)
}

/// The line for an event as this watch sees it: objects entering or leaving the selection become
/// ADDED or DELETED, as on a real API server; events outside the selection produce nothing.
fn event_line(params: &WatchParams, event: &Event) -> Option<Bytes> {
    let now = matches(params, &event.object);
    let before = event.previous.as_ref().map(|p| matches(params, p));
    let kind = match (event.kind, now, before) {
        (EventType::Added, true, _) => "ADDED",
        (EventType::Modified, true, Some(false)) => "ADDED",
        (EventType::Modified, true, _) => "MODIFIED",
        (EventType::Modified, false, Some(true)) => "DELETED",
        (EventType::Deleted, true, _) => "DELETED",
        _ => return None,
    };
    if params.metadata_only {
        return Some(line(kind, &partial_metadata(&event.object)));
    }
    Some(line(kind, &event.object))
}

/// The `PartialObjectMetadata` form of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The `PartialObjectMetadataList` form of a list.
pub fn partial_metadata_list(list: &Value) -> Value {
    let items: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(partial_metadata).collect())
        .unwrap_or_default();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "items": items,
    })
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        metadata["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
    }
    line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}
