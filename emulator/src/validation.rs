//! Validation performed before storing: object names, label keys and a few immutable fields.

use serde_json::Value;

use super::resources::ResourceType;
use super::status::{ApiError, Cause};

const SUBDOMAIN_HELP: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_HELP: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1035_HELP: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

/// Whether `s` is an RFC 1123 label (max 63 characters).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Whether `s` is an RFC 1123 subdomain (max 253 characters).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Validates an object about to be created or updated (`old` is the live object on update).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    } else if old.is_none() {
        let (ok, help) = if rt.is_namespace() {
            (is_dns_label(name), LABEL_HELP)
        } else if rt.is("", "services") {
            (is_dns1035_label(name), DNS1035_HELP)
        } else {
            (is_dns_subdomain(name), SUBDOMAIN_HELP)
        };
        if !ok {
            causes.push(Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: \"{name}\": {help}"),
                field: "metadata.name".into(),
            });
        }
    }
    for (field, map) in [
        ("metadata.labels", obj.pointer("/metadata/labels")),
        ("metadata.annotations", obj.pointer("/metadata/annotations")),
    ] {
        let Some(map) = map else { continue };
        let Some(map) = map.as_object() else {
            causes.push(Cause {
                reason: "FieldValueInvalid",
                message: "Invalid value: must be a map of strings".into(),
                field: field.into(),
            });
            continue;
        };
        for (k, v) in map {
            if !v.is_string() {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {v}: must be a string"),
                    field: format!("{field}.{k}"),
                });
            }
            if !is_qualified_name(k) {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                    field: field.into(),
                });
            }
        }
    }
    if rt.is("apps", "deployments")
        || rt.is("apps", "replicasets")
        || rt.is("apps", "statefulsets")
        || rt.is("apps", "daemonsets")
    {
        workload(obj, old, &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&rt.group, &rt.kind, name, causes))
    }
}

fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    name_ok && prefix.is_none_or(is_dns_subdomain)
}

fn workload(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let selector = obj.pointer("/spec/selector");
    match selector {
        None => causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: "spec.selector".into(),
        }),
        Some(sel) if !sel.is_object() => causes.push(Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {sel}: must be a label selector object"),
            field: "spec.selector".into(),
        }),
        Some(sel) => {
            let labels = obj.pointer("/spec/template/metadata/labels");
            let matches = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(|ml| {
                    ml.iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                });
            if !matches {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        labels.cloned().unwrap_or(Value::Null)
                    ),
                    field: "spec.template.metadata.labels".into(),
                });
            }
            if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                && old_sel != sel
            {
                causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {sel}: field is immutable"),
                    field: "spec.selector".into(),
                });
            }
        }
    }
    if obj
        .pointer("/spec/template/metadata")
        .is_some_and(|m| !m.is_object())
    {
        causes.push(Cause {
            reason: "FieldValueInvalid",
            message: "Invalid value: must be an object".into(),
            field: "spec.template.metadata".into(),
        });
    }
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: "spec.template.spec.containers".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("Bad_Name"));
        assert!(!is_dns_label("a.b"));
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(!is_qualified_name("-x"));
    }
}
