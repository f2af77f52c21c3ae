//! Unit tests of ApplicationSets: generators, rendering, refusals and plans, partly against the fixtures in `testdata/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    assert!(
        dir.is_dir(),
        "fixtures missing at {} — these tests read the repository's testdata/",
        dir.display()
    );
    dir
}

fn load_yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()));
    edgecd_render::yaml::load_documents(&text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn appset_fixture(name: &str) -> ApplicationSetSpec {
    let docs = load_yaml(&fixtures().join("edge-fleet-repo/appsets").join(name));
    ApplicationSetSpec::from_json(&docs[0]["spec"]).unwrap()
}

/// An in-memory tree (also the corpus test's git trees).
#[derive(Default)]
pub(super) struct MemRepo {
    pub(super) dirs: Vec<String>,
    pub(super) files: BTreeMap<String, Value>,
}

impl MemRepo {
    fn with_dirs(dirs: &[&str]) -> Self {
        Self {
            dirs: dirs.iter().map(|d| (*d).to_owned()).collect(),
            files: BTreeMap::new(),
        }
    }

    /// Walks a real directory (files are not parsed: only the tree matters here).
    fn from_disk(root: &Path) -> Self {
        fn walk(root: &Path, dir: &Path, repo: &mut MemRepo) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                if path.is_dir() {
                    repo.dirs.push(rel);
                    walk(root, &path, repo);
                } else {
                    repo.files.insert(rel, Value::Null);
                }
            }
        }
        let mut repo = MemRepo::default();
        walk(root, root, &mut repo);
        repo
    }
}

impl RepoFiles for MemRepo {
    fn directories(&self) -> Vec<String> {
        self.dirs.clone()
    }

    fn files(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn read_document(&self, path: &str) -> Result<Value, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("no file {path}"))
    }
}

#[derive(Default)]
struct Repos(BTreeMap<(String, String), MemRepo>);

impl Repos {
    fn one(url: &str, rev: &str, repo: MemRepo) -> Self {
        let mut map = BTreeMap::new();
        map.insert((url.to_owned(), rev.to_owned()), repo);
        Self(map)
    }
}

impl GitLookup for Repos {
    fn repo(&self, repo_url: &str, revision: &str) -> Result<&dyn RepoFiles, String> {
        self.0
            .get(&(repo_url.to_owned(), revision.to_owned()))
            .map(|r| r as &dyn RepoFiles)
            .ok_or_else(|| "not fetched".to_owned())
    }
}

fn cluster(name: &str, server: &str, labels: &[(&str, &str)]) -> ClusterFacts {
    ClusterFacts {
        name: name.into(),
        server: server.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        annotations: BTreeMap::new(),
    }
}

fn three_clusters() -> Vec<ClusterFacts> {
    (1..=3)
        .map(|i| {
            cluster(
                &format!("cluster-{i}"),
                &format!("https://10.0.0.{i}:6443"),
                &[("region", if i == 3 { "us" } else { "eu" })],
            )
        })
        .collect()
}

fn run(
    spec: &Value,
    clusters: &[ClusterFacts],
    repos: &Repos,
) -> Result<Vec<GeneratedApp>, AppSetError> {
    let spec = ApplicationSetSpec::from_json(spec)?;
    generate(
        &spec,
        &EvalContext {
            clusters,
            git: repos,
            decisions: &super::NoDecisions,
        },
    )
}

fn names(apps: &[GeneratedApp]) -> Vec<&str> {
    apps.iter().map(|a| a.name.as_str()).collect()
}

fn spec_with(generators: Value, name: &str, path: &str) -> Value {
    json!({
        "generators": generators,
        "template": {
            "metadata": {"name": name},
            "spec": {
                "source": {"repoURL": "https://git.example/r", "targetRevision": "HEAD", "path": path},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "apps"}
            }
        }
    })
}

#[test]
fn nginx_per_cluster_fixture() {
    let spec = appset_fixture("nginx-per-cluster.yaml");
    assert!(spec.git_sources().is_empty());
    let clusters = three_clusters();
    let apps = generate(
        &spec,
        &EvalContext {
            clusters: &clusters,
            git: &Repos::default(),
            decisions: &super::NoDecisions,
        },
    )
    .unwrap();
    assert_eq!(
        names(&apps),
        ["cluster-1.nginx", "cluster-2.nginx", "cluster-3.nginx"]
    );
    for (i, app) in apps.iter().enumerate() {
        let n = i + 1;
        assert_eq!(app.project, "default");
        assert_eq!(app.spec.source.path, format!("deploy/overlays/cluster-{n}"));
        assert_eq!(app.spec.source.repo_url, "https://github.com/example/repo");
        assert_eq!(
            app.spec.destination.server,
            format!("https://10.0.0.{n}:6443")
        );
        assert_eq!(app.spec.destination.namespace, "nginx");
        assert_eq!(app.params["name"], format!("cluster-{n}"));
    }
}

#[test]
fn cluster_addons_fixture_over_real_tree() {
    let spec = appset_fixture("cluster-addons.yaml");
    assert_eq!(
        spec.git_sources(),
        [(
            "https://github.com/example/repo".to_owned(),
            "HEAD".to_owned()
        )]
    );
    let repo = MemRepo::from_disk(&fixtures().join("edge-fleet-repo"));
    let repos = Repos::one("https://github.com/example/repo", "HEAD", repo);
    let apps = generate(
        &spec,
        &EvalContext {
            clusters: &[],
            git: &repos,
            decisions: &super::NoDecisions,
        },
    )
    .unwrap();
    assert_eq!(names(&apps), ["guestbook", "minecraft", "nginx"]);
    for app in &apps {
        assert_eq!(
            app.spec.source.path,
            format!("deploy/clusters/cluster-3/{}", app.name)
        );
        assert_eq!(app.project, "default");
        assert_eq!(
            app.spec.destination.server,
            "https://kubernetes.default.svc"
        );
        assert_eq!(app.params["path[3]"], app.name);
        assert_eq!(app.params["path.basenameNormalized"], app.name);
    }
}

