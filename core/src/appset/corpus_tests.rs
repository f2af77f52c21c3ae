//! The real-world ApplicationSets of `testdata/argocd-realworld` generated against a fixed fleet, the git trees of `git-trees.json` and the decision resources of `decisions.json`: what each generates is pinned in `generated.tsv`, and every Go-template app is checked against real Go (`gotmpl/oracle` renders the same template over the same parameters: `testdata/gotemplate/argocd-corpus-*.json`).
//!
//! `EDGECD_UPDATE_GOLDEN=1 cargo test -p edgecd-core --lib corpus` rewrites `generated.tsv` and the oracle's
//! cases; then `cd gotmpl/oracle && go run . -cases ../../testdata/gotemplate/argocd-corpus-cases.json -out
//! ../../testdata/gotemplate/argocd-corpus-expected.json --update` renders them with Go (the gotmpl oracle test
//! checks that file is current).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::tests::MemRepo;
use super::*;
use crate::argo_spec::{check_application_spec, normalize_application_spec};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

struct Trees(BTreeMap<String, MemRepo>);

impl GitLookup for Trees {
    fn repo(&self, repo_url: &str, _revision: &str) -> Result<&dyn RepoFiles, String> {
        self.0
            .get(repo_url)
            .map(|t| t as &dyn RepoFiles)
            .ok_or_else(|| format!("{repo_url} is not in git-trees.json"))
    }
}

fn trees() -> Trees {
    let text = std::fs::read_to_string(testdata().join("argocd-realworld/git-trees.json")).unwrap();
    let json: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
    Trees(
        json.into_iter()
            .filter(|(url, _)| !url.starts_with('_'))
            .map(|(url, tree)| {
                let tree = MemRepo {
                    dirs: serde_json::from_value(tree["directories"].clone()).unwrap(),
                    files: serde_json::from_value(tree["files"].clone()).unwrap(),
                };
                (url, tree)
            })
            .collect(),
    )
}

/// The fleet the corpus's cluster generators select from: labels the examples select on.
/// The ConfigMaps and decision resources of `decisions.json`, matched by exact apiVersion and kind.
struct Decisions(Value);

impl DecisionLookup for Decisions {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        serde_json::from_value(self.0["configMaps"].get(name)?.clone()).ok()
    }

    fn resources(&self, api_version: &str, kind: &str) -> Vec<DecisionResource> {
        self.0["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["apiVersion"] == api_version && r["kind"] == kind)
            .map(|r| DecisionResource {
                name: r["name"].as_str().unwrap_or_default().to_owned(),
                labels: serde_json::from_value(r["labels"].clone()).unwrap_or_default(),
                status: r["status"].clone(),
            })
            .collect()
    }
}

fn decisions() -> Decisions {
    let text = std::fs::read_to_string(testdata().join("argocd-realworld/decisions.json")).unwrap();
    Decisions(serde_json::from_str(&text).unwrap())
}

fn fleet() -> Vec<ClusterFacts> {
    let facts =
        |name: &str, server: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]| {
            let map = |pairs: &[(&str, &str)]| {
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            };
            ClusterFacts {
                name: name.into(),
                server: server.into(),
                labels: map(labels),
                annotations: map(annotations),
            }
        };
    let secret = ("argocd.argoproj.io/secret-type", "cluster");
    vec![
        facts(
            "engineering-dev",
            "https://1.2.3.4",
            &[
                secret,
                ("kubernetes.io/environment", "dev"),
                ("staging", "true"),
                ("env", "staging"),
                ("type", "workload"),
                ("region", "eu"),
                ("location", "guestbook"),
                ("environment", "default"),
            ],
            &[("owner", "platform")],
        ),
        facts(
            "engineering-prod",
            "https://2.4.6.8",
            &[
                secret,
                ("kubernetes.io/environment", "prod"),
                ("env", "prod"),
                ("type", "workload"),
                ("region", "us"),
                ("location", "kustomize-guestbook"),
                ("environment", "default"),
            ],
            &[],
        ),
        facts(
            "edge-paris",
            "https://10.0.0.3:6443",
            &[("type", "workload"), ("region", "eu"), ("zone", "paris")],
            &[],
        ),
    ]
}

/// The corpus's ApplicationSet documents that parse: (file, index of the document, spec).
fn corpus_sets() -> Vec<(String, usize, ApplicationSetSpec)> {
    let dir = testdata().join("argocd-realworld");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = edgecd_render::yaml::load_documents(&text)
            .unwrap_or_else(|e| panic!("{file}: not YAML edgecd can read: {e}"));
        for (i, doc) in docs.iter().filter(|d| !d.is_null()).enumerate() {
            if doc.get("kind").and_then(Value::as_str) != Some("ApplicationSet") {
                continue;
            }
            if let Some(spec) = doc
                .get("spec")
                .and_then(|s| ApplicationSetSpec::from_json(s).ok())
            {
                out.push((file.clone(), i, spec));
            }
        }
    }
    out
}

