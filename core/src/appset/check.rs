//! Strict key walk of a raw ApplicationSet `spec`: every unknown or unsupported field is refused with its path.

use serde_json::{Map, Value};

use super::AppSetError;
use crate::argo_spec::{check_application_spec, is_empty_value};

type Res = Result<(), AppSetError>;

fn err(path: &str, message: impl Into<String>) -> AppSetError {
    AppSetError::new(path, message)
}

fn object<'v>(v: &'v Value, path: &str) -> Result<&'v Map<String, Value>, AppSetError> {
    v.as_object().ok_or_else(|| err(path, "expected an object"))
}

fn array<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>, AppSetError> {
    v.as_array().ok_or_else(|| err(path, "expected a list"))
}

fn string(v: &Value, path: &str) -> Res {
    if v.is_string() {
        Ok(())
    } else {
        Err(err(path, "expected a string"))
    }
}

fn boolean(v: &Value, path: &str) -> Res {
    if v.is_boolean() {
        Ok(())
    } else {
        Err(err(path, "expected true or false"))
    }
}

fn string_map(v: &Value, path: &str) -> Res {
    for (k, val) in object(v, path)? {
        string(val, &format!("{path}.{k}"))?;
    }
    Ok(())
}

/// Refuses keys outside `allowed`; `refused` keys get a specific reason unless their value is empty.
fn keys(obj: &Map<String, Value>, path: &str, allowed: &[&str], refused: &[(&str, &str)]) -> Res {
    for (k, v) in obj {
        if allowed.contains(&k.as_str()) {
            continue;
        }
        let at = format!("{path}.{k}");
        if let Some((_, why)) = refused.iter().find(|(r, _)| r == k) {
            if is_empty_value(v) {
                continue;
            }
            return Err(err(&at, *why));
        }
        return Err(err(&at, "unknown or unsupported field"));
    }
    Ok(())
}

pub(super) fn check_spec(spec: &Value, path: &str) -> Res {
    let obj = object(spec, path)?;
    keys(
        obj,
        path,
        &["generators", "template", "goTemplate", "syncPolicy"],
        &[
            ("goTemplateOptions", "Go templates are not supported"),
            ("strategy", "progressive sync (strategy) is not supported"),
            (
                "ignoreApplicationDifferences",
                "ignoreApplicationDifferences is not supported",
            ),
            ("templatePatch", "templatePatch is not supported"),
            (
                "applyNestedSelectors",
                "nested generator selectors are not supported",
            ),
            ("preservedFields", "preservedFields is not supported"),
        ],
    )?;
    if let Some(go) = obj.get("goTemplate") {
        let at = format!("{path}.goTemplate");
        boolean(go, &at)?;
        if go.as_bool() == Some(true) {
            return Err(err(
                &at,
                "Go templates are not supported; use fasttemplate {{param}} placeholders",
            ));
        }
    }
    if let Some(sp) = obj.get("syncPolicy") {
        let at = format!("{path}.syncPolicy");
        let sp = object(sp, &at)?;
        keys(
            sp,
            &at,
            &["preserveResourcesOnDeletion", "applicationsSync"],
            &[],
        )?;
        if let Some(v) = sp.get("preserveResourcesOnDeletion") {
            boolean(v, &format!("{at}.preserveResourcesOnDeletion"))?;
        }
        if let Some(v) = sp.get("applicationsSync") {
            let p = format!("{at}.applicationsSync");
            match v.as_str() {
                Some("create-only" | "create-update" | "create-delete" | "sync") => {}
                _ => {
                    return Err(err(
                        &p,
                        "expected one of create-only, create-update, create-delete, sync",
                    ));
                }
            }
        }
    }
    let generators_path = format!("{path}.generators");
    let generators = obj
        .get("generators")
        .ok_or_else(|| err(&generators_path, "required"))?;
    let generators = array(generators, &generators_path)?;
    if generators.is_empty() {
        return Err(err(&generators_path, "at least one generator is required"));
    }
    for (i, g) in generators.iter().enumerate() {
        check_generator(g, &format!("{generators_path}[{i}]"), 0)?;
    }
    let template_path = format!("{path}.template");
    let template = obj
        .get("template")
        .ok_or_else(|| err(&template_path, "required"))?;
    check_template(template, &template_path)
}

