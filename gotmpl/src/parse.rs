//! The parser: Go's template grammar into a tree, with parse-time checks (functions, variables, nesting).

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, line_col};
use crate::funcs;
use crate::lex::{Tok, Token, lex};

/// Deepest nesting of control structures and parentheses accepted.
pub(crate) const MAX_NESTING: usize = 100;

/// A list of nodes.
pub(crate) type List = Vec<Node>;

/// A parsed template text: the main body and the templates it defines.
#[derive(Debug)]
pub(crate) struct Tree {
    pub main: List,
    pub defines: HashMap<String, List>,
}

/// A node of the tree.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break(usize),
    Continue(usize),
}

/// `if`, `with` and `range`: the pipeline, the body and the `else` part.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// A pipeline with its variable declarations.
#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline: an operand and its arguments.
#[derive(Clone, Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A number literal as Go's parser classifies it.
#[derive(Clone, Debug)]
pub(crate) struct Num {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
}

/// An operand.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Var {
        pos: usize,
        name: String,
        fields: Vec<String>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Num(usize, Num),
    Str(usize, String),
    Ident(usize, String),
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Var { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Num(pos, _)
            | Arg::Str(pos, _)
            | Arg::Ident(pos, _)
            | Arg::Chain { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Var { name, fields, .. } => {
                write!(f, "{name}")?;
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => write!(f, "."),
            Arg::Nil(_) => write!(f, "nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Num(_, n) => write!(f, "{}", n.text),
            Arg::Str(_, s) => write!(f, "{}", crate::fmt::go_quote(s)),
            Arg::Ident(_, s) => write!(f, "{s}"),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(_) => write!(f, "{node}")?,
                    other => write!(f, "{other}")?,
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                write!(f, " | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// How an item list ended.
#[derive(PartialEq)]
enum Stop {
    End,
    Else,
    Eof,
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    defines: HashMap<String, List>,
}

/// Parses a template text.
pub(crate) fn parse(text: &str) -> Result<Tree, Error> {
    let toks = lex(text).map_err(|e| {
        let (line, col) = line_col(text, e.pos);
        Error::Parse {
            line,
            col,
            message: e.message,
        }
    })?;
    let mut p = Parser {
        text,
        toks,
        i: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        depth: 0,
        defines: HashMap::new(),
    };
    let mut main = Vec::new();
    loop {
        match p.peek().tok.clone() {
            Tok::Eof => break,
            Tok::Left if p.next_keyword_is("define") => p.define()?,
            _ => match p.item(true)? {
                Ok(node) => main.push(node),
                Err((end, pos)) => {
                    let what = if end == Stop::End {
                        "{{end}}"
                    } else {
                        "{{else}}"
                    };
                    return Err(p.error_at(pos, format!("unexpected {what}")));
                }
            },
        }
    }
    Ok(Tree {
        main,
        defines: p.defines,
    })
}

type ItemResult = Result<Result<Node, (Stop, usize)>, Error>;

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_space();
        self.peek()
    }

    fn next_keyword_is(&self, kw: &str) -> bool {
        let mut j = self.i + 1;
        while self.toks.get(j).is_some_and(|t| t.tok == Tok::Space) {
            j += 1;
        }
        matches!(self.toks.get(j), Some(Token { tok: Tok::Ident(w), .. }) if w == kw)
    }

    fn error_at(&self, pos: usize, message: String) -> Error {
        let (line, col) = line_col(self.text, pos);
        Error::Parse { line, col, message }
    }

    fn unexpected(&self, t: &Token, context: &str) -> Error {
        let what = match &t.tok {
            Tok::Eof => return self.error_at(t.pos, "unexpected EOF".into()),
            Tok::Right => "}}".to_string(),
            Tok::Text(s) => s.clone(),
            Tok::Ident(s) | Tok::Number(s) | Tok::Var(s) => s.clone(),
            Tok::Field(s) => format!(".{s}"),
            Tok::Str(s) => crate::fmt::go_quote(s),
            Tok::Pipe => "|".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Comma => ",".into(),
            Tok::Dot => ".".into(),
            Tok::Nil => "nil".into(),
            Tok::Bool(b) => b.to_string(),
            Tok::Left => "{{".into(),
            Tok::Space => "space".into(),
        };
        self.error_at(t.pos, format!("unexpected {what:?} in {context}"))
    }

    fn expect_right(&mut self, context: &str) -> Result<(), Error> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err(self.unexpected(&t, context));
        }
        Ok(())
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_space();
        self.next()
    }

    fn enter(&mut self, pos: usize) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error_at(
                pos,
                format!("template nested deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    /// `{{define "name"}}...{{end}}` at the top level.
    fn define(&mut self) -> Result<(), Error> {
        let left = self.next();
        self.next_non_space(); // "define"
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(&t, "define clause"));
        };
        self.expect_right("define clause")?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end, pos) = self.item_list()?;
        self.vars = saved;
        if end != Stop::End {
            return Err(self.error_at(
                pos,
                if end == Stop::Eof {
                    "unexpected EOF".into()
                } else {
                    "unexpected {{else}}".into()
                },
            ));
        }
        self.add_define(left.pos, name, list)
    }

    fn add_define(&mut self, pos: usize, name: String, list: List) -> Result<(), Error> {
        if let Some(old) = self.defines.get(&name) {
            let empty = |l: &List| {
                l.iter()
                    .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
            };
            if !empty(old) && !empty(&list) {
                return Err(self.error_at(
                    pos,
                    format!("template: multiple definition of template {name:?}"),
                ));
            }
            if empty(&list) {
                return Ok(());
            }
        }
        self.defines.insert(name, list);
        Ok(())
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of input.
    fn item_list(&mut self) -> Result<(List, Stop, usize), Error> {
        let mut list = Vec::new();
        loop {
            if self.peek().tok == Tok::Eof {
                return Ok((list, Stop::Eof, self.peek().pos));
            }
            if self.peek().tok == Tok::Left && self.next_keyword_is("define") {
                let pos = self.peek().pos;
                return Err(self.error_at(pos, "unexpected <define> in command".into()));
            }
            match self.item(false)? {
                Ok(node) => list.push(node),
                Err((end, pos)) => return Ok((list, end, pos)),
            }
        }
    }

    /// One text or action; `Err((End, pos))` for `{{end}}` and `{{else}}` (an `{{else}}`'s tokens up to
    /// the keyword are consumed, so `else if` can follow).
    fn item(&mut self, top: bool) -> ItemResult {
        let t = self.next();
        match t.tok {
            Tok::Text(s) => return Ok(Ok(Node::Text(s))),
            Tok::Left => {}
            _ => return Err(self.unexpected(&t, "input")),
        }
        let kw = self.peek_non_space().clone();
        if let Tok::Ident(w) = &kw.tok {
            match w.as_str() {
                "end" => {
                    self.next();
                    self.expect_right("end")?;
                    return Ok(Err((Stop::End, t.pos)));
                }
                "else" => {
                    self.next();
                    return Ok(Err((Stop::Else, t.pos)));
                }
                "if" | "with" | "range" => {
                    self.next();
                    return self.control(w.clone(), kw.pos).map(Ok);
                }
                "template" | "block" => {
                    self.next();
                    return self.template(w == "block", kw.pos, top).map(Ok);
                }
                "break" | "continue" => {
                    self.next();
                    if self.range_depth == 0 {
                        return Err(
                            self.error_at(kw.pos, format!("{{{{{w}}}}} outside {{{{range}}}}"))
                        );
                    }
                    self.expect_right(w)?;
                    return Ok(Ok(if w == "break" {
                        Node::Break(kw.pos)
                    } else {
                        Node::Continue(kw.pos)
                    }));
                }
                "define" => {
                    return Err(self.error_at(kw.pos, "unexpected <define> in command".into()));
                }
                _ => {}
            }
        }
        let pipe = self.pipeline("command", Tok::Right)?;
        Ok(Ok(Node::Action(pipe)))
    }

    fn control(&mut self, kind: String, pos: usize) -> Result<Node, Error> {
        self.enter(pos)?;
        let vars = self.vars.len();
        let pipe = self.pipeline(&kind, Tok::Right)?;
        if kind == "range" {
            self.range_depth += 1;
        }
        let (list, end, end_pos) = self.item_list()?;
        if kind == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            Stop::Eof => return Err(self.error_at(end_pos, "unexpected EOF".into())),
            Stop::End => None,
            Stop::Else => {
                // `{{else if ...}}` / `{{else with ...}}`: a nested control that shares our {{end}}.
                let next = self.peek_non_space().clone();
                match &next.tok {
                    Tok::Ident(w)
                        if (w == "if" && kind == "if") || (w == "with" && kind == "with") =>
                    {
                        self.next();
                        let nested = self.control(w.clone(), next.pos)?;
                        Some(vec![nested])
                    }
                    _ => {
                        self.expect_right("else")?;
                        let (else_list, end, end_pos) = self.item_list()?;
                        match end {
                            Stop::End => {}
                            Stop::Else => {
                                return Err(
                                    self.error_at(end_pos, "expected end; found {{else}}".into())
                                );
                            }
                            Stop::Eof => {
                                return Err(self.error_at(end_pos, "unexpected EOF".into()));
                            }
                        }
                        Some(else_list)
                    }
                }
            }
        };
        self.vars.truncate(vars);
        self.depth -= 1;
        let b = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kind.as_str() {
            "if" => Node::If(b),
            "with" => Node::With(b),
            _ => Node::Range(b),
        })
    }

    fn template(&mut self, block: bool, pos: usize, top: bool) -> Result<Node, Error> {
        let t = self.next_non_space();
        let Tok::Str(name) = t.tok else {
            return Err(self.unexpected(
                &t,
                if block {
                    "block clause"
                } else {
                    "template clause"
                },
            ));
        };
        let pipe = if self.peek_non_space().tok == Tok::Right {
            self.next();
            None
        } else {
            Some(self.pipeline(if block { "block" } else { "template" }, Tok::Right)?)
        };
        if block {
            let _ = top;
            self.enter(pos)?;
            let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
            let saved_range = std::mem::replace(&mut self.range_depth, 0);
            let (list, end, end_pos) = self.item_list()?;
            self.vars = saved;
            self.range_depth = saved_range;
            self.depth -= 1;
            if end != Stop::End {
                return Err(self.error_at(end_pos, "unexpected EOF".into()));
            }
            self.add_define(pos, name.clone(), list)?;
        }
        Ok(Node::Template { pos, name, pipe })
    }

    /// A pipeline up to `end` (`}}` or `)`), with declarations.
    fn pipeline(&mut self, context: &str, end: Tok) -> Result<Pipe, Error> {
        let pos = self.peek_non_space().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $v :=`.
        if let Tok::Var(name) = self.peek().tok.clone() {
            let save = self.i;
            self.next();
            let after = self.peek_non_space().tok.clone();
            match after {
                Tok::Declare | Tok::Assign => {
                    self.next();
                    is_assign = after == Tok::Assign;
                    decl.push(name);
                }
                Tok::Comma if context == "range" => {
                    self.next();
                    let w = self.next_non_space();
                    let Tok::Var(second) = w.tok else {
                        return Err(self.unexpected(&w, "range"));
                    };
                    let op = self.next_non_space();
                    match op.tok {
                        Tok::Declare => {}
                        Tok::Assign => is_assign = true,
                        _ => {
                            return Err(
                                self.error_at(op.pos, "range can only initialize variables".into())
                            );
                        }
                    }
                    decl.push(name);
                    decl.push(second);
                }
                _ => self.i = save,
            }
            for d in &decl {
                if is_assign {
                    if !self.vars.contains(d) {
                        return Err(self.error_at(pos, format!("undefined variable {d:?}")));
                    }
                } else {
                    self.vars.push(d.clone());
                }
            }
            if decl.len() > 1 && context != "range" {
                return Err(self.error_at(pos, format!("too many declarations in {context}")));
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek_non_space().clone();
            if t.tok == end {
                self.next();
                break;
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(_)
                | Tok::Var(_)
                | Tok::LParen => cmds.push(self.command(&end)?),
                _ => return Err(self.unexpected(&t, context)),
            }
        }
        if cmds.is_empty() {
            return Err(self.error_at(pos, format!("missing value for {context}")));
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Num(..) | Arg::Str(..))
            ) {
                return Err(self.error_at(
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(Pipe {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn command(&mut self, end: &Tok) -> Result<Cmd, Error> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.skip_space();
            if let Some(op) = self.operand()? {
                args.push(op);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::Pipe => {
                    let n = self.peek_non_space().tok.clone();
                    if n == *end {
                        return Err(self.error_at(t.pos, "missing command after pipe".into()));
                    }
                    break;
                }
                ref x if x == end => {
                    self.i -= 1;
                    break;
                }
                _ => return Err(self.unexpected(&t, "operand")),
            }
        }
        if args.is_empty() {
            return Err(self.error_at(pos, "empty command".into()));
        }
        Ok(Cmd { pos, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, Error> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f.clone());
            self.i += 1;
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field { pos, mut idents } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Var {
                pos,
                name,
                fields: mut f,
            } => {
                f.extend(fields);
                Arg::Var {
                    pos,
                    name,
                    fields: f,
                }
            }
            Arg::Bool(pos, _)
            | Arg::Str(pos, _)
            | Arg::Num(pos, _)
            | Arg::Nil(pos)
            | Arg::Dot(pos) => {
                return Err(self.error_at(
                    pos,
                    format!("unexpected . after term {:?}", term.to_string()),
                ));
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, Error> {
        let t = self.next();
        Ok(Some(match t.tok {
            Tok::Ident(name) => {
                if !funcs::is_defined(&name) {
                    let message = match name.as_str() {
                        n if funcs::refused(n).is_some() => {
                            format!(
                                "function {name:?} not defined (not supported by edgecd: {})",
                                funcs::refused(n).unwrap_or_default()
                            )
                        }
                        "else" | "end" | "if" | "range" | "with" | "define" | "template"
                        | "block" | "break" | "continue" => {
                            format!("unexpected <{name}> in command")
                        }
                        _ => format!("function {name:?} not defined"),
                    };
                    return Err(self.error_at(t.pos, message));
                }
                Arg::Ident(t.pos, name)
            }
            Tok::Dot => Arg::Dot(t.pos),
            Tok::Nil => Arg::Nil(t.pos),
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(self.error_at(t.pos, format!("undefined variable {name:?}")));
                }
                Arg::Var {
                    pos: t.pos,
                    name,
                    fields: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos: t.pos,
                idents: vec![f],
            },
            Tok::Bool(b) => Arg::Bool(t.pos, b),
            Tok::Number(text) => Arg::Num(t.pos, self.number(t.pos, text)?),
            Tok::Str(s) => Arg::Str(t.pos, s),
            Tok::LParen => {
                self.enter(t.pos)?;
                let pipe = self.pipeline("parenthesized pipeline", Tok::RParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }

    fn number(&self, pos: usize, text: String) -> Result<Num, Error> {
        let int = parse_go_int(&text);
        let float = parse_go_float(&text);
        if int.is_none() && float.is_none() {
            return Err(self.error_at(pos, format!("illegal number syntax: {text:?}")));
        }
        if int.is_none() && !text.contains(['.', 'e', 'E', 'p', 'P']) && !text.starts_with("0x") {
            return Err(self.error_at(pos, format!("integer overflow: {text:?}")));
        }
        if text.ends_with('i') {
            return Err(self.error_at(pos, format!("complex numbers are not supported: {text:?}")));
        }
        let int = int.or_else(|| {
            float
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        });
        Ok(Num { text, int, float })
    }
}

/// Go's `strconv.ParseInt(text, 0, 64)`.
pub(crate) fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits, prefixed) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r, true)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r, true)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r, true)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..], true)
        } else {
            (10, body, false)
        };
    if digits.contains('_') {
        // Underscores only between digits, and only with a base prefix (or a leading 0).
        if !prefixed && radix == 10 {
            return None;
        }
        if digits.starts_with('_') && radix != 8 || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    let v = i128::from_str_radix(&clean, radix).ok()?;
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

/// Go's `strconv.ParseFloat(text, 64)` for decimal texts.
pub(crate) fn parse_go_float(text: &str) -> Option<f64> {
    if text.contains(['x', 'X', 'i']) {
        return None;
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let body = clean.trim_start_matches(['+', '-']);
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    clean.parse::<f64>().ok()
}
