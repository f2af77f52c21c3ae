//! The real-world Argo CD corpus (`testdata/argocd-realworld`: 132 manifests from public repositories, unchanged) applied to a fresh hub, as a dry run and for real, document by document; every outcome is pinned in `expected.tsv` (accepted, or refused with the reason), so a refusal that is not one of the deliberate ones, or a change in what is accepted, fails the test.
//!
//! The snippets are independent (two of them redefine the `default` project), so each file gets a fresh hub
//! that plays the part of the Argo CD install the snippet was written for: the documents are applied for
//! cluster `edge-1` (`ApplyManifestsRequest.cluster`, so `https://kubernetes.default.svc` means that cluster and
//! the sets are evaluated at its spoke); the projects the file names but does not define exist (allowing every
//! repository and destination), and so do the clusters its documents name literally (`destination.name`, or
//! `destination.server` with that URL), as they would in the user's Argo CD.
//!
//! `EDGECD_UPDATE_GOLDEN=1 cargo test -p edgecd-hub --test argocd_corpus` rewrites `expected.tsv`; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod local_hub;

use std::collections::BTreeSet;
use std::path::PathBuf;

use edgecd_proto::v1;
use serde_json::Value;

fn corpus() -> PathBuf {
    edgecd_testkit::testdata().join("argocd-realworld")
}

/// The manifests, in file order, as (file name, text, parsed documents).
fn manifests() -> Vec<(String, String, Vec<Value>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = edgecd_render::yaml::load_documents(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML the hub can read: {e}", path.display()))
                .into_iter()
                .filter(|d| !d.is_null())
                .collect();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, text, docs)
        })
        .collect()
}

/// A project an Application or ApplicationSet template names literally.
fn named_project(doc: &Value) -> Option<String> {
    let spec = match doc.get("kind").and_then(Value::as_str) {
        Some("Application") => doc.get("spec")?,
        Some("ApplicationSet") => doc.pointer("/spec/template/spec")?,
        _ => return None,
    };
    let project = spec.get("project")?.as_str()?;
    (!project.is_empty() && !project.contains("{{")).then(|| project.to_owned())
}

/// The literal destinations (`name`, `server`) an Application or ApplicationSet template names.
fn named_destination(doc: &Value) -> Option<(String, String)> {
    let spec = match doc.get("kind").and_then(Value::as_str) {
        Some("Application") => doc.get("spec")?,
        Some("ApplicationSet") => doc.pointer("/spec/template/spec")?,
        _ => return None,
    };
    let literal = |field: &str| {
        spec.pointer(&format!("/destination/{field}"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && !v.contains("{{"))
            .map(str::to_owned)
    };
    let name = literal("name").filter(|n| n != "in-cluster");
    let server = literal("server").filter(|s| !s.contains("kubernetes.default.svc"));
    match (name, server) {
        (None, None) => None,
        (name, server) => Some((name.unwrap_or_default(), server.unwrap_or_default())),
    }
}

/// A hub as the file's Argo CD install would be: the projects and clusters it names exist.
async fn hub_for(docs: &[Value]) -> local_hub::Hub {
    let hub = local_hub::hub().await;
    let defined: BTreeSet<String> = docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("AppProject"))
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let named: BTreeSet<String> = docs.iter().filter_map(named_project).collect();
    for project in named.difference(&defined) {
        if project == "default" {
            continue;
        }
        hub.client
            .create_project(v1::CreateProjectRequest {
                project: Some(v1::Project {
                    name: project.clone(),
                    source_repos: vec!["*".into()],
                    destinations: vec![v1::ProjectDestination {
                        all_clusters: true,
                        namespace: "*".into(),
                        ..v1::ProjectDestination::default()
                    }],
                    ..v1::Project::default()
                }),
                ..v1::CreateProjectRequest::default()
            })
            .await
            .unwrap_or_else(|e| panic!("creating project {project}: {e}"));
    }
    let clusters: BTreeSet<(String, String)> = docs.iter().filter_map(named_destination).collect();
    for (i, (name, server)) in clusters.into_iter().enumerate() {
        let name = if name.is_empty() {
            format!("cluster-{i}")
        } else {
            name
        };
        if name == "edge-1" {
            continue;
        }
        hub.client
            .create_cluster(v1::CreateClusterRequest {
                name: name.clone(),
                server_url: server,
                ..v1::CreateClusterRequest::default()
            })
            .await
            .unwrap_or_else(|e| panic!("registering cluster {name}: {e}"));
    }
    hub
}

