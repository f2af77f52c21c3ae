//! The store test-suite, written once against `&dyn Store` and run on both real backends: SQLite in a temp file and PostgreSQL from testkit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod appsets;
mod fixtures;
mod migration;
mod names;
mod postgres_only;
mod suite;

use std::sync::OnceLock;

use edgecd_hub::store::{PgStore, SqliteStore};
use edgecd_testkit::PgServer;

/// One PostgreSQL server per test binary; each test gets its own database.
fn pg_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start().expect("starting PostgreSQL"))
}

pub async fn pg_store() -> PgStore {
    let url = pg_server().create_database().expect("creating a database");
    PgStore::connect_url(&url).await.expect("opening the store")
}

pub async fn sqlite_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("hub.db"))
        .await
        .expect("opening the store");
    (store, dir)
}

/// Declares each suite function as a test on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::suite::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = super::pg_store().await;
                    super::suite::$name(&store).await;
                }
            )*
        }
    };
}

on_both_backends!(
    projects_crud,
    clusters_crud_and_connection,
    silent_clusters_are_disconnected,
    streams_own_their_connection_record,
    the_link_watch_sees_commands_edits_and_relabelling,
    a_link_opens_with_what_its_session_needs,
    a_status_group_stores_each_batch_as_alone,
    unreachable_clusters_count_their_apps_as_unknown,
    apps_crud_and_optimistic_concurrency,
    desired_changes_with_tombstones,
    status_ingest_is_idempotent_and_ordered,
    an_older_stream_stores_nothing_once_a_newer_one_claimed_the_link,
    autonomous_apps_and_full_snapshots,
    edge_apps_are_deleted_by_cluster,
    every_list_filter_matches_the_oracle,
    every_sort_walks_all_pages,
    cursors_are_bound_to_filter_and_sort,
    counts_match_the_oracle,
    command_outbox_lifecycle,
    commands_keep_their_trace_context,
    events_are_deduplicated,
    deployments_are_stored_once_and_listed_newest_first,
    audit_log_pages,
    users_and_tokens,
    resource_trees,
    notifications_reach_listeners,
    command_and_event_changes_are_announced,
    bulk_import,
    batch_ingest_keeps_the_per_report_rules,
    bulk_enqueue_commands,
    app_counts_per_cluster,
    counts_stay_exact_through_changes,
    names_select_the_hub_app_and_every_edge_app,
    replicas_register_their_peer_addresses,
);
