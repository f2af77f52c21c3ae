//! The help text names only flags that exist where it is shown (the global `--server` once named a `--plaintext` that only `login` has).

#![allow(clippy::expect_used, reason = "test code")]

use std::collections::BTreeSet;
use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_edgecd"))
        .args(args)
        .env_remove("EDGECD_SERVER")
        .env_remove("EDGECD_TOKEN")
        .output()
        .expect("running edgecd");
    assert!(out.status.success(), "edgecd {args:?} failed: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The `--long` names a help text defines (lines that start with a flag).
fn defined_flags(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split([' ', ',', '=', '<']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// The help paragraph of one flag: its line and the indented lines after it.
fn paragraph<'t>(text: &'t str, flag: &str) -> Vec<&'t str> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(flag) && !l.contains(&format!(", {flag}")));
    let mut out: Vec<&str> = lines.next().into_iter().collect();
    out.extend(lines.take_while(|l| !l.trim_start().starts_with('-') && !l.trim().is_empty()));
    out
}

fn mentioned_flags(lines: &[&str]) -> BTreeSet<String> {
    lines
        .iter()
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn global_server_help_mentions_only_flags_that_exist() {
    for args in [
        &["--help"][..],
        &["app", "list", "--help"],
        &["apply", "--help"],
    ] {
        let text = help(args);
        let defined = defined_flags(&text);
        let server = paragraph(&text, "--server");
        assert!(
            !server.is_empty(),
            "no --server in `edgecd {args:?}`:\n{text}"
        );
        let mentioned = mentioned_flags(&server[1..]);
        let unknown: Vec<&String> = mentioned.difference(&defined).collect();
        assert!(
            unknown.is_empty(),
            "`edgecd {args:?}`: the --server help names {unknown:?}, which this command does not have:\n{}",
            server.join("\n")
        );
    }
    // What it names instead is real: `login` has --plaintext.
    assert!(defined_flags(&help(&["login", "--help"])).contains("--plaintext"));
}
