//! Merge-strategy lookups for objects: the generated built-in table from `edgecd_render::schema`, and CRD OpenAPI schemas.
//!
//! Server-side apply needs, for every list, whether it is atomic, a set or a map keyed by some fields,
//! and for every map whether it is atomic.
//! Built-in kinds use the table generated from k8s-openapi in `edgecd_render::schema`;
//! custom resources use the `x-kubernetes-*` markers of their CRD's `openAPIV3Schema`
//! (lists are atomic unless marked, as on a real API server).

use std::collections::BTreeMap;
use std::sync::Arc;

use edgecd_render::schema as builtin;
use serde_json::Value;

/// How a list merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects identified by key fields.
    Map(Vec<String>),
}

/// A position in the schema of an object.
#[derive(Debug, Clone)]
pub enum Schema {
    /// Nothing is known; lists are atomic and maps granular.
    Unknown,
    /// A node of the built-in table.
    Builtin(builtin::Node),
    /// A map whose values all have the given built-in node.
    BuiltinMapOf(builtin::Node),
    /// A node of a CRD schema.
    Crd(Arc<CrdNode>),
}

/// What is known about one field.
#[derive(Debug, Clone)]
pub struct FieldSchema {
    /// The list strategy if the field is a list.
    pub list: ListType,
    /// Whether the field, if a map, is replaced as a whole.
    pub map_atomic: bool,
    /// The schema of the field's value (of its items, for lists).
    pub child: Schema,
}

/// A parsed CRD schema node, keeping only what merging needs.
#[derive(Debug, Default)]
pub struct CrdNode {
    properties: BTreeMap<String, Arc<CrdNode>>,
    items: Option<Arc<CrdNode>>,
    additional: Option<Arc<CrdNode>>,
    list_type: Option<ListType>,
    map_atomic: bool,
    is_root: bool,
}

// === impl Schema ===

impl Schema {
    /// The root schema of a built-in kind (unknown kinds give [`Schema::Unknown`]).
    pub fn builtin(group: &str, version: &str, kind: &str) -> Self {
        let node = builtin::root(group, version, kind);
        if node.is_unknown() {
            Self::Unknown
        } else {
            Self::Builtin(node)
        }
    }

    /// The schema of `metadata` (ObjectMeta), taken from the built-in table.
    pub fn object_meta() -> Self {
        match builtin::root("", "v1", "ConfigMap").field("metadata") {
            Some(f) if !f.child.is_unknown() => Self::Builtin(f.child),
            _ => Self::Unknown,
        }
    }

    /// Looks up a field of this object node.
    pub fn field(&self, name: &str) -> FieldSchema {
        match self {
            Self::Unknown => FieldSchema::unknown(),
            Self::BuiltinMapOf(node) => FieldSchema {
                list: ListType::Atomic,
                map_atomic: false,
                child: Self::Builtin(*node),
            },
            Self::Builtin(node) => match node.field(name) {
                None => FieldSchema::unknown(),
                Some(info) => {
                    let list = match info.list {
                        Some(builtin::ListStrategy::Set) => ListType::Set,
                        Some(builtin::ListStrategy::Map { keys }) => {
                            ListType::Map(api_map_keys(name, keys))
                        }
                        _ => ListType::Atomic,
                    };
                    let child = if info.child.is_unknown() {
                        Self::Unknown
                    } else if info.keyed && info.list.is_none() {
                        Self::BuiltinMapOf(info.child)
                    } else {
                        Self::Builtin(info.child)
                    };
                    FieldSchema {
                        list,
                        map_atomic: info.map_atomic,
                        child,
                    }
                }
            },
            Self::Crd(node) if node.is_root && name == "metadata" => FieldSchema {
                list: ListType::Atomic,
                map_atomic: false,
                child: Self::object_meta(),
            },
            Self::Crd(node) => {
                let Some(prop) = node
                    .properties
                    .get(name)
                    .or(node.additional.as_ref())
                    .cloned()
                else {
                    return FieldSchema::unknown();
                };
                let child = match &prop.items {
                    Some(items) => Self::Crd(items.clone()),
                    None => Self::Crd(prop.clone()),
                };
                FieldSchema {
                    list: prop.list_type.clone().unwrap_or(ListType::Atomic),
                    map_atomic: prop.map_atomic,
                    child,
                }
            }
        }
    }
}

/// The server-side apply keys of a built-in list-map.
///
/// The generated table carries the strategic-merge keys found in k8s-openapi, which for a few lists are
/// shorter than the `x-kubernetes-list-map-keys` the API server uses for server-side apply; those are
/// corrected here (ports are keyed by port and protocol, topology spread constraints by key and policy).
fn api_map_keys(field: &str, keys: &[&str]) -> Vec<String> {
    let extra: &[&str] = match (field, keys) {
        ("ports", ["containerPort"]) | ("ports", ["port"]) => &["protocol"],
        ("topologySpreadConstraints", ["topologyKey"]) => &["whenUnsatisfiable"],
        _ => &[],
    };
    keys.iter().chain(extra).map(|k| (*k).to_string()).collect()
}

// === impl FieldSchema ===

impl FieldSchema {
    fn unknown() -> Self {
        Self {
            list: ListType::Atomic,
            map_atomic: false,
            child: Schema::Unknown,
        }
    }
}

// === impl CrdNode ===

impl CrdNode {
    /// Parses the root `openAPIV3Schema` of a CRD version; `metadata` then resolves to ObjectMeta.
    pub fn parse_root(schema: &Value) -> Arc<CrdNode> {
        let mut node = Self::parse_node(schema);
        node.is_root = true;
        Arc::new(node)
    }

    /// Parses an `openAPIV3Schema` value; anything unexpected is treated as unknown.
    pub fn parse(schema: &Value) -> Arc<CrdNode> {
        Arc::new(Self::parse_node(schema))
    }

    fn parse_node(schema: &Value) -> CrdNode {
        let mut node = CrdNode::default();
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                node.properties.insert(name.clone(), Self::parse(prop));
            }
        }
        if let Some(items) = schema.get("items").filter(|v| v.is_object()) {
            node.items = Some(Self::parse(items));
        }
        if let Some(additional) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            node.additional = Some(Self::parse(additional));
        }
        node.list_type = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => Some(ListType::Set),
            Some("map") => {
                let keys: Vec<String> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if keys.is_empty() {
                    Some(ListType::Atomic)
                } else {
                    Some(ListType::Map(keys))
                }
            }
            _ => None,
        };
        node.map_atomic =
            schema.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        node
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_containers_are_keyed_by_name() {
        let root = Schema::builtin("apps", "v1", "Deployment");
        let spec = root.field("spec").child;
        let template = spec.field("template").child;
        let pod = template.field("spec").child;
        let containers = pod.field("containers");
        assert_eq!(containers.list, ListType::Map(vec!["name".into()]));
        let ports = containers.child.field("ports");
        assert_eq!(
            ports.list,
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
    }

    #[test]
    fn crd_lists_are_atomic_unless_marked() {
        let node = CrdNode::parse_root(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"type": "string"}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "targets": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object"}}
                }}
            }
        }));
        let spec = Schema::Crd(node).field("spec").child;
        assert_eq!(spec.field("items").list, ListType::Atomic);
        assert_eq!(spec.field("tags").list, ListType::Set);
        assert_eq!(
            spec.field("targets").list,
            ListType::Map(vec!["name".into()])
        );
    }
}
