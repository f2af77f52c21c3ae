//! Entry points for fuzzing and property tests of the parsers (YAML loader, emitter round trip, kustomization).
//!
//! Each function must return normally (an `Err` is fine) for every input; a panic is a bug.

use std::path::Path;

use crate::kustomization::Kustomization;
use crate::yaml;

/// Loads arbitrary bytes as YAML; whatever loads must survive an emit/load round trip unchanged.
pub fn yaml_round_trip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(documents) = yaml::load_documents(text) else {
        return;
    };
    for document in documents.iter().filter(|d| d.is_object() || d.is_array()) {
        let emitted = yaml::to_yaml_document(document);
        let reloaded = yaml::load_one(&emitted);
        assert!(
            reloaded.as_ref().is_ok_and(|r| same_value(r, document)),
            "round trip changed the document:\n{document:?}\nemitted:\n{emitted}\nreloaded: {reloaded:?}"
        );
    }
}

/// Parses arbitrary bytes as a kustomization file.
pub fn parse_kustomization(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = yaml::load_one(text) else {
        return;
    };
    let _ = Kustomization::parse(&value, Path::new("kustomization.yaml"));
}

/// Equality where numbers compare by value (`1000.0` is emitted as `1000`, exactly as kustomize does).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}
