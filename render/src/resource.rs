//! A resource in the build: its object plus the history kustomize tracks (original id, renames, hash flag).

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// Group, version, kind, name and namespace of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResId {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl ResId {
    pub(crate) fn of(object: &Value) -> ResId {
        let api_version = str_at(object, &["apiVersion"]).unwrap_or_default();
        let (group, version) = split_api_version(api_version);
        ResId {
            group: group.to_string(),
            version: version.to_string(),
            kind: str_at(object, &["kind"]).unwrap_or_default().to_string(),
            name: str_at(object, &["metadata", "name"])
                .unwrap_or_default()
                .to_string(),
            namespace: str_at(object, &["metadata", "namespace"])
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// The id with an empty namespace spelled `default` (ids equal after this are the same object).
    pub(crate) fn normalized(mut self) -> ResId {
        if self.namespace.is_empty() {
            self.namespace = "default".into();
        }
        self
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        write!(
            f,
            "{}.{}.{}/{}.{}",
            self.kind, self.version, group, self.name, ns
        )
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Namespaces compare equal when both are empty/`default` or identical.
pub(crate) fn ns_eq(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        if s.is_empty() {
            "default".to_string()
        } else {
            s.to_string()
        }
    };
    norm(a) == norm(b)
}

/// Where a resource came from, for `buildMetadata: [originAnnotations]`.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    File(PathBuf),
    Generator {
        kustomization: PathBuf,
        kind: &'static str,
    },
}

/// An id kustomize recorded for an object before a transformer changed it (its "previous ids").
#[derive(Debug, Clone)]
pub(crate) struct EarlierId {
    pub kind: String,
    pub name: String,
    /// The namespace, `default` for none.
    pub namespace: String,
}

/// One object in the accumulator.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub object: Value,
    /// The id when the object entered the build.
    pub original: ResId,
    /// Every name the object has had, oldest first (the current name is not included).
    pub previous_names: Vec<String>,
    /// Every namespace the object has had, oldest first.
    pub previous_namespaces: Vec<String>,
    /// Prefixes and suffixes applied, outermost last.
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// Generated ConfigMap/Secret that gets a content hash suffix at the end.
    pub needs_hash: bool,
    pub origin: Option<Origin>,
    /// Names of the vars bound to this object.
    pub ref_vars: Vec<String>,
    /// JSON pointers of map values written empty in the source file (dropped by a strategic merge).
    pub empty_values: Vec<String>,
    /// The ids kustomize recorded before changing the object (namespace, prefix, suffix, hash suffix and
    /// JSON6902 patches record one), oldest first; name references look objects up by them.
    pub earlier_ids: Vec<EarlierId>,
}

impl Resource {
    pub(crate) fn new(object: Value, origin: Option<Origin>) -> Resource {
        let original = ResId::of(&object);
        Resource {
            object,
            original,
            previous_names: Vec::new(),
            previous_namespaces: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            origin,
            ref_vars: Vec::new(),
            empty_values: Vec::new(),
            earlier_ids: Vec::new(),
        }
    }

    pub(crate) fn id(&self) -> ResId {
        ResId::of(&self.object)
    }

    pub(crate) fn kind(&self) -> &str {
        str_at(&self.object, &["kind"]).unwrap_or_default()
    }

    pub(crate) fn group(&self) -> &str {
        split_api_version(str_at(&self.object, &["apiVersion"]).unwrap_or_default()).0
    }

    /// Group and version of the object's `apiVersion`.
    pub(crate) fn group_version(&self) -> (&str, &str) {
        split_api_version(str_at(&self.object, &["apiVersion"]).unwrap_or_default())
    }

    pub(crate) fn name(&self) -> &str {
        str_at(&self.object, &["metadata", "name"]).unwrap_or_default()
    }

    pub(crate) fn namespace(&self) -> &str {
        str_at(&self.object, &["metadata", "namespace"]).unwrap_or_default()
    }

    /// Records the current id as an earlier id (kustomize's `StorePreviousId`).
    pub(crate) fn store_previous_id(&mut self) {
        let id = EarlierId {
            kind: self.kind().to_string(),
            name: self.name().to_string(),
            namespace: match self.namespace() {
                "" => "default".to_string(),
                namespace => namespace.to_string(),
            },
        };
        self.earlier_ids.push(id);
    }

    /// Renames the object, remembering the old name.
    pub(crate) fn set_name(&mut self, name: String) {
        let old = self.name().to_string();
        if old == name {
            return;
        }
        self.previous_names.push(old);
        set_at(&mut self.object, &["metadata", "name"], Value::String(name));
    }

    pub(crate) fn set_namespace(&mut self, namespace: &str) {
        let old = self.namespace().to_string();
        if old == namespace {
            return;
        }
        self.previous_namespaces.push(old);
        set_at(
            &mut self.object,
            &["metadata", "namespace"],
            Value::String(namespace.to_string()),
        );
    }

    /// All names this object was known by, including the current one.
    pub(crate) fn all_names(&self) -> impl Iterator<Item = &str> {
        self.previous_names
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.name()))
    }

    pub(crate) fn all_namespaces(&self) -> impl Iterator<Item = &str> {
        self.previous_namespaces
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.namespace()))
    }
}

/// Reads a string at a path of map keys.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get_at(value, path)?.as_str()
}

pub(crate) fn get_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = value;
    for key in path {
        current = current.as_object()?.get(*key)?;
    }
    Some(current)
}

/// Sets a value at a path of map keys, creating (or replacing non-map) intermediate maps.
pub(crate) fn set_at(value: &mut Value, path: &[&str], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        current = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    if let Value::Object(map) = current {
        map.insert(last.to_string(), new);
    }
}

/// Visits every value at a field-spec path like `spec/template/spec/containers[]/image`.
///
/// A `[]` suffix enters every item of a list. With `create`, missing maps along the path (and the final map
/// when `leaf_map` is set) are created; lists are never created.
pub(crate) fn visit_path(
    value: &mut Value,
    path: &str,
    create: bool,
    f: &mut dyn FnMut(&mut Value),
) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    visit_segments(value, &segments, create, f);
}

fn visit_segments(
    value: &mut Value,
    segments: &[&str],
    create: bool,
    f: &mut dyn FnMut(&mut Value),
) {
    let Some((first, rest)) = segments.split_first() else {
        f(value);
        return;
    };
    let Value::Object(map) = value else { return };
    if let Some(field) = first.strip_suffix("[]") {
        if let Some(Value::Array(items)) = map.get_mut(field) {
            for item in items {
                visit_segments(item, rest, create, f);
            }
        }
        return;
    }
    if !map.contains_key(*first) {
        if !create {
            return;
        }
        map.insert(
            first.to_string(),
            if rest.is_empty() {
                Value::Null
            } else {
                Value::Object(Map::new())
            },
        );
    }
    if let Some(child) = map.get_mut(*first) {
        if child.is_null() && !rest.is_empty() && create {
            *child = Value::Object(Map::new());
        }
        visit_segments(child, rest, create, f);
    }
}
