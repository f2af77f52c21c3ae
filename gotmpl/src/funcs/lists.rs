//! sprig's list, dict, default and math functions.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::{Ctx, MAX_SEQUENCE, arg, empty, int, s, strval, to_float64, to_int64};
use crate::value::{ListKind, MapRef, Value, deep_equal};

fn items(v: &Value, what: &str) -> Result<Rc<Vec<Value>>, String> {
    match v {
        Value::List(_, l) => Ok(l.clone()),
        Value::Missing | Value::Nil => {
            Err("runtime error: invalid memory address or nil pointer dereference".into())
        }
        other => Err(format!("Cannot {what} type {}", other.kind_name())),
    }
}

fn map_of(v: &Value) -> MapRef {
    match v {
        Value::Map(_, m) => m.clone(),
        _ => Rc::new(RefCell::new(BTreeMap::new())),
    }
}

pub(super) fn call(ctx: &mut Ctx<'_>, name: &str, a: &[Value]) -> Option<Result<Value, String>> {
    let ok = |v: Value| Some(Ok(v));
    let name = name.strip_prefix("must").map_or(name.to_string(), |n| {
        let mut c = n.chars();
        c.next().map_or(String::new(), |f| {
            f.to_lowercase().collect::<String>() + c.as_str()
        })
    });
    match name.as_str() {
        "list" | "tuple" => ok(Value::list(a.to_vec())),
        "append" | "push" => Some(items(&a[0], "push on").map(|l| {
            ctx.steps += l.len() as u64;
            let mut v = l.to_vec();
            v.push(a[1].clone());
            Value::list(v)
        })),
        "prepend" => Some(items(&a[0], "prepend on").map(|l| {
            ctx.steps += l.len() as u64;
            let mut v = vec![a[1].clone()];
            v.extend(l.iter().cloned());
            Value::list(v)
        })),
        "first" => {
            Some(items(&a[0], "find first on").map(|l| l.first().cloned().unwrap_or(Value::Nil)))
        }
        "last" => {
            Some(items(&a[0], "find last on").map(|l| l.last().cloned().unwrap_or(Value::Nil)))
        }
        "rest" => Some(
            items(&a[0], "find rest on").map(|l| Value::list(l.iter().skip(1).cloned().collect())),
        ),
        "initial" => Some(
            items(&a[0], "find initial on")
                .map(|l| Value::list(l.iter().take(l.len().saturating_sub(1)).cloned().collect())),
        ),
        "reverse" => Some(
            items(&a[0], "find reverse on").map(|l| Value::list(l.iter().rev().cloned().collect())),
        ),
        "compact" => Some(
            items(&a[0], "compact on")
                .map(|l| Value::list(l.iter().filter(|v| !empty(v)).cloned().collect())),
        ),
        "uniq" => Some(items(&a[0], "find uniq on").map(|l| {
            ctx.steps += (l.len() as u64).saturating_mul(l.len() as u64) / 16;
            let mut out: Vec<Value> = Vec::new();
            for v in l.iter() {
                if !out.iter().any(|o| deep_equal(o, v)) {
                    out.push(v.clone());
                }
            }
            Value::list(out)
        })),
        "without" => Some(items(&a[0], "find without on").map(|l| {
            Value::list(
                l.iter()
                    .filter(|v| !a[1..].iter().any(|o| deep_equal(o, v)))
                    .cloned()
                    .collect(),
            )
        })),
        "has" => match &a[1] {
            Value::Missing | Value::Nil => ok(Value::Bool(false)),
            Value::List(_, l) => ok(Value::Bool(l.iter().any(|v| deep_equal(&a[0], v)))),
            other => Some(Err(format!(
                "Cannot find has on type {}",
                other.kind_name()
            ))),
        },
        "slice" => Some(slice(a)),
        "concat" => {
            let mut out = Vec::new();
            for l in a {
                match items(l, "concat") {
                    Ok(l) => out.extend(l.iter().cloned()),
                    Err(_) => {
                        return Some(Err(format!("Cannot concat type {} as list", l.kind_name())));
                    }
                }
            }
            ctx.steps += out.len() as u64;
            ok(Value::list(out))
        }
        "chunk" => {
            let size = int(a, 0);
            Some(items(&a[1], "chunk").and_then(|l| {
                if size <= 0 {
                    return Err("runtime error: integer divide by zero".into());
                }
                let chunks = l
                    .chunks(size as usize)
                    .map(|c| Value::list(c.to_vec()))
                    .collect();
                Ok(Value::List(ListKind::Lists, Rc::new(chunks)))
            }))
        }
        "until" => Some(until_step(0, int(a, 0), if int(a, 0) < 0 { -1 } else { 1 }).map(int_list)),
        "untilStep" => Some(until_step(int(a, 0), int(a, 1), int(a, 2)).map(int_list)),
        "seq" => Some(seq(a)),
        // defaults
        "default" => ok(if a.len() < 2 || empty(&a[1]) {
            a[0].clone()
        } else {
            a[1].clone()
        }),
        "empty" => ok(Value::Bool(empty(&a[0]))),
        "coalesce" => ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil)),
        "all" => ok(Value::Bool(a.iter().all(|v| !empty(v)))),
        "any" => ok(Value::Bool(a.iter().any(|v| !empty(v)))),
        "ternary" => ok(if a[2].truth() {
            a[0].clone()
        } else {
            a[1].clone()
        }),
        "deepCopy" => ok(a[0].deep_copy(0)),
        "deepEqual" => ok(Value::Bool(deep_equal(&a[0], &a[1]))),
        "typeOf" => ok(Value::str(a[0].type_name())),
        "typeIs" => ok(Value::Bool(s(a, 0) == a[1].type_name())),
        "typeIsLike" => {
            let t = a[1].type_name();
            ok(Value::Bool(s(a, 0) == t || s(a, 0) == format!("*{t}")))
        }
        "kindOf" => ok(Value::str(a[0].kind_name())),
        "kindIs" => ok(Value::Bool(s(a, 0) == a[1].kind_name())),
        // dicts
        "dict" => {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                let key = strval(&pair[0]);
                m.insert(key, pair.get(1).cloned().unwrap_or_else(|| Value::str("")));
            }
            ok(Value::map(m))
        }
        "get" => ok(map_of(&a[0])
            .borrow()
            .get(s(a, 1))
            .cloned()
            .unwrap_or_else(|| Value::str(""))),
        "set" => {
            let m = map_of(&a[0]);
            if a[2].contains_map(&m, 0) {
                return Some(Err("set would make a map contain itself".into()));
            }
            m.borrow_mut().insert(s(a, 1).to_string(), a[2].clone());
            ok(a[0].clone())
        }
        "unset" => {
            map_of(&a[0]).borrow_mut().remove(s(a, 1));
            ok(a[0].clone())
        }
        "hasKey" => ok(Value::Bool(map_of(&a[0]).borrow().contains_key(s(a, 1)))),
        "pluck" => ok(Value::list(
            a[1..]
                .iter()
                .filter_map(|d| map_of(d).borrow().get(s(a, 0)).cloned())
                .collect(),
        )),
        "keys" => {
            let mut k: Vec<String> = Vec::new();
            for d in a {
                k.extend(map_of(d).borrow().keys().cloned());
            }
            ok(Value::str_list(k))
        }
        "pick" => {
            let src = map_of(&a[0]);
            let src = src.borrow();
            let m = a[1..]
                .iter()
                .filter_map(|k| k.as_str())
                .filter_map(|k| src.get(k).map(|v| (k.to_string(), v.clone())))
                .collect();
            ok(Value::map(m))
        }
        "omit" => {
            let src = map_of(&a[0]);
            let omit: Vec<&str> = a[1..].iter().filter_map(Value::as_str).collect();
            let m = src
                .borrow()
                .iter()
                .filter(|(k, _)| !omit.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            ok(Value::map(m))
        }
        "values" => ok(Value::list(
            map_of(&a[0]).borrow().values().cloned().collect(),
        )),
        "merge" | "mergeOverwrite" => {
            let dst = map_of(&a[0]);
            for src in &a[1..] {
                let src = map_of(src);
                if Rc::ptr_eq(&src, &dst) {
                    continue;
                }
                if let Err(e) = merge(&dst, &src, name == "mergeOverwrite", 0, &mut ctx.steps) {
                    return Some(Err(e));
                }
            }
            ok(a[0].clone())
        }
        "dig" => Some(dig(a)),
        // math
        "add1" => ok(Value::Int64(to_int64(&a[0]).wrapping_add(1))),
        "add" => ok(Value::Int64(
            a.iter().fold(0i64, |acc, v| acc.wrapping_add(to_int64(v))),
        )),
        "sub" => ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1])))),
        "mul" => ok(Value::Int64(
            a[1..]
                .iter()
                .fold(to_int64(&a[0]), |acc, v| acc.wrapping_mul(to_int64(v))),
        )),
        "div" | "mod" => {
            let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
            if y == 0 {
                return Some(Err("runtime error: integer divide by zero".into()));
            }
            ok(Value::Int64(if name == "div" {
                x.wrapping_div(y)
            } else {
                x.wrapping_rem(y)
            }))
        }
        "biggest" | "max" => ok(Value::Int64(
            a[1..].iter().map(to_int64).fold(to_int64(&a[0]), i64::max),
        )),
        "min" => ok(Value::Int64(
            a[1..].iter().map(to_int64).fold(to_int64(&a[0]), i64::min),
        )),
        "maxf" => ok(Value::Float(
            a[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&a[0]), go_max),
        )),
        "minf" => ok(Value::Float(
            a[1..]
                .iter()
                .map(to_float64)
                .fold(to_float64(&a[0]), go_min),
        )),
        "add1f" => ok(Value::Float(decimal_op(&a[0], &[Value::Int(1)], |x, y| {
            x + y
        }))),
        "addf" => ok(Value::Float(decimal_op(&Value::Float(0.0), a, |x, y| {
            x + y
        }))),
        "subf" => ok(Value::Float(decimal_op(&a[0], &a[1..], |x, y| x - y))),
        "mulf" => ok(Value::Float(decimal_op(&a[0], &a[1..], |x, y| x * y))),
        "divf" => {
            if a[1..].iter().any(|v| to_float64(v) == 0.0) {
                return Some(Err("decimal division by 0".into()));
            }
            ok(Value::Float(decimal_op(&a[0], &a[1..], |x, y| x / y)))
        }
        "ceil" => ok(Value::Float(to_float64(&a[0]).ceil())),
        "floor" => ok(Value::Float(to_float64(&a[0]).floor())),
        "round" => {
            let on = match a.get(2) {
                Some(Value::Float(f)) => *f,
                _ => 0.5,
            };
            let val = to_float64(&a[0]);
            let pow = 10f64.powf(int(a, 1) as f64);
            let digit = pow * val;
            let frac = digit.fract();
            let r = if frac >= on {
                digit.ceil()
            } else {
                digit.floor()
            };
            ok(Value::Float(r / pow))
        }
        _ => None,
    }
}

fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// sprig's decimal arithmetic (shopspring/decimal): exact on the shortest decimal forms, then back to
/// float64. Approximated with f64 arithmetic on values parsed from their shortest representations.
fn decimal_op(first: &Value, rest: &[Value], op: fn(f64, f64) -> f64) -> f64 {
    let parse = |v: &Value| -> f64 { to_float64(v) };
    let mut acc = parse(first);
    for v in rest {
        acc = op(acc, parse(v));
        // Round to 16 significant digits, as decimal arithmetic avoids binary noise like 0.30000000000000004.
        if acc.is_finite() && acc != 0.0 {
            let s = format!("{acc:.15e}");
            acc = s.parse().unwrap_or(acc);
        }
    }
    acc
}

fn int_list(v: Vec<i64>) -> Value {
    Value::List(
        ListKind::Int,
        Rc::new(v.into_iter().map(Value::Int).collect()),
    )
}

fn until_step(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, String> {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return Ok(v);
        }
        let mut i = start;
        while i > stop {
            if v.len() as i64 >= MAX_SEQUENCE {
                return Err(format!("sequence longer than {MAX_SEQUENCE} elements"));
            }
            v.push(i);
            i = i.saturating_add(step);
        }
        return Ok(v);
    }
    if step <= 0 {
        return Ok(v);
    }
    let mut i = start;
    while i < stop {
        if v.len() as i64 >= MAX_SEQUENCE {
            return Err(format!("sequence longer than {MAX_SEQUENCE} elements"));
        }
        v.push(i);
        i = i.saturating_add(step);
    }
    Ok(v)
}

