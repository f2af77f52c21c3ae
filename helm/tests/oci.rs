//! Helm charts from an OCI registry for real: testkit's registry (`testkit/ociregistry`, go-containerregistry's in-memory registry on loopback) holding the fixture chart `testdata/helm/lib` pushed with the real `helm push`, rendered with the real helm: exact tags and semver ranges over a paginated tag list (Helm's `_` for `+`), layers cached by digest, a missing tag, an unknown chart and a corrupted layer failing with the registry and chart named, basic auth and the Bearer token flow refused without a credential and accepted with one (matched with or without `oci://`), `oci://` chart dependencies, and hostile registries (a huge manifest, endless tag pages, a plain-HTTP token realm, no answer) bounded.
//!
//! Without a helm binary or the registry (neither their `EDGECD_*_BIN` nor Go) every test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{PLACEHOLDER, config_map, copy_dir, fixture};
use edgecd_core::app::{ApplicationSource, HelmSource};
use edgecd_git::{Credentials, RepoCredential};
use edgecd_helm::oci::OciError;
use edgecd_helm::{
    Capabilities, HelmConfig, HelmError, HelmRenderer, RenderContext, RenderInputs, RepoError,
};
use edgecd_testkit::chart_repo::package_chart;
use edgecd_testkit::oci_registry::{OciAuth, OciRegistry, OciRegistryOptions, OciRequest};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The helm binary, or `None` after printing `SKIPPED: …` where it or the registry cannot be had.
fn helm_binary() -> Option<PathBuf> {
    let helm = edgecd_testkit::helm::binary_or_skip()?;
    if !edgecd_testkit::oci_registry::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_OCIREGISTRY_BIN is set nor Go installed, so the test registry cannot be built"
        );
        return None;
    }
    Some(helm)
}

/// A registry started with `options` holding `lib` at `versions` under `charts/`, and the packages pushed.
fn registry_with_lib(
    helm: &Path,
    options: OciRegistryOptions,
    versions: &[&str],
) -> (OciRegistry, tempfile::TempDir) {
    let registry = OciRegistry::start(options).unwrap();
    let packages = tempfile::tempdir().unwrap();
    for version in versions {
        let package = package_chart(helm, &fixture("lib"), version, packages.path()).unwrap();
        let pushed = registry.push(helm, &package, "charts").unwrap();
        assert!(pushed.contains("Pushed:"), "{pushed}");
    }
    (registry, packages)
}

/// The cached package with this digest (under its origin's directory of `<dir>/charts/`).
fn cached_package(dir: &Path, digest: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir.join("charts"))
        .ok()?
        .filter_map(Result::ok)
        .map(|origin| origin.path().join(format!("sha256-{digest}.tgz")))
        .find(|p| p.is_file())
}

