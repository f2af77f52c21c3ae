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
    check_application_spec_warned(spec, path, &mut Vec::new())
}

/// Checks `source.helm`: Argo CD's fields, each list entry's keys.
fn check_helm_source(h: &Map<String, Value>, at: &str, warnings: &mut Vec<String>) -> CheckResult {
    check_keys(
        h,
        at,
        &[
            "releaseName",
            "valueFiles",
            "values",
            "valuesObject",
            "parameters",
            "fileParameters",
            "skipCrds",
            "skipSchemaValidation",
            "skipTests",
            "namespace",
            "kubeVersion",
            "apiVersions",
            "passCredentials",
            "ignoreMissingValueFiles",
            "version",
        ],
        &[],
    )?;
    if let Some(p) = h.get("parameters").filter(|v| !v.is_null()) {
        check_list_of_objects(p, &format!("{at}.parameters"), |o, at| {
            check_keys(o, at, &["name", "value", "forceString"], &[])
        })?;
    }
    if let Some(p) = h.get("fileParameters").filter(|v| !v.is_null()) {
        check_list_of_objects(p, &format!("{at}.fileParameters"), |o, at| {
            check_keys(o, at, &["name", "path"], &[])
        })?;
    }
    if let Some(files) = h.get("valueFiles").filter(|v| !v.is_null()) {
        for (i, f) in as_array(files, &format!("{at}.valueFiles"))?
            .iter()
            .enumerate()
        {
            let fp = format!("{at}.valueFiles[{i}]");
            // `$ref/…` files are checked against the app's refs with the converted spec.
            f.as_str().ok_or_else(|| fail(&fp, "expected a string"))?;
        }
    }
    if let Some(v) = h.get("version").and_then(Value::as_str)
        && !v.is_empty()
        && v != "v3"
    {
        warnings.push(format!(
            "{at}.version: {v} kept; edgecd renders with Helm v4 and Helm v3 chart semantics"
        ));
    }
    Ok(())
}

/// Sync options edgecd knows (Argo CD's), with the values each takes (empty: `true`/`false`).
const SYNC_OPTIONS: &[(&str, &[&str])] = &[
    ("CreateNamespace", &[]),
    ("PruneLast", &[]),
    ("ApplyOutOfSyncOnly", &[]),
    ("RespectIgnoreDifferences", &[]),
    ("Replace", &[]),
    ("Force", &[]),
    ("ServerSideApply", &[]),
    ("Validate", &[]),
    ("FailOnSharedResource", &[]),
    ("SkipDryRunOnMissingResource", &[]),
    ("ClientSideApplyMigration", &[]),
    ("Prune", &[]),
    ("Delete", &[]),
    (
        "PrunePropagationPolicy",
        &["foreground", "background", "orphan"],
    ),
];

/// Checks one `Key=value` sync option: a known key (case-insensitive, as edgecd reads them) and a valid value.
/// Returns a warning for options edgecd accepts without acting on them.
pub fn check_sync_option(option: &str) -> Result<Option<String>, String> {
    let Some((key, value)) = option.split_once('=') else {
        return Err(format!(
            "sync option {option:?} is not Key=value (e.g. CreateNamespace=true)"
        ));
    };
    let (key, value) = (key.trim(), value.trim());
    let Some((known, values)) = SYNC_OPTIONS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
    else {
        let names: Vec<&str> = SYNC_OPTIONS.iter().map(|(k, _)| *k).collect();
        return Err(format!(
            "unknown sync option {key:?} (edgecd knows {})",
            names.join(", ")
        ));
    };
    let ok = if values.is_empty() {
        value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
    } else {
        values.iter().any(|v| v.eq_ignore_ascii_case(value))
    };
    if !ok {
        let expected = if values.is_empty() {
            "true or false".to_owned()
        } else {
            values.join(", ")
        };
        return Err(format!("sync option {known}={value}: expected {expected}"));
    }
    let off = value.eq_ignore_ascii_case("false");
    Ok(match *known {
        "ServerSideApply" if off => Some(format!(
            "{known}=false: edgecd always applies with server-side apply (field manager edgecd)"
        )),
        "ClientSideApplyMigration" | "SkipDryRunOnMissingResource" => Some(format!(
            "{known}: accepted and ignored (edgecd applies server-side only and compares by dry run only when the object exists)"
        )),
        "Prune" | "Delete" => Some(format!(
            "{known}={value}: a per-resource option; set it on resources with the annotation argocd.argoproj.io/sync-options (ignored on the application)"
        )),
        _ => None,
    })
}

