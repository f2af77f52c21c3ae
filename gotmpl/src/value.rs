//! Go values as templates see them: kinds, type names, truth and `fmt`'s `%v` printing.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::fmt::format_float_v;

/// Element type of a Go slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// `[]interface {}`
    Any,
    /// `[]string`
    Str,
    /// `[]int`
    Int,
    /// `[][]interface {}`
    Lists,
}

/// Element type of a Go map with string keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MapKind {
    /// `map[string]interface {}`
    Any,
    /// `map[string]string`
    Str,
}

/// A shared, mutable map (sprig's `set`, `unset` and `merge` change maps in place, as in Go).
pub(crate) type MapRef = Rc<RefCell<BTreeMap<String, Value>>>;

/// A parsed semantic version (sprig's `semver` result, a `*semver.Version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Semver {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub metadata: String,
    pub original: String,
}

impl Semver {
    /// The canonical form (`String()`).
    pub fn canonical(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre);
        }
        if !self.metadata.is_empty() {
            s.push('+');
            s.push_str(&self.metadata);
        }
        s
    }
}

/// A Go value.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    /// No value at all (Go's invalid `reflect.Value`): a missing key, printed `<no value>`.
    Missing,
    /// A nil `interface{}` (JSON `null`, an empty result).
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64`.
    Int64(i64),
    /// Go `uint64` (semver parts).
    Uint(u64),
    Float(f64),
    Str(Rc<str>),
    List(ListKind, Rc<Vec<Value>>),
    Map(MapKind, MapRef),
    Semver(Rc<Semver>),
}

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(ListKind::Any, Rc::new(items))
    }

    pub fn str_list(items: Vec<String>) -> Value {
        Value::List(
            ListKind::Str,
            Rc::new(items.into_iter().map(Value::str).collect()),
        )
    }

    pub fn map(entries: BTreeMap<String, Value>) -> Value {
        Value::Map(MapKind::Any, Rc::new(RefCell::new(entries)))
    }

    /// Converts decoded JSON the way Go's `encoding/json` decodes into `interface{}`.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.as_str()),
            serde_json::Value::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Go's `%T`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(ListKind::Any, _) => "[]interface {}",
            Value::List(ListKind::Str, _) => "[]string",
            Value::List(ListKind::Int, _) => "[]int",
            Value::List(ListKind::Lists, _) => "[][]interface {}",
            Value::Map(MapKind::Any, _) => "map[string]interface {}",
            Value::Map(MapKind::Str, _) => "map[string]string",
            Value::Semver(_) => "*semver.Version",
        }
    }

    /// Go's `reflect.Kind` name (sprig's `kindOf`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Missing | Value::Nil => "invalid",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(..) => "slice",
            Value::Map(..) => "map",
            Value::Semver(_) => "ptr",
        }
    }

    /// Whether this is no value or nil.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Missing | Value::Nil)
    }

    /// Go's template truth (`if`, `and`, `or`, `not`).
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(_, l) => !l.is_empty(),
            Value::Map(_, m) => !m.borrow().is_empty(),
            Value::Semver(_) => true,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Go's `%v` (`fmt.Sprint` of one operand). `Missing` prints `<no value>` at the top level only; the
    /// executor handles that; here, inside containers, nil is `<nil>`.
    pub fn write_v(&self, out: &mut String, depth: usize) {
        if depth > MAX_PRINT_DEPTH {
            out.push_str("...");
            return;
        }
        match self {
            Value::Missing => out.push_str("<nil>"),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
            Value::Uint(u) => out.push_str(&u.to_string()),
            Value::Float(f) => out.push_str(&format_float_v(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(_, items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.write_v(out, depth + 1);
                }
                out.push(']');
            }
            Value::Map(_, m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_v(out, depth + 1);
                }
                out.push(']');
            }
            Value::Semver(s) => out.push_str(&s.canonical()),
        }
    }

    /// `%v` as a new string.
    pub fn to_v(&self) -> String {
        let mut s = String::new();
        self.write_v(&mut s, 0);
        s
    }

    /// Converts to JSON (for `toJson`, `toYaml`): Go's `encoding/json` view of the value.
    pub fn to_json(&self, depth: usize) -> Result<serde_json::Value, String> {
        if depth > MAX_PRINT_DEPTH {
            return Err("value nested too deeply".into());
        }
        Ok(match self {
            Value::Missing | Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) | Value::Int64(i) => serde_json::Value::from(*i),
            Value::Uint(u) => serde_json::Value::from(*u),
            Value::Float(f) => {
                if !f.is_finite() {
                    return Err(format!("json: unsupported value: {}", format_float_v(*f)));
                }
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    // Whole numbers are written without a fraction, as Go writes them.
                    serde_json::Value::from(*f as i64)
                } else {
                    serde_json::Number::from_f64(*f)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number)
                }
            }
            Value::Str(s) => serde_json::Value::String(s.to_string()),
            Value::List(_, items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|v| v.to_json(depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(_, m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in m.borrow().iter() {
                    o.insert(k.clone(), v.to_json(depth + 1)?);
                }
                serde_json::Value::Object(o)
            }
            Value::Semver(s) => {
                // A *semver.Version marshals as its string form.
                serde_json::Value::String(s.original.clone())
            }
        })
    }

    /// A deep copy (maps are copied, so later `set`s do not show through).
    pub fn deep_copy(&self, depth: usize) -> Value {
        if depth > MAX_PRINT_DEPTH {
            return self.clone();
        }
        match self {
            Value::List(k, items) => Value::List(
                *k,
                Rc::new(items.iter().map(|v| v.deep_copy(depth + 1)).collect()),
            ),
            Value::Map(k, m) => Value::Map(
                *k,
                Rc::new(RefCell::new(
                    m.borrow()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.deep_copy(depth + 1)))
                        .collect(),
                )),
            ),
            other => other.clone(),
        }
    }

    /// Whether `map` is reachable from this value (a `set` that would make a map contain itself).
    pub fn contains_map(&self, map: &MapRef, depth: usize) -> bool {
        if depth > MAX_PRINT_DEPTH {
            return true;
        }
        match self {
            Value::List(_, items) => items.iter().any(|v| v.contains_map(map, depth + 1)),
            Value::Map(_, m) => {
                Rc::ptr_eq(m, map) || m.borrow().values().any(|v| v.contains_map(map, depth + 1))
            }
            _ => false,
        }
    }

    /// Rough size in bytes, charged to the step budget by functions that build values.
    pub fn weight(&self) -> u64 {
        match self {
            Value::Str(s) => s.len() as u64 / 64,
            Value::List(_, items) => items.len() as u64,
            Value::Map(_, m) => m.borrow().len() as u64,
            _ => 0,
        }
    }
}

/// Deepest nesting printed or converted (deeper is cut, never a stack overflow).
pub(crate) const MAX_PRINT_DEPTH: usize = 256;

/// Go's `reflect.DeepEqual` over template values.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) | (Value::Int64(x), Value::Int64(y)) => x == y,
        (Value::Uint(x), Value::Uint(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::List(k1, x), Value::List(k2, y)) => {
            k1 == k2 && x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| deep_equal(a, b))
        }
        (Value::Map(k1, x), Value::Map(k2, y)) => {
            if Rc::ptr_eq(x, y) {
                return true;
            }
            let (x, y) = (x.borrow(), y.borrow());
            k1 == k2
                && x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w)))
        }
        (Value::Semver(x), Value::Semver(y)) => x == y,
        _ => false,
    }
}
