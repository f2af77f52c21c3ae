//! The checks of an Argo CD `Application` spec as JSON (every field edgecd does not support refused by name, Argo spellings normalised), shared by the Argo CD import and the ApplicationSet templates, so that neither needs the other.

use serde_json::{Map, Value};

/// Whether a value is absent in effect (`null`, `false`, `""`, `[]`, `{}`, `0`): refused fields holding one are tolerated.
pub(crate) fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

pub(crate) type CheckResult = Result<(), (String, String)>;

pub(crate) fn fail(path: &str, message: impl Into<String>) -> (String, String) {
    (path.to_owned(), message.into())
}

pub(crate) fn as_object<'v>(
    v: &'v Value,
    path: &str,
) -> Result<&'v Map<String, Value>, (String, String)> {
    v.as_object()
        .ok_or_else(|| fail(path, "expected an object"))
}

pub(crate) fn as_array<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>, (String, String)> {
    v.as_array().ok_or_else(|| fail(path, "expected a list"))
}

/// Refuses keys outside `allowed`; `refused` keys get their specific reason unless their value is empty.
pub(crate) fn check_keys(
    obj: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    refused: &[(&str, &str)],
) -> CheckResult {
    for (k, v) in obj {
        if allowed.contains(&k.as_str()) {
            continue;
        }
        let at = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        if let Some((_, why)) = refused.iter().find(|(r, _)| r == k) {
            if is_empty_value(v) {
                continue;
            }
            return Err(fail(&at, *why));
        }
        return Err(fail(&at, "unknown or unsupported field"));
    }
    Ok(())
}

pub(crate) fn check_list_of_objects(
    v: &Value,
    path: &str,
    each: impl Fn(&Map<String, Value>, &str) -> CheckResult,
) -> CheckResult {
    for (i, item) in as_array(v, path)?.iter().enumerate() {
        let at = format!("{path}[{i}]");
        each(as_object(item, &at)?, &at)?;
    }
    Ok(())
}

/// Strict walk of an Application spec JSON (also used on ApplicationSet templates): every field edgecd does not support is refused, naming its path under `path`. Types of scalars are left to deserialization.
pub fn check_application_spec(spec: &Value, path: &str) -> CheckResult {
    let obj = as_object(spec, path)?;
    check_keys(
        obj,
        path,
        &[
            "project",
            "source",
            "destination",
            "syncPolicy",
            "revisionHistoryLimit",
            "ignoreDifferences",
            "info",
        ],
        &[(
            "sources",
            "multi-source applications are not supported; use a single spec.source",
        )],
    )?;
    let source_path = format!("{path}.source");
    match obj.get("source") {
        Some(s) => check_source(as_object(s, &source_path)?, &source_path)?,
        None => return Err(fail(&source_path, "required")),
    }
    if let Some(d) = obj.get("destination") {
        let at = format!("{path}.destination");
        check_keys(
            as_object(d, &at)?,
            &at,
            &["server", "name", "namespace"],
            &[],
        )?;
    }
    if let Some(sp) = obj.get("syncPolicy") {
        let at = format!("{path}.syncPolicy");
        let sp = as_object(sp, &at)?;
        check_keys(
            sp,
            &at,
            &["automated", "syncOptions", "retry"],
            &[(
                "managedNamespaceMetadata",
                "managedNamespaceMetadata is not supported",
            )],
        )?;
        if let Some(a) = sp.get("automated") {
            let ap = format!("{at}.automated");
            if !a.is_null() {
                check_keys(
                    as_object(a, &ap)?,
                    &ap,
                    &["prune", "selfHeal", "allowEmpty", "enabled"],
                    &[],
                )?;
            }
        }
        if let Some(r) = sp.get("retry") {
            let rp = format!("{at}.retry");
            let r = as_object(r, &rp)?;
            check_keys(r, &rp, &["limit", "backoff"], &[])?;
            if let Some(b) = r.get("backoff") {
                let bp = format!("{rp}.backoff");
                check_keys(
                    as_object(b, &bp)?,
                    &bp,
                    &["duration", "factor", "maxDuration"],
                    &[],
                )?;
            }
        }
    }
    if let Some(ig) = obj.get("ignoreDifferences") {
        check_list_of_objects(ig, &format!("{path}.ignoreDifferences"), |o, at| {
            check_keys(
                o,
                at,
                &[
                    "group",
                    "kind",
                    "name",
                    "namespace",
                    "jsonPointers",
                    "managedFieldsManagers",
                ],
                &[(
                    "jqPathExpressions",
                    "jqPathExpressions are not supported; use jsonPointers",
                )],
            )
        })?;
    }
    Ok(())
}

pub(crate) fn check_source(src: &Map<String, Value>, path: &str) -> CheckResult {
    check_keys(
        src,
        path,
        &[
            "repoURL",
            "targetRevision",
            "path",
            "directory",
            "kustomize",
        ],
        &[
            ("helm", "Helm sources are not supported"),
            ("chart", "Helm charts are not supported"),
            ("plugin", "config management plugins are not supported"),
            ("ref", "source refs (multi-source) are not supported"),
            ("name", "named sources are not supported"),
        ],
    )?;
    if let Some(d) = src.get("directory") {
        let at = format!("{path}.directory");
        check_keys(
            as_object(d, &at)?,
            &at,
            &["recurse", "include", "exclude"],
            &[("jsonnet", "jsonnet is not supported")],
        )?;
    }
    if let Some(k) = src.get("kustomize") {
        let at = format!("{path}.kustomize");
        let k = as_object(k, &at)?;
        check_keys(
            k,
            &at,
            &[
                "namePrefix",
                "nameSuffix",
                "commonLabels",
                "commonAnnotations",
                "images",
                "namespace",
                "replicas",
            ],
            &[],
        )?;
        if let Some(r) = k.get("replicas") {
            check_list_of_objects(r, &format!("{at}.replicas"), |o, at| {
                check_keys(o, at, &["name", "count"], &[])
            })?;
        }
    }
    Ok(())
}

/// Argo CD spellings edgecd's types do not carry: drops `info`, and `syncPolicy.automated` when `enabled: false` (Argo 3's way to turn it off); drops `enabled` otherwise.
pub(crate) fn normalize_application_spec(spec: &mut Value) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    obj.remove("info");
    if let Some(Value::Object(sp)) = obj.get_mut("syncPolicy") {
        let disabled = match sp.get_mut("automated") {
            Some(Value::Object(a)) => a.remove("enabled") == Some(Value::Bool(false)),
            Some(Value::Null) => true,
            _ => false,
        };
        if disabled {
            sp.remove("automated");
        }
    }
}
