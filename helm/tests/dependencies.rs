//! `helm template` for real (testkit's helm, `EDGECD_HELM_BIN`) with what a chart does not hold itself: dependencies that are not vendored (fetched from a chart repository on loopback, or `file://` beside the chart) rendered from a scratch copy, `valueFiles`/`fileParameters` read inside a package of a chart repository, and values files of another source (`$ref/…`).
//!
//! Fixtures: `testdata/helm/parent` (depends on `lib` from a chart repository and `common` by `file://`),
//! `testdata/helm/lib`, `testdata/helm/common`, `testdata/helm/web`. Without a helm binary every test says
//! SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{PLACEHOLDER, config_map, copy_dir, fixture};
use edgecd_core::app::{ApplicationSource, HelmFileParameter, HelmParameter, HelmSource};
use edgecd_git::{Credentials, RepoCredential};
use edgecd_helm::{
    Capabilities, HelmConfig, HelmError, HelmRenderer, RenderContext, RenderInputs, RepoError,
    SourceRef, SourceRefs,
};
use edgecd_testkit::chart_repo::{ChartRepoServer, index_repo, package_chart};
use serde_json::Value;

fn helm_binary() -> Option<PathBuf> {
    edgecd_testkit::helm::binary_or_skip()
}

/// Every path under `dir`, sorted: what a render must leave as it found.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

fn has_config_map(objects: &[Value], name: &str) -> bool {
    objects
        .iter()
        .any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
}

/// A chart repository serving `lib` 1.0.0 and 1.1.0 (and whatever `more` adds before indexing).
async fn lib_repository(
    helm: &Path,
    auth: Option<(&str, &str)>,
    more: impl FnOnce(&Path, &str),
) -> (tempfile::TempDir, ChartRepoServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = ChartRepoServer::start(dir.path(), auth).await.unwrap();
    package_chart(helm, &fixture("lib"), "1.0.0", dir.path()).unwrap();
    package_chart(helm, &fixture("lib"), "1.1.0", dir.path()).unwrap();
    more(dir.path(), server.url());
    index_repo(helm, dir.path(), server.url()).unwrap();
    (dir, server)
}

/// The fixture `parent` with `lib`'s repository set to `repo_url`, at `to`.
fn parent_chart(to: &Path, repo_url: &str) {
    copy_dir(&fixture("parent"), to);
    let chart_yaml = to.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    assert!(text.contains(PLACEHOLDER));
    std::fs::write(&chart_yaml, text.replace(PLACEHOLDER, repo_url)).unwrap();
}

/// A checkout holding `charts/parent` (depending on `lib` from `repo_url`) and `charts/common` beside it.
fn checkout(repo_url: &str) -> (tempfile::TempDir, PathBuf) {
    let repo = tempfile::tempdir().unwrap();
    let chart = repo.path().join("charts/parent");
    parent_chart(&chart, repo_url);
    copy_dir(&fixture("common"), &repo.path().join("charts/common"));
    (repo, chart)
}

fn git_source(helm: HelmSource) -> ApplicationSource {
    ApplicationSource {
        repo_url: "https://git.example/fleet".into(),
        path: "charts/parent".into(),
        helm: Some(helm),
        ..ApplicationSource::default()
    }
}

