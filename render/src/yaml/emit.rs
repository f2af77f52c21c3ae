//! YAML emitter reproducing `kustomize build` output style (Go `sigs.k8s.io/yaml` over go-yaml v2).
//!
//! Style rules: keys sorted with go-yaml's "natural" order, 2-space indentation, sequences not indented under
//! their key, strings quoted only when needed (single quotes preferred, double quotes for strings that would
//! read as another type or contain special characters), `|` block scalars for multi-line strings, and plain or
//! quoted strings folded at spaces once a line passes 80 columns.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

const BEST_WIDTH: usize = 80;
const INDENT: usize = 2;

/// Renders documents as a kustomize-style YAML stream (`---` between documents, none before the first).
pub fn to_yaml(documents: &[Value]) -> String {
    let mut out = String::new();
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml_document(document));
    }
    out
}

/// Renders one document (no separator).
pub fn to_yaml_document(document: &Value) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
    };
    match document {
        Value::Object(map) if !map.is_empty() => emitter.map(map, 0, false),
        Value::Array(items) if !items.is_empty() => emitter.seq(items, 0, false),
        other => {
            emitter.inline_value(other, 0);
            emitter.newline();
        }
    }
    emitter.out
}

/// Orders mapping keys like go-yaml v2's `keyList.Less`: runs of digits compare numerically, and at the first
/// difference a letter sorts after a non-letter.
pub(crate) fn go_key_cmp(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn): (i128, i128) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .saturating_mul(10)
                .saturating_add(i128::from(ar[ai] as u32 - '0' as u32));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .saturating_mul(10)
                .saturating_add(i128::from(br[bi] as u32 - '0' as u32));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Sorts keys by [`go_key_cmp`] with a stable merge sort that tolerates its inconsistencies. go-yaml's order
/// is not a total order for every set of keys (digit runs against other characters can make it cyclic); Go's
/// sort then returns some order, while the standard library's sort may panic on a comparison that is not a
/// total order. For keys it orders consistently, the result is the one stable sorted order.
fn sort_keys<T>(keys: Vec<(&String, T)>) -> Vec<(&String, T)> {
    if keys.len() <= 1 {
        return keys;
    }
    let mut right = keys;
    let left: Vec<(&String, T)> = right.drain(..right.len() / 2).collect();
    let (left, right) = (sort_keys(left), sort_keys(right));
    let mut merged = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        if go_key_cmp(b.0, a.0) == Ordering::Less {
            merged.extend(r.next());
        } else {
            merged.extend(l.next());
        }
    }
    merged.extend(l);
    merged.extend(r);
    merged
}

