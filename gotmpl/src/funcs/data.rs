//! Encodings and data formats: JSON, YAML (Argo CD's `toYaml`/`fromYaml`), base64/base32, checksums,
//! semantic versions and URLs.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine;
use sha1::Digest as _;
use sha2::Digest as _;

use super::{Ctx, s};
use crate::fmt::format_float_v;
use crate::value::{MAX_PRINT_DEPTH, Semver, Value};

pub(super) fn call(ctx: &mut Ctx<'_>, name: &str, a: &[Value]) -> Option<Result<Value, String>> {
    let str_ok = |v: String| Some(Ok(Value::str(v)));
    match name {
        "toJson" => str_ok(go_json(&a[0], None, true).unwrap_or_default()),
        "mustToJson" => Some(go_json(&a[0], None, true).map(Value::str)),
        "toPrettyJson" => str_ok(go_json(&a[0], Some("  "), true).unwrap_or_default()),
        "mustToPrettyJson" => Some(go_json(&a[0], Some("  "), true).map(Value::str)),
        "toRawJson" | "mustToRawJson" => Some(go_json(&a[0], None, false).map(Value::str)),
        "fromJson" => Some(Ok(from_json(s(a, 0)).unwrap_or(Value::Nil))),
        "mustFromJson" => Some(from_json(s(a, 0))),
        "toYaml" => Some(to_yaml(&a[0])),
        "fromYaml" => Some(from_yaml(s(a, 0), false)),
        "fromYamlArray" => Some(from_yaml(s(a, 0), true)),
        "b64enc" => str_ok(base64::engine::general_purpose::STANDARD.encode(s(a, 0))),
        "b64dec" => {
            let input: String = s(a, 0)
                .chars()
                .filter(|&c| c != '\r' && c != '\n')
                .collect();
            str_ok(
                match base64::engine::general_purpose::STANDARD.decode(input.as_bytes()) {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => format!(
                        "illegal base64 data at input byte {}",
                        b64_error_offset(&e, input.len())
                    ),
                },
            )
        }
        "b32enc" => str_ok(base32_encode(s(a, 0).as_bytes())),
        "b32dec" => str_ok(match base32_decode(s(a, 0)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(i) => format!("illegal base32 data at input byte {i}"),
        }),
        "sha1sum" => str_ok(hex(&sha1::Sha1::digest(s(a, 0).as_bytes()))),
        "sha256sum" => str_ok(hex(&sha2::Sha256::digest(s(a, 0).as_bytes()))),
        "sha512sum" => str_ok(hex(&sha2::Sha512::digest(s(a, 0).as_bytes()))),
        "adler32sum" => str_ok(adler32(s(a, 0).as_bytes()).to_string()),
        "semver" => Some(parse_semver(s(a, 0)).map(|v| Value::Semver(Rc::new(v)))),
        "semverCompare" => Some(semver_compare(s(a, 0), s(a, 1)).map(Value::Bool)),
        "urlParse" => Some(url_parse(s(a, 0))),
        "urlJoin" => Some(Ok(Value::str(url_join(&a[0])))),
        _ => {
            let _ = ctx;
            None
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b64_error_offset(e: &base64::DecodeError, len: usize) -> usize {
    match e {
        base64::DecodeError::InvalidByte(i, _) => *i,
        base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        _ => len - len % 4,
    }
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let bits = buf.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                out.push(B32[((bits >> (35 - i * 5)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, usize> {
    let input: Vec<u8> = s.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if !input.len().is_multiple_of(8) {
        return Err(input.len() - input.len() % 8);
    }
    let mut out = Vec::new();
    for (ci, chunk) in input.chunks(8).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut bits = 0u64;
        for (i, &c) in chunk.iter().enumerate() {
            let v = if i >= 8 - pad {
                0
            } else {
                B32.iter().position(|&x| x == c).ok_or(ci * 8 + i)? as u64
            };
            bits = (bits << 5) | v;
        }
        let n = match pad {
            0 => 5,
            1 => 4,
            3 => 3,
            4 => 2,
            6 => 1,
            _ => return Err(ci * 8 + 8 - pad),
        };
        if pad > 0 && ci + 1 != input.len() / 8 {
            return Err(ci * 8 + 8 - pad);
        }
        for i in 0..n {
            out.push((bits >> (32 - i * 8)) as u8);
        }
    }
    Ok(out)
}

/// Go's `encoding/json` float format: positional unless the exponent is < -6 or >= 21.
fn json_float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!("json: unsupported value: {}", format_float_v(f)));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = e.parse().unwrap_or(0);
        return Ok(format!(
            "{m}e{}{}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    }
    // Shortest positional form.
    let v = format_float_v(f);
    if v.contains('e') {
        // format_float_v switches to exponent form at 1e+06; expand it.
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = e.parse().unwrap_or(0);
        let neg = m.starts_with('-');
        let digits: String = m.chars().filter(char::is_ascii_digit).collect();
        let nd = digits.len() as i32;
        let body = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= nd {
            format!("{}{}", digits, "0".repeat((exp + 1 - nd) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..(exp + 1) as usize],
                &digits[(exp + 1) as usize..]
            )
        };
        return Ok(if neg { format!("-{body}") } else { body });
    }
    Ok(v)
}

fn json_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `json.Marshal` / `MarshalIndent(v, "", indent)` of a template value.
pub(crate) fn go_json(v: &Value, indent: Option<&str>, html: bool) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, v, indent, html, 0)?;
    Ok(out)
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write_json(
    out: &mut String,
    v: &Value,
    indent: Option<&str>,
    html: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_PRINT_DEPTH {
        return Err("json: value nested too deeply".into());
    }
    match v {
        Value::Missing | Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)?),
        Value::Str(s) => json_string(out, s, html),
        Value::Semver(s) => json_string(out, &s.original, html),
        Value::List(_, l) => {
            if l.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_json(out, x, indent, html, depth + 1)?;
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Map(_, m) => {
            let m = m.borrow();
            if m.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                json_string(out, k, html);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, x, indent, html, depth + 1)?;
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
    Ok(())
}

fn from_json(text: &str) -> Result<Value, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(Value::from_json(&v))
}

/// Argo CD's `toYaml`: sigs.k8s.io/yaml `Marshal` (JSON, then go-yaml v2 style), without the final newline.
fn to_yaml(v: &Value) -> Result<Value, String> {
    let json = v.to_json(0)?;
    let text = edgecd_render::yaml::to_yaml_document(&json);
    Ok(Value::str(text.strip_suffix('\n').unwrap_or(&text)))
}

/// Argo CD's `fromYaml` (a mapping) and `fromYamlArray` (a sequence); numbers become float64 as the JSON
/// step of sigs.k8s.io/yaml makes them.
fn from_yaml(text: &str, array: bool) -> Result<Value, String> {
    let budget = edgecd_render::yaml::Budget::new(1 << 20);
    let doc = edgecd_render::yaml::load_one_within(text, &budget).map_err(|e| e.to_string())?;
    match (&doc, array) {
        (serde_json::Value::Null, false) => Ok(Value::map(BTreeMap::new())),
        (serde_json::Value::Null, true) => Ok(Value::list(Vec::new())),
        (serde_json::Value::Object(_), false) | (serde_json::Value::Array(_), true) => {
            Ok(Value::from_json(&doc))
        }
        (other, _) => {
            let kind = match other {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                _ => "bool",
            };
            let target = if array {
                "[]interface {}"
            } else {
                "map[string]interface {}"
            };
            Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type {target}"
            ))
        }
    }
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Masterminds/semver `NewVersion` (lenient: `v` prefix, missing minor/patch).
pub(crate) fn parse_semver(text: &str) -> Result<Semver, String> {
    let invalid = || "Invalid Semantic Version".to_string();
    let body = text.strip_prefix('v').unwrap_or(text);
    let (body, metadata) = match body.split_once('+') {
        Some((b, m)) => (b, m.to_string()),
        None => (body, String::new()),
    };
    let (core, pre) = match body.split_once('-') {
        Some((c, p)) => (c, p.to_string()),
        None => (body, String::new()),
    };
    let ident_ok = |s: &str| {
        s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if (!pre.is_empty() || body.contains('-')) && !ident_ok(&pre) {
        return Err(invalid());
    }
    if (!metadata.is_empty() || text.contains('+')) && !ident_ok(&metadata) {
        return Err(invalid());
    }
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(invalid());
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| parse_num(p))
        .collect::<Option<_>>()
        .ok_or_else(invalid)?;
    // Leading zeros are refused in prerelease numeric identifiers.
    for id in pre.split('.') {
        if id.len() > 1 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Version segment starts with 0".into());
        }
    }
    Ok(Semver {
        major: nums[0],
        minor: nums.get(1).copied().unwrap_or(0),
        patch: nums.get(2).copied().unwrap_or(0),
        pre,
        metadata,
        original: text.to_string(),
    })
}

fn cmp_pre(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Equal,
        (true, false) => return Greater,
        (false, true) => return Less,
        _ => {}
    }
    let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (parse_num(x), parse_num(y)) {
            (Some(m), Some(n)) => m.cmp(&n),
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (None, None) => x.cmp(y),
        };
        if o != Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

fn cmp_ver(a: &Semver, b: &Semver) -> std::cmp::Ordering {
    (a.major, a.minor, a.patch)
        .cmp(&(b.major, b.minor, b.patch))
        .then_with(|| cmp_pre(&a.pre, &b.pre))
}

/// One constraint's version: parts may be wildcards.
struct CVer {
    v: Semver,
    /// How many leading parts are given (not wildcards): 0..=3.
    given: usize,
}

fn parse_cver(s: &str) -> Result<CVer, String> {
    let bad = || format!("improper constraint: {s}");
    let body = s.strip_prefix('v').unwrap_or(s);
    let (core, rest) = match body.find(['-', '+']) {
        Some(i) => (&body[..i], &body[i..]),
        None => (body, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return Err(bad());
    }
    let mut given = 0;
    let mut nums = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        if matches!(*p, "x" | "X" | "*") {
            break;
        }
        nums[i] = parse_num(p).ok_or_else(bad)?;
        given = i + 1;
    }
    let text = format!("{}.{}.{}{}", nums[0], nums[1], nums[2], rest);
    let v = parse_semver(&text).map_err(|_| bad())?;
    Ok(CVer { v, given })
}

fn check_one(op: &str, c: &CVer, v: &Semver) -> bool {
    use std::cmp::Ordering::*;
    // A prerelease version only satisfies constraints that carry a prerelease themselves.
    if !v.pre.is_empty() && c.v.pre.is_empty() {
        return false;
    }
    let ord = cmp_ver(v, &c.v);
    let next = |level: usize| -> Semver {
        let mut n = c.v.clone();
        n.pre.clear();
        match level {
            0 => {
                n.major += 1;
                n.minor = 0;
                n.patch = 0;
            }
            1 => {
                n.minor += 1;
                n.patch = 0;
            }
            _ => n.patch += 1,
        }
        n
    };
    match op {
        "" | "=" => {
            if c.given == 3 {
                ord == Equal
            } else {
                ord != Less && cmp_ver(v, &next(c.given.saturating_sub(1))) == Less
                    || (c.given == 0)
            }
        }
        "!=" => {
            if c.given == 3 {
                ord != Equal
            } else {
                !(ord != Less && cmp_ver(v, &next(c.given.saturating_sub(1))) == Less)
                    && c.given != 0
            }
        }
        ">" => {
            if c.given == 3 {
                ord == Greater
            } else if c.given == 0 {
                false
            } else {
                cmp_ver(v, &next(c.given - 1)) != Less
            }
        }
        "<" => ord == Less,
        ">=" | "=>" => ord != Less,
        "<=" | "=<" => {
            if c.given == 3 || c.given == 0 {
                c.given == 0 || ord != Greater
            } else {
                cmp_ver(v, &next(c.given - 1)) == Less
            }
        }
        "~" | "~>" => {
            if ord == Less {
                return false;
            }
            if c.given == 0 {
                return true;
            }
            cmp_ver(v, &next(if c.given == 1 { 0 } else { 1 })) == Less
        }
        "^" => {
            if ord == Less {
                return false;
            }
            if c.given == 0 {
                return true;
            }
            let level = if c.v.major > 0 || c.given == 1 {
                0
            } else if c.v.minor > 0 || c.given == 2 {
                1
            } else {
                2
            };
            cmp_ver(v, &next(level)) == Less
        }
        _ => false,
    }
}

/// Masterminds/semver's `NewConstraint(c).Check(NewVersion(v))`.
fn semver_compare(constraint: &str, version: &str) -> Result<bool, String> {
    let v = parse_semver(version).map_err(|_| "failed to parse semver version".to_string())?;
    let mut groups = Vec::new();
    for alt in constraint.split("||") {
        // Hyphen ranges "a - b" become ">= a, <= b".
        let mut terms: Vec<(String, String)> = Vec::new();
        let toks: Vec<&str> = alt.split([',', ' ']).filter(|t| !t.is_empty()).collect();
        let mut i = 0;
        while i < toks.len() {
            if i + 2 < toks.len() && toks[i + 1] == "-" {
                terms.push((">=".into(), toks[i].into()));
                terms.push(("<=".into(), toks[i + 2].into()));
                i += 3;
                continue;
            }
            let t = toks[i];
            let op_len = t
                .find(|c: char| c.is_ascii_alphanumeric() || c == '*')
                .unwrap_or(t.len());
            let (op, ver) = t.split_at(op_len);
            if ver.is_empty() {
                // An operator separated from its version by a space.
                match toks.get(i + 1) {
                    Some(n) => {
                        terms.push((op.into(), (*n).into()));
                        i += 2;
                        continue;
                    }
                    None => return Err(format!("improper constraint: {constraint}")),
                }
            }
            terms.push((op.into(), ver.into()));
            i += 1;
        }
        if terms.is_empty() {
            return Err(format!("improper constraint: {constraint}"));
        }
        let mut parsed = Vec::new();
        for (op, ver) in terms {
            if !matches!(
                op.as_str(),
                "" | "=" | "!=" | ">" | "<" | ">=" | "=>" | "<=" | "=<" | "~" | "~>" | "^"
            ) {
                return Err(format!("improper constraint: {constraint}"));
            }
            parsed.push((
                op,
                parse_cver(&ver).map_err(|_| format!("improper constraint: {constraint}"))?,
            ));
        }
        groups.push(parsed);
    }
    Ok(groups
        .iter()
        .any(|g| g.iter().all(|(op, c)| check_one(op, c, &v))))
}

/// Go's `url.Parse` as sprig's `urlParse` reports it.
fn url_parse(text: &str) -> Result<Value, String> {
    let mut rest = text;
    let mut fragment = String::new();
    if let Some((r, f)) = rest.split_once('#') {
        rest = r;
        fragment = f.to_string();
    }
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if !cand.is_empty()
            && cand.starts_with(|c: char| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        } else if i == 0 {
            return Err(format!(
                "unable to parse url: parse {}: missing protocol scheme",
                crate::fmt::go_quote(text)
            ));
        }
    }
    let mut query = String::new();
    if let Some((r, q)) = rest.split_once('?') {
        rest = r;
        query = q.to_string();
    }
    let (mut host, mut userinfo, mut opaque) = (String::new(), String::new(), String::new());
    let path;
    if let Some(r) = rest.strip_prefix("//") {
        let (authority, p) = match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        };
        let (user, h) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if let Some(u) = user {
            userinfo = u.to_string();
        }
        host = h.to_string();
        path = p.to_string();
    } else if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest.to_string();
        path = String::new();
    } else {
        path = rest.to_string();
    }
    let hostname = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_string()
    } else {
        host.rsplit_once(':')
            .map_or(host.clone(), |(h, _)| h.to_string())
    };
    let mut m = BTreeMap::new();
    m.insert("scheme".to_string(), Value::str(scheme));
    m.insert("host".to_string(), Value::str(host));
    m.insert("hostname".to_string(), Value::str(hostname));
    m.insert("path".to_string(), Value::str(path));
    m.insert("query".to_string(), Value::str(query));
    m.insert("opaque".to_string(), Value::str(opaque));
    m.insert("fragment".to_string(), Value::str(fragment));
    m.insert("userinfo".to_string(), Value::str(userinfo));
    Ok(Value::map(m))
}

/// sprig's `urlJoin`: a URL from the parts `urlParse` returns.
fn url_join(v: &Value) -> String {
    let Value::Map(_, m) = v else {
        return String::new();
    };
    let m = m.borrow();
    let get = |k: &str| {
        m.get(k)
            .map(|v| {
                if v.is_nil() {
                    String::new()
                } else {
                    super::strval(v)
                }
            })
            .unwrap_or_default()
    };
    let mut out = String::new();
    let scheme = get("scheme");
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    let opaque = get("opaque");
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        let host = get("host");
        let userinfo = get("userinfo");
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !get("path").is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        let path = get("path");
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&path);
    }
    let query = get("query");
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    let fragment = get("fragment");
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&fragment);
    }
    out
}
