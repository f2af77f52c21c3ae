//! `replacements`: copy a field of one object (or a literal `sourceValue`) into fields of selected objects,
//! with kustomize's field paths (`a.b.[name=x].0.*`, `[key.with.dots]`) and `delimiter`/`index`/`create`.

use serde_json::{Map, Value};

use crate::kustomization::Target;
use crate::patch::Selector;
use crate::resource::{Resource, ns_eq};

/// Bound on path segments of one field path.
const MAX_PATH_SEGMENTS: usize = 100;
/// Bound on the number of replacements one kustomization may run.
pub(crate) const MAX_REPLACEMENTS: usize = 10_000;

/// One replacement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replacement {
    source: Option<Source>,
    source_value: Option<String>,
    targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone, Default)]
struct Source {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    field_path: String,
    options: Options,
}

#[derive(Debug, Clone, Default)]
struct Options {
    delimiter: String,
    index: i64,
    create: bool,
}

#[derive(Debug, Clone)]
struct TargetSpec {
    select: Selector,
    reject: Vec<Selector>,
    field_paths: Vec<String>,
    options: Options,
}

fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(crate::yaml::format_number_plain(n))),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

fn options(value: Option<&Value>) -> Result<Options, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Options::default());
    };
    let map = value.as_object().ok_or("options must be a mapping")?;
    Ok(Options {
        delimiter: text(map, "delimiter")?.unwrap_or_default(),
        index: match map.get("index") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().ok_or("options.index must be an integer")?,
        },
        create: map.get("create").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn selector(value: &Value) -> Result<Selector, String> {
    let map = value.as_object().ok_or("a selector must be a mapping")?;
    let target = Target {
        group: text(map, "group")?,
        version: text(map, "version")?,
        kind: text(map, "kind")?,
        name: text(map, "name")?,
        namespace: text(map, "namespace")?,
        label_selector: text(map, "labelSelector")?,
        annotation_selector: text(map, "annotationSelector")?,
    };
    Selector::compile(&target)
}

fn field_paths(value: Option<&Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(String::from)
                    .ok_or_else(|| "fieldPaths entries must be strings".to_string())
            })
            .collect(),
        Some(_) => Err("fieldPaths must be a list".into()),
    }
}

impl Replacement {
    /// Parses one replacement (`source`/`sourceValue` and `targets`).
    pub(crate) fn parse(value: &Value) -> Result<Replacement, String> {
        let map = value.as_object().ok_or("a replacement must be a mapping")?;
        for key in map.keys() {
            if !matches!(key.as_str(), "source" | "sourceValue" | "targets") {
                return Err(format!("unknown field '{key}' in replacement"));
            }
        }
        let source = match map.get("source") {
            None | Some(Value::Null) => None,
            Some(Value::Object(s)) => Some(Source {
                group: text(s, "group")?,
                version: text(s, "version")?,
                kind: text(s, "kind")?,
                name: text(s, "name")?,
                namespace: text(s, "namespace")?,
                field_path: text(s, "fieldPath")?.unwrap_or_else(|| "metadata.name".into()),
                options: options(s.get("options"))?,
            }),
            Some(_) => return Err("replacement source must be a mapping".into()),
        };
        let source_value = text(map, "sourceValue")?;
        let mut targets = Vec::new();
        match map.get("targets") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let t = item.as_object().ok_or("a target must be a mapping")?;
                    let select = match t.get("select") {
                        None | Some(Value::Null) => {
                            return Err("target must specify resources to select".into());
                        }
                        Some(s) => selector(s)?,
                    };
                    let reject = match t.get("reject") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(r)) => {
                            r.iter().map(selector).collect::<Result<_, _>>()?
                        }
                        Some(_) => return Err("target reject must be a list".into()),
                    };
                    let mut paths = field_paths(t.get("fieldPaths"))?;
                    if paths.is_empty() {
                        paths.push("metadata.name".into());
                    }
                    targets.push(TargetSpec {
                        select,
                        reject,
                        field_paths: paths,
                        options: options(t.get("options"))?,
                    });
                }
            }
            Some(_) => return Err("replacement targets must be a list".into()),
        }
        if (source.is_none() && source_value.is_none()) || targets.is_empty() {
            return Err("replacements must specify a source and at least one target".into());
        }
        if source.is_some() && source_value.is_some() {
            return Err("value and resource selectors are mutually exclusive".into());
        }
        Ok(Replacement {
            source,
            source_value,
            targets,
        })
    }

    /// Parses the content of a replacements file: a list of replacements or a single one.
    pub(crate) fn parse_file(value: &Value) -> Result<Vec<Replacement>, String> {
        match value {
            Value::Array(items) => items.iter().map(Replacement::parse).collect(),
            Value::Null => Ok(Vec::new()),
            other => Ok(vec![Replacement::parse(other)?]),
        }
    }
}

