//! Secret values are never shown: a Secret's `data` and `stringData` values are masked wherever an object is shown (a live manifest, a diff), as Argo CD masks them: `++++++++` for each value, one `+` more on the desired side where it differs from the live one, so a diff still says which keys change without saying what they hold.

use serde_json::Value;

/// What a live value is shown as.
pub const MASK: &str = "++++++++";
/// What a desired value that differs from the live one is shown as.
pub const MASK_CHANGED: &str = "+++++++++";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether `object` is a core/v1 Secret.
pub fn is_secret(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && object.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn values(object: &Value, field: &str) -> Vec<(String, Value)> {
    object
        .get(field)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn mask_field(object: &mut Value, field: &str, mask: impl Fn(&str, &Value) -> &'static str) {
    if let Some(map) = object.get_mut(field).and_then(Value::as_object_mut) {
        for (key, value) in map.iter_mut() {
            *value = Value::String(mask(key, value).to_owned());
        }
    }
    // The annotation kubectl leaves holds the whole object, values included.
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
}

/// Masks the values of `object` if it is a Secret.
pub fn mask(object: &mut Value) {
    if is_secret(object) {
        mask_field(object, "data", |_, _| MASK);
        mask_field(object, "stringData", |_, _| MASK);
    }
}

/// Masks a live Secret and its desired form together: equal values look equal, changed ones differ.
pub fn mask_pair(live: Option<&mut Value>, desired: Option<&mut Value>) {
    let secret =
        live.as_deref().is_some_and(is_secret) || desired.as_deref().is_some_and(is_secret);
    if !secret {
        return;
    }
    let live_values: Vec<(String, Value)> = live
        .as_deref()
        .map(|l| [values(l, "data"), values(l, "stringData")].concat())
        .unwrap_or_default();
    if let Some(desired) = desired {
        for field in ["data", "stringData"] {
            mask_field(desired, field, |key, value| {
                match live_values.iter().find(|(k, _)| k == key) {
                    Some((_, live)) if live == value => MASK,
                    _ => MASK_CHANGED,
                }
            });
        }
    }
    if let Some(live) = live {
        mask_field(live, "data", |_, _| MASK);
        mask_field(live, "stringData", |_, _| MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(data: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "keep": "me"}},
            "data": data,
        })
    }

    #[test]
    fn no_secret_value_survives() {
        let mut live = secret(json!({"password": "aHVudGVyMg==", "user": "YWRtaW4="}));
        mask(&mut live);
        let text = live.to_string();
        assert!(
            !text.contains("aHVudGVyMg") && !text.contains("YWRtaW4"),
            "{text}"
        );
        assert_eq!(live["data"]["password"], MASK);
        assert_eq!(live["metadata"]["annotations"]["keep"], "me");
        assert!(live["metadata"]["annotations"].get(LAST_APPLIED).is_none());
        // Anything else is left alone.
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        mask(&mut config);
        assert_eq!(config["data"]["a"], "b");
    }

    #[test]
    fn a_diff_still_shows_which_values_change() {
        let mut live = secret(json!({"password": "b2xk", "user": "YWRtaW4="}));
        let mut desired = secret(json!({"password": "bmV3", "user": "YWRtaW4=", "extra": "eA=="}));
        mask_pair(Some(&mut live), Some(&mut desired));
        assert_eq!(desired["data"]["user"], MASK);
        assert_eq!(desired["data"]["password"], MASK_CHANGED);
        assert_eq!(desired["data"]["extra"], MASK_CHANGED);
        assert_eq!(live["data"]["password"], MASK);
        let text = format!("{live}{desired}");
        assert!(!text.contains("b2xk") && !text.contains("bmV3"), "{text}");
    }
}
