//! Rendering strings of a set: Argo CD's fasttemplate mode (`{{ key }}` placeholders) or Go templates (through `edgecd-gotmpl`), name sanitizing, and flattening of nested values into dot keys.

use serde_json::Value;

use super::{AppSetError, ApplicationSetSpec, Params};

/// How a set renders its strings.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Argo CD's default: `{{key}}` over flat string parameters; unknown keys stay as written.
    Fast,
    /// `goTemplate: true`: Go's `text/template` with sprig, with the set's `goTemplateOptions`.
    Go(edgecd_gotmpl::Options),
}

impl Mode {
    pub(crate) fn of(spec: &ApplicationSetSpec) -> Result<Self, AppSetError> {
        if !spec.go_template {
            return Ok(Self::Fast);
        }
        edgecd_gotmpl::Options::from_go_template_options(&spec.go_template_options)
            .map(Self::Go)
            .map_err(|e| AppSetError::new("spec.goTemplateOptions", e.to_string()))
    }

    pub(crate) fn is_go(&self) -> bool {
        matches!(self, Self::Go(_))
    }

    /// The same mode with `missingkey=error` (Argo CD resolves generator `values` so before a matrix hands them on).
    pub(crate) fn strict(&self) -> Self {
        match self {
            Self::Fast => Self::Fast,
            Self::Go(options) => Self::Go(edgecd_gotmpl::Options {
                missing_key: edgecd_gotmpl::MissingKey::Error,
                ..options.clone()
            }),
        }
    }
}

/// Renders strings of one parameter set in one mode.
#[derive(Debug)]
pub(crate) struct Renderer<'a> {
    mode: &'a Mode,
    params: &'a Params,
    /// The parameters as one JSON value, for Go templates.
    data: Value,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(mode: &'a Mode, params: &'a Params) -> Self {
        let data = if mode.is_go() {
            Value::Object(params.clone())
        } else {
            Value::Null
        };
        Self { mode, params, data }
    }

    /// One string; `path` names it in errors.
    pub(crate) fn text(&self, text: &str, path: &str) -> Result<String, AppSetError> {
        match self.mode {
            Mode::Fast => render_str(text, self.params).map_err(|m| AppSetError::new(path, m)),
            // Text without an action renders as itself.
            Mode::Go(_) if !text.contains("{{") => Ok(text.to_owned()),
            Mode::Go(options) => edgecd_gotmpl::render(text, &self.data, options)
                .map_err(|e| AppSetError::new(path, e.to_string())),
        }
    }

    /// Every string leaf and object key of a JSON value.
    pub(crate) fn value(&self, value: &Value, path: &str) -> Result<Value, AppSetError> {
        Ok(match value {
            Value::String(s) => Value::String(self.text(s, path)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.value(v, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let at = format!("{path}.{k}");
                    let key = self.text(k, &at)?;
                    out.insert(key, self.value(v, &at)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

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
        match params.get(tag.trim()).and_then(Value::as_str) {
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

/// Argo CD's `SanitizeName`: lower-case, every character outside `[-a-z0-9.]` becomes `-`, cut to 253 bytes, then leading and trailing `-` and `.` trimmed (the Go-template function `normalize` is the same function).
pub fn sanitize_name(name: &str) -> String {
    edgecd_gotmpl::normalize(name)
}

/// Go's `%v` of a decoded JSON scalar.
pub(crate) fn scalar_text(v: &Value) -> String {
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
                out.insert(prefix.to_owned(), Value::String(scalar_text(scalar)));
            }
        }
    }
    let mut out = Params::new();
    for (k, v) in object {
        match v {
            Value::Object(_) | Value::Array(_) => walk(k, v, &mut out),
            scalar => {
                out.insert(k.clone(), Value::String(scalar_text(scalar)));
            }
        }
    }
    out
}
