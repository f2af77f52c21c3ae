//! sprig's string, conversion, path and regular-expression functions, and Argo CD's `normalize`.

use super::{Ctx, arg, int, s, strval, to_float64, to_int64};
use crate::fmt::go_quote;
use crate::value::{ListKind, MapKind, Value};

pub(super) fn call(ctx: &mut Ctx<'_>, name: &str, a: &[Value]) -> Option<Result<Value, String>> {
    let str_ok = |v: String| Some(Ok(Value::str(v)));
    match name {
        "hello" => str_ok("Hello!".into()),
        "abbrev" => str_ok(abbrev(int(a, 0), s(a, 1))),
        "abbrevboth" => Some(abbrevboth(int(a, 0), int(a, 1), s(a, 2)).map(Value::str)),
        "trunc" => Some(trunc(int(a, 0), s(a, 1)).map(Value::str)),
        "trim" => str_ok(s(a, 0).trim_matches(char::is_whitespace).to_string()),
        "upper" => str_ok(map_chars(s(a, 0), upper_char)),
        "lower" => str_ok(map_chars(s(a, 0), lower_char)),
        "title" => str_ok(title(s(a, 0))),
        "untitle" => str_ok(untitle(s(a, 0))),
        "substr" => Some(substr(int(a, 0), int(a, 1), s(a, 2)).map(Value::str)),
        "repeat" => {
            let n = int(a, 0);
            if n < 0 {
                return Some(Err("strings: negative Repeat count".into()));
            }
            let len = s(a, 1)
                .len()
                .saturating_mul(usize::try_from(n).unwrap_or(usize::MAX));
            if let Err(e) = ctx.check_size(len) {
                return Some(Err(e));
            }
            ctx.steps += len as u64 / 64;
            str_ok(s(a, 1).repeat(n as usize))
        }
        "trimall" | "trimAll" => {
            let cut = s(a, 0);
            str_ok(s(a, 1).trim_matches(|c| cut.contains(c)).to_string())
        }
        "trimSuffix" => str_ok(s(a, 1).strip_suffix(s(a, 0)).unwrap_or(s(a, 1)).to_string()),
        "trimPrefix" => str_ok(s(a, 1).strip_prefix(s(a, 0)).unwrap_or(s(a, 1)).to_string()),
        "nospace" => str_ok(
            s(a, 0)
                .chars()
                .filter(|c| !(c.is_ascii() && is_go_space(*c)))
                .collect(),
        ),
        "initials" => str_ok(initials(s(a, 0))),
        "swapcase" => str_ok(swapcase(s(a, 0))),
        "snakecase" => str_ok(lower_case_words(s(a, 0), '_')),
        "kebabcase" => str_ok(lower_case_words(s(a, 0), '-')),
        "camelcase" => str_ok(pascal_case(s(a, 0))),
        "wrap" => str_ok(wrap(s(a, 1), int(a, 0), "\n", false)),
        "wrapWith" => str_ok(wrap(s(a, 2), int(a, 0), s(a, 1), true)),
        "contains" => Some(Ok(Value::Bool(s(a, 1).contains(s(a, 0))))),
        "hasPrefix" => Some(Ok(Value::Bool(s(a, 1).starts_with(s(a, 0))))),
        "hasSuffix" => Some(Ok(Value::Bool(s(a, 1).ends_with(s(a, 0))))),
        "quote" => str_ok(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| go_quote(&strval(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => str_ok(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(|v| format!("'{}'", v.to_v()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => str_ok(
            a.iter()
                .filter(|v| !v.is_nil())
                .map(Value::to_v)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "indent" | "nindent" => {
            let n = int(a, 0);
            let pad = " ".repeat(usize::try_from(n.clamp(0, 4096)).unwrap_or(0));
            let body = s(a, 1);
            let lines = body.matches('\n').count() + 1;
            if let Err(e) = ctx.check_size(body.len() + lines * pad.len() + 1) {
                return Some(Err(e));
            }
            let mut out = if name == "nindent" {
                "\n".to_string()
            } else {
                String::new()
            };
            out.push_str(&pad);
            out.push_str(&body.replace('\n', &format!("\n{pad}")));
            str_ok(out)
        }
        "replace" => {
            let (old, new, src) = (s(a, 0), s(a, 1), s(a, 2));
            if old.is_empty() {
                // Go inserts `new` before every rune and at the end.
                let n = src.chars().count() + 1;
                if let Err(e) = ctx.check_size(src.len() + n * new.len()) {
                    return Some(Err(e));
                }
                let mut out = String::new();
                for c in src.chars() {
                    out.push_str(new);
                    out.push(c);
                }
                out.push_str(new);
                return str_ok(out);
            }
            let n = src.matches(old).count();
            if let Err(e) = ctx.check_size(src.len() + n * new.len()) {
                return Some(Err(e));
            }
            str_ok(src.replace(old, new))
        }
        "plural" => str_ok(if int(a, 2) == 1 { s(a, 0) } else { s(a, 1) }.to_string()),
        "toString" => str_ok(strval(&arg(a, 0))),
        "atoi" => Some(Ok(Value::Int(atoi(s(a, 0))))),
        "int64" => Some(Ok(Value::Int64(to_int64(&arg(a, 0))))),
        "int" => Some(Ok(Value::Int(to_int64(&arg(a, 0))))),
        "float64" => Some(Ok(Value::Float(to_float64(&arg(a, 0))))),
        "toDecimal" => Some(Ok(Value::Int64(
            i64::from_str_radix(&arg(a, 0).to_v(), 8).unwrap_or(0),
        ))),
        "split" | "splitn" => {
            let parts: Vec<&str> = if name == "split" {
                go_split(s(a, 1), s(a, 0), -1)
            } else {
                go_split(s(a, 2), s(a, 0), int(a, 1))
            };
            let m = parts
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::str(p)))
                .collect();
            Some(Ok(Value::Map(
                MapKind::Str,
                std::rc::Rc::new(std::cell::RefCell::new(m)),
            )))
        }
        "splitList" => Some(Ok(Value::str_list(
            go_split(s(a, 1), s(a, 0), -1)
                .into_iter()
                .map(String::from)
                .collect(),
        ))),
        "toStrings" => Some(Ok(Value::str_list(strslice(&arg(a, 0))))),
        "join" => str_ok(strslice(&arg(a, 1)).join(s(a, 0))),
        "sortAlpha" => {
            let v = arg(a, 0);
            let mut list = match &v {
                Value::List(..) => strslice(&v),
                other => vec![strval(other)],
            };
            list.sort();
            Some(Ok(Value::str_list(list)))
        }
        "fail" => Some(Err(s(a, 0).to_string())),
        "normalize" => str_ok(normalize(s(a, 0))),
        "base" | "osBase" => str_ok(path_base(s(a, 0))),
        "dir" | "osDir" => str_ok(path_dir(s(a, 0))),
        "clean" | "osClean" => str_ok(path_clean(s(a, 0))),
        "ext" | "osExt" => str_ok(path_ext(s(a, 0))),
        "isAbs" | "osIsAbs" => Some(Ok(Value::Bool(s(a, 0).starts_with('/')))),
        "regexMatch" => Some(Ok(Value::Bool(
            compile(s(a, 0)).is_ok_and(|r| r.is_match(s(a, 1))),
        ))),
        "mustRegexMatch" => Some(compile(s(a, 0)).map(|r| Value::Bool(r.is_match(s(a, 1))))),
        "regexFind" | "mustRegexFind" => {
            Some(compile(s(a, 0)).map(|r| Value::str(r.find(s(a, 1)).map_or("", |m| m.as_str()))))
        }
        "regexFindAll" | "mustRegexFindAll" => Some(compile(s(a, 0)).map(|r| {
            let n = int(a, 2);
            let all = r.find_iter(s(a, 1)).map(|m| m.as_str().to_string());
            Value::str_list(if n < 0 {
                all.collect()
            } else {
                all.take(n as usize).collect()
            })
        })),
        "regexReplaceAll" | "mustRegexReplaceAll" => Some(compile(s(a, 0)).and_then(|r| {
            let out = r.replace_all(s(a, 1), s(a, 2)).into_owned();
            ctx.check_size(out.len())?;
            Ok(Value::str(out))
        })),
        "regexReplaceAllLiteral" | "mustRegexReplaceAllLiteral" => {
            Some(compile(s(a, 0)).and_then(|r| {
                let out = r
                    .replace_all(s(a, 1), regex::NoExpand(s(a, 2)))
                    .into_owned();
                ctx.check_size(out.len())?;
                Ok(Value::str(out))
            }))
        }
        "regexSplit" | "mustRegexSplit" => Some(
            compile(s(a, 0)).map(|r| Value::str_list(regex_split(&r, s(a, 0), s(a, 1), int(a, 2)))),
        ),
        "regexQuoteMeta" => str_ok(quote_meta(s(a, 0))),
        _ => None,
    }
}

fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn upper_char(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower_char(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn map_chars(s: &str, f: fn(char) -> char) -> String {
    s.chars().map(f).collect()
}

/// Byte-index slicing that refuses to cut a UTF-8 character (Go would produce invalid text).
fn cut(s: &str, from: usize, to: usize) -> Result<String, String> {
    s.get(from..to)
        .map(str::to_string)
        .ok_or_else(|| format!("cutting {s:?} at bytes {from}..{to} splits a UTF-8 character"))
}

fn trunc(c: i64, s: &str) -> Result<String, String> {
    let len = s.len() as i64;
    if c < 0 && len + c > 0 {
        return cut(s, (len + c) as usize, s.len());
    }
    if c >= 0 && len > c {
        return cut(s, 0, c as usize);
    }
    Ok(s.to_string())
}

fn substr(start: i64, end: i64, s: &str) -> Result<String, String> {
    let len = s.len() as i64;
    let oob = |a: i64, b: i64| format!("runtime error: slice bounds out of range [{a}:{b}]");
    if start < 0 {
        if end < 0 || end > len {
            return Err(format!(
                "runtime error: slice bounds out of range [:{end}] with length {len}"
            ));
        }
        return cut(s, 0, end as usize);
    }
    if end < 0 || end > len {
        if start > len {
            return Err(format!(
                "runtime error: slice bounds out of range [{start}:{len}]"
            ));
        }
        return cut(s, start as usize, s.len());
    }
    if start > end {
        return Err(oob(start, end));
    }
    cut(s, start as usize, end as usize)
}

fn abbrev(width: i64, s: &str) -> String {
    if width < 4 {
        return s.to_string();
    }
    abbreviate_full(s, 0, width).unwrap_or_default()
}

fn abbrevboth(left: i64, right: i64, s: &str) -> Result<String, String> {
    if right < 4 || (left > 0 && right < 7) {
        return Ok(s.to_string());
    }
    Ok(abbreviate_full(s, left, right).unwrap_or_default())
}

/// goutils' AbbreviateFull (byte-based, like the original).
fn abbreviate_full(s: &str, offset: i64, max: i64) -> Result<String, String> {
    if s.is_empty() {
        return Ok(String::new());
    }
    if max < 4 {
        return Err("minimum abbreviation width is 4".into());
    }
    let len = s.len() as i64;
    if len <= max {
        return Ok(s.to_string());
    }
    let mut offset = offset.min(len);
    if len - offset < max - 3 {
        offset = len - (max - 3);
    }
    if offset <= 4 {
        return Ok(format!("{}...", cut(s, 0, (max - 3) as usize)?));
    }
    if max < 7 {
        return Err("minimum abbreviation width with offset is 7".into());
    }
    if offset + max - 3 < len {
        let rest = cut(s, offset as usize, s.len())?;
        return Ok(format!("...{}", abbreviate_full(&rest, 0, max - 3)?));
    }
    Ok(format!(
        "...{}",
        cut(s, (len - (max - 3)) as usize, s.len())?
    ))
}

/// Go's `strings.Title`: the first letter of every word in title case.
fn title(s: &str) -> String {
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_separator(prev) {
            out.push(upper_char(c));
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

fn untitle(s: &str) -> String {
    let mut next = true;
    s.chars()
        .map(|c| {
            if c.is_whitespace() {
                next = true;
                c
            } else if next {
                next = false;
                lower_char(c)
            } else {
                c
            }
        })
        .collect()
}

fn initials(s: &str) -> String {
    let mut gap = true;
    let mut out = String::new();
    for b in s.bytes() {
        let c = b as char;
        if is_go_space(c) && (b < 0x80 || b == 0x85 || b == 0xa0) {
            gap = true;
        } else if gap {
            if b < 0x80 {
                out.push(c);
            }
            gap = false;
        }
    }
    out
}

fn swapcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                lower_char(c)
            } else if c.is_lowercase() {
                upper_char(c)
            } else {
                c
            }
        })
        .collect()
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

#[derive(Clone, Copy, PartialEq)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alpha,
    Connector,
    Punct,
    Other,
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

/// Splits off the next word the way huandu/xstrings does for snake/kebab case.
fn next_word(s: &str) -> (Word, &str, &str) {
    let mut it = s.char_indices().peekable();
    let Some((_, r)) = it.next() else {
        return (Word::Invalid, "", "");
    };
    let end_while = |pred: &dyn Fn(char) -> bool| -> usize {
        let mut end = r.len_utf8();
        for (i, c) in s.char_indices().skip(1) {
            if !pred(c) {
                return i;
            }
            end = i + c.len_utf8();
        }
        end
    };
    let (wt, end) = if is_connector(r) {
        (Word::Connector, end_while(&is_connector))
    } else if is_punct(r) {
        (Word::Punct, end_while(&is_punct))
    } else if r.is_uppercase() {
        let rest = &s[r.len_utf8()..];
        match rest.chars().next() {
            Some(n) if n.is_uppercase() => {
                // A run of capitals; the last one starts the next word if a lowercase letter follows.
                let mut end = r.len_utf8();
                let mut last_len = 0;
                let mut next_c = None;
                for (i, c) in s.char_indices().skip(1) {
                    if !c.is_uppercase() {
                        next_c = Some(c);
                        break;
                    }
                    end = i + c.len_utf8();
                    last_len = c.len_utf8();
                }
                if next_c.is_some_and(char::is_alphabetic) {
                    end -= last_len;
                }
                (Word::Upper, end)
            }
            Some(n) if n.is_alphabetic() => {
                let mut end = r.len_utf8();
                for (i, c) in s.char_indices().skip(1) {
                    if !c.is_alphabetic() || c.is_uppercase() {
                        break;
                    }
                    end = i + c.len_utf8();
                }
                (Word::Upper, end)
            }
            _ => (Word::Upper, r.len_utf8()),
        }
    } else if r.is_alphabetic() {
        (
            Word::Alpha,
            end_while(&|c: char| c.is_alphabetic() && !c.is_uppercase()),
        )
    } else if r.is_numeric() {
        (Word::Number, end_while(&|c: char| c.is_numeric()))
    } else {
        (
            Word::Other,
            end_while(&|c: char| {
                !(is_connector(c) || c.is_alphabetic() || c.is_numeric() || is_punct(c))
            }),
        )
    };
    (wt, &s[..end], &s[end..])
}

fn to_lower(out: &mut String, wt: Word, w: &str, connector: char) {
    if wt != Word::Upper && wt != Word::Connector {
        out.push_str(w);
        return;
    }
    for c in w.chars() {
        if is_connector(c) {
            out.push(connector);
        } else {
            out.push(lower_char(c));
        }
    }
}

/// xstrings' camelCaseToLowerCase (snakecase, kebabcase).
fn lower_case_words(s: &str, connector: char) -> String {
    if s.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let (mut wt, mut word, mut rem) = next_word(s);
    while !rem.is_empty() {
        if wt != Word::Connector {
            to_lower(&mut out, wt, word, connector);
        }
        let prev = wt;
        let last = word;
        (wt, word, rem) = next_word(rem);
        match prev {
            Word::Number => {
                while wt == Word::Alpha || wt == Word::Number {
                    to_lower(&mut out, wt, word, connector);
                    (wt, word, rem) = next_word(rem);
                }
                if wt != Word::Invalid && wt != Word::Punct && wt != Word::Connector {
                    out.push(connector);
                }
            }
            Word::Connector => to_lower(&mut out, prev, last, connector),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                if rem.is_empty() {
                    continue;
                }
                let last = word;
                (wt, word, rem) = next_word(rem);
                if wt != Word::Alpha {
                    to_lower(&mut out, Word::Number, last, connector);
                    if wt != Word::Connector && wt != Word::Punct {
                        out.push(connector);
                    }
                    continue;
                }
                out.push(connector);
                to_lower(&mut out, Word::Number, last, connector);
                while wt == Word::Alpha || wt == Word::Number {
                    to_lower(&mut out, wt, word, connector);
                    (wt, word, rem) = next_word(rem);
                }
                if wt != Word::Invalid && wt != Word::Connector && wt != Word::Punct {
                    out.push(connector);
                }
            }
        }
    }
    to_lower(&mut out, wt, word, connector);
    out
}

/// xstrings' ToPascalCase (sprig's camelcase).
fn pascal_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let mut i = 0;
    let mut first_upper = false;
    let mut r0 = '\0';
    let mut found = false;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if !is_connector(c) {
            first_upper = c.is_uppercase();
            r0 = upper_char(c);
            found = true;
            break;
        }
        out.push(c);
    }
    if i >= chars.len() {
        if found {
            out.push(r0);
        }
        return out;
    }
    while i < chars.len() {
        let r1 = r0;
        r0 = chars[i];
        i += 1;
        if is_connector(r0) && is_connector(r1) {
            out.push(r1);
            continue;
        }
        if is_connector(r1) {
            first_upper = r0.is_uppercase();
            r0 = upper_char(r0);
        } else {
            if first_upper {
                if r0.is_uppercase() {
                    r0 = lower_char(r0);
                } else {
                    first_upper = false;
                }
            }
            out.push(r1);
        }
    }
    out.push(r0);
    out
}

/// goutils' WrapCustom (byte-based).
fn wrap(s: &str, len: i64, newline: &str, long_words: bool) -> String {
    if s.is_empty() {
        return String::new();
    }
    let newline = if newline.is_empty() { "\n" } else { newline };
    let wl = usize::try_from(len.max(1)).unwrap_or(1);
    let b = s.as_bytes();
    let n = b.len();
    let mut off = 0;
    let mut out: Vec<u8> = Vec::with_capacity(n);
    while n - off > wl {
        if b[off] == b' ' {
            off += 1;
            continue;
        }
        let end = (wl + off + 1).min(n);
        let space = b[off..end]
            .iter()
            .rposition(|&c| c == b' ')
            .map(|i| i + off);
        if let Some(sp) = space {
            out.extend_from_slice(&b[off..sp]);
            out.extend_from_slice(newline.as_bytes());
            off = sp + 1;
        } else if long_words {
            out.extend_from_slice(&b[off..off + wl]);
            out.extend_from_slice(newline.as_bytes());
            off += wl;
        } else {
            let end = wl + off;
            match b[end..].iter().position(|&c| c == b' ') {
                None => {
                    out.extend_from_slice(&b[off..]);
                    off = n;
                }
                Some(i) => {
                    let sp = i + end;
                    out.extend_from_slice(&b[off..sp]);
                    out.extend_from_slice(newline.as_bytes());
                    off = sp + 1;
                }
            }
        }
    }
    out.extend_from_slice(&b[off..]);
    String::from_utf8_lossy(&out).into_owned()
}

fn atoi(s: &str) -> i64 {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty()
        || !t
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
        || t.starts_with("--")
    {
        return 0;
    }
    t.parse().unwrap_or(0)
}

/// Go's `strings.SplitN` (n < 0: all).
pub(crate) fn go_split<'a>(s: &'a str, sep: &str, n: i64) -> Vec<&'a str> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let mut parts: Vec<&str> = Vec::new();
        let mut idx: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
        idx.push(s.len());
        for w in idx.windows(2) {
            if n > 0 && parts.len() as i64 == n - 1 {
                parts.push(&s[w[0]..]);
                return parts;
            }
            parts.push(&s[w[0]..w[1]]);
        }
        return parts;
    }
    if n < 0 {
        return s.split(sep).collect();
    }
    s.splitn(n as usize, sep).collect()
}

