//! A.5 cases 23–37: server-side apply.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::discovery::install_widget_crd;
use crate::support::*;

fn containers(o: &kube::api::DynamicObject) -> Vec<(String, String)> {
    o.data["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["image"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn with_containers(name: &str, cs: Value) -> Value {
    let mut d = deployment(name, "unused");
    d["spec"]["template"]["spec"]["containers"] = cs;
    d
}

#[tokio::test]
async fn a5_23_apply_creates_with_defaults() {
    let env = start().await;
    let (code, body) = raw(
        &env.client,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web?&fieldManager=spoke",
        Some("application/apply-patch+yaml"),
        Some(deployment("web", "nginx:1.27")),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let d: kube::api::DynamicObject = serde_json::from_value(body).unwrap();
    let spec = &d.data["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(
        managers(&d),
        vec![("spoke".to_string(), "Apply".to_string())]
    );
    let fields = fields_of(&d, "spoke").unwrap();
    assert!(
        fields["f:spec"].get("f:replicas").is_none(),
        "defaults are not owned: {fields}"
    );
    assert!(fields["f:spec"].get("f:strategy").is_none());
    assert_eq!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}})
    );
}

#[tokio::test]
async fn a5_24_apply_without_field_manager() {
    let env = start().await;
    let (code, body) = raw(
        &env.client,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        Some("application/apply-patch+yaml"),
        Some(deployment("web", "nginx:1")),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        "reason": "Invalid",
        "details": {"group": "meta.k8s.io", "kind": "PatchOptions",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]},
        "code": 422})
    );
}

#[tokio::test]
async fn a5_25_identical_apply_is_a_no_op() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
    let first = apply(&cms, "x", "spoke", cm.clone(), false).await.unwrap();
    let mut events = cms
        .watch(&WatchParams::default().timeout(10), &rv(&first).to_string())
        .await
        .unwrap()
        .boxed();
    let second = apply(&cms, "x", "spoke", cm, false).await.unwrap();
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    // A real change afterwards is the first event the watch sees.
    apply(&cms, "x", "spoke", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v2"}}), false).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Modified(o) => {
                assert_eq!(o.data["data"]["k"], "v2");
                break;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[tokio::test]
async fn a5_26_removed_label_is_pruned() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": labels}});
    apply(&cms, "x", "spoke", cm(json!({"a": "1", "b": "2"})), false)
        .await
        .unwrap();
    let after = apply(&cms, "x", "spoke", cm(json!({"a": "1"})), false)
        .await
        .unwrap();
    let labels = after.metadata.labels.clone().unwrap();
    assert_eq!(labels.len(), 1);
    assert!(labels.contains_key("a"));
    assert_eq!(
        fields_of(&after, "spoke").unwrap(),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}})
    );
}

#[tokio::test]
async fn a5_27_removed_replicas_fall_back_to_default() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let mut with_replicas = deployment("web", "nginx:1");
    with_replicas["spec"]["replicas"] = json!(3);
    let d = apply(&deploys, "web", "spoke", with_replicas, false)
        .await
        .unwrap();
    assert_eq!(d.data["spec"]["replicas"], 3);
    let d = apply(
        &deploys,
        "web",
        "spoke",
        deployment("web", "nginx:1"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(d.data["spec"]["replicas"], 1);
}

#[tokio::test]
async fn a5_28_shared_field_stays_with_remaining_owner() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": labels}});
    apply(&cms, "x", "m1", cm(json!({"x": "1", "own": "m1"})), false)
        .await
        .unwrap();
    apply(&cms, "x", "m2", cm(json!({"x": "1"})), false)
        .await
        .unwrap();
    let after = apply(&cms, "x", "m1", cm(json!({"own": "m1"})), false)
        .await
        .unwrap();
    assert_eq!(
        after
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("x")
            .map(String::as_str),
        Some("1")
    );
    let m1 = fields_of(&after, "m1").unwrap();
    assert!(m1["f:metadata"]["f:labels"].get("f:x").is_none());
    assert!(
        fields_of(&after, "m2").unwrap()["f:metadata"]["f:labels"]
            .get("f:x")
            .is_some()
    );
}

/// A Deployment whose simulated status writes are postponed, so that its resourceVersion stays still.
fn quiet_deployment(name: &str) -> Value {
    let mut d = deployment(name, "nginx:1");
    d["metadata"]["annotations"] = json!({"emulator.edgecd.io/delay-ms": "600000"});
    d
}

async fn edited_deployment(env: &Env) -> kube::api::Api<kube::api::DynamicObject> {
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    apply(&deploys, "web", "spoke", quiet_deployment("web"), false)
        .await
        .unwrap();
    deploys
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    deploys
}

#[tokio::test]
async fn a5_29_conflict_with_update_manager() {
    let env = start().await;
    let deploys = edited_deployment(&env).await;
    let before = deploys.get("web").await.unwrap();
    let mut config = quiet_deployment("web");
    config["spec"]["replicas"] = json!(3);
    let err = apply(&deploys, "web", "spoke", config, false)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using apps/v1: .spec.replicas"
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.reason, "FieldManagerConflict");
    assert_eq!(cause.message, "conflict with \"editor\" using apps/v1");
    assert_eq!(cause.field, ".spec.replicas");
    let after = deploys.get("web").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(after.data["spec"]["replicas"], 5);
}

#[tokio::test]
async fn a5_30_force_takes_ownership() {
    let env = start().await;
    let deploys = edited_deployment(&env).await;
    let mut config = deployment("web", "nginx:1");
    config["spec"]["replicas"] = json!(3);
    let after = apply(&deploys, "web", "spoke", config, true).await.unwrap();
    assert_eq!(after.data["spec"]["replicas"], 3);
    let editor_owns_replicas =
        fields_of(&after, "editor").is_some_and(|f| f["f:spec"].get("f:replicas").is_some());
    assert!(!editor_owns_replicas);
    assert!(
        !managers(&after).iter().any(|(m, _)| m == "editor"),
        "empty editor entry is removed: {:?}",
        managers(&after)
    );
}

