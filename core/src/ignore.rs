//! Argo CD's `ignoreDifferences`: which rules apply to an object, and the object with the ignored fields removed (JSON pointers, jq path expressions run as `del(…)` by jaq, fields owned by named managers), so a difference there neither makes an app OutOfSync nor, with `RespectIgnoreDifferences=true`, gets applied.

mod grammar;

use serde_json::Value;

use crate::app::IgnoreDifference;

/// Longest jq path expression accepted, in bytes.
pub const MAX_JQ_EXPRESSION_BYTES: usize = 1024;

/// jq names that loop or grow without bound, or read outside the object: refused in path expressions, so
/// evaluating one is bounded by the size of the object it runs on.
const UNBOUNDED_JQ: &[&str] = &[
    "def",
    "recurse",
    "repeat",
    "while",
    "until",
    "range",
    "limit",
    "input",
    "inputs",
    "env",
    "$ENV",
    "$__loc__",
    "splits",
    "debug",
    "stderr",
    "halt",
    "halt_error",
    "getpath",
    "setpath",
    "delpaths",
    "tojson",
    "fromjson",
    "ltrimstr",
    "rtrimstr",
    "ascii",
    "implode",
    "explode",
    "combinations",
    "walk",
    "tostream",
    "fromstream",
    "truncate_stream",
    "foreach",
    "reduce",
    "label",
    "error",
    "todate",
    "now",
    "mktime",
    "gmtime",
    "strftime",
    "strptime",
    "input_line_number",
];

/// Why a jq path expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("jq path expression {expression:?}: {reason}")]
pub struct JqError {
    pub expression: String,
    pub reason: String,
}

fn jq_error(expression: &str, reason: impl Into<String>) -> JqError {
    let shown: String = expression.chars().take(80).collect();
    JqError {
        expression: shown,
        reason: reason.into(),
    }
}

/// Checks a jq path expression: bounded in length, free of unbounded or impure names, `*` (string
/// repetition), within the path grammar whose evaluation is bounded by the object's size (`grammar`: paths and
/// `select` filters; no `,`, `..`, object construction or arithmetic, which multiply outputs without data), and
/// compilable by jaq as `del(expression)`.
pub fn check_jq_path(expression: &str) -> Result<(), JqError> {
    check_shape(expression)?;
    compile_code(expression, &format!("del({expression})")).map(|_| ())
}

/// Everything [`check_jq_path`] checks but compiling: what evaluating the expression runs before it
/// compiles the filter it needs.
fn check_shape(expression: &str) -> Result<(), JqError> {
    if expression.trim().is_empty() {
        return Err(jq_error(expression, "is empty"));
    }
    if expression.len() > MAX_JQ_EXPRESSION_BYTES {
        return Err(jq_error(
            expression,
            format!("is longer than {MAX_JQ_EXPRESSION_BYTES} bytes"),
        ));
    }
    if expression.contains('*') {
        return Err(jq_error(
            expression,
            "uses '*', which edgecd refuses in path expressions (it can repeat strings without bound)",
        ));
    }
    for word in expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
    {
        if UNBOUNDED_JQ.contains(&word) {
            return Err(jq_error(
                expression,
                format!(
                    "uses {word:?}, which edgecd refuses in path expressions (evaluation must stay bounded by the object)"
                ),
            ));
        }
    }
    grammar::check(expression).map_err(|why| {
        jq_error(
            expression,
            format!("is not a path expression edgecd evaluates: {why}"),
        )
    })
}

type Filter = jaq_core::Filter<jaq_core::data::JustLut<jaq_json::Val>>;

/// Most paths [`jq_paths`] gives for one expression.
const MAX_JQ_PATHS: usize = 4096;

