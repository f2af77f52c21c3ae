//! Schema-aware walks over JSON objects: field sets, merging, path lookup and removal.

use serde_json::{Map, Value};

use super::fieldpath::{FieldSet, Path, PathElement};
use crate::schema::{FieldSchema, ListType, Schema};

/// The value schema of an object root.
pub fn root_schema(schema: &Schema) -> FieldSchema {
    FieldSchema {
        list: ListType::Atomic,
        map_atomic: false,
        child: schema.clone(),
    }
}

fn item_schema(list: &FieldSchema) -> FieldSchema {
    FieldSchema {
        list: ListType::Atomic,
        map_atomic: false,
        child: list.child.clone(),
    }
}

/// The key element of a list-map item, or `None` when the item has none of the key fields.
///
/// A missing `protocol` key defaults to `TCP`, as the schema defaults it for ports.
pub fn item_key(item: &Value, keys: &[String]) -> Option<PathElement> {
    let obj = item.as_object()?;
    let mut fields = Vec::new();
    for key in keys {
        match obj.get(key) {
            Some(v) if !v.is_null() => fields.push((key.clone(), v.clone())),
            _ if key == "protocol" => fields.push((key.clone(), Value::String("TCP".into()))),
            _ => {}
        }
    }
    if fields.is_empty() {
        None
    } else {
        Some(PathElement::key(&fields))
    }
}

/// Keys for all items of a list-map, or `None` if any item lacks keys or keys repeat.
fn list_keys(items: &[Value], keys: &[String]) -> Option<Vec<PathElement>> {
    let mut out: Vec<PathElement> = Vec::with_capacity(items.len());
    for item in items {
        let k = item_key(item, keys)?;
        if out.contains(&k) {
            return None;
        }
        out.push(k);
    }
    Some(out)
}

/// The set of fields a value sets, as server-side apply records them.
pub fn to_field_set(value: &Value, schema: &Schema) -> FieldSet {
    let mut set = FieldSet::new();
    let mut path = Vec::new();
    visit_value(value, &root_schema(schema), &mut path, &mut set);
    set
}

fn visit_value(value: &Value, vs: &FieldSchema, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() && !vs.map_atomic => {
            for (k, v) in map {
                let fs = vs.child.field(k);
                path.push(PathElement::Field(k.clone()));
                visit_value(v, &fs, path, set);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match &vs.list {
            ListType::Atomic => set.insert(path),
            ListType::Set => {
                for item in items {
                    path.push(PathElement::value(item));
                    set.insert(path);
                    path.pop();
                }
            }
            ListType::Map(keys) => match list_keys(items, keys) {
                None => set.insert(path),
                Some(item_keys) => {
                    let is = item_schema(vs);
                    for (item, key) in items.iter().zip(item_keys) {
                        path.push(key);
                        set.insert(path);
                        visit_value(item, &is, path, set);
                        path.pop();
                    }
                }
            },
        },
        _ => {
            if !path.is_empty() {
                set.insert(path);
            }
        }
    }
}

/// Merges an applied configuration into a live object: the configuration wins, list-maps and sets merge per item.
pub fn merge(live: &Value, config: &Value, schema: &Schema) -> Value {
    merge_value(Some(live), config, &root_schema(schema))
}

fn merge_value(live: Option<&Value>, config: &Value, vs: &FieldSchema) -> Value {
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c)) if !vs.map_atomic => {
            let mut out = l.clone();
            for (k, cv) in c {
                let fs = vs.child.field(k);
                let merged = merge_value(l.get(k), cv, &fs);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => match &vs.list {
            ListType::Atomic => config.clone(),
            ListType::Set => {
                let mut out = c.clone();
                for item in l {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Map(keys) => {
                let (Some(live_keys), Some(config_keys)) = (list_keys(l, keys), list_keys(c, keys))
                else {
                    return config.clone();
                };
                // Live items keep their positions (merged with their configured counterpart);
                // items new in the configuration follow, in configuration order.
                let is = item_schema(vs);
                let mut out = Vec::with_capacity(l.len() + c.len());
                for (item, key) in l.iter().zip(&live_keys) {
                    match config_keys
                        .iter()
                        .position(|k| k == key)
                        .and_then(|i| c.get(i))
                    {
                        Some(configured) => out.push(merge_value(Some(item), configured, &is)),
                        None => out.push(item.clone()),
                    }
                }
                for (item, key) in c.iter().zip(&config_keys) {
                    if !live_keys.contains(key) {
                        out.push(merge_value(None, item, &is));
                    }
                }
                Value::Array(out)
            }
        },
        _ => config.clone(),
    }
}

/// The value at `path`, if present.
pub fn get_at<'a>(value: &'a Value, path: &[PathElement], schema: &Schema) -> Option<&'a Value> {
    let mut cur = value;
    let mut vs = root_schema(schema);
    for pe in path {
        match pe {
            PathElement::Field(f) => {
                cur = cur.as_object()?.get(f)?;
                vs = vs.child.field(f);
            }
            PathElement::Key(_) => {
                let ListType::Map(keys) = &vs.list else {
                    return None;
                };
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| item_key(item, keys).as_ref() == Some(pe))?;
                vs = item_schema(&vs);
            }
            PathElement::Value(_) => {
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| PathElement::value(item) == *pe)?;
                vs = item_schema(&vs);
            }
            PathElement::Index(i) => {
                cur = cur.as_array()?.get(*i)?;
                vs = item_schema(&vs);
            }
        }
    }
    Some(cur)
}

