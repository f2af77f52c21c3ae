//! Go `text/template` with the function set of Argo CD ApplicationSets (sprig v3 and Argo CD's helpers), natively.
//!
//! ```
//! use edgecd_gotmpl::{render, Options};
//! let data = serde_json::json!({"cluster": {"name": "edge-1"}, "replicas": 3});
//! let out = render("{{ .cluster.name | upper }}-{{ .replicas }}", &data, &Options::default()).unwrap();
//! assert_eq!(out, "EDGE-1-3");
//! ```
//!
//! The engine reproduces Go's behaviour byte for byte where templates can observe it: value kinds (`int`,
//! `int64`, `float64`, `string`, `bool`, nil, lists, maps), `fmt`'s printing of them, truthiness, comparisons
//! and their type errors, `missingkey` options, whitespace trimming. `testdata/gotemplate` holds the corpus
//! that real Go (the program in `gotmpl/oracle`) rendered; `tests/oracle.rs` checks this crate against it.
//! Execution is bounded (output bytes, steps, recursion, sizes) so hostile templates fail instead of
//! hanging or exhausting memory. There is no IO.

mod error;
mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use error::Error;

/// Argo CD's `SanitizeName` (the template function `normalize`): lower-cased as Go lower-cases, every character
/// outside `[-a-z0-9.]` replaced by `-`, cut to 253 bytes, leading and trailing `-` and `.` trimmed.
pub fn normalize(name: &str) -> String {
    funcs::normalize(name)
}

/// What a reference to a missing map key yields (Go's `missingkey=` option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=default` (or `invalid`): no value, printed as `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the map's zero value (a nil interface, also printed as `<no value>`).
    Zero,
    /// `missingkey=error`: execution stops with an error naming the key.
    Error,
}

/// Execution options and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Behaviour on a missing map key.
    pub missing_key: MissingKey,
    /// Largest output, and largest string any function may build, in bytes.
    pub max_output_bytes: usize,
    /// Most evaluation steps (nodes evaluated, range iterations, work done by functions) per execution.
    pub max_steps: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            missing_key: MissingKey::Default,
            max_output_bytes: 1 << 20,
            max_steps: 1_000_000,
        }
    }
}

impl Options {
    /// Options from an ApplicationSet's `goTemplateOptions` (`missingkey=error` and the like).
    pub fn from_go_template_options(opts: &[String]) -> Result<Options, Error> {
        let mut options = Options::default();
        for opt in opts {
            options.missing_key = match opt.as_str() {
                "missingkey=default" | "missingkey=invalid" => MissingKey::Default,
                "missingkey=zero" => MissingKey::Zero,
                "missingkey=error" => MissingKey::Error,
                _ => {
                    return Err(Error::Option {
                        option: opt.clone(),
                    });
                }
            };
        }
        Ok(options)
    }
}

/// A parsed template: parsed once, executable many times.
#[derive(Clone, Debug)]
pub struct Template {
    main: Arc<parse::List>,
    defines: Arc<HashMap<String, Arc<parse::List>>>,
    text: Arc<str>,
}

impl Template {
    /// Parses a template text (with its `define`d templates). Unknown functions are refused here.
    pub fn parse(text: &str) -> Result<Template, Error> {
        let tree = parse::parse(text)?;
        Ok(Template {
            main: Arc::new(tree.main),
            defines: Arc::new(
                tree.defines
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(v)))
                    .collect(),
            ),
            text: Arc::from(text),
        })
    }

    /// Executes the template with `data` as dot. JSON numbers are Go `float64`s, as Argo CD decodes them.
    pub fn execute(&self, data: &serde_json::Value, opts: &Options) -> Result<String, Error> {
        exec::execute(self, data, opts)
    }
}

/// Parses and executes `text` once.
pub fn render(text: &str, data: &serde_json::Value, opts: &Options) -> Result<String, Error> {
    Template::parse(text)?.execute(data, opts)
}