fn check_template(t: &Value, path: &str) -> Res {
    let obj = object(t, path)?;
    keys(obj, path, &["metadata", "spec"], &[])?;
    let meta_path = format!("{path}.metadata");
    let meta = obj
        .get("metadata")
        .ok_or_else(|| err(&meta_path, "required"))?;
    let meta = object(meta, &meta_path)?;
    keys(
        meta,
        &meta_path,
        &["name", "labels", "annotations", "finalizers", "namespace"],
        &[],
    )?;
    match meta.get("name") {
        Some(n) => string(n, &format!("{meta_path}.name"))?,
        None => return Err(err(&format!("{meta_path}.name"), "required")),
    }
    for field in ["labels", "annotations"] {
        if let Some(v) = meta.get(field) {
            string_map(v, &format!("{meta_path}.{field}"))?;
        }
    }
    if let Some(f) = meta.get("finalizers") {
        let at = format!("{meta_path}.finalizers");
        for (i, v) in array(f, &at)?.iter().enumerate() {
            string(v, &format!("{at}[{i}]"))?;
        }
    }
    let spec_path = format!("{path}.spec");
    let spec = obj.get("spec").ok_or_else(|| err(&spec_path, "required"))?;
    check_application_spec(spec, &spec_path).map_err(|(p, m)| err(&p, m))
}

const UNSUPPORTED_GENERATORS: &[(&str, &str)] = &[
    ("scmProvider", "the scmProvider generator is not supported"),
    ("pullRequest", "the pullRequest generator is not supported"),
    (
        "clusterDecisionResource",
        "the clusterDecisionResource generator is not supported",
    ),
    ("plugin", "the plugin generator is not supported"),
    (
        "selector",
        "generator-level selectors (post-filters) are not supported",
    ),
];

const NO_TEMPLATE_OVERRIDE: (&str, &str) = (
    "template",
    "generator-level template overrides are not supported",
);

const KINDS: &[&str] = &["list", "clusters", "git", "matrix", "merge"];

pub(super) fn check_generator(g: &Value, path: &str, depth: usize) -> Res {
    let obj = object(g, path)?;
    keys(obj, path, KINDS, UNSUPPORTED_GENERATORS)?;
    let mut kinds = obj
        .iter()
        .filter(|(k, v)| KINDS.contains(&k.as_str()) && !v.is_null());
    let Some((kind, body)) = kinds.next() else {
        return Err(err(
            path,
            "empty generator: expected one of list, clusters, git, matrix, merge",
        ));
    };
    if let Some((other, _)) = kinds.next() {
        return Err(err(
            path,
            format!("a generator holds exactly one kind, found {kind} and {other}"),
        ));
    }
    let at = format!("{path}.{kind}");
    let body = object(body, &at)?;
    match kind.as_str() {
        "list" => {
            keys(
                body,
                &at,
                &["elements"],
                &[
                    NO_TEMPLATE_OVERRIDE,
                    ("elementsYaml", "elementsYaml is not supported"),
                ],
            )?;
            if let Some(e) = body.get("elements") {
                let ep = format!("{at}.elements");
                for (i, el) in array(e, &ep)?.iter().enumerate() {
                    object(el, &format!("{ep}[{i}]"))?;
                }
            }
        }
        "clusters" => {
            keys(
                body,
                &at,
                &["selector", "values"],
                &[
                    NO_TEMPLATE_OVERRIDE,
                    ("flatList", "flatList is not supported"),
                ],
            )?;
            if let Some(s) = body.get("selector") {
                check_selector(s, &format!("{at}.selector"))?;
            }
            if let Some(v) = body.get("values") {
                string_map(v, &format!("{at}.values"))?;
            }
        }
        "git" => check_git(body, &at)?,
        "matrix" | "merge" => {
            if depth >= 2 {
                return Err(err(&at, "combination generators nest at most two levels"));
            }
            let allowed: &[&str] = if kind == "matrix" {
                &["generators"]
            } else {
                &["generators", "mergeKeys"]
            };
            keys(body, &at, allowed, &[NO_TEMPLATE_OVERRIDE])?;
            let gp = format!("{at}.generators");
            let children = array(
                body.get("generators").ok_or_else(|| err(&gp, "required"))?,
                &gp,
            )?;
            if kind == "matrix" && children.len() != 2 {
                return Err(err(
                    &gp,
                    format!(
                        "a matrix generator takes exactly two generators, found {}",
                        children.len()
                    ),
                ));
            }
            if kind == "merge" {
                if children.len() < 2 {
                    return Err(err(&gp, "a merge generator takes at least two generators"));
                }
                let kp = format!("{at}.mergeKeys");
                let mk = array(
                    body.get("mergeKeys").ok_or_else(|| err(&kp, "required"))?,
                    &kp,
                )?;
                if mk.is_empty() {
                    return Err(err(&kp, "at least one merge key is required"));
                }
                for (i, k) in mk.iter().enumerate() {
                    string(k, &format!("{kp}[{i}]"))?;
                }
            }
            for (i, c) in children.iter().enumerate() {
                check_generator(c, &format!("{gp}[{i}]"), depth + 1)?;
            }
        }
        _ => return Err(err(&at, "unknown generator")),
    }
    Ok(())
}

