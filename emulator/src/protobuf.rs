//! Decoding of the Kubernetes protobuf envelope (`application/vnd.kubernetes.protobuf`) for the few kinds kubectl's typed `create` commands send: Namespace and ConfigMap.
//!
//! kubectl 1.35's `kubectl create namespace NAME` and `kubectl create configmap NAME --from-literal=…` post
//! protobuf, and client-go does not retry a `415` with JSON, so the emulator decodes those two kinds (the
//! fields those commands can set: name, generateName, namespace, labels, annotations, finalizers; a
//! Namespace's `spec.finalizers`; a ConfigMap's `data`, `binaryData` and `immutable`). Any other kind, or a
//! field outside that set, is answered `415` as for an unsupported media type. Responses stay JSON (kubectl
//! accepts either).

use base64::Engine;
use serde_json::{Map, Value, json};

/// Why a body was not decoded.
#[derive(Debug)]
pub enum Error {
    /// Not a kind (or a field) this decoder handles: answer 415.
    Unsupported(String),
    /// Malformed protobuf: answer 400.
    Malformed(String),
}

const MAGIC: &[u8] = b"k8s\0";

/// One decoded field: its number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Iterates over the fields of a message.
struct Fields<'a> {
    buf: &'a [u8],
}

fn varint(buf: &mut &[u8]) -> Result<u64, Error> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&b, rest)) = buf.split_first() else {
            return Err(Error::Malformed("truncated varint".into()));
        };
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Malformed("varint longer than 10 bytes".into()))
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Field<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let mut step = || -> Result<(u64, Field<'a>), Error> {
            let key = varint(&mut self.buf)?;
            let (number, wire) = (key >> 3, key & 7);
            match wire {
                0 => Ok((number, Field::Varint(varint(&mut self.buf)?))),
                2 => {
                    let len = usize::try_from(varint(&mut self.buf)?)
                        .map_err(|_| Error::Malformed("length too large".into()))?;
                    if len > self.buf.len() {
                        return Err(Error::Malformed(format!(
                            "field {number} is {len} bytes long, {} left",
                            self.buf.len()
                        )));
                    }
                    let (bytes, rest) = self.buf.split_at(len);
                    self.buf = rest;
                    Ok((number, Field::Bytes(bytes)))
                }
                other => Err(Error::Unsupported(format!(
                    "protobuf wire type {other} (field {number})"
                ))),
            }
        };
        let item = step();
        if item.is_err() {
            self.buf = &[];
        }
        Some(item)
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

fn bytes<'a>(field: &Field<'a>, what: &str) -> Result<&'a [u8], Error> {
    match field {
        Field::Bytes(b) => Ok(b),
        Field::Varint(_) => Err(Error::Malformed(format!("{what} is not length-delimited"))),
    }
}

fn string(field: &Field<'_>, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes(field, what)?.to_vec())
        .map_err(|_| Error::Malformed(format!("{what} is not UTF-8")))
}

/// A `map<string, string>` entry (or `map<string, bytes>` with `binary`, base64-encoded as in JSON).
fn map_entry(buf: &[u8], what: &str, binary: bool) -> Result<(String, Value), Error> {
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    for f in fields(buf) {
        let (n, f) = f?;
        match n {
            1 => key = string(&f, what)?,
            2 if binary => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(bytes(&f, what)?));
            }
            2 => value = json!(string(&f, what)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(map: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    if let Some(m) = map
        .entry(key.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        m.insert(entry.0, entry.1);
    }
}

fn push_string(map: &mut Map<String, Value>, key: &str, s: String) {
    if let Some(list) = map
        .entry(key.to_string())
        .or_insert_with(|| json!([]))
        .as_array_mut()
    {
        list.push(json!(s));
    }
}

/// `ObjectMeta`: the fields a create can set; server-set ones (uid, resourceVersion, timestamps) are
/// dropped, as the server resets them on create anyway.
fn object_meta(buf: &[u8]) -> Result<Value, Error> {
    let mut meta = Map::new();
    for f in fields(buf) {
        let (n, f) = f?;
        match n {
            1..=3 => {
                let key = match n {
                    1 => "name",
                    2 => "generateName",
                    _ => "namespace",
                };
                let s = string(&f, key)?;
                if !s.is_empty() {
                    meta.insert(key.into(), json!(s));
                }
            }
            4..=10 => {}
            11 => insert_entry(
                &mut meta,
                "labels",
                map_entry(bytes(&f, "labels")?, "labels", false)?,
            ),
            12 => insert_entry(
                &mut meta,
                "annotations",
                map_entry(bytes(&f, "annotations")?, "annotations", false)?,
            ),
            14 => push_string(&mut meta, "finalizers", string(&f, "finalizers")?),
            other => {
                return Err(Error::Unsupported(format!(
                    "metadata field {other} in protobuf"
                )));
            }
        }
    }
    Ok(Value::Object(meta))
}

fn namespace(buf: &[u8]) -> Result<Value, Error> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!("Namespace"));
    for f in fields(buf) {
        let (n, f) = f?;
        match n {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(&f, "metadata")?)?);
            }
            2 => {
                let mut spec = Map::new();
                for sf in fields(bytes(&f, "spec")?) {
                    let (sn, sf) = sf?;
                    if sn == 1 {
                        push_string(&mut spec, "finalizers", string(&sf, "spec.finalizers")?);
                    }
                }
                if !spec.is_empty() {
                    obj.insert("spec".into(), Value::Object(spec));
                }
            }
            // status is set by the server
            _ => {}
        }
    }
    Ok(Value::Object(obj))
}

fn config_map(buf: &[u8]) -> Result<Value, Error> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!("ConfigMap"));
    for f in fields(buf) {
        let (n, f) = f?;
        match n {
            1 => {
                obj.insert("metadata".into(), object_meta(bytes(&f, "metadata")?)?);
            }
            2 => insert_entry(
                &mut obj,
                "data",
                map_entry(bytes(&f, "data")?, "data", false)?,
            ),
            3 => insert_entry(
                &mut obj,
                "binaryData",
                map_entry(bytes(&f, "binaryData")?, "binaryData", true)?,
            ),
            4 => {
                if let Field::Varint(v) = f {
                    obj.insert("immutable".into(), json!(v != 0));
                }
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "ConfigMap field {other} in protobuf"
                )));
            }
        }
    }
    Ok(Value::Object(obj))
}

/// Decodes a protobuf request body (the `k8s\0` magic, then a `runtime.Unknown` envelope) into the JSON
/// form of the object.
pub fn decode(body: &[u8]) -> Result<Value, Error> {
    let Some(envelope) = body.strip_prefix(MAGIC) else {
        return Err(Error::Malformed(
            "the protobuf body does not start with the k8s magic number".into(),
        ));
    };
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), None, String::new());
    for f in fields(envelope) {
        let (n, f) = f?;
        match n {
            1 => {
                for tf in fields(bytes(&f, "typeMeta")?) {
                    let (tn, tf) = tf?;
                    match tn {
                        1 => api_version = string(&tf, "apiVersion")?,
                        2 => kind = string(&tf, "kind")?,
                        _ => {}
                    }
                }
            }
            2 => raw = Some(bytes(&f, "raw")?),
            3 => encoding = string(&f, "contentEncoding")?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(Error::Unsupported(format!("content encoding {encoding}")));
    }
    let raw = raw.unwrap_or_default();
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => namespace(raw),
        ("v1", "ConfigMap") => config_map(raw),
        _ => Err(Error::Unsupported(format!(
            "{kind} ({api_version}) in protobuf"
        ))),
    }
}
