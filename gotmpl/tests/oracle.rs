//! Checks edgecd-gotmpl against what real Go rendered (`testdata/gotemplate/expected.json`, written by

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
//! `gotmpl/oracle`), and that regenerating the expectations with Go gives exactly the committed file.

use std::path::{Path, PathBuf};
use std::process::Command;

use edgecd_gotmpl::{Options, render};
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/gotemplate")
}

fn expected_text() -> String {
    std::fs::read_to_string(testdata().join("expected.json")).expect("read expected.json")
}

#[test]
fn matches_go_for_every_case() {
    let cases: Vec<Value> = serde_json::from_str(&expected_text()).expect("parse expected.json");
    assert!(cases.len() >= 250, "corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    let (mut ok_cases, mut err_cases) = (0, 0);
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let template = case["template"].as_str().expect("template");
        let options: Vec<String> = case["options"]
            .as_array()
            .expect("options")
            .iter()
            .map(|o| o.as_str().expect("option").to_string())
            .collect();
        let opts = Options::from_go_template_options(&options).expect("options");
        let got = render(template, &case["data"], &opts);
        match (case.get("output").and_then(Value::as_str), got) {
            (Some(want), Ok(got)) => {
                ok_cases += 1;
                if want != got {
                    failures.push(format!("{name}: output differs\n  template: {template:?}\n  go:     {want:?}\n  edgecd: {got:?}"));
                }
            }
            (Some(want), Err(e)) => {
                failures.push(format!("{name}: edgecd failed where Go rendered {want:?}\n  template: {template:?}\n  error: {e}"))
            }
            (None, Ok(got)) => failures.push(format!(
                "{name}: edgecd rendered {got:?} where Go failed with {:?}\n  template: {template:?}",
                case["error"]
            )),
            (None, Err(e)) => {
                err_cases += 1;
                if let Some(part) = case.get("error_contains").and_then(Value::as_str)
                    && !e.to_string().contains(part)
                {
                    failures.push(format!("{name}: error {:?} does not contain {part:?} (Go: {:?})", e.to_string(), case["error"]));
                }
                let phase = case["phase"].as_str().unwrap_or("");
                let ours = match e {
                    edgecd_gotmpl::Error::Parse { .. } => "parse",
                    _ => "execute",
                };
                if phase != ours && !name.contains("refused") {
                    failures.push(format!("{name}: Go failed at {phase}, edgecd at {ours}: {e}"));
                }
            }
        }
    }
    println!("{ok_cases} success cases, {err_cases} error cases");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Rebuilds the Go oracle (when Go is installed) and checks that it reproduces `expected.json` exactly.
#[test]
fn go_oracle_reproduces_expected() {
    if Command::new("go").arg("version").output().is_err() {
        println!("SKIPPED: go is not on PATH");
        return;
    }
    let cache = std::env::var("EDGECD_GOTMPL_ORACLE_CACHE")
        .unwrap_or_else(|_| "/var/tmp/edgecd-gotmpl-oracle".into());
    std::fs::create_dir_all(&cache).expect("create oracle cache");
    let oracle_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("oracle");
    let bin = Path::new(&cache).join(format!("gotmpl-oracle-{}", std::process::id()));
    let build = Command::new("go")
        .args(["build", "-mod=readonly", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(&oracle_dir)
        .output()
        .expect("run go build");
    assert!(
        build.status.success(),
        "go build of the oracle failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    // The corpus of this crate, and the ApplicationSet corpus cases that edgecd-core's corpus test checks
    // generated apps against.
    let pairs = [
        ("cases.yaml", "expected.json"),
        ("argocd-corpus-cases.json", "argocd-corpus-expected.json"),
    ];
    let mut stale = Vec::new();
    for (cases, expected) in pairs {
        let run = Command::new(&bin)
            .arg("-cases")
            .arg(testdata().join(cases))
            .output()
            .expect("run the oracle");
        assert!(
            run.status.success(),
            "the oracle failed on {cases}:\n{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let regenerated = String::from_utf8(run.stdout).expect("utf-8 output");
        let committed =
            std::fs::read_to_string(testdata().join(expected)).expect("read the expectations");
        if regenerated != committed {
            stale.push(format!(
                "{expected} is stale: regenerate it with `cd gotmpl/oracle && go run . -cases ../../testdata/gotemplate/{cases} -out ../../testdata/gotemplate/{expected} --update`"
            ));
        }
    }
    let _ = std::fs::remove_file(&bin);
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}
