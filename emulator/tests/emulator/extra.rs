//! Behaviour beyond the A.5 list: selector transitions on watches, namespace cascade, bad requests,
//! subresources, and `TestClusters`.

use std::time::Duration;

use edgecd_kube_emulator::status::ApiError;
use edgecd_kube_emulator::{EmulatorConfig, InjectedError, KubeEmulator, TestClusters};
use futures::StreamExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn watch_reports_objects_entering_and_leaving_a_selector() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let created = cms
        .create(&PostParams::default(), &obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app": "other"}}})))
        .await
        .unwrap();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?&watch=true&labelSelector=app%3Dweb&resourceVersion={}",
        rv(&created)
    );
    let (_, mut lines) = raw_watch(&env.client, &path).await;
    let set_label = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    cms.patch("x", &PatchParams::default(), &set_label("web"))
        .await
        .unwrap();
    let entered = next_line_matching(&mut lines, Duration::from_secs(5), |_| true).await;
    assert_eq!(entered["type"], "ADDED");
    cms.patch("x", &PatchParams::default(), &set_label("gone"))
        .await
        .unwrap();
    let left = next_line_matching(&mut lines, Duration::from_secs(5), |_| true).await;
    assert_eq!(left["type"], "DELETED");
}

#[tokio::test]
async fn namespace_deletion_cascades_and_blocks_new_content() {
    let env = start().await;
    create_ns(&env.client, "doomed").await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "doomed");
    cms.create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .unwrap();
    // A finalizer keeps the namespace terminating until it is removed.
    let held = obj(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    );
    cms.create(&PostParams::default(), &held).await.unwrap();
    let deploys = api(&env.client, "apps", "v1", "Deployment", "doomed");
    apply(
        &deploys,
        "web",
        "spoke",
        deployment("web", "nginx:1"),
        false,
    )
    .await
    .unwrap();
    let nss = api_all(&env.client, "", "v1", "Namespace");
    let terminating = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("namespace object");
    assert_eq!(terminating.data["status"]["phase"], "Terminating");
    let err = cms
        .create(&PostParams::default(), &configmap("late", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains("because it is being terminated"),
        "{}",
        status.message
    );
    eventually(Duration::from_secs(5), || async {
        cms.get_opt("a").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        nss.get_opt("doomed").await.unwrap().is_some(),
        "waits for the finalizer"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), || async {
        nss.get_opt("doomed").await.unwrap().is_none().then_some(())
    })
    .await;
    let all_cms = api_all(&env.client, "", "v1", "ConfigMap");
    assert!(
        all_cms
            .list(&ListParams::default().fields("metadata.namespace=doomed"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let all_pods = api_all(&env.client, "", "v1", "Pod");
    assert!(
        all_pods
            .list(&ListParams::default().fields("metadata.namespace=doomed"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// Method, path, content type, body, expected code.
type Case = (
    &'static str,
    String,
    Option<&'static str>,
    Option<Value>,
    u16,
);

#[tokio::test]
async fn bad_requests_get_status_errors() {
    let env = start().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cases: Vec<Case> = vec![
        (
            "POST",
            cms.to_string(),
            Some("application/json"),
            Some(json!("not an object")),
            400,
        ),
        (
            "POST",
            cms.to_string(),
            Some("application/json"),
            Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})),
            400,
        ),
        (
            "POST",
            cms.to_string(),
            Some("application/json"),
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "nope"})),
            422,
        ),
        (
            "GET",
            format!("{cms}?labelSelector=a%20in%20b"),
            None,
            None,
            400,
        ),
        ("GET", format!("{cms}?continue=garbage"), None, None, 400),
        ("GET", format!("{cms}?limit=abc"), None, None, 400),
        (
            "GET",
            format!("{cms}?watch=true&resourceVersion=abc"),
            None,
            None,
            400,
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/widgets".to_string(),
            None,
            None,
            404,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/a/b/c".to_string(),
            None,
            None,
            404,
        ),
        (
            "PATCH",
            format!("{cms}/x"),
            Some("text/plain"),
            Some(json!({})),
            415,
        ),
        (
            "PUT",
            format!("{cms}/x"),
            Some("application/json"),
            Some(json!([1, 2])),
            400,
        ),
        (
            "DELETE",
            format!("{cms}/x"),
            Some("application/json"),
            Some(json!({"propagationPolicy": "Sideways"})),
            404,
        ),
        (
            "POST",
            format!("{cms}/x"),
            Some("application/json"),
            Some(json!({})),
            405,
        ),
        ("GET", "/clusters/nope/api".to_string(), None, None, 404),
        (
            "POST",
            "/apis/apps/v1/namespaces/default/deployments".to_string(),
            Some("application/json"),
            Some(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                "spec": {"selector": "x", "template": {"metadata": "y", "spec": {"containers": [{"name": "c"}]}}}}),
            ),
            422,
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let (code, body) = raw(&env.client, method, &path, ct, body).await;
        assert_eq!(code, want, "{method} {path}: {body}");
        assert_eq!(body["kind"], "Status", "{method} {path}");
        assert_eq!(body["code"], want, "{method} {path}");
    }
    // The server is still healthy afterwards.
    assert_eq!(raw(&env.client, "GET", "/version", None, None).await.0, 200);
}

