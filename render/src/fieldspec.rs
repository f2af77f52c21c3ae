//! Field specs and transformer configurations (`configurations:` files): which fields of which kinds the
//! built-in transformers touch, as kustomize's `nameReference`/`namespace`/`commonLabels`/`varReference`… lists.

use serde_json::{Map, Value};

use crate::resource::Resource;

/// Bound on the number of field specs one build accumulates from configuration files.
const MAX_FIELD_SPECS: usize = 10_000;

/// One field spec: a path (`/`-separated, lists entered implicitly or with `[]`) on objects of a kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: Vec<String>,
    pub create: bool,
}

impl FieldSpec {
    /// Parses one `{group, version, kind, path, create}` entry.
    pub(crate) fn parse(value: &Value) -> Result<FieldSpec, String> {
        let map = value
            .as_object()
            .ok_or("a field spec must be a mapping with a path")?;
        let text = |key: &str| -> Result<Option<String>, String> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Ok(Some(
                    scalar_text(other).ok_or(format!("field spec '{key}' must be a string"))?,
                )),
            }
        };
        let path = text("path")?.ok_or("a field spec needs a path")?;
        Ok(FieldSpec {
            group: text("group")?,
            version: text("version")?,
            kind: text("kind")?,
            path: split_path(&path),
            create: map.get("create").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// A spec from a compact `path` and optional kind.
    pub(crate) fn new(group: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        FieldSpec {
            group: opt(group),
            version: None,
            kind: opt(kind),
            path: split_path(path),
            create,
        }
    }

    /// Whether the spec applies to the resource's group, version and kind (unset parts match anything).
    pub(crate) fn matches(&self, resource: &Resource) -> bool {
        let id = resource.id();
        self.matches_gvk(&id.group, &id.version, &id.kind)
    }

    pub(crate) fn matches_gvk(&self, group: &str, version: &str, kind: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.kind.as_deref().is_none_or(|k| k == kind)
    }

    /// Calls `f` on every value at the spec's path in `object`; lists along the way are entered element by
    /// element. With `create`, missing maps along the path and the final field (as null) are created.
    pub(crate) fn visit(&self, object: &mut Value, f: &mut dyn FnMut(&mut Value)) {
        visit(object, &self.path, self.create, f);
    }
}

/// Splits a field-spec path on `/` (a `\/` stays in the segment).
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.trim_start_matches('/').split('/') {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(part);
            }
            _ => out.push(part.to_string()),
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn visit(value: &mut Value, path: &[String], create: bool, f: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = path.split_first() else {
        f(value);
        return;
    };
    match value {
        Value::Array(items) => {
            for item in items {
                visit(item, path, create, f);
            }
        }
        Value::Object(map) => {
            let (field, is_seq) = match first.strip_suffix("[]") {
                Some(field) => (field, true),
                None => (first.as_str(), false),
            };
            if !map.contains_key(field) {
                if !create || is_seq {
                    return;
                }
                let new = if rest.is_empty() {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
                map.insert(field.to_string(), new);
            }
            let Some(child) = map.get_mut(field) else {
                return;
            };
            if child.is_null() && !rest.is_empty() {
                if !create {
                    return;
                }
                *child = Value::Object(Map::new());
            }
            visit(child, rest, create, f);
        }
        _ => {}
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        _ => None,
    }
}

/// A `nameReference` entry: fields (in other objects) that name an object of `kind`.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameBackRef {
    pub group: Option<String>,
    pub kind: String,
    pub specs: Vec<FieldSpec>,
}

/// Field specs added by `configurations:` files (on top of the built-in defaults).
#[derive(Debug, Clone, Default)]
pub(crate) struct TransformerConfig {
    pub name_reference: Vec<NameBackRef>,
    pub namespace: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    /// Vars declared so far (they travel with the configuration up the build).
    pub vars: Vec<crate::vars::Var>,
}

impl TransformerConfig {
    /// Parses a configuration document.
    pub(crate) fn parse(value: &Value) -> Result<TransformerConfig, String> {
        let mut config = TransformerConfig::default();
        let map = match value {
            Value::Null => return Ok(config),
            Value::Object(map) => map,
            _ => return Err("a transformer configuration must be a mapping".into()),
        };
        for (key, entries) in map {
            let list: &[Value] = match entries {
                Value::Null => &[],
                Value::Array(items) => items,
                _ => return Err(format!("'{key}' must be a list of field specs")),
            };
            if key == "nameReference" {
                for entry in list {
                    let kind = entry
                        .get("kind")
                        .and_then(Value::as_str)
                        .ok_or("a nameReference entry needs a kind")?;
                    let mut specs = Vec::new();
                    for spec in entry
                        .get("fieldSpecs")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice)
                    {
                        specs.push(FieldSpec::parse(spec).map_err(|e| format!("{key}: {e}"))?);
                    }
                    config.name_reference.push(NameBackRef {
                        group: entry
                            .get("group")
                            .and_then(Value::as_str)
                            .filter(|g| !g.is_empty())
                            .map(String::from),
                        kind: kind.to_string(),
                        specs,
                    });
                }
                continue;
            }
            let target = match key.as_str() {
                "namespace" => &mut config.namespace,
                "commonLabels" => &mut config.common_labels,
                "templateLabels" => &mut config.template_labels,
                "commonAnnotations" => &mut config.common_annotations,
                "namePrefix" => &mut config.name_prefix,
                "nameSuffix" => &mut config.name_suffix,
                "varReference" => &mut config.var_reference,
                "images" => &mut config.images,
                "replicas" => &mut config.replicas,
                // Specs kustomize reads but that no transformer here uses on their own.
                "metadataLabels" | "nameSuffixes" => continue,
                other => return Err(format!("unknown transformer configuration field '{other}'")),
            };
            for spec in list {
                target.push(FieldSpec::parse(spec).map_err(|e| format!("{key}: {e}"))?);
            }
        }
        Ok(config)
    }

    /// Adds another configuration's specs (duplicates are kept once).
    pub(crate) fn merge(&mut self, other: &TransformerConfig) -> Result<(), String> {
        fn extend(into: &mut Vec<FieldSpec>, from: &[FieldSpec]) {
            for spec in from {
                if !into.contains(spec) {
                    into.push(spec.clone());
                }
            }
        }
        extend(&mut self.namespace, &other.namespace);
        extend(&mut self.common_labels, &other.common_labels);
        extend(&mut self.template_labels, &other.template_labels);
        extend(&mut self.common_annotations, &other.common_annotations);
        extend(&mut self.name_prefix, &other.name_prefix);
        extend(&mut self.name_suffix, &other.name_suffix);
        extend(&mut self.var_reference, &other.var_reference);
        extend(&mut self.images, &other.images);
        extend(&mut self.replicas, &other.replicas);
        crate::vars::merge(&mut self.vars, &other.vars)?;
        for back in &other.name_reference {
            match self
                .name_reference
                .iter_mut()
                .find(|b| b.kind == back.kind && b.group == back.group)
            {
                Some(existing) => extend(&mut existing.specs, &back.specs),
                None => self.name_reference.push(back.clone()),
            }
        }
        if self.size() > MAX_FIELD_SPECS {
            return Err(format!(
                "transformer configurations hold more than {MAX_FIELD_SPECS} field specs"
            ));
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.namespace.len()
            + self.common_labels.len()
            + self.template_labels.len()
            + self.common_annotations.len()
            + self.name_prefix.len()
            + self.name_suffix.len()
            + self.var_reference.len()
            + self.images.len()
            + self.replicas.len()
            + self
                .name_reference
                .iter()
                .map(|b| b.specs.len() + 1)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn paths_enter_lists_implicitly_and_create_maps() {
        let spec = FieldSpec::new("", "", "webhooks/clientConfig/service/namespace", true);
        let mut object = json!({"webhooks": [{"clientConfig": {"service": {"name": "a"}}}, {}]});
        spec.visit(&mut object, &mut |v| *v = json!("ns"));
        assert_eq!(
            object,
            json!({"webhooks": [
                {"clientConfig": {"service": {"name": "a", "namespace": "ns"}}},
                {"clientConfig": {"service": {"namespace": "ns"}}}
            ]})
        );
        assert_eq!(split_path("/a/b\\/c/d"), vec!["a", "b/c", "d"]);
    }

    #[test]
    fn configurations_parse_and_merge() {
        let value = crate::yaml::load_one(
            "nameReference:\n- kind: Service\n  version: v1\n  fieldSpecs:\n  - kind: X\n    path: spec/svc\nvarReference:\n- path: data/config\n  kind: ConfigMap\n",
        )
        .unwrap();
        let config = TransformerConfig::parse(&value).unwrap();
        let mut merged = TransformerConfig::default();
        merged.merge(&config).unwrap();
        merged.merge(&config).unwrap();
        assert_eq!(merged.name_reference.len(), 1);
        assert_eq!(merged.name_reference[0].specs.len(), 1);
        assert_eq!(merged.var_reference.len(), 1);
        assert!(TransformerConfig::parse(&json!({"bogus": []})).is_err());
    }
}
