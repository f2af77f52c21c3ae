//! A minimal OpenAPI v3 (`/openapi/v3`, `/openapi/v3/{api/v1,apis/{group}/{version}}`): operations without schemas, enough for kubectl to see that the server validates fields itself.
//!
//! kubectl (`apply`, `create -f`, `replace`) asks OpenAPI v3 whether the PATCH operation of the object's kind
//! takes the `fieldValidation` query parameter; if it cannot tell, it falls back to `/openapi/v2` (protobuf) and
//! fails with "failed to download openapi". Every served kind is listed with that parameter, so kubectl sends
//! `fieldValidation=Strict` and validates nothing on the client. No schemas are served (`kubectl explain` does
//! not work), and PATCH operations name no request body, so `kubectl apply` computes strategic merge patches
//! from its compiled-in types, as it does for a server without OpenAPI.

use serde_json::{Value, json};

use super::resources::{Registry, ResourceType};

/// The path of a group/version's document below `/openapi/v3/`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: one entry per served group/version. The hash changes when the served types do.
pub fn root(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            let path = gv_path(&group, &version);
            let hash = fingerprint(&registry.group_version(&group, &version));
            paths.insert(
                path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}") }),
            );
        }
    }
    json!({ "paths": paths })
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`, if served.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types = registry.group_version(group, version);
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for t in &types {
        let base = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        let collection = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        let gvk = json!({ "group": t.group, "version": t.version, "kind": t.kind });
        let op = |action: &str, params: &[&str]| {
            let parameters: Vec<Value> = params
                .iter()
                .map(|p| json!({ "name": p, "in": "query", "schema": { "type": "string", "uniqueItems": true } }))
                .collect();
            json!({
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": parameters,
                "responses": { "200": { "description": "OK" } },
            })
        };
        let write = ["dryRun", "fieldManager", "fieldValidation"];
        paths.insert(
            collection.clone(),
            json!({ "get": op("list", &[]), "post": op("post", &write) }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": op("get", &[]),
                "put": op("put", &write),
                "patch": op("patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": op("delete", &["dryRun"]),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0-edgecd-emulator" },
        "paths": paths,
        "components": {},
    }))
}

/// A stable hash of a group/version's kinds (FNV-1a).
fn fingerprint(types: &[std::sync::Arc<ResourceType>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for t in types {
        for b in t.kind.bytes().chain(t.plural.bytes()).chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
