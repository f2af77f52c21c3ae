//! Strategic merge (kustomize's flavour, schema-driven list merging), JSON6902 and patch target selection.

use regex::Regex;
use serde_json::{Map, Value};

use crate::kustomization::Target;
use crate::openapi::{CustomList, CustomSchema};
use crate::resource::{Resource, str_at};
use crate::schema::{self, ListStrategy, Node as BuiltinNode};

/// A position in the schema a merge follows: the built-in table, or a custom schema (`openapi:`), which
/// replaces the built-in table entirely, as in kustomize.
#[derive(Debug, Clone, Copy)]
enum Node<'a> {
    Builtin(BuiltinNode),
    Custom(&'a CustomSchema, usize),
    Unknown,
}

/// How a list field merges.
#[derive(Debug, Clone, Copy)]
enum ListMerge<'a> {
    /// Replaced by the patch's list.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by this key.
    Key(&'a str),
}

/// What the schema says about one field.
#[derive(Debug, Clone, Copy)]
struct FieldInfo<'a> {
    list: Option<ListMerge<'a>>,
    map_atomic: bool,
    keyed: bool,
    child: Node<'a>,
}

impl<'a> Node<'a> {
    const UNKNOWN: Node<'static> = Node::Unknown;

    fn root(custom: Option<&'a CustomSchema>, group: &str, version: &str, kind: &str) -> Node<'a> {
        match custom {
            None => Node::Builtin(schema::root(group, version, kind)),
            Some(custom) => {
                let api_version = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                custom
                    .root(&api_version, kind)
                    .map_or(Node::Unknown, |i| Node::Custom(custom, i))
            }
        }
    }

    fn field(self, name: &str) -> Option<FieldInfo<'a>> {
        match self {
            Node::Builtin(node) => {
                let f = node.field(name)?;
                Some(FieldInfo {
                    list: f.list.map(|l| match l {
                        ListStrategy::Map { keys } => keys
                            .first()
                            .map_or(ListMerge::Atomic, |k| ListMerge::Key(k)),
                        ListStrategy::Set => ListMerge::Set,
                        ListStrategy::Atomic => ListMerge::Atomic,
                    }),
                    map_atomic: f.map_atomic,
                    keyed: f.keyed,
                    child: Node::Builtin(f.child),
                })
            }
            Node::Custom(custom, index) => {
                let f = custom.field(index, name)?;
                Some(FieldInfo {
                    list: f.list.map(|l| match l {
                        CustomList::Replace => ListMerge::Atomic,
                        CustomList::Set => ListMerge::Set,
                        CustomList::Key(k) => ListMerge::Key(k),
                    }),
                    map_atomic: false,
                    keyed: false,
                    child: f.child.map_or(Node::Unknown, |c| Node::Custom(custom, c)),
                })
            }
            Node::Unknown => None,
        }
    }
}

/// Outcome of merging a patch into an object.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Merged {
    Kept,
    /// The patch asked for the whole object to be deleted (`$patch: delete` at the top).
    Deleted,
}

