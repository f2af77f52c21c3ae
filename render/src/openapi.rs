//! OpenAPI documents a kustomization names: a custom schema (`openapi: {path}`) that replaces the built-in
//! merge table for strategic merges, and `crds:` definition files whose `x-kubernetes-*` extensions add
//! field specs to the transformer configuration.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::fieldspec::{FieldSpec, NameBackRef, TransformerConfig, merge_one};

/// Deepest schema nesting followed (a self-referencing schema stops here).
const MAX_SCHEMA_DEPTH: usize = 64;
/// Bound on the schema nodes one custom schema may hold.
const MAX_SCHEMA_NODES: usize = 200_000;

/// A custom OpenAPI (swagger 2) schema: the object types by `x-kubernetes-group-version-kind`, the scope the
/// `paths` give them, and per schema node the strategic-merge extensions kustomize reads.
#[derive(Debug, Default)]
pub(crate) struct CustomSchema {
    nodes: Vec<SchemaNode>,
    /// `definitions` entries by name.
    definitions: HashMap<String, usize>,
    /// Root node per (apiVersion, kind).
    roots: HashMap<(String, String), usize>,
    /// Whether a type is namespaced, per (apiVersion, kind), from the `paths` of the document.
    namespaced: HashMap<(String, String), bool>,
}

#[derive(Debug, Default)]
struct SchemaNode {
    /// `$ref` (a `#/definitions/NAME` pointer).
    reference: Option<String>,
    properties: HashMap<String, usize>,
    additional: Option<usize>,
    items: Option<usize>,
    is_array: bool,
    patch_strategy: Option<String>,
    merge_key: Option<String>,
    map_keys: Vec<String>,
}

/// How a list field merges under a custom schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CustomList<'a> {
    /// Replaced by the patch's list (no `merge` patch strategy).
    Replace,
    /// Scalars merged as a set (a `merge` strategy without a key).
    Set,
    /// Objects merged by this key.
    Key(&'a str),
}

/// What the custom schema says about one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomField<'a> {
    pub list: Option<CustomList<'a>>,
    /// The schema of the field's value (of its items for lists).
    pub child: Option<usize>,
}

impl CustomSchema {
    /// Parses a schema document (JSON or YAML).
    pub(crate) fn parse(document: &Value) -> Result<CustomSchema, String> {
        let mut schema = CustomSchema::default();
        let definitions = document
            .get("definitions")
            .and_then(Value::as_object)
            .ok_or("the schema has no 'definitions' mapping")?;
        let mut pending = Vec::new();
        for (name, definition) in definitions {
            let index = schema.add(definition, 0)?;
            schema.definitions.insert(name.clone(), index);
            pending.push((definition, index));
        }
        for (definition, index) in pending {
            for (api_version, kind) in group_version_kinds(definition) {
                schema.roots.insert((api_version, kind), index);
            }
        }
        if let Some(paths) = document.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let Some(get) = item.get("get") else { continue };
                for type_meta in group_version_kinds(get) {
                    if path.contains("namespaces/{namespace}") {
                        schema.namespaced.insert(type_meta, true);
                    } else {
                        schema.namespaced.entry(type_meta).or_insert(false);
                    }
                }
            }
        }
        Ok(schema)
    }

    fn add(&mut self, value: &Value, depth: usize) -> Result<usize, String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!("schema nesting deeper than {MAX_SCHEMA_DEPTH}"));
        }
        if self.nodes.len() >= MAX_SCHEMA_NODES {
            return Err(format!("schema with more than {MAX_SCHEMA_NODES} nodes"));
        }
        let index = self.nodes.len();
        self.nodes.push(SchemaNode::default());
        let Some(map) = value.as_object() else {
            return Ok(index);
        };
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(String::from);
        let mut node = SchemaNode {
            reference: text("$ref"),
            patch_strategy: text("x-kubernetes-patch-strategy"),
            merge_key: text("x-kubernetes-patch-merge-key"),
            map_keys: map
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            is_array: match map.get("type") {
                Some(Value::String(t)) => t == "array",
                Some(Value::Array(types)) => types.len() == 1 && types[0].as_str() == Some("array"),
                _ => false,
            },
            ..SchemaNode::default()
        };
        if let Some(Value::Object(properties)) = map.get("properties") {
            for (name, property) in properties {
                let child = self.add(property, depth + 1)?;
                node.properties.insert(name.clone(), child);
            }
        }
        if let Some(additional @ Value::Object(_)) = map.get("additionalProperties") {
            node.additional = Some(self.add(additional, depth + 1)?);
        }
        if let Some(items @ Value::Object(_)) = map.get("items") {
            node.items = Some(self.add(items, depth + 1)?);
        }
        self.nodes[index] = node;
        Ok(index)
    }

    /// Follows `$ref`s to the schema that holds the content.
    fn resolve(&self, mut index: usize) -> Option<usize> {
        for _ in 0..MAX_SCHEMA_DEPTH {
            let node = self.nodes.get(index)?;
            match &node.reference {
                None => return Some(index),
                Some(reference) => {
                    let name = reference.strip_prefix("#/definitions/")?;
                    let name = name.replace("~1", "/").replace("~0", "~");
                    index = *self.definitions.get(&name)?;
                }
            }
        }
        None
    }

    /// The root schema of a type, if the document declares it.
    pub(crate) fn root(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.roots
            .get(&(api_version.to_string(), kind.to_string()))
            .and_then(|i| self.resolve(*i))
    }

    /// Whether the document's `paths` declare a type namespaced (`Some(true)`) or cluster-scoped.
    pub(crate) fn is_namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        self.namespaced
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }

    /// A field of the object schema at `node` (a declared property, else `additionalProperties`).
    pub(crate) fn field(&self, node: usize, name: &str) -> Option<CustomField<'_>> {
        let object = self.nodes.get(node)?;
        let raw = object.properties.get(name).copied().or(object.additional)?;
        let schema_index = self.resolve(raw)?;
        let schema = &self.nodes[schema_index];
        let merges = schema
            .patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == "merge"));
        let key = schema
            .map_keys
            .first()
            .or(schema.merge_key.as_ref())
            .map(String::as_str);
        let list = schema.is_array.then_some(match (merges, key) {
            (false, _) => CustomList::Replace,
            (true, Some(key)) => CustomList::Key(key),
            (true, None) => CustomList::Set,
        });
        let child = if schema.is_array {
            schema.items.and_then(|i| self.resolve(i))
        } else {
            Some(schema_index)
        };
        Some(CustomField { list, child })
    }
}

