//! The lexer: text and actions, with Go's trim markers (`{{- ` and ` -}}`) and comments.

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Literal text between actions (already trimmed by neighbouring markers).
    Text(String),
    /// `{{` (with or without trim marker).
    Left,
    /// `}}`.
    Right,
    /// Whitespace inside an action.
    Space,
    /// A function name or keyword.
    Ident(String),
    /// `.name` (without the dot).
    Field(String),
    /// `$name` or `$`.
    Var(String),
    /// `.` alone.
    Dot,
    /// A string literal, unquoted.
    Str(String),
    /// A number literal's text (characters are turned into their code point).
    Number(String),
    /// `true` or `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `|`.
    Pipe,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
    /// End of input.
    Eof,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// A lexing error at a byte offset.
#[derive(Debug)]
pub(crate) struct LexError {
    pub pos: usize,
    pub message: String,
}

const SPACE: &[char] = &[' ', '\t', '\r', '\n'];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits a template into tokens.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, LexError> {
    let bytes = input.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut pos = 0;
    let mut trim_next_text = false;
    let mut paren_depth: usize = 0;
    loop {
        // Text up to the next "{{".
        let next = input[pos..].find("{{").map(|i| pos + i);
        let end = next.unwrap_or(input.len());
        let mut text = &input[pos..end];
        if trim_next_text {
            text = text.trim_start_matches(SPACE);
        }
        let Some(left) = next else {
            if !text.is_empty() {
                out.push(Token {
                    tok: Tok::Text(text.to_string()),
                    pos,
                });
            }
            out.push(Token {
                tok: Tok::Eof,
                pos: input.len(),
            });
            return Ok(out);
        };
        // A left trim marker: "{{-" followed by a space character.
        let left_trim =
            bytes.get(left + 2) == Some(&b'-') && bytes.get(left + 3).is_some_and(|&c| is_space(c));
        if left_trim {
            text = text.trim_end_matches(SPACE);
        }
        if !text.is_empty() {
            out.push(Token {
                tok: Tok::Text(text.to_string()),
                pos,
            });
        }
        let mut p = left + 2 + if left_trim { 2 } else { 0 };
        // Comments.
        if input[p..].starts_with("/*") {
            let Some(close) = input[p + 2..].find("*/") else {
                return Err(LexError {
                    pos: left,
                    message: "unclosed comment".into(),
                });
            };
            p = p + 2 + close + 2;
            match at_right(bytes, p) {
                Some((len, trim)) => {
                    pos = p + len;
                    trim_next_text = trim;
                    continue;
                }
                None => {
                    return Err(LexError {
                        pos: left,
                        message: "comment ends before closing delimiter".into(),
                    });
                }
            }
        }
        out.push(Token {
            tok: Tok::Left,
            pos: left,
        });
        // Inside the action.
        loop {
            if let Some((len, trim)) = at_right(bytes, p) {
                if paren_depth > 0 {
                    return Err(LexError {
                        pos: p,
                        message: "unclosed left paren".into(),
                    });
                }
                out.push(Token {
                    tok: Tok::Right,
                    pos: p,
                });
                pos = p + len;
                trim_next_text = trim;
                break;
            }
            let Some(c) = input[p..].chars().next() else {
                return Err(LexError {
                    pos: left,
                    message: "unclosed action".into(),
                });
            };
            let start = p;
            match c {
                c if is_space(c as u8) && c.is_ascii() => {
                    while bytes.get(p).is_some_and(|&c| is_space(c)) {
                        if at_right(bytes, p).is_some() {
                            break;
                        }
                        p += 1;
                    }
                    if p == start {
                        // " -}}": at_right matched at the space itself.
                        p += 1;
                    }
                    out.push(Token {
                        tok: Tok::Space,
                        pos: start,
                    });
                }
                '=' => {
                    p += 1;
                    out.push(Token {
                        tok: Tok::Assign,
                        pos: start,
                    });
                }
                ':' => {
                    if bytes.get(p + 1) != Some(&b'=') {
                        return Err(LexError {
                            pos: p,
                            message: "expected :=".into(),
                        });
                    }
                    p += 2;
                    out.push(Token {
                        tok: Tok::Declare,
                        pos: start,
                    });
                }
                '|' => {
                    p += 1;
                    out.push(Token {
                        tok: Tok::Pipe,
                        pos: start,
                    });
                }
                ',' => {
                    p += 1;
                    out.push(Token {
                        tok: Tok::Comma,
                        pos: start,
                    });
                }
                '(' => {
                    p += 1;
                    paren_depth += 1;
                    out.push(Token {
                        tok: Tok::LParen,
                        pos: start,
                    });
                }
                ')' => {
                    p += 1;
                    if paren_depth == 0 {
                        return Err(LexError {
                            pos: start,
                            message: "unexpected right paren".into(),
                        });
                    }
                    paren_depth -= 1;
                    out.push(Token {
                        tok: Tok::RParen,
                        pos: start,
                    });
                }
                '"' => {
                    let (s, len) = quoted(input, p)?;
                    p += len;
                    out.push(Token {
                        tok: Tok::Str(s),
                        pos: start,
                    });
                }
                '`' => {
                    let Some(close) = input[p + 1..].find('`') else {
                        return Err(LexError {
                            pos: p,
                            message: "unterminated raw quoted string".into(),
                        });
                    };
                    out.push(Token {
                        tok: Tok::Str(input[p + 1..p + 1 + close].to_string()),
                        pos: start,
                    });
                    p += close + 2;
                }
                '\'' => {
                    let (ch, len) = char_constant(input, p)?;
                    p += len;
                    out.push(Token {
                        tok: Tok::Number(format!("{}", ch as u32)),
                        pos: start,
                    });
                }
                '$' => {
                    p += 1;
                    while let Some(c) = input[p..].chars().next().filter(|&c| is_alnum(c)) {
                        p += c.len_utf8();
                    }
                    out.push(Token {
                        tok: Tok::Var(input[start..p].to_string()),
                        pos: start,
                    });
                }
                '.' => {
                    if bytes.get(p + 1).is_some_and(u8::is_ascii_digit) {
                        p += number(input, p, start)?;
                        out.push(Token {
                            tok: Tok::Number(input[start..p].to_string()),
                            pos: start,
                        });
                        continue;
                    }
                    p += 1;
                    while let Some(c) = input[p..].chars().next().filter(|&c| is_alnum(c)) {
                        p += c.len_utf8();
                    }
                    if p == start + 1 {
                        out.push(Token {
                            tok: Tok::Dot,
                            pos: start,
                        });
                    } else {
                        out.push(Token {
                            tok: Tok::Field(input[start + 1..p].to_string()),
                            pos: start,
                        });
                    }
                }
                '+' | '-' | '0'..='9' => {
                    p += number(input, p, start)?;
                    out.push(Token {
                        tok: Tok::Number(input[start..p].to_string()),
                        pos: start,
                    });
                }
                c if is_alnum(c) => {
                    while let Some(c) = input[p..].chars().next().filter(|&c| is_alnum(c)) {
                        p += c.len_utf8();
                    }
                    let word = &input[start..p];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word.to_string()),
                    };
                    out.push(Token { tok, pos: start });
                }
                c => {
                    return Err(LexError {
                        pos: p,
                        message: format!("unexpected {c:?} in command"),
                    });
                }
            }
            // Operands must be followed by a terminator.
            if let Some(last) = out.last()
                && matches!(
                    last.tok,
                    Tok::Ident(_) | Tok::Var(_) | Tok::Field(_) | Tok::Bool(_) | Tok::Nil
                )
            {
                let term = match input[p..].chars().next() {
                    None => true,
                    Some(c) => {
                        (c.is_ascii() && is_space(c as u8))
                            || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '=')
                            || input[p..].starts_with("}}")
                    }
                };
                if !term {
                    let c = input[p..].chars().next().unwrap_or(' ');
                    return Err(LexError {
                        pos: p,
                        message: format!("bad character {c:?}"),
                    });
                }
            }
        }
    }
}

