//! `helm template` for real (testkit's helm, `EDGECD_HELM_BIN`): the fixture chart `testdata/helm/web` from a directory with per-cluster values files and capabilities, its `required` value failing with file and line, and the same chart packaged into a chart repository on loopback (ranges, basic auth, digest mismatch, an unreachable repository).
//!
//! Without a helm binary (neither `EDGECD_HELM_BIN` nor Go), every test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{FIXTURES, config_map, copy_dir};
use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_git::RepoCredential;
use edgecd_helm::{Capabilities, HelmConfig, HelmError, HelmRenderer, RenderContext, RepoError};
use edgecd_testkit::chart_repo::{ChartRepoServer, index_repo, package_chart};
use serde_json::json;

fn helm_binary() -> Option<PathBuf> {
    if !edgecd_testkit::helm::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return None;
    }
    Some(edgecd_testkit::helm::helm_binary().unwrap())
}

fn new_renderer(helm: &Path, dir: &Path) -> HelmRenderer {
    HelmRenderer::new(HelmConfig::new(helm, dir))
}

/// A copy of the fixture chart as a repository checkout (`charts/web`).
fn checkout() -> (tempfile::TempDir, PathBuf) {
    let repo = tempfile::tempdir().unwrap();
    let chart = repo.path().join("charts/web");
    copy_dir(&Path::new(FIXTURES).join("web"), &chart);
    (repo, chart)
}

#[tokio::test]
async fn a_chart_directory_renders_with_values_files_and_the_clusters_capabilities() {
    let Some(helm) = helm_binary() else { return };
    let (repo, chart) = checkout();
    let work = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, work.path());
    let source = ApplicationSource {
        repo_url: "https://git.example/fleet".into(),
        path: "charts/web".into(),
        helm: Some(HelmSource {
            value_files: vec!["values-paris.yaml".into()],
            parameters: vec![edgecd_core::app::HelmParameter {
                name: "replicas".into(),
                value: "5".into(),
                force_string: false,
            }],
            ..HelmSource::default()
        }),
        ..ApplicationSource::default()
    };
    let with_widgets = Capabilities {
        kube_version: "v1.31.4".into(),
        api_versions: vec![
            "example.edgecd.io/v1".into(),
            "example.edgecd.io/v1/Widget".into(),
        ],
    };
    let context = RenderContext {
        app_name: "web-paris",
        namespace: "edge",
        capabilities: &with_widgets,
    };
    let objects = renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap();
    let config = config_map(&objects, "web-paris-config");
    assert_eq!(config["data"]["region"], "eu-west");
    assert_eq!(
        config["data"]["replicas"], "5",
        "parameters win over values files"
    );
    assert_eq!(config["data"]["namespace"], "edge");
    assert_eq!(config["data"]["kubeVersion"], "v1.31.4");
    assert_eq!(config["data"]["widgets"], "served");
    assert!(objects.iter().any(|o| o["kind"] == "Widget"));
    config_map(&objects, "web-paris-extras");

    let without = Capabilities {
        kube_version: "v1.33.0".into(),
        api_versions: vec!["v1".into()],
    };
    let context = RenderContext {
        capabilities: &without,
        ..context
    };
    let objects = renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap();
    assert_eq!(
        config_map(&objects, "web-paris-config")["data"]["widgets"],
        "absent"
    );
    assert!(!objects.iter().any(|o| o["kind"] == "Widget"));
    assert_eq!(renderer.cache_len(), 2);
    renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap();
    assert_eq!(
        renderer.cache_len(),
        2,
        "the same inputs are served from the cache"
    );
}

#[tokio::test]
async fn a_missing_required_value_names_the_template_file_and_line() {
    let Some(helm) = helm_binary() else { return };
    let (repo, chart) = checkout();
    let work = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, work.path());
    let source = ApplicationSource {
        repo_url: "https://git.example/fleet".into(),
        path: "charts/web".into(),
        helm: Some(HelmSource::default()),
        ..ApplicationSource::default()
    };
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "web",
        namespace: "edge",
        capabilities: &caps,
    };
    let err = renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("web/templates/configmap.yaml:9:13")
            && message.contains("region is required"),
        "{message}"
    );
    // Inline values are a private file; the message names the field, not the file.
    let source = ApplicationSource {
        helm: Some(HelmSource {
            values: "region: [unclosed\n".into(),
            ..HelmSource::default()
        }),
        ..source
    };
    let err = renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap_err();
    assert!(
        !err.to_string().contains(&work.path().display().to_string()),
        "{err}"
    );
}

/// Packages the fixture as 0.1.0 and 0.2.0 into a served directory and indexes it.
async fn chart_repository(
    helm: &Path,
    auth: Option<(&str, &str)>,
) -> (tempfile::TempDir, ChartRepoServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = ChartRepoServer::start(dir.path(), auth).await.unwrap();
    let chart = Path::new(FIXTURES).join("web");
    package_chart(helm, &chart, "0.1.0", dir.path()).unwrap();
    package_chart(helm, &chart, "0.2.0", dir.path()).unwrap();
    index_repo(helm, dir.path(), server.url()).unwrap();
    (dir, server)
}

