//! Field sets: the ownership trees behind `managedFields`, with the FieldsV1 codec and path printing.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A struct or map field: `f:name`.
    Field(String),
    /// An associative-list item, identified by its key fields (canonical JSON object): `k:{...}`.
    Key(String),
    /// A set member (canonical JSON value): `v:...`.
    Value(String),
    /// A positional list index: `i:N`.
    Index(usize),
}

/// A set of field paths, stored as a tree.
///
/// A node is a member of the set when `own` is true; children describe members below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    own: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

/// A path, as a slice of elements.
pub type Path = Vec<PathElement>;

// === impl PathElement ===

impl PathElement {
    /// Builds a key element from `(field, value)` pairs; fields are sorted for a canonical form.
    pub fn key(fields: &[(String, Value)]) -> Self {
        let mut sorted: Vec<&(String, Value)> = fields.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = Map::new();
        for (k, v) in sorted {
            map.insert(k.clone(), v.clone());
        }
        Self::Key(Value::Object(map).to_string())
    }

    /// Builds a set-member element.
    pub fn value(v: &Value) -> Self {
        Self::Value(v.to_string())
    }

    fn encode(&self) -> String {
        match self {
            Self::Field(f) => format!("f:{f}"),
            Self::Key(k) => format!("k:{k}"),
            Self::Value(v) => format!("v:{v}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (prefix, rest) = s.split_at_checked(2)?;
        match prefix {
            "f:" => Some(Self::Field(rest.to_string())),
            "k:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                let obj = v.as_object()?;
                let fields: Vec<(String, Value)> =
                    obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                Some(Self::key(&fields))
            }
            "v:" => {
                let v: Value = serde_json::from_str(rest).ok()?;
                Some(Self::value(&v))
            }
            "i:" => rest.parse().ok().map(Self::Index),
            _ => None,
        }
    }

    /// The human form used in conflict messages: `.name`, `[k="v",n=1]`, `[=v]`, `[3]`.
    pub fn display(&self) -> String {
        match self {
            Self::Field(f) => format!(".{f}"),
            Self::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(obj)) => obj.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                format!("[{}]", parts.join(","))
            }
            Self::Value(v) => format!("[={v}]"),
            Self::Index(i) => format!("[{i}]"),
        }
    }
}

/// Prints a whole path the way conflict messages do.
pub fn display_path(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

// === impl FieldSet ===

impl FieldSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        !self.own && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path as a member.
    pub fn insert(&mut self, path: &[PathElement]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.own = true;
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| n.own)
    }

    /// Whether `path` or anything below it is a member.
    pub fn contains_prefix(&self, path: &[PathElement]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    /// Whether some member lies strictly below `path`.
    pub fn contains_prefix_strict(&self, path: &[PathElement]) -> bool {
        self.node(path)
            .is_some_and(|n| n.children.values().any(|c| !c.is_empty()))
    }

    fn node(&self, path: &[PathElement]) -> Option<&FieldSet> {
        let mut node = self;
        for pe in path {
            node = node.children.get(pe)?;
        }
        Some(node)
    }

    /// The set of members of `self` or `other`.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    fn union_in_place(&mut self, other: &FieldSet) {
        self.own |= other.own;
        for (pe, child) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_in_place(child);
        }
    }

    /// The members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            own: self.own && !other.own,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            let diff = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !diff.is_empty() {
                out.children.insert(pe.clone(), diff);
            }
        }
        out
    }

    /// The members present in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            own: self.own && other.own,
            children: BTreeMap::new(),
        };
        for (pe, child) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let both = child.intersection(o);
                if !both.is_empty() {
                    out.children.insert(pe.clone(), both);
                }
            }
        }
        out
    }

    /// Removes every member at or below `prefix`.
    pub fn remove_prefix(&mut self, prefix: &[PathElement]) {
        match prefix.split_first() {
            None => *self = FieldSet::new(),
            Some((first, rest)) => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove_prefix(rest);
                    if child.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// All member paths, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.own {
            out.push(prefix.clone());
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Encodes the set as a FieldsV1 JSON object.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.own && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            map.insert(pe.encode(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Decodes a FieldsV1 JSON object; unknown or malformed entries are skipped.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut root = Self::decode_node(v);
        root.own = false;
        root
    }

    fn decode_node(v: &Value) -> FieldSet {
        let mut node = FieldSet::new();
        let Some(obj) = v.as_object() else {
            return node;
        };
        if obj.is_empty() {
            node.own = true;
            return node;
        }
        for (k, child) in obj {
            if k == "." {
                node.own = true;
                continue;
            }
            if let Some(pe) = PathElement::decode(k) {
                node.children.insert(pe, Self::decode_node(child));
            }
        }
        node
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn fields_v1_round_trip_with_list_map_item() {
        let mut set = FieldSet::new();
        let key = PathElement::key(&[("name".into(), json!("sidecar"))]);
        let containers = [f("spec"), f("template"), f("spec"), f("containers")];
        let mut item = containers.to_vec();
        item.push(key);
        set.insert(&item);
        let mut image = item.clone();
        image.push(f("image"));
        set.insert(&image);
        let mut name = item.clone();
        name.push(f("name"));
        set.insert(&name);
        let encoded = set.to_fields_v1();
        assert_eq!(
            encoded,
            json!({"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&encoded), set);
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[f("a"), f("x")]);
        a.insert(&[f("a"), f("y")]);
        let mut b = FieldSet::new();
        b.insert(&[f("a"), f("y")]);
        b.insert(&[f("b")]);
        assert_eq!(a.difference(&b).paths(), vec![vec![f("a"), f("x")]]);
        assert_eq!(a.intersection(&b).paths(), vec![vec![f("a"), f("y")]]);
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(a.contains_prefix(&[f("a")]));
        assert!(!a.contains(&[f("a")]));
    }

    #[test]
    fn display_paths() {
        let key = PathElement::key(&[
            ("protocol".into(), json!("TCP")),
            ("containerPort".into(), json!(80)),
        ]);
        assert_eq!(
            display_path(&[f("spec"), f("ports"), key.clone()]),
            ".spec.ports[containerPort=80,protocol=\"TCP\"]"
        );
        assert_eq!(
            key.encode(),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
        assert_eq!(PathElement::value(&json!("a")).display(), "[=\"a\"]");
    }
}