/// Applies a strategic-merge patch to an object of the given kind.
pub(crate) fn strategic_merge(
    object: &mut Value,
    patch: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Merged {
    if directive(patch) == Some("delete") {
        return Merged::Deleted;
    }
    let custom = crate::openapi::current();
    merge_value(
        object,
        patch,
        Node::root(custom.as_deref(), group, version, kind),
    );
    Merged::Kept
}

fn directive(value: &Value) -> Option<&str> {
    value.as_object()?.get("$patch")?.as_str()
}

fn is_directive_key(key: &str) -> bool {
    key.starts_with('$')
}

/// Merges `patch` into `target` where both are maps (or replaces `target`).
fn merge_value(target: &mut Value, patch: &Value, node: Node<'_>) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if directive(patch) == Some("replace") || !target.is_object() {
        *target = clean(patch);
        return;
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, patch_value) in patch_map {
        if is_directive_key(key) {
            continue;
        }
        let field = node.field(key);
        let child = field.map_or(Node::UNKNOWN, |f| f.child);
        match patch_value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) if directive(patch_value) == Some("delete") => {
                target_map.remove(key);
            }
            Value::Object(inner) => {
                let atomic = field.is_some_and(|f| f.map_atomic);
                match target_map.get_mut(key) {
                    Some(existing) if existing.is_object() && !atomic => {
                        if field.is_some_and(|f| f.keyed) {
                            merge_keyed_map(existing, inner, child);
                        } else {
                            merge_value(existing, patch_value, child);
                        }
                    }
                    _ => {
                        target_map.insert(key.clone(), clean(patch_value));
                    }
                }
            }
            Value::Array(items) if items.iter().any(|i| directive(i) == Some("replace")) => {
                // A `{$patch: replace}` item makes the patch's list replace the original one.
                let replaced: Vec<Value> = items
                    .iter()
                    .filter(|i| directive(i).is_none())
                    .map(clean)
                    .collect();
                target_map.insert(key.clone(), Value::Array(replaced));
            }
            Value::Array(items) => {
                let strategy = field.and_then(|f| f.list);
                match (strategy, target_map.get_mut(key)) {
                    (Some(ListMerge::Key(merge_key)), Some(Value::Array(existing))) => {
                        let merged = merge_list_by_key(existing, items, merge_key, child);
                        *existing = merged;
                    }
                    (Some(ListMerge::Set), Some(Value::Array(existing))) => {
                        let mut merged: Vec<Value> = items.iter().map(clean).collect();
                        merged.extend(existing.iter().filter(|v| !items.contains(v)).cloned());
                        *existing = merged;
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| directive(i) != Some("delete"))
                            .map(clean)
                            .collect();
                        target_map.insert(key.clone(), Value::Array(cleaned));
                    }
                }
            }
            scalar => {
                target_map.insert(key.clone(), scalar.clone());
            }
        }
    }
}

/// Merges a map of objects (e.g. CRD schema `properties`) entry by entry.
fn merge_keyed_map(existing: &mut Value, patch: &Map<String, Value>, child: Node<'_>) {
    let Value::Object(existing) = existing else {
        return;
    };
    for (key, value) in patch {
        match (value, existing.get_mut(key)) {
            (Value::Null, _) => {
                existing.remove(key);
            }
            (Value::Object(_), Some(current)) => merge_value(current, value, child),
            _ => {
                existing.insert(key.clone(), clean(value));
            }
        }
    }
}

/// Merges lists of objects by a merge key: patch items first (merged into their originals), then the
/// original items the patch does not mention; `$patch: delete` items remove their originals.
fn merge_list_by_key(
    existing: &[Value],
    patch: &[Value],
    key: &str,
    item_node: Node<'_>,
) -> Vec<Value> {
    let key_of = |v: &Value| key_value(v, key).cloned();
    let mut result = Vec::new();
    let mut mentioned: Vec<Value> = Vec::new();
    for item in patch {
        let Some(k) = key_of(item) else {
            if item.is_object() && directive(item).is_none() {
                result.push(clean(item));
            }
            continue;
        };
        mentioned.push(k.clone());
        if directive(item) == Some("delete") {
            continue;
        }
        match existing.iter().find(|e| key_of(e).as_ref() == Some(&k)) {
            Some(original) => {
                let mut merged = original.clone();
                merge_value(&mut merged, item, item_node);
                result.push(merged);
            }
            None => result.push(clean(item)),
        }
    }
    for original in existing {
        let k = key_of(original);
        if k.as_ref().is_none_or(|k| !mentioned.contains(k)) {
            result.push(original.clone());
        }
    }
    result
}