#[test]
fn list_generator_flattens_and_adds_values() {
    let spec = spec_with(
        json!([{"list": {"elements": [
            {"cluster": "Edge_A", "cfg": {"replicas": 3, "tags": ["x", "y"], "on": true}, "values": {"tier": "gold"}},
            {"cluster": "edge-b", "cfg": {"replicas": 1.5}, "values": {"tier": "silver"}}
        ]}}]),
        "{{ cluster }}-app",
        "apps/{{values.tier}}/{{cfg.replicas}}/{{cfg.tags.1}}/{{unknown}}",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.template.metadata.name");
    assert!(err.message.contains("Edge_A-app"), "{err}");

    let spec = spec_with(
        json!([{"list": {"elements": [
            {"cluster": "edge-a", "cfg": {"replicas": 3, "tags": ["x", "y"], "on": true}, "values": {"tier": "gold"}},
            {"cluster": "edge-b", "cfg": {"replicas": 1.5}, "values": {"tier": "silver"}}
        ]}}]),
        "{{ cluster }}-app",
        "apps/{{values.tier}}/{{cfg.replicas}}/{{cfg.tags.1}}/{{unknown}}",
    );
    let apps = run(&spec, &[], &Repos::default()).unwrap();
    assert_eq!(names(&apps), ["edge-a-app", "edge-b-app"]);
    assert_eq!(apps[0].spec.source.path, "apps/gold/3/y/{{unknown}}");
    assert_eq!(apps[0].params["cfg.on"], "true");
    assert_eq!(
        apps[1].spec.source.path,
        "apps/silver/1.5/{{cfg.tags.1}}/{{unknown}}"
    );
}

#[test]
fn clusters_selector_values_and_normalized_names() {
    let mut clusters = three_clusters();
    clusters.push(cluster(
        "Edge_Paris.01",
        "https://10.0.0.9:6443",
        &[("region", "eu")],
    ));
    clusters[0]
        .annotations
        .insert("owner".into(), "team-a".into());
    let spec = json!({
        "generators": [{"clusters": {
            "selector": {"matchLabels": {"region": "eu"}, "matchExpressions": [{"key": "region", "operator": "In", "values": ["eu", "ap"]}]},
            "values": {"ns": "ns-{{nameNormalized}}", "owner": "{{metadata.annotations.owner}}"}
        }}],
        "template": {
            "metadata": {"name": "{{nameNormalized}}-web", "labels": {"region": "{{metadata.labels.region}}"}},
            "spec": {
                "project": "edge",
                "source": {"repoURL": "https://git.example/r", "path": "web"},
                "destination": {"name": "{{name}}", "namespace": "{{values.ns}}"}
            }
        }
    });
    let apps = run(&spec, &clusters, &Repos::default()).unwrap();
    assert_eq!(
        names(&apps),
        ["cluster-1-web", "cluster-2-web", "edge-paris.01-web"]
    );
    assert_eq!(apps[0].project, "edge");
    assert_eq!(apps[0].labels["region"], "eu");
    assert_eq!(apps[0].spec.destination.namespace, "ns-cluster-1");
    assert_eq!(apps[0].params["values.owner"], "team-a");
    // No annotation on cluster-2: the placeholder stays, as in Argo CD.
    assert_eq!(
        apps[1].params["values.owner"],
        "{{metadata.annotations.owner}}"
    );
    assert_eq!(apps[2].spec.destination.cluster, "Edge_Paris.01");
    assert_eq!(apps[2].spec.destination.namespace, "ns-edge-paris.01");
}

#[test]
fn sanitize_name_follows_argo() {
    assert_eq!(sanitize_name("Edge_Paris.01"), "edge-paris.01");
    assert_eq!(sanitize_name("--My Cluster!."), "my-cluster");
    assert_eq!(sanitize_name(&"a".repeat(300)).len(), 253);
    assert_eq!(
        render_str(
            "{{a}}{{ a }}{{b}}{{}}",
            &Params::from_iter([("a".to_owned(), json!("x"))])
        )
        .unwrap(),
        "xx{{b}}{{}}"
    );
    assert!(render_str("{{a", &Params::new()).is_err());
}

fn files_repo() -> MemRepo {
    let mut repo = MemRepo::with_dirs(&["clusters", "clusters/eu", "clusters/eu/paris"]);
    repo.files.insert(
        "clusters/eu/paris/config.json".into(),
        json!({"cluster": {"name": "paris", "address": "https://1.2.3.4"}, "zones": [{"id": "a"}, {"id": "b"}]}),
    );
    repo.files.insert(
        "clusters/us/config.json".into(),
        json!([{"cluster": {"name": "nyc", "address": "https://5.6.7.8"}}, {"cluster": {"name": "sfo", "address": "https://9.9.9.9"}}]),
    );
    repo.files.insert(
        "clusters/us/skip/config.json".into(),
        json!({"cluster": {"name": "skipped", "address": "x"}}),
    );
    repo
}

#[test]
fn git_files_flatten_and_path_params() {
    let repos = Repos::one("https://git.example/cfg", "main", files_repo());
    let spec = spec_with(
        json!([{"git": {"repoURL": "https://git.example/cfg", "revision": "main",
            "files": [{"path": "clusters/**/config.json"}, {"path": "clusters/us/skip/*", "exclude": true}],
            "values": {"where": "{{path.basename}}"}}}]),
        "{{cluster.name}}",
        "{{path}}/{{path.filename}}/{{zones.1.id}}/{{values.where}}/{{path[1]}}",
    );
    let apps = run(&spec, &[], &repos).unwrap();
    assert_eq!(names(&apps), ["nyc", "paris", "sfo"]);
    assert_eq!(
        apps[1].spec.source.path,
        "clusters/eu/paris/config.json/b/paris/eu"
    );
    assert_eq!(apps[1].params["cluster.address"], "https://1.2.3.4");
    assert_eq!(apps[1].params["path.filenameNormalized"], "config.json");
    assert_eq!(apps[0].params["path"], "clusters/us");
    assert_eq!(
        apps[0].spec.source.path,
        "clusters/us/config.json/{{zones.1.id}}/us/us"
    );
}

#[test]
fn git_directories_exclude_and_path_param_prefix() {
    let repo = MemRepo::with_dirs(&[
        "apps",
        "apps/a",
        "apps/b",
        "apps/b/nested",
        "apps/Legacy_C",
        "other",
    ]);
    let repos = Repos::one("https://git.example/r", "HEAD", repo);
    let spec = spec_with(
        json!([{"git": {"repoURL": "https://git.example/r", "revision": "HEAD", "pathParamPrefix": "src",
            "directories": [{"path": "apps/*"}, {"path": "apps/b", "exclude": true}]}}]),
        "{{src.path.basenameNormalized}}",
        "{{src.path}}|{{src.path[0]}}|{{path}}",
    );
    let apps = run(&spec, &[], &repos).unwrap();
    assert_eq!(names(&apps), ["a", "legacy-c"]);
    assert_eq!(apps[0].spec.source.path, "apps/a|apps|{{path}}");
    assert_eq!(apps[1].params["src.path.basename"], "Legacy_C");

    let bad = spec_with(
        json!([{"git": {"repoURL": "https://git.example/r", "revision": "HEAD",
            "directories": [{"path": "apps/*"}, {"path": "apps/[b"}]}}]),
        "{{path.basename}}",
        "{{path}}",
    );
    let err = run(&bad, &[], &repos).unwrap_err();
    assert_eq!(err.path, "spec.generators[0].git.directories[1].path");
}

#[test]
fn matrix_clusters_by_git_directories() {
    let repo = MemRepo::with_dirs(&[
        "deploy",
        "deploy/cluster-1",
        "deploy/cluster-1/web",
        "deploy/cluster-1/db",
        "deploy/cluster-3",
        "deploy/cluster-3/cache",
    ]);
    let repos = Repos::one("https://git.example/r", "HEAD", repo);
    let spec = json!({
        "generators": [{"matrix": {"generators": [
            {"clusters": {"selector": {"matchExpressions": [{"key": "region", "operator": "Exists"}]}}},
            {"git": {"repoURL": "https://git.example/r", "revision": "HEAD", "directories": [{"path": "deploy/{{name}}/*"}]}}
        ]}}],
        "template": {
            "metadata": {"name": "{{name}}-{{path.basename}}"},
            "spec": {"source": {"repoURL": "https://git.example/r", "path": "{{path}}"},
                     "destination": {"server": "{{server}}", "namespace": "{{path.basename}}"}}
        }
    });
    let parsed = ApplicationSetSpec::from_json(&spec).unwrap();
    assert_eq!(parsed.git_sources().len(), 1);
    let apps = run(&spec, &three_clusters(), &repos).unwrap();
    assert_eq!(
        names(&apps),
        ["cluster-1-db", "cluster-1-web", "cluster-3-cache"]
    );
    assert_eq!(apps[2].spec.destination.server, "https://10.0.0.3:6443");
    assert_eq!(apps[2].spec.source.path, "deploy/cluster-3/cache");

    // Both children set `name` differently: refused like Argo CD.
    let clash = json!({
        "generators": [{"matrix": {"generators": [
            {"list": {"elements": [{"name": "a"}]}},
            {"list": {"elements": [{"name": "b"}]}}
        ]}}],
        "template": {"metadata": {"name": "{{name}}"}, "spec": {"source": {"repoURL": "r"}}}
    });
    let err = run(&clash, &[], &repos).unwrap_err();
    assert_eq!(err.path, "spec.generators[0].matrix");
    assert!(err.message.contains("\"name\""), "{err}");
}

#[test]
fn merge_overrides_by_keys() {
    let spec = json!({
        "generators": [{"merge": {"mergeKeys": ["name"], "generators": [
            {"clusters": {"values": {"replicas": "1"}}},
            {"list": {"elements": [{"name": "cluster-2", "values": {"replicas": "5"}}, {"name": "nowhere", "values": {"replicas": "9"}}]}}
        ]}}],
        "template": {
            "metadata": {"name": "{{name}}-api", "annotations": {"replicas": "{{values.replicas}}"}},
            "spec": {"source": {"repoURL": "r", "path": "api"}, "destination": {"server": "{{server}}"}}
        }
    });
    let apps = run(&spec, &three_clusters(), &Repos::default()).unwrap();
    assert_eq!(
        names(&apps),
        ["cluster-1-api", "cluster-2-api", "cluster-3-api"]
    );
    let replicas: Vec<&str> = apps
        .iter()
        .map(|a| a.annotations["replicas"].as_str())
        .collect();
    assert_eq!(replicas, ["1", "5", "1"]);

    let dup = json!({
        "generators": [{"merge": {"mergeKeys": ["k"], "generators": [
            {"list": {"elements": [{"k": "a"}, {"k": "a"}]}},
            {"list": {"elements": []}}
        ]}}],
        "template": {"metadata": {"name": "x"}, "spec": {"source": {"repoURL": "r"}}}
    });
    let err = run(&dup, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.generators[0].merge.generators[0]");
}

/// A name two parameter sets render is left out, naming both; the other apps proceed.
#[test]
fn a_duplicated_name_leaves_out_only_that_name() {
    let spec = spec_with(
        json!([{"list": {"elements": [
            {"app": "a", "env": "x"}, {"app": "b", "env": "x"}, {"app": "a", "env": "y"}
        ]}}]),
        "{{app}}",
        "p",
    );
    let spec = ApplicationSetSpec::from_json(&spec).unwrap();
    let generation = crate::appset::generate_each(
        &spec,
        &EvalContext {
            clusters: &[],
            git: &Repos::default(),
            decisions: &super::NoDecisions,
        },
    )
    .unwrap();
    let names: Vec<&str> = generation.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["b"]);
    assert_eq!(generation.duplicates.len(), 1);
    let (name, error) = &generation.duplicates[0];
    assert_eq!(name, "a");
    let message = error.to_string();
    assert!(
        message.contains("\"env\":\"x\"")
            && message.contains("\"env\":\"y\"")
            && message.contains("neither is applied"),
        "{message}"
    );
}

#[test]
fn duplicate_and_unresolved_names_are_errors() {
    let spec = spec_with(
        json!([{"list": {"elements": [{"app": "a", "env": "x"}, {"app": "a", "env": "y"}]}}]),
        "{{app}}",
        "p",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert!(err.message.contains("generated twice"), "{err}");
    assert!(
        err.message.contains("\"env\":\"x\"") && err.message.contains("\"env\":\"y\""),
        "{err}"
    );

    let spec = spec_with(
        json!([{"list": {"elements": [{"app": "a"}]}}]),
        "{{app}}-{{nope}}",
        "p",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert!(err.message.contains("placeholder"), "{err}");

    // A rendered spec edgecd cannot hold is refused with its path.
    let spec = json!({
        "generators": [{"list": {"elements": [{"app": "a"}]}}],
        "template": {"metadata": {"name": "{{app}}"}, "spec": {"source": {"repoURL": "r"}, "revisionHistoryLimit": "many"}}
    });
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.template.spec");

    // Missing git trees are named.
    let spec = spec_with(
        json!([{"git": {"repoURL": "https://git.example/none", "revision": "HEAD", "directories": [{"path": "*"}]}}]),
        "{{path}}",
        "p",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.generators[0].git.repoURL");
}

#[test]
fn unknown_and_unsupported_fields_are_refused_by_path() {
    let base = spec_with(json!([{"list": {"elements": [{"a": "b"}]}}]), "{{a}}", "p");
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|s| s["strategy"] = json!({"type": "RollingSync"})),
            "spec.strategy.rollingSync.steps",
        ),
        (
            Box::new(|s| s["strategy"] = json!({"type": "Canary"})),
            "spec.strategy.type",
        ),
        (
            Box::new(|s| {
                s["strategy"] = json!({"type": "RollingSync", "deletionOrder": "Reverse",
                    "rollingSync": {"steps": [{}]}})
            }),
            "spec.strategy.deletionOrder",
        ),
        (
            Box::new(|s| {
                s["strategy"] = json!({"type": "RollingSync", "rollingSync": {"steps": [
                    {"matchExpressions": [{"key": "env", "operator": "Exists"}]}]}})
            }),
            "spec.strategy.rollingSync.steps[0].matchExpressions[0].operator",
        ),
        (
            Box::new(|s| {
                s["strategy"] = json!({"type": "RollingSync", "rollingSync": {"steps": [
                    {}, {"maxUpdate": "2"}]}})
            }),
            "spec.strategy.rollingSync.steps[1].maxUpdate",
        ),
        (
            Box::new(|s| {
                s["strategy"] = json!({"type": "RollingSync", "rollingSync": {"steps": [
                    {"maxUpdate": -1}]}})
            }),
            "spec.strategy.rollingSync.steps[0].maxUpdate",
        ),
        (
            Box::new(|s| s["goTemplateOptions"] = json!(["missingkey=maybe"])),
            "spec.goTemplateOptions",
        ),
        (
            Box::new(|s| {
                s["goTemplate"] = json!(true);
                s["templatePatch"] = json!("{{ if }}");
            }),
            "spec.templatePatch",
        ),
        (
            Box::new(|s| {
                s["ignoreApplicationDifferences"] = json!([{"jqPathExpressions": [".spec[]*2"]}])
            }),
            "spec.ignoreApplicationDifferences[0].jqPathExpressions[0]",
        ),
        (
            Box::new(|s| s["ignoreApplicationDifferences"] = json!([{"jsonPointers": ["spec"]}])),
            "spec.ignoreApplicationDifferences[0].jsonPointers[0]",
        ),
        (
            Box::new(|s| s["generators"][0]["selector"] = json!({"matchLabels": {"a": 1}})),
            "spec.generators[0].selector.matchLabels.a",
        ),
        (
            Box::new(|s| {
                s["generators"][0]["list"]["template"] = json!({"metadata": {"owner": "x"}})
            }),
            "spec.generators[0].list.template.metadata.owner",
        ),
        (
            Box::new(|s| s["syncPolicy"] = json!({"applicationsSync": "create-only", "foo": 1})),
            "spec.syncPolicy.foo",
        ),
        (
            Box::new(|s| s["syncPolicy"] = json!({"applicationsSync": "sometimes"})),
            "spec.syncPolicy.applicationsSync",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({"scmProvider": {"github": {}}})),
            "spec.generators[0].scmProvider",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({"pullRequest": {"github": {}}, "list": {}})),
            "spec.generators[0].pullRequest",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({"clusters": {}, "list": {}})),
            "spec.generators[0]",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({})),
            "spec.generators[0]",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({"plugin": {"configMapRef": {"name": "x"}}})),
            "spec.generators[0].plugin",
        ),
        (
            Box::new(
                |s| s["generators"][0] = json!({"git": {"repoURL": "r", "directories": [{"path": "a"}, {"path": "b", "recurse": true}]}}),
            ),
            "spec.generators[0].git.directories[1].recurse",
        ),
        (
            Box::new(|s| s["generators"][0] = json!({"git": {"repoURL": "r"}})),
            "spec.generators[0].git",
        ),
        (
            Box::new(|s| {
                s["generators"][0] = json!({"matrix": {"generators": [{"list": {"elements": []}}]}})
            }),
            "spec.generators[0].matrix.generators",
        ),
        (
            Box::new(|s| {
                s["generators"][0] = json!({"merge": {"generators": [{"list": {}}, {"list": {}}]}})
            }),
            "spec.generators[0].merge.mergeKeys",
        ),
        (
            Box::new(|s| {
                s["template"]["spec"]["source"]["helm"] =
                    json!({"valueFiles": ["v.yaml"], "bogus": 1})
            }),
            "spec.template.spec.source.helm.bogus",
        ),
        (
            Box::new(|s| s["template"]["spec"]["source"]["ref"] = json!("values")),
            "spec.template.spec.source.ref",
        ),
        (
            Box::new(|s| s["template"]["metadata"]["ownerReferences"] = json!([])),
            "spec.template.metadata.ownerReferences",
        ),
    ];
    for (edit, path) in cases {
        let mut spec = base.clone();
        edit(&mut spec);
        let err = ApplicationSetSpec::from_json(&spec).unwrap_err();
        assert_eq!(err.path, path, "{err}");
        assert!(err.to_string().starts_with(&format!("{path}: ")), "{err}");
    }
    // Accepted and ignored / tolerated forms.
    let mut spec = base.clone();
    spec["template"]["metadata"]["finalizers"] = json!(["resources-finalizer.argocd.argoproj.io"]);
    spec["goTemplate"] = json!(false);
    spec["goTemplateOptions"] = json!([]);
    spec["applyNestedSelectors"] = json!(true);
    spec["syncPolicy"] =
        json!({"preserveResourcesOnDeletion": true, "applicationsSync": "create-update"});
    let parsed = ApplicationSetSpec::from_json(&spec).unwrap();
    assert_eq!(
        parsed.applications_sync(),
        ApplicationsSyncPolicy::CreateUpdate
    );
    assert!(
        parsed
            .sync_policy
            .as_ref()
            .unwrap()
            .preserve_resources_on_deletion
    );
    assert_eq!(
        ApplicationSetSpec::from_json(&base)
            .unwrap()
            .applications_sync(),
        ApplicationsSyncPolicy::Sync
    );
    // Round trip through serde keeps the Argo shape.
    let again: ApplicationSetSpec =
        serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
}

