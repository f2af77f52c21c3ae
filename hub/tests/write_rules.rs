//! One rule on every write path, over real gRPC: an app owned by an ApplicationSet is refused by CreateApplication (upsert), UpdateApplication and ApplyManifests alike; an unchanged spec keeps its version; refusals the hub can know (rollback with auto-sync on, to an unknown history entry) fail at once; commands for a cluster that is not connected say so, and an identical queued command is reused; a request id makes a command call idempotent; a set never lists an app another set owns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod local_hub;

use std::time::Duration;

use edgecd_proto::client::Error;
use edgecd_proto::v1;

use local_hub::hub;

fn spec(path: &str, automated: bool) -> v1::ApplicationSpec {
    v1::ApplicationSpec {
        source: Some(v1::ApplicationSource {
            repo_url: "https://git.example.com/apps.git".into(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..v1::ApplicationSource::default()
        }),
        destination: Some(v1::Destination {
            cluster: "edge-1".into(),
            namespace: "web".into(),
            ..v1::Destination::default()
        }),
        sync_policy: automated.then(|| v1::SyncPolicy {
            automated: Some(v1::AutomatedSync::default()),
            ..v1::SyncPolicy::default()
        }),
        ..v1::ApplicationSpec::default()
    }
}

fn meta(name: &str) -> Option<v1::ApplicationMeta> {
    Some(v1::ApplicationMeta {
        project: "default".into(),
        name: name.into(),
        ..v1::ApplicationMeta::default()
    })
}

fn create(name: &str, spec: v1::ApplicationSpec, upsert: bool) -> v1::CreateApplicationRequest {
    v1::CreateApplicationRequest {
        meta: meta(name),
        spec: Some(spec),
        upsert,
        dry_run: false,
    }
}

fn update(name: &str, spec: v1::ApplicationSpec) -> v1::UpdateApplicationRequest {
    v1::UpdateApplicationRequest {
        meta: meta(name),
        spec: Some(spec),
        ..v1::UpdateApplicationRequest::default()
    }
}

fn version(app: &v1::Application) -> u64 {
    app.meta.as_ref().map_or(0, |m| m.spec_version)
}

fn conflict<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Conflict(message)) => message,
        other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
    }
}

