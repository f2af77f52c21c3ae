//! A.5 cases 38–42: deletion, finalizers, propagation policies and dry-run deletes.

use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a5_38_delete_returns_status_and_emits_deleted() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let created = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap();
    let mut events = cms
        .watch(
            &WatchParams::default().timeout(10),
            &rv(&created).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let (code, body) = raw(
        &env.client,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/x",
        Some("application/json"),
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["details"]["name"], "x");
    assert_eq!(body["details"]["kind"], "configmaps");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Deleted(o) => {
                assert!(rv(&o) > rv(&created));
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(cms.get_opt("x").await.unwrap().is_none());
    cms.create(&PostParams::default(), &configmap("y", json!({})))
        .await
        .unwrap();
    let either = cms.delete("y", &DeleteParams::default()).await.unwrap();
    assert!(either.is_right(), "a Status for configmaps");
}

#[tokio::test]
async fn a5_39_delete_pod_returns_object_then_pod_goes() {
    let env = start().await;
    let pods = api(&env.client, "", "v1", "Pod", "default");
    let pod = obj(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}),
    );
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let either = pods.delete("p", &DeleteParams::default()).await.unwrap();
    let returned = either.left().expect("the pod object");
    assert_eq!(returned.metadata.name.as_deref(), Some("p"));
    assert!(returned.metadata.deletion_timestamp.is_some());
    eventually(Duration::from_secs(5), || async {
        pods.get_opt("p").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a5_40_finalizers_block_deletion() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let cm = obj(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "finalizers": ["example.com/x"]}}),
    );
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut events = cms
        .watch(
            &WatchParams::default().timeout(10),
            &rv(&created).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let deleted = cms
        .delete("x", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("object while finalizers remain");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    let mut next = async || loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Bookmark(_) => {}
            other => return other,
        }
    };
    assert!(matches!(next().await, WatchEvent::Modified(_)));
    assert!(cms.get_opt("x").await.unwrap().is_some());
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(matches!(next().await, WatchEvent::Deleted(_)));
    assert!(cms.get_opt("x").await.unwrap().is_none());
}

async fn ready_deployment(
    env: &Env,
    name: &str,
) -> (kube::api::Api<kube::api::DynamicObject>, String) {
    let deploys = api(&env.client, "apps", "v1", "Deployment", "default");
    let mut config = deployment(name, "nginx:1");
    config["spec"]["replicas"] = json!(2);
    let d = apply(&deploys, name, "spoke", config, false).await.unwrap();
    let uid = d.metadata.uid.clone().unwrap();
    let pods = api(&env.client, "", "v1", "Pod", "default");
    let selector = format!("app={name}");
    eventually(Duration::from_secs(5), || async {
        (pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items
            .len()
            == 2)
            .then_some(())
    })
    .await;
    (deploys, uid)
}

fn owned_by(o: &kube::api::DynamicObject, uid: &str) -> bool {
    o.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid)
}

#[tokio::test]
async fn a5_41_propagation_policies() {
    let env = start().await;
    let rss = api(&env.client, "apps", "v1", "ReplicaSet", "default");
    let pods = api(&env.client, "", "v1", "Pod", "default");

    // Foreground: the owner stays with a foregroundDeletion finalizer until dependents are gone.
    let (deploys, uid) = ready_deployment(&env, "fg").await;
    let returned = deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .expect("object");
    assert!(returned.metadata.deletion_timestamp.is_some());
    assert_eq!(
        returned.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    eventually(Duration::from_secs(10), || async {
        deploys.get_opt("fg").await.unwrap().is_none().then_some(())
    })
    .await;
    let leftovers = rss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| owned_by(r, &uid))
        .count();
    assert_eq!(leftovers, 0);
    eventually(Duration::from_secs(10), || async {
        pods.list(&ListParams::default().labels("app=fg"))
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;

    // Background: the owner goes at once, dependents afterwards.
    let (deploys, uid) = ready_deployment(&env, "bg").await;
    deploys
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deploys.get_opt("bg").await.unwrap().is_none());
    eventually(Duration::from_secs(10), || async {
        let rs_left = rss
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|r| owned_by(r, &uid));
        let pods_left = !pods
            .list(&ListParams::default().labels("app=bg"))
            .await
            .unwrap()
            .items
            .is_empty();
        (!rs_left && !pods_left).then_some(())
    })
    .await;

    // Orphan: dependents remain, without the owner reference.
    let (deploys, uid) = ready_deployment(&env, "or").await;
    deploys.delete("or", &DeleteParams::orphan()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(deploys.get_opt("or").await.unwrap().is_none());
    let orphans: Vec<_> = rss
        .list(&ListParams::default().labels("app=or"))
        .await
        .unwrap()
        .items;
    assert_eq!(orphans.len(), 1);
    assert!(!owned_by(&orphans[0], &uid));
    assert_eq!(
        pods.list(&ListParams::default().labels("app=or"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn a5_42_dry_run_delete() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let created = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap();
    let mut events = cms
        .watch(
            &WatchParams::default().timeout(1),
            &rv(&created).to_string(),
        )
        .await
        .unwrap()
        .boxed();
    let (code, body) = raw(
        &env.client,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/x",
        Some("application/json"),
        Some(json!({"dryRun": ["All"]})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    let still = cms.get("x").await.unwrap();
    assert_eq!(
        still.metadata.resource_version,
        created.metadata.resource_version
    );
    while let Some(event) = events.next().await {
        match event.unwrap() {
            WatchEvent::Bookmark(_) => {}
            other => panic!("dry-run delete emitted {other:?}"),
        }
    }
}