fn sha256_of(file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn chart_source(registry: &OciRegistry, chart: &str, target_revision: &str) -> ApplicationSource {
    ApplicationSource {
        repo_url: registry.url("charts"),
        chart: chart.into(),
        target_revision: target_revision.into(),
        helm: Some(HelmSource::default()),
        ..ApplicationSource::default()
    }
}

fn credentials(prefix: &str, user: &str, password: &str) -> Credentials {
    Credentials::new([RepoCredential {
        url_prefix: prefix.into(),
        username: Some(user.into()),
        password: Some(password.to_owned().into()),
        ..RepoCredential::default()
    }])
}

fn count(requests: &[OciRequest], what: impl Fn(&OciRequest) -> bool) -> usize {
    requests.iter().filter(|r| what(r)).count()
}

fn is_tags(r: &OciRequest) -> bool {
    r.method == "GET" && r.path.contains("/tags/list")
}

fn is_blob_get(r: &OciRequest) -> bool {
    r.method == "GET" && r.path.contains("/blobs/sha256:")
}

/// Renders `source` with `credentials`; the version and the objects, or the error.
async fn render(
    renderer: &HelmRenderer,
    source: &ApplicationSource,
    credentials: Option<&Credentials>,
) -> Result<(String, Vec<Value>), HelmError> {
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    let inputs = RenderInputs {
        credentials,
        ..RenderInputs::default()
    };
    renderer
        .render_repo_chart_with(source, &context, &inputs)
        .await
        .map(|(version, objects)| (version, objects.as_ref().clone()))
}

/// An exact version is fetched by its tag without listing tags; a range (and an exact version written with a
/// leading `v`) resolves over the whole tag list, one tag per page here, with Helm's `_` read as `+`; the
/// chart layer is cached by its digest, which is the pushed package's SHA-256.
#[tokio::test]
async fn exact_tags_and_ranges_over_a_paginated_tag_list_resolve_and_render() {
    let Some(helm) = helm_binary() else { return };
    let (registry, packages) = registry_with_lib(
        &helm,
        OciRegistryOptions {
            tags_page: 1,
            ..OciRegistryOptions::default()
        },
        &["1.0.0", "1.1.0", "1.2.0+build.1", "2.0.0-rc.1"],
    );
    let pushed = registry.requests().len();
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));

    let (version, objects) = render(&renderer, &chart_source(&registry, "lib", "1.1.0"), None)
        .await
        .unwrap();
    assert_eq!(version, "1.1.0");
    assert_eq!(config_map(&objects, "edge-lib")["data"]["version"], "1.1.0");
    let requests = registry.requests().split_off(pushed);
    assert_eq!(count(&requests, is_tags), 0, "{requests:?}");
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v2/charts/lib/manifests/1.1.0" && r.status == 200),
        "{requests:?}"
    );
    let digest = sha256_of(&packages.path().join("lib-1.1.0.tgz"));
    assert!(
        cached_package(work.path(), &digest).is_some(),
        "the layer is cached by digest"
    );

    // Ranges: every page of the tag list (four tags, one per page), then the highest match.
    for (wanted, expected) in [
        ("^1.0", "1.2.0+build.1"),
        ("", "1.2.0+build.1"),
        ("~1.1.0", "1.1.0"),
        (">=2.0.0-0", "2.0.0-rc.1"),
        ("v1.0.0", "1.0.0"),
    ] {
        let (version, objects) = render(&renderer, &chart_source(&registry, "lib", wanted), None)
            .await
            .unwrap_or_else(|e| panic!("{wanted:?}: {e}"));
        assert_eq!(version, expected, "{wanted:?}");
        assert_eq!(
            config_map(&objects, "edge-lib")["data"]["version"],
            expected,
            "{wanted:?}"
        );
    }
    let requests = registry.requests().split_off(pushed);
    assert_eq!(
        count(&requests, is_tags),
        4,
        "four pages, listed once and reused: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| is_tags(r) && r.path.contains("last=1.0.0")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/v2/charts/lib/manifests/1.2.0_build.1"),
        "{requests:?}"
    );

    // Another renderer on the same cache directory asks for the manifest but not for the layer again.
    let blobs = count(&registry.requests(), is_blob_get);
    let again = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let (version, _) = render(&again, &chart_source(&registry, "lib", "1.1.0"), None)
        .await
        .unwrap();
    assert_eq!(version, "1.1.0");
    assert_eq!(count(&registry.requests(), is_blob_get), blobs);
}