#[tokio::test]
async fn scale_and_status_subresources() {
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
    let (code, scale) = raw(
        &env.client,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
        None,
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(1))
    );
    let (code, scale) = raw(
        &env.client,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web/scale?fieldManager=hpa",
        Some("application/merge-patch+json"),
        Some(json!({"spec": {"replicas": 4}})),
    )
    .await;
    assert_eq!(code, 200, "{scale}");
    let d = deploys.get("web").await.unwrap();
    assert_eq!(d.data["spec"]["replicas"], 4);
    let hpa = d
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("hpa"))
        .unwrap();
    assert_eq!(hpa.subresource.as_deref(), Some("scale"));
    // Status writes through the main endpoint are ignored; through /status they land.
    let ignored = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 99}})),
        )
        .await
        .unwrap();
    assert_ne!(ignored.data["status"]["replicas"], 99);
}

#[tokio::test]
async fn services_get_cluster_ips() {
    let env = start().await;
    let svcs = api(&env.client, "", "v1", "Service", "default");
    let svc = apply(
        &svcs,
        "web",
        "spoke",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        false,
    )
    .await
    .unwrap();
    let ip = svc.data["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."));
    assert_eq!(
        svc.data["spec"]["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    let again = apply(
        &svcs,
        "web",
        "spoke",
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        again.metadata.resource_version, svc.metadata.resource_version,
        "re-apply is a no-op"
    );
}

