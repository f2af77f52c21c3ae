//! Conformance: every case in `testdata/kustomize` and the talk/edge-fleet overlays, against the
//! outputs recorded from real `kustomize build` v5.5.
//!
//! Success cases compare documents structurally in order (and count byte-for-byte matches); error cases
//! require the error text to contain `expected-error.txt` (case-insensitive).
//! Inputs are copied into a temporary directory, so the tests never write to the fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};

use edgecd_render::{RenderOptions, Value, render, to_yaml, yaml};

/// The repository's `testdata/` folder.
fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Renders `relative` inside a temporary copy of `source_root`; the copy is the repository root.
fn render_copy(
    source_root: &Path,
    relative: &str,
) -> (Result<Vec<Value>, String>, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    copy_dir(source_root, temp.path());
    let options = RenderOptions {
        repo_root: Some(temp.path().to_path_buf()),
        ..RenderOptions::default()
    };
    let result = render(&temp.path().join(relative), &options).map_err(|e| e.to_string());
    (result, temp)
}

fn parse_expected(text: &str) -> Vec<Value> {
    yaml::load_documents(text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

#[derive(Debug, Default)]
struct Tally {
    passed: Vec<String>,
    byte_exact: usize,
    failures: Vec<String>,
}

fn check_case(case: &Path, tally: &mut Tally) {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let build_dir = std::fs::read_to_string(case.join("build-dir"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "input".into());
    let (result, _temp) = render_copy(case, &build_dir);
    if let Ok(expected_error) = std::fs::read_to_string(case.join("expected-error.txt")) {
        let expected_error = expected_error.trim().to_lowercase();
        match result {
            Err(message) if message.to_lowercase().contains(&expected_error) => {
                tally.passed.push(name)
            }
            Err(message) => tally.failures.push(format!(
                "{name}: error '{message}' does not contain '{expected_error}'"
            )),
            Ok(_) => tally.failures.push(format!(
                "{name}: expected an error containing '{expected_error}'"
            )),
        }
        return;
    }
    let expected_text = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
    match result {
        Err(message) => tally
            .failures
            .push(format!("{name}: unexpected error: {message}")),
        Ok(objects) => {
            let expected = parse_expected(&expected_text);
            let actual_text = to_yaml(&objects);
            if actual_text == expected_text {
                tally.byte_exact += 1;
            }
            if objects == expected {
                tally.passed.push(name);
            } else {
                tally.failures.push(format!(
                    "{name}: output differs\n--- actual\n{actual_text}--- expected\n{expected_text}"
                ));
            }
        }
    }
}

#[test]
fn kustomize_conformance_cases() {
    let fixtures = testdata().join("kustomize");
    assert!(fixtures.is_dir(), "{} not found", fixtures.display());
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut tally = Tally::default();
    let only = std::env::var("CASE").ok();
    for case in &cases {
        if only
            .as_ref()
            .is_some_and(|o| !case.to_string_lossy().contains(o.as_str()))
        {
            continue;
        }
        check_case(case, &mut tally);
    }
    let success_cases = cases
        .iter()
        .filter(|c| c.join("expected.yaml").is_file())
        .count();
    println!(
        "conformance: {}/{} cases pass; {} of {} success cases byte-for-byte identical",
        tally.passed.len(),
        cases.len(),
        tally.byte_exact,
        success_cases
    );
    assert!(
        tally.failures.is_empty(),
        "{} failing cases:\n{}",
        tally.failures.len(),
        tally.failures.join("\n\n")
    );
}

/// Renders each overlay of a demo repository and compares it with the recorded output.
fn check_repo(repo: &str, expected_dir: &str, pairs: &[(&str, &str)]) {
    let root = testdata().join(repo);
    assert!(root.is_dir(), "{} not found", root.display());
    let mut failures = Vec::new();
    for (relative, expected_file) in pairs {
        let expected_text =
            std::fs::read_to_string(testdata().join(expected_dir).join(expected_file)).unwrap();
        let (result, _temp) = render_copy(&root, relative);
        match result {
            Ok(objects) if objects == parse_expected(&expected_text) => {
                if to_yaml(&objects) != expected_text {
                    failures.push(format!("{relative}: structurally equal, not byte-for-byte"));
                }
            }
            Ok(objects) => failures.push(format!("{relative}: differs\n{}", to_yaml(&objects))),
            Err(e) => failures.push(format!("{relative}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn expected_pairs(expected_dir: &str) -> Vec<(String, String)> {
    let dir = testdata().join(expected_dir);
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for entry in entries {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        out.push((name.clone(), name));
    }
    out.sort();
    out
}

#[test]
fn talk_demo_overlays_match_expected() {
    let pairs = expected_pairs("talk-demo-expected");
    let mapped: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(file, _)| {
            file.strip_suffix(".yaml")
                .map(|stem| (format!("deploy/overlays/{stem}"), file.clone()))
        })
        .collect();
    let refs: Vec<(&str, &str)> = mapped
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert!(!refs.is_empty());
    check_repo("talk-demo-repo", "talk-demo-expected", &refs);
}

#[test]
fn edge_fleet_sources_match_expected() {
    let pairs = edge_fleet_pairs();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert!(!refs.is_empty());
    check_repo("edge-fleet-repo", "edge-fleet-expected", &refs);
}

/// Maps each expected file of the edge fleet to the source directory it was rendered from.
fn edge_fleet_pairs() -> Vec<(String, String)> {
    let expected = testdata().join("edge-fleet-expected");
    let mut out = Vec::new();
    let mut files: Vec<String> = std::fs::read_dir(&expected)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    for file in files {
        let stem = file.trim_end_matches(".yaml");
        // `cluster-N.yaml` is the cluster overlay; `cluster-3-<app>.yaml` the app folder of that cluster.
        let source = match stem.strip_prefix("cluster-3-") {
            Some(app) => format!("deploy/clusters/cluster-3/{app}"),
            None => format!("deploy/overlays/{stem}"),
        };
        out.push((source, file));
    }
    out
}