/// Removes the field, list item or set member at `path`; missing paths are ignored.
pub fn remove_at(value: &mut Value, path: &[PathElement], schema: &Schema) {
    remove_in(value, path, &root_schema(schema));
}

fn remove_in(value: &mut Value, path: &[PathElement], vs: &FieldSchema) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match first {
        PathElement::Field(f) => {
            let Some(map) = value.as_object_mut() else {
                return;
            };
            if rest.is_empty() {
                map.shift_remove(f);
            } else if let Some(child) = map.get_mut(f) {
                let fs = vs.child.field(f);
                remove_in(child, rest, &fs);
                if child.as_object().is_some_and(Map::is_empty) {
                    map.shift_remove(f);
                }
            }
        }
        PathElement::Key(_) => {
            let ListType::Map(keys) = &vs.list else {
                return;
            };
            let Some(items) = value.as_array_mut() else {
                return;
            };
            let Some(idx) = items
                .iter()
                .position(|item| item_key(item, keys).as_ref() == Some(first))
            else {
                return;
            };
            if rest.is_empty() {
                items.remove(idx);
            } else if let Some(item) = items.get_mut(idx) {
                remove_in(item, rest, &item_schema(vs));
            }
        }
        PathElement::Value(_) => {
            if let Some(items) = value.as_array_mut()
                && rest.is_empty()
            {
                items.retain(|item| PathElement::value(item) != *first);
            }
        }
        PathElement::Index(_) => {}
    }
}

/// The difference between two versions of an object, as field sets.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Paths set only in the new object.
    pub added: FieldSet,
    /// Paths set only in the old object.
    pub removed: FieldSet,
    /// Leaf paths set in both with different values.
    pub modified: FieldSet,
}

/// Compares two objects field by field.
pub fn compare(old: &Value, new: &Value, schema: &Schema) -> Comparison {
    let old_set = to_field_set(old, schema);
    let new_set = to_field_set(new, schema);
    let both = old_set.intersection(&new_set);
    let mut modified = FieldSet::new();
    for path in both.paths() {
        if new_set.contains_prefix_strict(&path) {
            continue;
        }
        if get_at(old, &path, schema) != get_at(new, &path, schema) {
            modified.insert(&path);
        }
    }
    Comparison {
        added: new_set.difference(&old_set),
        removed: old_set.difference(&new_set),
        modified,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Schema {
        Schema::builtin("apps", "v1", "Deployment")
    }

    #[test]
    fn list_map_items_merge_by_key() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "sc:1"}]}}}});
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2"}]}}}});
        let merged = merge(&live, &config, &deployment());
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "app:2"}, {"name": "sidecar", "image": "sc:1"}])
        );
    }

    #[test]
    fn field_set_uses_keys_with_defaults() {
        let obj = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "ports": [{"containerPort": 80}]}]}}}});
        let set = to_field_set(&obj, &deployment());
        let fields = set.to_fields_v1();
        let ports = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]
            ["f:ports"];
        assert_eq!(
            ports,
            &json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
        );
    }

    #[test]
    fn remove_list_item_and_field() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"template": {"spec": {"containers": [{"name": "app"}, {"name": "sc"}]}}}});
        let schema = deployment();
        remove_at(
            &mut obj,
            &[
                PathElement::Field("metadata".into()),
                PathElement::Field("labels".into()),
                PathElement::Field("b".into()),
            ],
            &schema,
        );
        let containers = [
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::key(&[("name".into(), json!("app"))]),
        ];
        remove_at(&mut obj, &containers, &schema);
        assert_eq!(obj["metadata"]["labels"], json!({"a": "1"}));
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"],
            json!([{"name": "sc"}])
        );
    }

    #[test]
    fn compare_detects_modified_leaves() {
        let schema = deployment();
        let old = json!({"spec": {"replicas": 1, "paused": false}});
        let new = json!({"spec": {"replicas": 3, "minReadySeconds": 5}});
        let cmp = compare(&old, &new, &schema);
        assert_eq!(cmp.modified.paths().len(), 1);
        assert_eq!(cmp.added.paths().len(), 1);
        assert_eq!(cmp.removed.paths().len(), 1);
    }
}