fn replace_in(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// A gzipped tar of `dir` under the top directory `top`, as `helm package` lays it out (but without helm's
/// check that dependencies are vendored).
fn package_by_hand(dir: &Path, top: &str, out: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(top, dir).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    std::fs::write(out, gz.finish().unwrap()).unwrap();
}

#[tokio::test]
async fn missing_dependencies_are_fetched_into_a_scratch_copy_of_the_chart() {
    let Some(helm) = helm_binary() else { return };
    let (served, server) = lib_repository(&helm, None, |_, _| {}).await;
    let (repo, chart) = checkout(server.url());
    let before = listing(repo.path());
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    let inputs = RenderInputs::default();
    let source = git_source(HelmSource::default());

    // `^1.0.0` picks lib 1.1.0 from the repository; common comes from file://../common.
    let objects = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap();
    assert_eq!(
        config_map(&objects, "edge-parent")["data"]["color"],
        "plain"
    );
    let lib = config_map(&objects, "edge-lib");
    assert_eq!(lib["data"]["version"], "1.1.0");
    assert_eq!(lib["data"]["greeting"], "hello from parent");
    config_map(&objects, "edge-common");
    assert_eq!(
        listing(repo.path()),
        before,
        "the checkout is never written"
    );
    renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap();
    assert_eq!(
        renderer.cache_len(),
        1,
        "the same inputs come from the cache"
    );

    // A condition is helm's business.
    let disabled = git_source(HelmSource {
        parameters: vec![HelmParameter {
            name: "lib.enabled".into(),
            value: "false".into(),
            force_string: false,
        }],
        ..HelmSource::default()
    });
    let objects = renderer
        .render_dir_with(&disabled, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap();
    assert!(!has_config_map(&objects, "edge-lib"));

    // Chart.lock pins the version, as `helm dependency build` does.
    let lock = format!(
        "dependencies:\n- name: lib\n  repository: {}\n  version: 1.0.0\n- name: common\n  repository: file://../common\n  version: 0.1.0\ndigest: sha256:0\ngenerated: \"2025-01-01T00:00:00Z\"\n",
        server.url()
    );
    std::fs::write(chart.join("Chart.lock"), &lock).unwrap();
    let objects = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c2")
        .await
        .unwrap();
    assert_eq!(config_map(&objects, "edge-lib")["data"]["version"], "1.0.0");
    std::fs::write(chart.join("Chart.lock"), lock.replace("1.0.0", "2.0.0")).unwrap();
    let err = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c3")
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "chart charts/parent: dependency lib: Chart.lock pins 2.0.0, which Chart.yaml's \"^1.0.0\" does not accept"
        ),
        "{err}"
    );
    std::fs::remove_file(chart.join("Chart.lock")).unwrap();

    // A version the repository does not have.
    replace_in(&chart.join("Chart.yaml"), "^1.0.0", "^9.0.0");
    let err = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c4")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            HelmError::DependencyRepo { source, .. } if matches!(**source, RepoError::NoVersion { .. })
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "chart charts/parent: dependency lib: chart repository {}: chart lib: no version matches \"^9.0.0\" (latest: 1.1.0)",
            server.url()
        )
    );
    replace_in(&chart.join("Chart.yaml"), "^9.0.0", "^1.0.0");

    // file:// stays inside the repository; repository names are refused (oci:// is helm/tests/oci.rs').
    for (repository, expected) in [
        (
            "file://../../../outside",
            "chart charts/parent: dependency common: \"file://../../../outside\" leaves the repository",
        ),
        (
            "\"@stable\"",
            "chart charts/parent: dependency common: repository \"@stable\": repository names are not supported yet",
        ),
    ] {
        replace_in(&chart.join("Chart.yaml"), "file://../common", repository);
        let err = renderer
            .render_dir_with(&source, &context, &inputs, repo.path(), &chart, repository)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err}");
        replace_in(&chart.join("Chart.yaml"), repository, "file://../common");
    }

    // A package that is not the one the index names is refused (a fresh package cache).
    std::fs::copy(
        served.path().join("lib-1.0.0.tgz"),
        served.path().join("lib-1.1.0.tgz"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let err = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            HelmError::DependencyRepo { source, .. } if matches!(**source, RepoError::Digest { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "chart charts/parent: dependency lib: chart repository {}: chart lib 1.1.0: digest mismatch",
            server.url()
        )),
        "{err}"
    );
    assert_eq!(listing(repo.path()), before);
}

#[tokio::test]
async fn dependency_repositories_get_their_own_credential() {
    let Some(helm) = helm_binary() else { return };
    let (_served, server) = lib_repository(&helm, Some(("reader", "s3cret")), |_, _| {}).await;
    let (repo, chart) = checkout(server.url());
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    let source = git_source(HelmSource::default());
    let err = renderer
        .render_dir_with(
            &source,
            &context,
            &RenderInputs::default(),
            repo.path(),
            &chart,
            "c1",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("chart charts/parent: dependency lib: chart repository")
            && err.to_string().contains("HTTP 401"),
        "{err}"
    );
    let credentials = Credentials::new([
        RepoCredential {
            url_prefix: "https://elsewhere.example/".into(),
            username: Some("other".into()),
            password: Some("nope".to_owned().into()),
            ..RepoCredential::default()
        },
        RepoCredential {
            url_prefix: server.url().to_owned(),
            username: Some("reader".into()),
            password: Some("s3cret".to_owned().into()),
            ..RepoCredential::default()
        },
    ]);
    let inputs = RenderInputs {
        credentials: Some(&credentials),
        ..RenderInputs::default()
    };
    let objects = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap();
    config_map(&objects, "edge-lib");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("lib-1.1.0.tgz") && r.authorized)
    );
    assert!(!err.to_string().contains("s3cret"));
}

