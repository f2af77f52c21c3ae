//! PostgreSQL-only behaviour: notifications across two store instances (two hub replicas) and surviving a database restart.

use std::time::{Duration, Instant};

use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::*;
use edgecd_testkit::PgServer;
use futures::StreamExt as _;
use time::OffsetDateTime;

use crate::fixtures::*;

fn command_for(cluster: &str) -> NewCommand {
    NewCommand {
        id: None,
        project: "default".into(),
        app: "web".into(),
        cluster: cluster.into(),
        kind: "refresh".into(),
        payload: serde_json::json!({}),
        issued_by: "alice".into(),
        deadline: OffsetDateTime::now_utc() + time::Duration::minutes(5),
        trace: None,
    }
}

/// A command issued on replica A reaches a listener on replica B (another
/// pool on the same database) within a second, and B finds it durable.
#[tokio::test]
async fn a_command_on_one_replica_wakes_another() {
    let url = crate::pg_server().create_database().unwrap();
    let replica_a = PgStore::connect_url(&url).await.unwrap();
    let replica_b = PgStore::connect_url(&url).await.unwrap();
    let mut wakeups = replica_b.listen(&[COMMANDS_CHANNEL]).await.unwrap();
    let issued = Instant::now();
    let command = replica_a
        .enqueue_command(&command_for("edge-9"))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(1), wakeups.next())
        .await
        .expect("notified within a second")
        .expect("stream open");
    assert_eq!(
        event,
        ListenEvent::Notification {
            channel: COMMANDS_CHANNEL.into(),
            payload: "edge-9".into()
        }
    );
    assert!(issued.elapsed() < Duration::from_secs(1));
    let deliverable = replica_b
        .list_deliverable_commands("edge-9", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(deliverable.len(), 1);
    assert_eq!(deliverable[0].id, command.id);
}

/// Retries a store call until the database answers again.
async fn eventually<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) if Instant::now() < deadline => {
                assert!(
                    error.is_transient() || matches!(error, StoreError::Database(_)),
                    "{error:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
}

/// PostgreSQL crashes and comes back: the same store (pool) and the same
/// listener work again, and everything committed before the crash is there.
#[tokio::test]
async fn the_store_survives_a_postgres_restart() {
    // Its own server: stopping the shared one would break other tests.
    let mut server = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let url = server.create_database().unwrap();
    let store = PgStore::connect_url(&url).await.unwrap();
    let mut listener = store.listen(&[COMMANDS_CHANNEL]).await.unwrap();
    store
        .create_cluster(&cluster("c1", &[("region", "eu")]))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "web", "c1"))
        .await
        .unwrap();
    let acked = store
        .ingest_status_batch(
            "c1",
            &at("e", 7),
            &StatusBatch {
                reports: vec![report(
                    "default",
                    "web",
                    status(SyncStatus::Synced, Health::Healthy, 3),
                )],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(acked.applied, 1);
    let before = store.enqueue_command(&command_for("c1")).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(1), listener.next()).await,
        Ok(Some(ListenEvent::Notification { .. }))
    ));

    let mut server = tokio::task::spawn_blocking(move || {
        server.stop().unwrap();
        server
    })
    .await
    .unwrap();
    let down = store.get_app("default", "web").await;
    assert!(
        matches!(&down, Err(e) if e.is_transient()),
        "a stopped database is Unavailable: {down:?}"
    );
    let server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();

    // The pool reconnects.
    let web = eventually(|| store.get_app("default", "web")).await;
    assert_eq!(web.status.map(|s| s.status_version), Some(3));
    let link = store.get_link_state("c1").await.unwrap();
    assert_eq!(
        (link.spoke_epoch.as_str(), link.spoke_seq),
        ("e", 7),
        "acknowledged seq kept"
    );
    assert_eq!(
        store.get_command(&before.id).await.unwrap().outcome,
        CommandOutcome::Pending
    );
    // A replay of the acknowledged batch is still recognised.
    let replay = store
        .ingest_status_batch("c1", &at("e", 7), &StatusBatch::default())
        .await
        .unwrap();
    assert!(replay.duplicate);

    // The listener re-subscribed: it reports the gap, then new notifications.
    let after = store.enqueue_command(&command_for("c1")).await.unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !events
        .iter()
        .any(|e| matches!(e, ListenEvent::Notification { .. }))
    {
        assert!(
            Instant::now() < deadline,
            "no notification after the restart: {events:?}"
        );
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(500), listener.next()).await
        {
            events.push(event);
        } else {
            // Notifications sent while the listener was reconnecting are
            // lost by design (it reports Lagged); send another.
            store.notify(COMMANDS_CHANNEL, "c1").await.unwrap();
        }
    }
    assert_eq!(events.first(), Some(&ListenEvent::Lagged), "{events:?}");
    let deliverable = store
        .list_deliverable_commands("c1", OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(
        deliverable
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        [before.id.as_str(), after.id.as_str()]
    );
    drop(server);
}

