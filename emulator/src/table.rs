//! Server-side printing: `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` (what `kubectl get` asks for) answered with a `meta.k8s.io/v1` `Table`.
//!
//! The columns follow the real server's printers for the kinds edgecd and its tests look at (Namespace,
//! ConfigMap, Secret, Deployment, Pod, Service); every other kind gets `Name` and `Age`, as a custom resource
//! without `additionalPrinterColumns` does. Rows carry `PartialObjectMetadata` (the default
//! `includeObject=Metadata`), or the whole object with `includeObject=Object`.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::resources::ResourceType;
use super::watch::partial_metadata;

/// Whether an Accept header asks for a Table first (before any plain JSON).
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.replace(' ', "").contains("as=Table"))
        && accept.contains("g=meta.k8s.io")
}

/// A column: name, type, format.
type Column = (&'static str, &'static str, &'static str);

fn columns(rt: &ResourceType) -> Vec<Column> {
    let name = ("Name", "string", "name");
    let age = ("Age", "string", "");
    let mut cols = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => cols.push(("Status", "string", "")),
        ("", "configmaps") => cols.push(("Data", "string", "")),
        ("", "secrets") => {
            cols.push(("Type", "string", ""));
            cols.push(("Data", "string", ""));
        }
        ("apps", "deployments") => {
            cols.push(("Ready", "string", ""));
            cols.push(("Up-to-date", "string", ""));
            cols.push(("Available", "string", ""));
        }
        ("", "pods") => {
            cols.push(("Ready", "string", ""));
            cols.push(("Status", "string", ""));
            cols.push(("Restarts", "string", ""));
        }
        ("", "services") => {
            cols.push(("Type", "string", ""));
            cols.push(("Cluster-IP", "string", ""));
            cols.push(("External-IP", "string", ""));
            cols.push(("Port(s)", "string", ""));
        }
        _ => {}
    }
    cols.push(age);
    cols
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn len_at(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer).map_or(0, |v| match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    })
}

fn cells(rt: &ResourceType, obj: &Value, now: OffsetDateTime) -> Vec<Value> {
    let mut cells = vec![json!(str_at(obj, "/metadata/name"))];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => cells.push(json!(str_at(obj, "/status/phase"))),
        ("", "configmaps") => cells.push(json!(len_at(obj, "/data") + len_at(obj, "/binaryData"))),
        ("", "secrets") => {
            cells.push(json!(str_at(obj, "/type")));
            cells.push(json!(len_at(obj, "/data")));
        }
        ("apps", "deployments") => {
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            cells.push(json!(format!(
                "{}/{desired}",
                int(obj, "/status/readyReplicas")
            )));
            cells.push(json!(int(obj, "/status/updatedReplicas")));
            cells.push(json!(int(obj, "/status/availableReplicas")));
        }
        ("", "pods") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready") == Some(&json!(true)))
                .count();
            let total = len_at(obj, "/spec/containers");
            let restarts: i64 = statuses
                .iter()
                .map(|s| s.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
                .sum();
            let waiting = statuses
                .iter()
                .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str));
            let status = waiting.unwrap_or_else(|| str_at(obj, "/status/phase"));
            cells.push(json!(format!("{ready}/{total}")));
            cells.push(json!(status));
            cells.push(json!(restarts));
        }
        ("", "services") => {
            let ports: Vec<String> = obj
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| {
                            let protocol =
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                            match p.get("nodePort").and_then(Value::as_i64) {
                                Some(node) => format!("{}:{node}/{protocol}", int(p, "/port")),
                                None => format!("{}/{protocol}", int(p, "/port")),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let external: Vec<&str> = obj
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|i| {
                    i.iter()
                        .filter_map(|e| e.get("ip").or_else(|| e.get("hostname")))
                        .filter_map(Value::as_str)
                        .collect()
                })
                .unwrap_or_default();
            let ty = str_at(obj, "/spec/type");
            cells.push(json!(ty));
            cells.push(json!(str_at(obj, "/spec/clusterIP")));
            cells.push(json!(if !external.is_empty() {
                external.join(",")
            } else if ty == "LoadBalancer" {
                "<pending>".to_string()
            } else {
                "<none>".to_string()
            }));
            cells.push(json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            }));
        }
        _ => {}
    }
    let created = OffsetDateTime::parse(str_at(obj, "/metadata/creationTimestamp"), &Rfc3339).ok();
    cells.push(json!(created.map_or_else(
        || "<unknown>".to_string(),
        |c| human_duration((now - c).whole_seconds())
    )));
    cells
}

/// A duration the way Kubernetes prints ages (`51s`, `5m40s`, `3h2m`, `4d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        format!("{}y{}d", d / 365, d % 365)
    } else {
        format!("{}y", d / 365)
    }
}

/// The Table of one object or of a list (`{"items": [...], "metadata": {...}}`).
pub fn table(rt: &ResourceType, value: &Value, include_object: Option<&str>) -> Value {
    let now = OffsetDateTime::now_utc();
    let (items, rv): (Vec<Value>, Value) = match value.get("items").and_then(Value::as_array) {
        Some(items) => (
            items.clone(),
            value
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        ),
        None => (
            vec![value.clone()],
            value
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        ),
    };
    let column_definitions: Vec<Value> = columns(rt)
        .into_iter()
        .map(|(name, ty, format)| {
            json!({"name": name, "type": ty, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut row = json!({ "cells": cells(rt, item, now) });
            match include_object {
                Some("None") => {}
                Some("Object") => row["object"] = item.clone(),
                _ => row["object"] = partial_metadata(item),
            }
            row
        })
        .collect();
    let mut metadata = json!({});
    if !rv.is_null() {
        metadata["resourceVersion"] = rv;
    }
    if let Some(c) = value.pointer("/metadata/continue") {
        metadata["continue"] = c.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}