#[tokio::test]
async fn a_dependency_repository_the_project_does_not_allow_is_refused_before_any_request() {
    let Some(helm) = helm_binary() else { return };
    let (_served, server) = lib_repository(&helm, Some(("reader", "s3cret")), |_, _| {}).await;
    let (repo, chart) = checkout(server.url());
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    // Another project's credential for the repository is in the spoke's set.
    let credentials = Credentials::new([RepoCredential {
        url_prefix: server.url().to_owned(),
        username: Some("reader".into()),
        password: Some("s3cret".to_owned().into()),
        ..RepoCredential::default()
    }]);
    let allowed = |url: &str| -> Result<(), String> {
        if url.starts_with("https://git.example/") {
            Ok(())
        } else {
            Err(format!(
                "project team-b does not allow source repository {url}"
            ))
        }
    };
    let inputs = RenderInputs {
        credentials: Some(&credentials),
        allowed_repos: Some(&allowed),
        ..RenderInputs::default()
    };
    let source = git_source(HelmSource::default());
    let err = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "chart charts/parent: dependency lib: repository {} is not allowed: project team-b does not allow source repository",
            server.url()
        )) && text.ends_with("(sourceRepos)"),
        "{text}"
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // The chart of a repository (an app's chart, a helmCharts entry) is checked the same way.
    let repo_source = ApplicationSource {
        repo_url: server.url().to_owned(),
        chart: "lib".into(),
        target_revision: "1.0.0".into(),
        helm: Some(HelmSource::default()),
        ..ApplicationSource::default()
    };
    let err = renderer
        .render_repo_chart_with(&repo_source, &context, &inputs)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("chart lib: repository"),
        "{err}"
    );
    let err = renderer
        .repo_chart_values(server.url(), "lib", "1.0.0", &inputs)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not allowed"), "{err}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[tokio::test]
async fn a_package_reads_its_own_value_files_and_gets_its_missing_dependencies() {
    let Some(helm) = helm_binary() else { return };
    let (_served, server) = lib_repository(&helm, None, |dir, url| {
        // `parent` 0.1.0 vendors `common` but not `lib`: helm would not package it, so it is packed by hand.
        let staged = tempfile::tempdir().unwrap();
        let chart = staged.path().join("parent");
        parent_chart(&chart, url);
        copy_dir(&fixture("common"), &chart.join("charts/common"));
        package_by_hand(&chart, "parent", &dir.join("parent-0.1.0.tgz"));
        package_chart(&helm, &fixture("web"), "0.1.0", dir).unwrap();
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    let inputs = RenderInputs::default();
    let source = |chart: &str, helm: HelmSource| ApplicationSource {
        repo_url: server.url().to_owned(),
        chart: chart.into(),
        target_revision: "0.1.0".into(),
        helm: Some(helm),
        ..ApplicationSource::default()
    };
    let prod = HelmSource {
        value_files: vec!["values-prod.yaml".into()],
        file_parameters: vec![HelmFileParameter {
            name: "motd".into(),
            path: "files/motd.txt".into(),
        }],
        ..HelmSource::default()
    };
    let (version, objects) = renderer
        .render_repo_chart_with(&source("parent", prod.clone()), &context, &inputs)
        .await
        .unwrap();
    assert_eq!(version, "0.1.0");
    let parent = config_map(&objects, "edge-parent");
    assert_eq!(parent["data"]["color"], "blue");
    assert_eq!(parent["data"]["motd"], "Welcome to the edge.\n");
    let lib = config_map(&objects, "edge-lib");
    assert_eq!(lib["data"]["version"], "1.1.0");
    assert_eq!(lib["data"]["greeting"], "hello from prod");
    config_map(&objects, "edge-common");

    // A chart `helm package` made (its subchart vendored): values files of the package.
    let paris = HelmSource {
        value_files: vec!["values-paris.yaml".into(), "values-none.yaml".into()],
        ignore_missing_value_files: true,
        ..HelmSource::default()
    };
    let (_, objects) = renderer
        .render_repo_chart_with(&source("web", paris.clone()), &context, &inputs)
        .await
        .unwrap();
    assert_eq!(
        config_map(&objects, "edge-config")["data"]["region"],
        "eu-west"
    );
    config_map(&objects, "edge-extras");

    let strict = HelmSource {
        ignore_missing_value_files: false,
        ..paris
    };
    let err = renderer
        .render_repo_chart_with(&source("web", strict), &context, &inputs)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.source.helm.valueFiles[1]: \"values-none.yaml\": no such file in chart web 0.1.0"
    );
    let outside = HelmSource {
        value_files: vec!["../parent/values-prod.yaml".into()],
        ..HelmSource::default()
    };
    let err = renderer
        .render_repo_chart_with(&source("web", outside), &context, &inputs)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.source.helm.valueFiles[0] \"../parent/values-prod.yaml\": leaves chart web 0.1.0"
    );
    let scratch = work.path().join("tmp");
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "scratch copies are removed after each render"
    );
}

