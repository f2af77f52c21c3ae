//! Validation at the hub over real gRPC (`edgecd_proto::client::Client` against a hub started with `Server::start`): oversized filters, and specs no spoke could use (paths leaving the repository, invalid namespaces and label keys, `javascript:` URLs) through CreateApplication, UpdateApplication, ApplyManifests and application sets, each refused with INVALID_ARGUMENT naming the field;, a clusters generator over a cluster that never connected, and a set applied for a second cluster refused rather than moved.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod local_hub;

use std::time::Duration;

use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_hub::server::RunningServer;
use edgecd_proto::client::{Client, Error};
use edgecd_proto::v1;

use edgecd_spoke::link::{HelloParams, LinkSession, handshake};
use local_hub::hub;
use tonic::transport::Channel;

/// The message of an INVALID_ARGUMENT error, after checking that it names every one of `needles`.
fn invalid_argument<T: std::fmt::Debug>(result: Result<T, Error>, needles: &[&str]) -> String {
    let message = match result {
        Err(Error::InvalidArgument(message)) => message,
        other => panic!("expected INVALID_ARGUMENT naming {needles:?}, got {other:?}"),
    };
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} does not name {needle:?}"
        );
    }
    assert!(
        message.len() < 2000,
        "the message echoes the input: {} bytes",
        message.len()
    );
    message
}

fn app_spec(repo: &str, path: &str, namespace: &str) -> v1::ApplicationSpec {
    v1::ApplicationSpec {
        source: Some(v1::ApplicationSource {
            repo_url: repo.into(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..v1::ApplicationSource::default()
        }),
        destination: Some(v1::Destination {
            cluster: "edge-1".into(),
            namespace: namespace.into(),
            ..v1::Destination::default()
        }),
        ..v1::ApplicationSpec::default()
    }
}

fn create(
    name: &str,
    labels: &[(&str, &str)],
    spec: v1::ApplicationSpec,
) -> v1::CreateApplicationRequest {
    v1::CreateApplicationRequest {
        meta: Some(v1::ApplicationMeta {
            project: "default".into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..v1::ApplicationMeta::default()
        }),
        spec: Some(spec),
        upsert: false,
        dry_run: false,
    }
}

const REPO: &str = "https://git.example.com/apps.git";

/// One refused case: (what, labels, repo, path, namespace, field named).
type Case<'a> = (
    &'static str,
    Vec<(&'a str, &'a str)>,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

/// Every refused case.
fn bad_cases(long_key: &str) -> Vec<Case<'_>> {
    vec![
        (
            "parent path",
            vec![],
            REPO,
            "../../etc",
            "web",
            "spec.source.path",
        ),
        (
            "absolute path",
            vec![],
            REPO,
            "/etc",
            "web",
            "spec.source.path",
        ),
        (
            "NUL in path",
            vec![],
            REPO,
            "apps\0/web",
            "web",
            "spec.source.path",
        ),
        (
            "namespace",
            vec![],
            REPO,
            "apps/web",
            "Not_A_Namespace",
            "spec.destination.namespace",
        ),
        (
            "label key",
            vec![(long_key, "x")],
            REPO,
            "apps/web",
            "web",
            "labels",
        ),
        (
            "javascript URL",
            vec![],
            "javascript:alert(document.cookie)",
            "apps/web",
            "web",
            "spec.source.repoURL",
        ),
    ]
}

