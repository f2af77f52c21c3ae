//! Real-world conformance: every case of `testdata/kustomize-realworld/cases.tar.xz` (109 kustomizations from
//! 17 public repositories) against the output recorded from `kubectl kustomize` (kustomize v5.5.0).
//!
//! The archive is unpacked with the system `tar` (xz) into a temporary directory; each case's own folder is the
//! repository root of its render. A case passes when it renders to the same documents in the same order;
//! byte-identical outputs are counted and printed. Cases that do not pass yet are listed in [`KNOWN_FAILURES`]
//! with the reason: such a case must still fail (a passing one must be removed from the list), and any other
//! failing case fails the test. `CASE=<substring>` runs only matching cases and prints their differences;
//! `REALWORLD_DUMP=DIR` writes every output to `DIR/<case>.yaml`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};
use std::process::Command;

use edgecd_render::{RenderOptions, Value, render, to_yaml, yaml};

/// Cases that do not render like kustomize yet, with the reason. Each fix removes its entries.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn archive() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/kustomize-realworld/cases.tar.xz")
}

fn unpack() -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(archive())
        .arg("-C")
        .arg(temp.path())
        .status()
        .expect("running tar (with xz support) to unpack the real-world corpus");
    assert!(status.success(), "tar -xJf {} failed", archive().display());
    temp
}

fn parse_expected(text: &str) -> Vec<Value> {
    yaml::load_documents(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

enum Outcome {
    ByteIdentical,
    SameDocuments,
    Failed(String),
}

fn check_case(case: &Path) -> Outcome {
    let build_dir = std::fs::read_to_string(case.join("build-dir"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "input".into());
    let expected_text = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    let options = RenderOptions {
        repo_root: Some(case.to_path_buf()),
        ..RenderOptions::default()
    };
    match render(&case.join(&build_dir), &options) {
        Err(error) => Outcome::Failed(format!("error: {error}")),
        Ok(objects) => {
            let actual_text = to_yaml(&objects);
            // `REALWORLD_DUMP=DIR` writes each case's output to DIR/<case>.yaml for inspection.
            if let Ok(dir) = std::env::var("REALWORLD_DUMP") {
                let name = case.file_name().unwrap().to_string_lossy().into_owned();
                std::fs::write(Path::new(&dir).join(format!("{name}.yaml")), &actual_text).unwrap();
            }
            if actual_text == expected_text {
                return Outcome::ByteIdentical;
            }
            let expected = parse_expected(&expected_text);
            if objects == expected {
                return Outcome::SameDocuments;
            }
            Outcome::Failed(first_difference(&objects, &expected, &actual_text))
        }
    }
}

/// A short description of where the documents first differ.
fn first_difference(actual: &[Value], expected: &[Value], actual_text: &str) -> String {
    let id = |v: &Value| {
        format!(
            "{}/{}",
            v.get("kind").and_then(Value::as_str).unwrap_or("?"),
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        )
    };
    let mut out = format!("{} documents, expected {}", actual.len(), expected.len());
    for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
        if a != e {
            out.push_str(&format!(
                "; first difference at document {index}: {} vs expected {}",
                id(a),
                id(e)
            ));
            if std::env::var("CASE").is_ok() {
                out.push_str(&format!(
                    "\n--- actual\n{}--- expected\n{}",
                    to_yaml(std::slice::from_ref(a)),
                    to_yaml(std::slice::from_ref(e))
                ));
            }
            return out;
        }
    }
    if std::env::var("CASE").is_ok() {
        out.push_str(&format!("\n--- actual\n{actual_text}"));
    }
    out
}

#[test]
fn realworld_corpus_renders_like_kustomize() {
    let temp = unpack();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 100, "only {} cases unpacked", cases.len());
    let only = std::env::var("CASE").ok();
    let (mut identical, mut byte_identical, mut total) = (0, 0, 0);
    let mut unexpected = Vec::new();
    let mut still_failing = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        total += 1;
        let known = KNOWN_FAILURES.iter().find(|(n, _)| *n == name);
        match (check_case(case), known) {
            (Outcome::ByteIdentical, None) => {
                identical += 1;
                byte_identical += 1;
            }
            (Outcome::SameDocuments, None) => identical += 1,
            (Outcome::ByteIdentical | Outcome::SameDocuments, Some(_)) => {
                unexpected.push(format!("{name}: passes now; remove it from KNOWN_FAILURES"))
            }
            (Outcome::Failed(why), None) => unexpected.push(format!("{name}: {why}")),
            (Outcome::Failed(why), Some((_, reason))) => {
                still_failing.push(format!("{name} (known: {reason}): {why}"))
            }
        }
    }
    for line in &still_failing {
        println!("known failure: {line}");
    }
    println!(
        "real-world corpus: {identical}/{total} cases render the same documents, {byte_identical} byte-identical, {} known failures",
        still_failing.len()
    );
    for (name, _) in KNOWN_FAILURES {
        assert!(
            cases.iter().any(|c| c.ends_with(name)),
            "KNOWN_FAILURES names {name}, which is not in the corpus"
        );
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected results:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
