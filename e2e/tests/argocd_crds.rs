//! The real-world Argo CD corpus (`testdata/argocd-realworld`, #23) against Argo CD's own schema: a real API server (testkit's `RealCluster`) holding Argo CD's CRDs at a pinned release (`scripts/argocd-crds`, from the Go module proxy; nothing of Argo CD is committed) takes every manifest with `kubectl apply --dry-run=server`, as a user of Argo CD would apply it. Each outcome is pinned in `argo-crd.tsv`; joined with edgecd's own outcomes (`expected.tsv`, pinned by `hub/tests/argocd_corpus.rs`), every manifest Argo CD accepts and edgecd refuses must be refused for one of the deliberate reasons, and edgecd must accept at least 90 % of what Argo CD accepts.
//!
//! `EDGECD_UPDATE_GOLDEN=1 cargo test -p edgecd-e2e --test argocd_crds` rewrites `argo-crd.tsv`; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgecd_e2e::testdata;
use edgecd_testkit::{RealCluster, realkube};

/// What edgecd refuses on purpose, though Argo CD's schema accepts it (docs/appsets.md, "Argo CD fields").
const DELIBERATE: [&str; 6] = [
    "scmProvider",
    "pullRequest",
    "sourceIntegrity",
    "deletionOrder: Reverse is not supported",
    "spec.source: required",
    "spec.sources: required",
];

