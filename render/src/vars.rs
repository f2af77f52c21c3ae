//! `vars`: `$(NAME)` references in the var-reference fields, replaced at the end of the build by a field of
//! the object each var names (`objref`, `fieldref.fieldpath`, default `metadata.name`).

use serde_json::Value;

use crate::fieldspec::FieldSpec;
use crate::resource::{Resource, ns_eq};

/// Bound on the number of vars of one build.
const MAX_VARS: usize = 10_000;

/// One declared var.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Var {
    pub name: String,
    group: String,
    version: String,
    kind: String,
    object_name: String,
    namespace: String,
    field_path: String,
}

impl Var {
    /// Parses a `vars` entry.
    pub(crate) fn parse(value: &Value) -> Result<Var, String> {
        let text = |v: Option<&Value>| -> String {
            v.and_then(Value::as_str).unwrap_or_default().to_string()
        };
        let map = value.as_object().ok_or("a var must be a mapping")?;
        let name = text(map.get("name"));
        if name.is_empty() {
            return Err("a var needs a name".into());
        }
        let objref = map
            .get("objref")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("var '{name}' needs an objref"))?;
        let api_version = text(objref.get("apiVersion"));
        let (group, version) = if api_version.is_empty() {
            (text(objref.get("group")), text(objref.get("version")))
        } else {
            match api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), api_version),
            }
        };
        // kustomize decodes through encoding/json, whose field names match case-insensitively.
        let field_path = map
            .get("fieldref")
            .and_then(Value::as_object)
            .and_then(|f| {
                f.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("fieldpath"))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .unwrap_or("metadata.name")
            .to_string();
        Ok(Var {
            name,
            group,
            version,
            kind: text(objref.get("kind")),
            object_name: text(objref.get("name")),
            namespace: text(objref.get("namespace")),
            field_path,
        })
    }
}

/// Adds a kustomization's (or a base's) vars to the build's, refusing a name declared twice.
pub(crate) fn merge(into: &mut Vec<Var>, incoming: &[Var]) -> Result<(), String> {
    for var in incoming {
        if into.iter().any(|v| v.name == var.name) {
            return Err(format!("var '{}' already encountered", var.name));
        }
        into.push(var.clone());
    }
    if into.len() > MAX_VARS {
        return Err(format!("more than {MAX_VARS} vars"));
    }
    Ok(())
}

/// Binds each var to the one object its objref names (by any of its names), as kustomize does where the
/// var is declared. No match leaves the var unbound (an error when it is resolved).
pub(crate) fn bind(resources: &mut [Resource], vars: &[Var]) -> Result<(), String> {
    for var in vars {
        let cluster_scoped =
            crate::schema::is_namespaced(&var.group, &var.version, &var.kind) == Some(false);
        let exact_namespace = !var.namespace.is_empty() || cluster_scoped;
        let matched: Vec<usize> = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let id = r.id();
                id.group == var.group
                    && id.version == var.version
                    && id.kind == var.kind
                    && r.all_names().any(|n| n == var.object_name)
                    && (!exact_namespace || r.all_namespaces().any(|n| ns_eq(n, &var.namespace)))
            })
            .map(|(i, _)| i)
            .collect();
        match matched.as_slice() {
            [] => {}
            [index] => resources[*index].ref_vars.push(var.name.clone()),
            _ => {
                return Err(format!(
                    "found {} resId matches for var {} (unable to disambiguate)",
                    matched.len(),
                    var.name
                ));
            }
        }
    }
    Ok(())
}

