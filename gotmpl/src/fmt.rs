//! Go's `fmt` as templates use it: `%v` of floats, `Sprint`, `Sprintln` and a `Sprintf` subset.

use crate::value::Value;

/// Shortest decimal digits and decimal exponent of a finite, non-zero `f` (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`, which `%v` uses: shortest digits, exponent form when the
/// exponent is below -4 or at least 6 (so `1e+06`, `1.234567e+06`).
pub(crate) fn format_float_v(f: f64) -> String {
    format_float_g(f, 6)
}

/// Shortest `%g` with the given exponent threshold for switching to `e` form.
fn format_float_g(f: f64, eprec: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let (digits, exp) = shortest_digits(f);
    if exp < -4 || exp >= eprec {
        let mut s = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push_str(&go_exponent(exp));
        return s;
    }
    format!("{sign}{}", place_point(&digits, exp))
}

/// `e+06`-style exponent (at least two digits).
fn go_exponent(exp: i32) -> String {
    format!("e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Digits `d.ddd` times 10^exp in positional notation.
fn place_point(digits: &str, exp: i32) -> String {
    let nd = digits.len() as i32;
    if exp < 0 {
        format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
    } else if exp + 1 >= nd {
        format!("{}{}", digits, "0".repeat((exp + 1 - nd) as usize))
    } else {
        let (a, b) = digits.split_at((exp + 1) as usize);
        format!("{a}.{b}")
    }
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        a.write_v(&mut out, 0);
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands, a final newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        a.write_v(&mut out, 0);
    }
    out.push('\n');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %x %X %o %b %f %e %g %t %c %T %%`, flags
/// `- + 0 space #`, width and precision (also `*`). Other verbs print `%!z(type=value)` as Go does.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
                   argi: &mut usize|
         -> Option<usize> {
            if chars.peek() == Some(&'*') {
                chars.next();
                let v = match args.get(*argi) {
                    Some(Value::Int(i) | Value::Int64(i)) => usize::try_from(*i).ok(),
                    _ => None,
                };
                *argi += 1;
                return v.map(|v| v.min(10_000));
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some((n.unwrap_or(0) * 10 + d as usize).min(10_000));
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars, &mut argi);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars, &mut argi).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let s = format_one(verb, &spec, arg);
        out.push_str(&s);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(a.type_name());
            out.push('=');
            a.write_v(&mut out, 0);
        }
        out.push(')');
    }
    out
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(w) = spec.width else { return s };
    let len = s.chars().count();
    if len >= w {
        return s;
    }
    let fill = w - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, rest) = match s.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&s[..1], rest),
            None => ("", s.as_str()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else if spec.zero && !numeric {
        format!("{}{s}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn bad_verb(verb: char, arg: &Value) -> String {
    match arg {
        Value::Missing | Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", arg.type_name(), arg.to_v()),
    }
}

fn signed(s: String, neg: bool, spec: &Spec) -> String {
    if neg {
        format!("-{s}")
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_int(verb: char, spec: &Spec, i: i128) -> Option<String> {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut s = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' => format!("{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            return Some(
                char::from_u32(u32::try_from(i).ok()?)
                    .unwrap_or('\u{fffd}')
                    .to_string(),
            );
        }
        'q' => {
            return Some(go_quote_rune(
                char::from_u32(u32::try_from(i).ok()?).unwrap_or('\u{fffd}'),
            ));
        }
        _ => return None,
    };
    if let Some(p) = spec.prec {
        if s.len() < p {
            s = format!("{}{s}", "0".repeat(p - s.len()));
        }
        if p == 0 && a == 0 {
            s.clear();
        }
    }
    if spec.sharp {
        match verb {
            'x' => s = format!("0x{s}"),
            'X' => s = format!("0X{s}"),
            'o' => s = format!("0{s}"),
            _ => {}
        }
    }
    Some(signed(s, neg, spec))
}

fn format_f(verb: char, spec: &Spec, f: f64) -> Option<String> {
    if !f.is_finite() {
        let s = if f.is_nan() {
            "NaN".to_string()
        } else if f > 0.0 {
            if spec.plus {
                "+Inf".into()
            } else {
                "Inf".into()
            }
        } else {
            "-Inf".into()
        };
        return Some(s);
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    let s = match verb {
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), a),
        'e' | 'E' => {
            let s = format!("{:.*e}", spec.prec.unwrap_or(6), a);
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let s = format!("{m}{}", go_exponent(e.parse().unwrap_or(0)));
            if verb == 'E' { s.to_uppercase() } else { s }
        }
        'v' | 'g' | 'G' => match spec.prec {
            None => format_float_g(a, 6),
            Some(p) => {
                let p = p.max(1);
                let s = format!("{:.*e}", p - 1, a);
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let exp: i32 = e.parse().unwrap_or(0);
                let digits: String = m.chars().filter(char::is_ascii_digit).collect();
                let digits = digits.trim_end_matches('0');
                let digits = if digits.is_empty() { "0" } else { digits };
                if exp < -4 || exp >= p as i32 {
                    let mut s = digits[..1].to_string();
                    if digits.len() > 1 {
                        s.push('.');
                        s.push_str(&digits[1..]);
                    }
                    s + &go_exponent(exp)
                } else {
                    place_point(digits, exp)
                }
            }
        },
        _ => return None,
    };
    Some(signed(s, neg, spec))
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// An approximation of Go's `strconv.IsPrint`: not a control or format character, not unassigned.
fn is_go_printable(c: char) -> bool {
    !(c.is_control()
        || matches!(c as u32, 0xad | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb))
}

fn format_one(verb: char, spec: &Spec, arg: &Value) -> String {
    let formatted: Option<(String, bool)> = match (verb, arg) {
        ('T', a) => Some((a.type_name().to_string(), false)),
        ('v', Value::Missing | Value::Nil) => Some(("<nil>".into(), false)),
        ('v', Value::Float(f)) => format_f('v', spec, *f).map(|s| (s, true)),
        ('v', Value::Int(i) | Value::Int64(i)) => {
            format_int('d', spec, i128::from(*i)).map(|s| (s, true))
        }
        ('v', Value::Uint(u)) => format_int('d', spec, i128::from(*u)).map(|s| (s, true)),
        ('v', a) => Some((a.to_v(), false)),
        ('s', Value::Str(s)) => Some((truncate(s, spec.prec), false)),
        ('s', a @ (Value::List(..) | Value::Map(..))) if contains_only_strings(a) => {
            Some((a.to_v(), false))
        }
        ('s', Value::Semver(s)) => Some((s.canonical(), false)),
        ('q', Value::Str(s)) => Some((go_quote(s), false)),
        ('x' | 'X', Value::Str(s)) => {
            let mut h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            if verb == 'X' {
                h = h.to_uppercase();
            }
            Some((h, false))
        }
        ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q', Value::Int(i) | Value::Int64(i)) => {
            format_int(verb, spec, i128::from(*i)).map(|s| (s, true))
        }
        ('d' | 'x' | 'X' | 'o' | 'b' | 'c' | 'q', Value::Uint(u)) => {
            format_int(verb, spec, i128::from(*u)).map(|s| (s, true))
        }
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', Value::Float(f)) => {
            format_f(verb, spec, *f).map(|s| (s, true))
        }
        ('t', Value::Bool(b)) => Some((b.to_string(), false)),
        _ => None,
    };
    match formatted {
        Some((s, numeric)) => pad(s, spec, numeric),
        None => bad_verb(verb, arg),
    }
}

fn contains_only_strings(v: &Value) -> bool {
    match v {
        Value::Str(_) => true,
        Value::List(_, items) => items.iter().all(contains_only_strings),
        Value::Map(_, m) => m.borrow().values().all(contains_only_strings),
        _ => false,
    }
}

fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(format_float_v(3.0), "3");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(123456.0), "123456");
        assert_eq!(format_float_v(0.0001), "0.0001");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(1.5), "1.5");
        assert_eq!(format_float_v(-2.25), "-2.25");
    }
}