/// A 100,000-character search and 40,000 cluster (or project, or label) filters are refused with
/// INVALID_ARGUMENT naming the field and the limit, on every call that takes an application filter.
#[tokio::test]
async fn oversized_filters_are_invalid_arguments_naming_the_field() {
    let hub = hub().await;
    let client = &hub.client;
    let long_search = "a".repeat(100_000);
    let many: Vec<String> = (0..40_000).map(|i| format!("edge-{i}")).collect();
    let filters = [
        (
            v1::ApplicationFilter {
                search: long_search.clone(),
                ..v1::ApplicationFilter::default()
            },
            ["filter.search", "256"],
        ),
        (
            v1::ApplicationFilter {
                clusters: many.clone(),
                ..v1::ApplicationFilter::default()
            },
            ["filter.clusters", "1000"],
        ),
        (
            v1::ApplicationFilter {
                projects: many.clone(),
                ..v1::ApplicationFilter::default()
            },
            ["filter.projects", "1000"],
        ),
        (
            v1::ApplicationFilter {
                names: many.clone(),
                ..v1::ApplicationFilter::default()
            },
            ["filter.names", "100"],
        ),
        (
            v1::ApplicationFilter {
                names: vec!["nginx".into(), " ".into()],
                ..v1::ApplicationFilter::default()
            },
            ["filter.names", "empty"],
        ),
        (
            v1::ApplicationFilter {
                app_selector: Some(v1::LabelSelector {
                    match_labels: many.iter().map(|c| (c.clone(), "x".into())).collect(),
                    ..v1::LabelSelector::default()
                }),
                ..v1::ApplicationFilter::default()
            },
            ["filter.app_selector", "100"],
        ),
    ];
    for (filter, needles) in filters {
        invalid_argument(
            client
                .list_applications(v1::ListApplicationsRequest {
                    filter: Some(filter.clone()),
                    ..v1::ListApplicationsRequest::default()
                })
                .await,
            &needles,
        );
        invalid_argument(
            client
                .count_applications(v1::CountApplicationsRequest {
                    filter: Some(filter.clone()),
                })
                .await,
            &needles,
        );
        invalid_argument(
            client
                .bulk_command(v1::BulkCommandRequest {
                    filter: Some(filter),
                    kind: Some(v1::bulk_command_request::Kind::Refresh(
                        v1::RefreshCommand::default(),
                    )),
                    ..v1::BulkCommandRequest::default()
                })
                .await,
            &needles,
        );
    }
    invalid_argument(
        client
            .list_clusters(v1::ListClustersRequest {
                filter: Some(v1::ClusterFilter {
                    search: long_search,
                    ..v1::ClusterFilter::default()
                }),
                ..v1::ListClustersRequest::default()
            })
            .await,
        &["filter.search", "256"],
    );
    // Within the limits the same calls work.
    client
        .list_applications(v1::ListApplicationsRequest {
            filter: Some(v1::ApplicationFilter {
                search: "a".repeat(256),
                clusters: many[..1000].to_vec(),
                ..v1::ApplicationFilter::default()
            }),
            ..v1::ListApplicationsRequest::default()
        })
        .await
        .unwrap();
    hub.hub.shutdown().await.unwrap();
}

/// CreateApplication and UpdateApplication refuse paths leaving the repository (`../../etc`,
/// `/etc`, NUL), invalid namespaces, 10,000-character label keys and `javascript:` URLs with
/// INVALID_ARGUMENT naming the app and the field; nothing is stored.
#[tokio::test]
async fn create_and_update_refuse_specs_no_spoke_could_use() {
    let hub = hub().await;
    let client = &hub.client;
    let long_key = "k".repeat(10_000);
    for (what, labels, repo, path, namespace, field) in bad_cases(&long_key) {
        let result = client
            .create_application(create("web", &labels, app_spec(repo, path, namespace)))
            .await;
        let message = invalid_argument(result, &["application default/web", field]);
        eprintln!("{what}: {message}");
        let missing = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", "web")),
            })
            .await;
        assert!(matches!(missing, Err(Error::NotFound { .. })), "{what}");
    }
    // A valid app, then each bad change to it through UpdateApplication.
    client
        .create_application(create(
            "web",
            &[("app.kubernetes.io/name", "web")],
            app_spec(REPO, "apps/web", "web"),
        ))
        .await
        .unwrap();
    for (what, labels, repo, path, namespace, field) in bad_cases(&long_key) {
        let result = client
            .update_application(v1::UpdateApplicationRequest {
                meta: create("web", &labels, app_spec(REPO, "", "")).meta,
                spec: Some(app_spec(repo, path, namespace)),
                ..v1::UpdateApplicationRequest::default()
            })
            .await;
        invalid_argument(result, &["application default/web", field]);
        let app = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", "web")),
            })
            .await
            .unwrap();
        let source = app.spec.unwrap().source.unwrap();
        assert_eq!(
            (source.repo_url.as_str(), source.path.as_str()),
            (REPO, "apps/web"),
            "{what}"
        );
    }
    hub.hub.shutdown().await.unwrap();
}