fn gen_app(name: &str, path: &str) -> GeneratedApp {
    GeneratedApp {
        name: name.into(),
        project: "default".into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        spec: crate::app::ApplicationSpec {
            source: crate::app::ApplicationSource {
                repo_url: "r".into(),
                path: path.into(),
                ..Default::default()
            },
            ..Default::default()
        },
        params: Params::new(),
    }
}

fn existing(app: &GeneratedApp, owned: bool) -> ExistingApp {
    ExistingApp {
        name: app.name.clone(),
        project: app.project.clone(),
        labels: app.labels.clone(),
        annotations: app.annotations.clone(),
        spec: app.spec.clone(),
        owned_by_this_set: owned,
    }
}

#[test]
fn plan_per_policy() {
    let current = vec![
        existing(&gen_app("same", "p"), true),
        existing(&gen_app("drift", "old"), true),
        existing(&gen_app("gone", "p"), true),
        existing(&gen_app("foreign", "p"), false),
        existing(&gen_app("unrelated", "p"), false),
    ];
    let generated = || {
        vec![
            gen_app("same", "p"),
            gen_app("drift", "new"),
            gen_app("new", "p"),
            gen_app("foreign", "p"),
        ]
    };
    let names = |apps: &[GeneratedApp]| apps.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let with_policy = |policy: &str| {
        ApplicationSetSpec::from_json(&json!({
            "generators": [{"list": {"elements": []}}],
            "template": {"metadata": {"name": "x"}, "spec": {"source": {"repoURL": "r"}, "destination": {"name": "c"}}},
            "syncPolicy": {"applicationsSync": policy}
        }))
        .unwrap()
    };
    let p = plan(&with_policy("create-only"), &current, generated());
    assert_eq!(names(&p.create), ["new"]);
    assert!(p.update.is_empty() && p.delete.is_empty());
    assert_eq!(p.unchanged, strs(&["drift", "gone", "same"]));
    assert_eq!(p.conflicts.len(), 1);
    assert_eq!(p.conflicts[0].0, "foreign");

    let p = plan(&with_policy("create-update"), &current, generated());
    assert_eq!(names(&p.create), ["new"]);
    assert_eq!(names(&p.update), ["drift"]);
    assert!(p.delete.is_empty());
    assert_eq!(p.unchanged, strs(&["gone", "same"]));

    let p = plan(&with_policy("create-delete"), &current, generated());
    assert_eq!(names(&p.create), ["new"]);
    assert!(p.update.is_empty());
    assert_eq!(p.delete, strs(&["gone"]));
    assert_eq!(p.unchanged, strs(&["drift", "same"]));

    let p = plan(&with_policy("sync"), &current, generated());
    assert_eq!(names(&p.create), ["new"]);
    assert_eq!(names(&p.update), ["drift"]);
    assert_eq!(p.delete, strs(&["gone"]));
    assert_eq!(p.unchanged, strs(&["same"]));
    assert_eq!(p.conflicts.len(), 1);

    // Label-only and project-only changes count as updates.
    let mut relabeled = gen_app("same", "p");
    relabeled.labels.insert("team".into(), "a".into());
    let p = plan(&with_policy("sync"), &current[..1], vec![relabeled]);
    assert_eq!(names(&p.update), ["same"]);
    let mut moved = gen_app("same", "p");
    moved.project = "edge".into();
    let p = plan(&with_policy("sync"), &current[..1], vec![moved]);
    assert_eq!(names(&p.update), ["same"]);
}

