//! `managedFields` bookkeeping: the Apply and Update operations of server-side apply, conflicts and pruning.

use serde_json::{Value, json};

use super::fieldpath::{FieldSet, PathElement, display_path};
use super::walk::{compare, merge, remove_at, to_field_set};
use crate::schema::Schema;
use crate::status::{ApiError, Cause};

/// The operation that produced a managed-fields entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write (create, replace, non-apply patch).
    Update,
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    /// Field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// apiVersion of the request.
    pub api_version: String,
    /// Last time the set changed (RFC 3339).
    pub time: String,
    /// `status`, `scale`, or none for the main resource.
    pub subresource: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
}

/// Who writes: manager name, operation, request apiVersion and subresource.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// Request apiVersion.
    pub api_version: &'a str,
    /// Subresource written through, if any.
    pub subresource: Option<&'a str>,
    /// Timestamp to record when the manager's set changes.
    pub now: &'a str,
}

/// The paths that never count as owned (identity and server-managed metadata).
fn strip_server_fields(set: &mut FieldSet) {
    let f = |s: &str| PathElement::Field(s.into());
    set.remove_prefix(&[f("apiVersion")]);
    set.remove_prefix(&[f("kind")]);
    for meta in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.remove_prefix(&[f("metadata"), f(meta)]);
    }
}

// === impl Operation ===

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

// === impl ManagedEntry ===

