//! YAML loading into `serde_json::Value` with kustomize's scalar typing, and bounded alias expansion.
//!
//! Scalars are typed the way kustomize's YAML decoder (go-yaml v3) types them before it turns every object
//! into JSON: plain `true`/`false`/`null`/`~`, Go-style integers (`0x10`, `010`, `1_000`), floats, dates.
//! Quoted and block scalars are always strings.
//! Anchors and aliases are expanded. What aliases add is measured in bytes of the loaded value (every node
//! costs [`NODE_COST`] plus the bytes of its string or key), not in nodes, and charged to a [`Budget`]:
//! a one-megabyte string referenced twenty thousand times is refused as surely as a "billion laughs"
//! tree of tiny nodes. Every YAML entry point (the renderer, the hub's `ApplyManifests`, git generators)
//! loads through this module; the renderer shares one budget across all files of a render.

mod emit;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Bound on the empty map values remembered per document.
const MAX_EMPTY_VALUES: usize = 100_000;
use serde_json::{Map, Number, Value};

pub(crate) use emit::format_number as format_number_plain;
pub use emit::{to_yaml, to_yaml_document};

/// Bytes that aliases may add to one load (one file, or one `ApplyManifests` call) when no shared
/// [`Budget`] is given (the largest real manifests stay far below this).
pub const MAX_ALIAS_EXPANSION_BYTES: u64 = 32 * 1024 * 1024;
/// What one node of a loaded value costs, besides the bytes of its string or mapping key: about the size
/// of a `serde_json::Value` plus a map entry's bookkeeping.
pub const NODE_COST: u64 = 48;
/// Deepest nesting accepted (keeps the recursive transformers far from stack exhaustion).
pub const MAX_DEPTH: usize = 200;

/// A YAML document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML.
    #[error("yaml: line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Aliases would expand to more bytes than the budget allows.
    #[error(
        "yaml: line {line}: aliases expand to more than {limit} bytes; refusing a possible alias bomb"
    )]
    AliasLimit {
        /// 1-based line of the alias that crossed the limit.
        line: usize,
        /// The budget in bytes that was exhausted.
        limit: u64,
    },
    /// An alias names an anchor that was not defined before it.
    #[error("yaml: line {line}: unknown anchor referenced by alias")]
    UnknownAlias {
        /// 1-based line.
        line: usize,
    },
    /// Nesting is deeper than [`MAX_DEPTH`].
    #[error("yaml: line {line}: nesting deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// 1-based line.
        line: usize,
    },
    /// A mapping key appears twice.
    #[error("yaml: line {line}: mapping key {key:?} already defined")]
    DuplicateKey {
        /// 1-based line.
        line: usize,
        /// The repeated key.
        key: String,
    },
    /// A mapping key is itself a mapping or a sequence.
    #[error("yaml: line {line}: mapping keys must be scalars")]
    ComplexKey {
        /// 1-based line.
        line: usize,
    },
}

/// A byte budget for alias expansion, shared by every load that is given it (clones share it).
#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The budget's size in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes charged so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes`; `false` (and nothing charged) when that would exceed the limit.
    pub(crate) fn charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::new(MAX_ALIAS_EXPANSION_BYTES)
    }
}

/// Parses every document of a YAML stream (empty documents come back as `Value::Null`), with a
/// budget of [`MAX_ALIAS_EXPANSION_BYTES`] for aliases.
pub fn load_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    load_documents_within(text, &Budget::default())
}

/// Parses every document of a YAML stream, charging what aliases add to `budget`.
pub fn load_documents_within(text: &str, budget: &Budget) -> Result<Vec<Value>, YamlError> {
    Ok(load_documents_marking_empty(text, budget)?
        .into_iter()
        .map(|(document, _)| document)
        .collect())
}