fn yaml_quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn argo_app(
    name: &str,
    labels: &[(&str, &str)],
    repo: &str,
    path: &str,
    namespace: &str,
) -> String {
    let labels: String = labels
        .iter()
        // An explicit key: YAML limits implicit keys to 1,024 characters.
        .map(|(k, v)| format!("    ? {}\n    : {}\n", yaml_quoted(k), yaml_quoted(v)))
        .collect();
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("  labels:\n{labels}")
    };
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n  namespace: argocd\n{labels}spec:\n  project: default\n  source:\n    repoURL: {}\n    targetRevision: HEAD\n    path: {}\n  destination:\n    name: edge-1\n    namespace: {}\n",
        yaml_quoted(repo),
        yaml_quoted(path),
        yaml_quoted(namespace),
    )
}

/// ApplyManifests (Argo CD YAML, also as a dry run) refuses the same specs: the whole file with
/// INVALID_ARGUMENT naming the document and the field, and nothing is applied.
#[tokio::test]
async fn apply_manifests_refuses_specs_no_spoke_could_use() {
    let hub = hub().await;
    let client = &hub.client;
    let long_key = "k".repeat(10_000);
    for (what, labels, repo, path, namespace, field) in bad_cases(&long_key) {
        let field = if field == "labels" {
            "metadata.labels"
        } else {
            field
        };
        // A valid document beside the refused one: the file is refused as a whole.
        let yaml = format!(
            "{}---\n{}",
            argo_app("fine", &[], REPO, "apps/fine", "web"),
            argo_app("web", &labels, repo, path, namespace)
        );
        for dry_run in [true, false] {
            let result = client
                .apply_manifests(v1::ApplyManifestsRequest {
                    yaml: yaml.clone(),
                    dry_run,
                    ..v1::ApplyManifestsRequest::default()
                })
                .await;
            let message =
                invalid_argument(result, &["nothing was applied", "Application web", field]);
            eprintln!("{what}: {message}");
        }
        for name in ["fine", "web"] {
            let missing = client
                .get_application(v1::GetApplicationRequest {
                    app: Some(v1::AppRef::new("default", name)),
                })
                .await;
            assert!(matches!(missing, Err(Error::NotFound { .. })), "{what}");
        }
    }
    // The valid document alone is applied.
    let applied = client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: argo_app("fine", &[], REPO, "apps/fine", "web"),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(applied.results[0].action, "created", "{applied:?}");
    hub.hub.shutdown().await.unwrap();
}

async fn app_set(client: &Client, name: &str) -> v1::ApplicationSet {
    client
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: name.into(),
        })
        .await
        .unwrap()
}

