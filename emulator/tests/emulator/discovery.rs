//! A.5 cases 1–8: transport and discovery.

use std::time::Duration;

use kube::api::{PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope, oneshot};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a5_01_get_with_resource_version_and_bare_question_mark() {
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
    let (code, body) = raw(
        &env.client,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web?&resourceVersion=0",
        None,
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["name"], "web");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "q"}});
    let (code, _) = raw(
        &env.client,
        "POST",
        "/api/v1/namespaces/default/configmaps?",
        Some("application/json"),
        Some(cm),
    )
    .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn a5_02_version() {
    let env = start().await;
    let info = env.client.apiserver_version().await.unwrap();
    assert_eq!(info.major, "1");
    assert!(!info.minor.is_empty());
    assert!(info.git_version.starts_with("v1."));
}

#[tokio::test]
async fn a5_03_core_api_versions() {
    let env = start().await;
    let (code, body) = raw(&env.client, "GET", "/api", None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "APIVersions");
    assert_eq!(body["versions"], json!(["v1"]));
    assert!(body.get("apiVersion").is_none_or(|v| v == "v1"));
}

#[tokio::test]
async fn a5_04_group_list_and_legacy_discovery() {
    let env = start().await;
    let (code, body) = raw(&env.client, "GET", "/apis", None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "APIGroupList");
    for group in body["groups"].as_array().unwrap() {
        assert!(!group["versions"].as_array().unwrap().is_empty());
        assert!(group["preferredVersion"]["groupVersion"].is_string());
        for v in group["versions"].as_array().unwrap() {
            let path = format!("/apis/{}", v["groupVersion"].as_str().unwrap());
            assert_eq!(
                raw(&env.client, "GET", &path, None, None).await.0,
                200,
                "{path}"
            );
        }
    }
    let discovery = Discovery::new(env.client.clone()).run().await.unwrap();
    assert!(discovery.has_group("apps"));
    assert!(discovery.has_group(""));
}

#[tokio::test]
async fn a5_05_apps_v1_resource_list() {
    let env = start().await;
    let (code, body) = raw(&env.client, "GET", "/apis/apps/v1", None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["kind"], "APIResourceList");
    assert_eq!(body["groupVersion"], "apps/v1");
    let resources = body["resources"].as_array().unwrap();
    let find = |n: &str| resources.iter().find(|r| r["name"] == n).cloned().unwrap();
    let d = find("deployments");
    assert_eq!(d["namespaced"], true);
    assert_eq!(d["verbs"].as_array().unwrap().len(), 8);
    find("deployments/status");
    let scale = find("deployments/scale");
    assert_eq!(
        (
            scale["group"].as_str(),
            scale["version"].as_str(),
            scale["kind"].as_str()
        ),
        (Some("autoscaling"), Some("v1"), Some("Scale"))
    );
    let discovery = Discovery::new(env.client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .unwrap();
    assert_eq!(ar.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    let subs: Vec<String> = caps
        .subresources
        .iter()
        .map(|(r, _)| r.plural.clone())
        .collect();
    assert!(
        subs.contains(&"status".to_string()) && subs.contains(&"scale".to_string()),
        "{subs:?}"
    );
}

#[tokio::test]
async fn a5_06_aggregated_discovery_matches_legacy() {
    let env = start().await;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, ct, core) = get_accept(&env.client, "/api", accept).await;
    assert_eq!(code, 200);
    assert!(ct.contains("as=APIGroupDiscoveryList"));
    assert_eq!(core["kind"], "APIGroupDiscoveryList");
    assert_eq!(core["items"][0]["metadata"]["name"], "");
    let (_, _, groups) = get_accept(&env.client, "/apis", accept).await;
    assert!(!groups["items"].as_array().unwrap().is_empty());

    let legacy = Discovery::new(env.client.clone()).run().await.unwrap();
    let aggregated = Discovery::new(env.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let mut legacy_groups: Vec<String> = legacy.groups().map(|g| g.name().to_string()).collect();
    let mut aggregated_groups: Vec<String> =
        aggregated.groups().map(|g| g.name().to_string()).collect();
    legacy_groups.sort();
    aggregated_groups.sort();
    assert_eq!(legacy_groups, aggregated_groups);
    for group in legacy.groups() {
        let other = aggregated.get(group.name()).unwrap();
        let mut a: Vec<(String, bool)> = group
            .recommended_resources()
            .into_iter()
            .map(|(r, c)| (r.plural, c.scope == Scope::Namespaced))
            .collect();
        let mut b: Vec<(String, bool)> = other
            .recommended_resources()
            .into_iter()
            .map(|(r, c)| (r.plural, c.scope == Scope::Namespaced))
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "group {}", group.name());
    }
}

#[tokio::test]
async fn a5_07_unknown_group_is_not_found() {
    let env = start().await;
    let (code, body) = raw(
        &env.client,
        "GET",
        "/apis/nonexistent.example.com/v1",
        None,
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["reason"], "NotFound");
    let err = oneshot::pinned_kind(
        &env.client,
        &GroupVersionKind::gvk("nonexistent.example.com", "v1", "Thing"),
    )
    .await
    .unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 404),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "items": {"type": "array", "items": {"type": "string"}},
                        "size": {"type": "integer"}
                    }},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }]
        }
    })
}

/// Creates the Widget CRD and waits until it is served.
pub async fn install_widget_crd(client: &kube::Client) {
    let crds = api_all(
        client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    crds.create(&PostParams::default(), &obj(widget_crd()))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        let (code, _) = raw(client, "GET", "/apis/example.com/v1", None, None).await;
        (code == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a5_08_crd_becomes_established_and_served() {
    let env = start().await;
    assert_eq!(
        raw(&env.client, "GET", "/apis/example.com/v1", None, None)
            .await
            .0,
        404
    );
    install_widget_crd(&env.client).await;
    let crds = api_all(
        &env.client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    let crd = crds.get("widgets.example.com").await.unwrap();
    let established = crd.data["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established);
    let legacy = Discovery::new(env.client.clone()).run().await.unwrap();
    assert!(legacy.has_group("example.com"));
    let aggregated = Discovery::new(env.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(aggregated.has_group("example.com"));
    let widgets = api(&env.client, "example.com", "v1", "Widget", "default");
    let created = apply(&widgets, "w1", "spoke", json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}}), false).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let got = widgets.get("w1").await.unwrap();
    assert_eq!(got.data["spec"]["size"], 1);
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &kube::api::Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
    assert_eq!(
        widgets.list(&Default::default()).await.unwrap().items.len(),
        1
    );
    widgets.delete("w1", &Default::default()).await.unwrap();
    assert!(widgets.get_opt("w1").await.unwrap().is_none());
}
