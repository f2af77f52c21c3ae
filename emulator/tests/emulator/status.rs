//! A.5 cases 49–50: dry-run apply and the simulated status engine (with fault injection and pod logs).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{
    Api, DynamicObject, ListParams, LogParams, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a5_49_dry_run_apply() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let live = apply(
        &deploys,
        "web",
        "spoke",
        quiet(deployment("web", "nginx:1")),
        false,
    )
    .await
    .unwrap();
    let mut events = deploys
        .watch(&WatchParams::default().timeout(1), &rv(&live).to_string())
        .await
        .unwrap()
        .boxed();
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let probe_before = rv(&cms
        .create(&PostParams::default(), &configmap("probe1", json!({})))
        .await
        .unwrap());

    let mut config = quiet(deployment("web", "nginx:2"));
    config["spec"]["replicas"] = json!(4);
    let (code, body) = raw(&env.client, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web?&dryRun=All&fieldManager=spoke&force=true",
        Some("application/apply-patch+yaml"), Some(config.clone())).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["replicas"], 4);
    assert_eq!(
        body["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(body["spec"]["revisionHistoryLimit"], 10, "defaulted");
    let after = deploys.get("web").await.unwrap();
    assert_eq!(
        after.data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );
    let probe_after = rv(&cms
        .create(&PostParams::default(), &configmap("probe2", json!({})))
        .await
        .unwrap());
    assert_eq!(
        probe_after,
        probe_before + 1,
        "dry-run did not consume a resourceVersion"
    );

    // A dry run that would conflict still fails.
    deploys
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    let (code, _) = raw(
        &env.client,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web?&dryRun=All&fieldManager=spoke",
        Some("application/apply-patch+yaml"),
        Some(config),
    )
    .await;
    assert_eq!(code, 409);
    let mut seen = Vec::new();
    while let Some(e) = events.next().await {
        if let WatchEvent::Modified(o) | WatchEvent::Added(o) = e.unwrap() {
            seen.push(
                o.data["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    assert!(
        !seen.iter().any(|i| i == "nginx:2"),
        "dry-run emitted no event: {seen:?}"
    );
}

/// Argo CD-style health of a workload (A.4.3), enough for the kinds under test.
fn health(kind: &str, o: &Value) -> &'static str {
    let generation = o["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = o["status"]["observedGeneration"].as_i64().unwrap_or(0);
    let cond = |t: &str| {
        o["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t).cloned())
    };
    let n = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    match kind {
        "Deployment" => {
            if generation > observed {
                return "Progressing";
            }
            if cond("Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
                return "Degraded";
            }
            let replicas = n("/spec/replicas");
            if n("/status/updatedReplicas") < replicas
                || n("/status/availableReplicas") < n("/status/updatedReplicas")
            {
                return "Progressing";
            }
            "Healthy"
        }
        "StatefulSet" => {
            if observed == 0
                || generation > observed
                || n("/status/readyReplicas") < n("/spec/replicas")
            {
                return "Progressing";
            }
            if o["status"]["updateRevision"] != o["status"]["currentRevision"] {
                return "Progressing";
            }
            "Healthy"
        }
        "DaemonSet" => {
            let desired = n("/status/desiredNumberScheduled");
            if generation > observed
                || n("/status/updatedNumberScheduled") < desired
                || n("/status/numberAvailable") < desired
            {
                return "Progressing";
            }
            "Healthy"
        }
        "Job" => {
            if cond("Failed").is_some_and(|c| c["status"] == "True") {
                "Degraded"
            } else if cond("Complete").is_some_and(|c| c["status"] == "True") {
                "Healthy"
            } else {
                "Progressing"
            }
        }
        "PersistentVolumeClaim" => match o["status"]["phase"].as_str() {
            Some("Bound") => "Healthy",
            Some("Pending") => "Progressing",
            _ => "Unknown",
        },
        "Service" | "Ingress" => {
            if o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
            {
                "Healthy"
            } else {
                "Progressing"
            }
        }
        _ => "Unknown",
    }
}

async fn wait_health(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
    want: &str,
) -> DynamicObject {
    eventually(Duration::from_secs(10), || async {
        let o = api.get(name).await.unwrap();
        let v = serde_json::to_value(&o).unwrap();
        (health(kind, &v) == want).then_some(o)
    })
    .await
}

fn pod_template_workload(kind: &str, name: &str, image: &str) -> Value {
    let mut d = deployment(name, image);
    d["kind"] = json!(kind);
    d
}

#[tokio::test]
async fn a5_50_stage_engine() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let mut config = deployment("web", "nginx:1");
    config["spec"]["replicas"] = json!(3);
    apply(&deploys, "web", "spoke", config.clone(), false)
        .await
        .unwrap();
    let typed: Api<Deployment> = Api::namespaced(env.client.clone(), "default");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(typed.clone(), "web", conditions::is_deployment_completed()),
    )
    .await
    .unwrap()
    .unwrap();
    let d = wait_health(&deploys, "Deployment", "web", "Healthy").await;
    assert_eq!(d.data["status"]["readyReplicas"], 3);
    assert_eq!(d.data["status"]["availableReplicas"], 3);
    let rss = api(&env.client, "apps", "v1", "ReplicaSet", "default");
    let rs = rss
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(rs.len(), 1);
    assert_eq!(
        rs[0].metadata.owner_references.as_ref().unwrap()[0].kind,
        "Deployment"
    );
    let pods = api(&env.client, "", "v1", "Pod", "default");
    let web_pods = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(web_pods.len(), 3);
    assert!(
        web_pods
            .iter()
            .all(|p| p.data["status"]["phase"] == "Running")
    );
    let pod_name = web_pods[0].metadata.name.clone().unwrap();
    let typed_pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(env.client.clone(), "default");
    let logs = typed_pods
        .logs(&pod_name, &LogParams::default())
        .await
        .unwrap();
    assert!(logs.contains("started"), "{logs}");

    // An image change bumps generation; health is Progressing until the status catches up.
    config["metadata"]["annotations"] = json!({"emulator.edgecd.io/delay-ms": "400"});
    config["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let changed = apply(&deploys, "web", "spoke", config.clone(), false)
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(
        health("Deployment", &serde_json::to_value(&changed).unwrap()),
        "Progressing"
    );
    let d = wait_health(&deploys, "Deployment", "web", "Healthy").await;
    assert_eq!(d.data["status"]["observedGeneration"], 2);
    assert_eq!(
        rss.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .len(),
        2,
        "old RS kept at zero"
    );

    // Fault injection: crash-looping pods and ProgressDeadlineExceeded.
    let mut failing = deployment("broken", "nginx:1");
    failing["metadata"]["labels"]["emulator.edgecd.io/fault"] = json!("crashloop");
    apply(&deploys, "broken", "spoke", failing, false)
        .await
        .unwrap();
    let d = wait_health(&deploys, "Deployment", "broken", "Degraded").await;
    let progressing = d.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    let broken_pods = pods
        .list(&ListParams::default().labels("app=broken"))
        .await
        .unwrap()
        .items;
    let waiting =
        &broken_pods[0].data["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
    assert_eq!(waiting, "CrashLoopBackOff");
    apply(
        &deploys,
        "img",
        "spoke",
        deployment("img", "registry.example/fail-app:1"),
        false,
    )
    .await
    .unwrap();
    wait_health(&deploys, "Deployment", "img", "Degraded").await;

    // StatefulSet and DaemonSet.
    let stss = api(&env.client, "apps", "v1", "StatefulSet", "default");
    let mut sts = pod_template_workload("StatefulSet", "db", "postgres:16");
    sts["spec"]["replicas"] = json!(2);
    sts["spec"]["serviceName"] = json!("db");
    apply(&stss, "db", "spoke", sts, false).await.unwrap();
    wait_health(&stss, "StatefulSet", "db", "Healthy").await;
    assert!(
        pods.get_opt("db-0").await.unwrap().is_some()
            && pods.get_opt("db-1").await.unwrap().is_some()
    );
    let dss = api(&env.client, "apps", "v1", "DaemonSet", "default");
    apply(
        &dss,
        "agent",
        "spoke",
        pod_template_workload("DaemonSet", "agent", "agent:1"),
        false,
    )
    .await
    .unwrap();
    wait_health(&dss, "DaemonSet", "agent", "Healthy").await;
    let mut bad_ds = pod_template_workload("DaemonSet", "bad-agent", "agent:1");
    bad_ds["spec"]["template"]["metadata"]["labels"]["emulator.edgecd.io/fault"] =
        json!("crashloop");
    apply(&dss, "bad-agent", "spoke", bad_ds, false)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(
            "DaemonSet",
            &serde_json::to_value(dss.get("bad-agent").await.unwrap()).unwrap()
        ),
        "Progressing"
    );

    // Jobs: completion and failure.
    let jobs = api(&env.client, "batch", "v1", "Job", "default");
    let job = |name: &str, image: &str| {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": image}]}}}})
    };
    apply(&jobs, "ok", "spoke", job("ok", "busybox:1"), false)
        .await
        .unwrap();
    let typed_jobs: Api<Job> = Api::namespaced(env.client.clone(), "default");
    tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(typed_jobs, "ok", conditions::is_job_completed()),
    )
    .await
    .unwrap()
    .unwrap();
    apply(&jobs, "bad", "spoke", job("bad", "busybox-fail:1"), false)
        .await
        .unwrap();
    wait_health(&jobs, "Job", "bad", "Degraded").await;

    // PVC, LoadBalancer Service, Ingress.
    let pvcs = api(&env.client, "", "v1", "PersistentVolumeClaim", "default");
    apply(
        &pvcs,
        "data",
        "spoke",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        false,
    )
    .await
    .unwrap();
    let pvc = wait_health(&pvcs, "PersistentVolumeClaim", "data", "Healthy").await;
    assert_eq!(pvc.data["status"]["capacity"]["storage"], "1Gi");
    let svcs = api(&env.client, "", "v1", "Service", "default");
    apply(
        &svcs,
        "lb",
        "spoke",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        false,
    )
    .await
    .unwrap();
    let svc = wait_health(&svcs, "Service", "lb", "Healthy").await;
    assert!(svc.data["status"]["loadBalancer"]["ingress"][0]["ip"].is_string());
    let ings = api(&env.client, "networking.k8s.io", "v1", "Ingress", "default");
    apply(&ings, "web", "spoke", json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"host": "web.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "lb", "port": {"number": 80}}}}]}}]}}), false).await.unwrap();
    wait_health(&ings, "Ingress", "web", "Healthy").await;
}