/// Waits until the set has been evaluated and `done` holds for it.
async fn wait_set(
    client: &Client,
    name: &str,
    done: impl Fn(&v1::ApplicationSet) -> bool,
) -> v1::ApplicationSet {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let set = app_set(client, name).await;
        if done(&set) {
            return set;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "set {name} never reached the expected state: {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(set: &v1::ApplicationSet) -> (String, String) {
    set.conditions
        .last()
        .map(|c| (c.r#type.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Generated apps are validated where the hub expands the template: an element rendering a path
/// that leaves the repository, or a `javascript:` URL, is refused in the set's condition naming the
/// field, and no app is created for it.
#[tokio::test]
async fn application_set_templates_are_validated_where_they_are_expanded() {
    let hub = hub().await;
    let client = &hub.client;
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: bad\nspec:\n  generators:\n  - list:\n      elements:\n      - app: ok\n        path: apps/ok\n        repo: https://git.example.com/apps.git\n      - app: escape\n        path: ../../etc\n        repo: https://git.example.com/apps.git\n      - app: script\n        path: apps/ok\n        repo: 'javascript:alert(1)'\n  template:\n    metadata:\n      name: '{{app}}'\n    spec:\n      project: default\n      source:\n        repoURL: '{{repo}}'\n        path: '{{path}}'\n      destination:\n        name: edge-1\n        namespace: web\n";
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    let set = wait_set(client, "bad", |s| !s.conditions.is_empty()).await;
    let (kind, message) = condition(&set);
    assert_eq!(kind, "ErrorOccurred", "{message}");
    assert!(message.contains("escape: spec.source.path"), "{message}");
    assert!(message.contains("script: spec.source.repoURL"), "{message}");
    let generated: Vec<&str> = set.generated.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(generated, ["ok"]);
    for (name, exists) in [("ok", true), ("escape", false), ("script", false)] {
        let found = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", name)),
            })
            .await;
        assert_eq!(found.is_ok(), exists, "{name}: {found:?}");
    }
    hub.hub.shutdown().await.unwrap();
}

/// A spoke link session for `cluster`, reporting `server_url` in its hello (as a connected cluster).
async fn connect(hub: &RunningServer, cluster: &str, server_url: &str) -> LinkSession {
    let channel = Channel::from_shared(format!("http://{}", hub.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let hello = HelloParams {
        cluster_name: cluster.into(),
        spoke_version: "0.1.0".into(),
        protocol: ProtocolVersion { major: 1, minor: 0 },
        capabilities: Capabilities::all_v1(),
        kubernetes_version: "v1.33.0".into(),
        server_url: server_url.into(),
        epoch: format!("epoch-{cluster}"),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    };
    handshake(channel, &hello).await.unwrap()
}

/// Finding 11: a clusters-generator set over two connected clusters and one registered cluster
/// that never connected (no server URL). The never-connected cluster is a valid element (as every
/// cluster secret is in Argo CD): the set has no error condition and generates an app for each of
/// the three, the never-connected one placed on its cluster although `{{server}}` renders empty.
/// Revoking a cluster prunes its generated app, and DeleteCluster succeeds afterwards.
#[tokio::test]
async fn a_never_connected_cluster_does_not_stop_a_clusters_generator() {
    let hub = hub().await;
    let client = &hub.client;
    for name in ["edge-2", "edge-new"] {
        client
            .create_cluster(v1::CreateClusterRequest {
                name: name.into(),
                ..v1::CreateClusterRequest::default()
            })
            .await
            .unwrap();
    }
    let _edge1 = connect(&hub.hub, "edge-1", "https://10.0.0.1:6443").await;
    let _edge2 = connect(&hub.hub, "edge-2", "https://10.0.0.2:6443").await;
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: web\nspec:\n  generators:\n  - clusters: {}\n  template:\n    metadata:\n      name: '{{name}}-web'\n    spec:\n      project: default\n      source:\n        repoURL: https://git.example.com/apps.git\n        targetRevision: HEAD\n        path: apps/web\n      destination:\n        server: '{{server}}'\n        namespace: web\n";
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    let names = |set: &v1::ApplicationSet| -> Vec<String> {
        set.generated.iter().map(|a| a.name.clone()).collect()
    };
    let set = wait_set(client, "web", |s| names(s).len() == 3).await;
    let (kind, message) = condition(&set);
    assert_eq!(kind, "ResourcesUpToDate", "{message}");
    assert_eq!(names(&set), ["edge-1-web", "edge-2-web", "edge-new-web"]);
    for (app, cluster) in [
        ("edge-1-web", "edge-1"),
        ("edge-2-web", "edge-2"),
        ("edge-new-web", "edge-new"),
    ] {
        let app = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", app)),
            })
            .await
            .unwrap();
        assert_eq!(app.spec.unwrap().destination.unwrap().cluster, cluster);
    }

    // Revoked: its app is pruned (the never-connected cluster does not hold the deletion back).
    client
        .revoke_cluster(v1::RevokeClusterRequest {
            name: "edge-2".into(),
            reason: "decommissioned".into(),
        })
        .await
        .unwrap();
    let set = wait_set(client, "web", |s| names(s).len() == 2).await;
    let (kind, message) = condition(&set);
    assert_eq!(kind, "ResourcesUpToDate", "{message}");
    assert_eq!(names(&set), ["edge-1-web", "edge-new-web"]);
    let pruned = client
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", "edge-2-web")),
        })
        .await;
    assert!(matches!(pruned, Err(Error::NotFound { .. })), "{pruned:?}");
    client
        .delete_cluster(v1::DeleteClusterRequest {
            name: "edge-2".into(),
        })
        .await
        .unwrap();
}

