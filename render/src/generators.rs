//! ConfigMap and Secret generators (literals, env files, files, options) and kustomize's content hash.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{RenderError, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::loader::RepoRoot;

/// Which object a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GeneratedKind {
    ConfigMap,
    Secret,
}

/// Builds a ConfigMap or Secret object from generator arguments; returns it with "needs a hash suffix".
pub(crate) fn generate(
    args: &GeneratorArgs,
    global: &GeneratorOptions,
    kind: GeneratedKind,
    dir: &Path,
    repo: &RepoRoot,
    file: &Path,
) -> Result<(Value, bool)> {
    let label = if kind == GeneratedKind::ConfigMap {
        "configmap"
    } else {
        "secret"
    };
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |key: String, value: Vec<u8>| -> Result<()> {
        if !valid_key(&key) {
            return Err(RenderError::invalid(
                file,
                format!("{label} {}: invalid key name '{key}'", args.name),
            ));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(RenderError::invalid(
                file,
                format!("{label} {} illegally repeats the key `{key}`", args.name),
            ));
        }
        pairs.push((key, value));
        Ok(())
    };
    for env in &args.envs {
        let path = repo.resolve(dir, env, dir)?;
        let text = repo.read_text(&path)?;
        for (number, line) in text.lines().enumerate() {
            let line = if number == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            push(key.to_string(), value.as_bytes().to_vec())?;
        }
    }
    for literal in &args.literals {
        let Some((key, value)) = literal.split_once('=') else {
            return Err(RenderError::invalid(
                file,
                format!(
                    "{label} {}: literal '{literal}' is not key=value",
                    args.name
                ),
            ));
        };
        push(key.to_string(), unquote(value).as_bytes().to_vec())?;
    }
    for source in &args.files {
        let (key, relative) = match source.split_once('=') {
            Some((key, path)) => (key.to_string(), path),
            None => {
                let base = Path::new(source)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (base, source.as_str())
            }
        };
        if relative.contains('=') || key.is_empty() {
            return Err(RenderError::invalid(
                file,
                format!("{label} {}: invalid file source '{source}'", args.name),
            ));
        }
        let path = repo.resolve(dir, relative, dir)?;
        push(key, repo.read(&path)?)?;
    }

    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String("v1".into()));
    object.insert(
        "kind".into(),
        Value::String(
            if kind == GeneratedKind::ConfigMap {
                "ConfigMap"
            } else {
                "Secret"
            }
            .into(),
        ),
    );
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(args.name.clone()));
    if let Some(ns) = &args.namespace {
        metadata.insert("namespace".into(), Value::String(ns.clone()));
    }
    let mut labels: Vec<(String, String)> = global.labels.clone();
    merge_pairs(&mut labels, &args.options.labels);
    let mut annotations: Vec<(String, String)> = global.annotations.clone();
    merge_pairs(&mut annotations, &args.options.annotations);
    if !labels.is_empty() {
        metadata.insert("labels".into(), pairs_to_map(&labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), pairs_to_map(&annotations));
    }
    object.insert("metadata".into(), Value::Object(metadata));

    let mut data = Map::new();
    let mut binary = Map::new();
    for (key, bytes) in pairs {
        match (kind, String::from_utf8(bytes)) {
            (GeneratedKind::ConfigMap, Ok(text)) => {
                data.insert(key, Value::String(text));
            }
            (GeneratedKind::ConfigMap, Err(e)) => {
                binary.insert(key, Value::String(encode_base64(e.as_bytes())));
            }
            (GeneratedKind::Secret, Ok(text)) => {
                data.insert(key, Value::String(encode_base64(text.as_bytes())));
            }
            (GeneratedKind::Secret, Err(e)) => {
                data.insert(key, Value::String(encode_base64(e.as_bytes())));
            }
        }
    }
    if !data.is_empty() || binary.is_empty() {
        object.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        object.insert("binaryData".into(), Value::Object(binary));
    }
    if kind == GeneratedKind::Secret {
        object.insert(
            "type".into(),
            Value::String(args.type_.clone().unwrap_or_else(|| "Opaque".into())),
        );
    }
    if global.immutable || args.options.immutable {
        object.insert("immutable".into(), Value::Bool(true));
    }
    let hash = !(global.disable_name_suffix_hash || args.options.disable_name_suffix_hash);
    Ok((Value::Object(object), hash))
}