thread_local! {
    /// The custom schema of the build running on this thread (kustomize keeps it in a process-wide global).
    static CURRENT: RefCell<Option<Arc<CustomSchema>>> = const { RefCell::new(None) };
}

/// The custom schema in use by the build on this thread, if any.
pub(crate) fn current() -> Option<Arc<CustomSchema>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `schema` the thread's custom schema until the guard is dropped (which restores the previous one).
pub(crate) fn install(schema: Option<Arc<CustomSchema>>) -> SchemaGuard {
    let previous = CURRENT.with(|c| c.replace(schema));
    SchemaGuard { previous }
}

/// Restores the previous custom schema when dropped.
#[must_use]
pub(crate) struct SchemaGuard {
    previous: Option<Arc<CustomSchema>>,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The `x-kubernetes-group-version-kind` entries of a definition (a list) or an operation (one entry), as
/// (apiVersion, kind).
fn group_version_kinds(value: &Value) -> Vec<(String, String)> {
    let entries = match value.get("x-kubernetes-group-version-kind") {
        Some(Value::Array(entries)) => entries.as_slice(),
        Some(entry @ Value::Object(_)) => std::slice::from_ref(entry),
        _ => return Vec::new(),
    };
    entries
        .iter()
        .filter_map(|entry| {
            let version = entry.get("version")?.as_str()?;
            let kind = entry.get("kind")?.as_str()?;
            let group = entry.get("group").and_then(Value::as_str).unwrap_or("");
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            Some((api_version, kind.to_string()))
        })
        .collect()
}

/// Field specs from a `crds:` file: a map from type name to `{Schema, Dependencies}` (Go's OpenAPI
/// definitions). Each type with `kind`, `apiVersion` and `metadata` properties is walked (through `$ref`s to
/// other entries); a property marked `x-kubernetes-annotation`, `x-kubernetes-label-selector` or
/// `x-kubernetes-identity` adds its path to the annotation, selector-label or name-prefix specs of that
/// kind, and one with `x-kubernetes-object-ref-api-version` and `x-kubernetes-object-ref-kind` makes its
/// `name` (or `x-kubernetes-object-ref-name-key`) field a name reference to that version and kind.
pub(crate) fn config_from_crds(document: &Value) -> Result<TransformerConfig, String> {
    let types = document
        .as_object()
        .ok_or("a crds file must map type names to OpenAPI definitions")?;
    let mut config = TransformerConfig::default();
    for (name, definition) in types {
        let Some(properties) = properties_of(definition) else {
            continue;
        };
        if !["kind", "apiVersion", "metadata"]
            .iter()
            .all(|p| properties.contains_key(*p))
        {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name);
        let mut walk = CrdWalk {
            types,
            kind,
            config: &mut config,
            stack: Vec::new(),
        };
        walk.walk(name, &mut Vec::new())?;
    }
    Ok(config)
}

/// The `properties` of a `crds:` entry's schema (`Schema`, matched case-insensitively as Go's JSON does).
fn properties_of(definition: &Value) -> Option<&serde_json::Map<String, Value>> {
    let schema = definition
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))?
        .1;
    schema.get("properties")?.as_object()
}