/// A tag the repository does not have, a range nothing matches and an unknown chart fail naming the
/// registry and the chart; a layer that does not match the manifest's digest is not used.
#[tokio::test]
async fn missing_tags_unknown_charts_and_corrupted_layers_fail() {
    let Some(helm) = helm_binary() else { return };
    let (registry, _packages) =
        registry_with_lib(&helm, OciRegistryOptions::default(), &["1.0.0", "1.1.0"]);
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let url = registry.url("charts");
    for wanted in ["9.9.9", "^3.0"] {
        let err = render(&renderer, &chart_source(&registry, "lib", wanted), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HelmError::Repo(RepoError::Oci(e)) if matches!(**e, OciError::NoVersion { .. })),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("OCI registry {url}: chart lib: no tag matches {wanted:?} (latest: 1.1.0)")
        );
    }
    let err = render(&renderer, &chart_source(&registry, "nope", "1.0.0"), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "OCI registry {url}: chart nope: fetching http://{}/v2/charts/nope/tags/list: HTTP 404 Not Found (NAME_UNKNOWN)",
            registry.address()
        )
    );

    let (corrupt, packages) = registry_with_lib(
        &helm,
        OciRegistryOptions {
            corrupt_blobs: true,
            ..OciRegistryOptions::default()
        },
        &["1.0.0"],
    );
    let digest = sha256_of(&packages.path().join("lib-1.0.0.tgz"));
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let err = render(&renderer, &chart_source(&corrupt, "lib", "1.0.0"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HelmError::Repo(RepoError::Oci(e)) if matches!(**e, OciError::Digest { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "OCI registry {}: chart lib 1.0.0: digest mismatch (manifest: sha256:{digest}, downloaded: sha256:",
            corrupt.url("charts")
        )),
        "{err}"
    );
    assert!(
        !work.path().join("charts").exists()
            || std::fs::read_dir(work.path().join("charts"))
                .unwrap()
                .next()
                .is_none(),
        "nothing is cached"
    );
}

/// Basic auth: without a credential the registry's 401 says none matched; a wrong password is refused
/// without showing it; Argo CD's `enableOCI` form of the URL (no scheme) matches and is sent; what it fetched
/// is not reused for a render without it.
#[tokio::test]
async fn basic_auth_is_refused_without_a_credential_and_accepted_with_one() {
    let Some(helm) = helm_binary() else { return };
    let (registry, _packages) = registry_with_lib(
        &helm,
        OciRegistryOptions {
            auth: OciAuth::basic("reader", "s3cret"),
            ..OciRegistryOptions::default()
        },
        &["1.0.0"],
    );
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let source = chart_source(&registry, "lib", "1.0.0");
    let err = render(&renderer, &source, None).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("HTTP 401 Unauthorized (no repository credential matches this registry)"),
        "{err}"
    );
    let prefix = format!("{}/charts", registry.address());
    let wrong = credentials(&prefix, "reader", "not-the-password");
    let err = render(&renderer, &source, Some(&wrong)).await.unwrap_err();
    assert!(err.to_string().ends_with("HTTP 401 Unauthorized"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let right = credentials(&prefix, "reader", "s3cret");
    let (version, objects) = render(&renderer, &source, Some(&right)).await.unwrap();
    assert_eq!(version, "1.0.0");
    config_map(&objects, "edge-lib");
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| is_blob_get(r) && r.auth == "basic" && r.status == 200)
    );
    // What the credential fetched (the resolved tag, the cached layer) is no way around it for a render
    // without one.
    let err = render(&renderer, &source, None).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 401 Unauthorized"), "{err}");
}