fn kubectl(bin: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", kubeconfig.parent().unwrap())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The directory of Argo CD's CRDs, fetched (or found in its cache) by `scripts/argocd-crds`.
fn crds() -> PathBuf {
    let script = testdata().parent().unwrap().join("scripts/argocd-crds");
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The API server lists several causes (`… is invalid: * a * b`) in no fixed order: sorted, so the pinned
/// text is stable.
fn sorted_causes(why: &str) -> String {
    let mut parts = why.split(" * ");
    let head = parts.next().unwrap_or_default();
    let mut causes: Vec<&str> = parts.collect();
    causes.sort_unstable();
    std::iter::once(head)
        .chain(causes)
        .collect::<Vec<_>>()
        .join(" * ")
}

/// edgecd's outcome of each corpus file: accepted, or the refusal.
fn edgecd_outcomes(corpus: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(corpus.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields[0].to_owned(), fields[4].to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_against_argo_cds_own_crds() {
    // Argo CD's CRDs come from the Go module proxy, whatever binaries are given.
    if !realkube::go_available() {
        eprintln!(
            "SKIPPED: Go is not installed, so Argo CD's CRDs (and realkube) are out of reach"
        );
        return;
    }
    let bin = realkube::kubectl_binary().unwrap();
    let crds = crds();
    let cluster = tokio::task::spawn_blocking(RealCluster::start)
        .await
        .unwrap()
        .unwrap();
    let kubeconfig = cluster.kubeconfig_path().to_path_buf();
    for crd in [
        "application-crd.yaml",
        "applicationset-crd.yaml",
        "appproject-crd.yaml",
    ] {
        let file = crds.join(crd);
        // Server-side: the ApplicationSet CRD is too large for client-side apply's annotation.
        let (ok, out) = kubectl(
            &bin,
            &kubeconfig,
            &["apply", "--server-side", "-f", file.to_str().unwrap()],
        );
        assert!(ok, "{crd}: {out}");
    }
    // `kubectl wait` fails at once on a CRD with no conditions yet: ask again until each is Established.
    let mut waited = 0;
    loop {
        let (ok, out) = kubectl(
            &bin,
            &kubeconfig,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/applications.argoproj.io",
                "crd/applicationsets.argoproj.io",
                "crd/appprojects.argoproj.io",
            ],
        );
        if ok {
            break;
        }
        waited += 1;
        assert!(waited < 60, "the CRDs are not Established: {out}");
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    let (ok, out) = kubectl(&bin, &kubeconfig, &["create", "namespace", "argocd"]);
    assert!(ok, "{out}");

    let corpus = testdata().join("argocd-realworld");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut argo = BTreeMap::new();
    let mut namespaces = std::collections::BTreeSet::from(["argocd".to_owned()]);
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        // Into the namespace the manifest names (Argo CD's apps in any namespace), else Argo CD's own.
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_str_multiple(&std::fs::read_to_string(file).unwrap()).unwrap();
        let namespace = docs
            .iter()
            .find_map(|d| d.pointer("/metadata/namespace"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("argocd")
            .to_owned();
        if namespaces.insert(namespace.clone()) {
            // A name that is no valid namespace cannot be created: the apply below then fails, as it would.
            let _ = kubectl(&bin, &kubeconfig, &["create", "namespace", &namespace]);
        }
        let (ok, out) = kubectl(
            &bin,
            &kubeconfig,
            &[
                "apply",
                "--dry-run=server",
                "-n",
                &namespace,
                "-f",
                file.to_str().unwrap(),
            ],
        );
        let outcome = if ok {
            "accepted".to_owned()
        } else {
            let why = out
                .replace(file.to_str().unwrap(), &name)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            format!("refused: {}", sorted_causes(&why))
        };
        argo.insert(name, outcome);
    }
    let accepted = argo.values().filter(|o| *o == "accepted").count();
    let text = format!(
        "# file\tArgo CD {}'s CRDs, kubectl apply --dry-run=server (accepted {accepted} of {}; regenerate with EDGECD_UPDATE_GOLDEN=1)\n{}",
        crds.file_name().unwrap().to_string_lossy(),
        argo.len(),
        argo.iter()
            .map(|(f, o)| format!("{f}\t{o}\n"))
            .collect::<String>()
    );
    let golden = corpus.join("argo-crd.tsv");
    if std::env::var_os("EDGECD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let pinned = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        pinned == text,
        "Argo CD's schema decides differently from {}:\n{}\nIf the change is intended, regenerate with EDGECD_UPDATE_GOLDEN=1 and review the diff.",
        golden.display(),
        text.lines()
            .zip(pinned.lines().chain(std::iter::repeat("")))
            .filter(|(now, then)| now != then)
            .take(5)
            .map(|(now, then)| format!("  now:    {now}\n  pinned: {then}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Side by side with edgecd's own outcomes.
    let edgecd = edgecd_outcomes(&corpus);
    assert_eq!(
        edgecd.keys().collect::<Vec<_>>(),
        argo.keys().collect::<Vec<_>>(),
        "expected.tsv and the corpus list different files"
    );
    let mut table = [[0usize; 2]; 2];
    let mut undeliberate = Vec::new();
    for (file, argo_outcome) in &argo {
        let argo_ok = argo_outcome == "accepted";
        let ours = &edgecd[file];
        let ours_ok = ours == "accepted";
        table[usize::from(!argo_ok)][usize::from(!ours_ok)] += 1;
        if argo_ok && !ours_ok && !DELIBERATE.iter().any(|d| ours.contains(d)) {
            undeliberate.push(format!("{file}: {ours}"));
        }
    }
    eprintln!(
        "Argo CD accepts {} of {}: edgecd accepts {} of those; Argo CD refuses {}: edgecd accepts {} of those",
        table[0][0] + table[0][1],
        argo.len(),
        table[0][0],
        table[1][0] + table[1][1],
        table[1][0]
    );
    assert!(
        undeliberate.is_empty(),
        "edgecd refuses what Argo CD accepts, for no deliberate reason:\n{}",
        undeliberate.join("\n")
    );
    let argo_accepts = table[0][0] + table[0][1];
    assert!(
        table[0][0] * 10 >= argo_accepts * 9,
        "edgecd accepts {} of the {argo_accepts} manifests Argo CD accepts: below 90 %",
        table[0][0]
    );
}
