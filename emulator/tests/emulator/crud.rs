//! A.5 cases 9–18: CRUD, errors, selectors and pagination.

use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a5_09_create_sets_identity_and_managed_fields() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let before = rv(&cms
        .create(&PostParams::default(), &configmap("before", json!({})))
        .await
        .unwrap());
    let pp = PostParams {
        field_manager: Some("spoke".into()),
        ..Default::default()
    };
    let (code, body) = raw(&env.client, "POST", "/api/v1/namespaces/default/configmaps?&fieldManager=spoke", Some("application/json"),
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v"}}))).await;
    assert_eq!(code, 201);
    let created: kube::api::DynamicObject = serde_json::from_value(body).unwrap();
    assert!(
        created
            .metadata
            .uid
            .as_deref()
            .is_some_and(|u| !u.is_empty())
    );
    assert!(rv(&created) > before);
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(
        managers(&created),
        vec![("spoke".to_string(), "Update".to_string())]
    );
    let again = cms.create(&pp, &configmap("y", json!({}))).await.unwrap();
    assert!(rv(&again) > rv(&created));
}

#[tokio::test]
async fn a5_10_create_twice_already_exists() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap();
    let err = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert!(status.is_already_exists());
    assert_eq!(status.code, 409);
    assert_eq!(status.message, "configmaps \"x\" already exists");
    let details = status.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("x", "configmaps")
    );
}

#[tokio::test]
async fn a5_11_get_missing_not_found() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    assert!(cms.get_opt("missing").await.unwrap().is_none());
    let (code, body) = raw(
        &env.client,
        "GET",
        "/api/v1/namespaces/default/configmaps/missing",
        None,
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "configmaps \"missing\" not found", "reason": "NotFound",
        "details": {"name": "missing", "kind": "configmaps"}, "code": 404})
    );
}

#[tokio::test]
async fn a5_12_missing_namespace() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "ghost");
    let err = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"ghost\" not found");
    let err = apply(
        &cms,
        "x",
        "spoke",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        false,
    )
    .await
    .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"ghost\" not found");
}

#[tokio::test]
async fn a5_13_invalid_name() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let err = cms
        .create(&PostParams::default(), &configmap("Bad_Name", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert!(status.is_invalid());
    assert_eq!(status.code, 422);
    assert!(
        status.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        status.message
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldValueInvalid", "metadata.name")
    );
}

#[tokio::test]
async fn a5_14_stale_resource_version_conflict() {
    let env = start().await;
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let created = apply(
        &deploys,
        "web",
        "spoke",
        quiet(deployment("web", "nginx:1")),
        false,
    )
    .await
    .unwrap();
    let mut stale = created.clone();
    apply(
        &deploys,
        "web",
        "spoke",
        quiet(deployment("web", "nginx:2")),
        false,
    )
    .await
    .unwrap();
    stale.data["spec"]["replicas"] = json!(4);
    let err = deploys
        .replace("web", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let current = deploys.get("web").await.unwrap();
    let mut fresh = current.clone();
    fresh.data["spec"]["replicas"] = json!(4);
    let replaced = deploys
        .replace("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(replaced.data["spec"]["replicas"], 4);
}

#[tokio::test]
async fn a5_15_cluster_scoped_create_and_bad_path() {
    let env = start().await;
    let (code, body) = raw(
        &env.client,
        "POST",
        "/api/v1/namespaces",
        Some("application/json"),
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(body["status"]["phase"], "Active");
    let (code, _) = raw(
        &env.client,
        "GET",
        "/api/v1/namespaces/a/namespaces",
        None,
        None,
    )
    .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn a5_16_empty_list_shape() {
    let env = start().await;
    let (code, body) = raw(
        &env.client,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        None,
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "DeploymentList");
    assert_eq!(body["apiVersion"], "apps/v1");
    assert!(
        body["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(body["items"], json!([]));
}

#[tokio::test]
async fn a5_17_selectors_and_all_namespaces() {
    let env = start().await;
    create_ns(&env.client, "other").await;
    for (ns, name, labels) in [
        ("default", "web", json!({"app": "web", "tier": "a"})),
        (
            "default",
            "db",
            json!({"app": "db", "tier": "b", "canary": "true"}),
        ),
        ("default", "cache", json!({"app": "cache", "tier": "c"})),
        ("other", "web2", json!({"app": "web", "tier": "b"})),
    ] {
        let cms = api(&env.client, "", "v1", "ConfigMap", ns);
        let cm = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}),
        );
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let names = |l: kube::api::ObjectList<kube::api::DynamicObject>| -> Vec<String> {
        let mut n: Vec<String> = l
            .items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        vec!["web"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier in (a,b),!canary"))
                .await
                .unwrap()
        ),
        vec!["web"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=web"))
                .await
                .unwrap()
        ),
        vec!["web"]
    );
    let all = api_all(&env.client, "", "v1", "ConfigMap");
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
        ),
        vec!["web", "web2"]
    );
    let deploys = api(&env.client, "apps", "v1", "Deployment", "other");
    apply(&deploys, "d", "spoke", deployment("d", "nginx:1"), false)
        .await
        .unwrap();
    let (code, body) = raw(&env.client, "GET", "/apis/apps/v1/deployments", None, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["items"][0]["metadata"]["namespace"], "other");
}

#[tokio::test]
async fn a5_18_pagination() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    for i in 0..5 {
        let cm = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("p{i}"), "labels": {"page": "yes"}}}),
        );
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let first = cms
        .list(&ListParams::default().labels("page=yes").limit(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    assert!(!token.is_empty());
    let second = cms
        .list(
            &ListParams::default()
                .labels("page=yes")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    let third = cms
        .list(
            &ListParams::default()
                .labels("page=yes")
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(third.items.len(), 1);
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );

    let events: Vec<_> = watcher(
        cms.clone(),
        watcher::Config::default().labels("page=yes").page_size(2),
    )
    .take_while(|e| futures::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
    .try_collect()
    .await
    .unwrap();
    let applies = events
        .iter()
        .filter(|e| matches!(e, watcher::Event::InitApply(_)))
        .count();
    assert_eq!(applies, 5);
}