/// [`check_application_spec`] that also collects, in `warnings`, what is accepted but not acted on
/// (`path: why`).
pub fn check_application_spec_warned(
    spec: &Value,
    path: &str,
    warnings: &mut Vec<String>,
) -> CheckResult {
    let obj = as_object(spec, path)?;
    check_keys(
        obj,
        path,
        &[
            "project",
            "source",
            "sources",
            "sourceHydrator",
            "destination",
            "syncPolicy",
            "revisionHistoryLimit",
            "ignoreDifferences",
            "info",
        ],
        &[],
    )?;
    let source_path = format!("{path}.source");
    if let Some(hydrator) = obj.get("sourceHydrator").filter(|v| !v.is_null()) {
        let at = format!("{path}.sourceHydrator");
        // As Argo CD: with a source hydrator, `source` and `sources` are ignored.
        for key in ["source", "sources"] {
            if obj.get(key).is_some_and(|s| !s.is_null()) {
                warnings.push(format!(
                    "{path}.{key}: ignored, as Argo CD does, because {at} is set"
                ));
            }
        }
        let h = as_object(hydrator, &at)?;
        check_keys(h, &at, &["drySource", "syncSource", "hydrateTo"], &[])?;
        let dry_at = format!("{at}.drySource");
        let dry = h
            .get("drySource")
            .ok_or_else(|| fail(&dry_at, "required"))?;
        check_source_warned(as_object(dry, &dry_at)?, &dry_at, warnings)?;
        warnings.push(format!(
            "{at}: edgecd renders drySource itself at every spoke (what hydration would commit) and deploys it as spec.source; no hydrated manifests are written to syncSource.targetBranch"
        ));
    } else {
        match (
            obj.get("source"),
            obj.get("sources").filter(|v| !v.is_null()),
        ) {
            (source, Some(sources)) => {
                // As Argo CD: with `sources`, `source` is ignored.
                if source.is_some_and(|s| !s.is_null()) {
                    warnings.push(format!(
                        "{source_path}: ignored, as Argo CD does, because {path}.sources is set"
                    ));
                }
                let at = format!("{path}.sources");
                let list = as_array(sources, &at)?;
                if list.is_empty() {
                    return Err(fail(&at, "is empty; name at least one source"));
                }
                for (i, s) in list.iter().enumerate() {
                    let si = format!("{at}[{i}]");
                    check_source_warned(as_object(s, &si)?, &si, warnings)?;
                }
            }
            (Some(s), None) => {
                let s = as_object(s, &source_path)?;
                for key in ["ref", "name"] {
                    if s.contains_key(key) {
                        return Err(fail(
                            &format!("{source_path}.{key}"),
                            "names a source of a multi-source application; use spec.sources",
                        ));
                    }
                }
                check_source_warned(s, &source_path, warnings)?;
            }
            (None, None) => return Err(fail(&source_path, "required")),
        }
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
    if let Some(info) = obj.get("info").filter(|v| !v.is_null()) {
        check_list_of_objects(info, &format!("{path}.info"), |o, at| {
            check_keys(o, at, &["name", "value"], &[])
        })?;
    }
    if let Some(sp) = obj.get("syncPolicy").filter(|v| !v.is_null()) {
        let at = format!("{path}.syncPolicy");
        let sp = as_object(sp, &at)?;
        check_keys(
            sp,
            &at,
            &[
                "automated",
                "syncOptions",
                "retry",
                "managedNamespaceMetadata",
            ],
            &[],
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
        if let Some(options) = sp.get("syncOptions").filter(|v| !v.is_null()) {
            let op = format!("{at}.syncOptions");
            for (i, option) in as_array(options, &op)?.iter().enumerate() {
                let oi = format!("{op}[{i}]");
                let text = option
                    .as_str()
                    .ok_or_else(|| fail(&oi, "expected a string"))?;
                match check_sync_option(text) {
                    Ok(Some(warning)) => warnings.push(format!("{oi}: {warning}")),
                    Ok(None) => {}
                    Err(why) => return Err(fail(&oi, why)),
                }
            }
        }
        if let Some(m) = sp.get("managedNamespaceMetadata").filter(|v| !v.is_null()) {
            let mp = format!("{at}.managedNamespaceMetadata");
            check_keys(as_object(m, &mp)?, &mp, &["labels", "annotations"], &[])?;
        }
        if let Some(r) = sp.get("retry").filter(|v| !v.is_null()) {
            let rp = format!("{at}.retry");
            let r = as_object(r, &rp)?;
            check_keys(r, &rp, &["limit", "backoff", "refresh"], &[])?;
            if r.get("refresh").is_some_and(|v| !is_empty_value(v)) {
                warnings.push(format!(
                    "{rp}.refresh: accepted and ignored (every retry of edgecd renders the target revision again)"
                ));
            }
            if let Some(b) = r.get("backoff").filter(|v| !v.is_null()) {
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
    if let Some(ig) = obj.get("ignoreDifferences").filter(|v| !v.is_null()) {
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
                    "jqPathExpressions",
                    "managedFieldsManagers",
                ],
                &[],
            )?;
            if let Some(pointers) = o.get("jsonPointers").filter(|v| !v.is_null()) {
                for (i, p) in as_array(pointers, &format!("{at}.jsonPointers"))?
                    .iter()
                    .enumerate()
                {
                    let pp = format!("{at}.jsonPointers[{i}]");
                    let p = p.as_str().ok_or_else(|| fail(&pp, "expected a string"))?;
                    if !p.starts_with('/') {
                        return Err(fail(
                            &pp,
                            format!("{p:?} is not a JSON pointer (it starts with '/')"),
                        ));
                    }
                }
            }
            if let Some(exprs) = o.get("jqPathExpressions").filter(|v| !v.is_null()) {
                for (i, e) in as_array(exprs, &format!("{at}.jqPathExpressions"))?
                    .iter()
                    .enumerate()
                {
                    let ep = format!("{at}.jqPathExpressions[{i}]");
                    let e = e.as_str().ok_or_else(|| fail(&ep, "expected a string"))?;
                    crate::ignore::check_jq_path(e).map_err(|err| fail(&ep, err.to_string()))?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

pub(crate) fn check_source_warned(
    src: &Map<String, Value>,
    path: &str,
    warnings: &mut Vec<String>,
) -> CheckResult {
    check_keys(
        src,
        path,
        &[
            "repoURL",
            "targetRevision",
            "path",
            "directory",
            "kustomize",
            "helm",
            "chart",
            "ref",
            "name",
        ],
        &[(
            "plugin",
            "config management plugins are not supported: a spoke runs no external programs; render the manifests in CI and point the source at them",
        )],
    )?;
    if let Some(h) = src.get("helm").filter(|v| !v.is_null()) {
        check_helm_source(
            as_object(h, &format!("{path}.helm"))?,
            &format!("{path}.helm"),
            warnings,
        )?;
    }
    if let Some(d) = src.get("directory").filter(|v| !v.is_null()) {
        let at = format!("{path}.directory");
        let d = as_object(d, &at)?;
        check_keys(d, &at, &["recurse", "include", "exclude", "jsonnet"], &[])?;
        if let Some(j) = d.get("jsonnet").filter(|v| !v.is_null()) {
            check_jsonnet(j, &format!("{at}.jsonnet"))?;
        }
    }
    if let Some(k) = src.get("kustomize").filter(|v| !v.is_null()) {
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
                "commonAnnotationsEnvsubst",
                "images",
                "namespace",
                "replicas",
                "patches",
                "components",
                "ignoreMissingComponents",
                "labelWithoutSelector",
                "labelIncludeTemplates",
                "forceCommonLabels",
                "forceCommonAnnotations",
                "version",
                "kubeVersion",
                "apiVersions",
            ],
            &[],
        )?;
        if let Some(r) = k.get("replicas").filter(|v| !v.is_null()) {
            check_list_of_objects(r, &format!("{at}.replicas"), |o, at| {
                check_keys(o, at, &["name", "count"], &[])
            })?;
        }
        if let Some(p) = k.get("patches").filter(|v| !v.is_null()) {
            check_list_of_objects(p, &format!("{at}.patches"), |o, at| {
                check_keys(o, at, &["path", "patch", "target", "options"], &[])?;
                if o.get("path").is_some() == o.get("patch").is_some() {
                    return Err(fail(at, "a patch needs exactly one of path and patch"));
                }
                if let Some(path) = o.get("path").and_then(Value::as_str) {
                    crate::app::check_source_path(path)
                        .map_err(|m| fail(&format!("{at}.path"), m))?;
                }
                Ok(())
            })?;
        }
        if let Some(c) = k.get("components").filter(|v| !v.is_null()) {
            for (i, item) in as_array(c, &format!("{at}.components"))?.iter().enumerate() {
                let cp = format!("{at}.components[{i}]");
                let text = item
                    .as_str()
                    .ok_or_else(|| fail(&cp, "expected a string"))?;
                if text.starts_with('/') || text.contains("://") {
                    return Err(fail(
                        &cp,
                        format!(
                            "{text:?}: components are directories of the repository, relative to the kustomization"
                        ),
                    ));
                }
            }
        }
        if let Some(v) = k.get("version").filter(|v| !is_empty_value(v)) {
            warnings.push(format!(
                "{at}.version: {} kept; edgecd renders with its native kustomize v5.5",
                v.as_str().unwrap_or("?")
            ));
        }
        for key in ["kubeVersion", "apiVersions"] {
            if k.get(key).is_some_and(|v| !is_empty_value(v)) {
                warnings.push(format!(
                    "{at}.{key}: accepted and ignored (it only reaches Helm charts inflated by kustomize, which edgecd does not run)"
                ));
            }
        }
    }
    Ok(())
}

/// Argo CD's `directory.jsonnet`: `extVars` and `tlas` (`{name, value, code}`), `libs` (repository paths).
fn check_jsonnet(j: &Value, at: &str) -> CheckResult {
    let j = as_object(j, at)?;
    check_keys(j, at, &["extVars", "tlas", "libs"], &[])?;
    for key in ["extVars", "tlas"] {
        if let Some(list) = j.get(key).filter(|v| !v.is_null()) {
            check_list_of_objects(list, &format!("{at}.{key}"), |var, vp| {
                check_keys(var, vp, &["name", "value", "code"], &[])?;
                match var.get("name").and_then(Value::as_str) {
                    Some(name) if !name.is_empty() => Ok(()),
                    _ => Err(fail(&format!("{vp}.name"), "a name is required")),
                }
            })?;
        }
    }
    if let Some(libs) = j.get("libs").filter(|v| !v.is_null()) {
        for (i, lib) in as_array(libs, &format!("{at}.libs"))?.iter().enumerate() {
            let lp = format!("{at}.libs[{i}]");
            let text = lib.as_str().ok_or_else(|| fail(&lp, "expected a string"))?;
            let mut depth = 0i32;
            for part in text.split('/') {
                match part {
                    "" | "." => {}
                    ".." => depth -= 1,
                    _ => depth += 1,
                }
                if depth < 0 {
                    break;
                }
            }
            if text.starts_with('/') || text.contains("://") || depth < 0 {
                return Err(fail(
                    &lp,
                    format!(
                        "{text:?}: library paths are directories of the repository, relative to its root"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Argo CD spellings edgecd's types do not carry: drops `syncPolicy.automated` when `enabled: false` (Argo 3's
/// way to turn it off) and `enabled` otherwise, `syncPolicy.retry.refresh`, the kustomize `kubeVersion` and
/// `apiVersions` (Helm only), an empty `directory.jsonnet` (Argo CD writes `{}` by default); moves `syncPolicy.managedNamespaceMetadata` to
/// `managedNamespaceMetadata` beside `syncPolicy` (where edgecd's spec keeps it).
pub(crate) fn normalize_application_spec(spec: &mut Value) {
    let Some(obj) = spec.as_object_mut() else {
        return;
    };
    let mut managed = None;
    if let Some(Value::Object(sp)) = obj.get_mut("syncPolicy") {
        let disabled = match sp.get_mut("automated") {
            Some(Value::Object(a)) => a.remove("enabled") == Some(Value::Bool(false)),
            Some(Value::Null) => true,
            _ => false,
        };
        if disabled {
            sp.remove("automated");
        }
        if let Some(Value::Object(r)) = sp.get_mut("retry") {
            r.remove("refresh");
        }
        managed = sp
            .remove("managedNamespaceMetadata")
            .filter(|m| !m.is_null());
    }
    if let Some(managed) = managed {
        obj.insert("managedNamespaceMetadata".into(), managed);
    }
    // As Argo CD: with `sources`, `source` is ignored.
    if obj.get("sources").is_some_and(|s| !s.is_null()) {
        obj.remove("source");
    }
    // The source hydrator's dry source is what edgecd renders (see check_application_spec_warned); with it,
    // Argo CD ignores `source` and `sources`.
    if let Some(Value::Object(mut hydrator)) = obj.remove("sourceHydrator")
        && let Some(dry) = hydrator.remove("drySource")
    {
        obj.remove("sources");
        obj.insert("source".into(), dry);
    }
    if let Some(Value::Object(src)) = obj.get_mut("source") {
        normalize_source(src);
    }
    if let Some(Value::Array(sources)) = obj.get_mut("sources") {
        for src in sources {
            if let Value::Object(src) = src {
                normalize_source(src);
            }
        }
    }
}

/// [`normalize_application_spec`] for one source.
fn normalize_source(src: &mut serde_json::Map<String, Value>) {
    // Argo CD's spelling of a Helm chart of an OCI registry: `repoURL: registry/path` (no scheme) with `chart`.
    let has_chart = src
        .get("chart")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty());
    let registry_host = |url: &str| {
        !url.contains("://")
            && !url.contains('@')
            && url
                .split('/')
                .next()
                .is_some_and(|host| host.contains('.') || host.contains(':') || host == "localhost")
    };
    if has_chart
        && let Some(Value::String(url)) = src.get_mut("repoURL")
        && registry_host(url)
    {
        *url = format!("oci://{url}");
    }
    // Argo CD's other spelling, with a Helm OCI repository credential: `repoURL: registry` (a bare host, no
    // scheme, no path) and the image in `path`, no `chart`: the OCI artifact `oci://registry/path`, its root
    // the source's path. A host with a path (`github.com/org/repo`) is left as written (and refused as a URL).
    let path = src
        .get("path")
        .and_then(Value::as_str)
        .map(|p| p.trim_matches('/').to_owned())
        .filter(|p| !p.is_empty() && p != "." && !p.split('/').any(|c| c == ".." || c == "."));
    if !has_chart
        && let Some(path) = path
        && let Some(Value::String(url)) = src.get_mut("repoURL")
        && registry_host(url)
        && !url.trim_end_matches('/').contains('/')
    {
        *url = format!("oci://{}/{path}", url.trim_end_matches('/'));
        src.insert("path".into(), Value::String(".".into()));
    }
    if let Some(Value::Object(k)) = src.get_mut("kustomize") {
        k.remove("kubeVersion");
        k.remove("apiVersions");
    }
    if let Some(Value::Object(d)) = src.get_mut("directory")
        && d.get("jsonnet").is_some_and(|j| {
            is_empty_value(j)
                || j.as_object()
                    .is_some_and(|o| o.values().all(is_empty_value))
        })
    {
        d.remove("jsonnet");
    }
    // Argo CD also takes `helm.values` written as a mapping: it is `valuesObject` then.
    if let Some(Value::Object(h)) = src.get_mut("helm")
        && h.get("values").is_some_and(Value::is_object)
        && let Some(values) = h.remove("values")
    {
        h.entry("valuesObject").or_insert(values);
    }
}