/// The right delimiter at `p`: its length and whether it trims (" -}}").
fn at_right(bytes: &[u8], p: usize) -> Option<(usize, bool)> {
    if bytes.get(p).is_some_and(|&c| is_space(c))
        && bytes.get(p + 1) == Some(&b'-')
        && bytes.get(p + 2..p + 4) == Some(b"}}")
    {
        return Some((4, true));
    }
    if bytes.get(p..p + 2) == Some(b"}}") {
        return Some((2, false));
    }
    None
}

/// Scans a number starting at `p`; returns its length.
fn number(input: &str, p: usize, start: usize) -> Result<usize, LexError> {
    let bytes = input.as_bytes();
    let mut i = p;
    if matches!(bytes.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut digits: &[u8] = b"0123456789_";
    if bytes.get(i) == Some(&b'0') {
        match bytes.get(i + 1) {
            Some(b'x' | b'X') => {
                i += 2;
                digits = b"0123456789abcdefABCDEF_";
            }
            Some(b'o' | b'O') => {
                i += 2;
                digits = b"01234567_";
            }
            Some(b'b' | b'B') => {
                i += 2;
                digits = b"01_";
            }
            _ => {}
        }
    }
    while bytes.get(i).is_some_and(|c| digits.contains(c)) {
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        while bytes.get(i).is_some_and(|c| digits.contains(c)) {
            i += 1;
        }
    }
    let exp: &[u8] = if digits.len() == 23 { b"pP" } else { b"eE" };
    if bytes.get(i).is_some_and(|c| exp.contains(c)) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        while bytes
            .get(i)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'_')
        {
            i += 1;
        }
    }
    if bytes.get(i) == Some(&b'i') {
        i += 1;
    }
    if input[i..].chars().next().is_some_and(is_alnum)
        || i == p
        || (i == p + 1 && matches!(bytes[p], b'+' | b'-'))
    {
        // The offending character is part of the quote; it may be wider than one byte.
        let end = input[i..].chars().next().map_or(i, |c| i + c.len_utf8());
        return Err(LexError {
            pos: start,
            message: format!("bad number syntax: {:?}", &input[start..end]),
        });
    }
    Ok(i - p)
}