/// The talk's `cluster-addons` set applied for edge-1 and then, unchanged, for edge-2 is not moved:
/// the second apply fails saying where the set runs and how to run it on edge-2 too, and the set
/// stays where it was. Applied again for edge-1 it is unchanged.
#[tokio::test]
async fn applying_a_set_for_another_cluster_never_moves_it() {
    let hub = hub().await;
    let client = &hub.client;
    client
        .create_cluster(v1::CreateClusterRequest {
            name: "edge-2".into(),
            ..v1::CreateClusterRequest::default()
        })
        .await
        .unwrap();
    let yaml = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: cluster-addons\nspec:\n  generators:\n  - git:\n      repoURL: https://git.example.com/fleet.git\n      revision: HEAD\n      directories:\n      - path: deploy/clusters/edge/*\n  template:\n    metadata:\n      name: '{{path.basename}}'\n    spec:\n      source:\n        repoURL: https://git.example.com/fleet.git\n        targetRevision: HEAD\n        path: '{{path}}'\n      destination:\n        server: https://kubernetes.default.svc\n";
    let apply = |cluster: &str| {
        client.apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            cluster: cluster.into(),
            ..v1::ApplyManifestsRequest::default()
        })
    };
    let first = apply("edge-1").await.unwrap();
    assert_eq!(first.results[0].action, "created", "{first:?}");

    let moved = apply("edge-2").await.unwrap();
    assert_eq!(moved.results[0].action, "refused", "{moved:?}");
    let message = &moved.results[0].message;
    for needle in [
        "default/cluster-addons is evaluated at cluster edge-1's spoke",
        "with --cluster edge-2 would move it",
        "at cluster edge-2's spoke as well",
        "Nothing was changed",
        "another metadata.name",
        "edgecd appset delete default/cluster-addons",
    ] {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    // Nor to the hub.
    let to_hub = apply("").await.unwrap();
    assert_eq!(to_hub.results[0].action, "refused", "{to_hub:?}");
    assert!(
        to_hub.results[0].message.contains("without --cluster"),
        "{to_hub:?}"
    );
    let set = client
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "cluster-addons".into(),
        })
        .await
        .unwrap();
    assert_eq!(set.scope, "edge-1");
    let again = apply("edge-1").await.unwrap();
    assert_eq!(again.results[0].action, "unchanged", "{again:?}");

    // The scope may grow: a list naming edge-1 and edge-2, then a selector matching both.
    let apply_scope = |scope: &str| {
        client.apply_manifests(v1::ApplyManifestsRequest {
            yaml: yaml.into(),
            scope: scope.into(),
            ..v1::ApplyManifestsRequest::default()
        })
    };
    let grown = apply_scope("clusters:edge-1,edge-2").await.unwrap();
    assert_eq!(grown.results[0].action, "updated", "{grown:?}");
    for (cluster, tier) in [("edge-1", "edge"), ("edge-2", "edge")] {
        client
            .update_cluster(v1::UpdateClusterRequest {
                name: cluster.into(),
                labels: [("tier".to_owned(), tier.to_owned())].into(),
                ..v1::UpdateClusterRequest::default()
            })
            .await
            .unwrap();
    }
    let selected = apply_scope("selector:tier=edge").await.unwrap();
    assert_eq!(selected.results[0].action, "updated", "{selected:?}");
    let set = client
        .get_application_set(v1::GetApplicationSetRequest {
            project: "default".into(),
            name: "cluster-addons".into(),
        })
        .await
        .unwrap();
    assert_eq!(set.scope, "selector:tier=edge");
    // But not shrink: back to edge-1 alone would take the set from edge-2.
    let shrunk = apply("edge-1").await.unwrap();
    assert_eq!(shrunk.results[0].action, "refused", "{shrunk:?}");
    let message = &shrunk.results[0].message;
    for needle in [
        "at the spoke of every cluster matching tier=edge",
        "(on edge-2)",
        "--cluster-selector",
    ] {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
    // A malformed scope is refused naming it.
    let bad = apply_scope("selector:").await;
    let text = format!("{bad:?}");
    assert!(text.contains("empty selector"), "{text}");
}