fn key_value<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    let mut current = item;
    for part in key.split('.') {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Copies a patch value, dropping `$`-directives and `$patch: delete` list items.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| {
                    !(is_directive_key(k) || (v.is_object() && directive(v) == Some("delete")))
                })
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| directive(i) != Some("delete"))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies a JSON6902 operation list; the error names the failing operation and its path.
pub(crate) fn json6902(object: &mut Value, operations: &Value) -> Result<(), String> {
    let Value::Array(ops) = operations else {
        return Err("a JSON6902 patch must be a list of operations".into());
    };
    for (index, op) in ops.iter().enumerate() {
        let mut op = op.clone();
        // kustomize's JSON patch library lets `replace` set a missing key of an existing map.
        if str_at(&op, &["op"]) == Some("replace")
            && let Some(path) = str_at(&op, &["path"])
            && let Some((parent, last)) = path.rsplit_once('/')
            && let Some(Value::Object(map)) = object.pointer(parent)
            && !map.contains_key(&last.replace("~1", "/").replace("~0", "~"))
            && let Value::Object(op_map) = &mut op
        {
            op_map.insert("op".into(), Value::String("add".into()));
        }
        let op = &op;
        let single: json_patch::Patch = serde_json::from_value(Value::Array(vec![op.clone()]))
            .map_err(|e| format!("operation {index} is not a valid JSON6902 operation: {e}"))?;
        if str_at(op, &["op"]) == Some("add")
            && let Some(path) = str_at(op, &["path"])
        {
            ensure_parents(object, path);
        }
        if let Err(e) = json_patch::patch(object, &single) {
            let name = str_at(op, &["op"]).unwrap_or("?");
            let path = str_at(op, &["path"]).unwrap_or("?");
            let reason = match name {
                "test" => "test operation failed: value did not match".to_string(),
                _ => e.kind.to_string(),
            };
            return Err(format!(
                "JSON6902 operation {index} ({name} {path}) failed: {reason}"
            ));
        }
    }
    Ok(())
}

/// Creates missing parent maps of an `add` path, as kustomize's JSON6902 implementation does.
fn ensure_parents(object: &mut Value, path: &str) {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((_, parents)) = segments.split_last() else {
        return;
    };
    let mut current = object;
    for segment in parents {
        current = match current {
            Value::Object(map) => map
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => return,
                }
            }
            _ => return,
        };
    }
}

/// A compiled patch target selector.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    pub(crate) fn compile(target: &Target) -> Result<Selector, String> {
        let anchored = |field: &Option<String>| -> Result<Option<Regex>, String> {
            field
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Regex::new(&format!("^(?:{s})$"))
                        .map_err(|e| format!("invalid target pattern '{s}': {e}"))
                })
                .transpose()
        };
        Ok(Selector {
            group: anchored(&target.group)?,
            version: anchored(&target.version)?,
            kind: anchored(&target.kind)?,
            name: anchored(&target.name)?,
            namespace: anchored(&target.namespace)?,
            labels: parse_selector(target.label_selector.as_deref().unwrap_or(""))?,
            annotations: parse_selector(target.annotation_selector.as_deref().unwrap_or(""))?,
        })
    }

    pub(crate) fn matches(&self, resource: &Resource) -> bool {
        self.matches_id(resource) && self.matches_meta(resource)
    }

    /// Whether any of group, version, kind, name or namespace is set.
    pub(crate) fn has_id_fields(&self) -> bool {
        self.group.is_some()
            || self.version.is_some()
            || self.kind.is_some()
            || self.name.is_some()
            || self.namespace.is_some()
    }

    /// Whether a label or annotation selector is set.
    pub(crate) fn has_meta_fields(&self) -> bool {
        !self.labels.is_empty() || !self.annotations.is_empty()
    }

    /// The group/version/kind/name/namespace part (current or original name and namespace).
    pub(crate) fn matches_id(&self, resource: &Resource) -> bool {
        let id = resource.id();
        let hit = |re: &Option<Regex>, value: &str| re.as_ref().is_none_or(|re| re.is_match(value));
        if !hit(&self.group, &id.group)
            || !hit(&self.version, &id.version)
            || !hit(&self.kind, &id.kind)
        {
            return false;
        }
        if let Some(re) = &self.name
            && !(re.is_match(&id.name) || re.is_match(&resource.original.name))
        {
            return false;
        }
        if let Some(re) = &self.namespace
            && !(re.is_match(&id.namespace) || re.is_match(&resource.original.namespace))
        {
            return false;
        }
        true
    }

    /// The label and annotation selectors.
    pub(crate) fn matches_meta(&self, resource: &Resource) -> bool {
        let labels = resource.object.pointer("/metadata/labels");
        let annotations = resource.object.pointer("/metadata/annotations");
        self.labels.iter().all(|r| r.matches(labels))
            && self.annotations.iter().all(|r| r.matches(annotations))
    }
}