/// sprig's `strslice`: a list's non-nil elements as strings; a scalar as a one-element list.
pub(crate) fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(ListKind::Str, l) => l.iter().map(strval).collect(),
        Value::List(_, l) => l.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Missing | Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Argo CD's `normalize`: a DNS-1123-ish name.
pub(crate) fn normalize(s: &str) -> String {
    let lowered = map_chars(s, lower_char);
    let mut out: String = lowered
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(253);
    out.trim_matches(['-', '.']).to_string()
}

fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(p: &str) -> String {
    for (i, c) in p.char_indices().rev() {
        if c == '/' {
            break;
        }
        if c == '.' {
            return p[i..].to_string();
        }
    }
    String::new()
}

/// Compiles a Go (RE2) regular expression: `\d`, `\w`, `\s` and `\b` are ASCII-only, as in Go.
pub(crate) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match n {
                    'd' | 'w' | 's' | 'D' | 'W' | 'S' | 'b' | 'B' if !in_class => {
                        out.push_str("(?-u:\\");
                        out.push(n);
                        out.push(')');
                    }
                    'd' if in_class => out.push_str("0-9"),
                    'w' if in_class => out.push_str("0-9A-Za-z_"),
                    's' if in_class => out.push_str("\\t\\n\\x0C\\r "),
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class like [:alpha:]: copy through its closing "]".
                out.push('[');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    regex::RegexBuilder::new(&out)
        .size_limit(1 << 20)
        .nest_limit(100)
        .build()
        .map_err(|e| {
            format!(
                "error parsing regexp: {}",
                e.to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
            )
        })
}

/// Go's `Regexp.Split`.
fn regex_split(r: &regex::Regex, expr: &str, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !expr.is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    let matches: Vec<(usize, usize)> = if n < 0 {
        r.find_iter(s).map(|m| (m.start(), m.end())).collect()
    } else {
        r.find_iter(s)
            .take(n as usize)
            .map(|m| (m.start(), m.end()))
            .collect()
    };
    for (ms, me) in matches {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = ms;
        if me != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = me;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