struct CrdWalk<'a> {
    types: &'a serde_json::Map<String, Value>,
    kind: &'a str,
    config: &'a mut TransformerConfig,
    /// Type names being walked (a type referring back to one of them is not walked again).
    stack: Vec<String>,
}

impl CrdWalk<'_> {
    fn walk(&mut self, type_name: &str, path: &mut Vec<String>) -> Result<(), String> {
        let Some(properties) = self.types.get(type_name).and_then(properties_of) else {
            return Ok(());
        };
        if self.stack.iter().any(|t| t == type_name) || self.stack.len() > MAX_SCHEMA_DEPTH {
            return Ok(());
        }
        self.stack.push(type_name.to_string());
        for (property_name, property) in properties {
            path.push(property_name.clone());
            let extension = |key: &str| property.get(key).and_then(Value::as_str);
            let spec = |segments: &[String]| {
                FieldSpec::with_version("", "", self.kind, &segments.join("/"), false)
            };
            if extension("x-kubernetes-annotation").is_some() {
                merge_one(&mut self.config.common_annotations, spec(path))?;
            }
            if extension("x-kubernetes-label-selector").is_some() {
                merge_one(&mut self.config.common_labels, spec(path))?;
            }
            if extension("x-kubernetes-identity").is_some() {
                merge_one(&mut self.config.name_prefix, spec(path))?;
            }
            if let (Some(version), Some(kind)) = (
                extension("x-kubernetes-object-ref-api-version"),
                extension("x-kubernetes-object-ref-kind"),
            ) {
                let name_key = extension("x-kubernetes-object-ref-name-key").unwrap_or("name");
                let mut segments = path.clone();
                segments.push(name_key.to_string());
                self.config.add_name_reference(NameBackRef {
                    group: None,
                    version: Some(version.to_string()),
                    kind: kind.to_string(),
                    specs: vec![spec(&segments)],
                })?;
            }
            if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
                let reference = reference.to_string();
                self.walk(&reference, path)?;
            }
            path.pop();
        }
        self.stack.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn custom_schema_fields_follow_refs_and_merge_keys() {
        let schema = CustomSchema::parse(&json!({"definitions": {
            "a.Widget": {
                "properties": {"spec": {"properties": {"parts": {"$ref": "#/definitions/a.Parts"}}}},
                "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Widget"}]
            },
            "a.Parts": {"type": "array", "items": {"$ref": "#/definitions/a.Part"},
                        "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "id"},
            "a.Part": {"properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
        }}))
        .unwrap();
        let root = schema.root("example.com/v1", "Widget").unwrap();
        let spec = schema.field(root, "spec").unwrap();
        let parts = schema.field(spec.child.unwrap(), "parts").unwrap();
        assert_eq!(parts.list, Some(CustomList::Key("id")));
        let tags = schema.field(parts.child.unwrap(), "tags").unwrap();
        assert_eq!(tags.list, Some(CustomList::Replace));
        assert!(schema.root("v1", "Widget").is_none());
    }

    #[test]
    fn crd_extensions_become_field_specs() {
        let config = config_from_crds(&json!({
            "x.v1.Bee": {"Schema": {"properties": {
                "apiVersion": {}, "kind": {}, "metadata": {},
                "spec": {"$ref": "x.v1.BeeSpec"}
            }}},
            "x.v1.BeeSpec": {"Schema": {"properties": {
                "owner": {"x-kubernetes-object-ref-api-version": "v1", "x-kubernetes-object-ref-kind": "Secret"},
                "selector": {"x-kubernetes-label-selector": ""},
                "loop": {"$ref": "x.v1.BeeSpec"}
            }}}
        }))
        .unwrap();
        assert_eq!(config.name_reference.len(), 1);
        assert_eq!(config.name_reference[0].kind, "Secret");
        assert!(config.name_reference[0].specs[0].path_is(&["spec", "owner", "name"]));
        assert!(config.common_labels[0].path_is(&["spec", "selector"]));
    }
}
