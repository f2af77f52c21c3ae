//! Merge strategies of built-in Kubernetes types (list-map keys, atomic lists and maps, scope), as generated data.
//!
//! The table in [`generated`] is produced from the `k8s-openapi` crate's source by
//! `render/tests/schema_table.rs`; that test also fails when the committed table is stale.
//!
//! Paths are JSON field names from the object root, e.g. `["spec", "template", "spec", "containers"]`.
//! List items are entered transparently (no index segment); a field whose value is a map of objects
//! (e.g. `JSONSchemaProps.properties`) takes the map key as the next segment.
//!
//! ```
//! use edgecd_render::schema::{self, ListStrategy};
//! let containers = schema::list_strategy("apps", "v1", "Deployment", &["spec", "template", "spec", "containers"]);
//! assert_eq!(containers, Some(ListStrategy::Map { keys: &["name"] }));
//! ```

#[rustfmt::skip]
mod generated;

/// How a list field merges (server-side apply `x-kubernetes-list-type`, and the key fields of a map list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The list is replaced as a whole.
    Atomic,
    /// A list of scalars merged as a set.
    Set,
    /// A list of objects identified by the given key fields (the first one is the strategic-merge key).
    Map {
        /// Key fields, in schema order.
        keys: &'static [&'static str],
    },
}

/// A position in the schema: an object type, or nothing known (`None` inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(Option<u16>);

/// What the schema says about one field of an object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The list strategy when the field is a list.
    pub list: Option<ListStrategy>,
    /// True when the field is a map that is replaced as a whole.
    pub map_atomic: bool,
    /// True when the field is a map of objects (the next path segment is a map key).
    pub keyed: bool,
    /// The schema node of the field's value (of its items for lists and keyed maps).
    pub child: Node,
}

/// Returns the list strategy of the list field at `path` in the given kind, or `None` when unknown.
pub fn list_strategy(
    group: &str,
    version: &str,
    kind: &str,
    path: &[&str],
) -> Option<ListStrategy> {
    field_at(group, version, kind, path).and_then(|f| f.list)
}

/// Returns true when the map field at `path` in the given kind is atomic (replaced as a whole).
pub fn is_map_atomic(group: &str, version: &str, kind: &str, path: &[&str]) -> bool {
    field_at(group, version, kind, path).is_some_and(|f| f.map_atomic)
}

/// Returns whether a built-in kind is namespaced, or `None` for kinds the table does not know.
///
/// The version is ignored when no entry has it, so older versions of a known kind still resolve.
pub fn is_namespaced(group: &str, version: &str, kind: &str) -> Option<bool> {
    find_kind(group, version, kind).map(|k| k.namespaced)
}

/// Returns the schema node of a kind's root object (an empty node for unknown kinds).
pub fn root(group: &str, version: &str, kind: &str) -> Node {
    Node(find_kind(group, version, kind).and_then(|k| (k.root != NONE).then_some(k.root)))
}

impl Node {
    /// A node about which nothing is known.
    pub const UNKNOWN: Node = Node(None);

    /// Looks up a field of this node's object type.
    pub fn field(self, name: &str) -> Option<FieldInfo> {
        let type_def = generated::TYPES.get(usize::from(self.0?))?;
        let field = type_def
            .fields
            .binary_search_by(|f| f.name.cmp(name))
            .ok()
            .and_then(|i| type_def.fields.get(i))?;
        Some(FieldInfo {
            list: field.list,
            map_atomic: field.map_atomic,
            keyed: field.keyed,
            child: Node((field.child != NONE).then_some(field.child)),
        })
    }

    /// The Kubernetes type of this node (e.g. `api.core.v1.PodSpec`), when known.
    pub fn type_name(self) -> Option<&'static str> {
        generated::TYPES.get(usize::from(self.0?)).map(|t| t.name)
    }

    /// Returns true when nothing is known about this node.
    pub fn is_unknown(self) -> bool {
        self.0.is_none()
    }
}

fn field_at(group: &str, version: &str, kind: &str, path: &[&str]) -> Option<FieldInfo> {
    let mut node = root(group, version, kind);
    let mut info = None;
    let mut segments = path.iter();
    while let Some(segment) = segments.next() {
        let field = node.field(segment)?;
        if field.keyed && segments.len() > 0 {
            segments.next();
        }
        node = field.child;
        info = Some(field);
    }
    info
}

fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static KindDef> {
    // The kinds by name, built once: renders ask for every object, often several times.
    static BY_KIND: std::sync::OnceLock<
        std::collections::HashMap<&'static str, Vec<&'static KindDef>>,
    > = std::sync::OnceLock::new();
    let index = BY_KIND.get_or_init(|| {
        let mut index: std::collections::HashMap<_, Vec<&'static KindDef>> =
            std::collections::HashMap::new();
        for def in generated::KINDS {
            index.entry(def.kind).or_default().push(def);
        }
        index
    });
    let defs = index.get(kind)?;
    let same_group = || defs.iter().filter(|k| k.group == group);
    same_group()
        .find(|k| k.version == version)
        .or_else(|| same_group().max_by_key(|k| k.version))
        .copied()
}

// === generated table types ===

const NONE: u16 = u16::MAX;

#[derive(Debug)]
struct TypeDef {
    name: &'static str,
    fields: &'static [FieldDef],
}

#[derive(Debug)]
struct FieldDef {
    name: &'static str,
    child: u16,
    keyed: bool,
    list: Option<ListStrategy>,
    map_atomic: bool,
}

#[derive(Debug)]
struct KindDef {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    namespaced: bool,
    root: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_template_lists_have_merge_keys() {
        let path = ["spec", "template", "spec", "containers"];
        assert_eq!(
            list_strategy("apps", "v1", "Deployment", &path),
            Some(ListStrategy::Map { keys: &["name"] })
        );
        let env = ["spec", "template", "spec", "containers", "env"];
        assert_eq!(
            list_strategy("apps", "v1", "StatefulSet", &env),
            Some(ListStrategy::Map { keys: &["name"] })
        );
        let ports = ["spec", "ports"];
        assert!(
            matches!(list_strategy("", "v1", "Service", &ports), Some(ListStrategy::Map { keys }) if keys[0] == "port")
        );
        let tolerations = ["spec", "tolerations"];
        assert_eq!(
            list_strategy("", "v1", "Pod", &tolerations),
            Some(ListStrategy::Atomic)
        );
        assert_eq!(
            list_strategy("", "v1", "Pod", &["metadata", "finalizers"]),
            Some(ListStrategy::Set)
        );
    }

    #[test]
    fn scope_and_unknown_kinds() {
        assert_eq!(is_namespaced("", "v1", "Namespace"), Some(false));
        assert_eq!(is_namespaced("apps", "v1", "Deployment"), Some(true));
        assert_eq!(
            is_namespaced("rbac.authorization.k8s.io", "v1", "ClusterRole"),
            Some(false)
        );
        assert_eq!(is_namespaced("example.com", "v1", "Widget"), None);
        assert_eq!(
            list_strategy("example.com", "v1", "Widget", &["spec", "items"]),
            None
        );
        assert!(is_map_atomic("", "v1", "Pod", &["spec", "nodeSelector"]));
    }
}
