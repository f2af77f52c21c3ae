//! Jsonnet programs of a directory source (Argo CD's `directory.jsonnet`): evaluated on a worker thread, bounded in time, stack, nesting, output and file access.
//!
//! A `.jsonnet` file evaluates to one object, a list of objects, or nested lists of them (a `List` kind is
//! flattened as in plain files). External variables and top-level arguments are strings, or Jsonnet code when
//! `code` is set; `import`, `importstr` and `importbin` look next to the importing file, then in the library
//! paths (last first, as go-jsonnet), then in the rendered directory, and never leave the repository.
//!
//! The evaluator (rsjsonnet) has no way to interrupt a running evaluation. Each file is evaluated on its own
//! thread and the render waits for it until the render's deadline; past it, the render fails and the thread is
//! left to finish on its own (its result is dropped). What such a thread can do is bounded by the call-stack
//! limit ([`JsonnetLimits::max_stack`]) and the process memory limit; while [`MAX_OVERDUE`] threads are still
//! running past their deadline, further Jsonnet renders are refused rather than piling up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rsjsonnet_lang::arena::Arena;
use rsjsonnet_lang::interner::InternedStr;
use rsjsonnet_lang::lexer::LexError;
use rsjsonnet_lang::parser::ParseError;
use rsjsonnet_lang::program::{
    AnalyzeError, Callbacks, EvalError, EvalErrorKind, EvalStackTraceItem, ImportError, LoadError,
    NativeError, Program, Thunk, Value as JValue,
};
use rsjsonnet_lang::span::{SpanContextId, SpanId};
use serde_json::Value;

use crate::error::{RenderError, Result};
use crate::loader::{RepoRoot, normalize};
use crate::yaml::Budget;

/// An external variable or a top-level argument (Argo CD's `{name, value, code}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonnetVar {
    /// The variable's or parameter's name.
    pub name: String,
    /// A string, or Jsonnet code when `code` is set.
    pub value: String,
    /// `value` is Jsonnet code.
    pub code: bool,
}

/// Argo CD's `directory.jsonnet` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonnetOptions {
    /// `std.extVar` values.
    pub ext_vars: Vec<JsonnetVar>,
    /// Arguments of a program that is a function.
    pub tlas: Vec<JsonnetVar>,
    /// Library search paths, relative to the repository root (never leaving it).
    pub libs: Vec<String>,
}

/// Bounds on the Jsonnet evaluation of one render.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonnetLimits {
    /// Wall-clock time all `.jsonnet` files of one render may take together.
    pub timeout: Duration,
    /// Deepest Jsonnet call stack.
    pub max_stack: usize,
    /// Bytes of JSON all programs of one render may produce together.
    pub max_output_bytes: u64,
}