/// Like [`load_documents_within`], also returning for each document the JSON pointers of the map values
/// written empty (`key:` with nothing after it), which kustomize's strategic merge drops while it keeps
/// an explicit `null`.
pub(crate) fn load_documents_marking_empty(
    text: &str,
    budget: &Budget,
) -> Result<Vec<(Value, Vec<String>)>, YamlError> {
    let mut loader = Loader {
        budget: budget.clone(),
        // go-yaml ends a block scalar that runs to the end of a file without a final newline without a line
        // break; saphyr adds one. Remember where the unterminated last line starts (in characters).
        last_line_start: (!text.is_empty() && !text.ends_with('\n'))
            .then(|| text.rfind('\n').map_or(0, |i| text[..=i].chars().count())),
        ..Loader::default()
    };
    let mut parser = Parser::new_from_str(text);
    let mut documents = Vec::new();
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| YamlError::Syntax {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        match event {
            Event::DocumentStart(_) => loader.anchors.clear(),
            Event::DocumentEnd => documents.push((
                loader.document.take().unwrap_or(Value::Null),
                std::mem::take(&mut loader.empty_values),
            )),
            Event::StreamEnd => break,
            other => loader.event(other, span)?,
        }
    }
    Ok(documents)
}

/// Parses a single-document YAML text (the first document; `Null` when there is none).
pub fn load_one(text: &str) -> Result<Value, YamlError> {
    load_one_within(text, &Budget::default())
}

/// Parses a single-document YAML text, charging what aliases add to `budget`.
pub fn load_one_within(text: &str, budget: &Budget) -> Result<Value, YamlError> {
    Ok(load_documents_within(text, budget)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null))
}

// === impl Loader ===

#[derive(Debug, Default)]
struct Loader {
    stack: Vec<Frame>,
    /// Each anchored value with its cost in bytes.
    anchors: HashMap<usize, (Value, u64)>,
    document: Option<Value>,
    budget: Budget,
    /// Character index where the last line starts when the text does not end with a newline.
    last_line_start: Option<usize>,
    /// JSON pointers of map values written empty (`key:`) in the current document.
    empty_values: Vec<String>,
}

#[derive(Debug)]
enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
        /// Cost in bytes of the node so far.
        size: u64,
    },
    Map {
        map: Map<String, Value>,
        key: Option<String>,
        merges: Vec<Value>,
        anchor: usize,
        /// Cost in bytes of the node so far (keys included).
        size: u64,
    },
}

impl Loader {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let line = span.start.line();
        match event {
            Event::Scalar(mut text, style, anchor, tag) => {
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && self
                        .last_line_start
                        .is_some_and(|start| span.end.index() > start)
                    && text.ends_with('\n')
                {
                    text.to_mut().pop();
                }
                if style == ScalarStyle::Plain
                    && text.is_empty()
                    && tag.is_none()
                    && anchor == 0
                    && !self.expects_key()
                    && matches!(self.stack.last(), Some(Frame::Map { .. }))
                    && self.empty_values.len() < MAX_EMPTY_VALUES
                {
                    let pointer = self.pointer();
                    self.empty_values.push(pointer);
                }
                let tag_suffix = tag.as_ref().map(|t| t.suffix.clone());
                let value = resolve_scalar(&text, style, tag_suffix.as_deref());
                let cost = scalar_cost(&text);
                if self.expects_key() {
                    return self.push_key(text.into_owned(), line, anchor, value);
                }
                self.finish(value, cost, anchor, line)
            }
            Event::SequenceStart(anchor, _) => {
                self.check_depth(line)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    size: NODE_COST,
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.check_depth(line)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    key: None,
                    merges: Vec::new(),
                    anchor,
                    size: NODE_COST,
                });
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq {
                    items,
                    anchor,
                    size,
                }) => self.finish(Value::Array(items), size, anchor, line),
                _ => Ok(()),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map {
                    mut map,
                    merges,
                    anchor,
                    size,
                    ..
                }) => {
                    apply_merges(&mut map, merges);
                    self.finish(Value::Object(map), size, anchor, line)
                }
                _ => Ok(()),
            },
            Event::Alias(id) => {
                let Some((value, size)) = self.anchors.get(&id) else {
                    return Err(YamlError::UnknownAlias { line });
                };
                // Charged before the copy is made: the budget, not the allocator, says no.
                let size = *size;
                if !self.budget.charge(size) {
                    return Err(YamlError::AliasLimit {
                        line,
                        limit: self.budget.limit(),
                    });
                }
                let value = value.clone();
                if self.expects_key() {
                    let Value::String(key) = value else {
                        return Err(YamlError::ComplexKey { line });
                    };
                    return self.push_key(key.clone(), line, 0, Value::String(key));
                }
                self.finish(value, size, 0, line)
            }
            _ => Ok(()),
        }
    }

    fn check_depth(&self, line: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError::TooDeep { line });
        }
        Ok(())
    }

    /// The JSON pointer of the value being read.
    fn pointer(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            out.push('/');
            match frame {
                Frame::Seq { items, .. } => out.push_str(&items.len().to_string()),
                Frame::Map { key, .. } => {
                    out.push_str(
                        &key.as_deref()
                            .unwrap_or_default()
                            .replace('~', "~0")
                            .replace('/', "~1"),
                    );
                }
            }
        }
        out
    }

    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    fn push_key(
        &mut self,
        text: String,
        line: usize,
        anchor: usize,
        value: Value,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value, scalar_cost(&text)));
        }
        if let Some(Frame::Map {
            map,
            key,
            size: parent,
            ..
        }) = self.stack.last_mut()
        {
            *parent = parent.saturating_add(text.len() as u64);
            if text != "<<" && map.contains_key(&text) {
                return Err(YamlError::DuplicateKey { line, key: text });
            }
            *key = Some(text);
        }
        Ok(())
    }

    /// Attaches a completed node to its parent (or makes it the document).
    fn finish(
        &mut self,
        value: Value,
        size: u64,
        anchor: usize,
        line: usize,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.document = Some(value),
            Some(Frame::Seq {
                items,
                size: parent,
                ..
            }) => {
                items.push(value);
                *parent = parent.saturating_add(size);
            }
            Some(Frame::Map {
                map,
                key,
                merges,
                size: parent,
                ..
            }) => {
                let Some(key) = key.take() else {
                    return Err(YamlError::ComplexKey { line });
                };
                *parent = parent.saturating_add(size);
                if key == "<<" {
                    merges.push(value);
                } else {
                    map.insert(key, value);
                }
            }
        }
        Ok(())
    }
}

