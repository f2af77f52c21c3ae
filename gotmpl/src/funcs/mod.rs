//! The function set: Go's builtins, the sprig v3 functions Argo CD allows, and Argo CD's own helpers.
//!
//! Every function has a Go signature ([`Sig`]); the executor converts and checks arguments against it as
//! Go's `text/template` does (an `int` parameter refuses a `float64`, an `int64` or a string).

mod builtins;
mod data;
mod lists;
mod strings;

pub(crate) use strings::normalize;

use crate::Options;
use crate::value::Value;

/// A parameter type of a Go function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `interface{}`
    Any,
    /// `string`
    Str,
    /// `int`
    Int,
    /// `float64`
    Float,
    /// `bool`
    Bool,
    /// `map[string]interface {}`
    MapAny,
    /// `reflect.Value` (builtins that see values unconverted).
    Value,
}

impl Ty {
    /// Go's name of the type, for messages.
    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Float => "float64",
            Ty::Bool => "bool",
            Ty::MapAny => "map[string]interface {}",
            Ty::Value => "reflect.Value",
        }
    }

    /// What Go's "expected X; found Y" says for a literal of the wrong kind.
    pub fn expect_name(self) -> &'static str {
        match self {
            Ty::Int => "integer",
            Ty::Float => "float",
            Ty::Bool => "bool",
            Ty::Str => "string",
            other => other.go_name(),
        }
    }
}

/// A function's parameters: fixed ones, then an optional variadic element type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sig {
    pub params: &'static [Ty],
    pub variadic: Option<Ty>,
}

/// What a function may use while it runs.
pub(crate) struct Ctx<'a> {
    pub opts: &'a Options,
    /// Work done, charged to the step budget after the call.
    pub steps: u64,
}

impl Ctx<'_> {
    /// Refuses a string or list that would exceed the output limit before it is built.
    pub fn check_size(&self, bytes: usize) -> Result<(), String> {
        if bytes > self.opts.max_output_bytes {
            return Err(format!(
                "result would exceed {} bytes",
                self.opts.max_output_bytes
            ));
        }
        Ok(())
    }
}

/// Largest list `until`, `untilStep` and `seq` build.
pub(crate) const MAX_SEQUENCE: i64 = 100_000;

use Ty::{Any, Bool, Float, Int, MapAny, Str};

const fn fixed(params: &'static [Ty]) -> Sig {
    Sig {
        params,
        variadic: None,
    }
}

const fn var(params: &'static [Ty], v: Ty) -> Sig {
    Sig {
        params,
        variadic: Some(v),
    }
}

/// Functions sprig defines that this engine leaves out, with why.
const REFUSED: &[(&str, &str)] = &[
    ("now", "nondeterministic"),
    ("ago", "nondeterministic"),
    ("date", "time functions are not supported"),
    ("date_in_zone", "time functions are not supported"),
    ("dateInZone", "time functions are not supported"),
    ("date_modify", "time functions are not supported"),
    ("dateModify", "time functions are not supported"),
    ("must_date_modify", "time functions are not supported"),
    ("mustDateModify", "time functions are not supported"),
    ("duration", "time functions are not supported"),
    ("durationRound", "time functions are not supported"),
    ("htmlDate", "time functions are not supported"),
    ("htmlDateInZone", "time functions are not supported"),
    ("toDate", "time functions are not supported"),
    ("mustToDate", "time functions are not supported"),
    ("unixEpoch", "time functions are not supported"),
    ("randAlphaNum", "nondeterministic"),
    ("randAlpha", "nondeterministic"),
    ("randAscii", "nondeterministic"),
    ("randNumeric", "nondeterministic"),
    ("randInt", "nondeterministic"),
    ("randBytes", "nondeterministic"),
    ("shuffle", "nondeterministic"),
    ("uuidv4", "nondeterministic"),
    ("bcrypt", "nondeterministic"),
    ("htpasswd", "nondeterministic"),
    ("genPrivateKey", "key generation is not supported"),
    ("derivePassword", "not supported"),
    ("buildCustomCert", "certificate generation is not supported"),
    ("genCA", "certificate generation is not supported"),
    ("genCAWithKey", "certificate generation is not supported"),
    (
        "genSelfSignedCert",
        "certificate generation is not supported",
    ),
    (
        "genSelfSignedCertWithKey",
        "certificate generation is not supported",
    ),
    ("genSignedCert", "certificate generation is not supported"),
    (
        "genSignedCertWithKey",
        "certificate generation is not supported",
    ),
    ("encryptAES", "encryption is not supported"),
    ("decryptAES", "encryption is not supported"),
    ("env", "Argo CD removes it (environment access)"),
    ("expandenv", "Argo CD removes it (environment access)"),
    ("getHostByName", "Argo CD removes it (network access)"),
    ("slugify", "not supported"),
    ("tpl", "not supported"),
    ("call", "templates cannot call functions held in data"),
];