/// The Bearer token flow: the registry's 401 names its token endpoint, which refuses a request without
/// credentials; with a credential (`oci://` prefix) the token endpoint gets basic auth, the registry only
/// the token.
#[tokio::test]
async fn the_token_flow_trades_the_credential_for_a_bearer_token() {
    let Some(helm) = helm_binary() else { return };
    let (registry, _packages) = registry_with_lib(
        &helm,
        OciRegistryOptions {
            auth: OciAuth::token("reader", "s3cret"),
            ..OciRegistryOptions::default()
        },
        &["1.0.0", "1.1.0"],
    );
    let pushed = registry.requests().len();
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let source = chart_source(&registry, "lib", "^1.0.0");
    let err = render(&renderer, &source, None).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "token endpoint http://{}/token: HTTP 401 Unauthorized (no repository credential matches this registry)",
            registry.address()
        )),
        "{err}"
    );

    let set = credentials(&format!("oci://{}", registry.address()), "reader", "s3cret");
    let (version, objects) = render(&renderer, &source, Some(&set)).await.unwrap();
    assert_eq!(version, "1.1.0");
    assert_eq!(config_map(&objects, "edge-lib")["data"]["version"], "1.1.0");
    let requests = registry.requests().split_off(pushed);
    assert!(
        requests.iter().any(|r| r.path.starts_with("/token?")
            && r.path.contains("scope=repository%3Acharts%2Flib%3Apull")
            && r.auth == "basic"
            && r.status == 200),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/v2/"))
            .all(|r| r.auth == "none" || r.auth == "bearer"),
        "the password goes to the token endpoint only: {requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| is_blob_get(r) && r.auth == "bearer" && r.status == 200),
        "{requests:?}"
    );
}

/// A chart in git whose dependency `lib` comes from an `oci://` registry behind basic auth: fetched with the
/// credential matching the registry, at the highest version the range accepts or the one `Chart.lock` pins.
#[tokio::test]
async fn oci_dependencies_are_fetched_from_their_registry() {
    let Some(helm) = helm_binary() else { return };
    let (registry, _packages) = registry_with_lib(
        &helm,
        OciRegistryOptions {
            auth: OciAuth::basic("reader", "s3cret"),
            ..OciRegistryOptions::default()
        },
        &["1.0.0", "1.1.0"],
    );
    let repo = tempfile::tempdir().unwrap();
    let chart = repo.path().join("charts/parent");
    copy_dir(&fixture("parent"), &chart);
    copy_dir(&fixture("common"), &repo.path().join("charts/common"));
    let chart_yaml = chart.join("Chart.yaml");
    let oci = registry.url("charts");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, text.replace(PLACEHOLDER, &oci)).unwrap();

    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new(&helm, work.path()));
    let caps = Capabilities::default();
    let context = RenderContext {
        app_name: "edge",
        namespace: "apps",
        capabilities: &caps,
    };
    let source = ApplicationSource {
        repo_url: "https://git.example/fleet".into(),
        path: "charts/parent".into(),
        helm: Some(HelmSource::default()),
        ..ApplicationSource::default()
    };
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
        err.to_string().starts_with(&format!(
            "chart charts/parent: dependency lib: OCI registry {oci}: chart lib: fetching"
        )) && err.to_string().contains("HTTP 401 Unauthorized"),
        "{err}"
    );

    let set = credentials(&oci, "reader", "s3cret");
    let inputs = RenderInputs {
        credentials: Some(&set),
        ..RenderInputs::default()
    };
    let objects = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c1")
        .await
        .unwrap();
    let lib = config_map(&objects, "edge-lib");
    assert_eq!(lib["data"]["version"], "1.1.0");
    assert_eq!(lib["data"]["greeting"], "hello from parent");
    config_map(&objects, "edge-common");

    let lock = format!(
        "dependencies:\n- name: lib\n  repository: {oci}\n  version: 1.0.0\n- name: common\n  repository: file://../common\n  version: 0.1.0\ndigest: sha256:0\ngenerated: \"2025-01-01T00:00:00Z\"\n"
    );
    std::fs::write(chart.join("Chart.lock"), lock).unwrap();
    let objects = renderer
        .render_dir_with(&source, &context, &inputs, repo.path(), &chart, "c2")
        .await
        .unwrap();
    assert_eq!(config_map(&objects, "edge-lib")["data"]["version"], "1.0.0");
}