/// Formats a JSON number the way it comes out of Go's JSON encoder and then go-yaml v2.
pub(crate) fn format_number(number: &Number) -> String {
    if let Some(i) = number.as_i64() {
        return i.to_string();
    }
    if let Some(u) = number.as_u64() {
        return u.to_string();
    }
    let f = number.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        // Integral floats print without a fraction in JSON and then read back as integers.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "bounded by the check above"
        )]
        return (f as i64).to_string();
    }
    if f.fract() == 0.0 && (0.0..1.8e19).contains(&f) {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "bounded by the check above"
        )]
        return (f as u64).to_string();
    }
    format_go_g(f)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn format_go_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exponent) {
        let mut m = digits[..1].to_string();
        if digits.len() > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    if exponent >= 0 {
        let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
        if digits.len() <= int_len {
            format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
        format!("{sign}0.{}{digits}", "0".repeat(zeros))
    }
}

// === impl Emitter ===

struct Emitter {
    out: String,
    column: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        match s.rfind('\n') {
            Some(at) => self.column = s[at + 1..].chars().count(),
            None if s.is_ascii() => self.column += s.len(),
            None => self.column += s.chars().count(),
        }
    }

    fn push_char(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    fn newline(&mut self) {
        self.push_char('\n');
    }

    fn indent_to(&mut self, indent: usize) {
        const SPACES: &str = "                                                                ";
        let mut left = indent;
        while left > 0 {
            let n = left.min(SPACES.len());
            self.out.push_str(&SPACES[..n]);
            left -= n;
        }
        self.column += indent;
    }

    /// Writes a block mapping whose keys sit at `indent`; the first key continues the current line if `inline`.
    fn map(&mut self, map: &Map<String, Value>, indent: usize, inline: bool) {
        let entries = sort_keys(map.iter().collect());
        for (i, (key, value)) in entries.into_iter().enumerate() {
            if i > 0 || !inline {
                self.indent_to(indent);
            }
            if !simple_key(key) {
                self.complex_entry(key, value, indent);
                continue;
            }
            self.string(key, indent + INDENT, true);
            self.push_char(':');
            match value {
                Value::Object(child) if !child.is_empty() => {
                    self.newline();
                    self.map(child, indent + INDENT, false);
                }
                Value::Array(items) if !items.is_empty() => {
                    self.newline();
                    self.seq(items, indent, false);
                }
                scalar => {
                    self.push_char(' ');
                    self.inline_value(scalar, indent + INDENT);
                    self.newline();
                }
            }
        }
    }

    /// Writes `? key` and `: value` at `indent`, as go-yaml does for a key that cannot be a simple key (longer
    /// than 128 bytes, or spanning lines: a YAML parser reads at most 1024 characters of a simple key).
    fn complex_entry(&mut self, key: &str, value: &Value, indent: usize) {
        self.push("? ");
        self.string(key, indent + INDENT, false);
        self.newline();
        self.indent_to(indent);
        self.push(": ");
        match value {
            Value::Object(child) if !child.is_empty() => self.map(child, indent + INDENT, true),
            Value::Array(items) if !items.is_empty() => self.seq(items, indent + INDENT, true),
            scalar => {
                self.inline_value(scalar, indent + INDENT);
                self.newline();
            }
        }
    }

    /// Writes a block sequence whose dashes sit at `indent`.
    fn seq(&mut self, items: &[Value], indent: usize, inline: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.indent_to(indent);
            }
            self.push("- ");
            match item {
                Value::Object(child) if !child.is_empty() => self.map(child, indent + INDENT, true),
                Value::Array(child) if !child.is_empty() => self.seq(child, indent + INDENT, true),
                scalar => {
                    self.inline_value(scalar, indent + INDENT);
                    self.newline();
                }
            }
        }
    }

    /// Writes a scalar or an empty collection on the current line.
    fn inline_value(&mut self, value: &Value, indent: usize) {
        match value {
            Value::Null => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.push(&format_number(n)),
            Value::String(s) => self.string(s, indent, false),
            Value::Array(_) => self.push("[]"),
            Value::Object(_) => self.push("{}"),
        }
    }

    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        let requested = if s.contains('\n') {
            Style::Literal
        } else if plain_keeps_type(s) {
            Style::Plain
        } else {
            Style::Double
        };
        let analysis = Analysis::of(s);
        let mut style = requested;
        if simple_key && analysis.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!analysis.block_plain_allowed || (s.is_empty() && simple_key))
        {
            style = Style::Single;
        }
        if style == Style::Single && !analysis.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::Double;
        }
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single_quoted(s, indent, allow_breaks),
            Style::Double => self.double_quoted(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn break_line(&mut self, indent: usize) {
        self.newline();
        self.indent_to(indent);
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        // A line is folded only at a space past the best width: most strings cannot reach it.
        if !allow_breaks || !s.contains(' ') || self.column + s.chars().count() <= BEST_WIDTH + 1 {
            self.push(s);
            return;
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.break_line(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
    }

    fn single_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.push_char('\'');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_is_space
                {
                    self.break_line(indent);
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.push_char('\'');
                }
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('\'');
    }

    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.push_char('"');
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.push_char('\\');
                match c {
                    '\0' => self.push_char('0'),
                    '\u{7}' => self.push_char('a'),
                    '\u{8}' => self.push_char('b'),
                    '\t' => self.push_char('t'),
                    '\n' => self.push_char('n'),
                    '\u{b}' => self.push_char('v'),
                    '\u{c}' => self.push_char('f'),
                    '\r' => self.push_char('r'),
                    '\u{1b}' => self.push_char('e'),
                    '"' => self.push_char('"'),
                    '\\' => self.push_char('\\'),
                    '\u{85}' => self.push_char('N'),
                    '\u{a0}' => self.push_char('_'),
                    '\u{2028}' => self.push_char('L'),
                    '\u{2029}' => self.push_char('P'),
                    other => {
                        let v = other as u32;
                        if v <= 0xff {
                            self.push(&format!("x{v:02X}"));
                        } else if v <= 0xffff {
                            self.push(&format!("u{v:04X}"));
                        } else {
                            self.push(&format!("U{v:08X}"));
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.break_line(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push_char('\\');
                    }
                } else {
                    self.push_char(c);
                }
                spaces = true;
            } else {
                self.push_char(c);
                spaces = false;
            }
        }
        self.push_char('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.push_char('|');
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.push(&INDENT.to_string());
        }
        let last = chars.last().copied();
        let before_last = chars
            .len()
            .checked_sub(2)
            .and_then(|i| chars.get(i))
            .copied();
        match (last, before_last) {
            (Some(l), _) if !is_break(l) => self.push_char('-'),
            (Some(_), None) => self.push_char('+'),
            (Some(_), Some(b)) if is_break(b) => self.push_char('+'),
            (None, _) => self.push_char('-'),
            _ => {}
        }
        self.newline();
        if chars.iter().all(|&c| c == '\n' || !is_break(c)) {
            // Line by line: every non-empty line indented, every line feed kept.
            let mut lines = s.split('\n').peekable();
            while let Some(line) = lines.next() {
                if !line.is_empty() {
                    self.indent_to(indent);
                    self.push(line);
                }
                if lines.peek().is_some() || !line.is_empty() {
                    self.newline();
                }
            }
        } else {
            let mut breaks = true;
            for c in chars {
                if is_break(c) {
                    self.newline();
                    breaks = true;
                } else {
                    if breaks {
                        self.indent_to(indent);
                        breaks = false;
                    }
                    self.push_char(c);
                }
            }
            if !breaks {
                self.newline();
            }
        }
        // The caller writes the line break that ends the value; a block scalar already ended its line.
        if self.out.ends_with('\n') {
            self.out.pop();
            self.column = self
                .out
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count());
        }
    }
}

