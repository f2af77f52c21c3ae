//! Argo CD's `clusterDecisionResource` generator: the decisions listed in the status of "duck-typed" resources (Open Cluster Management's `PlacementDecision`, or any kind a ConfigMap describes), matched to clusters by name.

use std::collections::BTreeMap;

use serde_json::Value;

use super::template::scalar_text;
use super::{AppSetError, ClusterDecisionResourceGenerator, EvalContext, Params};

/// The keys of the ConfigMap that describes a duck type (`configMapRef`).
pub const DECISION_CONFIG_KEYS: [&str; 4] = ["apiVersion", "kind", "statusListKey", "matchKey"];

/// One parameter set per decision whose `matchKey` names a cluster: `name` and `server` of that cluster, then
/// every key of the decision as text (a decision's own `name` wins, as in Argo CD), then the generator's
/// `values` (`values.<key>`, or a `values` map with Go templates). As Argo CD: the ConfigMap must name a kind
/// (`apiVersion` with a group or version before a `/`), exactly one of `name` and `labelSelector` is set, no
/// resource found is an error, a ConfigMap without `matchKey` or resources without the status list generate
/// nothing, and a decision naming no known cluster is skipped.
pub(super) fn eval(
    g: &ClusterDecisionResourceGenerator,
    ctx: &EvalContext<'_>,
    go: bool,
    path: &str,
) -> Result<Vec<Params>, AppSetError> {
    let fail = |field: &str, message: String| AppSetError::new(format!("{path}{field}"), message);
    let data = ctx.decisions.config_map(&g.config_map_ref).ok_or_else(|| {
        fail(
            ".configMapRef",
            format!(
                "no ConfigMap {:?} is held (apply it to the hub: data apiVersion, kind, statusListKey, matchKey)",
                g.config_map_ref
            ),
        )
    })?;
    let text = |key: &str| data.get(key).map(String::as_str).unwrap_or_default();
    check_config(&data).map_err(|e| {
        fail(
            ".configMapRef",
            format!("ConfigMap {:?}: {e}", g.config_map_ref),
        )
    })?;
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let by_name = !g.name.is_empty();
    if by_name != g.label_selector.is_empty() {
        return Err(fail(
            "",
            "set either name or labelSelector (exactly one) to choose the decision resources"
                .into(),
        ));
    }
    let resources: Vec<_> = ctx
        .decisions
        .resources(api_version, kind)
        .into_iter()
        .filter(|r| {
            if by_name {
                r.name == g.name
            } else {
                g.label_selector.matches(&r.labels)
            }
        })
        .collect();
    if resources.is_empty() {
        return Err(fail(
            "",
            format!("no {kind} ({api_version}) resource is held that the generator selects"),
        ));
    }
    let list_key = match text("statusListKey") {
        "" => "clusters",
        key => key,
    };
    let match_key = text("matchKey");
    if match_key.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for resource in &resources {
        let decisions = match resource.status.get(list_key) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(fail(
                    "",
                    format!("{kind} {}: status.{list_key} is not a list", resource.name),
                ));
            }
        };
        for decision in decisions {
            let Some(decision) = decision.as_object() else {
                return Err(fail(
                    "",
                    format!(
                        "{kind} {}: status.{list_key} holds a decision that is not an object",
                        resource.name
                    ),
                ));
            };
            let wanted = match decision.get(match_key) {
                None | Some(Value::Null) => continue,
                Some(v) => scalar_text(v),
            };
            let Some(cluster) = ctx.clusters.iter().find(|c| c.name == wanted) else {
                continue;
            };
            let mut params = Params::new();
            params.insert("name".into(), cluster.name.clone().into());
            params.insert("server".into(), cluster.server.clone().into());
            for (key, value) in decision {
                let text = match value {
                    Value::Array(_) | Value::Object(_) => value.to_string(),
                    other => scalar_text(other),
                };
                params.insert(key.clone(), Value::String(text));
            }
            if go {
                if !g.values.is_empty() {
                    let values: serde_json::Map<String, Value> = g
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    params.insert("values".into(), Value::Object(values));
                }
            } else {
                for (key, value) in &g.values {
                    params.insert(format!("values.{key}"), Value::String(value.clone()));
                }
            }
            out.push(params);
        }
    }
    Ok(out)
}

/// The ConfigMap data a duck type needs, checked where it is applied: `apiVersion` and `kind` set.
pub fn check_config(data: &BTreeMap<String, String>) -> Result<(), String> {
    let api_version = data
        .get("apiVersion")
        .map(String::as_str)
        .unwrap_or_default();
    let kind = data.get("kind").map(String::as_str).unwrap_or_default();
    if kind.is_empty() || api_version.find('/').is_none_or(|i| i < 1) {
        return Err(format!(
            "data.apiVersion (group/version) and data.kind name the decision resources' kind; found apiVersion {api_version:?}, kind {kind:?}"
        ));
    }
    Ok(())
}