fn check_git(body: &Map<String, Value>, at: &str) -> Res {
    keys(
        body,
        at,
        &[
            "repoURL",
            "revision",
            "directories",
            "files",
            "pathParamPrefix",
            "values",
        ],
        &[
            NO_TEMPLATE_OVERRIDE,
            (
                "requeueAfterSeconds",
                "requeueAfterSeconds is not supported",
            ),
        ],
    )?;
    match body.get("repoURL") {
        Some(v) => string(v, &format!("{at}.repoURL"))?,
        None => return Err(err(&format!("{at}.repoURL"), "required")),
    }
    for field in ["revision", "pathParamPrefix"] {
        if let Some(v) = body.get(field) {
            string(v, &format!("{at}.{field}"))?;
        }
    }
    if let Some(v) = body.get("values") {
        string_map(v, &format!("{at}.values"))?;
    }
    let mut present = Vec::new();
    for field in ["directories", "files"] {
        let Some(list) = body.get(field) else {
            continue;
        };
        let lp = format!("{at}.{field}");
        let list = array(list, &lp)?;
        if !list.is_empty() {
            present.push(field);
        }
        for (i, item) in list.iter().enumerate() {
            let ip = format!("{lp}[{i}]");
            let item = object(item, &ip)?;
            keys(item, &ip, &["path", "exclude"], &[])?;
            match item.get("path") {
                Some(p) => string(p, &format!("{ip}.path"))?,
                None => return Err(err(&format!("{ip}.path"), "required")),
            }
            if let Some(e) = item.get("exclude") {
                boolean(e, &format!("{ip}.exclude"))?;
            }
        }
    }
    match present.len() {
        0 => Err(err(at, "one of directories or files is required")),
        1 => Ok(()),
        _ => Err(err(at, "give either directories or files, not both")),
    }
}

fn check_selector(s: &Value, path: &str) -> Res {
    let obj = object(s, path)?;
    keys(obj, path, &["matchLabels", "matchExpressions"], &[])?;
    if let Some(m) = obj.get("matchLabels") {
        string_map(m, &format!("{path}.matchLabels"))?;
    }
    if let Some(e) = obj.get("matchExpressions") {
        let ep = format!("{path}.matchExpressions");
        for (i, r) in array(e, &ep)?.iter().enumerate() {
            let rp = format!("{ep}[{i}]");
            let r = object(r, &rp)?;
            keys(r, &rp, &["key", "operator", "values"], &[])?;
            match r.get("operator").and_then(Value::as_str) {
                Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
                _ => {
                    return Err(err(
                        &format!("{rp}.operator"),
                        "expected In, NotIn, Exists or DoesNotExist",
                    ));
                }
            }
        }
    }
    Ok(())
}
