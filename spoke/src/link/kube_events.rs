//! Kubernetes events of the apps' resources, forwarded to the hub beside edgecd's own: a watch on core/v1 Events, kept to those whose involved object is a node of an app's last resource tree (a managed object, or a ReplicaSet, Job or Pod it owns), each named by the app and the object.
//!
//! ```text
//!  resource tree queued ─► Involved: uid → (app, object)        (replaced per app, bounded by the trees)
//!  Event watch ─► involvedObject.uid known? ─► v1::Event { id: k8s/<event uid>/<count>, app, resource, reason, message }
//! ```
//!
//! The id changes when Kubernetes counts the event again, so a repeating Warning (BackOff, FailedMount)
//! shows again at the hub, which deduplicates replays by `(cluster, id)`. Message and reason are bounded
//! in bytes: an event is written by whoever can create one in the namespace.

use std::collections::HashMap;

use edgecd_proto::v1;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use time::OffsetDateTime;

/// Longest message forwarded (bytes); longer ones are cut at a character boundary with `…`.
const MAX_MESSAGE: usize = 1024;
/// Longest reason forwarded (bytes).
const MAX_REASON: usize = 128;

/// One object of an app's tree, as an event names it.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    app: v1::AppRef,
    key: v1::ResourceKey,
}

/// The objects of every app's last resource tree, by uid.
#[derive(Debug, Default)]
pub(super) struct Involved {
    by_uid: HashMap<String, Node>,
    /// The uids each app's tree held (CR name → uids), to replace them with the next tree.
    by_app: HashMap<String, Vec<String>>,
}

impl Involved {
    /// Records the objects of `tree`, the current tree of the app whose CR is `cr_name`.
    pub(super) fn record(&mut self, cr_name: &str, tree: &v1::ResourceTree) {
        self.forget(cr_name);
        let Some(app) = tree.app.clone() else {
            return;
        };
        let mut uids = Vec::with_capacity(tree.nodes.len());
        for node in &tree.nodes {
            let Some(key) = node.key.clone() else {
                continue;
            };
            if node.uid.is_empty() {
                continue;
            }
            self.by_uid.insert(
                node.uid.clone(),
                Node {
                    app: app.clone(),
                    key,
                },
            );
            uids.push(node.uid.clone());
        }
        self.by_app.insert(cr_name.to_owned(), uids);
    }

    /// Forgets the objects of an app that is gone.
    pub(super) fn forget(&mut self, cr_name: &str) {
        for uid in self.by_app.remove(cr_name).unwrap_or_default() {
            self.by_uid.remove(&uid);
        }
    }

    /// The hub's form of `event`, if it concerns an object of an app's tree.
    pub(super) fn to_hub_event(&self, cluster: &str, event: &KubeEvent) -> Option<v1::Event> {
        let uid = event.involved_object.uid.as_deref()?;
        let node = self.by_uid.get(uid)?;
        hub_event(cluster, event, node.app.clone(), node.key.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_uid.len()
    }
}

/// The hub's form of `event`, about `resource` of `app`: bounded in bytes, its id changing as Kubernetes counts
/// it again (`None` for an event without a uid).
pub(super) fn hub_event(
    cluster: &str,
    event: &KubeEvent,
    app: v1::AppRef,
    resource: v1::ResourceKey,
) -> Option<v1::Event> {
    let event_uid = event.metadata.uid.as_deref()?;
    let count = event.count.unwrap_or(1);
    let at = event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.as_second()).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let severity = if event.type_.as_deref() == Some("Warning") {
        v1::EventSeverity::Warning
    } else {
        v1::EventSeverity::Normal
    };
    let message = event.message.as_deref().unwrap_or_default();
    let message = if count > 1 {
        format!("{} (x{count})", bounded(message, MAX_MESSAGE))
    } else {
        bounded(message, MAX_MESSAGE)
    };
    Some(v1::Event {
        id: format!("k8s/{event_uid}/{count}"),
        cluster: cluster.to_owned(),
        app: Some(app),
        resource: Some(resource),
        severity: severity as i32,
        reason: bounded(event.reason.as_deref().unwrap_or("Event"), MAX_REASON),
        message,
        time: Some(edgecd_proto::convert::timestamp(at)),
    })
}