/// A registry that answers every request with what `answer` makes of its path (status line, headers and
/// body), or never answers when it returns `None`.
async fn hostile_registry(
    answer: impl Fn(&str) -> Option<(String, Vec<u8>)> + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let answer = std::sync::Arc::new(answer);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = std::sync::Arc::clone(&answer);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let Some((head, body)) = answer(&path) else {
                    // Hold the connection open, answering nothing.
                    let _ = stream.read(&mut buffer).await;
                    return;
                };
                let response = format!(
                    "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (address, task)
}

/// Hostile registries are bounded: a manifest larger than 4 MiB, a tag list whose pages never end, a token
/// realm over plain HTTP elsewhere than loopback, and a registry that never answers all fail naming the
/// registry, the chart and the bound.
#[tokio::test]
async fn hostile_registries_are_bounded_in_bytes_pages_and_time() {
    let Some(helm) = helm_binary() else { return };
    let (address, _task) = hostile_registry(|path| {
        if path.contains("/huge/manifests/") {
            Some(("HTTP/1.1 200 OK".into(), vec![b' '; 5 * 1024 * 1024]))
        } else if path.contains("/endless/tags/list") {
            Some((
                "HTTP/1.1 200 OK\r\nLink: </v2/charts/endless/tags/list?last=x>; rel=\"next\"".into(),
                br#"{"name":"charts/endless","tags":["1.0.0"]}"#.to_vec(),
            ))
        } else if path.contains("/realm/") {
            Some((
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://auth.example/token\",service=\"x\"".into(),
                Vec::new(),
            ))
        } else if path.contains("/silent/") {
            None
        } else {
            Some(("HTTP/1.1 404 Not Found".into(), Vec::new()))
        }
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let mut config = HelmConfig::new(&helm, work.path());
    config.repos.timeout = std::time::Duration::from_secs(1);
    let renderer = HelmRenderer::new(config);
    let url = format!("oci://{address}/charts");
    let source = |chart: &str, wanted: &str| ApplicationSource {
        repo_url: url.clone(),
        chart: chart.into(),
        target_revision: wanted.into(),
        ..ApplicationSource::default()
    };
    let cases = [
        (
            source("huge", "1.0.0"),
            format!(
                "OCI registry {url}: chart huge: fetching http://{address}/v2/charts/huge/manifests/1.0.0: larger than 4194304 bytes"
            ),
        ),
        (
            source("endless", "^1.0"),
            format!(
                "OCI registry {url}: chart endless: fetching http://{address}/v2/charts/endless/tags/list: the tag list has more than 64 pages"
            ),
        ),
        (
            source("realm", "1.0.0"),
            format!(
                "OCI registry {url}: chart realm: fetching http://{address}/v2/charts/realm/manifests/1.0.0: the token realm \"http://auth.example/token\" is not https:// (credentials are sent there)"
            ),
        ),
        (
            source("silent", "1.0.0"),
            format!(
                "OCI registry {url}: chart silent: fetching http://{address}/v2/charts/silent/manifests/1.0.0: no answer within 1s"
            ),
        ),
    ];
    for (source, expected) in cases {
        let err = render(&renderer, &source, None).await.unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

/// The media type of a gzipped tar layer of an OCI image (what `oras push` writes for a directory).
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A tar of `(name, type, content)` entries, names written raw (so `..` can be had), gzipped when `gzip`.
fn layer(entries: &[(&str, tar::EntryType, &[u8])], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        if *kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            data
        } else {
            &[]
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

const FILE: tar::EntryType = tar::EntryType::Regular;
const DIR: tar::EntryType = tar::EntryType::Directory;

fn artifact_source(registry: &OciRegistry, repository: &str, revision: &str) -> ApplicationSource {
    ApplicationSource {
        repo_url: registry.url(repository),
        path: ".".into(),
        target_revision: revision.into(),
        ..ApplicationSource::default()
    }
}

fn registry() -> Option<OciRegistry> {
    if !edgecd_testkit::oci_registry::available() {
        eprintln!(
            "SKIPPED: neither EDGECD_OCIREGISTRY_BIN is set nor Go installed, so the test registry cannot be built"
        );
        return None;
    }
    Some(OciRegistry::start(OciRegistryOptions::default()).unwrap())
}

/// An OCI artifact of manifests (Argo CD 3.1's OCI sources): its one content layer, gzipped or a plain tar,
/// is fetched by tag (any tag, `latest` too) or by a semver range over the tags, verified, and unpacked once
/// per digest with its paths as they are; other layers (provenance) are ignored; a Helm chart pushed with
/// `helm push` is an artifact too, its top directory the tree's root.
#[tokio::test]
async fn oci_artifacts_are_fetched_by_tag_or_range_and_unpacked_once() {
    let Some(registry) = registry() else { return };
    let v1 = layer(
        &[
            ("web", DIR, b""),
            ("web/cm.yaml", FILE, b"kind: ConfigMap\n"),
            ("web/kustomization.yaml", FILE, b"resources: [cm.yaml]\n"),
        ],
        true,
    );
    let v2 = layer(&[("web/cm.yaml", FILE, b"kind: ConfigMap # 2\n")], false);
    let provenance = b"{}".as_slice();
    let first = registry
        .push_artifact(
            "team/manifests",
            "1.0.0",
            "application/vnd.oci.image.config.v1+json",
            b"{}",
            &[
                (TAR_GZIP, &v1),
                ("application/vnd.in-toto+json", provenance),
            ],
        )
        .unwrap();
    for tag in ["1.1.0", "latest"] {
        registry
            .push_artifact(
                "team/manifests",
                tag,
                "application/vnd.oci.empty.v1+json",
                b"{}",
                &[("application/vnd.oci.image.layer.v1.tar", &v2)],
            )
            .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new("helm", work.path()));
    let inputs = RenderInputs::default();

    let tree = renderer
        .fetch_artifact(
            &artifact_source(&registry, "team/manifests", "1.0.0"),
            &inputs,
        )
        .await
        .unwrap();
    assert_eq!(tree.version, "1.0.0");
    // The revision names the manifest: a tag pushed again is a new revision.
    assert_eq!(tree.revision, format!("1.0.0@{first}"));
    assert!(tree.root.ends_with(format!("sha256-{}-tree", tree.digest)));
    assert_eq!(
        tree.digest,
        Sha256::digest(&v1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert!(!tree.helm_chart);
    assert_eq!(
        std::fs::read_to_string(tree.root.join("web/kustomization.yaml")).unwrap(),
        "resources: [cm.yaml]\n"
    );
    assert!(tree.root.starts_with(work.path().join("artifacts")));

    for (wanted, expected) in [("^1.0", "1.1.0"), ("latest", "latest"), ("1.1.0", "1.1.0")] {
        let tree = renderer
            .fetch_artifact(
                &artifact_source(&registry, "team/manifests", wanted),
                &inputs,
            )
            .await
            .unwrap_or_else(|e| panic!("{wanted}: {e}"));
        assert_eq!(tree.version, expected, "{wanted}");
        assert_eq!(
            std::fs::read_to_string(tree.root.join("web/cm.yaml")).unwrap(),
            "kind: ConfigMap # 2\n",
            "{wanted}"
        );
    }
    // The same digest is downloaded once: later fetches ask for manifests only.
    let blobs = registry
        .requests()
        .iter()
        .filter(|r| is_blob_get(r))
        .count();
    assert_eq!(blobs, 2, "{:?}", registry.requests());

    // Pinned by the manifest's digest (as the revision reads): that manifest, checked; a wrong digest fails.
    let pinned = renderer
        .fetch_artifact(
            &artifact_source(&registry, "team/manifests", &format!("1.0.0@{first}")),
            &inputs,
        )
        .await
        .unwrap();
    assert_eq!(
        (pinned.version.as_str(), pinned.revision.as_str()),
        ("1.0.0", format!("1.0.0@{first}").as_str())
    );
    let wrong = format!("1.0.0@sha256:{}", "0".repeat(64));
    let err = renderer
        .fetch_artifact(
            &artifact_source(&registry, "team/manifests", &wrong),
            &inputs,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 404"), "{err}");

    // `latest` pushed again with other content is another revision, fetched again on a hard refresh.
    let before = renderer
        .fetch_artifact(
            &artifact_source(&registry, "team/manifests", "latest"),
            &inputs,
        )
        .await
        .unwrap();
    let again = registry
        .push_artifact(
            "team/manifests",
            "latest",
            "application/vnd.oci.empty.v1+json",
            b"{}",
            &[(TAR_GZIP, &v1)],
        )
        .unwrap();
    let hard = RenderInputs {
        hard: true,
        ..RenderInputs::default()
    };
    let after = renderer
        .fetch_artifact(
            &artifact_source(&registry, "team/manifests", "latest"),
            &hard,
        )
        .await
        .unwrap();
    assert_ne!(before.revision, after.revision);
    assert_eq!(after.revision, format!("latest@{again}"));

    // A Helm chart pushed with helm is an artifact whose root is the chart.
    if let Some(helm) = edgecd_testkit::helm::binary_or_skip() {
        let packages = tempfile::tempdir().unwrap();
        let package = package_chart(&helm, &fixture("lib"), "1.0.0", packages.path()).unwrap();
        registry.push(&helm, &package, "charts").unwrap();
        let tree = renderer
            .fetch_artifact(&artifact_source(&registry, "charts/lib", "1.0.0"), &inputs)
            .await
            .unwrap();
        assert!(tree.helm_chart);
        assert!(tree.root.join("Chart.yaml").is_file());
    }
}

/// What Argo CD refuses is refused, naming the registry, the artifact and the cause: no content layer, two,
/// a media type not allowed, a missing tag; an entry leaving the tree, a link or a path too deep fails the
/// unpack and leaves nothing; a project that does not allow the registry is asked before any request.
#[tokio::test]
async fn oci_artifacts_are_refused_for_what_argo_cd_refuses() {
    let Some(registry) = registry() else { return };
    let ok = layer(&[("a.yaml", FILE, b"kind: ConfigMap\n")], true);
    type Layers<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: [(&str, Layers, &str); 3] = [
        ("none", vec![], "0 content layers"),
        (
            "two",
            vec![(TAR_GZIP, &ok), (TAR_GZIP, &ok)],
            "2 content layers",
        ),
        (
            "odd",
            vec![("application/vnd.example.tar+gzip", &ok)],
            "\"application/vnd.example.tar+gzip\" is not one of",
        ),
    ];
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new("helm", work.path()));
    let inputs = RenderInputs::default();
    for (name, layers, expected) in &cases {
        registry
            .push_artifact(
                &format!("team/{name}"),
                "1.0.0",
                "application/vnd.oci.empty.v1+json",
                b"{}",
                layers,
            )
            .unwrap();
        let err = renderer
            .fetch_artifact(
                &artifact_source(&registry, &format!("team/{name}"), "1.0.0"),
                &inputs,
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "OCI registry {}: artifact {name}:1.0.0: ",
                registry.url(&format!("team/{name}"))
            )) && err.contains(expected),
            "{name}: {err}"
        );
    }
    let err = renderer
        .fetch_artifact(&artifact_source(&registry, "team/odd", "2.0.0"), &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("artifact odd: no tag matches \"2.0.0\""),
        "{err}"
    );

    // An entry leaving the tree: refused, nothing unpacked; a link is skipped, never created.
    let escaping = layer(
        &[("ok.yaml", FILE, b"x: 1\n"), ("../../evil", FILE, b"x")],
        true,
    );
    registry
        .push_artifact(
            "team/escape",
            "1.0.0",
            "application/vnd.oci.empty.v1+json",
            b"{}",
            &[(TAR_GZIP, &escaping)],
        )
        .unwrap();
    let err = renderer
        .fetch_artifact(&artifact_source(&registry, "team/escape", "1.0.0"), &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is absolute or leaves the chart"), "{err}");
    // Nothing unpacked is kept: the origin's directory holds no tree and no scratch directory.
    for origin in std::fs::read_dir(work.path().join("artifacts")).unwrap() {
        let kept: Vec<_> = std::fs::read_dir(origin.unwrap().path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(kept.is_empty(), "{kept:?}");
    }
    // A link is refused, naming it (never created, never silently dropped); so is a path 65 directories deep.
    let linked = layer(
        &[
            ("ok.yaml", FILE, b"x: 1\n"),
            ("passwd", tar::EntryType::Symlink, b""),
        ],
        true,
    );
    registry
        .push_artifact(
            "team/link",
            "1.0.0",
            "application/vnd.oci.empty.v1+json",
            b"{}",
            &[(TAR_GZIP, &linked)],
        )
        .unwrap();
    let err = renderer
        .fetch_artifact(&artifact_source(&registry, "team/link", "1.0.0"), &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("entry \"passwd\" is a link"), "{err}");
    let deep = format!("{}x.yaml", "d/".repeat(64));
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(&mut header, &deep, b"x\n".as_slice())
        .unwrap();
    let deep_layer = builder.into_inner().unwrap();
    registry
        .push_artifact(
            "team/deep",
            "1.0.0",
            "application/vnd.oci.empty.v1+json",
            b"{}",
            &[("application/vnd.oci.image.layer.v1.tar", &deep_layer)],
        )
        .unwrap();
    let err = renderer
        .fetch_artifact(&artifact_source(&registry, "team/deep", "1.0.0"), &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested deeper than 64 directories"), "{err}");

    // The project's sourceRepos is asked first: no request reaches the registry.
    let before = registry.requests().len();
    let deny = |url: &str| -> Result<(), String> {
        Err(format!(
            "project team does not allow source repository {url}"
        ))
    };
    let inputs = RenderInputs {
        allowed_repos: Some(&deny),
        ..RenderInputs::default()
    };
    let err = renderer
        .fetch_artifact(&artifact_source(&registry, "team/link", "1.0.0"), &inputs)
        .await
        .unwrap_err();
    assert!(matches!(err, HelmError::RepoNotAllowed { .. }), "{err:?}");
    assert_eq!(registry.requests().len(), before);
}

/// A digest is no secret: a registry whose manifest names the digest of a layer that another registry served
/// (another team's private artifact, cached on this spoke) does not get it from the cache; it must serve the
/// bytes itself, and without them the fetch fails.
#[tokio::test]
async fn a_layer_cached_from_one_registry_is_not_served_for_another() {
    let Some(private) = registry() else { return };
    let Some(hostile) = registry() else { return };
    let secret = layer(&[("secret.yaml", FILE, b"kind: Secret\n")], true);
    private
        .push_artifact(
            "team-a/app",
            "1.0.0",
            "application/vnd.oci.empty.v1+json",
            b"{}",
            &[(TAR_GZIP, &secret)],
        )
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let renderer = HelmRenderer::new(HelmConfig::new("helm", work.path()));
    let inputs = RenderInputs::default();
    let tree = renderer
        .fetch_artifact(&artifact_source(&private, "team-a/app", "1.0.0"), &inputs)
        .await
        .unwrap();
    let digest = format!("sha256:{}", tree.digest);
    hostile
        .push_manifest(
            "team-b/app",
            "1.0.0",
            &serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": format!("sha256:{}", "4".repeat(64)), "size": 2},
                "layers": [{"mediaType": TAR_GZIP, "digest": digest, "size": secret.len()}],
            }),
        )
        .unwrap();
    let err = renderer
        .fetch_artifact(&artifact_source(&hostile, "team-b/app", "1.0.0"), &inputs)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("/v2/team-b/app/blobs/{digest}")) && err.contains("HTTP 404"),
        "{err}"
    );
}