#[tokio::test]
async fn a_set_owned_app_is_refused_on_every_write_path_with_one_message() {
    let hub = hub().await;
    let client = &hub.client;
    let set = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: web\nspec:\n  generators:\n  - list:\n      elements:\n      - app: web-edge-1\n  template:\n    metadata:\n      name: '{{app}}'\n    spec:\n      project: default\n      source:\n        repoURL: https://git.example.com/apps.git\n        path: apps/web\n      destination:\n        name: edge-1\n        namespace: web\n";
    client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: set.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let generated = loop {
        if let Ok(app) = client
            .get_application(v1::GetApplicationRequest {
                app: Some(v1::AppRef::new("default", "web-edge-1")),
            })
            .await
        {
            break app;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the set generated no app"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let owned = "application default/web-edge-1 is owned by ApplicationSet default/web; change that instead";

    let upsert = conflict(
        client
            .create_application(create("web-edge-1", spec("apps/other", true), true))
            .await,
    );
    assert_eq!(upsert, owned);
    let updated = conflict(
        client
            .update_application(update("web-edge-1", spec("apps/other", true)))
            .await,
    );
    assert_eq!(updated, owned);
    let app_yaml = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web-edge-1\nspec:\n  project: default\n  source:\n    repoURL: https://git.example.com/apps.git\n    path: apps/other\n  destination:\n    name: edge-1\n    namespace: web\n";
    let applied = client
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: app_yaml.into(),
            ..v1::ApplyManifestsRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(applied.results[0].action, "refused", "{applied:?}");
    assert_eq!(applied.results[0].message, owned);
    assert_eq!(
        applied.results[0].project, "default",
        "a refusal names the project"
    );

    // Nothing changed: same version, same path.
    let after = client
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", "web-edge-1")),
        })
        .await
        .unwrap();
    assert_eq!(version(&after), version(&generated));
    assert_eq!(
        after.spec.unwrap().source.unwrap().path,
        "apps/web",
        "the owned app was changed"
    );
    hub.hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unchanged_spec_keeps_its_version_and_a_changed_one_bumps_it() {
    let hub = hub().await;
    let client = &hub.client;
    let created = client
        .create_application(create("api", spec("apps/api", false), false))
        .await
        .unwrap();
    let same = client
        .update_application(update("api", spec("apps/api", false)))
        .await
        .unwrap();
    assert_eq!(
        version(&same),
        version(&created),
        "an unchanged update bumped the version"
    );
    let upserted = client
        .create_application(create("api", spec("apps/api", false), true))
        .await
        .unwrap();
    assert_eq!(
        version(&upserted),
        version(&created),
        "an unchanged upsert bumped the version"
    );
    let changed = client
        .update_application(update("api", spec("apps/api-v2", false)))
        .await
        .unwrap();
    assert_eq!(version(&changed), version(&created) + 1);
    hub.hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_the_hub_can_know_fail_at_once() {
    let hub = hub().await;
    let client = &hub.client;
    client
        .create_application(create("auto", spec("apps/auto", true), false))
        .await
        .unwrap();
    client
        .create_application(create("manual", spec("apps/manual", false), false))
        .await
        .unwrap();
    let rollback = |name: &str, history_id: i64| {
        client.rollback_application(v1::RollbackApplicationRequest {
            app: Some(v1::AppRef::new("default", name)),
            history_id,
            ..v1::RollbackApplicationRequest::default()
        })
    };
    let message = conflict(rollback("auto", 1).await);
    assert!(
        message.contains("rollback of default/auto is refused while automated sync is on"),
        "{message}"
    );
    match rollback("manual", 3).await {
        Err(error @ Error::NotFound { .. }) => assert_eq!(
            error.to_string(),
            "application default/manual has no deployment history to roll back to (history id 3)"
        ),
        other => panic!("expected NOT_FOUND, got {other:?}"),
    }
    // Nothing was queued for either.
    let commands = client
        .list_commands(v1::ListCommandsRequest {
            cluster: "edge-1".into(),
            ..v1::ListCommandsRequest::default()
        })
        .await
        .unwrap();
    assert!(commands.items.is_empty(), "{commands:?}");

    // A selected resource without a kind or name is refused naming what it needs.
    let selective = client
        .sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new("default", "manual")),
            sync: Some(v1::SyncCommand {
                resources: vec![v1::ResourceKey {
                    name: "web".into(),
                    ..v1::ResourceKey::default()
                }],
                ..v1::SyncCommand::default()
            }),
            ttl: None,
        })
        .await;
    match selective {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("needs a kind and a name"), "{message}")
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    hub.hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn commands_for_an_unconnected_cluster_say_so_and_identical_ones_are_merged() {
    let hub = hub().await;
    let client = &hub.client;
    client
        .create_application(create("web", spec("apps/web", false), false))
        .await
        .unwrap();
    let sync = |prune: bool| {
        client.sync_application(v1::SyncApplicationRequest {
            request_id: String::new(),
            app: Some(v1::AppRef::new("default", "web")),
            sync: Some(v1::SyncCommand {
                prune,
                ..v1::SyncCommand::default()
            }),
            ttl: None,
        })
    };
    let first = sync(false).await.unwrap();
    assert_eq!(
        first.notice,
        "cluster edge-1 has not connected yet: the command is queued and runs when its spoke connects, unless its time to live passes first"
    );
    let again = sync(false).await.unwrap();
    assert_eq!(
        again.command_id, first.command_id,
        "an identical command was queued twice"
    );
    assert!(
        again.notice.contains("an identical sync command queued at")
            && again.notice.contains("this request joins it"),
        "{}",
        again.notice
    );
    let other = sync(true).await.unwrap();
    assert_ne!(
        other.command_id, first.command_id,
        "a different sync was merged"
    );
    let refresh = client
        .refresh_application(v1::RefreshApplicationRequest {
            app: Some(v1::AppRef::new("default", "web")),
            ..v1::RefreshApplicationRequest::default()
        })
        .await
        .unwrap();
    assert_ne!(refresh.command_id, first.command_id);

    // A bulk command says it per app, too.
    let bulk = client
        .bulk_command(v1::BulkCommandRequest {
            filter: Some(v1::ApplicationFilter {
                names: vec!["web".into()],
                ..v1::ApplicationFilter::default()
            }),
            kind: Some(v1::bulk_command_request::Kind::Refresh(
                v1::RefreshCommand { hard: false },
            )),
            ttl: None,
        })
        .await
        .unwrap();
    assert_eq!(bulk.commands.len(), 1);
    assert_eq!(
        bulk.commands[0].app,
        Some(v1::AppRef::new("default", "web")),
        "each command names its app"
    );
    assert!(
        bulk.commands[0]
            .notice
            .starts_with("cluster edge-1 has not connected yet"),
        "{:?}",
        bulk.commands[0]
    );
    hub.hub.shutdown().await.unwrap();
}