#[tokio::test]
async fn a5_31_conflicts_with_other_applier() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": data});
    apply(
        &cms,
        "x",
        "other-applier",
        cm(json!({"a": "1", "b": "1"})),
        false,
    )
    .await
    .unwrap();
    let err = apply(&cms, "x", "spoke", cm(json!({"a": "2"})), false)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"other-applier\": .data.a"
    );
    let err = apply(&cms, "x", "spoke", cm(json!({"a": "2", "b": "2"})), false)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(
        status.message,
        "Apply failed with 2 conflicts: conflicts with \"other-applier\":\n- .data.a\n- .data.b"
    );
    assert_eq!(status.details.unwrap().causes.len(), 2);
}

#[tokio::test]
async fn a5_32_same_value_is_shared() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let mut config = deployment("web", "nginx:1");
    config["spec"]["replicas"] = json!(3);
    apply(&deploys, "web", "m1", config.clone(), false)
        .await
        .unwrap();
    let both = apply(&deploys, "web", "m2", json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}), false).await.unwrap();
    assert!(
        fields_of(&both, "m1").unwrap()["f:spec"]
            .get("f:replicas")
            .is_some()
    );
    assert!(
        fields_of(&both, "m2").unwrap()["f:spec"]
            .get("f:replicas")
            .is_some()
    );
}

#[tokio::test]
async fn a5_33_list_map_items_by_key() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let sidecar_only = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "sc:1"}]}}}});
    apply(
        &deploys,
        "web",
        "m1",
        with_containers("web", json!([{"name": "app", "image": "app:1"}])),
        false,
    )
    .await
    .unwrap();
    let both = apply(&deploys, "web", "m2", sidecar_only, false)
        .await
        .unwrap();
    assert_eq!(
        containers(&both),
        vec![
            ("app".into(), "app:1".into()),
            ("sidecar".into(), "sc:1".into())
        ]
    );
    let updated = apply(
        &deploys,
        "web",
        "m1",
        with_containers("web", json!([{"name": "app", "image": "app:2"}])),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        containers(&updated),
        vec![
            ("app".into(), "app:2".into()),
            ("sidecar".into(), "sc:1".into())
        ]
    );
    let m1 = fields_of(&updated, "m1").unwrap();
    assert_eq!(
        m1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["."],
        json!({})
    );
    // m1 moves its workload into a new container: `app` goes, `sidecar` stays.
    let moved = apply(
        &deploys,
        "web",
        "m1",
        with_containers("web", json!([{"name": "main", "image": "main:1"}])),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        containers(&moved),
        vec![
            ("sidecar".into(), "sc:1".into()),
            ("main".into(), "main:1".into())
        ]
    );
}

#[tokio::test]
async fn a5_34_key_with_default_protocol() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let first = apply(
        &deploys,
        "web",
        "spoke",
        with_containers(
            "web",
            json!([{"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]}]),
        ),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        first.data["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    let second = apply(&deploys, "web", "spoke", with_containers("web", json!([{"name": "app", "image": "a:1", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}])), false).await.unwrap();
    assert_eq!(
        second.data["spec"]["template"]["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
    let fields = fields_of(&second, "spoke").unwrap();
    let ports = &fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:ports"];
    assert!(
        ports
            .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{ports}"
    );
}

#[tokio::test]
async fn a5_35_crd_lists_are_atomic() {
    let env = start().await;
    install_widget_crd(&env.client).await;
    let widgets = api(&env.client, "example.com", "v1", "Widget", "default");
    let w = |items: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"items": items}});
    apply(&widgets, "w", "m1", w(json!(["a"])), false)
        .await
        .unwrap();
    let err = apply(&widgets, "w", "m2", w(json!(["b"])), false)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 409);
    assert!(status.message.contains(".spec.items"), "{}", status.message);
    let forced = apply(&widgets, "w", "m2", w(json!(["b"])), true)
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["items"], json!(["b"]));
}

#[tokio::test]
async fn a5_36_status_ignored_and_generation_rules() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let mut with_status = deployment("web", "nginx:1");
    with_status["metadata"]["annotations"] = json!({"emulator.edgecd.io/delay-ms": "600000"});
    with_status["status"] = json!({"replicas": 42});
    let d = apply(&deploys, "web", "spoke", with_status.clone(), false)
        .await
        .unwrap();
    assert!(
        d.data
            .get("status")
            .is_none_or(|s| s.get("replicas").is_none()),
        "status ignored on the main endpoint"
    );
    assert_eq!(d.metadata.generation, Some(1));
    with_status["metadata"]["labels"]["extra"] = json!("1");
    let d = apply(&deploys, "web", "spoke", with_status.clone(), false)
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "label change keeps generation"
    );
    with_status["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let d = apply(&deploys, "web", "spoke", with_status, false)
        .await
        .unwrap();
    assert_eq!(
        d.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
}

#[tokio::test]
async fn a5_37_selector_is_immutable() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    apply(
        &deploys,
        "web",
        "spoke",
        deployment("web", "nginx:1"),
        false,
    )
    .await
    .unwrap();
    let mut changed = deployment("web", "nginx:1");
    changed["spec"]["selector"]["matchLabels"]["tier"] = json!("x");
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = json!("x");
    let err = apply(&deploys, "web", "spoke", changed, false)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 422);
    assert!(status.is_invalid());
    assert_eq!(status.details.unwrap().causes[0].field, "spec.selector");
}