impl ManagedEntry {
    /// Reads the entries of an object; malformed entries are dropped.
    pub fn read_all(obj: &Value) -> Vec<ManagedEntry> {
        let Some(list) = obj
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|e| {
                let operation = match e.get("operation").and_then(Value::as_str)? {
                    "Apply" => Operation::Apply,
                    _ => Operation::Update,
                };
                Some(ManagedEntry {
                    manager: e.get("manager").and_then(Value::as_str)?.to_string(),
                    operation,
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    fields: e
                        .get("fieldsV1")
                        .map(FieldSet::from_fields_v1)
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Writes entries into `metadata.managedFields` (removing the key when there are none).
    pub fn write_all(obj: &mut Value, entries: &[ManagedEntry]) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if entries.is_empty() {
            meta.shift_remove("managedFields");
            return;
        }
        let list: Vec<Value> = entries.iter().map(ManagedEntry::to_json).collect();
        meta.insert("managedFields".into(), Value::Array(list));
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        // An entry sent without a time (kubectl's migrated Apply entries) keeps none, as on a real server.
        if self.time.is_empty()
            && let Some(m) = v.as_object_mut()
        {
            m.shift_remove("time");
        }
        v
    }

    fn is(&self, writer: &Writer<'_>, op: Operation) -> bool {
        self.manager == writer.manager
            && self.operation == op
            && self.subresource.as_deref() == writer.subresource
    }

    fn describe(&self) -> String {
        let mut s = format!("\"{}\"", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource \"{sub}\""));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// Records an Update by `writer` that turned `live` into `new`; others lose the fields it changed.
pub fn update(
    live: &Value,
    new: &Value,
    entries: Vec<ManagedEntry>,
    writer: &Writer<'_>,
    schema: &Schema,
) -> Vec<ManagedEntry> {
    let cmp = compare(live, new, schema);
    let mut changed = cmp.added.union(&cmp.modified);
    strip_server_fields(&mut changed);
    let mut out = Vec::with_capacity(entries.len() + 1);
    let mut mine: Option<ManagedEntry> = None;
    for mut entry in entries {
        if entry.is(writer, Operation::Update) {
            mine = Some(entry);
            continue;
        }
        let next = entry.fields.difference(&cmp.removed).difference(&changed);
        if next != entry.fields {
            entry.fields = next;
        }
        if !entry.fields.is_empty() {
            out.push(entry);
        }
    }
    let (old_fields, old_time) = match &mine {
        Some(e) => (e.fields.clone(), e.time.clone()),
        None => (FieldSet::new(), String::new()),
    };
    let fields = old_fields.difference(&cmp.removed).union(&changed);
    if !fields.is_empty() {
        let time = if fields == old_fields && mine.is_some() {
            old_time
        } else {
            writer.now.to_string()
        };
        let entry = ManagedEntry {
            manager: writer.manager.to_string(),
            operation: Operation::Update,
            api_version: writer.api_version.to_string(),
            time,
            subresource: writer.subresource.map(str::to_string),
            fields,
        };
        out.push(entry);
    }
    out
}

/// The result of an Apply: the new object (before defaulting fixes applied later) and entries.
#[derive(Debug)]
pub struct Applied {
    /// The merged and pruned object.
    pub object: Value,
    /// The new managed-fields entries.
    pub entries: Vec<ManagedEntry>,
}

/// Applies `config` for `writer` onto `live`.
///
/// `default` is called on the pruned object so that fields removed by their only owner fall back to defaults
/// before conflicts are computed.
pub fn apply(
    live: &Value,
    config: &Value,
    entries: Vec<ManagedEntry>,
    writer: &Writer<'_>,
    force: bool,
    schema: &Schema,
    default: &dyn Fn(&mut Value),
) -> Result<Applied, ApiError> {
    let mut config_set = to_field_set(config, schema);
    strip_server_fields(&mut config_set);
    let mut merged = merge(live, config, schema);

    let mine = entries.iter().position(|e| e.is(writer, Operation::Apply));
    let last_set = mine
        .and_then(|i| entries.get(i))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != mine)
        .fold(FieldSet::new(), |acc, (_, e)| acc.union(&e.fields));
    let to_remove = last_set.difference(&config_set);
    for path in to_remove.paths() {
        if others.contains_prefix(&path) {
            continue;
        }
        remove_at(&mut merged, &path, schema);
    }
    default(&mut merged);

    let cmp = compare(live, &merged, schema);
    let mut changed = cmp.added.union(&cmp.modified);
    strip_server_fields(&mut changed);

    let mut conflicts: Vec<(String, String, String)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        let clash = entry.fields.intersection(&changed);
        for path in clash.paths() {
            conflicts.push((entry.manager.clone(), entry.describe(), display_path(&path)));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(conflicts));
    }

    let mut out = Vec::with_capacity(entries.len() + 1);
    let mut old_time = None;
    for (i, mut entry) in entries.into_iter().enumerate() {
        if Some(i) == mine {
            old_time = Some((entry.fields.clone(), entry.time.clone()));
            continue;
        }
        entry.fields = entry.fields.difference(&cmp.removed).difference(&changed);
        if !entry.fields.is_empty() {
            out.push(entry);
        }
    }
    let time = match old_time {
        Some((fields, time)) if fields == config_set => time,
        _ => writer.now.to_string(),
    };
    if !config_set.is_empty() {
        let entry = ManagedEntry {
            manager: writer.manager.to_string(),
            operation: Operation::Apply,
            api_version: writer.api_version.to_string(),
            time,
            subresource: writer.subresource.map(str::to_string),
            fields: config_set,
        };
        out.push(entry);
    }
    Ok(Applied {
        object: merged,
        entries: out,
    })
}

fn conflict_error(mut conflicts: Vec<(String, String, String)>) -> ApiError {
    conflicts.sort();
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(_, who, path)| Cause {
            reason: "FieldManagerConflict",
            message: format!("conflict with {who}"),
            field: path.clone(),
        })
        .collect();
    let message = if let [(_, who, path)] = conflicts.as_slice() {
        format!("Apply failed with 1 conflict: conflict with {who}: {path}")
    } else {
        let mut parts: Vec<String> = Vec::new();
        let mut current: Option<&str> = None;
        for (_, who, path) in &conflicts {
            if current != Some(who.as_str()) {
                parts.push(format!("conflicts with {who}:"));
                current = Some(who.as_str());
            }
            parts.push(format!("- {path}"));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            parts.join("\n")
        )
    };
    ApiError::apply_conflict(message, causes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            subresource: None,
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn schema() -> Schema {
        Schema::builtin("apps", "v1", "Deployment")
    }

    fn no_defaults(_: &mut Value) {}

    fn apply_as(
        live: &Value,
        config: Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        let entries = ManagedEntry::read_all(live);
        let applied = apply(
            live,
            &config,
            entries,
            &writer(manager),
            force,
            &schema(),
            &no_defaults,
        )?;
        let mut obj = applied.object;
        ManagedEntry::write_all(&mut obj, &applied.entries);
        Ok(obj)
    }

    fn base() -> Value {
        json!({"metadata": {"name": "web"}})
    }

    #[test]
    fn removed_label_is_pruned() {
        let a = apply_as(
            &base(),
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            "m",
            false,
        )
        .unwrap();
        let b = apply_as(&a, json!({"metadata": {"labels": {"a": "1"}}}), "m", false).unwrap();
        assert_eq!(b["metadata"]["labels"], json!({"a": "1"}));
        let entries = ManagedEntry::read_all(&b);
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].fields.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}}})
        );
    }

    #[test]
    fn shared_field_survives_when_one_owner_leaves() {
        let a = apply_as(
            &base(),
            json!({"metadata": {"labels": {"x": "1"}}}),
            "m1",
            false,
        )
        .unwrap();
        let b = apply_as(&a, json!({"metadata": {"labels": {"x": "1"}}}), "m2", false).unwrap();
        let c = apply_as(
            &b,
            json!({"metadata": {"annotations": {"y": "1"}}}),
            "m1",
            false,
        )
        .unwrap();
        assert_eq!(c["metadata"]["labels"], json!({"x": "1"}));
    }

    #[test]
    fn conflict_with_update_manager_and_force() {
        let live = base();
        let entries = update(
            &live,
            &json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}}),
            vec![],
            &writer("editor"),
            &schema(),
        );
        let mut edited = json!({"metadata": {"name": "web"}, "spec": {"replicas": 5}});
        ManagedEntry::write_all(&mut edited, &entries);
        let err = apply_as(&edited, json!({"spec": {"replicas": 3}}), "spoke", false).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"editor\" using apps/v1: .spec.replicas"
        );
        let forced = apply_as(&edited, json!({"spec": {"replicas": 3}}), "spoke", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], json!(3));
        let managers: Vec<String> = ManagedEntry::read_all(&forced)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, vec!["spoke".to_string()]);
    }

    #[test]
    fn two_conflicts_are_listed() {
        let a = apply_as(
            &base(),
            json!({"spec": {"replicas": 1, "paused": false}}),
            "other-applier",
            false,
        )
        .unwrap();
        let err = apply_as(
            &a,
            json!({"spec": {"replicas": 2, "paused": true}}),
            "me",
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Apply failed with 2 conflicts: conflicts with \"other-applier\":\n- .spec.paused\n- .spec.replicas"
        );
    }

    #[test]
    fn same_value_is_shared_not_conflicting() {
        let a = apply_as(&base(), json!({"spec": {"replicas": 3}}), "m1", false).unwrap();
        let b = apply_as(&a, json!({"spec": {"replicas": 3}}), "m2", false).unwrap();
        assert_eq!(ManagedEntry::read_all(&b).len(), 2);
    }

    #[test]
    fn list_map_items_owned_per_manager() {
        let c = |name: &str, image: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}});
        let a = apply_as(&base(), c("app", "app:1"), "m1", false).unwrap();
        let b = apply_as(&a, c("sidecar", "sc:1"), "m2", false).unwrap();
        let names = |v: &Value| -> Vec<String> {
            v["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&b), vec!["app", "sidecar"]);
        let d = apply_as(
            &b,
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
            "m1",
            false,
        )
        .unwrap();
        assert_eq!(names(&d), vec!["sidecar"]);
    }
}
