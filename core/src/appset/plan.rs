//! The reconcile plan: which generated apps to create or update and which owned apps to delete, as the set's `applicationsSync` policy allows.

use std::collections::{BTreeMap, BTreeSet};

use super::{ApplicationsSyncPolicy, ExistingApp, GeneratedApp, Plan};

/// Compares existing apps with generated ones. Every policy creates missing apps; `create-update` and `sync` also update changed ones (spec, labels, annotations, project); `create-delete` and `sync` also delete owned apps no longer generated. Apps not owned by the set are never touched: a generated name that collides with one is a conflict.
pub fn plan(
    policy: ApplicationsSyncPolicy,
    existing: &[ExistingApp],
    generated: Vec<GeneratedApp>,
) -> Plan {
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