/// Replaces `$(NAME)` in the var-reference fields of every object.
pub(crate) fn resolve(
    resources: &mut [Resource],
    vars: &[Var],
    extra_references: &[FieldSpec],
) -> Result<(), String> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(String, String)> = Vec::new();
    for var in vars {
        let Some(resource) = resources.iter().find(|r| r.ref_vars.contains(&var.name)) else {
            return Err(format!(
                "var '{}' cannot be mapped to a field in the set of known resources",
                var.name
            ));
        };
        let path = field_path(&var.field_path)?;
        let value = crate::replacements::lookup(&resource.object, &path)?
            .and_then(text_of)
            .ok_or_else(|| {
                format!(
                    "field specified in var '{}' ({}) not found in corresponding resource {}",
                    var.name,
                    var.field_path,
                    resource.id()
                )
            })?;
        values.push((var.name.clone(), value));
    }
    let mut specs = default_references();
    for spec in extra_references {
        if !specs.contains(spec) {
            specs.push(spec.clone());
        }
    }
    for resource in resources.iter_mut() {
        let (group, version) = resource.group_version();
        let kind = resource.kind();
        let matching: Vec<&FieldSpec> = specs
            .iter()
            .filter(|s| s.matches_gvk(group, version, kind))
            .collect();
        for spec in matching {
            spec.visit(&mut resource.object, &mut |field| {
                expand_node(field, &values)
            });
        }
    }
    Ok(())
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A var field path: `.`-separated, with `name[0]` meaning `name.0`.
fn field_path(path: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in crate::replacements::split_field_path(path)? {
        match part.find('[') {
            Some(open) if open > 0 && part.ends_with(']') && !part.contains('=') => {
                out.push(part[..open].to_string());
                out.push(part[open + 1..part.len() - 1].to_string());
            }
            _ => out.push(part),
        }
    }
    Ok(out)
}

/// Expands the strings of a scalar, a map's values or a list's items.
fn expand_node(node: &mut Value, values: &[(String, String)]) {
    match node {
        Value::String(s) => *s = expand(s, values),
        Value::Object(map) => {
            for value in map.values_mut() {
                if let Value::String(s) = value {
                    *s = expand(s, values);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::String(s) = item {
                    *s = expand(s, values);
                }
            }
        }
        _ => {}
    }
}

/// Kubernetes-style expansion: `$(NAME)` of a known var is replaced, `$$` is a literal `$`, anything else
/// stays as written.
pub(crate) fn expand(input: &str, values: &[(String, String)]) -> String {
    if !input.contains('$') {
        return input.to_string();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(close) => {
                    let name = &body[..close];
                    match values.iter().find(|(n, _)| n == name) {
                        Some((_, value)) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// kustomize's default var-reference fields: (kind, path); an empty kind means every object.
const DEFAULT_REFERENCES: &[(&str, &str)] = &[
    ("", "metadata/labels"),
    ("", "metadata/annotations"),
    ("Deployment", "spec/template/metadata/annotations"),
    ("Ingress", "spec/rules/host"),
    ("Ingress", "spec/tls/hosts"),
    ("Ingress", "spec/tls/secretName"),
    ("Service", "spec/ports/port"),
    ("Service", "spec/ports/targetPort"),
    ("PersistentVolume", "spec/nfs/server"),
    ("StatefulSet", "spec/volumeClaimTemplates/spec/nfs/server"),
];

/// Where each workload kind keeps its pod spec.
const POD_SPEC_PATHS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("Deployment", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

fn default_references() -> Vec<FieldSpec> {
    let mut specs = Vec::new();
    for (kind, base) in POD_SPEC_PATHS {
        for containers in ["containers", "initContainers"] {
            for field in ["args", "command", "env/value", "volumeMounts/mountPath"] {
                specs.push(FieldSpec::new(
                    "",
                    kind,
                    &format!("{base}/{containers}/{field}"),
                    false,
                ));
            }
        }
        // kustomize lists CronJob's NFS volumes one level up (`spec/jobTemplate/spec/template/volumes`).
        let volumes = if *kind == "CronJob" {
            "spec/jobTemplate/spec/template/volumes/nfs/server".to_string()
        } else {
            format!("{base}/volumes/nfs/server")
        };
        specs.push(FieldSpec::new("", kind, &volumes, false));
    }
    for (kind, path) in DEFAULT_REFERENCES {
        specs.push(FieldSpec::new("", kind, path, false));
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let values = vec![("A".to_string(), "x".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$-$(", &values), "x-$(B)-$(A)-$-$(");
        assert_eq!(expand("plain", &values), "plain");
    }

    #[test]
    fn var_field_paths_accept_brackets() {
        assert_eq!(
            field_path("spec.ports[0].port").unwrap_or_default(),
            vec!["spec", "ports", "0", "port"]
        );
    }
}
