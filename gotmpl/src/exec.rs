//! The executor: walks the tree with Go's evaluation rules (dot, variables, pipelines, argument types,
//! missing keys, `range`/`break`/`continue`, templates) under the limits of [`Options`].

use std::collections::BTreeMap;

use crate::error::{Error, line_col};
use crate::funcs::{self, Ctx, Ty};
use crate::parse::{Arg, Branch, Cmd, List, Node, Num, Pipe};
use crate::value::{MapKind, Value};
use crate::{MissingKey, Options, Template};

/// Deepest `{{template}}` recursion (Go allows 100000; real templates need a handful, and every level costs
/// native stack).
pub(crate) const MAX_TEMPLATE_DEPTH: usize = 100;

/// Why evaluation stopped early.
pub(crate) enum Flow {
    Err(Error),
    Break,
    Continue,
}

type R<T> = Result<T, Flow>;

/// The node an error is reported at.
#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Arg(&'t Arg),
    Cmd(&'t Cmd),
    Pipe(&'t Pipe),
    Template(usize, &'t str),
    Keyword(usize, &'static str),
}

struct Exec<'t> {
    tmpl: &'t Template,
    opts: &'t Options,
    out: String,
    steps: u64,
    vars: Vec<(String, Value)>,
    depth: usize,
    name: String,
    at: At<'t>,
}

/// Executes `tmpl` with `data` as dot.
pub(crate) fn execute(
    tmpl: &Template,
    data: &serde_json::Value,
    opts: &Options,
) -> Result<String, Error> {
    let dot = Value::from_json(data);
    let mut ex = Exec {
        tmpl,
        opts,
        out: String::new(),
        steps: 0,
        vars: vec![("$".into(), dot.clone())],
        depth: 0,
        name: String::new(),
        at: At::None,
    };
    match ex.walk_list(&dot, &tmpl.main) {
        Ok(()) => Ok(ex.out),
        Err(Flow::Err(e)) => Err(e),
        Err(Flow::Break | Flow::Continue) => {
            Err(ex.error("break or continue outside range".into()))
        }
    }
}

fn missing_value_for(v: Value) -> Value {
    // Go's evalPipeline: an interface holding nil becomes no value.
    match v {
        Value::Nil => Value::Missing,
        v => v,
    }
}

impl<'t> Exec<'t> {
    fn error(&self, message: String) -> Error {
        let (pos, node) = match self.at {
            At::None => (0, String::new()),
            At::Arg(a) => (a.pos(), a.to_string()),
            At::Cmd(c) => (c.args.first().map_or(c.pos, Arg::pos), c.to_string()),
            At::Pipe(p) => (p.pos, p.to_string()),
            At::Template(pos, name) => (
                pos,
                format!("{{{{template {}}}}}", crate::fmt::go_quote(name)),
            ),
            At::Keyword(pos, k) => (pos, k.to_string()),
        };
        let node = if node.chars().count() > 20 {
            format!("{}...", node.chars().take(20).collect::<String>())
        } else {
            node
        };
        let (line, col) = line_col(&self.tmpl.text, pos);
        Error::Execute {
            line,
            col,
            template: self.name.clone(),
            node,
            message,
        }
    }

    fn fail<T>(&self, message: impl Into<String>) -> R<T> {
        Err(Flow::Err(self.error(message.into())))
    }

    fn step(&mut self, n: u64) -> R<()> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.opts.max_steps {
            return self.fail(format!("execution exceeded {} steps", self.opts.max_steps));
        }
        Ok(())
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.opts.max_output_bytes {
            return self.fail(format!(
                "output exceeds {} bytes",
                self.opts.max_output_bytes
            ));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, list: &'t List) -> R<()> {
        for node in list {
            self.walk(dot, node)?;
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, node: &'t Node) -> R<()> {
        self.step(1)?;
        match node {
            Node::Text(t) => self.write(t),
            Node::Action(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let s = self.printable(&v)?;
                    self.write(&s)?;
                }
                Ok(())
            }
            Node::If(b) => self.if_or_with(dot, b, false),
            Node::With(b) => self.if_or_with(dot, b, true),
            Node::Range(b) => self.range(dot, b),
            Node::Template { pos, name, pipe } => self.template(dot, *pos, name, pipe.as_ref()),
            Node::Break(pos) => {
                self.at = At::Keyword(*pos, "{{break}}");
                Err(Flow::Break)
            }
            Node::Continue(pos) => {
                self.at = At::Keyword(*pos, "{{continue}}");
                Err(Flow::Continue)
            }
        }
    }

    /// How `{{pipeline}}` prints a value (Go's printValue).
    fn printable(&self, v: &Value) -> R<String> {
        Ok(match v {
            Value::Missing | Value::Nil => "<no value>".to_string(),
            v => v.to_v(),
        })
    }

    fn if_or_with(&mut self, dot: &Value, b: &'t Branch, with: bool) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let result = if val.truth() {
            if with {
                self.walk_list(&val, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(else_list) = &b.else_list {
            self.walk_list(dot, else_list)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        result
    }

    fn range(&mut self, dot: &Value, b: &'t Branch) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let inner = self.vars.len();
        let items: Vec<(Value, Value)> = match &val {
            Value::List(_, items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Map(_, m) => m
                .borrow()
                .iter()
                .map(|(k, v)| (Value::str(k.as_str()), v.clone()))
                .collect(),
            Value::Int(n) | Value::Int64(n) => {
                if b.pipe.decl.len() > 1 {
                    self.vars.truncate(mark);
                    return self.fail(format!(
                        "can't use {n} to iterate over more than one variable"
                    ));
                }
                let n = *n;
                if n > 0 {
                    self.step(u64::try_from(n).unwrap_or(u64::MAX))?;
                }
                let kind_int = matches!(val, Value::Int(_));
                (0..n.max(0))
                    .map(|i| {
                        (
                            Value::Missing,
                            if kind_int {
                                Value::Int(i)
                            } else {
                                Value::Int64(i)
                            },
                        )
                    })
                    .collect()
            }
            Value::Missing | Value::Nil => Vec::new(),
            other => {
                self.vars.truncate(mark);
                return self.fail(format!("range can't iterate over {}", other.to_v()));
            }
        };
        let mut result = Ok(());
        if items.is_empty() {
            if let Some(else_list) = &b.else_list {
                result = self.walk_list(dot, else_list);
            }
        } else {
            for (key, elem) in items {
                if let Err(e) = self.step(1) {
                    result = Err(e);
                    break;
                }
                // Set the range variables (declared by the pipeline, so already on the stack).
                let decl = &b.pipe.decl;
                if !decl.is_empty() {
                    if b.pipe.is_assign {
                        if decl.len() > 1 {
                            self.set_var(&decl[0], key.clone());
                            self.set_var(&decl[1], elem.clone());
                        } else {
                            self.set_var(&decl[0], elem.clone());
                        }
                    } else if decl.len() > 1 {
                        self.vars[inner - 2].1 = key.clone();
                        self.vars[inner - 1].1 = elem.clone();
                    } else {
                        self.vars[inner - 1].1 = elem.clone();
                    }
                }
                let r = self.walk_list(&elem, &b.list);
                self.vars.truncate(inner);
                match r {
                    Ok(()) | Err(Flow::Continue) => {}
                    Err(Flow::Break) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        self.vars.truncate(mark);
        result
    }

    fn template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &'t str,
        pipe: Option<&'t Pipe>,
    ) -> R<()> {
        self.at = At::Template(pos, name);
        let tmpl: &'t Template = self.tmpl;
        let Some(list) = tmpl.defines.get(name) else {
            return self.fail(format!(
                "template {} not defined",
                crate::fmt::go_quote(name)
            ));
        };
        if self.depth >= MAX_TEMPLATE_DEPTH {
            return self.fail(format!(
                "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
            ));
        }
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Missing,
        };
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name.to_string());
        self.depth += 1;
        let r = self.walk_list(&new_dot, list);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        r
    }

    fn set_var(&mut self, name: &str, v: Value) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    fn var_value(&self, name: &str) -> R<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => self.fail(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'t Pipe) -> R<Value> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(missing_value_for(v));
        }
        let value = value.unwrap_or(Value::Missing);
        for d in &pipe.decl {
            if pipe.is_assign {
                self.set_var(d, value.clone());
            } else {
                self.vars.push((d.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, cmd: &'t Cmd, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            return self.fail(format!(
                "can't give argument to non-function {}",
                cmd.args[0]
            ));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &'t Cmd, fin: Option<Value>) -> R<Value> {
        self.step(1)?;
        let first = &cmd.args[0];
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                self.eval_field_chain(dot, dot.clone(), first, idents, &cmd.args, fin)
            }
            Arg::Chain { node, fields, .. } => {
                self.at = At::Arg(first);
                if matches!(node.as_ref(), Arg::Nil(_)) {
                    return self.fail(format!("indirection through explicit nil in {first}"));
                }
                let recv = self.eval_arg(dot, Ty::Any, node)?;
                self.at = At::Arg(first);
                self.eval_field_chain(dot, recv, first, fields, &cmd.args, fin)
            }
            Arg::Ident(_, name) => {
                self.at = At::Arg(first);
                self.eval_function(dot, name, cmd, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Var { name, fields, .. } => {
                self.at = At::Arg(first);
                let v = self.var_value(name)?;
                if fields.is_empty() {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_field_chain(dot, v, first, fields, &cmd.args, fin)
            }
            Arg::Bool(_, b) => {
                self.at = At::Arg(first);
                self.not_a_function(cmd, &fin)?;
                Ok(Value::Bool(*b))
            }
            Arg::Dot(_) => {
                self.at = At::Arg(first);
                self.not_a_function(cmd, &fin)?;
                Ok(dot.clone())
            }
            Arg::Nil(_) => {
                self.at = At::Arg(first);
                self.not_a_function(cmd, &fin)?;
                self.fail("nil is not a command")
            }
            Arg::Num(_, n) => {
                self.at = At::Arg(first);
                self.not_a_function(cmd, &fin)?;
                self.ideal_constant(n)
            }
            Arg::Str(_, s) => {
                self.at = At::Arg(first);
                self.not_a_function(cmd, &fin)?;
                Ok(Value::str(s.as_str()))
            }
        }
    }

    fn ideal_constant(&self, n: &Num) -> R<Value> {
        let looks_float = n.text.contains(['.', 'e', 'E', 'p', 'P'])
            && !n.text.starts_with("0x")
            && !n.text.starts_with("0X");
        if looks_float && let Some(f) = n.float {
            return Ok(Value::Float(f));
        }
        match n.int {
            Some(i) => Ok(Value::Int(i)),
            None => self.fail(format!("{} overflows int", n.text)),
        }
    }

    /// `.a.b.c` on `recv`; the last field gets the command's arguments (only methods take any).
    fn eval_field_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        node: &'t Arg,
        idents: &'t [String],
        args: &'t [Arg],
        fin: Option<Value>,
    ) -> R<Value> {
        let n = idents.len();
        let mut from_map = false;
        for (i, ident) in idents.iter().enumerate() {
            let last = i + 1 == n;
            let has_args = last && (args.len() > 1 || fin.is_some());
            let _ = dot;
            self.step(1)?;
            recv = self.eval_field(ident, recv, has_args, from_map)?;
            self.at = At::Arg(node);
            from_map = true;
        }
        Ok(recv)
    }

    fn eval_field(&mut self, name: &str, recv: Value, has_args: bool, from_map: bool) -> R<Value> {
        match recv {
            Value::Missing => {
                if self.opts.missing_key == MissingKey::Error {
                    return self.fail(format!(
                        "nil data; no entry for key {}",
                        crate::fmt::go_quote(name)
                    ));
                }
                Ok(Value::Missing)
            }
            Value::Nil => self.fail(format!("nil pointer evaluating interface {{}}.{name}")),
            Value::Map(kind, m) => {
                if has_args {
                    return self.fail(format!("{name} is not a method but has arguments"));
                }
                let found = m.borrow().get(name).cloned();
                match found {
                    Some(v) => Ok(v),
                    None => match self.opts.missing_key {
                        MissingKey::Default => Ok(Value::Missing),
                        MissingKey::Zero => Ok(if kind == MapKind::Str {
                            Value::str("")
                        } else {
                            Value::Nil
                        }),
                        MissingKey::Error => self.fail(format!(
                            "map has no entry for key {}",
                            crate::fmt::go_quote(name)
                        )),
                    },
                }
            }
            Value::Semver(v) => {
                if has_args {
                    return self.fail(format!("wrong number of args for {name}: want 0"));
                }
                Ok(match name {
                    "Major" => Value::Uint(v.major),
                    "Minor" => Value::Uint(v.minor),
                    "Patch" => Value::Uint(v.patch),
                    "Prerelease" => Value::str(v.pre.as_str()),
                    "Metadata" => Value::str(v.metadata.as_str()),
                    "Original" => Value::str(v.original.as_str()),
                    "String" => Value::str(v.canonical()),
                    _ => {
                        return self.fail(format!(
                            "can't evaluate field {name} in type *semver.Version"
                        ));
                    }
                })
            }
            other => {
                let typ = if from_map {
                    "interface {}"
                } else {
                    other.type_name()
                };
                self.fail(format!("can't evaluate field {name} in type {typ}"))
            }
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &'t str,
        cmd: &'t Cmd,
        fin: Option<Value>,
    ) -> R<Value> {
        let args = &cmd.args[1..];
        // and/or short-circuit and return one of their operands.
        if name == "and" || name == "or" {
            let n = args.len() + usize::from(fin.is_some());
            if n == 0 {
                return self.fail(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, Ty::Value, a)?;
                if v.truth() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let Some(sig) = funcs::signature(name) else {
            return self.fail(format!("{name:?} is not a defined function"));
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let fixed = sig.params.len();
        if sig.variadic.is_some() {
            if num_in < fixed {
                return self.fail(format!(
                    "wrong number of args for {name}: want at least {fixed} got {}",
                    args.len()
                ));
            }
        } else if num_in != fixed {
            return self.fail(format!(
                "wrong number of args for {name}: want {fixed} got {num_in}"
            ));
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            let ty = sig
                .params
                .get(i)
                .copied()
                .or(sig.variadic)
                .unwrap_or(Ty::Any);
            argv.push(self.eval_arg(dot, ty, a)?);
        }
        if let Some(f) = fin {
            let ty = sig
                .params
                .get(num_in - 1)
                .copied()
                .or(sig.variadic)
                .unwrap_or(Ty::Any);
            self.at = At::Cmd(cmd);
            let v = self.validate(f, ty)?;
            argv.push(v);
        }
        self.at = At::Cmd(cmd);
        let mut ctx = Ctx {
            opts: self.opts,
            steps: 0,
        };
        let result = funcs::call(&mut ctx, name, argv);
        self.step(ctx.steps)?;
        match result {
            Ok(v) => {
                self.step(v.weight())?;
                if let Value::Str(s) = &v
                    && s.len() > self.opts.max_output_bytes
                {
                    return self.fail(format!(
                        "error calling {name}: result exceeds {} bytes",
                        self.opts.max_output_bytes
                    ));
                }
                Ok(v)
            }
            Err(e) => self.fail(format!("error calling {name}: {e}")),
        }
    }

    /// Go's validateType: whether a computed value may be passed as a parameter of type `ty`.
    fn validate(&self, v: Value, ty: Ty) -> R<Value> {
        let ok = match (&v, ty) {
            (_, Ty::Value) => return Ok(v),
            (Value::Missing, Ty::Any) => return Ok(Value::Nil),
            (Value::Missing, Ty::MapAny) => return Ok(Value::map(BTreeMap::new())),
            (Value::Missing, _) => {
                return self.fail(format!("invalid value; expected {}", ty.go_name()));
            }
            (_, Ty::Any) => true,
            (Value::Str(_), Ty::Str) => true,
            (Value::Int(_), Ty::Int) => true,
            (Value::Float(_), Ty::Float) => true,
            (Value::Bool(_), Ty::Bool) => true,
            (Value::Map(MapKind::Any, _), Ty::MapAny) => true,
            (Value::Nil, Ty::MapAny) => return Ok(Value::map(BTreeMap::new())),
            _ => false,
        };
        if ok {
            return Ok(v);
        }
        let got = if matches!(v, Value::Nil) {
            "interface {}"
        } else {
            v.type_name()
        };
        self.fail(format!(
            "wrong type for value; expected {}; got {got}",
            ty.go_name()
        ))
    }

    fn eval_arg(&mut self, dot: &Value, ty: Ty, arg: &'t Arg) -> R<Value> {
        self.at = At::Arg(arg);
        let v = match arg {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                return match ty {
                    Ty::Any | Ty::Value => Ok(Value::Nil),
                    Ty::MapAny => Ok(Value::map(BTreeMap::new())),
                    _ => self.fail(format!("cannot assign nil to {}", ty.go_name())),
                };
            }
            Arg::Field { idents, .. } => self.eval_field_chain(
                dot,
                dot.clone(),
                arg,
                idents,
                std::slice::from_ref(arg),
                None,
            )?,
            Arg::Var { name, fields, .. } => {
                let v = self.var_value(name)?;
                if fields.is_empty() {
                    v
                } else {
                    self.eval_field_chain(dot, v, arg, fields, std::slice::from_ref(arg), None)?
                }
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident(_, name) => self.eval_bare_function(dot, name, arg)?,
            Arg::Chain { node, fields, .. } => {
                if matches!(node.as_ref(), Arg::Nil(_)) {
                    return self.fail(format!("indirection through explicit nil in {arg}"));
                }
                let recv = self.eval_arg(dot, Ty::Any, node)?;
                self.at = At::Arg(arg);
                self.eval_field_chain(dot, recv, arg, fields, std::slice::from_ref(arg), None)?
            }
            Arg::Bool(_, b) => {
                return match ty {
                    Ty::Bool | Ty::Any | Ty::Value => Ok(Value::Bool(*b)),
                    _ => self.fail(format!("expected {}; found {b}", ty.expect_name())),
                };
            }
            Arg::Num(_, n) => {
                return match ty {
                    Ty::Any | Ty::Value => self.ideal_constant(n),
                    Ty::Int => match n.int {
                        Some(i) => Ok(if ty == Ty::Int {
                            Value::Int(i)
                        } else {
                            Value::Int64(i)
                        }),
                        None => self.fail(format!("expected integer; found {}", n.text)),
                    },
                    Ty::Float => match n.float.or(n.int.map(|i| i as f64)) {
                        Some(f) => Ok(Value::Float(f)),
                        None => self.fail(format!("expected float; found {}", n.text)),
                    },
                    _ => self.fail(format!("expected {}; found {}", ty.expect_name(), n.text)),
                };
            }
            Arg::Str(_, s) => {
                return match ty {
                    Ty::Str | Ty::Any | Ty::Value => Ok(Value::str(s.as_str())),
                    _ => self.fail(format!(
                        "expected {}; found {}",
                        ty.expect_name(),
                        crate::fmt::go_quote(s)
                    )),
                };
            }
        };
        self.at = At::Arg(arg);
        self.validate(v, ty)
    }

    /// A function named as an argument without parentheses (`{{ upper now }}`): called with no arguments.
    fn eval_bare_function(&mut self, dot: &Value, name: &str, arg: &'t Arg) -> R<Value> {
        let _ = dot;
        let Some(sig) = funcs::signature(name) else {
            return self.fail(format!("{name:?} is not a defined function"));
        };
        if !sig.params.is_empty() {
            return self.fail(format!(
                "wrong number of args for {name}: want {} got 0",
                sig.params.len()
            ));
        }
        self.at = At::Arg(arg);
        let mut ctx = Ctx {
            opts: self.opts,
            steps: 0,
        };
        match funcs::call(&mut ctx, name, Vec::new()) {
            Ok(v) => Ok(v),
            Err(e) => self.fail(format!("error calling {name}: {e}")),
        }
    }
}
