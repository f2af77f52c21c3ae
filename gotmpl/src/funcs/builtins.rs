//! Go's `text/template` builtins: `not len index print printf println eq ne lt le gt ge html js urlquery`.

use std::cmp::Ordering;

use super::Ctx;
use crate::fmt::{sprint, sprintf, sprintln};
use crate::value::{MapKind, Value};

pub(super) fn call(
    _ctx: &mut Ctx<'_>,
    name: &str,
    args: &[Value],
) -> Option<Result<Value, String>> {
    Some(match name {
        "not" => Ok(Value::Bool(!args[0].truth())),
        "len" => length(&args[0]),
        "index" => index(&args[0], &args[1..]),
        "print" => Ok(Value::str(sprint(args))),
        "println" => Ok(Value::str(sprintln(args))),
        "printf" => Ok(Value::str(sprintf(super::s(args, 0), &args[1..]))),
        "eq" => eq(&args[0], &args[1..]).map(Value::Bool),
        "ne" => eq(&args[0], &args[1..2]).map(|b| Value::Bool(!b)),
        "lt" => lt(&args[0], &args[1]).map(Value::Bool),
        "le" => lt(&args[0], &args[1])
            .and_then(|l| {
                if l {
                    Ok(true)
                } else {
                    eq(&args[0], &args[1..2])
                }
            })
            .map(Value::Bool),
        "gt" => lt(&args[0], &args[1])
            .and_then(|l| {
                if l {
                    Ok(false)
                } else {
                    eq(&args[0], &args[1..2]).map(|e| !e)
                }
            })
            .map(Value::Bool),
        "ge" => lt(&args[0], &args[1]).map(|l| Value::Bool(!l)),
        "html" => Ok(Value::str(html_escape(&eval_args(args)))),
        "js" => Ok(Value::str(js_escape(&eval_args(args)))),
        "urlquery" => Ok(Value::str(query_escape(&eval_args(args)))),
        _ => return None,
    })
}

fn length(v: &Value) -> Result<Value, String> {
    match v {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(_, l) => Ok(Value::Int(l.len() as i64)),
        Value::Map(_, m) => Ok(Value::Int(m.borrow().len() as i64)),
        Value::Missing | Value::Nil => Err("len of nil pointer".into()),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn index_arg(i: &Value, cap: usize) -> Result<usize, String> {
    let x: i128 = match i {
        Value::Int(n) | Value::Int64(n) => i128::from(*n),
        Value::Uint(n) => i128::from(*n),
        Value::Missing | Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x > cap as i128 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    let mut item = item.clone();
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    for i in indexes {
        item = match &item {
            Value::List(_, l) => {
                let x = index_arg(i, l.len())?;
                match l.get(x) {
                    Some(v) => v.clone(),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Str(s) => {
                let x = index_arg(i, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint(u64::from(*b)),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Map(kind, m) => {
                let key = match i {
                    Value::Str(k) => k.clone(),
                    Value::Missing | Value::Nil => {
                        return Err("value is nil; should be of type string".into());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        ));
                    }
                };
                let found = m.borrow().get(&*key).cloned();
                match found {
                    Some(v) => v,
                    None if *kind == MapKind::Str => Value::str(""),
                    None => Value::Nil,
                }
            }
            Value::Missing | Value::Nil => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Invalid,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Uint(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn ival(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

fn uval(v: &Value) -> u64 {
    match v {
        Value::Uint(u) => *u,
        _ => 0,
    }
}

fn fval(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn type_of(v: &Value) -> &'static str {
    v.type_name()
}

/// Go's `eq`: true when the first argument equals any of the others.
pub(crate) fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => ival(a) >= 0 && ival(a) as u64 == uval(b),
                (Kind::Uint, Kind::Int) => ival(b) >= 0 && uval(a) == ival(b) as u64,
                _ => {
                    if !matches!(a, Value::Missing) && !matches!(b, Value::Missing) {
                        return Err(format!(
                            "incompatible types for comparison: {} and {}",
                            type_of(a),
                            type_of(b)
                        ));
                    }
                    false
                }
            }
        } else {
            match k1 {
                Kind::Bool => a.truth() == b.truth(),
                Kind::Int => ival(a) == ival(b),
                Kind::Uint => uval(a) == uval(b),
                Kind::Float => fval(a) == fval(b),
                Kind::Str => a.as_str() == b.as_str(),
                Kind::Invalid => match (a, b) {
                    (Value::Missing | Value::Nil, Value::Missing | Value::Nil) => true,
                    (Value::Missing | Value::Nil, _) | (_, Value::Missing | Value::Nil) => false,
                    (Value::List(..) | Value::Map(..), _) => {
                        return Err(format!("non-comparable type {}: {}", b.to_v(), type_of(b)));
                    }
                    _ => false,
                },
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`.
pub(crate) fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let k1 = basic_kind(a);
    let k2 = basic_kind(b);
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(ival(a) < 0 || (ival(a) as u64) < uval(b)),
            (Kind::Uint, Kind::Int) => Ok(ival(b) >= 0 && uval(a) < ival(b) as u64),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                type_of(a),
                type_of(b)
            )),
        };
    }
    Ok(match k1 {
        Kind::Bool | Kind::Invalid => return Err("invalid type for comparison".into()),
        Kind::Int => ival(a) < ival(b),
        Kind::Uint => uval(a) < uval(b),
        Kind::Float => fval(a).partial_cmp(&fval(b)) == Some(Ordering::Less),
        Kind::Str => a.as_str() < b.as_str(),
    })
}

/// How `html`, `js` and `urlquery` turn their arguments into one string.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| {
            if a.is_nil() {
                Value::str("<no value>")
            } else {
                a.clone()
            }
        })
        .collect();
    sprint(&printable)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
