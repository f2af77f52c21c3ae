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

/// A list of strings; an item that is not one is refused at `path[i]`.
fn strings<'v>(v: &'v Value, path: &str) -> Result<Vec<&'v str>, AppSetError> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .ok_or_else(|| err(&format!("{path}[{i}]"), "expected a string"))
        })
        .collect()
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
        &[
            "generators",
            "template",
            "goTemplate",
            "goTemplateOptions",
            "templatePatch",
            "syncPolicy",
            "preservedFields",
            "ignoreApplicationDifferences",
            "applyNestedSelectors",
            "strategy",
        ],
        &[],
    )?;
    if let Some(strategy) = obj.get("strategy") {
        check_strategy(strategy, &format!("{path}.strategy"))?;
    }
    if let Some(go) = obj.get("goTemplate") {
        boolean(go, &format!("{path}.goTemplate"))?;
    }
    if let Some(v) = obj.get("applyNestedSelectors") {
        // Argo CD applies nested selectors whatever this says (the field is deprecated); so does edgecd.
        boolean(v, &format!("{path}.applyNestedSelectors"))?;
    }
    if let Some(opts) = obj.get("goTemplateOptions") {
        let at = format!("{path}.goTemplateOptions");
        let options: Vec<String> = strings(opts, &at)?.into_iter().map(str::to_owned).collect();
        edgecd_gotmpl::Options::from_go_template_options(&options)
            .map_err(|e| err(&at, e.to_string()))?;
    }
    if let Some(patch) = obj.get("templatePatch") {
        let at = format!("{path}.templatePatch");
        let Some(text) = patch.as_str() else {
            return Err(err(&at, "expected a string (a template rendering to YAML)"));
        };
        if obj.get("goTemplate").and_then(Value::as_bool) == Some(true) {
            edgecd_gotmpl::Template::parse(text).map_err(|e| err(&at, e.to_string()))?;
        }
    }
    if let Some(pf) = obj.get("preservedFields") {
        let at = format!("{path}.preservedFields");
        let pf = object(pf, &at)?;
        keys(pf, &at, &["annotations", "labels"], &[])?;
        for field in ["annotations", "labels"] {
            if let Some(list) = pf.get(field) {
                strings(list, &format!("{at}.{field}"))?;
            }
        }
    }
    if let Some(rules) = obj.get("ignoreApplicationDifferences") {
        let at = format!("{path}.ignoreApplicationDifferences");
        for (i, rule) in array(rules, &at)?.iter().enumerate() {
            let rp = format!("{at}[{i}]");
            let rule = object(rule, &rp)?;
            keys(
                rule,
                &rp,
                &["name", "names", "jsonPointers", "jqPathExpressions"],
                &[],
            )?;
            if let Some(n) = rule.get("name") {
                string(n, &format!("{rp}.name"))?;
            }
            if let Some(list) = rule.get("jqPathExpressions") {
                let lp = format!("{rp}.jqPathExpressions");
                for (j, text) in strings(list, &lp)?.into_iter().enumerate() {
                    crate::ignore::check_jq_path(text)
                        .map_err(|e| err(&format!("{lp}[{j}]"), e.to_string()))?;
                }
            }
            for field in ["names", "jsonPointers"] {
                if let Some(list) = rule.get(field) {
                    let lp = format!("{rp}.{field}");
                    for (j, text) in strings(list, &lp)?.into_iter().enumerate() {
                        if field == "jsonPointers" && !(text.is_empty() || text.starts_with('/')) {
                            return Err(err(
                                &format!("{lp}[{j}]"),
                                "a JSON pointer starts with / (e.g. /spec/source/targetRevision)",
                            ));
                        }
                    }
                }
            }
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
    check_template(template, &template_path)?;
    // A top-level generator's own template merged over the set's must make a whole Application template.
    for (i, g) in generators.iter().enumerate() {
        let Some((kind, Value::Object(body))) = g
            .as_object()
            .and_then(|g| g.iter().find(|(k, _)| KINDS.contains(&k.as_str())))
        else {
            continue;
        };
        if let Some(own) = body.get("template").filter(|t| !t.is_null()) {
            let at = format!("{generators_path}[{i}].{kind}.template");
            check_generator_template(own, &at)?;
            let merged = super::eval::merge_template_json(own, template);
            check_template(&merged, &at)?;
        }
    }
    Ok(())
}

/// A generator's `template`: the shape of a template, every field optional.
/// `strategy`: `AllAtOnce`, or `RollingSync` with at least one step; each step's expressions use `In` or
/// `NotIn`, and its `maxUpdate` is a number of apps or a percentage.
fn check_strategy(v: &Value, path: &str) -> Res {
    use super::rollout::{MAX_EXPRESSIONS, MAX_STEPS, MAX_VALUES, MaxUpdate, ROLLING_SYNC};
    let obj = object(v, path)?;
    keys(obj, path, &["type", "rollingSync", "deletionOrder"], &[])?;
    let kind = match obj.get("type") {
        None => "",
        Some(t) => t
            .as_str()
            .ok_or_else(|| err(&format!("{path}.type"), "expected a string"))?,
    };
    if !matches!(kind, "" | "AllAtOnce" | ROLLING_SYNC) {
        return Err(err(
            &format!("{path}.type"),
            format!("unknown strategy {kind:?}: AllAtOnce or RollingSync"),
        ));
    }
    if let Some(order) = obj.get("deletionOrder") {
        let at = format!("{path}.deletionOrder");
        let order = order
            .as_str()
            .ok_or_else(|| err(&at, "expected a string"))?;
        if order.eq_ignore_ascii_case("Reverse") {
            return Err(err(
                &at,
                "Reverse is not supported: the hub deletes a set's applications together, and the spokes delete their resources on their own; \
                 it cannot wait for one step's resources to be gone before the next (remove AllAtOnce apps step by step by changing the set's generators instead)",
            ));
        }
        if !order.is_empty() && !order.eq_ignore_ascii_case("AllAtOnce") {
            return Err(err(
                &at,
                format!("unknown deletion order {order:?}: AllAtOnce"),
            ));
        }
    }
    let steps = match obj.get("rollingSync") {
        None => None,
        Some(r) => {
            let at = format!("{path}.rollingSync");
            let r = object(r, &at)?;
            keys(r, &at, &["steps"], &[])?;
            r.get("steps")
                .map(|s| array(s, &format!("{at}.steps")))
                .transpose()?
        }
    };
    let steps = steps.map_or(&[][..], Vec::as_slice);
    if kind == ROLLING_SYNC && steps.is_empty() {
        return Err(err(
            &format!("{path}.rollingSync.steps"),
            "a RollingSync strategy needs at least one step",
        ));
    }
    if steps.len() > MAX_STEPS {
        return Err(err(
            &format!("{path}.rollingSync.steps"),
            format!("at most {MAX_STEPS} steps ({} given)", steps.len()),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{path}.rollingSync.steps[{i}]");
        let step = object(step, &at)?;
        keys(step, &at, &["matchExpressions", "maxUpdate"], &[])?;
        if let Some(exprs) = step.get("matchExpressions") {
            let at = format!("{at}.matchExpressions");
            let exprs = array(exprs, &at)?;
            if exprs.len() > MAX_EXPRESSIONS {
                return Err(err(
                    &at,
                    format!(
                        "at most {MAX_EXPRESSIONS} expressions ({} given)",
                        exprs.len()
                    ),
                ));
            }
            for (j, e) in exprs.iter().enumerate() {
                let at = format!("{at}[{j}]");
                let e = object(e, &at)?;
                keys(e, &at, &["key", "operator", "values"], &[])?;
                match e.get("key").and_then(Value::as_str) {
                    Some(k) if !k.is_empty() && k.len() <= 317 => {}
                    Some(k) if !k.is_empty() => {
                        return Err(err(
                            &format!("{at}.key"),
                            "longer than a label key can be (317 bytes)",
                        ));
                    }
                    _ => return Err(err(&format!("{at}.key"), "a label key is required")),
                }
                match e.get("operator").and_then(Value::as_str) {
                    Some("In" | "NotIn") => {}
                    other => {
                        return Err(err(
                            &format!("{at}.operator"),
                            format!(
                                "{}: a rollout step selects apps with In or NotIn",
                                other.map_or_else(|| "missing".to_owned(), |o| format!("{o:?}"))
                            ),
                        ));
                    }
                }
                if let Some(values) = e.get("values") {
                    let values = strings(values, &format!("{at}.values"))?;
                    if values.len() > MAX_VALUES {
                        return Err(err(
                            &format!("{at}.values"),
                            format!("at most {MAX_VALUES} values ({} given)", values.len()),
                        ));
                    }
                    if let Some(k) = values.iter().position(|v| v.len() > 63) {
                        return Err(err(
                            &format!("{at}.values[{k}]"),
                            "longer than a label value can be (63 bytes)",
                        ));
                    }
                }
            }
        }
        if let Some(m) = step.get("maxUpdate") {
            let at = format!("{at}.maxUpdate");
            let valid = match m {
                Value::Number(n) => n.as_u64().is_some(),
                Value::String(s) => MaxUpdate::percent(s).is_some(),
                _ => false,
            };
            if !valid {
                return Err(err(
                    &at,
                    format!(
                        "{m}: a number of applications (0 or more) or a percentage of the step's (10%)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_generator_template(t: &Value, path: &str) -> Res {
    let obj = object(t, path)?;
    keys(obj, path, &["metadata", "spec"], &[])?;
    if let Some(meta) = obj.get("metadata") {
        let meta_path = format!("{path}.metadata");
        let meta = object(meta, &meta_path)?;
        keys(
            meta,
            &meta_path,
            &["name", "labels", "annotations", "finalizers", "namespace"],
            &[],
        )?;
    }
    if let Some(spec) = obj.get("spec") {
        object(spec, &format!("{path}.spec"))?;
    }
    Ok(())
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
        strings(f, &format!("{meta_path}.finalizers"))?;
    }
    let spec_path = format!("{path}.spec");
    let spec = obj.get("spec").ok_or_else(|| err(&spec_path, "required"))?;
    check_application_spec(spec, &spec_path).map_err(|(p, m)| err(&p, m))
}

const UNSUPPORTED_GENERATORS: &[(&str, &str)] = &[
    ("scmProvider", "the scmProvider generator is not supported"),
    ("pullRequest", "the pullRequest generator is not supported"),
    ("plugin", "the plugin generator is not supported"),
];

const KINDS: &[&str] = &[
    "list",
    "clusters",
    "git",
    "matrix",
    "merge",
    "clusterDecisionResource",
];

pub(super) fn check_generator(g: &Value, path: &str, depth: usize) -> Res {
    let obj = object(g, path)?;
    let mut allowed = KINDS.to_vec();
    allowed.push("selector");
    keys(obj, path, &allowed, UNSUPPORTED_GENERATORS)?;
    if let Some(s) = obj.get("selector").filter(|s| !s.is_null()) {
        check_selector(s, &format!("{path}.selector"))?;
    }
    let mut kinds = obj
        .iter()
        .filter(|(k, v)| KINDS.contains(&k.as_str()) && !v.is_null());
    let Some((kind, body)) = kinds.next() else {
        return Err(err(
            path,
            "empty generator: expected one of list, clusters, git, matrix, merge, clusterDecisionResource",
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
            keys(body, &at, &["elements", "elementsYaml", "template"], &[])?;
            if let Some(e) = body.get("elements") {
                let ep = format!("{at}.elements");
                for (i, el) in array(e, &ep)?.iter().enumerate() {
                    object(el, &format!("{ep}[{i}]"))?;
                }
            }
            if let Some(y) = body.get("elementsYaml") {
                string(y, &format!("{at}.elementsYaml"))?;
            }
        }
        "clusters" => {
            keys(
                body,
                &at,
                &["selector", "values", "flatList", "template"],
                &[],
            )?;
            if let Some(v) = body.get("flatList") {
                boolean(v, &format!("{at}.flatList"))?;
            }
            if let Some(s) = body.get("selector") {
                check_selector(s, &format!("{at}.selector"))?;
            }
            if let Some(v) = body.get("values") {
                string_map(v, &format!("{at}.values"))?;
            }
        }
        "git" => check_git(body, &at)?,
        "clusterDecisionResource" => {
            keys(
                body,
                &at,
                &[
                    "configMapRef",
                    "name",
                    "labelSelector",
                    "values",
                    "requeueAfterSeconds",
                    "template",
                ],
                &[],
            )?;
            let cp = format!("{at}.configMapRef");
            match body.get("configMapRef") {
                Some(Value::String(name)) if !name.is_empty() => {}
                Some(v) if !v.is_null() && !v.is_string() => string(v, &cp)?,
                _ => {
                    return Err(err(
                        &cp,
                        "required: the ConfigMap that names the resources' kind",
                    ));
                }
            }
            if let Some(v) = body.get("name").filter(|v| !v.is_null()) {
                string(v, &format!("{at}.name"))?;
            }
            if let Some(s) = body.get("labelSelector").filter(|s| !s.is_null()) {
                check_selector(s, &format!("{at}.labelSelector"))?;
            }
            if let Some(v) = body.get("values").filter(|v| !v.is_null()) {
                string_map(v, &format!("{at}.values"))?;
            }
            if let Some(v) = body.get("requeueAfterSeconds").filter(|v| !v.is_null())
                && !v.is_u64()
            {
                return Err(err(
                    &format!("{at}.requeueAfterSeconds"),
                    "expected a number of seconds",
                ));
            }
        }
        "matrix" | "merge" => {
            if depth >= 2 {
                return Err(err(&at, "combination generators nest at most two levels"));
            }
            let allowed: &[&str] = if kind == "matrix" {
                &["generators", "template"]
            } else {
                &["generators", "mergeKeys", "template"]
            };
            keys(body, &at, allowed, &[])?;
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
                let mk = strings(
                    body.get("mergeKeys").ok_or_else(|| err(&kp, "required"))?,
                    &kp,
                )?;
                if mk.is_empty() {
                    return Err(err(&kp, "at least one merge key is required"));
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
            "template",
            "requeueAfterSeconds",
        ],
        &[],
    )?;
    if let Some(v) = body.get("requeueAfterSeconds")
        && !v.is_u64()
    {
        return Err(err(
            &format!("{at}.requeueAfterSeconds"),
            "expected a whole number of seconds",
        ));
    }
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
    // Both given: directories win, as in Argo CD (its generator reads `files` only without `directories`).
    if present.is_empty() {
        return Err(err(at, "one of directories or files is required"));
    }
    Ok(())
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