impl Default for JsonnetLimits {
    fn default() -> JsonnetLimits {
        JsonnetLimits {
            timeout: Duration::from_secs(30),
            max_stack: 500,
            max_output_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Deepest bracket nesting accepted in a Jsonnet source (its parser recurses once per level).
pub const MAX_NESTING: usize = 1000;
/// Evaluations still running past their deadline beyond which Jsonnet renders are refused.
pub const MAX_OVERDUE: usize = 2;
/// Stack of an evaluation thread (reserved, touched only as the parser recurses).
const WORKER_STACK_BYTES: usize = 256 * 1024 * 1024;
/// Evaluations running past their deadline, in the whole process.
static OVERDUE: AtomicUsize = AtomicUsize::new(0);

/// The Jsonnet settings of one render: options, resolved library paths, deadline and output budget.
#[derive(Debug)]
pub(crate) struct Run {
    options: Arc<JsonnetOptions>,
    limits: JsonnetLimits,
    /// Library paths then the rendered directory, canonical, searched last first.
    jpaths: Arc<Vec<PathBuf>>,
    deadline: Instant,
    output: Budget,
}

impl Run {
    /// Settings for rendering `dir`; a library path leaving the repository is an error naming it.
    pub(crate) fn new(
        dir: &Path,
        repo: &RepoRoot,
        options: &JsonnetOptions,
        limits: &JsonnetLimits,
    ) -> Result<Run> {
        let root = repo.root();
        let mut jpaths = vec![dir.canonicalize().map_err(|source| RenderError::Io {
            path: dir.to_path_buf(),
            source,
        })?];
        for lib in &options.libs {
            let joined = normalize(&root.join(lib.trim_start_matches('/')));
            if Path::new(lib).is_absolute() || !joined.starts_with(root) {
                return Err(RenderError::invalid(
                    dir,
                    format!("jsonnet library path '{lib}' points outside the repository"),
                ));
            }
            if joined.exists() {
                repo.check(&joined)?;
            }
            jpaths.push(joined);
        }
        // go-jsonnet searches its library paths last first; Argo CD lists the app's directory first.
        jpaths.reverse();
        Ok(Run {
            options: Arc::new(options.clone()),
            limits: limits.clone(),
            jpaths: Arc::new(jpaths),
            deadline: Instant::now() + limits.timeout,
            output: Budget::new(limits.max_output_bytes),
        })
    }

    /// Evaluates `file` into its objects (nested lists and `List` kinds flattened).
    pub(crate) fn evaluate(&self, file: &Path, repo: &RepoRoot) -> Result<Vec<Value>> {
        let text = repo.read_text(file)?;
        check_nesting(&text).map_err(|line| {
            RenderError::invalid(
                file,
                format!("jsonnet: line {line}: nesting deeper than {MAX_NESTING} levels"),
            )
        })?;
        let overdue = OVERDUE.load(Ordering::Relaxed);
        if overdue >= MAX_OVERDUE {
            return Err(RenderError::invalid(
                file,
                format!(
                    "jsonnet: {overdue} earlier evaluations are still running past their deadline; not starting another"
                ),
            ));
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(self.timed_out(file));
        }
        let canonical = file.canonicalize().map_err(|source| RenderError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        let job = Job {
            file: canonical,
            text,
            root: repo.root().to_path_buf(),
            options: Arc::clone(&self.options),
            jpaths: Arc::clone(&self.jpaths),
            max_stack: self.limits.max_stack,
            output: self.output.clone(),
        };
        let state = Arc::new(Mutex::new(JobState::Running));
        let (send, receive) = mpsc::sync_channel(1);
        let worker_state = Arc::clone(&state);
        std::thread::Builder::new()
            .name("jsonnet".into())
            .stack_size(WORKER_STACK_BYTES)
            .spawn(move || {
                let result = job.run();
                let mut state = worker_state.lock().unwrap_or_else(PoisonError::into_inner);
                if *state == JobState::Abandoned {
                    OVERDUE.fetch_sub(1, Ordering::Relaxed);
                }
                *state = JobState::Done;
                // The render may have stopped waiting: nobody receives then.
                let _ = send.send(result);
            })
            .map_err(|source| RenderError::Io {
                path: file.to_path_buf(),
                source,
            })?;
        let value = match receive.recv_timeout(remaining) {
            Ok(result) => result.map_err(|message| jsonnet_error(file, message))?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if *state == JobState::Running {
                    *state = JobState::Abandoned;
                    OVERDUE.fetch_add(1, Ordering::Relaxed);
                    return Err(self.timed_out(file));
                }
                drop(state);
                // It finished as the deadline passed.
                match receive.try_recv() {
                    Ok(result) => result.map_err(|message| jsonnet_error(file, message))?,
                    Err(_) => return Err(self.timed_out(file)),
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(jsonnet_error(
                    file,
                    "the evaluator stopped without a result".to_string(),
                ));
            }
        };
        let mut objects = Vec::new();
        flatten(value, file, &mut objects)?;
        Ok(objects)
    }

    fn timed_out(&self, file: &Path) -> RenderError {
        jsonnet_error(
            file,
            format!(
                "evaluation did not finish within {:?} (the render's Jsonnet time limit)",
                self.limits.timeout
            ),
        )
    }
}

fn jsonnet_error(file: &Path, message: String) -> RenderError {
    RenderError::invalid(file, format!("jsonnet: {message}"))
}

/// Objects of a program's output: an object, or (nested) arrays of objects; `null` is nothing.
fn flatten(value: Value, file: &Path, out: &mut Vec<Value>) -> Result<()> {
    match value {
        Value::Array(items) => {
            for item in items {
                flatten(item, file, out)?;
            }
            Ok(())
        }
        Value::Object(_) | Value::Null => crate::plain::flatten(value, file, out),
        other => Err(jsonnet_error(
            file,
            format!(
                "the program's output must be an object or a list of objects, not {}",
                kind_name(&other)
            ),
        )),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `Err(line)` when brackets nest deeper than [`MAX_NESTING`] (strings and comments skipped).
fn check_nesting(text: &str) -> std::result::Result<(), usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => line += 1,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(line);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    line += usize::from(bytes[i] == b'\n');
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'|' if bytes[i..].starts_with(b"|||") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"|||") {
                    line += usize::from(bytes[i] == b'\n');
                    i += 1;
                }
                i += 3;
                continue;
            }
            quote @ (b'"' | b'\'') => {
                let verbatim = i > 0 && bytes[i - 1] == b'@';
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if bytes[i] == b'\\' && !verbatim {
                        i += 1;
                    }
                    line += usize::from(bytes.get(i) == Some(&b'\n'));
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Running,
    Abandoned,
    Done,
}

/// What an evaluation thread owns.
struct Job {
    file: PathBuf,
    text: String,
    root: PathBuf,
    options: Arc<JsonnetOptions>,
    jpaths: Arc<Vec<PathBuf>>,
    max_stack: usize,
    output: Budget,
}

impl Job {
    /// Evaluates the program to JSON; errors are messages naming file and line.
    fn run(self) -> std::result::Result<Value, String> {
        let arena = Arena::new();
        let mut program = Program::new(&arena);
        program.set_max_stack(self.max_stack);
        let mut files = Files {
            root: self.root.clone(),
            jpaths: Arc::clone(&self.jpaths),
            sources: HashMap::new(),
            cache: HashMap::new(),
            failure: None,
        };
        // The last value of a name wins, as in go-jsonnet.
        let ext_vars: BTreeMap<&str, &JsonnetVar> = self
            .options
            .ext_vars
            .iter()
            .map(|v| (v.name.as_str(), v))
            .collect();
        for (name, var) in ext_vars {
            let thunk = files.argument(&mut program, "extVar", var)?;
            let name = program.intern_str(name);
            program.add_ext_var(name, &thunk);
        }
        let main = files
            .load(&mut program, &self.file, self.text.as_bytes())
            .map_err(|e| files.load_error(&program, &self.file, &e))?;
        let mut value = program
            .eval_value(&main, &mut files)
            .map_err(|e| files.eval_error(&program, &e))?;
        if value.is_function() {
            let tlas: BTreeMap<&str, &JsonnetVar> = self
                .options
                .tlas
                .iter()
                .map(|v| (v.name.as_str(), v))
                .collect();
            let mut named: Vec<(InternedStr<'_>, Thunk<'_>)> = Vec::new();
            for (name, var) in tlas {
                let thunk = files.argument(&mut program, "tla", var)?;
                named.push((program.intern_str(name), thunk));
            }
            let func = program.value_to_thunk(&value);
            value = program
                .eval_call(&func, &[], &named, &mut files)
                .map_err(|e| files.eval_error(&program, &e))?;
        }
        let json = program
            .manifest_json(&value, false)
            .map_err(|e| files.eval_error(&program, &e))?;
        if !self.output.charge(json.len() as u64) {
            return Err(format!(
                "the output exceeds the render's limit of {} bytes of Jsonnet output",
                self.output.limit()
            ));
        }
        serde_json::from_str(&json).map_err(|e| format!("the output is not valid JSON: {e}"))
    }
}

/// Import resolution and the sources loaded, for locations in messages.
struct Files<'p> {
    root: PathBuf,
    jpaths: Arc<Vec<PathBuf>>,
    /// Each loaded source: its path (repository-relative for display) and text.
    sources: HashMap<SpanContextId, (Option<PathBuf>, String, Vec<u8>)>,
    cache: HashMap<PathBuf, Thunk<'p>>,
    /// Why the last import failed (the evaluator only says that it did).
    failure: Option<String>,
}

impl<'p> Files<'p> {
    fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Loads a file's source (not yet evaluated).
    fn load(
        &mut self,
        program: &mut Program<'p>,
        path: &Path,
        text: &[u8],
    ) -> std::result::Result<Thunk<'p>, LoadError> {
        let name = self.display(path);
        let (context, _) = program.span_manager_mut().insert_source_context(text.len());
        self.sources.insert(
            context,
            (Some(path.to_path_buf()), name.clone(), text.to_vec()),
        );
        program.load_source(context, text, true, &name)
    }

    /// An external variable or top-level argument: a string, or code evaluated lazily.
    fn argument(
        &mut self,
        program: &mut Program<'p>,
        what: &str,
        var: &JsonnetVar,
    ) -> std::result::Result<Thunk<'p>, String> {
        if !var.code {
            return Ok(program.value_to_thunk(&JValue::string(&var.value)));
        }
        let name = format!("<{what} {}>", var.name);
        let text = var.value.as_bytes();
        let (context, _) = program.span_manager_mut().insert_source_context(text.len());
        self.sources
            .insert(context, (None, name.clone(), text.to_vec()));
        program
            .load_source(context, text, true, &name)
            .map_err(|e| self.load_error(program, Path::new(&name), &e))
    }

    /// Resolves an import: next to the importing file, then in the library paths; never outside the repository.
    fn resolve(
        &self,
        program: &Program<'p>,
        from: SpanId,
        path: &str,
    ) -> std::result::Result<PathBuf, String> {
        let (context, _, _) = program.span_manager().get_span(from);
        let importer = self.sources.get(&context);
        let importer_name = importer.map_or("?", |(_, name, _)| name.as_str());
        if path.is_empty() || Path::new(path).is_absolute() {
            return Err(format!(
                "{importer_name}: import '{path}' refused: imports are relative paths inside the repository"
            ));
        }
        let here = importer
            .and_then(|(file, _, _)| file.as_deref())
            .and_then(Path::parent);
        for base in here
            .into_iter()
            .chain(self.jpaths.iter().map(PathBuf::as_path))
        {
            let candidate = normalize(&base.join(path));
            if !candidate.starts_with(&self.root) {
                return Err(format!(
                    "{importer_name}: import '{path}' refused: it resolves outside the repository"
                ));
            }
            if candidate.is_file() {
                let real = candidate
                    .canonicalize()
                    .map_err(|e| format!("{path}: {e}"))?;
                if !real.starts_with(&self.root) {
                    return Err(format!(
                        "{importer_name}: import '{path}' refused: it resolves (through a symlink) outside the repository"
                    ));
                }
                return Ok(real);
            }
        }
        Err(format!(
            "{importer_name}: import '{path}' not found next to the file or in the library paths"
        ))
    }

    fn read(
        &mut self,
        program: &Program<'p>,
        from: SpanId,
        path: &str,
    ) -> std::result::Result<(PathBuf, Vec<u8>), ImportError> {
        let resolved = self.resolve(program, from, path).map_err(|message| {
            self.failure = Some(message);
            ImportError
        })?;
        match std::fs::read(&resolved) {
            Ok(bytes) => Ok((resolved, bytes)),
            Err(e) => {
                self.failure = Some(format!("{}: {e}", self.display(&resolved)));
                Err(ImportError)
            }
        }
    }

    /// `file:line:column` of a span in a loaded source.
    fn location(&self, program: &Program<'p>, span: SpanId) -> Option<String> {
        let (context, start, _) = program.span_manager().get_span(span);
        let (_, name, text) = self.sources.get(&context)?;
        let before = &text[..start.min(text.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        Some(format!("{name}:{line}:{column}"))
    }

    fn load_error(&self, program: &Program<'p>, file: &Path, error: &LoadError) -> String {
        let (span, message) = match error {
            LoadError::Lex(e) => (
                lex_span(e),
                format!("syntax error: {}", strip_spans(&format!("{e:?}"))),
            ),
            LoadError::Parse(ParseError::Expected {
                span,
                expected,
                instead,
            }) => (
                *span,
                format!(
                    "syntax error: expected {}, found {}",
                    strip_spans(&format!("{expected:?}")),
                    strip_spans(&format!("{instead:?}"))
                ),
            ),
            LoadError::Analyze(e) => (analyze_span(e), strip_spans(&format!("{e:?}"))),
        };
        let at = self
            .location(program, span)
            .unwrap_or_else(|| self.display(file));
        format!("{at}: {message}")
    }

    fn eval_error(&self, program: &Program<'p>, error: &EvalError) -> String {
        let (span, message) = describe(&error.kind);
        let mut message = match &error.kind {
            EvalErrorKind::ImportFailed { .. } => self.failure.clone().unwrap_or(message),
            _ => message,
        };
        let mut frames: Vec<String> = span
            .and_then(|s| self.location(program, s))
            .into_iter()
            .collect();
        for item in &error.stack_trace {
            let span = match item {
                EvalStackTraceItem::Expr { span }
                | EvalStackTraceItem::Variable { span, .. }
                | EvalStackTraceItem::Import { span } => Some(*span),
                EvalStackTraceItem::Call { span, .. }
                | EvalStackTraceItem::ArrayItem { span, .. }
                | EvalStackTraceItem::ObjectField { span, .. } => *span,
                _ => None,
            };
            if let Some(at) = span.and_then(|s| self.location(program, s))
                && frames.last() != Some(&at)
            {
                frames.push(at);
            }
            if frames.len() >= 5 {
                break;
            }
        }
        if let Some((first, rest)) = frames.split_first() {
            message = format!("{first}: {message}");
            if !rest.is_empty() {
                message.push_str(&format!(" (from {})", rest.join(", ")));
            }
        }
        message
    }
}

impl<'p> Callbacks<'p> for Files<'p> {
    fn import(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> std::result::Result<Thunk<'p>, ImportError> {
        let (resolved, bytes) = self.read(program, from, path)?;
        if let Some(thunk) = self.cache.get(&resolved) {
            return Ok(thunk.clone());
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            self.failure = Some(format!("{}: not valid UTF-8", self.display(&resolved)));
            ImportError
        })?;
        if let Err(line) = check_nesting(&text) {
            self.failure = Some(format!(
                "{}:{line}: nesting deeper than {MAX_NESTING} levels",
                self.display(&resolved)
            ));
            return Err(ImportError);
        }
        let thunk = self
            .load(program, &resolved, text.as_bytes())
            .map_err(|e| {
                self.failure = Some(self.load_error(program, &resolved, &e));
                ImportError
            })?;
        self.cache.insert(resolved, thunk.clone());
        Ok(thunk)
    }

    fn import_str(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> std::result::Result<String, ImportError> {
        let (resolved, bytes) = self.read(program, from, path)?;
        String::from_utf8(bytes).map_err(|_| {
            self.failure = Some(format!("{}: not valid UTF-8", self.display(&resolved)));
            ImportError
        })
    }

    fn import_bin(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> std::result::Result<Vec<u8>, ImportError> {
        self.read(program, from, path).map(|(_, bytes)| bytes)
    }

    fn trace(&mut self, _program: &mut Program<'p>, _message: &str, _stack: &[EvalStackTraceItem]) {
    }

    fn native_call(
        &mut self,
        _program: &mut Program<'p>,
        _name: InternedStr<'p>,
        _args: &[JValue<'p>],
    ) -> std::result::Result<JValue<'p>, NativeError> {
        // No native functions are registered.
        Err(NativeError)
    }
}

/// A message for an evaluation error, and the span it names.
fn describe(kind: &EvalErrorKind) -> (Option<SpanId>, String) {
    match kind {
        EvalErrorKind::StackOverflow => (
            None,
            "max stack frames exceeded (unbounded recursion?)".into(),
        ),
        EvalErrorKind::InfiniteRecursion => (None, "infinite recursion".into()),
        EvalErrorKind::ExplicitError { span, message } => {
            (Some(*span), format!("error: {message}"))
        }
        EvalErrorKind::AssertFailed { span, message } => (
            Some(*span),
            match message {
                Some(m) => format!("assertion failed: {m}"),
                None => "assertion failed".into(),
            },
        ),
        EvalErrorKind::UnknownObjectField { span, field_name } => {
            (Some(*span), format!("field does not exist: {field_name}"))
        }
        EvalErrorKind::UnknownExtVar { name } => {
            (None, format!("undefined external variable: {name}"))
        }
        EvalErrorKind::CallParamNotBound { span, param_name } => (
            *span,
            format!(
                "function parameter '{param_name}' is not bound (a missing top-level argument?)"
            ),
        ),
        EvalErrorKind::UnknownCallParam { span, param_name } => {
            (*span, format!("function has no parameter '{param_name}'"))
        }
        EvalErrorKind::ImportFailed { span, path } => {
            (Some(*span), format!("import '{path}' failed"))
        }
        EvalErrorKind::ManifestFunction => (None, "a function cannot be output".into()),
        EvalErrorKind::Other { span, message } => (*span, message.clone()),
        EvalErrorKind::InvalidIndexedType { span, .. }
        | EvalErrorKind::InvalidSlicedType { span, .. }
        | EvalErrorKind::SliceIndexOrStepIsNotNumber { span, .. }
        | EvalErrorKind::StringIndexIsNotNumber { span, .. }
        | EvalErrorKind::ArrayIndexIsNotNumber { span, .. }
        | EvalErrorKind::NumericIndexIsNotValid { span, .. }
        | EvalErrorKind::NumericIndexOutOfRange { span, .. }
        | EvalErrorKind::ObjectIndexIsNotString { span, .. }
        | EvalErrorKind::RepeatedFieldName { span, .. }
        | EvalErrorKind::FieldNameIsNotString { span, .. }
        | EvalErrorKind::FieldOfNonObject { span }
        | EvalErrorKind::SuperWithoutSuperObject { span }
        | EvalErrorKind::ForSpecValueIsNotArray { span, .. }
        | EvalErrorKind::CondIsNotBool { span, .. }
        | EvalErrorKind::InvalidUnaryOpType { span, .. } => {
            (Some(*span), strip_spans(&format!("{kind:?}")))
        }
        EvalErrorKind::CalleeIsNotFunction { span, .. }
        | EvalErrorKind::TooManyCallArgs { span, .. }
        | EvalErrorKind::RepeatedCallParam { span, .. }
        | EvalErrorKind::InvalidBinaryOpTypes { span, .. }
        | EvalErrorKind::NumberNotBitwiseSafe { span }
        | EvalErrorKind::NumberOverflow { span }
        | EvalErrorKind::NumberNan { span }
        | EvalErrorKind::DivByZero { span }
        | EvalErrorKind::ShiftByNegative { span } => (*span, strip_spans(&format!("{kind:?}"))),
        _ => (None, strip_spans(&format!("{kind:?}"))),
    }
}

fn lex_span(error: &LexError) -> SpanId {
    match error {
        LexError::InvalidChar { span, .. }
        | LexError::InvalidUtf8 { span, .. }
        | LexError::UnfinishedMultilineComment { span }
        | LexError::LeadingZeroInNumber { span }
        | LexError::MissingFracDigits { span }
        | LexError::MissingExpDigits { span }
        | LexError::MissingDigitAfterUnderscore { span }
        | LexError::ExpOverflow { span }
        | LexError::InvalidEscapeInString { span, .. }
        | LexError::IncompleteUnicodeEscape { span }
        | LexError::InvalidUtf16EscapeSequence { span, .. }
        | LexError::UnfinishedString { span }
        | LexError::MissingLineBreakAfterTextBlockStart { span }
        | LexError::MissingWhitespaceTextBlockStart { span }
        | LexError::InvalidTextBlockTermination { span } => *span,
    }
}

fn analyze_span(error: &AnalyzeError) -> SpanId {
    match error {
        AnalyzeError::UnknownVariable { span, .. }
        | AnalyzeError::TextBlockAsImportPath { span }
        | AnalyzeError::ComputedImportPath { span } => *span,
        AnalyzeError::SelfOutsideObject { self_span } => *self_span,
        AnalyzeError::SuperOutsideObject { super_span } => *super_span,
        AnalyzeError::DollarOutsideObject { dollar_span } => *dollar_span,
        AnalyzeError::RepeatedLocalName { repeated_span, .. }
        | AnalyzeError::RepeatedFieldName { repeated_span, .. }
        | AnalyzeError::RepeatedParamName { repeated_span, .. } => *repeated_span,
        AnalyzeError::PositionalArgAfterNamed { arg_span } => *arg_span,
    }
}

/// A `Debug` rendering without its span ids (meaningless to a reader).
fn strip_spans(text: &str) -> String {
    static SPAN: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\w*span: (Some\()?SpanId\(\d+\)\)?(, )?").ok()
    });
    let stripped = match SPAN.as_ref() {
        Some(re) => re.replace_all(text, "").into_owned(),
        None => text.to_owned(),
    };
    stripped.replace(" {  }", "").replace(" { }", "")
}
