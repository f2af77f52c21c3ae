//! The jq path expressions edgecd evaluates: a pipeline of paths and `select(…)` filters, whose work is bounded by the size of the object (no `,`, `..`, object construction or arithmetic, which multiply outputs without data).
//!
//! ```text
//!  expr    := stage ('|' stage)*
//!  stage   := 'select' '(' cond ')' | path
//!  path    := '.' | ('.' name | '.' string | '.'? '[' (']' | number ']' | string ']'))+   each with an optional '?'
//!  cond    := conj ('or' conj)*          conj := unary ('and' unary)*
//!  unary   := primary ('|' 'not')?
//!  primary := '(' cond ')' | operand (cmp operand | '|' fn '(' literal ')')?
//!  operand := single-valued path (no '[]') | literal        cmp := == != < <= > >=
//!  fn      := startswith | endswith | test | contains | has
//! ```
//!
//! A path with `[]` yields at most the object's nodes; a condition yields one value per input, so no stage
//! multiplies its inputs: evaluating a pipeline costs at most its length times the object's size.

/// Why an expression is outside the grammar.
pub(super) type GrammarError = String;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dot,
    Name(String),
    Str,
    Num,
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Pipe,
    Question,
    Cmp,
}

/// Deepest nesting of parentheses.
const MAX_DEPTH: usize = 16;

