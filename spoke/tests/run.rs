//! The real `edgecd-spoke run` binary against the Kubernetes API emulator and a git server: it installs the CRD, syncs the talk's demo app to Synced and Healthy, serves `/live`, `/ready` and `/metrics`, and exits 0 on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};
use edgecd_spoke::crd::Application;
use edgecd_testkit::GitServer;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STATE_NS: &str = "edgecd-system";
const APP_NS: &str = "gitops-kubecon-demo";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// A plain HTTP/1.1 GET: (status code, body); `None` when nothing listens.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The value of the first sample line starting with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_an_app_serves_admin_and_stops_on_sigterm() {
    let emulator = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = emulator.write_kubeconfigs(dir.path()).unwrap().remove(0);
    let server = GitServer::start().unwrap();
    let repo = server.create_repo("argocd-app-of-apps-demo").unwrap();
    repo.copy_dir(&fixtures().join("talk-demo-repo"), "")
        .unwrap();
    let head = repo.commit("the talk's demo").unwrap();

    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgecd-spoke"))
        .arg("run")
        .env("SPOKE_KUBECONFIG", &kubeconfig)
        .env("SPOKE_CLUSTER_NAME", "edge-1")
        .env("SPOKE_ADMIN_ADDR", admin.to_string())
        .env("SPOKE_POLL_INTERVAL", "2s")
        .env("SPOKE_LOG_FORMAT", "json")
        .args(["--cache-dir".as_ref(), dir.path().join("cache").as_os_str()])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    wait_for("/live", async || {
        http_get(admin, "/live").await.filter(|(c, _)| *c == 200)
    })
    .await;
    wait_for("/ready", async || {
        http_get(admin, "/ready").await.filter(|(c, _)| *c == 200)
    })
    .await;

    // The binary installed the CRD and created the state namespace.
    let client = emulator.client().await.unwrap();
    let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
    let spec = ApplicationSpec {
        project: "kubecon-demo".into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: "deploy/overlays/cluster1".into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: APP_NS.into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    apps.create(
        &PostParams::default(),
        &Application::new("demo", STATE_NS, spec),
    )
    .await
    .unwrap();
    let status = wait_for("demo Synced and Healthy", async || {
        let status = apps.get("demo").await.ok()?.status?;
        (status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy)
            .then_some(status)
    })
    .await;
    assert_eq!(status.sync.revision, head);

    let (code, metrics) = http_get(admin, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        sample(
            &metrics,
            "edgecd_spoke_apps_by_sync_status{sync_status=\"Synced\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "edgecd_spoke_apps_by_health{health=\"Healthy\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "edgecd_spoke_reconciles_total{result=\"success\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "edgecd_spoke_sync_operations_total{phase=\"Succeeded\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "edgecd_spoke_git_fetches_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "edgecd_spoke_reconcile_duration_seconds_count").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "edgecd_spoke_render_cache_entries").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // SIGTERM: a clean exit.
    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the spoke did not exit within 60s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(http_get(admin, "/live").await.is_none());
}

#[test]
fn run_refuses_an_invalid_cluster_name() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_edgecd-spoke"))
        .args([
            "run",
            "--cluster-name",
            "Not_A_Name",
            "--kubeconfig",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cluster-name"), "{stderr}");
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/edgecd-spoke")
}

#[test]
fn the_charts_crd_is_the_one_the_binary_installs() {
    let in_chart = std::fs::read_to_string(chart().join("crds/applications.yaml")).unwrap();
    assert_eq!(
        in_chart,
        edgecd_spoke::crd::APPLICATION_CRD_YAML,
        "charts/edgecd-spoke/crds/applications.yaml drifted from crd::APPLICATION_CRD_YAML"
    );
}

#[test]
fn the_charts_plain_yaml_files_parse() {
    let chart_yaml = edgecd_render::yaml::load_one(
        &std::fs::read_to_string(chart().join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart_yaml["name"], "edgecd-spoke");
    assert_eq!(chart_yaml["apiVersion"], "v2");
    let values = edgecd_render::yaml::load_one(
        &std::fs::read_to_string(chart().join("values.yaml")).unwrap(),
    )
    .unwrap();
    for key in [
        "clusterName",
        "image",
        "hub",
        "rbac",
        "resources",
        "adminPort",
    ] {
        assert!(values.get(key).is_some(), "values.yaml lacks {key}");
    }
    assert_eq!(values["hub"]["bootstrapToken"]["key"], "token");
    assert_eq!(values["securityContext"]["readOnlyRootFilesystem"], true);
}