/// What libyaml's scalar analysis allows for a string.
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        // Most keys and values are words: nothing in them constrains the style.
        let bytes = s.as_bytes();
        if bytes[0].is_ascii_alphanumeric()
            && bytes[1..]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
        {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: true,
            };
        }
        let mut chars = s.chars().peekable();
        let mut block_indicators = s.starts_with("---") || s.starts_with("...");
        let (mut line_breaks, mut special, mut other_break) = (false, false, false);
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
            (false, false, false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        let mut i = 0;
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            let followed_by_whitespace = next.is_none_or(|n| n == ' ' || n == '\t' || is_break(n));
            let last = next.is_none();
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\''
                    | '"' | '%' | '@' | '`' => {
                        block_indicators = true;
                    }
                    '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if !is_printable(c) {
                special = true;
            }
            if c == ' ' {
                leading_space |= i == 0;
                trailing_space |= last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                line_breaks = true;
                // A block scalar writes every break as a line feed: any other break (`\r`, NEL, U+2028,
                // U+2029) would come back as `\n`, so the string is double-quoted with its escape instead.
                other_break |= c != '\n';
                leading_break |= i == 0;
                trailing_break |= last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c) || c == '\0';
            i += 1;
        }
        let mut analysis = Analysis {
            multiline: line_breaks,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            analysis.block_plain_allowed = false;
        }
        if trailing_space || other_break {
            analysis.block_allowed = false;
        }
        if break_space {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || special {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
            analysis.block_allowed = false;
        }
        if line_breaks || block_indicators {
            analysis.block_plain_allowed = false;
        }
        analysis
    }
}

/// Whether go-yaml writes `key` as a simple key (`key: value`): at most 128 bytes, on one line.
fn simple_key(key: &str) -> bool {
    key.len() <= 128 && !key.chars().any(is_break)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// True when go-yaml v2 would read `s`, written plain, back as the same string.
fn plain_keeps_type(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N",
        "no", "No", "NO", "off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE",
        ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    let Some(first) = s.chars().next() else {
        return false;
    };
    match first {
        '0'..='9' | '+' | '-' => {
            if looks_like_timestamp(s) || is_base60_float(s) {
                return false;
            }
            let plain: String = s.chars().filter(|c| *c != '_').collect();
            !(is_go_int(&plain) || super::is_yaml_float(&plain))
        }
        '.' => {
            s.parse::<f64>().is_err()
                || s.chars()
                    .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        }
        _ => true,
    }
}

fn is_go_int(s: &str) -> bool {
    super::parse_go_int(s).is_some() || {
        let body = s
            .strip_prefix('-')
            .or_else(|| s.strip_prefix('+'))
            .unwrap_or(s);
        !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) && body.len() > 18
    }
}

fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, _frac) = body.split_once('.').unwrap_or((body, ""));
    let mut parts = main.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    if head.is_empty()
        || !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return false;
    }
    let mut count = 0;
    for part in parts {
        count += 1;
        let ok = (1..=2).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part.len() == 1 || part.as_bytes()[0] <= b'5');
        if !ok {
            return false;
        }
    }
    count > 0 && _frac.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut date_parts = date.split('-');
    let ok_num = |p: Option<&str>| {
        p.is_some_and(|p| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if !ok_num(date_parts.next()) || !ok_num(date_parts.next()) || date_parts.next().is_some() {
        return false;
    }
    match time {
        None => true,
        Some(time) => {
            let time = time.trim_end_matches('Z');
            let time = time.split(['+', '-']).next().unwrap_or(time);
            let clock = time.split('.').next().unwrap_or(time);
            let parts: Vec<&str> = clock.split(':').collect();
            parts.len() == 3 && parts.iter().all(|p| ok_num(Some(p)))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_sort_naturally_and_sequences_are_not_indented() {
        let doc = json!({"b": 1, "a10": 2, "a9": 3, "a_b": 4, "aB": 5, "list": [{"name": "x", "image": "z"}, [1, 2]], "e": {}, "f": []});
        assert_eq!(
            to_yaml_document(&doc),
            "a_b: 4\na9: 3\na10: 2\naB: 5\nb: 1\ne: {}\nf: []\nlist:\n- image: z\n  name: x\n- - 1\n  - 2\n"
        );
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let doc = json!({"a": "true", "b": "2020", "c": ": test", "d": "", "e": "plain text", "f": "x'y", "g": "'q",
            "h": "a\tb", "i": "1.5", "j": "0x1G", "k": "3:25", "l": "2020-01-01", "n": "yes", "o": "- a", "p": "a #b", "q": "é"});
        assert_eq!(
            to_yaml_document(&doc),
            "a: \"true\"\nb: \"2020\"\nc: ': test'\nd: \"\"\ne: plain text\nf: x'y\ng: '''q'\nh: \"a\\tb\"\ni: \"1.5\"\nj: 0x1G\nk: \"3:25\"\nl: \"2020-01-01\"\n\"n\": \"yes\"\no: '- a'\np: 'a #b'\nq: é\n"
        );
    }

    #[test]
    fn multi_line_strings_become_block_scalars() {
        let doc = json!({"a": "x\ny", "b": "x\n y\n", "c": "x\n\n", "d": "line1  \nline2", "e": [" lead\nx"]});
        assert_eq!(
            to_yaml_document(&doc),
            "a: |-\n  x\n  y\nb: |\n  x\n   y\nc: |+\n  x\n\nd: \"line1  \\nline2\"\ne:\n- |2-\n   lead\n  x\n"
        );
    }

    #[test]
    fn numbers_follow_go_formatting() {
        let doc = json!({"a": 1.0, "b": 1.5e-7, "c": 1e21, "d": 0.1, "e": 1234567.5, "f": 12345678901234567890u64});
        assert_eq!(
            to_yaml_document(&doc),
            "a: 1\nb: 1.5e-07\nc: 1e+21\nd: 0.1\ne: 1.2345675e+06\nf: 12345678901234567890\n"
        );
    }

    /// Keys over 128 bytes or spanning lines are written as go-yaml writes them (`? key` then `: value`),
    /// byte for byte as `kubectl kustomize` printed this object; simple keys of 1024+ characters would not
    /// load again (found by the fuzzer).
    #[test]
    fn long_and_multi_line_keys_become_complex_keys() {
        let a = "a".repeat(129);
        let b = "b".repeat(128);
        let doc = json!({"spec": {
            a.clone(): {"inner": 1, "other": {"deep": 2}},
            b.clone(): 1,
            "empty": {},
            "multi\nline": 3,
            "list": [{a.clone(): 1, "b": 2}, {a.clone(): ["a"]}],
        }});
        let expected = format!(
            "spec:\n  ? {a}\n  : inner: 1\n    other:\n      deep: 2\n  {b}: 1\n  empty: {{}}\n  list:\n  - ? {a}\n    : 1\n    b: 2\n  - ? {a}\n    : - a\n  ? |-\n    multi\n    line\n  : 3\n"
        );
        let emitted = to_yaml_document(&doc);
        assert_eq!(emitted, expected);
        assert_eq!(crate::yaml::load_one(&emitted).unwrap(), doc);
        let long = json!({"x".repeat(2000): null});
        assert_eq!(
            crate::yaml::load_one(&to_yaml_document(&long)).unwrap(),
            long
        );
    }

    #[test]
    fn long_plain_strings_fold_after_eighty_columns() {
        let words = "lorem ipsum dolor sit amet ".repeat(5);
        let doc = json!({"key": words.trim_end()});
        let out = to_yaml_document(&doc);
        let first_line = out.lines().next().unwrap();
        assert!(
            first_line.chars().count() > 80 && first_line.chars().count() < 90,
            "{out}"
        );
        assert!(out.lines().nth(1).unwrap().starts_with("  "), "{out}");
    }
}