/// Runs the replacements, in order, over the resources.
pub(crate) fn apply(
    resources: &mut [Resource],
    replacements: &[Replacement],
) -> Result<(), String> {
    for replacement in replacements {
        let value = source_value(resources, replacement)?;
        for target in &replacement.targets {
            for resource in resources.iter_mut() {
                if !target.select.matches(resource) || rejected(target, resource) {
                    continue;
                }
                for path in &target.field_paths {
                    copy_to_target(resource, &value, path, &target.options)?;
                }
            }
        }
    }
    Ok(())
}

fn rejected(target: &TargetSpec, resource: &Resource) -> bool {
    target.reject.iter().any(|r| {
        (r.has_meta_fields() && r.matches_meta(resource))
            || (r.has_id_fields() && r.matches_id(resource))
    })
}

fn describe(source: &Source) -> String {
    let parts = [
        ("group", &source.group),
        ("version", &source.version),
        ("kind", &source.kind),
        ("name", &source.name),
        ("namespace", &source.namespace),
    ];
    parts
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_value(resources: &[Resource], replacement: &Replacement) -> Result<Value, String> {
    if let Some(value) = &replacement.source_value {
        return Ok(Value::String(value.clone()));
    }
    let Some(source) = &replacement.source else {
        return Err("replacements must specify a source".into());
    };
    let selected: Vec<&Resource> = resources
        .iter()
        .filter(|r| source_selects(source, r))
        .collect();
    let resource = match selected.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "replacement source: nothing selected by {}",
                describe(source)
            ));
        }
        _ => {
            return Err(format!(
                "replacement source: multiple matches for selector {}",
                describe(source)
            ));
        }
    };
    let path = split_field_path(&source.field_path)?;
    let found = lookup(&resource.object, &path)?;
    let value = match found {
        Some(v) if !is_nil_or_empty(v) => v.clone(),
        _ => {
            return Err(format!(
                "fieldPath `{}` is missing for replacement source {}",
                source.field_path,
                resource.id()
            ));
        }
    };
    if source.options.delimiter.is_empty() {
        return Ok(value);
    }
    let Some(text) = scalar_text(&value) else {
        return Err("delimiter option can only be used with scalar nodes".into());
    };
    let parts: Vec<&str> = text.split(source.options.delimiter.as_str()).collect();
    let index = usize::try_from(source.options.index)
        .ok()
        .filter(|i| *i < parts.len())
        .ok_or_else(|| {
            format!(
                "options.index {} is out of bounds for value {text}",
                source.options.index
            )
        })?;
    Ok(match value {
        Value::String(_) => Value::String(parts[index].to_string()),
        _ => crate::yaml::resolve_plain(parts[index]),
    })
}

fn is_nil_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Source selection: exact group/version/kind, and the current or any earlier name and namespace.
fn source_selects(source: &Source, resource: &Resource) -> bool {
    let id = resource.id();
    source.group.as_deref().is_none_or(|g| g == id.group)
        && source.version.as_deref().is_none_or(|v| v == id.version)
        && source.kind.as_deref().is_none_or(|k| k == id.kind)
        && source
            .name
            .as_deref()
            .is_none_or(|n| resource.all_names().any(|x| x == n))
        && source
            .namespace
            .as_deref()
            .is_none_or(|ns| resource.all_namespaces().any(|x| ns_eq(x, ns)))
}

