//! The application-set store (`AppSetStore`) on both real backends: create, conflicts, owner, scope filter, status, optimistic concurrency, delete, the status of hub-evaluated apps, and the decision resources of clusterDecisionResource generators.

use edgecd_core::app::{ApplicationStatus, Condition, HealthReport, OwnerRef, SyncReport};
use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::{AppSetStatus, NewAppSet, Store, StoreError};
use serde_json::json;

fn set(project: &str, name: &str, scope: &str) -> NewAppSet {
    NewAppSet {
        project: project.into(),
        name: name.into(),
        scope: scope.into(),
        spec: json!({
            "generators": [{"clusters": {}}],
            "template": {"metadata": {"name": "{{name}}.web"},
                         "spec": {"source": {"repoURL": "https://git.example/web"}, "destination": {"server": "{{server}}"}}}
        }),
        owner: None,
    }
}

async fn appsets_crud(store: &dyn Store) {
    let sets = store.appsets();
    let created = sets
        .create_appset(&set("default", "web", "hub"))
        .await
        .unwrap();
    assert_eq!((created.version, created.scope.as_str()), (1, "hub"));
    assert_eq!(created.status, AppSetStatus::default());
    assert!(created.owner.is_none());
    assert!(matches!(
        sets.create_appset(&set("default", "web", "hub")).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        sets.create_appset(&set("nope", "web", "hub")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        sets.create_appset(&set("default", "Bad_Name", "hub")).await,
        Err(StoreError::Invalid { .. })
    ));

    // A set owned by an app-of-apps parent, evaluated at a spoke.
    let owner = OwnerRef {
        kind: "Application".into(),
        project: "default".into(),
        name: "parent".into(),
        scope: "hub".into(),
    };
    let mut edge = set("default", "addons", "cluster-3");
    edge.owner = Some(owner.clone());
    let edge = sets.create_appset(&edge).await.unwrap();
    assert_eq!(edge.owner.as_ref(), Some(&owner));

    let all = sets.list_appsets(&[], None).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["addons", "web"]
    );
    let at_hub = sets.list_appsets(&[], Some("hub")).await.unwrap();
    assert_eq!(at_hub.len(), 1);
    assert_eq!(at_hub[0].name, "web");
    let at_edge = sets.list_appsets(&[], Some("cluster-3")).await.unwrap();
    assert_eq!(at_edge.len(), 1);
    assert!(
        sets.list_appsets(&["other".into()], None)
            .await
            .unwrap()
            .is_empty()
    );

    // Status does not bump the version; spec updates are version-checked.
    let status = AppSetStatus {
        generated: vec!["default/cluster-1.web".into()],
        conditions: vec![Condition {
            kind: "ResourcesUpToDate".into(),
            message: "1 application generated".into(),
            last_transition_time: time::OffsetDateTime::UNIX_EPOCH,
        }],
        revisions: [("https://git.example/web@HEAD".to_owned(), "abc".to_owned())].into(),
        observed_version: 1,
        // A progressive sync's place of each app is kept with the status.
        rollout: vec![edgecd_core::appset::rollout::RolloutAppStatus {
            project: "default".into(),
            application: "cluster-1.web".into(),
            status: edgecd_core::appset::rollout::RolloutPhase::Pending,
            step: 2,
            message: "step 2 is rolling out: sync asked".into(),
            target_revision: "abc".into(),
            spec_version: 3,
            last_transition_time: time::OffsetDateTime::UNIX_EPOCH,
            command: "c-1".into(),
        }],
        rollout_prune: vec!["default/cluster-1.web".into()],
    };
    sets.set_appset_status("default", "web", &status)
        .await
        .unwrap();
    let read = sets.get_appset("default", "web").await.unwrap();
    assert_eq!((read.version, &read.status), (1, &status));
    let mut changed = set("default", "web", "cluster-1");
    changed.spec["generators"] = json!([{"list": {"elements": [{"name": "a"}]}}]);
    let updated = sets.update_appset(&changed, 1).await.unwrap();
    assert_eq!((updated.version, updated.scope.as_str()), (2, "cluster-1"));
    assert_eq!(updated.spec, changed.spec);
    assert!(matches!(
        sets.update_appset(&changed, 1).await,
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    // The owner survives spec updates.
    let mut edge_changed = set("default", "addons", "cluster-3");
    edge_changed.spec["template"]["metadata"]["name"] = json!("{{name}}.addons");
    let edge_updated = sets
        .update_appset(&edge_changed, edge.version)
        .await
        .unwrap();
    assert_eq!(edge_updated.owner.as_ref(), Some(&owner));

    // A project with sets cannot be deleted.
    assert!(store.delete_project("default").await.is_err());
    sets.delete_appset("default", "web").await.unwrap();
    assert!(matches!(
        sets.get_appset("default", "web").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        sets.delete_appset("default", "web").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        sets.set_appset_status("default", "web", &status).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn hub_app_status_is_indexed(store: &dyn Store) {
    use edgecd_hub::store::{AppFilter, AppQuery, NewApp};
    let app = NewApp {
        project: "default".into(),
        name: "parent".into(),
        spec: serde_json::from_value(json!({
            "source": {"repoURL": "https://git.example/apps", "path": "apps"},
            "destination": {"name": "in-cluster"}
        }))
        .unwrap(),
        labels: Default::default(),
        owner: None,
    };
    store.create_app(&app).await.unwrap();
    let status = ApplicationStatus {
        sync: SyncReport {
            status: SyncStatus::OutOfSync,
            revision: "abc".into(),
        },
        health: HealthReport {
            status: Health::Degraded,
            message: String::new(),
        },
        ..ApplicationStatus::default()
    };
    store
        .appsets()
        .set_hub_app_status("default", "parent", &status)
        .await
        .unwrap();
    let read = store.get_app("default", "parent").await.unwrap();
    assert_eq!(read.cluster, "in-cluster");
    let stored = read.status.unwrap();
    assert_eq!(
        (stored.sync.status, stored.health.status),
        (SyncStatus::OutOfSync, Health::Degraded)
    );
    // The indexed columns follow: filters see it.
    let page = store
        .list_apps(&AppQuery {
            filter: AppFilter {
                health: vec![Health::Degraded],
                ..AppFilter::default()
            },
            sort: Default::default(),
            page_size: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].sync, SyncStatus::OutOfSync);
    assert!(matches!(
        store
            .appsets()
            .set_hub_app_status("default", "nope", &status)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

/// The resources clusterDecisionResource generators read: created, written again only when they differ (so an
/// unchanged apply re-evaluates nothing), listed in order, deleted.
async fn decision_resources_are_kept(store: &dyn Store) {
    let sets = store.appsets();
    let api = "cluster.open-cluster-management.io/v1beta1";
    let labels: std::collections::BTreeMap<String, String> = [(
        "cluster.open-cluster-management.io/placement".to_owned(),
        "web".to_owned(),
    )]
    .into();
    let status = json!({"decisions": [{"clusterName": "edge-1", "reason": ""}]});
    let config =
        json!({"apiVersion": api, "kind": "placementdecisions", "matchKey": "clusterName"});
    let none = std::collections::BTreeMap::new();
    assert!(
        sets.put_decision_resource(api, "PlacementDecision", "web-1", &labels, &status)
            .await
            .unwrap()
    );
    assert!(
        sets.put_decision_resource("v1", "ConfigMap", "ocm", &none, &config)
            .await
            .unwrap()
    );
    assert!(
        !sets
            .put_decision_resource(api, "PlacementDecision", "web-1", &labels, &status)
            .await
            .unwrap()
    );
    let moved = json!({"decisions": [{"clusterName": "edge-2", "reason": ""}]});
    assert!(
        sets.put_decision_resource(api, "PlacementDecision", "web-1", &labels, &moved)
            .await
            .unwrap()
    );
    assert!(
        sets.put_decision_resource(api, "PlacementDecision", "web-1", &none, &moved)
            .await
            .unwrap()
    );
    let all = sets.list_decision_resources().await.unwrap();
    let keys: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|r| (r.api_version.as_str(), r.kind.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            (api, "PlacementDecision", "web-1"),
            ("v1", "ConfigMap", "ocm")
        ]
    );
    assert_eq!(all[0].body, moved);
    assert!(all[0].labels.is_empty());
    assert_eq!(all[1].body, config);
    sets.delete_decision_resource("v1", "ConfigMap", "ocm")
        .await
        .unwrap();
    assert!(matches!(
        sets.delete_decision_resource("v1", "ConfigMap", "ocm")
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(sets.list_decision_resources().await.unwrap().len(), 1);
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = crate::sqlite_store().await;
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = crate::pg_store().await;
                    super::$name(&store).await;
                }
            )*
        }
    };
}

both!(
    appsets_crud,
    hub_app_status_is_indexed,
    decision_resources_are_kept
);
