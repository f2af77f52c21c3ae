//! Path globs of the git generator: Go `path.Match` per segment (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes; nothing crosses `/`), plus `**` as a whole segment (zero or more segments) where allowed.

/// Whether `path` matches `pattern`; `doublestar` lets a `**` segment span any number of segments (git files), otherwise `**` is just `*` (git directories, as Go's `path.Match`). A malformed pattern is an error.
pub fn glob_match(pattern: &str, path: &str, doublestar: bool) -> Result<bool, String> {
    let pat: Vec<Vec<char>> = pattern.split('/').map(|s| s.chars().collect()).collect();
    for seg in &pat {
        validate(seg).map_err(|m| format!("bad pattern {pattern:?}: {m}"))?;
    }
    let segs: Vec<Vec<char>> = path.split('/').map(|s| s.chars().collect()).collect();
    Ok(match_segments(&pat, &segs, doublestar))
}

fn match_segments(pat: &[Vec<char>], segs: &[Vec<char>], doublestar: bool) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((first, rest)) if doublestar && first.as_slice() == ['*', '*'] => {
            (0..=segs.len()).any(|skip| match_segments(rest, &segs[skip..], doublestar))
        }
        Some((first, rest)) => match segs.split_first() {
            Some((seg, seg_rest)) => {
                match_segment(first, seg) && match_segments(rest, seg_rest, doublestar)
            }
            None => false,
        },
    }
}

fn validate(p: &[char]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("trailing backslash".into());
                }
                i += 2;
            }
            '[' => {
                let (_, used) = class(&p[i + 1..], None).ok_or("unterminated character class")?;
                i += 1 + used;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a class body (after `[`); returns (whether `c` matches, characters consumed including `]`). `None` when malformed.
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&n| n != ']') {
            i += 1;
            hi = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
        }
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
    }
    Some((matched != negated, i))
}

fn match_segment(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            (0..=s.len()).any(|i| match_segment(rest, &s[i..]))
        }
        Some('?') => !s.is_empty() && match_segment(&p[1..], &s[1..]),
        Some('[') => match (s.first(), class(&p[1..], s.first().copied())) {
            (Some(_), Some((true, used))) => match_segment(&p[1 + used..], &s[1..]),
            _ => false,
        },
        Some('\\') => {
            p.get(1).is_some_and(|c| s.first() == Some(c)) && match_segment(&p[2..], &s[1..])
        }
        Some(c) => s.first() == Some(c) && match_segment(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::glob_match;

    #[test]
    fn go_path_match_semantics() {
        assert!(glob_match("deploy/*", "deploy/a", false).unwrap());
        assert!(!glob_match("deploy/*", "deploy/a/b", false).unwrap());
        assert!(!glob_match("deploy/**", "deploy/a/b", false).unwrap());
        assert!(glob_match("deploy/**", "deploy/a/b", true).unwrap());
        assert!(glob_match("**/config.json", "config.json", true).unwrap());
        assert!(glob_match("a/**/c.json", "a/x/y/c.json", true).unwrap());
        assert!(glob_match("a/?/[b-d]", "a/x/c", false).unwrap());
        assert!(!glob_match("a/[^b-d]", "a/c", false).unwrap());
        assert!(glob_match("a/\\*", "a/*", false).unwrap());
        assert!(glob_match("a/[", "a/b", false).is_err());
        assert!(glob_match("a\\", "a", false).is_err());
    }
}
