//! A.5 cases 19–22: merge patch, JSON patch, patches of missing objects, `force` on non-apply patches.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a5_19_merge_patch() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = obj(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}),
    );
    let created = cms
        .create(
            &PostParams {
                field_manager: Some("creator".into()),
                ..Default::default()
            },
            &cm,
        )
        .await
        .unwrap();
    let patched = cms
        .patch(
            "x",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"metadata": {"labels": {"a": null}}, "data": {"k": "v2"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched
            .metadata
            .labels
            .clone()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![("b".to_string(), "2".to_string())]
    );
    assert_eq!(patched.data["data"]["k"], "v2");
    assert!(rv(&patched) > rv(&created));
    assert!(managers(&patched).contains(&("editor".to_string(), "Update".to_string())));
    let editor = fields_of(&patched, "editor").unwrap();
    assert_eq!(editor, json!({"f:data": {"f:k": {}}}));
}

#[tokio::test]
async fn a5_20_json_patch() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &configmap("x", json!({"k": "v"})))
        .await
        .unwrap();
    let (code, body) = raw(
        &env.client,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        Some("application/json-patch+json"),
        Some(json!([{"op": "test", "path": "/data/k", "value": "nope"}])),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["kind"], "Status");
    // kube-core names its own json-patch version; let inference pick it.
    let patch = Patch::<()>::Json(
        serde_json::from_value(json!([{"op": "replace", "path": "/data/k", "value": "v2"}]))
            .unwrap(),
    );
    let patched = cms
        .patch("x", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(patched.data["data"]["k"], "v2");
}

#[tokio::test]
async fn a5_21_patch_missing_object_is_not_found() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    for (ct, body) in [
        ("application/merge-patch+json", json!({"data": {"a": "b"}})),
        (
            "application/json-patch+json",
            json!([{"op": "add", "path": "/data", "value": {}}]),
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"data": {"a": "b"}}),
        ),
    ] {
        let (code, body) = raw(
            &env.client,
            "PATCH",
            "/api/v1/namespaces/default/configmaps/nope",
            Some(ct),
            Some(body),
        )
        .await;
        assert_eq!(code, 404, "{ct}");
        assert_eq!(body["reason"], "NotFound");
    }
    assert!(cms.get_opt("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn a5_22_force_on_merge_patch_is_invalid() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap();
    let (code, body) = raw(
        &env.client,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x?&force=true",
        Some("application/merge-patch+json"),
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
}
