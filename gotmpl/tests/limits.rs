//! Hostile templates fail with an error naming the limit, never a hang, an OOM or a stack overflow.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use edgecd_gotmpl::{Error, MissingKey, Options, Template, render};
use serde_json::json;

fn err(text: &str) -> String {
    render(text, &json!({}), &Options::default())
        .expect_err(text)
        .to_string()
}

#[test]
fn output_is_bounded() {
    let opts = Options {
        max_output_bytes: 1000,
        ..Options::default()
    };
    let e = render("{{range 2000}}x{{end}}", &json!({}), &opts).expect_err("too much output");
    assert!(e.to_string().contains("output exceeds 1000 bytes"), "{e}");
    let e = render(r#"{{repeat 2000 "x"}}"#, &json!({}), &opts).expect_err("repeat too long");
    assert!(e.to_string().contains("exceed 1000 bytes"), "{e}");
}

#[test]
fn doubling_strings_are_bounded() {
    let e = err(r#"{{$s := "xxxxxxxx"}}{{range 100}}{{$s = print $s $s}}{{end}}"#);
    assert!(e.contains("exceeds"), "{e}");
}

#[test]
fn steps_are_bounded() {
    let opts = Options {
        max_steps: 10_000,
        ..Options::default()
    };
    let e = render("{{range 100000}}{{end}}", &json!({}), &opts).expect_err("too many steps");
    assert!(e.to_string().contains("exceeded 10000 steps"), "{e}");
    let e = render(
        "{{range until 1000}}{{range until 1000}}{{end}}{{end}}",
        &json!({}),
        &opts,
    )
    .expect_err("nested");
    assert!(e.to_string().contains("steps"), "{e}");
}

#[test]
fn recursion_is_bounded() {
    let e = err(r#"{{define "r"}}{{template "r" .}}{{end}}{{template "r" .}}"#);
    assert!(e.contains("exceeded maximum template depth"), "{e}");
}

#[test]
fn sequences_are_bounded() {
    assert!(err("{{until 100000000}}").contains("sequence longer than"));
    assert!(err("{{seq 100000000}}").contains("sequence longer than"));
    assert!(err(r#"{{untilStep 0 100000000 1}}"#).contains("sequence longer than"));
}

#[test]
fn parse_nesting_is_bounded() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = Template::parse(&format!("{{{{{deep}}}}}")).expect_err("deep parens");
    assert!(matches!(e, Error::Parse { .. }), "{e}");
    let ifs = "{{if true}}".repeat(5000) + &"{{end}}".repeat(5000);
    assert!(Template::parse(&ifs).is_err());
}

#[test]
fn self_containing_maps_are_refused() {
    let e = err(r#"{{$d := dict}}{{$_ := set $d "me" $d}}{{$d}}"#);
    assert!(e.contains("contain itself"), "{e}");
}

#[test]
fn template_is_reusable_and_options_parse() {
    let t = Template::parse("{{.a}}-{{.b | default \"x\"}}").expect("parse");
    let opts =
        Options::from_go_template_options(&["missingkey=error".to_string()]).expect("options");
    assert_eq!(opts.missing_key, MissingKey::Error);
    assert_eq!(
        t.execute(&json!({"a": 1, "b": "y"}), &opts).expect("run"),
        "1-y"
    );
    assert!(t.execute(&json!({"b": "y"}), &opts).is_err());
    assert_eq!(
        t.clone()
            .execute(&json!({"a": 2}), &Options::default())
            .expect("run"),
        "2-x"
    );
    let e = Options::from_go_template_options(&["missingkey=maybe".to_string()])
        .expect_err("bad option");
    assert!(e.to_string().contains("missingkey=maybe"), "{e}");
}

#[test]
fn errors_say_where() {
    let e = render(
        "line1\n  {{.a.b}}",
        &json!({"a": "s"}),
        &Options {
            missing_key: MissingKey::Error,
            ..Options::default()
        },
    )
    .expect_err("field on string");
    match e {
        Error::Execute { line, col, .. } => assert_eq!((line, col), (2, 4)),
        other => panic!("{other}"),
    }
    let e = Template::parse("a\n{{nosuch}}").expect_err("undefined");
    assert_eq!(
        e.to_string(),
        "template: :2: function \"nosuch\" not defined"
    );
    let e = Template::parse("{{now}}").expect_err("refused");
    assert!(e.to_string().contains("not supported by edgecd"), "{e}");
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "{{",
        "}}",
        "{{.",
        "{{$",
        "{{(",
        "{{)}}",
        "{{|}}",
        "{{.a|}}",
        "{{'",
        "{{'ab'}}",
        "{{\"\\x",
        "{{- -}}",
        "{{/*",
        "{{end}}{{end}}",
        "{{else}}",
        "{{range $a, $b, $c := .}}{{end}}",
        "{{define}}",
        "{{template}}",
        "{{0x}}",
        "{{1e}}",
        "{{99999999999999999999}}",
        "{{.a.b.c.d.e.f}}",
        "{{index}}",
        "{{slice}}",
        "{{printf}}",
        "{{printf \"%*d\" -5 1}}",
        "{{printf \"%.*f\" 99999999 1.0}}",
        "{{substr 0 99 \"é\"}}",
        "{{trunc 1 \"é\"}}",
        "{{b64dec \"é\"}}",
        "{{b32dec \"====\"}}",
        "{{regexFind \"(?P<\" \"\"}}",
        "{{chunk 0 (list 1)}}",
        "{{add1 \"99999999999999999999\"}}",
        "{{int64 1e300}}",
        "{{mod -9223372036854775808 -1}}",
        "{{div -9223372036854775808 -1}}",
        "{{semverCompare \"\" \"1\"}}",
        "{{urlParse \":\"}}",
        "{{toYaml .}}",
        "{{fromYaml \"a: *x\"}}",
        "{{fromYamlArray \"[\"}}",
        "{{range $i, $v := 3}}{{end}}",
        "{{with}}{{end}}",
    ];
    for input in inputs {
        let _ = render(input, &json!({"a": [1, {"b": null}]}), &Options::default());
    }
}

/// Inputs on which `cargo fuzz` (target `go_template`, `scripts/fuzz`) once failed, one file each in
/// `render/fuzz/regressions/go_template/`, named for the bug (a number followed by a multi-byte character
/// was quoted in the error by slicing inside that character). Each must now render or fail cleanly.
#[test]
fn fuzzer_findings_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../render/fuzz/regressions/go_template");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no fuzzer findings under {}",
        dir.display()
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = render(text, &json!({"a": [1, {"b": null}]}), &Options::default());
        }
    }
    // The same bug, written out: the error quotes the whole character.
    let err = render("{{2\u{48b}}}", &json!({}), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("bad number syntax"), "{err}");
}
