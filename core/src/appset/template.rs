//! Argo CD's fasttemplate mode: `{{ key }}` placeholders, name sanitizing, and flattening of nested values into dot keys.

use serde_json::Value;

use super::{AppSetError, Params};

/// Replaces every `{{ key }}` (whitespace around the key trimmed) by its value; unknown keys stay as written, as in Argo CD. A `{{` without a closing `}}` is an error.
pub fn render_str(text: &str, params: &Params) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unterminated placeholder in {text:?}"));
        };
        let tag = &after[..end];
        match params.get(tag.trim()) {
            Some(value) if !tag.trim().is_empty() => out.push_str(value),
            _ => {
                out.push_str("{{");
                out.push_str(tag);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders every string leaf (and object key) of a JSON value; `path` names the value in errors.
pub(super) fn render_value(
    value: &Value,
    params: &Params,
    path: &str,
) -> Result<Value, AppSetError> {
    Ok(match value {
        Value::String(s) => {
            Value::String(render_str(s, params).map_err(|m| AppSetError::new(path, m))?)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_value(v, params, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let at = format!("{path}.{k}");
                let key = render_str(k, params).map_err(|m| AppSetError::new(&at, m))?;
                out.insert(key, render_value(v, params, &at)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Argo CD's `SanitizeName`: lower-case, every character outside `[-a-z0-9.]` becomes `-`, cut to 253 bytes, then leading and trailing `-` and `.` trimmed.
pub fn sanitize_name(name: &str) -> String {
    let mapped: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Only ASCII remains, so byte truncation is safe.
    let cut = &mapped[..mapped.len().min(253)];
    cut.trim_matches(|c| c == '-' || c == '.').to_owned()
}

/// Go's `%v` of a decoded JSON scalar.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
                    Some(f) => f.to_string(),
                    None => n.to_string(),
                }
            }
        }
        // Containers are flattened by the caller; this is only reached for empty ones.
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Flattens a JSON object into dot keys (`a.b`, arrays by index: `a.0.b`), scalars rendered as Go's `%v`; empty objects and lists produce nothing.
pub fn flatten_params(object: &serde_json::Map<String, Value>) -> Params {
    fn walk(prefix: &str, v: &Value, out: &mut Params) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&format!("{prefix}.{k}"), v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}.{i}"), v, out);
                }
            }
            scalar => {
                out.insert(prefix.to_owned(), scalar_text(scalar));
            }
        }
    }
    let mut out = Params::new();
    for (k, v) in object {
        match v {
            Value::Object(_) | Value::Array(_) => walk(k, v, &mut out),
            scalar => {
                out.insert(k.clone(), scalar_text(scalar));
            }
        }
    }
    out
}