// ---------------------------------------------------------------------------
// goTemplate: parameters shaped as Argo CD's generators shape them, Go templates, and the set-level fields
// that only make sense with them. The expected values follow Argo CD's generators (applicationset/generators).

fn go_spec(generators: Value, name: &str, path: &str) -> Value {
    let mut spec = spec_with(generators, name, path);
    spec["goTemplate"] = json!(true);
    spec["goTemplateOptions"] = json!(["missingkey=error"]);
    spec
}

#[test]
fn go_clusters_nest_metadata_and_values() {
    let mut clusters = three_clusters();
    clusters[0]
        .annotations
        .insert("owner".into(), "team-a".into());
    let spec = go_spec(
        json!([{"clusters": {"selector": {"matchLabels": {"region": "eu"}},
            "values": {"tier": "{{ .metadata.labels.region | upper }}-{{ .nameNormalized }}"}}}]),
        "{{ .name }}-{{ .values.tier | lower }}",
        "{{ .server | trimPrefix \"https://\" }}/{{ .metadata.annotations.owner | default \"none\" }}",
    );
    // missingkey=error: cluster-2 has no annotations, so `.metadata.annotations` is missing there.
    let err = run(&spec, &clusters, &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.template.spec.source.path", "{err}");
    let mut lenient = spec.clone();
    lenient["goTemplateOptions"] = json!([]);
    let apps = run(&lenient, &clusters, &Repos::default()).unwrap();
    assert_eq!(
        names(&apps),
        ["cluster-1-eu-cluster-1", "cluster-2-eu-cluster-2"]
    );
    assert_eq!(apps[0].spec.source.path, "10.0.0.1:6443/team-a");
    assert_eq!(apps[1].spec.source.path, "10.0.0.2:6443/none");
    assert_eq!(apps[0].params["metadata"]["labels"]["region"], "eu");
    assert_eq!(apps[0].params["values"]["tier"], "EU-cluster-1");
    assert_eq!(apps[0].params["project"], "");
}

#[test]
fn go_git_directories_and_files_nest_path_params() {
    let repo = MemRepo::with_dirs(&["apps", "apps/a", "apps/Legacy_C"]);
    let repos = Repos::one("https://git.example/r", "HEAD", repo);
    let spec = go_spec(
        json!([{"git": {"repoURL": "https://git.example/r", "revision": "HEAD", "pathParamPrefix": "src",
            "directories": [{"path": "apps/*"}]}}]),
        "{{ .src.path.basenameNormalized }}",
        "{{ .src.path.path }}|{{ index .src.path.segments 0 }}|{{ len .src.path.segments }}",
    );
    let apps = run(&spec, &[], &repos).unwrap();
    assert_eq!(names(&apps), ["a", "legacy-c"]);
    assert_eq!(apps[1].spec.source.path, "apps/Legacy_C|apps|2");

    let repos = Repos::one("https://git.example/cfg", "main", files_repo());
    let spec = go_spec(
        json!([{"git": {"repoURL": "https://git.example/cfg", "revision": "main",
            "files": [{"path": "clusters/eu/**/config.json"}],
            "values": {"first": "{{ (index .zones 0).id }}"}}}]),
        "{{ .cluster.name }}",
        "{{ .path.path }}/{{ .path.filename }}/{{ .values.first }}/{{ range .zones }}{{ .id }}{{ end }}",
    );
    let apps = run(&spec, &[], &repos).unwrap();
    assert_eq!(names(&apps), ["paris"]);
    assert_eq!(
        apps[0].spec.source.path,
        "clusters/eu/paris/config.json/a/ab"
    );
    // Nested, not flattened: the file's objects stay objects.
    assert_eq!(apps[0].params["cluster"]["address"], "https://1.2.3.4");
}

#[test]
fn go_matrix_deep_merges_and_interpolates_the_second_generator() {
    let repos = Repos::one("https://git.example/cfg", "main", files_repo());
    let spec = go_spec(
        json!([{"matrix": {"generators": [
            {"list": {"elements": [{"region": "eu", "cluster": {"tier": "edge"}}]}},
            {"git": {"repoURL": "https://git.example/cfg", "revision": "main",
                "files": [{"path": "clusters/{{ .region }}/**/config.json"}],
                "values": {"region": "{{ .region }}", "dir": "{{ .path.basename }}"}}}
        ]}}]),
        "{{ .cluster.name }}-{{ .cluster.tier }}",
        "{{ .values.region }}-{{ .values.dir }}",
    );
    let apps = run(&spec, &[], &repos).unwrap();
    // The list's `cluster` object and the file's `cluster` object merge; the first generator wins on a clash.
    assert_eq!(names(&apps), ["paris-edge"]);
    assert_eq!(apps[0].spec.source.path, "eu-paris");
    assert_eq!(apps[0].params["cluster"]["address"], "https://1.2.3.4");
}

#[test]
fn go_merge_keys_and_elements_yaml_and_flat_list() {
    let clusters = three_clusters();
    let spec = go_spec(
        json!([{"merge": {"mergeKeys": ["name"], "generators": [
            {"clusters": {}},
            {"list": {"elementsYaml": "- name: cluster-2\n  replicas: 5\n"}}
        ]}}]),
        "{{ .name }}",
        "{{ .replicas | default 1 }}",
    );
    // missingkey=error: the clusters without an element have no `replicas`.
    assert!(run(&spec, &clusters, &Repos::default()).is_err());
    let mut spec = spec;
    spec["goTemplateOptions"] = json!([]);
    let apps = run(&spec, &clusters, &Repos::default()).unwrap();
    let paths: Vec<&str> = apps.iter().map(|a| a.spec.source.path.as_str()).collect();
    assert_eq!(paths, ["1", "5", "1"]);

    let spec = go_spec(
        json!([{"clusters": {"flatList": true}}]),
        "fleet",
        "{{ range $i, $c := .clusters }}{{ if $i }},{{ end }}{{ $c.name }}{{ end }}",
    );
    let apps = run(&spec, &clusters, &Repos::default()).unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].spec.source.path, "cluster-1,cluster-2,cluster-3");
}