/// The text of a scalar as a YAML node holds it.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Splits a field path on `.`: `\.` escapes a dot, `[a.b]` keeps its dots (brackets dropped unless it
/// holds `=`), a leading `.` is ignored.
pub(crate) fn split_field_path(path: &str) -> Result<Vec<String>, String> {
    let mut raw: Vec<String> = Vec::new();
    let mut parts = path.split('.').peekable();
    if path.starts_with('.') && path.len() > 1 {
        parts.next();
    }
    for part in parts {
        match raw.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(part);
            }
            _ => raw.push(part.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let elem = &raw[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut bracketed = vec![elem.clone()];
            while i + 1 < raw.len() {
                i += 1;
                bracketed.push(raw[i].clone());
                if raw[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(".");
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    if out.len() > MAX_PATH_SEGMENTS {
        return Err(format!("field path '{path}' has too many segments"));
    }
    Ok(out)
}

fn is_index(segment: &str) -> Option<usize> {
    segment.parse::<usize>().ok()
}

fn is_list_match(segment: &str) -> bool {
    segment.starts_with('[') && segment.ends_with(']')
}

fn split_match(segment: &str) -> Result<(&str, &str), String> {
    let inner = segment
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(segment);
    inner.split_once('=').ok_or_else(|| {
        format!(
            "list path element '{segment}' must contain fieldName=fieldValue for element to match"
        )
    })
}

/// Reads the value at a field path (`[k=v]` picks the first element whose `k` equals `v`).
pub(crate) fn lookup<'a>(object: &'a Value, path: &[String]) -> Result<Option<&'a Value>, String> {
    let mut current = object;
    for segment in path {
        let next = match current {
            Value::Array(items) => {
                if let Some(index) = is_index(segment) {
                    items.get(index)
                } else if segment == "-" {
                    items.last()
                } else if is_list_match(segment) {
                    let (key, wanted) = split_match(segment)?;
                    items.iter().find(|item| {
                        let field = if key.is_empty() {
                            Some(*item)
                        } else {
                            item.get(key)
                        };
                        field
                            .and_then(scalar_text)
                            .is_some_and(|t| t.trim() == wanted)
                    })
                } else {
                    None
                }
            }
            Value::Object(map) => map.get(segment.as_str()),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// A step from a value to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// What a created leaf should become: a scalar (resolved from the text later), a map or a list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Create {
    No,
    Scalar,
    Map,
    Seq,
}

fn new_node(next: Option<&String>, leaf: Create) -> Value {
    match next {
        Some(n) if is_list_match(n) || is_index(n).is_some() => Value::Array(Vec::new()),
        Some(_) => Value::Object(Map::new()),
        None => match leaf {
            Create::Map => Value::Object(Map::new()),
            Create::Seq => Value::Array(Vec::new()),
            _ => Value::Null,
        },
    }
}

/// Finds (and with `create`, makes) every field a target path names; returns their locations.
fn matches(
    node: &mut Value,
    path: &[String],
    create: Create,
    at: &mut Vec<Step>,
    out: &mut Vec<Vec<Step>>,
) -> Result<(), String> {
    let Some((segment, rest)) = path.split_first() else {
        out.push(at.clone());
        return Ok(());
    };
    if let Some(index) = is_index(segment) {
        let Value::Array(items) = node else {
            return Err(format!("expected a list at '{segment}'"));
        };
        if items.len() == index && create != Create::No {
            items.push(new_node(rest.first(), create));
        }
        let len = items.len();
        let Some(item) = items.get_mut(index) else {
            return Err(format!(
                "index {index} specified but only {len} elements found"
            ));
        };
        at.push(Step::Index(index));
        let result = matches(item, rest, create, at, out);
        at.pop();
        return result;
    }
    if is_list_match(segment) {
        let (key, wanted) = split_match(segment)?;
        let pattern = regex::Regex::new(wanted)
            .map_err(|e| format!("invalid list match '{segment}': {e}"))?;
        let Value::Array(items) = node else {
            return Err(format!("expected a list at '{segment}'"));
        };
        let mut found = false;
        for (index, item) in items.iter_mut().enumerate() {
            let field = if key.is_empty() {
                Some(&*item)
            } else {
                item.get(key)
            };
            let Some(field_text) = field.and_then(scalar_text) else {
                continue;
            };
            if !pattern.is_match(field_text.trim()) {
                continue;
            }
            found = true;
            if key.is_empty() {
                at.push(Step::Index(index));
                out.push(at.clone());
                at.pop();
                continue;
            }
            at.push(Step::Index(index));
            let result = matches(item, rest, create, at, out);
            at.pop();
            result?;
        }
        if found || create == Create::No {
            return Ok(());
        }
        let element = if key.is_empty() {
            Value::String(wanted.to_string())
        } else {
            let mut map = Map::new();
            map.insert(key.to_string(), Value::String(wanted.to_string()));
            Value::Object(map)
        };
        items.push(element);
        let index = items.len() - 1;
        at.push(Step::Index(index));
        let result = match items.get_mut(index) {
            Some(_) if key.is_empty() => {
                out.push(at.clone());
                Ok(())
            }
            Some(item) => matches(item, rest, create, at, out),
            None => Ok(()),
        };
        at.pop();
        return result;
    }
    if segment == "*" {
        let Value::Array(items) = node else {
            return Err("'*' can only match the elements of a list".into());
        };
        for (index, item) in items.iter_mut().enumerate() {
            at.push(Step::Index(index));
            let result = matches(item, rest, create, at, out);
            at.pop();
            result?;
        }
        return Ok(());
    }
    let Value::Object(map) = node else {
        return Ok(());
    };
    if !map.contains_key(segment.as_str()) {
        if create == Create::No {
            return Ok(());
        }
        map.insert(segment.clone(), new_node(rest.first(), create));
    }
    let Some(child) = map.get_mut(segment.as_str()) else {
        return Ok(());
    };
    at.push(Step::Key(segment.clone()));
    let result = matches(child, rest, create, at, out);
    at.pop();
    result
}

fn get_mut<'a>(object: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let mut current = object;
    for step in steps {
        current = match step {
            Step::Key(key) => current.as_object_mut()?.get_mut(key)?,
            Step::Index(index) => current.as_array_mut()?.get_mut(*index)?,
        };
    }
    Some(current)
}

fn copy_to_target(
    resource: &mut Resource,
    value: &Value,
    field_path: &str,
    options: &Options,
) -> Result<(), String> {
    let create = if !options.create {
        Create::No
    } else {
        match value {
            Value::Object(_) => Create::Map,
            Value::Array(_) => Create::Seq,
            _ => Create::Scalar,
        }
    };
    let path = split_field_path(field_path)?;
    let mut found = Vec::new();
    let id = resource.id();
    let what = if create == Create::No {
        "unable to find field"
    } else {
        "unable to find or create field"
    };
    matches(
        &mut resource.object,
        &path,
        create,
        &mut Vec::new(),
        &mut found,
    )
    .map_err(|e| format!("{what} \"{field_path}\" in replacement target {id}: {e}"))?;
    if found.is_empty() {
        return Err(format!(
            "{what} \"{field_path}\" in replacement target {id}"
        ));
    }
    for steps in found {
        if let Some(target) = get_mut(&mut resource.object, &steps) {
            set_field(target, value, options)?;
        }
    }
    Ok(())
}

/// Sets one target field: scalars keep their own type (only the text changes), other nodes are replaced.
fn set_field(target: &mut Value, value: &Value, options: &Options) -> Result<(), String> {
    let mut new = value.clone();
    if !options.delimiter.is_empty() {
        let Some(current) = scalar_text(target) else {
            return Err("delimiter option can only be used with scalar nodes".into());
        };
        let mut parts: Vec<String> = current
            .split(options.delimiter.as_str())
            .map(String::from)
            .collect();
        let v = scalar_text(value).unwrap_or_default();
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, v),
            Ok(i) if i >= parts.len() => parts.push(v),
            Ok(i) => parts[i] = v,
        }
        new = Value::String(parts.join(options.delimiter.as_str()));
    }
    let text = scalar_text(&new).unwrap_or_default();
    *target = match target {
        Value::String(_) => Value::String(text),
        Value::Number(_) | Value::Bool(_) => match crate::yaml::resolve_plain(&text) {
            typed @ (Value::Number(_) | Value::Bool(_)) => typed,
            _ => Value::String(text),
        },
        // A null or just-created field has no type of its own: the text is typed as a plain scalar.
        Value::Null if !new.is_object() && !new.is_array() => crate::yaml::resolve_plain(&text),
        _ => new,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn field_paths_split_like_kustomize() {
        assert_eq!(
            split_field_path(".metadata.annotations.[cert-manager.io/inject-ca-from]").unwrap(),
            vec!["metadata", "annotations", "cert-manager.io/inject-ca-from"]
        );
        assert_eq!(
            split_field_path("spec.containers.[name=a.b].image").unwrap(),
            vec!["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(split_field_path("a\\.b.c").unwrap(), vec!["a.b", "c"]);
    }

    fn run(object: Value, replacement: &str) -> Result<Value, String> {
        let mut resources = vec![
            Resource::new(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": "ns"}}),
                None,
            ),
            Resource::new(object, None),
        ];
        let value = crate::yaml::load_one(replacement).unwrap();
        apply(&mut resources, &Replacement::parse_file(&value)?)?;
        Ok(resources[1].object.clone())
    }

    #[test]
    fn delimiter_index_and_create() {
        let cert = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}});
        let out = run(
            cert.clone(),
            "- source: {kind: Service, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Certificate}\n    fieldPaths: [.spec.dnsNames.0]\n    options: {delimiter: '.', index: 0, create: true}\n- source: {kind: Service, fieldPath: .metadata.namespace}\n  targets:\n  - select: {kind: Certificate}\n    fieldPaths: [.spec.dnsNames.0]\n    options: {delimiter: '.', index: 1, create: true}\n",
        )
        .unwrap();
        assert_eq!(out["spec"]["dnsNames"], json!(["svc.ns"]));
        let err = run(
            cert,
            "- source: {kind: Service}\n  targets:\n  - select: {kind: Certificate}\n    fieldPaths: [spec.missing]\n",
        )
        .unwrap_err();
        assert!(err.contains("unable to find field"), "{err}");
    }

    #[test]
    fn scalars_keep_their_type_and_lists_match_by_key() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "old"}]}]}}}});
        let out = run(
            deploy,
            "- sourceValue: '3'\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [spec.replicas]\n- source: {kind: Service}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: ['spec.template.spec.containers.[name=a].env.[name=X].value']\n",
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], json!(3));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            json!("svc")
        );
    }
}