fn tokens(text: &str) -> Result<Vec<Token>, GrammarError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'.' => {
                if bytes.get(i + 1) == Some(&b'.') {
                    return Err("'..' (recursive descent)".into());
                }
                out.push(Token::Dot);
                i += 1;
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => return Err("an unterminated string".into()),
                        Some(b'\\') if bytes.get(i + 1) == Some(&b'(') => {
                            return Err("string interpolation".into());
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                out.push(Token::Str);
            }
            b'0'..=b'9' => {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                out.push(Token::Num);
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Name(text[start..i].to_owned()));
            }
            b'(' | b')' | b'[' | b']' | b'|' | b'?' => {
                out.push(match c {
                    b'(' => Token::Open,
                    b')' => Token::Close,
                    b'[' => Token::OpenBracket,
                    b']' => Token::CloseBracket,
                    b'|' => Token::Pipe,
                    _ => Token::Question,
                });
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let two = bytes.get(i + 1) == Some(&b'=');
                if (c == b'=' || c == b'!') && !two {
                    return Err(format!("'{}'", c as char));
                }
                out.push(Token::Cmp);
                i += if two { 2 } else { 1 };
            }
            b',' => return Err("',' (several outputs)".into()),
            b'{' => return Err("object construction".into()),
            other => return Err(format!("'{}'", other as char)),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), GrammarError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("{what} expected"))
        }
    }

    fn name(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Token::Name(n)) if n == name)
    }

    fn expr(&mut self) -> Result<(), GrammarError> {
        self.stage()?;
        while self.eat(&Token::Pipe) {
            self.stage()?;
        }
        Ok(())
    }

    fn stage(&mut self) -> Result<(), GrammarError> {
        if self.name("select") {
            self.at += 1;
            self.expect(&Token::Open, "'(' after select")?;
            self.cond()?;
            self.expect(&Token::Close, "')' closing select")
        } else {
            self.path(true)
        }
    }

    /// A path; `[]` only where `iterate` (outside conditions).
    fn path(&mut self, iterate: bool) -> Result<(), GrammarError> {
        if !self.eat(&Token::Dot) {
            return Err("a path starting with '.' expected".into());
        }
        // `.`, `.name`, `."name"` or `.[…]` first.
        match self.peek() {
            Some(Token::Name(_) | Token::Str) => self.at += 1,
            Some(Token::OpenBracket) => self.index(iterate)?,
            _ => return Ok(()),
        }
        self.eat(&Token::Question);
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.at += 1;
                    match self.peek() {
                        Some(Token::Name(_) | Token::Str) => self.at += 1,
                        Some(Token::OpenBracket) => self.index(iterate)?,
                        _ => return Err("a name after '.' expected".into()),
                    }
                }
                Some(Token::OpenBracket) => self.index(iterate)?,
                _ => return Ok(()),
            }
            self.eat(&Token::Question);
        }
    }

    fn index(&mut self, iterate: bool) -> Result<(), GrammarError> {
        self.expect(&Token::OpenBracket, "'['")?;
        match self.peek() {
            Some(Token::CloseBracket) if iterate => {}
            Some(Token::CloseBracket) => {
                return Err("'[]' inside a condition (it would compare several values)".into());
            }
            Some(Token::Num | Token::Str) => self.at += 1,
            _ => return Err("an index (a number or a string) or ']' expected".into()),
        }
        self.expect(&Token::CloseBracket, "']'")
    }

    fn cond(&mut self) -> Result<(), GrammarError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} nested parentheses"));
        }
        self.conj()?;
        while self.name("or") {
            self.at += 1;
            self.conj()?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn conj(&mut self) -> Result<(), GrammarError> {
        self.unary()?;
        while self.name("and") {
            self.at += 1;
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), GrammarError> {
        self.primary()?;
        if self.peek() == Some(&Token::Pipe)
            && matches!(self.tokens.get(self.at + 1), Some(Token::Name(n)) if n == "not")
        {
            self.at += 2;
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<(), GrammarError> {
        if self.eat(&Token::Open) {
            self.cond()?;
            return self.expect(&Token::Close, "')'");
        }
        self.operand()?;
        if self.eat(&Token::Cmp) {
            return self.operand();
        }
        if self.peek() == Some(&Token::Pipe)
            && let Some(Token::Name(f)) = self.tokens.get(self.at + 1)
            && ["startswith", "endswith", "test", "contains", "has"].contains(&f.as_str())
        {
            self.at += 2;
            self.expect(&Token::Open, "'('")?;
            self.literal()?;
            return self.expect(&Token::Close, "')'");
        }
        Ok(())
    }

    fn operand(&mut self) -> Result<(), GrammarError> {
        match self.peek() {
            Some(Token::Dot) => self.path(false),
            _ => self.literal(),
        }
    }

    fn literal(&mut self) -> Result<(), GrammarError> {
        match self.peek() {
            Some(Token::Str | Token::Num) => {
                self.at += 1;
                Ok(())
            }
            Some(Token::Name(n)) if ["true", "false", "null"].contains(&n.as_str()) => {
                self.at += 1;
                Ok(())
            }
            Some(Token::Name(n)) => Err(format!(
                "{n:?} (only select, and, or, not and string tests are evaluated)"
            )),
            _ => Err("a path or a literal expected".into()),
        }
    }
}

/// Whether `expression` is in the grammar; else what is not.
pub(super) fn check(expression: &str) -> Result<(), GrammarError> {
    let mut parser = Parser {
        tokens: tokens(expression)?,
        at: 0,
        depth: 0,
    };
    parser.expr()?;
    match parser.peek() {
        None => Ok(()),
        Some(token) => Err(format!("unexpected {token:?} after the expression")),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn paths_and_selects_argo_cd_documents_are_in_the_grammar() {
        for ok in [
            ".",
            ".spec.replicas",
            r#".data["config.yaml"]"#,
            r#".metadata.annotations."foo/bar""#,
            ".spec.template.spec.containers[]",
            ".spec.template.spec.containers[0].image",
            r#".spec.template.spec.initContainers[] | select(.name == "injected-init-container")"#,
            r#".spec.containers[] | select(.name == "sidecar") | .image"#,
            ".metadata.labels | select(.pinned) | .pinned",
            r#".spec.x[]? | select((.a == 1 or .b != "x") and (.c | startswith("istio")) | not)"#,
            r#".items[] | select(.name | test("^side"))"#,
        ] {
            assert!(check(ok).is_ok(), "{ok}: {:?}", check(ok));
        }
    }

    #[test]
    fn what_multiplies_outputs_without_data_is_not() {
        for (bad, why) in [
            ("path((.,.)|(.,.)|select(false))", "','"),
            ("path(.a)", "a path"),
            (".a, .b", "','"),
            ("..", "'..'"),
            ("{a: .x[]}", "object"),
            (".a + .b", "'+'"),
            (".a[] | select(.b[] == .c[])", "'[]' inside a condition"),
            ("select(.a) | length", "a path"),
            (".a | select(length > 1)", "\"length\""),
            (r#".a["\(.b)"]"#, "interpolation"),
            ("[.a]", "a path"),
            (".a | select(.b == 1", "')'"),
        ] {
            let err = check(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let deep = format!("select({}.a{})", "(".repeat(20), ")".repeat(20));
        assert!(check(&deep).unwrap_err().contains("nested"));
    }
}