#[test]
fn generator_templates_and_post_selectors() {
    // Fasttemplate: the generator's own template wins field by field; the selector filters flat params.
    let spec = json!({
        "generators": [
            {"list": {"elements": [{"cluster": "a", "env": "staging"}, {"cluster": "b", "env": "prod"}],
                "template": {"metadata": {}, "spec": {"source": {"path": "override/{{cluster}}"}, "destination": {}}}},
             "selector": {"matchLabels": {"env": "staging"}}},
            {"list": {"elements": [{"cluster": "c", "env": "prod"}]}}
        ],
        "template": {
            "metadata": {"name": "{{cluster}}-app"},
            "spec": {"source": {"repoURL": "https://git.example/r", "path": "base/{{cluster}}"},
                     "destination": {"name": "{{cluster}}", "namespace": "apps"}}
        }
    });
    let apps = run(&spec, &[], &Repos::default()).unwrap();
    assert_eq!(names(&apps), ["a-app", "c-app"]);
    assert_eq!(apps[0].spec.source.path, "override/a");
    assert_eq!(apps[0].spec.source.repo_url, "https://git.example/r");
    assert_eq!(apps[0].spec.destination.cluster, "a");
    assert_eq!(apps[1].spec.source.path, "base/c");

    // Go templates: the selector matches nested parameters by their flattened keys.
    let clusters = three_clusters();
    let spec = go_spec(
        json!([{"clusters": {}, "selector": {"matchExpressions": [{"key": "metadata.labels.region", "operator": "In", "values": ["us"]}]}}]),
        "{{ .name }}",
        "p",
    );
    assert_eq!(
        names(&run(&spec, &clusters, &Repos::default()).unwrap()),
        ["cluster-3"]
    );
}

