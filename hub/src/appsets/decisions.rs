//! The resources `clusterDecisionResource` generators read at the hub: ConfigMaps naming a duck type and decision resources (Open Cluster Management's `PlacementDecision`, …), applied by admins and stored as they are.

use std::collections::BTreeMap;

use edgecd_core::appset::{DecisionLookup, DecisionResource};

use crate::store::appsets::DecisionRecord;

/// Most decision resources (ConfigMaps included) the hub holds.
pub const MAX_DECISION_RESOURCES: usize = 1_000;
/// Largest body (a ConfigMap's data, a resource's status) accepted, in bytes of JSON.
pub const MAX_DECISION_BODY_BYTES: usize = 256 * 1024;

/// The decision resources of one evaluation.
#[derive(Debug, Default)]
pub struct HubDecisions {
    records: Vec<DecisionRecord>,
}

impl HubDecisions {
    pub fn new(records: Vec<DecisionRecord>) -> Self {
        Self { records }
    }
}

/// Whether a stored kind is the one a ConfigMap names: Argo CD's ConfigMaps name the API resource (lower-case
/// plural, `placementdecisions`), documents carry the kind (`PlacementDecision`); either spelling matches,
/// without case.
pub fn kind_matches(stored: &str, named: &str) -> bool {
    let stored = stored.to_ascii_lowercase();
    let named = named.to_ascii_lowercase();
    named == stored || named == format!("{stored}s") || named == format!("{stored}es")
}

/// Whether a document of `api_version` and `kind` is a ConfigMap (stored with its `data`).
pub fn is_config_map(api_version: &str, kind: &str) -> bool {
    api_version == "v1" && kind == "ConfigMap"
}

impl DecisionLookup for HubDecisions {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.records
            .iter()
            .find(|r| is_config_map(&r.api_version, &r.kind) && r.name == name)
            .and_then(|r| serde_json::from_value(r.body.clone()).ok())
    }

    fn resources(&self, api_version: &str, kind: &str) -> Vec<DecisionResource> {
        self.records
            .iter()
            .filter(|r| {
                !is_config_map(&r.api_version, &r.kind)
                    && r.api_version == api_version
                    && kind_matches(&r.kind, kind)
            })
            .map(|r| DecisionResource {
                name: r.name.clone(),
                labels: r.labels.clone(),
                status: r.body.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configmap_names_the_kind_as_a_resource_or_as_a_kind() {
        assert!(kind_matches("PlacementDecision", "placementdecisions"));
        assert!(kind_matches("PlacementDecision", "PlacementDecision"));
        assert!(kind_matches("Duck", "ducks"));
        assert!(kind_matches("Match", "matches"));
        assert!(!kind_matches("PlacementDecision", "placements"));
        assert!(!kind_matches("Duck", "goose"));
    }
}

/// A decision document applied to the hub, checked: a ConfigMap naming a duck type (its `data`), or a
/// decision resource (its `status`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionDocument {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub body: serde_json::Value,
}

impl DecisionDocument {
    pub fn is_config_map(&self) -> bool {
        is_config_map(&self.api_version, &self.kind)
    }

    /// `(apiVersion, kind)` a ConfigMap names (nothing for another document, whatever its status holds).
    pub fn names_kind(&self) -> Option<(String, String)> {
        if !self.is_config_map() {
            return None;
        }
        named_kind(&self.body)
    }
}

/// `(apiVersion, kind)` in a ConfigMap's data.
pub fn named_kind(data: &serde_json::Value) -> Option<(String, String)> {
    let text = |key: &str| data.get(key).and_then(serde_json::Value::as_str);
    Some((text("apiVersion")?.to_owned(), text("kind")?.to_owned()))
}

/// Reads a document that is not an Argo CD or edgecd object (`argoproj.io/…`, `edgecd.io/…`: `None`) as a
/// decision document: a `v1` ConfigMap whose `data` names a duck type (only `apiVersion`, `kind`,
/// `statusListKey`, `matchKey`), or any other object with a name and, if any, an object `status` (the hub
/// checks that a ConfigMap names its kind). Errors name the field.
pub fn parse_document(doc: &serde_json::Value) -> Option<Result<DecisionDocument, String>> {
    let api_version = doc.get("apiVersion").and_then(serde_json::Value::as_str)?;
    if api_version.starts_with("argoproj.io/") || api_version.starts_with("edgecd.io/") {
        return None;
    }
    Some(parse_checked(doc, api_version))
}

fn parse_checked(doc: &serde_json::Value, api_version: &str) -> Result<DecisionDocument, String> {
    let kind = doc
        .get("kind")
        .and_then(serde_json::Value::as_str)
        .filter(|k| !k.is_empty() && k.len() <= 63 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or("kind: expected a Kubernetes kind")?;
    if api_version.len() > 253
        || api_version.is_empty()
        || api_version
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("apiVersion: expected group/version or v1".into());
    }
    let meta = doc
        .get("metadata")
        .and_then(serde_json::Value::as_object)
        .ok_or("metadata: required")?;
    let name = meta
        .get("name")
        .and_then(serde_json::Value::as_str)
        .ok_or("metadata.name: required")?;
    let subdomain = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if !subdomain {
        return Err(format!(
            "metadata.name: {name:?} is not a Kubernetes name (lower-case letters, digits, '-' and '.', at most 253)"
        ));
    }
    let labels: BTreeMap<String, String> = match meta.get("labels") {
        None | Some(serde_json::Value::Null) => BTreeMap::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| "metadata.labels: expected a map of strings".to_owned())?,
    };
    edgecd_core::app::validate_labels(&labels, "metadata.labels")
        .map_err(|e| format!("{}: {}", e.field, e.message))?;
    let body = if is_config_map(api_version, kind) {
        let data: BTreeMap<String, String> = match doc.get("data") {
            None | Some(serde_json::Value::Null) => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| "data: expected a map of strings".to_owned())?,
        };
        if let Some(key) = data
            .keys()
            .find(|k| !edgecd_core::appset::DECISION_CONFIG_KEYS.contains(&k.as_str()))
        {
            return Err(format!(
                "data.{key}: a ConfigMap is kept by the hub only to name the kind of clusterDecisionResource generators' resources (data: {})",
                edgecd_core::appset::DECISION_CONFIG_KEYS.join(", ")
            ));
        }
        edgecd_core::appset::check_decision_config(&data)?;
        serde_json::to_value(data).map_err(|e| e.to_string())?
    } else {
        match doc.get("status") {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(v @ serde_json::Value::Object(_)) => v.clone(),
            Some(_) => return Err("status: expected an object".into()),
        }
    };
    let bytes = body.to_string().len();
    if bytes > MAX_DECISION_BODY_BYTES {
        return Err(format!(
            "{}: {bytes} bytes; at most {MAX_DECISION_BODY_BYTES} are kept",
            if is_config_map(api_version, kind) {
                "data"
            } else {
                "status"
            }
        ));
    }
    Ok(DecisionDocument {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        labels,
        body,
    })
}