fn repo_source(url: &str, version: &str) -> ApplicationSource {
    ApplicationSource {
        repo_url: url.into(),
        chart: "web".into(),
        target_revision: version.into(),
        helm: Some(HelmSource {
            values_object: Some(json!({"region": "us-east"})),
            ..HelmSource::default()
        }),
        ..ApplicationSource::default()
    }
}

#[tokio::test]
async fn a_chart_repository_resolves_versions_verifies_digests_and_uses_credentials() {
    let Some(helm) = helm_binary() else { return };
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "web",
        namespace: "edge",
        capabilities: &caps,
    };

    // Without credentials: a range picks the highest version; the package is cached by digest.
    let (_dir, server) = chart_repository(&helm, None).await;
    let work = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, work.path());
    let (version, objects) = renderer
        .render_repo_chart(
            &repo_source(server.url(), ">=0.1.0 <1.0.0"),
            &context,
            None,
            false,
        )
        .await
        .unwrap();
    assert_eq!(version, "0.2.0");
    assert_eq!(
        config_map(&objects, "web-config")["data"]["region"],
        "us-east"
    );
    let (version, _) = renderer
        .render_repo_chart(&repo_source(server.url(), "0.1.0"), &context, None, false)
        .await
        .unwrap();
    assert_eq!(version, "0.1.0");
    // Packages are cached per origin (the repository), one file per digest.
    let cached: usize = std::fs::read_dir(work.path().join("charts"))
        .unwrap()
        .map(|origin| std::fs::read_dir(origin.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(cached, 2, "one package per digest");
    let err = renderer
        .render_repo_chart(&repo_source(server.url(), "9.9.9"), &context, None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HelmError::Repo(RepoError::NoVersion { .. })),
        "{err}"
    );

    // With basic auth: refused without the credential, served with it.
    let (_dir, server) = chart_repository(&helm, Some(("reader", "s3cret"))).await;
    let work = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, work.path());
    let err = renderer
        .render_repo_chart(&repo_source(server.url(), "0.1.0"), &context, None, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");
    let credential = RepoCredential {
        url_prefix: server.url().to_owned(),
        username: Some("reader".into()),
        password: Some("s3cret".to_owned().into()),
        ..RepoCredential::default()
    };
    let (version, _) = renderer
        .render_repo_chart(
            &repo_source(server.url(), "0.1.0"),
            &context,
            Some(&credential),
            true,
        )
        .await
        .unwrap();
    assert_eq!(version, "0.1.0");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("web-0.1.0.tgz") && r.authorized)
    );
    // What was fetched with the credential is not reused by a render without it (a hub parent whose project may
    // not use the credential): it asks the repository again, and is refused.
    let err = renderer
        .render_repo_chart(&repo_source(server.url(), "0.1.0"), &context, None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 401"), "{err}");

    // A package that is not the one the index names is refused; nothing is rendered from it.
    let (dir, server) = chart_repository(&helm, None).await;
    std::fs::copy(
        dir.path().join("web-0.2.0.tgz"),
        dir.path().join("web-0.1.0.tgz"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, work.path());
    let err = renderer
        .render_repo_chart(&repo_source(server.url(), "0.1.0"), &context, None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HelmError::Repo(RepoError::Digest { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("digest mismatch"), "{err}");

    // An unreachable repository is named.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/charts");
    let err = renderer
        .render_repo_chart(&repo_source(&url, "0.1.0"), &context, None, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "chart repository {url}: fetching {url}/index.yaml: connecting"
        )),
        "{err}"
    );
}

/// A chart cannot reach out while it renders: `getHostByName` answers nothing (helm runs without `--enable-dns`)
/// and `lookup` finds nothing (no cluster: its `KUBECONFIG` does not exist).
#[tokio::test]
async fn a_chart_renders_without_dns_or_a_cluster() {
    let Some(helm) = helm_binary() else { return };
    let repo = tempfile::tempdir().unwrap();
    let chart = repo.path().join("probe");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/probe.yaml"),
        concat!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\ndata:\n",
            "  dns: {{ getHostByName \"localhost\" | quote }}\n",
            "  lookup: {{ lookup \"v1\" \"Namespace\" \"\" \"kube-system\" | toJson | quote }}\n",
        ),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let renderer = new_renderer(&helm, cache.path());
    let source = ApplicationSource {
        repo_url: "https://git.example/probe".into(),
        path: "probe".into(),
        helm: Some(HelmSource::default()),
        ..ApplicationSource::default()
    };
    let capabilities = Capabilities::default();
    let context = RenderContext {
        app_name: "probe",
        namespace: "default",
        capabilities: &capabilities,
    };
    let objects = renderer
        .render_dir(&source, &context, repo.path(), &chart, "c0ffee")
        .await
        .unwrap();
    let data = &config_map(&objects, "probe")["data"];
    assert_eq!(data["dns"], "", "helm resolved a name: {data}");
    assert_eq!(data["lookup"], "{}", "helm reached a cluster: {data}");
}