#[test]
fn template_patch_merges_into_each_app_but_not_the_project() {
    let mut spec = go_spec(
        json!([{"list": {"elements": [{"cluster": "a", "auto": true}, {"cluster": "b", "auto": false}]}}]),
        "{{ .cluster }}",
        "p",
    );
    spec["template"]["spec"]["project"] = json!("edge");
    spec["templatePatch"] = json!(
        "metadata:\n  labels:\n    cluster: {{ .cluster }}\nspec:\n  project: stolen\n{{- if .auto }}\n  syncPolicy:\n    automated:\n      prune: true\n{{- end }}\n"
    );
    let apps = run(&spec, &[], &Repos::default()).unwrap();
    assert_eq!(names(&apps), ["a", "b"]);
    assert_eq!(apps[0].labels["cluster"], "a");
    assert!(apps[0].spec.automated().is_some(), "{:?}", apps[0].spec);
    assert!(apps[1].spec.automated().is_none());
    assert_eq!(apps[0].project, "edge");

    spec["templatePatch"] = json!("spec: [1, 2]\nstatus: {}\n");
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.templatePatch");
    assert!(err.message.contains("status"), "{err}");
}

#[test]
fn go_template_errors_name_the_field() {
    let spec = go_spec(
        json!([{"list": {"elements": [{"cluster": "a"}]}}]),
        "{{ .cluster }}",
        "{{ .missing.key }}",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.template.spec.source.path");
    assert!(err.message.contains("missing"), "{err}");
    let spec = go_spec(
        json!([{"list": {"elements": [{"cluster": "a"}]}}]),
        "{{ .cluster | nosuchfunction }}",
        "p",
    );
    let err = run(&spec, &[], &Repos::default()).unwrap_err();
    assert_eq!(err.path, "spec.template.metadata.name");
    assert!(err.message.contains("nosuchfunction"), "{err}");
}

#[test]
fn plan_keeps_preserved_fields_and_ignored_differences() {
    let spec = ApplicationSetSpec::from_json(&json!({
        "generators": [{"list": {"elements": []}}],
        "template": {"metadata": {"name": "x"}, "spec": {"source": {"repoURL": "r"}, "destination": {"name": "c"}}},
        "preservedFields": {"annotations": ["note"], "labels": ["owner"]},
        "ignoreApplicationDifferences": [
            {"jsonPointers": ["/spec/source/targetRevision"]},
            {"name": "other", "jsonPointers": ["/spec/source/path"]}
        ]
    }))
    .unwrap();
    let mut live = gen_app("app", "p");
    live.spec.source.target_revision = "hotfix".into();
    live.annotations.insert("note".into(), "kept".into());
    live.labels.insert("owner".into(), "ops".into());
    let current = vec![existing(&live, true)];
    let mut wanted = gen_app("app", "p");
    wanted.spec.source.target_revision = "main".into();
    wanted.labels.insert("owner".into(), "generated".into());
    // Only ignored or preserved fields differ: nothing to update.
    let p = plan(&spec, &current, vec![wanted.clone()]);
    assert!(p.update.is_empty(), "{p:?}");
    assert_eq!(p.unchanged, ["app"]);
    // A change elsewhere updates the app, keeping the live values of the ignored and preserved fields.
    wanted.spec.source.path = "moved".into();
    let p = plan(&spec, &current, vec![wanted]);
    assert_eq!(p.update.len(), 1);
    let updated = &p.update[0];
    assert_eq!(updated.spec.source.path, "moved");
    assert_eq!(updated.spec.source.target_revision, "hotfix");
    assert_eq!(updated.annotations["note"], "kept");
    assert_eq!(updated.labels["owner"], "ops");
}

#[test]
fn ignored_application_differences_by_jq_path_keep_the_live_values() {
    let spec = ApplicationSetSpec::from_json(&json!({
        "generators": [{"list": {"elements": []}}],
        "template": {"metadata": {"name": "x"}, "spec": {"source": {"repoURL": "r"}, "destination": {"name": "c"}}},
        "ignoreApplicationDifferences": [
            // Argo CD's example: the live value of a field the generated app also sets, and an added one.
            {"jqPathExpressions": [".spec.source.targetRevision", ".metadata.labels | select(.pinned) | .pinned"]},
            {"names": ["other"], "jqPathExpressions": [".spec.source.path"]}
        ]
    }))
    .unwrap();
    let mut live = gen_app("app", "p");
    live.spec.source.target_revision = "hotfix".into();
    live.labels.insert("pinned".into(), "yes".into());
    let current = vec![existing(&live, true)];
    let mut wanted = gen_app("app", "p");
    wanted.spec.source.target_revision = "main".into();
    let p = plan(&spec, &current, vec![wanted.clone()]);
    assert!(p.update.is_empty(), "only ignored fields differ: {p:?}");
    wanted.spec.source.path = "moved".into();
    let p = plan(&spec, &current, vec![wanted]);
    let updated = &p.update[0];
    assert_eq!(
        updated.spec.source.path, "moved",
        "the rule for `other` does not apply"
    );
    assert_eq!(updated.spec.source.target_revision, "hotfix");
    assert_eq!(updated.labels["pinned"], "yes");

    // Checked as the spoke's jq expressions are: an unbounded one is refused by path.
    let err = ApplicationSetSpec::from_json(&json!({
        "generators": [{"list": {"elements": []}}],
        "template": {"metadata": {"name": "x"}, "spec": {"source": {"repoURL": "r"}, "destination": {"name": "c"}}},
        "ignoreApplicationDifferences": [{"jqPathExpressions": [".spec | recurse"]}]
    }))
    .unwrap_err();
    assert_eq!(
        err.path,
        "spec.ignoreApplicationDifferences[0].jqPathExpressions[0]"
    );
}

/// Decision resources held in memory, matched by exact apiVersion and kind.
#[derive(Default)]
struct MemDecisions {
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    resources: Vec<(String, String, DecisionResource)>,
}

impl DecisionLookup for MemDecisions {
    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.config_maps.get(name).cloned()
    }

    fn resources(&self, api_version: &str, kind: &str) -> Vec<DecisionResource> {
        self.resources
            .iter()
            .filter(|(a, k, _)| a == api_version && k == kind)
            .map(|(_, _, r)| r.clone())
            .collect()
    }
}

