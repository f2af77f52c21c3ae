//! App of apps at the edge: Argo CD (and edgecd) Application and ApplicationSet documents among an app's rendered manifests become the spoke's own `edgecd.io` CRs in its state namespace, checked as strictly as at the hub.
//!
//! The parent applies them like any object (tracking annotation, prune, deletion
//! with the parent); the spoke's controllers then run them as autonomous apps
//! and sets of this cluster. A field edgecd does not support fails the
//! parent's render with the field named, never silently dropped.

use edgecd_core::argo::{Document, parse_document};
use serde_json::{Value, json};

const ARGO: &str = "argoproj.io/v1alpha1";
const EDGECD: &str = "edgecd.io/v1alpha1";

/// Rewrites Application/ApplicationSet documents into the spoke's CRs in `state_namespace`; other objects pass.
pub fn edge_children(objects: Vec<Value>, state_namespace: &str) -> Result<Vec<Value>, String> {
    objects
        .into_iter()
        .map(|object| {
            let api_version = object.get("apiVersion").and_then(Value::as_str);
            let kind = object.get("kind").and_then(Value::as_str);
            match (api_version, kind) {
                (Some(ARGO | EDGECD), Some("Application" | "ApplicationSet")) => {
                    child(&object, state_namespace)
                }
                (Some(ARGO), Some(kind)) => Err(format!(
                    "{ARGO} {kind} {}: not supported in an app's manifests (only Application and ApplicationSet)",
                    name(&object)
                )),
                _ => Ok(object),
            }
        })
        .collect()
}

fn name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn child(object: &Value, state_namespace: &str) -> Result<Value, String> {
    match parse_document(object).map_err(|e| e.to_string())? {
        Document::Application(app) => {
            let mut spec = app.spec;
            spec.project = if app.project.is_empty() {
                "default".into()
            } else {
                app.project
            };
            Ok(json!({
                "apiVersion": EDGECD,
                "kind": "Application",
                "metadata": {
                    "name": app.name,
                    "namespace": state_namespace,
                    "labels": app.labels,
                    "annotations": app.annotations,
                },
                "spec": serde_json::to_value(&spec).map_err(|e| e.to_string())?,
            }))
        }
        Document::ApplicationSet(set) => match set.spec.hub_only() {
            Some(why) => Err(format!(
                "ApplicationSet {}: the set is evaluated at the hub only ({why}); apply it to the hub",
                set.name
            )),
            None => Ok(json!({
                "apiVersion": EDGECD,
                "kind": "ApplicationSet",
                "metadata": { "name": set.name, "namespace": state_namespace },
                "spec": serde_json::to_value(&set.spec).map_err(|e| e.to_string())?,
            })),
        },
        Document::Project(project) => Err(format!(
            "AppProject {}: projects are not created from an app's manifests",
            project.name
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn argo_applications_become_edgecd_crs_in_the_state_namespace() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}}),
            json!({"apiVersion": ARGO, "kind": "Application",
                   "metadata": {"name": "child", "namespace": "argocd", "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
                   "spec": {"project": "team", "source": {"repoURL": "https://git.example/r", "path": "p"},
                            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}}}),
        ];
        let out = edge_children(objects, "edgecd-system").unwrap();
        assert_eq!(out[0]["kind"], "ConfigMap");
        assert_eq!(out[1]["apiVersion"], EDGECD);
        assert_eq!(out[1]["metadata"]["namespace"], "edgecd-system");
        assert_eq!(out[1]["spec"]["project"], "team");
        assert_eq!(out[1]["spec"]["source"]["path"], "p");
    }

    #[test]
    fn unsupported_fields_and_kinds_are_refused_by_name() {
        let helm = json!({"apiVersion": ARGO, "kind": "Application", "metadata": {"name": "h"},
            "spec": {"source": {"repoURL": "r", "chart": "c", "helm": {"releaseName": "x"}}, "destination": {}}});
        let error = edge_children(vec![helm], "ns").unwrap_err();
        assert!(error.contains("spec.source"), "{error}");
        let project = json!({"apiVersion": ARGO, "kind": "AppProject", "metadata": {"name": "p"}, "spec": {}});
        assert!(edge_children(vec![project], "ns").is_err());
        // A set reading the hub's decision resources is not evaluated at a spoke.
        let decided = json!({"apiVersion": ARGO, "kind": "ApplicationSet", "metadata": {"name": "placed"},
            "spec": {"generators": [{"clusterDecisionResource": {"configMapRef": "ocm", "name": "d"}}],
                     "template": {"metadata": {"name": "{{name}}"}, "spec": {"project": "default",
                        "source": {"repoURL": "https://git.example/r", "path": "p"},
                        "destination": {"name": "{{name}}", "namespace": "web"}}}}});
        let error = edge_children(vec![decided.clone()], "ns").unwrap_err();
        assert!(
            error.contains("ApplicationSet placed: the set is evaluated at the hub only (its clusterDecisionResource generator"),
            "{error}"
        );
        // Nor is a progressive sync, whose steps wait on apps of other clusters.
        let mut rolling = decided;
        rolling["spec"]["generators"] = json!([{"list": {"elements": [{"name": "a"}]}}]);
        rolling["spec"]["strategy"] =
            json!({"type": "RollingSync", "rollingSync": {"steps": [{}]}});
        let error = edge_children(vec![rolling], "ns").unwrap_err();
        assert!(error.contains("(its RollingSync strategy"), "{error}");
    }
}
