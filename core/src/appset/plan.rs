//! The reconcile plan: which generated apps to create or update and which owned apps to delete, as the set's `applicationsSync` policy allows, keeping what `preservedFields` and `ignoreApplicationDifferences` protect.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{ApplicationSetSpec, ExistingApp, GeneratedApp, Plan};

/// Compares existing apps with generated ones. Every policy creates missing apps; `create-update` and `sync` also update changed ones (spec, labels, annotations, project); `create-delete` and `sync` also delete owned apps no longer generated. Apps not owned by the set are never touched: a generated name that collides with one is a conflict. Before an existing app is compared, the labels and annotations named by `preservedFields` and the fields named by `ignoreApplicationDifferences` keep their current values.
pub fn plan(
    spec: &ApplicationSetSpec,
    existing: &[ExistingApp],
    generated: Vec<GeneratedApp>,
) -> Plan {
    let policy = spec.applications_sync();
    let by_name: BTreeMap<&str, &ExistingApp> =
        existing.iter().map(|e| (e.name.as_str(), e)).collect();
    let generated_names: BTreeSet<String> = generated.iter().map(|g| g.name.clone()).collect();
    let mut out = Plan::default();
    for app in generated {
        match by_name.get(app.name.as_str()) {
            None => out.create.push(app),
            Some(current) if !current.owned_by_this_set => out.conflicts.push((
                app.name.clone(),
                format!(
                    "application {} already exists and is not owned by this application set",
                    app.name
                ),
            )),
            Some(current) => {
                let app = keep_existing(spec, current, app);
                let changed = current.spec != app.spec
                    || current.labels != app.labels
                    || current.annotations != app.annotations
                    || current.project != app.project;
                if changed && policy.allows_update() {
                    out.update.push(app);
                } else {
                    out.unchanged.push(app.name);
                }
            }
        }
    }
    for current in existing {
        if current.owned_by_this_set && !generated_names.contains(&current.name) {
            if policy.allows_delete() {
                out.delete.push(current.name.clone());
            } else {
                out.unchanged.push(current.name.clone());
            }
        }
    }
    out.create.sort_by(|a, b| a.name.cmp(&b.name));
    out.update.sort_by(|a, b| a.name.cmp(&b.name));
    out.delete.sort();
    out.delete.dedup();
    out.unchanged.sort();
    out.unchanged.dedup();
    out.conflicts.sort();
    out
}

/// The generated app with what the set leaves alone on update taken from the existing app.
fn keep_existing(
    spec: &ApplicationSetSpec,
    current: &ExistingApp,
    mut app: GeneratedApp,
) -> GeneratedApp {
    if let Some(preserved) = &spec.preserved_fields {
        for key in &preserved.annotations {
            if let Some(v) = current.annotations.get(key) {
                app.annotations.insert(key.clone(), v.clone());
            }
        }
        for key in &preserved.labels {
            if let Some(v) = current.labels.get(key) {
                app.labels.insert(key.clone(), v.clone());
            }
        }
    }
    let rules: Vec<_> = spec
        .ignore_application_differences
        .iter()
        .filter(|rule| {
            (rule.name.is_empty() && rule.names.is_empty())
                || rule.name == app.name
                || rule.names.contains(&app.name)
        })
        .collect();
    if rules
        .iter()
        .all(|r| r.json_pointers.is_empty() && r.jq_path_expressions.is_empty())
    {
        return app;
    }
    let as_json = |labels: &BTreeMap<String, String>,
                   annotations: &BTreeMap<String, String>,
                   spec: &crate::app::ApplicationSpec| {
        serde_json::json!({
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": spec,
        })
    };
    let live = as_json(&current.labels, &current.annotations, &current.spec);
    let mut wanted = as_json(&app.labels, &app.annotations, &app.spec);
    // A jq expression names the fields it selects in either app (an expression failing on one selects nothing
    // there, as Argo CD leaves the app as it is).
    let mut pointers: Vec<String> = Vec::new();
    for rule in &rules {
        pointers.extend(rule.json_pointers.iter().cloned());
        for expression in &rule.jq_path_expressions {
            for doc in [&live, &wanted] {
                pointers.extend(crate::ignore::jq_paths(doc, expression).unwrap_or_default());
            }
        }
    }
    pointers.sort();
    pointers.dedup();
    for pointer in &pointers {
        let pointer = pointer.as_str();
        match live.pointer(pointer) {
            Some(v) => set_pointer(&mut wanted, pointer, v.clone()),
            None => crate::ignore::delete_pointer(&mut wanted, pointer),
        }
    }
    let field = |name: &str| wanted.pointer(name).cloned().unwrap_or(Value::Null);
    let labels = serde_json::from_value(field("/metadata/labels"));
    let annotations = serde_json::from_value(field("/metadata/annotations"));
    let app_spec = serde_json::from_value(field("/spec"));
    // A pointer that leaves an impossible app (a required field removed) changes nothing.
    if let (Ok(labels), Ok(annotations), Ok(app_spec)) = (labels, annotations, app_spec) {
        app.labels = labels;
        app.annotations = annotations;
        app.spec = app_spec;
    }
    app
}

/// The reference tokens of a JSON pointer (`~1` is `/`, `~0` is `~`).
fn tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn set_pointer(doc: &mut Value, pointer: &str, value: Value) {
    let tokens = tokens(pointer);
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return;
    };
    let mut at = doc;
    for t in parents {
        if !at.is_object() && !at.is_array() {
            *at = Value::Object(serde_json::Map::new());
        }
        at = match at {
            Value::Object(map) => map
                .entry(t.clone())
                .or_insert_with(|| Value::Object(serde_json::Map::new())),
            Value::Array(items) => match t.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    match at {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        other => {
            let mut map = serde_json::Map::new();
            map.insert(last.clone(), value);
            *other = Value::Object(map);
        }
    }
}