/// `text` cut to at most `max` bytes at a character boundary, with `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tree(app: &str, uids: &[(&str, &str, &str)]) -> v1::ResourceTree {
        v1::ResourceTree {
            app: Some(v1::AppRef::new("default", app)),
            nodes: uids
                .iter()
                .map(|(uid, kind, name)| v1::ResourceNode {
                    key: Some(v1::ResourceKey {
                        kind: (*kind).into(),
                        name: (*name).into(),
                        namespace: "web".into(),
                        version: "v1".into(),
                        ..v1::ResourceKey::default()
                    }),
                    uid: (*uid).into(),
                    ..v1::ResourceNode::default()
                })
                .collect(),
            status_version: 1,
        }
    }

    fn event(uid: &str, involved: &str, kind: &str, count: i32, message: &str) -> KubeEvent {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "web", "uid": uid},
            "involvedObject": {"kind": kind, "name": "web-1", "namespace": "web", "uid": involved},
            "reason": "BackOff",
            "message": message,
            "type": "Warning",
            "count": count,
            "lastTimestamp": "2026-12-04T10:00:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn only_events_of_an_apps_objects_are_forwarded_with_the_app_and_object() {
        let mut involved = Involved::default();
        involved.record(
            "web",
            &tree(
                "web",
                &[("u-deploy", "Deployment", "web"), ("u-pod", "Pod", "web-1")],
            ),
        );
        let forwarded = involved
            .to_hub_event(
                "edge-1",
                &event(
                    "e1",
                    "u-pod",
                    "Pod",
                    3,
                    "Back-off restarting failed container",
                ),
            )
            .unwrap();
        assert_eq!(forwarded.id, "k8s/e1/3");
        assert_eq!(forwarded.app, Some(v1::AppRef::new("default", "web")));
        assert_eq!(forwarded.resource.as_ref().unwrap().kind, "Pod");
        assert_eq!(forwarded.severity, v1::EventSeverity::Warning as i32);
        assert_eq!(forwarded.reason, "BackOff");
        assert_eq!(
            forwarded.message,
            "Back-off restarting failed container (x3)"
        );
        assert_eq!(
            forwarded.time.unwrap().seconds,
            OffsetDateTime::parse(
                "2026-12-04T10:00:00Z",
                &time::format_description::well_known::Rfc3339
            )
            .unwrap()
            .unix_timestamp()
        );
        // An object of no app: nothing.
        assert!(
            involved
                .to_hub_event("edge-1", &event("e2", "u-other", "Pod", 1, "x"))
                .is_none()
        );
        // A new tree replaces the app's objects.
        involved.record("web", &tree("web", &[("u-deploy", "Deployment", "web")]));
        assert_eq!(involved.len(), 1);
        assert!(
            involved
                .to_hub_event("edge-1", &event("e1", "u-pod", "Pod", 4, "x"))
                .is_none()
        );
        involved.forget("web");
        assert_eq!(involved.len(), 0);
    }

    #[test]
    fn messages_and_reasons_are_bounded_in_bytes() {
        let mut involved = Involved::default();
        involved.record("web", &tree("web", &[("u-pod", "Pod", "web-1")]));
        let long = "é".repeat(5_000);
        let forwarded = involved
            .to_hub_event("edge-1", &event("e1", "u-pod", "Pod", 1, &long))
            .unwrap();
        assert!(
            forwarded.message.len() <= MAX_MESSAGE + '…'.len_utf8(),
            "{}",
            forwarded.message.len()
        );
        assert!(forwarded.message.ends_with('…'));
    }
}