fn seq(a: &[Value]) -> Result<Value, String> {
    let p: Vec<i64> = a
        .iter()
        .map(|v| match v {
            Value::Int(i) => *i,
            _ => 0,
        })
        .collect();
    let list = match p.len() {
        1 => {
            let (start, end) = (1, p[0]);
            let inc = if end < start { -1 } else { 1 };
            until_step(start, end + inc, inc)?
        }
        2 => {
            let (start, end) = (p[0], p[1]);
            let step = if end < start { -1 } else { 1 };
            until_step(start, end + step, step)?
        }
        3 => {
            let (start, step, end) = (p[0], p[1], p[2]);
            let mut inc = 1;
            if end < start {
                inc = -1;
                if step > 0 {
                    return Ok(Value::str(""));
                }
            }
            until_step(start, end + inc, step)?
        }
        _ => Vec::new(),
    };
    Ok(Value::str(
        list.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

fn slice(a: &[Value]) -> Result<Value, String> {
    let (kind, l) = match &a[0] {
        Value::List(k, l) => (*k, l.clone()),
        Value::Missing | Value::Nil => {
            return Err("runtime error: invalid memory address or nil pointer dereference".into());
        }
        other => {
            return Err(format!(
                "list should be type of slice or array but {}",
                other.kind_name()
            ));
        }
    };
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map_or(0, to_int64);
    let end = if a.len() < 3 {
        l.len() as i64
    } else {
        to_int64(&a[2])
    };
    if start < 0 || end < start || end > l.len() as i64 {
        return Err(format!(
            "reflect: slice index out of range [{start}:{end}] with capacity {}",
            l.len()
        ));
    }
    Ok(Value::List(
        kind,
        Rc::new(l[start as usize..end as usize].to_vec()),
    ))
}

fn dig(a: &[Value]) -> Result<Value, String> {
    if a.len() < 3 {
        return Err("dig needs at least three arguments".into());
    }
    let Value::Map(_, mut dict) = a[a.len() - 1].clone() else {
        return Err(format!(
            "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
            a[a.len() - 1].type_name()
        ));
    };
    let def = a[a.len() - 2].clone();
    let keys = &a[..a.len() - 2];
    for (i, k) in keys.iter().enumerate() {
        let Value::Str(k) = k else {
            return Err(format!(
                "interface conversion: interface {{}} is {}, not string",
                k.type_name()
            ));
        };
        let step = dict.borrow().get(&**k).cloned();
        let Some(step) = step else { return Ok(def) };
        if i + 1 == keys.len() {
            return Ok(step);
        }
        match step {
            Value::Map(_, m) => dict = m,
            other => {
                return Err(format!(
                    "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                    other.type_name()
                ));
            }
        }
    }
    Ok(def)
}

/// dario.cat/mergo's map merge as sprig's `merge` (keep) and `mergeOverwrite` use it.
fn merge(
    dst: &MapRef,
    src: &MapRef,
    overwrite: bool,
    depth: usize,
    steps: &mut u64,
) -> Result<(), String> {
    if depth > crate::value::MAX_PRINT_DEPTH {
        return Err("maps nested too deeply to merge".into());
    }
    let entries: Vec<(String, Value)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, sv) in entries {
        *steps += 1;
        if sv.is_nil() {
            if overwrite {
                dst.borrow_mut().insert(k, Value::Nil);
            }
            continue;
        }
        let dv = dst.borrow().get(&k).cloned();
        match (&sv, &dv) {
            (Value::Map(_, sm), Some(Value::Map(_, dm))) => {
                if !Rc::ptr_eq(sm, dm) {
                    merge(dm, sm, overwrite, depth + 1, steps)?;
                }
                if !dm.borrow().is_empty() {
                    continue;
                }
            }
            (Value::List(_, sl), Some(d)) if !empty(d) => {
                if !sl.is_empty() && overwrite {
                    dst.borrow_mut().insert(k, sv.clone());
                }
                continue;
            }
            _ => {}
        }
        if overwrite || dv.as_ref().is_none_or(empty) {
            if sv.contains_map(dst, 0) {
                return Err("merge would make a map contain itself".into());
            }
            dst.borrow_mut().insert(k, sv);
        }
    }
    Ok(())
}

#[allow(dead_code)]
fn _unused(a: &[Value]) -> Value {
    arg(a, 0)
}