/// Why a known-but-refused function is refused, if it is.
pub(crate) fn refused(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// Whether `name` is a function templates may use.
pub(crate) fn is_defined(name: &str) -> bool {
    name == "and" || name == "or" || signature(name).is_some()
}

/// The Go signature of a function.
pub(crate) fn signature(name: &str) -> Option<Sig> {
    const V: Ty = Ty::Value;
    Some(match name {
        // text/template builtins (and/or are handled by the executor).
        "not" => fixed(&[V]),
        "len" => fixed(&[V]),
        "index" => var(&[V], V),
        "print" | "println" => var(&[], Any),
        "printf" => var(&[Str], Any),
        "eq" => var(&[V], V),
        "ne" | "lt" | "le" | "gt" | "ge" => fixed(&[V, V]),
        "html" | "js" | "urlquery" => var(&[], Any),
        // strings
        "hello" => fixed(&[]),
        "abbrev" | "trunc" | "repeat" | "indent" | "nindent" | "wrap" => fixed(&[Int, Str]),
        "abbrevboth" | "substr" => fixed(&[Int, Int, Str]),
        "trim" | "upper" | "lower" | "title" | "untitle" | "nospace" | "initials" | "swapcase"
        | "snakecase" | "camelcase" | "kebabcase" | "sha1sum" | "sha256sum" | "sha512sum"
        | "adler32sum" | "atoi" | "b64enc" | "b64dec" | "b32enc" | "b32dec" | "base" | "dir"
        | "clean" | "ext" | "isAbs" | "osBase" | "osDir" | "osClean" | "osExt" | "osIsAbs"
        | "fail" | "regexQuoteMeta" | "fromJson" | "mustFromJson" | "semver" | "urlParse"
        | "normalize" | "fromYaml" | "fromYamlArray" => fixed(&[Str]),
        "trimall" | "trimAll" | "trimSuffix" | "trimPrefix" | "contains" | "hasPrefix"
        | "hasSuffix" | "split" | "splitList" | "regexMatch" | "mustRegexMatch" | "regexFind"
        | "mustRegexFind" | "semverCompare" => fixed(&[Str, Str]),
        "wrapWith" => fixed(&[Int, Str, Str]),
        "quote" | "squote" | "cat" => var(&[], Any),
        "replace" => fixed(&[Str, Str, Str]),
        "plural" => fixed(&[Str, Str, Int]),
        "toString" | "int64" | "int" | "float64" | "toDecimal" | "toStrings" | "add1" | "add1f"
        | "ceil" | "floor" | "sortAlpha" | "empty" | "compact" | "mustCompact" | "toJson"
        | "toPrettyJson" | "toRawJson" | "mustToJson" | "mustToPrettyJson" | "mustToRawJson"
        | "deepCopy" | "mustDeepCopy" | "typeOf" | "kindOf" | "first" | "mustFirst" | "rest"
        | "mustRest" | "last" | "mustLast" | "initial" | "mustInitial" | "reverse"
        | "mustReverse" | "uniq" | "mustUniq" | "toYaml" => fixed(&[Any]),
        "seq" => var(&[], Int),
        "splitn" => fixed(&[Str, Int, Str]),
        "until" => fixed(&[Int]),
        "untilStep" => fixed(&[Int, Int, Int]),
        "add" | "addf" | "coalesce" | "all" | "any" | "list" | "tuple" | "dict" | "concat"
        | "dig" => var(&[], Any),
        "sub" | "div" | "mod" => fixed(&[Any, Any]),
        "mul" | "subf" | "divf" | "mulf" | "biggest" | "max" | "min" | "maxf" | "minf" => {
            var(&[Any], Any)
        }
        "round" => var(&[Any, Int], Float),
        "join" => fixed(&[Str, Any]),
        "default" => var(&[Any], Any),
        "ternary" => fixed(&[Any, Any, Bool]),
        "typeIs" | "typeIsLike" | "kindIs" => fixed(&[Str, Any]),
        "deepEqual" | "append" | "push" | "mustAppend" | "mustPush" | "prepend" | "mustPrepend"
        | "has" | "mustHas" => fixed(&[Any, Any]),
        "get" | "unset" | "hasKey" => fixed(&[MapAny, Str]),
        "set" => fixed(&[MapAny, Str, Any]),
        "pluck" => var(&[Str], MapAny),
        "keys" => var(&[], MapAny),
        "pick" | "omit" => var(&[MapAny], Str),
        "merge" | "mergeOverwrite" | "mustMerge" | "mustMergeOverwrite" => var(&[MapAny], MapAny),
        "values" | "urlJoin" => fixed(&[MapAny]),
        "without" | "mustWithout" | "slice" | "mustSlice" => var(&[Any], Any),
        "chunk" | "mustChunk" => fixed(&[Int, Any]),
        "regexFindAll" | "mustRegexFindAll" | "regexSplit" | "mustRegexSplit" => {
            fixed(&[Str, Str, Int])
        }
        "regexReplaceAll"
        | "mustRegexReplaceAll"
        | "regexReplaceAllLiteral"
        | "mustRegexReplaceAllLiteral" => fixed(&[Str, Str, Str]),
        _ => return None,
    })
}

/// Calls a function with arguments already converted to its signature.
pub(crate) fn call(ctx: &mut Ctx<'_>, name: &str, args: Vec<Value>) -> Result<Value, String> {
    if let Some(v) = builtins::call(ctx, name, &args) {
        return v;
    }
    if let Some(v) = strings::call(ctx, name, &args) {
        return v;
    }
    if let Some(v) = lists::call(ctx, name, &args) {
        return v;
    }
    if let Some(v) = data::call(ctx, name, &args) {
        return v;
    }
    Err(format!("function {name:?} not implemented"))
}

/// The string argument at `i` (the executor has checked the type).
pub(crate) fn s(args: &[Value], i: usize) -> &str {
    args.get(i).and_then(Value::as_str).unwrap_or("")
}

/// The `int` argument at `i`.
pub(crate) fn int(args: &[Value], i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Int(n) | Value::Int64(n)) => *n,
        _ => 0,
    }
}

/// The argument at `i`, or nil.
pub(crate) fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

/// sprig's `strval`: strings as they are, everything else as `%v`.
pub(crate) fn strval(v: &Value) -> String {
    match v {
        Value::Str(s) => s.to_string(),
        other => other.to_v(),
    }
}

/// sprig's `empty`.
pub(crate) fn empty(v: &Value) -> bool {
    !v.truth()
}

/// spf13/cast's `ToInt64` (errors become 0).
pub(crate) fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Float(f) => go_f64_to_i64(*f),
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => {
            let t = trim_zero_decimal(s);
            crate::parse::parse_go_int(t).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Go's `int64(f)` on amd64: truncation, with out-of-range values giving the minimum int64.
pub(crate) fn go_f64_to_i64(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    let b = s.as_bytes();
    let mut found_zero = false;
    for i in (1..=b.len()).rev() {
        match b[i - 1] {
            b'.' => {
                if found_zero {
                    return &s[..i - 1];
                }
            }
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// spf13/cast's `ToFloat64` (errors become 0).
pub(crate) fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => crate::parse::parse_go_float(s)
            .or_else(|| crate::parse::parse_go_int(s).map(|i| i as f64))
            .unwrap_or(0.0),
        _ => 0.0,
    }
}