impl Requirement {
    fn matches(&self, map: Option<&Value>) -> bool {
        let get = |k: &str| map.and_then(|m| m.get(k)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Parses a Kubernetes label selector string (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut requirements = Vec::new();
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Vec<String> {
            rest.trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(|s| s.trim().to_string())
                .collect()
        };
        let requirement = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==") {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once('=') {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(k.trim().into(), set(rest))
        } else if let Some((k, rest)) = part.split_once(" in ") {
            Requirement::In(k.trim().into(), set(rest))
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else if part
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./".contains(c))
        {
            Requirement::Exists(part.into())
        } else {
            return Err(format!("invalid selector '{text}'"));
        };
        requirements.push(requirement);
    }
    Ok(requirements)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containers_merge_by_name_with_patch_items_first() {
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "B", "value": "2"}]},
            {"name": "new", "image": "n:1"}
        ]}}}});
        strategic_merge(&mut deployment, &patch, "apps", "v1", "Deployment");
        assert_eq!(
            deployment,
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "a:1", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]},
                {"name": "new", "image": "n:1"},
                {"name": "side", "image": "s:1"}
            ]}}}})
        );
    }

    #[test]
    fn directives_delete_items_fields_and_objects() {
        let mut pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"containers": [{"name": "y", "$patch": "delete"}]}});
        assert_eq!(
            strategic_merge(&mut pod, &patch, "", "v1", "Pod"),
            Merged::Kept
        );
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "x"}]}})
        );
        assert_eq!(
            strategic_merge(&mut pod, &json!({"$patch": "delete"}), "", "v1", "Pod"),
            Merged::Deleted
        );
    }

    #[test]
    fn lists_without_schema_are_replaced() {
        let mut widget = json!({"spec": {"items": [{"name": "a", "v": 1}]}});
        strategic_merge(
            &mut widget,
            &json!({"spec": {"items": [{"name": "b"}]}}),
            "example.com",
            "v1",
            "Widget",
        );
        assert_eq!(widget, json!({"spec": {"items": [{"name": "b"}]}}));
    }

    #[test]
    fn json6902_operations_and_errors() {
        let mut object = json!({"spec": {"a": 1, "list": [1, 2]}});
        let ops = json!([
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "replace", "path": "/spec/a", "value": 2},
            {"op": "copy", "from": "/spec/a", "path": "/spec/b"},
        ]);
        json6902(&mut object, &ops).unwrap();
        assert_eq!(object, json!({"spec": {"a": 2, "b": 2, "list": [1, 2, 3]}}));
        let err = json6902(
            &mut object,
            &json!([{"op": "test", "path": "/spec/a", "value": 9}]),
        )
        .unwrap_err();
        assert!(err.contains("test"), "{err}");
        let err = json6902(
            &mut object,
            &json!([{"op": "remove", "path": "/spec/nodeSelector"}]),
        )
        .unwrap_err();
        assert!(err.contains("/spec/nodeSelector"), "{err}");
    }

    #[test]
    fn selectors_parse_set_based_requirements() {
        let reqs = parse_selector("app=web, tier in (a, b),!legacy,env!=dev").unwrap();
        assert_eq!(reqs.len(), 4);
        let labels = json!({"app": "web", "tier": "b", "env": "prod"});
        assert!(reqs.iter().all(|r| r.matches(Some(&labels))));
    }
}