fn ocm_decisions() -> MemDecisions {
    let api = "cluster.open-cluster-management.io/v1beta1";
    let decision = |name: &str, placement: &str, status: Value| {
        (
            api.to_owned(),
            "placementdecisions".to_owned(),
            DecisionResource {
                name: name.into(),
                labels: [(
                    "cluster.open-cluster-management.io/placement".to_owned(),
                    placement.to_owned(),
                )]
                .into(),
                status,
            },
        )
    };
    MemDecisions {
        config_maps: [(
            "ocm-placement-generator".to_owned(),
            [
                ("apiVersion", api),
                ("kind", "placementdecisions"),
                ("statusListKey", "decisions"),
                ("matchKey", "clusterName"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )]
        .into(),
        resources: vec![
            decision(
                "app-placement-decision-1",
                "app-placement",
                json!({"decisions": [
                    {"clusterName": "edge-1", "reason": ""},
                    {"clusterName": "not-enrolled", "reason": ""},
                    {"reason": "no cluster named"},
                ]}),
            ),
            decision(
                "app-placement-decision-2",
                "app-placement",
                json!({"decisions": [{"clusterName": "edge-3", "reason": "spread", "score": 7}]}),
            ),
            decision(
                "other-decision-1",
                "other",
                json!({"decisions": [{"clusterName": "edge-2"}]}),
            ),
            // No status yet: nothing decided.
            decision("app-placement-decision-3", "app-placement", Value::Null),
        ],
    }
}

/// Argo CD's `clusterDecisionResource`, as Open Cluster Management uses it (the corpus's
/// `ocm-placement-generator`): the decisions of every resource the label selector picks, each matched to an
/// enrolled cluster by `matchKey`, give `name`, `server` and the decision's own keys as text; a decision
/// naming no enrolled cluster is skipped; `values` come as `values.*` (a map with Go templates).
#[test]
fn cluster_decision_resources_generate_one_set_per_decided_cluster() {
    let clusters = [
        cluster("edge-1", "https://edge-1.example", &[]),
        cluster("edge-2", "https://edge-2.example", &[]),
        cluster("edge-3", "https://edge-3.example", &[]),
    ];
    let decisions = ocm_decisions();
    let ctx = EvalContext {
        clusters: &clusters,
        git: &Repos::default(),
        decisions: &decisions,
    };
    let spec = |generator: Value, go: bool, name: &str| {
        ApplicationSetSpec::from_json(&json!({
            "goTemplate": go,
            "generators": [{"clusterDecisionResource": generator}],
            "template": {
                "metadata": {"name": name},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git", "path": "guestbook"},
                    "destination": {"server": if go { "{{.server}}" } else { "{{server}}" }, "namespace": "guestbook"}
                }
            }
        }))
        .unwrap()
    };
    let selected = json!({
        "configMapRef": "ocm-placement-generator",
        "labelSelector": {"matchLabels": {"cluster.open-cluster-management.io/placement": "app-placement"}},
        "requeueAfterSeconds": 30,
        "values": {"tier": "edge"}
    });
    let apps = generate(
        &spec(selected.clone(), false, "{{name}}-guestbook-app"),
        &ctx,
    )
    .unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["edge-1-guestbook-app", "edge-3-guestbook-app"]);
    assert_eq!(apps[1].spec.destination.server, "https://edge-3.example");
    let params = &apps[1].params;
    assert_eq!(params["clusterName"], "edge-3");
    assert_eq!(params["reason"], "spread");
    assert_eq!(params["score"], "7");
    assert_eq!(params["values.tier"], "edge");

    // Go templates: the same sets, `values` a map.
    let apps = generate(
        &spec(selected, true, "{{.clusterName}}-{{.values.tier}}"),
        &ctx,
    )
    .unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["edge-1-edge", "edge-3-edge"]);

    // One resource by name.
    let by_name = json!({"configMapRef": "ocm-placement-generator", "name": "other-decision-1"});
    let apps = generate(&spec(by_name, false, "{{name}}-x"), &ctx).unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "edge-2-x");

    // What Argo CD refuses while generating, naming the field.
    for (generator, field, message) in [
        (
            json!({"configMapRef": "missing", "name": "x"}),
            ".configMapRef",
            "no ConfigMap \"missing\"",
        ),
        (
            json!({"configMapRef": "ocm-placement-generator", "name": "x", "labelSelector": {"matchLabels": {"a": "b"}}}),
            "",
            "exactly one",
        ),
        (
            json!({"configMapRef": "ocm-placement-generator"}),
            "",
            "exactly one",
        ),
        (
            json!({"configMapRef": "ocm-placement-generator", "name": "nope"}),
            "",
            "no placementdecisions",
        ),
    ] {
        let err = generate(&spec(generator.clone(), false, "{{name}}"), &ctx).unwrap_err();
        assert_eq!(
            err.path,
            format!("spec.generators[0].clusterDecisionResource{field}"),
            "{generator}"
        );
        assert!(err.message.contains(message), "{generator}: {err}");
    }
    // A ConfigMap without matchKey generates nothing (as Argo CD).
    let mut no_key = ocm_decisions();
    no_key
        .config_maps
        .get_mut("ocm-placement-generator")
        .unwrap()
        .remove("matchKey");
    let ctx = EvalContext {
        clusters: &clusters,
        git: &Repos::default(),
        decisions: &no_key,
    };
    let generator = json!({"configMapRef": "ocm-placement-generator", "name": "other-decision-1"});
    assert!(
        generate(&spec(generator, false, "{{name}}"), &ctx)
            .unwrap()
            .is_empty()
    );
}