#[tokio::test]
async fn values_files_of_another_source_come_from_its_checkout() {
    let Some(helm) = helm_binary() else { return };
    let repo = tempfile::tempdir().unwrap();
    let chart = repo.path().join("charts/web");
    copy_dir(&fixture("web"), &chart);
    let values = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(values.path().join("envs")).unwrap();
    std::fs::write(
        values.path().join("envs/paris.yaml"),
        "region: from-the-values-repo\nreplicas: 7\n",
    )
    .unwrap();
    let mut refs = SourceRefs::from([(
        "values".to_owned(),
        SourceRef {
            root: values.path().to_path_buf(),
            commit: "v1".into(),
        },
    )]);
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "web",
        namespace: "edge",
        capabilities: &caps,
    };
    let source = ApplicationSource {
        repo_url: "https://git.example/fleet".into(),
        path: "charts/web".into(),
        helm: Some(HelmSource {
            value_files: vec!["$values/envs/paris.yaml".into()],
            ..HelmSource::default()
        }),
        ..ApplicationSource::default()
    };
    let render = async |refs: &SourceRefs| {
        let inputs = RenderInputs {
            refs,
            ..RenderInputs::default()
        };
        renderer
            .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
            .await
    };
    let objects = render(&refs).await.unwrap();
    let config = config_map(&objects, "web-config");
    assert_eq!(config["data"]["region"], "from-the-values-repo");
    assert_eq!(config["data"]["replicas"], "7");
    render(&refs).await.unwrap();
    assert_eq!(renderer.cache_len(), 1);
    // A new commit of the other source is a new render.
    std::fs::write(values.path().join("envs/paris.yaml"), "region: moved\n").unwrap();
    refs.get_mut("values").unwrap().commit = "v2".into();
    let objects = render(&refs).await.unwrap();
    assert_eq!(
        config_map(&objects, "web-config")["data"]["region"],
        "moved"
    );
    assert_eq!(renderer.cache_len(), 2);

    // An unknown ref names the file and the refs there are.
    let other = SourceRefs::from([(
        "config".to_owned(),
        SourceRef {
            root: values.path().to_path_buf(),
            commit: "v2".into(),
        },
    )]);
    let err = render(&other).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.source.helm.valueFiles[0] \"$values/envs/paris.yaml\": no source with ref \"values\" (known refs: config)"
    );

    // A chart of a chart repository takes `$ref` files too (the package is rendered as it is).
    let served = tempfile::tempdir().unwrap();
    let server = ChartRepoServer::start(served.path(), None).await.unwrap();
    package_chart(&helm, &fixture("web"), "0.1.0", served.path()).unwrap();
    index_repo(&helm, served.path(), server.url()).unwrap();
    let inputs = RenderInputs {
        refs: &refs,
        ..RenderInputs::default()
    };
    let from_repo = ApplicationSource {
        repo_url: server.url().to_owned(),
        chart: "web".into(),
        target_revision: "0.1.0".into(),
        path: String::new(),
        ..source.clone()
    };
    let (_, objects) = renderer
        .render_repo_chart_with(&from_repo, &context, &inputs)
        .await
        .unwrap();
    assert_eq!(
        config_map(&objects, "web-config")["data"]["region"],
        "moved"
    );
}
