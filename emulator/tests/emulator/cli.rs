//! The `kube-emulator` binary: three clusters, kubeconfigs on disk, `ready`, and 401 for a wrong token.

use std::process::Stdio;
use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

#[tokio::test]
async fn cli_serves_three_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", "3", "--out"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    for k in 1..=3 {
        assert!(dir.path().join(format!("cluster-{k}.kubeconfig")).exists());
    }

    let kubeconfig = Kubeconfig::read_from(dir.path().join("cluster-2.kubeconfig")).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.major, "1");
    let cms = api(&client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &configmap("only-in-2", json!({})))
        .await
        .unwrap();

    // Clusters are independent.
    let other = Kubeconfig::read_from(dir.path().join("cluster-3.kubeconfig")).unwrap();
    let other = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(other, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let other_cms: Api<kube::api::DynamicObject> = api(&other, "", "v1", "ConfigMap", "default");
    assert!(other_cms.get_opt("only-in-2").await.unwrap().is_none());

    // A wrong token gets 401 with a Status body.
    let mut wrong = kubeconfig;
    for auth in &mut wrong.auth_infos {
        if let Some(info) = auth.auth_info.as_mut() {
            info.token = Some("not-the-token".to_string().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(wrong, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let err = client.apiserver_version().await.unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 401);
            assert_eq!(status.reason, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let (code, body) = raw(&client, "GET", "/api/v1/namespaces", None, None).await;
    assert_eq!(code, 401);
    assert_eq!(body["kind"], "Status");

    // SIGTERM ends the process cleanly.
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

async fn rss_kib_with_clusters(n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args(["--clusters", &n.to_string(), "--out"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    // Let the stage engines settle (node status, bootstrap namespaces).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    rss
}

/// Measures the resident memory of an idle cluster: RSS with 100 clusters minus RSS with 1, over 99.
#[tokio::test]
async fn cli_memory_per_idle_cluster() {
    let one = rss_kib_with_clusters(1).await;
    let hundred = rss_kib_with_clusters(100).await;
    let per_cluster = hundred.saturating_sub(one) / 99;
    println!(
        "kube-emulator RSS: 1 cluster {one} KiB, 100 clusters {hundred} KiB, {per_cluster} KiB per idle cluster"
    );
    assert!(
        per_cluster < 1024,
        "an idle cluster should cost well under 1 MiB, got {per_cluster} KiB"
    );
}