#[tokio::test]
async fn test_clusters_use_kubeconfigs_from_the_environment() {
    let emu = KubeEmulator::start(EmulatorConfig {
        clusters: 2,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    emu.write_kubeconfigs(dir.path()).unwrap();
    let dir_str = dir.path().to_string_lossy().into_owned();
    let clusters = TestClusters::from_vars_or_emulator(
        |k| (k == "EDGECD_E2E_CLUSTERS").then(|| dir_str.clone()),
        2,
    )
    .await
    .unwrap();
    assert!(
        clusters.emulator().is_none(),
        "no emulator when kubeconfigs are given"
    );
    let clients = clusters.clients().unwrap();
    assert_eq!(clients.len(), 2);
    for client in clients {
        assert_eq!(client.apiserver_version().await.unwrap().major, "1");
    }
    let one = dir
        .path()
        .join("cluster-1.kubeconfig")
        .to_string_lossy()
        .into_owned();
    let single = TestClusters::from_vars_or_emulator(
        |k| (k == "EDGECD_E2E_KUBECONFIG").then(|| one.clone()),
        1,
    )
    .await
    .unwrap();
    assert_eq!(single.configs().len(), 1);
    let emulated = TestClusters::from_vars_or_emulator(|_| None, 3)
        .await
        .unwrap();
    assert_eq!(emulated.emulator().map(|e| e.clusters().len()), Some(3));
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    cms.create(
        &PostParams::default(),
        &configmap("x", json!({"big": "value"})),
    )
    .await
    .unwrap();
    let meta = cms.get_metadata("x").await.unwrap();
    assert_eq!(meta.metadata.name.as_deref(), Some("x"));
    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let (_, _, body) =
        get_accept(&env.client, "/api/v1/namespaces/default/configmaps", accept).await;
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert!(body["items"][0].get("data").is_none());
    let meta_api: kube::Api<kube::core::PartialObjectMeta<kube::api::DynamicObject>> =
        kube::Api::namespaced_with(env.client.clone(), "default", &ar("", "v1", "ConfigMap"));
    let mut events =
        kube::runtime::watcher(meta_api, kube::runtime::watcher::Config::default()).boxed();
    let mut names = Vec::new();
    while let Some(event) = events.next().await {
        match event.unwrap() {
            kube::runtime::watcher::Event::InitApply(o) => names.push(o.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, vec!["x".to_string()]);
}

#[tokio::test]
async fn injected_errors_answer_matching_requests() {
    let env = start().await;
    let cluster = env.emu.clusters().last().unwrap();
    cluster.inject_error(InjectedError {
        method: Some(http::Method::POST),
        path_contains: "/configmaps".into(),
        error: ApiError::forbidden("configmaps is forbidden: injected", None),
        times: 1,
    });
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    let err = cms
        .create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("api error")
    };
    assert_eq!(status.code, 403);
    cms.create(&PostParams::default(), &configmap("x", json!({})))
        .await
        .unwrap();
}

#[tokio::test]
async fn pagination_across_namespaces_visits_every_object_once() {
    let env = start().await;
    // `a-b` sorts before `a/` as a string but after `a` as a namespace.
    for ns in ["a", "a-b", "b"] {
        create_ns(&env.client, ns).await;
        let cms = api(&env.client, "", "v1", "ConfigMap", ns);
        for name in ["x", "y"] {
            let cm = obj(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"p": "1"}}}),
            );
            cms.create(&PostParams::default(), &cm).await.unwrap();
        }
    }
    let all = api_all(&env.client, "", "v1", "ConfigMap");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().labels("p=1").limit(1);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = all.list(&lp).await.unwrap();
        seen.extend(page.items.into_iter().map(|o| {
            format!(
                "{}/{}",
                o.metadata.namespace.unwrap(),
                o.metadata.name.unwrap()
            )
        }));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    assert_eq!(seen, vec!["a/x", "a/y", "a-b/x", "a-b/y", "b/x", "b/y"]);
}

#[tokio::test]
async fn deleting_a_crd_removes_its_objects_and_endpoints() {
    let env = start().await;
    crate::discovery::install_widget_crd(&env.client).await;
    let widgets = api(&env.client, "example.com", "v1", "Widget", "default");
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    apply(&widgets, "w", "spoke", w, false).await.unwrap();
    let crds = api_all(
        &env.client,
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
    );
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        raw(&env.client, "GET", "/apis/example.com/v1", None, None)
            .await
            .0,
        404
    );
    // Re-creating the CRD does not resurrect old objects.
    crate::discovery::install_widget_crd(&env.client).await;
    assert!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn delete_collection_and_dry_run_create() {
    let env = start().await;
    let cms = api(&env.client, "", "v1", "ConfigMap", "default");
    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let cm = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": app}}}),
        );
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(left, vec!["c".to_string()]);

    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = cms
        .create(&pp, &configmap("d", json!({"k": "v"})))
        .await
        .unwrap();
    assert_eq!(would.data["data"]["k"], "v");
    assert!(
        cms.get_opt("d").await.unwrap().is_none(),
        "dry-run create stores nothing"
    );
}