/// A generated app as the template tree it was rendered from: `{metadata: {name, labels, annotations}, spec}`.
fn template_tree(template: &AppTemplate) -> Value {
    json!({
        "metadata": {
            "name": template.metadata.name,
            "labels": template.metadata.labels,
            "annotations": template.metadata.annotations,
        },
        "spec": template.spec,
    })
}

/// The app Go's rendering of a template tree makes, post-processed as edgecd post-processes its own rendering.
fn app_from_go_tree(tree: &Value) -> (String, Value, Value, crate::app::ApplicationSpec) {
    let mut spec = tree["spec"].clone();
    check_application_spec(&spec, "spec").unwrap();
    normalize_application_spec(&mut spec);
    (
        tree["metadata"]["name"].as_str().unwrap().to_owned(),
        tree["metadata"]["labels"].clone(),
        tree["metadata"]["annotations"].clone(),
        serde_json::from_value(spec).unwrap(),
    )
}

#[test]
fn corpus_sets_generate_what_go_renders() {
    let trees = trees();
    let fleet = fleet();
    let decisions = decisions();
    let ctx = EvalContext {
        clusters: &fleet,
        git: &trees,
        decisions: &decisions,
    };
    let mut lines = Vec::new();
    let mut cases = Vec::new();
    let mut generated_apps: BTreeMap<String, GeneratedApp> = BTreeMap::new();
    let sets = corpus_sets();
    assert!(sets.len() >= 40, "only {} corpus sets parse", sets.len());
    for (file, doc, spec) in &sets {
        // One generator at a time, so each app's template (the set's, merged with the generator's own) is known.
        for (g, generator) in spec.generators.iter().enumerate() {
            let mut single = spec.clone();
            single.generators = vec![generator.clone()];
            let outcome = match generate_each(&single, &ctx) {
                Err(e) => format!("error: {e}"),
                Ok(generation) => {
                    let mut names: Vec<String> =
                        generation.apps.iter().map(|a| a.name.clone()).collect();
                    names.extend(
                        generation
                            .duplicates
                            .iter()
                            .map(|(name, _)| format!("{name} (twice)")),
                    );
                    if spec.go_template && spec.template_patch.is_none() {
                        let template = match generator.kind.template() {
                            Some(own) => {
                                let own = serde_json::to_value(own).unwrap();
                                let base = serde_json::to_value(&spec.template).unwrap();
                                serde_json::from_value(eval::merge_template_json(&own, &base))
                                    .unwrap()
                            }
                            None => spec.template.clone(),
                        };
                        for app in generation.apps {
                            let name = format!("{file}#{doc}#{g}#{}", app.name);
                            cases.push(json!({
                                "name": name,
                                "tree": template_tree(&template),
                                "data": app.params,
                                "options": spec.go_template_options,
                            }));
                            generated_apps.insert(name, app);
                        }
                    }
                    format!("{} apps: {}", names.len(), names.join(" "))
                }
            };
            lines.push(format!(
                "{file}\t{doc}\t{g}\t{}",
                outcome.replace(['\t', '\n'], " ")
            ));
        }
    }
    let generated = format!(
        "# file\tdocument\tgenerator\twhat it generates over the test fleet and git-trees.json\n{}\n",
        lines.join("\n")
    );
    let cases_text = format!("{}\n", serde_json::to_string_pretty(&cases).unwrap());
    let generated_path = testdata().join("argocd-realworld/generated.tsv");
    let cases_path = testdata().join("gotemplate/argocd-corpus-cases.json");
    if std::env::var_os("EDGECD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&generated_path, &generated).unwrap();
        std::fs::write(&cases_path, &cases_text).unwrap();
        return;
    }
    assert_eq!(
        std::fs::read_to_string(&generated_path).unwrap_or_default(),
        generated,
        "what the corpus sets generate changed; regenerate with EDGECD_UPDATE_GOLDEN=1 and review"
    );
    assert_eq!(
        std::fs::read_to_string(&cases_path).unwrap_or_default(),
        cases_text,
        "the oracle cases are stale; regenerate with EDGECD_UPDATE_GOLDEN=1, then run the Go oracle on them"
    );
    assert!(cases.len() >= 20, "only {} Go-template apps", cases.len());

    // Real Go rendered the same template trees over the same parameters: edgecd's apps must be what it made.
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(testdata().join("gotemplate/argocd-corpus-expected.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        expected.len(),
        cases.len(),
        "argocd-corpus-expected.json is stale"
    );
    for case in &expected {
        let name = case["name"].as_str().unwrap();
        let tree = case.get("output_tree").unwrap_or_else(|| {
            panic!(
                "{name}: Go failed where edgecd generated an app: {}",
                case["error"]
            )
        });
        let app = &generated_apps[name];
        let (go_name, labels, annotations, spec) = app_from_go_tree(tree);
        assert_eq!(app.name, go_name, "{name}");
        assert_eq!(
            serde_json::to_value(&app.labels).unwrap(),
            labels,
            "{name}: labels"
        );
        assert_eq!(
            serde_json::to_value(&app.annotations).unwrap(),
            annotations,
            "{name}: annotations"
        );
        assert_eq!(app.spec, spec, "{name}: spec");
    }
}
