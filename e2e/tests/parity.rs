//! Emulator parity regression cases: each difference the real API server revealed, asserted the same way on the emulator and on a real control plane (testkit's `RealCluster`; the real half says SKIPPED where Go is absent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_testkit::{RealCluster, realkube};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// Runs `case` on the emulator (honouring progress deadlines in full), then on a real control plane.
async fn on_both<F>(case: impl Fn(Client) -> F)
where
    F: Future<Output = ()>,
{
    let emu = KubeEmulator::start(EmulatorConfig {
        stage_delay: Duration::from_millis(50),
        max_progress_deadline: None,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    eprintln!("-- on the emulator");
    case(emu.client().await.unwrap()).await;
    if std::env::var_os("EDGECD_REALKUBE_BIN").is_none() && !realkube::go_available() {
        eprintln!("SKIPPED (real server): Go is not installed, so realkube cannot be built");
        return;
    }
    let real = tokio::task::spawn_blocking(RealCluster::start)
        .await
        .unwrap()
        .unwrap();
    eprintln!("-- on a real server");
    case(real.client().await.unwrap()).await;
}

fn progressing(d: &Deployment) -> Option<(String, String)> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Progressing")
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// The deployment controller reports `ProgressDeadlineExceeded` only once `progressDeadlineSeconds`
/// have passed without progress; until then the Deployment is `Progressing` (the emulator used to
/// report the deadline exceeded as soon as its pods crash-looped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_exceeded_only_after_the_deadline() {
    on_both(|client| async move {
        let deploys: Api<Deployment> = Api::namespaced(client, "default");
        let d: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "failing"},
            "spec": {
                "replicas": 1,
                "progressDeadlineSeconds": 4,
                "selector": {"matchLabels": {"app": "failing"}},
                "template": {
                    "metadata": {"labels": {"app": "failing"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.example/fail:1"}]},
                },
            },
        }))
        .unwrap();
        let created = Instant::now();
        deploys.create(&PostParams::default(), &d).await.unwrap();
        let mut seen_progressing = false;
        loop {
            let d = deploys.get("failing").await.unwrap();
            match progressing(&d) {
                Some((status, _)) if status == "True" => seen_progressing = true,
                Some((status, reason)) if status == "False" => {
                    assert_eq!(reason, "ProgressDeadlineExceeded");
                    let after = created.elapsed();
                    assert!(
                        after >= Duration::from_secs(3),
                        "ProgressDeadlineExceeded after {after:?}, before the 4 s deadline"
                    );
                    break;
                }
                _ => {}
            }
            assert!(
                created.elapsed() < Duration::from_secs(40),
                "no ProgressDeadlineExceeded within 40 s: {:?}",
                d.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(seen_progressing, "Progressing=True before the deadline");
        // And it stays exceeded (the emulator once restarted the rollout's clock from there).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let d = deploys.get("failing").await.unwrap();
        assert_eq!(
            progressing(&d),
            Some(("False".into(), "ProgressDeadlineExceeded".into()))
        );
    })
    .await;
}

/// managedFields sent with an update replace the live ones (kubectl's client-side to server-side apply
/// migration relies on it); the emulator used to keep the live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_fields_sent_with_an_update_replace_the_live_ones() {
    on_both(|client| async move {
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": {"x": "1"}});
        cms.patch("owned", &PatchParams::apply("first"), &Patch::Apply(&cm))
            .await
            .unwrap();
        let mut live = serde_json::to_value(cms.get("owned").await.unwrap()).unwrap();
        live["metadata"]["managedFields"] = json!([{
            "manager": "second", "operation": "Update", "apiVersion": "v1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}},
        }]);
        let replaced = cms
            .replace("owned", &PostParams::default(), &serde_json::from_value(live).unwrap())
            .await
            .unwrap();
        let managers: Vec<String> = replaced
            .metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.manager.clone())
            .collect();
        assert_eq!(managers, ["second"]);
    })
    .await;
}

/// A create body in a media type the server does not decode is answered 415 with the real message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_body_media_type_is_415() {
    on_both(|client| async move {
        let req = http::Request::post("/api/v1/namespaces/default/configmaps")
            .header("Content-Type", "application/x-unknown")
            .body(b"{}".to_vec())
            .unwrap();
        let err = client.request::<Value>(req).await.unwrap_err();
        let kube::Error::Api(status) = err else {
            panic!("expected an API error, got {err:?}");
        };
        assert_eq!(status.code, 415);
        assert_eq!(status.reason, "UnsupportedMediaType");
        assert_eq!(
            status.message,
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    })
    .await;
}