/// The fields `expression` selects in `object`, as JSON pointers (at most 4,096); `None` when it fails on this
/// object or is refused by [`check_jq_path`].
pub fn jq_paths(object: &Value, expression: &str) -> Option<Vec<String>> {
    run_jq(
        object,
        expression,
        &format!("path({expression})"),
        MAX_JQ_PATHS,
    )?
    .iter()
    .map(|path| {
        let tokens: Vec<String> = path
            .as_array()?
            .iter()
            .map(|t| match t {
                Value::String(key) => Some(key.clone()),
                Value::Number(n) => n.as_u64().map(|i| i.to_string()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        Some(pointer_of(&tokens))
    })
    .collect()
}

/// The first `most` outputs of `code` (a filter built around `expression`, which is checked first) run on
/// `object`, compiled once; `None` when the expression is refused or fails on this object.
fn run_jq(object: &Value, expression: &str, code: &str, most: usize) -> Option<Vec<Value>> {
    use jaq_core::{Ctx, Vars, data, unwrap_valr};
    check_shape(expression).ok()?;
    let filter = compile_code(expression, code).ok()?;
    let text = serde_json::to_string(object).ok()?;
    let input = jaq_json::read::parse_single(text.as_bytes()).ok()?;
    let ctx = Ctx::<data::JustLut<jaq_json::Val>>::new(&filter.lut, Vars::new([]));
    filter
        .id
        .run((ctx, input))
        .map(unwrap_valr)
        .take(most)
        .map(|out| serde_json::from_str(&out.ok()?.to_string()).ok())
        .collect()
}

fn compile_code(expression: &str, code: &str) -> Result<Filter, JqError> {
    use jaq_core::load::{Arena, File, Loader};
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(&arena, File { code, path: () })
        .map_err(|_| jq_error(expression, "does not parse as jq"))?;
    jaq_core::Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|_| {
            jq_error(
                expression,
                "does not compile (an unknown function or variable?)",
            )
        })
}

/// `object` with the paths `expression` selects deleted; `None` when it fails on this object (Argo CD then
/// leaves the object as it is).
fn delete_jq(object: &Value, expression: &str) -> Option<Value> {
    run_jq(object, expression, &format!("del({expression})"), 1)?
        .into_iter()
        .next()
}

/// Whether `rule` applies to an object of `group`/`kind` named `name` in `namespace` (empty rule fields match
/// any; the kind may be `*`).
pub fn rule_applies(
    rule: &IgnoreDifference,
    group: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let kind_ok = rule.kind == "*" || rule.kind.is_empty() || rule.kind == kind;
    let group_ok =
        rule.group == "*" || rule.group == group || rule.group.is_empty() && group.is_empty();
    kind_ok
        && group_ok
        && (rule.name.is_empty() || rule.name == name)
        && (rule.namespace.is_empty() || rule.namespace == namespace)
}

/// Removes one RFC 6901 pointer from `object` (nothing when it does not resolve).
pub(crate) fn delete_pointer(object: &mut Value, pointer: &str) {
    if pointer.is_empty() || pointer == "/" {
        return;
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match object.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.shift_remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

/// The field paths (`["spec","replicas"]`) a manager owns in `managedFields` (`f:` keys of its `fieldsV1`;
/// list entries by key `k:`/`v:`/`i:` are owned as a whole).
fn owned_paths(live: &Value, managers: &[String]) -> Vec<Vec<String>> {
    fn walk(fields: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let Some(map) = fields.as_object() else {
            return;
        };
        for (key, sub) in map {
            if key == "." {
                continue;
            }
            if let Some(field) = key.strip_prefix("f:") {
                prefix.push(field.to_owned());
                let leaf = sub
                    .as_object()
                    .is_none_or(|m| m.is_empty() || m.keys().all(|k| k == "."));
                if leaf
                    || sub
                        .as_object()
                        .is_some_and(|m| m.keys().any(|k| !k.starts_with("f:") && k != "."))
                {
                    // A leaf, or a list whose items are keyed: the field as a whole.
                    out.push(prefix.clone());
                } else {
                    walk(sub, prefix, out);
                }
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    for entry in live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let manager = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if managers.iter().any(|m| m == manager)
            && let Some(fields) = entry.get("fieldsV1")
        {
            walk(fields, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn pointer_of(path: &[String]) -> String {
    path.iter()
        .map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// `object` with every field `rules` ignore removed. `live` supplies `managedFields` for the
/// `managedFieldsManagers` rules (the fields those managers own there are removed from `object`, whichever
/// side it is). Rules are those that [`rule_applies`] to the object.
pub fn strip_ignored(object: &Value, live: Option<&Value>, rules: &[&IgnoreDifference]) -> Value {
    let mut out = object.clone();
    for rule in rules {
        for pointer in &rule.json_pointers {
            delete_pointer(&mut out, pointer);
        }
        for expression in &rule.jq_path_expressions {
            if let Some(stripped) = delete_jq(&out, expression) {
                out = stripped;
            }
        }
        if !rule.managed_fields_managers.is_empty()
            && let Some(live) = live
        {
            for path in owned_paths(live, &rule.managed_fields_managers) {
                delete_pointer(&mut out, &pointer_of(&path));
            }
        }
    }
    out
}

/// The rules of `all` that apply to `object` (by its apiVersion group, kind, namespace and name).
pub fn rules_for<'r>(all: &'r [IgnoreDifference], object: &Value) -> Vec<&'r IgnoreDifference> {
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let api_version = text("/apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    all.iter()
        .filter(|r| {
            rule_applies(
                r,
                group,
                text("/kind"),
                text("/metadata/namespace"),
                text("/metadata/name"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(pointers: &[&str], jq: &[&str], managers: &[&str]) -> IgnoreDifference {
        IgnoreDifference {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: pointers.iter().map(|s| (*s).to_owned()).collect(),
            jq_path_expressions: jq.iter().map(|s| (*s).to_owned()).collect(),
            managed_fields_managers: managers.iter().map(|s| (*s).to_owned()).collect(),
            ..IgnoreDifference::default()
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "managedFields": [
                {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "edgecd", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}}
            ]},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:1"}
            ]}}}
        })
    }

    #[test]
    fn pointers_jq_and_managers_remove_fields() {
        let d = deployment();
        let rules = [rule(&["/spec/replicas", "/spec/missing/x"], &[], &[])];
        let applied = rules_for(&rules, &d);
        assert_eq!(applied.len(), 1);
        let out = strip_ignored(&d, None, &applied);
        assert!(out.pointer("/spec/replicas").is_none());
        assert!(out.pointer("/spec/template").is_some());

        let jq = [rule(
            &[],
            &[r#".spec.template.spec.containers[] | select(.name == "sidecar") | .image"#],
            &[],
        )];
        let out = strip_ignored(&d, None, &rules_for(&jq, &d));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "sidecar"})
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );

        let managers = [rule(&[], &[], &["hpa"])];
        let out = strip_ignored(&d, Some(&d), &rules_for(&managers, &d));
        assert!(out.pointer("/spec/replicas").is_none());
        assert!(out.pointer("/spec/template").is_some());
    }

    #[test]
    fn rules_match_by_group_kind_name_and_namespace() {
        let d = deployment();
        let mut r = rule(&["/spec/replicas"], &[], &[]);
        r.name = "other".into();
        assert!(rules_for(std::slice::from_ref(&r), &d).is_empty());
        r.name = "web".into();
        r.namespace = "shop".into();
        assert_eq!(rules_for(std::slice::from_ref(&r), &d).len(), 1);
        r.group = String::new();
        assert!(rules_for(std::slice::from_ref(&r), &d).is_empty());
        r.group = "*".into();
        r.kind = "*".into();
        assert_eq!(rules_for(std::slice::from_ref(&r), &d).len(), 1);
    }

    #[test]
    fn unbounded_or_invalid_jq_is_refused() {
        assert!(check_jq_path(".spec.replicas").is_ok());
        assert!(check_jq_path(r#".metadata.annotations["x"]"#).is_ok());
        for bad in [
            "def f: f; f",
            "recurse(.)",
            "[range(100000000)]",
            r#""x" * 1000000000"#,
            ".spec.[",
            "nosuchfunction(1)",
            "",
        ] {
            let err = check_jq_path(bad).unwrap_err();
            assert!(err.to_string().starts_with("jq path expression"), "{err}");
        }
        assert!(check_jq_path(&".a".repeat(600)).is_err());
        // Doubling the outputs at every stage without reading any data: 2^100 evaluations of a filter that
        // never yields, which would hold the hub's controller (an ApplicationSet's ignoreApplicationDifferences)
        // or a spoke's comparison forever. Only names were refused before; the path grammar refuses it.
        let doubling = format!("{}select(false)", "(.,.)|".repeat(100));
        assert!(doubling.len() < MAX_JQ_EXPRESSION_BYTES);
        let err = check_jq_path(&doubling).unwrap_err();
        assert!(err.reason.contains("not a path expression"), "{err}");
        for bad in [
            ".a + .b",
            "{a: .x[]}",
            ".spec | ..",
            r#".a[] | select(.b[] == "x")"#,
        ] {
            assert!(check_jq_path(bad).is_err(), "{bad}");
        }
    }
}