/// Scans a double-quoted string at `p`; returns the unquoted text and the literal's length.
fn quoted(input: &str, p: usize) -> Result<(String, usize), LexError> {
    let mut out = String::new();
    let mut chars = input[p + 1..].char_indices();
    let err = |m: &str| LexError {
        pos: p,
        message: m.to_string(),
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 2)),
            '\n' => return Err(err("unterminated quoted string")),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v: u32 = 0;
                        for _ in 0..n {
                            let d = chars
                                .next()
                                .and_then(|(_, c)| c.to_digit(16))
                                .ok_or_else(|| err("invalid syntax"))?;
                            v = v * 16 + d;
                        }
                        if e == 'x' {
                            // A byte; only ASCII keeps the text valid UTF-8.
                            out.push(
                                char::from_u32(v).filter(|_| v < 0x80).ok_or_else(|| {
                                    err("non-ASCII \\x escapes are not supported")
                                })?,
                            );
                        } else {
                            out.push(char::from_u32(v).ok_or_else(|| err("invalid syntax"))?);
                        }
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = chars
                                .next()
                                .and_then(|(_, c)| c.to_digit(8))
                                .ok_or_else(|| err("invalid syntax"))?;
                            v = v * 8 + d;
                        }
                        out.push(
                            char::from_u32(v)
                                .filter(|_| v < 0x80)
                                .ok_or_else(|| err("non-ASCII octal escapes are not supported"))?,
                        );
                    }
                    _ => return Err(err("invalid syntax")),
                }
            }
            c => out.push(c),
        }
    }
    Err(err("unterminated quoted string"))
}

/// Scans a character constant at `p`.
fn char_constant(input: &str, p: usize) -> Result<(char, usize), LexError> {
    let rest = &input[p + 1..];
    let err = || LexError {
        pos: p,
        message: "unterminated character constant".into(),
    };
    let mut it = rest.char_indices();
    let (_, c) = it.next().ok_or_else(err)?;
    let (ch, after) = if c == '\\' {
        let (i, e) = it.next().ok_or_else(err)?;
        let v = match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '\'' => '\'',
            '0' => '\0',
            _ => {
                return Err(LexError {
                    pos: p,
                    message: "unsupported escape in character constant".into(),
                });
            }
        };
        (v, i + e.len_utf8())
    } else {
        (c, c.len_utf8())
    };
    if rest.as_bytes().get(after) != Some(&b'\'') {
        return Err(err());
    }
    Ok((ch, after + 2))
}