/// A set that generates a name another set owns lists only its own apps, and its list count and its page agree.
#[tokio::test]
async fn a_set_never_lists_an_app_another_set_owns() {
    let hub = hub().await;
    let client = &hub.client;
    let first = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: first\nspec:\n  generators:\n  - list:\n      elements:\n      - app: shared\n  template:\n    metadata:\n      name: '{{app}}'\n    spec:\n      project: default\n      source:\n        repoURL: https://git.example.com/apps.git\n        path: apps/first\n      destination:\n        name: edge-1\n        namespace: web\n";
    let matrix = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: matrix\nspec:\n  generators:\n  - matrix:\n      generators:\n      - list:\n          elements:\n          - app: shared\n          - app: mine\n      - list:\n          elements:\n          - tier: edge\n  template:\n    metadata:\n      name: '{{app}}'\n    spec:\n      project: default\n      source:\n        repoURL: https://git.example.com/apps.git\n        path: 'apps/{{tier}}'\n      destination:\n        name: edge-1\n        namespace: web\n";
    for yaml in [first, matrix] {
        client
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml: yaml.into(),
                ..v1::ApplyManifestsRequest::default()
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let set = loop {
        let set = client
            .get_application_set(v1::GetApplicationSetRequest {
                project: "default".into(),
                name: "matrix".into(),
            })
            .await
            .unwrap();
        if !set.conditions.is_empty() {
            break set;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the matrix set was never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let generated: Vec<&str> = set.generated.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(generated, ["mine"], "{set:?}");
    let message = &set.conditions.last().unwrap().message;
    assert!(
        message.contains(
            "shared: application shared already exists and is not owned by this application set"
        ),
        "{message}"
    );
    // The list shows the same count as the set's own apps.
    let listed = client
        .list_application_sets(v1::ListApplicationSetsRequest::default())
        .await
        .unwrap();
    let row = listed.items.iter().find(|s| s.name == "matrix").unwrap();
    assert_eq!(row.generated.len(), 1, "{row:?}");
    let owned = client
        .list_applications(v1::ListApplicationsRequest {
            filter: Some(v1::ApplicationFilter {
                owner: Some(v1::OwnerRef {
                    kind: "ApplicationSet".into(),
                    project: "default".into(),
                    name: "matrix".into(),
                    ..v1::OwnerRef::default()
                }),
                ..v1::ApplicationFilter::default()
            }),
            ..v1::ListApplicationsRequest::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = owned.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["mine"]);
    hub.hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_request_id_makes_a_command_call_idempotent() {
    use edgecd_hub::store::{CommandOutcome, CommandUpdate};
    let hub = hub().await;
    let client = &hub.client;
    for name in ["web", "db"] {
        client
            .create_application(create(name, spec(&format!("apps/{name}"), false), false))
            .await
            .unwrap();
    }
    let sync = |app: &'static str, prune: bool, request_id: &str| {
        client.sync_application(v1::SyncApplicationRequest {
            app: Some(v1::AppRef::new("default", app)),
            sync: Some(v1::SyncCommand {
                prune,
                ..v1::SyncCommand::default()
            }),
            ttl: None,
            request_id: request_id.into(),
        })
    };
    const ID: &str = "6F1C2A4E-94B0-4C55-9D1E-0B6B3C1F7A21";
    let first = sync("web", false, ID).await.unwrap();
    assert_eq!(
        first.command_id,
        ID.to_lowercase(),
        "the command takes the request id"
    );
    // The command runs and is no longer pending, so only the request id can make a retry the same call.
    let ran = hub
        .hub
        .store()
        .record_command_status(&CommandUpdate {
            id: first.command_id.clone(),
            outcome: CommandOutcome::Succeeded,
            message: String::new(),
            result: None,
        })
        .await
        .unwrap();
    assert!(ran);
    let retry = sync("web", false, &ID.to_lowercase()).await.unwrap();
    assert_eq!(retry.command_id, first.command_id);
    assert_eq!(retry.outcome, v1::CommandOutcome::Succeeded as i32);
    assert!(
        retry.notice.contains("already received"),
        "{}",
        retry.notice
    );
    let fresh = sync("web", false, "").await.unwrap();
    assert_ne!(
        fresh.command_id, first.command_id,
        "without a request id a new call issues a new command"
    );
    let commands = client
        .list_commands(v1::ListCommandsRequest {
            cluster: "edge-1".into(),
            ..v1::ListCommandsRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(commands.items.len(), 2, "{commands:?}");

    // The same request id for another request (other options, another app, another kind) is refused.
    for other in [
        sync("web", true, ID).await,
        sync("db", false, ID).await,
        client
            .refresh_application(v1::RefreshApplicationRequest {
                app: Some(v1::AppRef::new("default", "web")),
                hard: false,
                ttl: None,
                request_id: ID.into(),
            })
            .await,
    ] {
        match other {
            Err(Error::AlreadyExists(message)) => {
                assert!(
                    message.contains("already used for a different request"),
                    "{message}"
                )
            }
            other => panic!("expected ALREADY_EXISTS, got {other:?}"),
        }
    }
    // A call with a request id does not join an identical pending command: its command takes the id, so a
    // retry finds it even after the other one was delivered.
    let pending = sync("db", false, "").await.unwrap();
    const OTHER: &str = "0d5a8f0e-3b7c-4f7e-9a51-2f4f7c9e6b10";
    let own = sync("db", false, OTHER).await.unwrap();
    assert_eq!(own.command_id, OTHER);
    assert_ne!(own.command_id, pending.command_id);
    assert_eq!(
        sync("db", false, OTHER).await.unwrap().command_id,
        OTHER,
        "a retry answers with the same command"
    );
    // A retry is answered even once the app is gone.
    client
        .delete_application(v1::DeleteApplicationRequest {
            app: Some(v1::AppRef::new("default", "db")),
            ..v1::DeleteApplicationRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(
        sync("db", false, OTHER).await.unwrap().command_id,
        OTHER,
        "a retry after the app was deleted answers with the command issued"
    );
    match sync("web", false, "not-a-uuid").await {
        Err(Error::InvalidArgument(message)) => {
            assert!(message.contains("is not a UUID"), "{message}")
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    hub.hub.shutdown().await.unwrap();
}