fn merge_pairs(base: &mut Vec<(String, String)>, overrides: &[(String, String)]) {
    for (k, v) in overrides {
        match base.iter_mut().find(|(bk, _)| bk == k) {
            Some(entry) => entry.1 = v.clone(),
            None => base.push((k.clone(), v.clone())),
        }
    }
}

fn pairs_to_map(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// ConfigMap keys: alphanumerics, `-`, `_`, `.`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Removes one pair of matching surrounding quotes.
fn unquote(value: &str) -> &str {
    let b = value.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// Base64 with a line break after every 70 characters when the encoding is 70 characters or longer.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = STANDARD.encode(bytes);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// kustomize's name suffix for a generated ConfigMap or Secret: ten characters derived from the sha256 of
/// the Go-JSON encoding of its kind, data (and type), with an empty name.
pub(crate) fn content_hash(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut fields: Vec<(&str, String)> = Vec::new();
    let field = |name: &str| object.get(name).filter(|v| !v.is_null()).map(go_json);
    if kind == "Secret" {
        fields.push(("data", field("data").unwrap_or_else(|| "{}".into())));
        fields.push(("kind", go_json(&Value::String("Secret".into()))));
        fields.push(("name", "\"\"".into()));
        if let Some(string_data) = field("stringData") {
            fields.push(("stringData", string_data));
        }
        fields.push(("type", field("type").unwrap_or_else(|| "\"\"".into())));
    } else {
        if let Some(binary) = field("binaryData") {
            fields.push(("binaryData", binary));
        }
        fields.push(("data", field("data").unwrap_or_else(|| "{}".into())));
        fields.push(("kind", go_json(&Value::String(kind.into()))));
        fields.push(("name", "\"\"".into()));
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let json = format!("{{{}}}", body.join(","));
    let digest = Sha256::digest(json.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    hex.chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Go `encoding/json` output: sorted keys, compact, HTML-safe string escaping.
fn go_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        go_string(k),
                        map.get(*k).map_or("null".into(), go_json)
                    )
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_json).collect::<Vec<_>>().join(",")
        ),
        Value::String(s) => go_string(s),
        other => other.to_string(),
    }
}

fn go_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hashes_match_kustomize() {
        // Names recorded from kustomize v5.5 (fixture 110-buildmetadata-origin-annotations).
        let base = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base-config"}, "data": {"A": "1"}});
        assert_eq!(content_hash(&base), "89g4tffbfk");
        let overlay = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"B": "2"}});
        assert_eq!(content_hash(&overlay), "588tk542k9");
        // Labels and the name do not enter the hash; the Secret type does.
        let labelled = json!({"kind": "ConfigMap", "metadata": {"name": "y", "labels": {"a": "b"}}, "data": {"A": "1"}});
        assert_eq!(content_hash(&labelled), "89g4tffbfk");
        let secret = json!({"kind": "Secret", "type": "Opaque", "data": {"a": "eA=="}});
        let tls = json!({"kind": "Secret", "type": "kubernetes.io/tls", "data": {"a": "eA=="}});
        assert_ne!(content_hash(&secret), content_hash(&tls));
    }

    #[test]
    fn go_json_escapes_html_characters() {
        assert_eq!(
            go_json(&json!({"b": "<&>", "a": "\u{1}"})),
            "{\"a\":\"\\u0001\",\"b\":\"\\u003c\\u0026\\u003e\"}"
        );
    }

    #[test]
    fn base64_wraps_long_values() {
        assert_eq!(encode_base64(b"abc"), "YWJj");
        let long = encode_base64(&[b'x'; 60]);
        assert!(long.ends_with('\n') && long.lines().all(|l| l.len() <= 70));
    }

    #[test]
    fn quotes_are_removed_from_literals() {
        assert_eq!(unquote("\"x y\""), "x y");
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("\"x'"), "\"x'");
    }
}