/// One document's outcome as a line of `expected.tsv`.
fn outcome_line(file: &str, index: usize, doc: &Value, outcome: &str) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    // One line per document; messages may hold tabs or newlines from the YAML.
    let outcome = outcome.replace(['\t', '\n'], " ");
    format!("{file}\t{index}\t{kind}\t{name}\t{outcome}")
}

/// What the hub said of one file's documents: "accepted" or "refused: <message>" per document, in order.
async fn apply(
    client: &edgecd_proto::client::Client,
    text: &str,
    dry_run: bool,
    docs: usize,
) -> Vec<String> {
    let request = v1::ApplyManifestsRequest {
        yaml: text.to_owned(),
        dry_run,
        cluster: "edge-1".into(),
        ..v1::ApplyManifestsRequest::default()
    };
    match client.apply_manifests(request).await {
        Ok(response) => response
            .results
            .iter()
            .map(|r| match r.action.as_str() {
                "refused" => format!("refused: {}", r.message),
                _ => "accepted".to_owned(),
            })
            .collect(),
        // The whole file was refused (a document edgecd cannot read): every document says why.
        Err(error) => vec![format!("refused: {error}"); docs],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_world_argocd_manifests_are_applied_or_refused_deliberately() {
    let manifests = manifests();
    assert!(
        manifests.len() >= 130,
        "the corpus should hold the 132 real-world manifests, found {} files in {}",
        manifests.len(),
        corpus().display()
    );

    let mut lines = Vec::new();
    let (mut documents, mut accepted) = (0, 0);
    for (file, text, docs) in &manifests {
        let hub = hub_for(docs).await;
        let dry = apply(&hub.client, text, true, docs.len()).await;
        let real = apply(&hub.client, text, false, docs.len()).await;
        assert_eq!(dry.len(), docs.len(), "{file}: one result per document");
        for (i, doc) in docs.iter().enumerate() {
            // A dry run says what the real apply does.
            assert_eq!(
                dry[i].starts_with("refused"),
                real[i].starts_with("refused"),
                "{file} document {i}: dry run {:?}, real {:?}",
                dry[i],
                real[i]
            );
            documents += 1;
            if real[i] == "accepted" {
                accepted += 1;
            }
            lines.push(outcome_line(file, i, doc, &real[i]));
        }
    }
    let share = 100.0 * f64::from(accepted) / f64::from(documents);
    println!("accepted {accepted} of {documents} documents ({share:.0} %)");

    let expected_path = corpus().join("expected.tsv");
    let actual = format!(
        "# file\tdocument\tkind\tname\toutcome (accepted {accepted} of {documents}; regenerate with EDGECD_UPDATE_GOLDEN=1)\n{}\n",
        lines.join("\n")
    );
    if std::env::var_os("EDGECD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != actual {
        let want: Vec<&str> = expected.lines().collect();
        let got: Vec<&str> = actual.lines().collect();
        let differing: Vec<String> = got
            .iter()
            .zip(want.iter().chain(std::iter::repeat(&"<missing>")))
            .filter(|(g, w)| g != w)
            .take(10)
            .map(|(g, w)| format!("  expected: {w}\n  got:      {g}"))
            .collect();
        panic!(
            "the corpus outcomes changed ({} lines expected, {} now); first differences:\n{}\nIf the change is intended, regenerate {} with EDGECD_UPDATE_GOLDEN=1 and review the diff.",
            want.len(),
            got.len(),
            differing.join("\n"),
            expected_path.display()
        );
    }
}
