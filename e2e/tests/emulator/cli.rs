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
    let yaml = serde_json::to_value(&wrong).unwrap();
    let _ = yaml;
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

    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
