//! Migration 0012 (edge apps named `name@cluster`) on both backends: a store whose edge app, its command and its event still carry the old bare name is re-opened, and everything works under the new name.

use edgecd_core::app::AppOrigin;
use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::*;
use time::OffsetDateTime;

use crate::fixtures::*;

/// What the store holds before the old names are put back: a hub app `web`
/// and an edge app `nginx@c1`, each with a command and an event.
pub async fn fill(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "web", "c1"))
        .await
        .unwrap();
    let batch = StatusBatch {
        reports: vec![autonomous_report(
            "default",
            "nginx@c1",
            "c1",
            status(SyncStatus::Synced, Health::Healthy, 1),
        )],
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 1), &batch)
        .await
        .unwrap();
    assert_eq!(outcome.created, 1, "{outcome:?}");
    for app in ["web", "nginx@c1"] {
        store
            .enqueue_command(&NewCommand {
                id: None,
                project: "default".into(),
                app: app.into(),
                cluster: "c1".into(),
                kind: "sync".into(),
                payload: serde_json::json!({"kind": "sync"}),
                issued_by: "alice".into(),
                deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
                trace: None,
            })
            .await
            .unwrap();
    }
    let events: Vec<EventRecord> = ["web", "nginx@c1"]
        .iter()
        .map(|app| EventRecord {
            id: format!("event-{app}"),
            seq: 0,
            cluster: "c1".into(),
            project: "default".into(),
            app: (*app).into(),
            resource: String::new(),
            severity: EventSeverity::Normal,
            reason: "Synced".into(),
            message: format!("{app} synced"),
            time: OffsetDateTime::now_utc(),
        })
        .collect();
    store
        .ingest_events("c1", &at("e", 2), &events)
        .await
        .unwrap();
}

/// SQL that puts the names back as they were before 0012 and forgets that
/// 0012 ran, so opening the store runs it again.
pub const UNDO_0012: [&str; 5] = [
    "UPDATE applications SET name = 'nginx' WHERE name = 'nginx@c1'",
    "UPDATE app_status SET name = 'nginx' WHERE name = 'nginx@c1'",
    "UPDATE commands SET app = 'nginx' WHERE app = 'nginx@c1'",
    "UPDATE events SET app = 'nginx' WHERE app = 'nginx@c1'",
    "DELETE FROM _sqlx_migrations WHERE version = 12",
];

/// After the migration ran again: the edge app, its command and its event
/// answer to `nginx@c1`, the hub app is untouched, and the spoke's next
/// report of the edge app is applied.
pub async fn check(store: &dyn Store) {
    let edge = store.get_app("default", "nginx@c1").await.unwrap();
    assert_eq!(
        (edge.origin, edge.cluster.as_str()),
        (AppOrigin::Autonomous, "c1")
    );
    assert!(matches!(
        store.get_app("default", "nginx").await,
        Err(StoreError::NotFound { .. })
    ));
    let web = store.get_app("default", "web").await.unwrap();
    assert_eq!(web.origin, AppOrigin::Managed);
    // The status row's copy of the name follows (lists search and sort on it).
    let page = store
        .list_apps(&AppQuery {
            filter: AppFilter {
                search: "nginx@c1".into(),
                ..AppFilter::default()
            },
            sort: AppSort {
                key: SortKey::Health,
                descending: false,
            },
            page_size: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].name, "nginx@c1");
    for (app, expected) in [("nginx@c1", 1), ("nginx", 0), ("web", 1)] {
        let scope = CommandScope::App {
            project: "default".into(),
            name: app.into(),
        };
        let commands = store.list_commands(&scope, 10, None).await.unwrap();
        assert_eq!(commands.items.len(), expected, "commands of {app}");
        let filter = EventFilter {
            cluster: None,
            app: Some(("default".into(), app.into())),
        };
        let events = store.list_events(&filter, 10, None).await.unwrap();
        assert_eq!(events.items.len(), expected, "events of {app}");
    }
    let batch = StatusBatch {
        reports: vec![autonomous_report(
            "default",
            "nginx@c1",
            "c1",
            status(SyncStatus::OutOfSync, Health::Degraded, 2),
        )],
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 3), &batch)
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1, "{outcome:?}");
    let edge = store.get_app("default", "nginx@c1").await.unwrap();
    assert_eq!(edge.status.map(|s| s.health.status), Some(Health::Degraded));
}

#[tokio::test]
async fn sqlite_edge_apps_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        fill(&store).await;
    }
    {
        use sqlx::ConnectOptions as _;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        for sql in UNDO_0012 {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let store = SqliteStore::open(&path).await.unwrap();
    check(&store).await;
}

#[tokio::test]
async fn postgres_edge_apps_are_renamed() {
    let url = crate::pg_server().create_database().unwrap();
    {
        let store = PgStore::connect_url(&url).await.unwrap();
        fill(&store).await;
    }
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in UNDO_0012 {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
    let store = PgStore::connect_url(&url).await.unwrap();
    check(&store).await;
}