/// Polls `try` every 100 ms for up to 20 s until it yields something.
async fn within_20s<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One replica at a time holds a role (the hub's application-set
/// evaluation): a second store is refused while the first holds it and gets
/// it once the first gives it up; a holder whose database session is
/// terminated reports the role lost, and another replica can then take it.
#[tokio::test]
async fn one_replica_holds_a_role_at_a_time() {
    let url = crate::pg_server().create_database().unwrap();
    let a = PgStore::connect_url(&url).await.unwrap();
    let b = PgStore::connect_url(&url).await.unwrap();
    let held_by_a = a
        .try_lead("appsets")
        .await
        .unwrap()
        .expect("a free role is granted");
    assert!(b.try_lead("appsets").await.unwrap().is_none());
    let other = b.try_lead("other").await.unwrap();
    assert!(other.is_some(), "roles are independent");
    drop(other);
    assert!(!held_by_a.is_lost());

    drop(held_by_a);
    let held_by_b = within_20s("b takes the role a gave up", || async {
        b.try_lead("appsets").await.unwrap()
    })
    .await;
    assert!(a.try_lead("appsets").await.unwrap().is_none());

    // The database ends b's session (an administrator, a failover).
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(terminated, [true], "one session holds an advisory lock");
    within_20s("b notices the role is lost", || async {
        held_by_b.is_lost().then_some(())
    })
    .await;
    within_20s("a takes the role over", || async {
        a.try_lead("appsets").await.unwrap()
    })
    .await;
}

/// A database that accepts only TLS (as a managed PostgreSQL does with `sslmode=verify-full` in its URL): the
/// store connects over TLS, verifying the server's certificate against the CA named by `sslrootcert`, and runs
/// its migrations and queries; with another CA the connection is refused, so the certificate was checked.
#[tokio::test]
async fn the_store_connects_over_tls_and_verifies_the_server() {
    let server = PgServer::start_tls().unwrap();
    let ca = server.tls_ca_file().unwrap().display().to_string();
    let url = server.create_database().unwrap();
    let store = PgStore::connect_url(&format!("{url}?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .unwrap();
    store.check_intact().unwrap();
    store
        .create_cluster(&NewCluster {
            name: "edge-tls".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_cluster("edge-tls").await.unwrap().name,
        "edge-tls"
    );

    // Another CA's certificate as the root: the server is not trusted.
    let other = PgServer::start_tls().unwrap();
    let other_ca = other.tls_ca_file().unwrap().display().to_string();
    let refused =
        PgStore::connect_url(&format!("{url}?sslmode=verify-full&sslrootcert={other_ca}")).await;
    assert!(
        refused.is_err(),
        "a server certificate of another CA was accepted"
    );
}

/// A transaction the server rolled back for a deadlock or a serialization failure is tried again, not failed:
/// those errors are transient (what a group of status batches and an app's move across clusters, which lock
/// link rows in different orders, can run into); a constraint violation is not.
#[tokio::test]
async fn deadlocks_and_serialization_failures_are_transient() {
    let url = crate::pg_server().create_database().unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for (code, transient) in [("40P01", true), ("40001", true), ("23505", false)] {
        let raised = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{code}'; END $$"
        )))
        .execute(&pool)
        .await
        .expect_err("raised");
        let error = StoreError::from(raised);
        assert_eq!(error.is_transient(), transient, "{code}: {error:?}");
        assert_eq!(error.transient_copy().is_some(), transient, "{code}");
    }
}