/// What a scalar node costs in a loaded value.
fn scalar_cost(text: &str) -> u64 {
    NODE_COST.saturating_add(text.len() as u64)
}

/// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`): explicit keys win, earlier merges win.
fn apply_merges(map: &mut Map<String, Value>, merges: Vec<Value>) {
    for merge in merges {
        let sources = match merge {
            Value::Array(items) => items,
            other => vec![other],
        };
        for source in sources {
            if let Value::Object(source) = source {
                for (key, value) in source {
                    map.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// Types a scalar like go-yaml v3 decoding into `interface{}`.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") | Some("binary") => return Value::String(text.to_string()),
        Some("int") | Some("float") | Some("bool") | Some("null") => return resolve_plain(text),
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    resolve_plain(text)
}

/// Types a plain scalar.
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Value::String(text.to_string());
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(number) = parse_go_int(&plain) {
        return Value::Number(number);
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    if let Some(date) = date_to_timestamp(text) {
        return Value::String(date);
    }
    Value::String(text.to_string())
}

/// Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`) accepting `0x`, `0o`, `0b` and leading-zero octal.
fn parse_go_int(s: &str) -> Option<Number> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(body, radix).ok()?;
    if negative {
        let value = i64::try_from(magnitude)
            .ok()
            .map(|v| -v)
            .or_else(|| (magnitude == u128::from(i64::MIN.unsigned_abs())).then_some(i64::MIN))?;
        Some(Number::from(value))
    } else if let Ok(v) = i64::try_from(magnitude) {
        Some(Number::from(v))
    } else {
        u64::try_from(magnitude).ok().map(Number::from)
    }
}

/// go-yaml's float syntax: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// A plain `YYYY-M-D` date becomes the RFC 3339 timestamp Go's JSON encoder prints for it.
fn date_to_timestamp(s: &str) -> Option<String> {
    let mut parts = s.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || year.len() != 4
        || !(1..=2).contains(&month.len())
        || !(1..=2).contains(&day.len())
    {
        return None;
    }
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(year) || !all_digits(month) || !all_digits(day) {
        return None;
    }
    let (m, d): (u32, u32) = (month.parse().ok()?, day.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(format!("{year}-{m:02}-{d:02}T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_are_typed_like_kustomize() {
        let doc = load_one(
            "a: 1.0\nb: 0x10\nc: 010\nd: 1_000\ne: yes\nf: \"8080\"\ng: ~\nh: 2020-01-01\ni: 12345678901234567890\nj: 08\nk: true\n",
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"a": 1.0, "b": 16, "c": 8, "d": 1000, "e": "yes", "f": "8080", "g": null,
                   "h": "2020-01-01T00:00:00Z", "i": 12345678901234567890u64, "j": 8.0, "k": true})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let doc =
            load_one("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n").unwrap();
        assert_eq!(
            doc,
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "list": [{"x": 1, "y": 2}]})
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h"])
        {
            let refs = vec![format!("*{prev}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let err = load_documents(&text).unwrap_err();
        assert!(err.to_string().contains("alias"), "{err}");
    }

    /// The review's file: one large string referenced many times. Counting nodes let it expand to
    /// gigabytes; counting bytes refuses it before the budget's worth is copied.
    #[test]
    fn aliases_of_a_large_string_are_refused_by_bytes() {
        let text = amplifying_file(1 << 20, 20_000);
        assert!(text.len() < 1_200_000, "{}", text.len());
        let err = load_documents(&text).unwrap_err();
        assert!(
            matches!(err, YamlError::AliasLimit { line: 2, limit } if limit == MAX_ALIAS_EXPANSION_BYTES),
            "{err}"
        );
        assert!(err.to_string().contains("bytes"), "{err}");
        // As a mapping key too, and through a merge key.
        let big = "v".repeat(1 << 20);
        let keys: String = (0..64).map(|i| format!("k{i}: *a\n")).collect();
        let err = load_documents(&format!("a: &a \"{big}\"\nm:\n{keys}")).unwrap_err();
        assert!(matches!(err, YamlError::AliasLimit { .. }), "{err}");
        let merges: String = (0..64).map(|i| format!("m{i}: {{<<: *a}}\n")).collect();
        let err = load_documents(&format!("a: &a {{x: \"{big}\"}}\n{merges}")).unwrap_err();
        assert!(matches!(err, YamlError::AliasLimit { .. }), "{err}");
    }

    /// Small aliases stay well inside the budget, and what they add is what is charged.
    #[test]
    fn a_shared_budget_is_charged_by_every_load() {
        let budget = Budget::new(10 * 1024);
        let text = amplifying_file(1000, 4);
        let doc = load_one_within(&text, &budget).unwrap();
        assert_eq!(doc["y"].as_array().map(Vec::len), Some(4));
        let charged = budget.used();
        assert_eq!(charged, 4 * (NODE_COST + 1000), "{charged}");
        // The same file again fits; a third time no longer does.
        load_one_within(&text, &budget).unwrap();
        let err = load_one_within(&text, &budget).unwrap_err();
        assert!(
            matches!(err, YamlError::AliasLimit { limit: 10240, .. }),
            "{err}"
        );
        // A fresh default budget per plain load.
        load_one(&text).unwrap();
    }

    /// `x: &a "<len chars>"` and `y: [*a, …]` with `refs` aliases.
    fn amplifying_file(len: usize, refs: usize) -> String {
        let refs = vec!["*a"; refs].join(", ");
        format!("x: &a \"{}\"\ny: [{refs}]\n", "v".repeat(len))
    }

    #[test]
    fn syntax_errors_and_duplicates_are_reported() {
        assert!(matches!(
            load_documents("a: [1, 2\n"),
            Err(YamlError::Syntax { .. })
        ));
        assert!(matches!(
            load_documents("a: 1\na: 2\n"),
            Err(YamlError::DuplicateKey { .. })
        ));
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(load_documents(&deep).is_err());
    }

    #[test]
    fn empty_map_values_are_marked_and_explicit_nulls_are_not() {
        let documents = load_documents_marking_empty(
            "a:\n  b:\n  c: null\n  d: ~\nl:\n- x:\n  y: 1\n---\nk/x:\n",
            &Budget::default(),
        )
        .unwrap();
        assert_eq!(documents[0].1, vec!["/a/b", "/l/0/x"]);
        assert_eq!(documents[1].1, vec!["/k~1x"]);
        assert!(documents[0].0["a"]["b"].is_null());
    }

    #[test]
    fn multiple_documents_keep_empty_ones_as_null() {
        let docs = load_documents("---\na: 1\n---\n# only a comment\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), Value::Null, json!({"b": 2})]);
    }
}
