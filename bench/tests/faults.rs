//! The faults harness in reduced form, run by CI: each scenario (a replica killed under load, a reconnect storm, a partition, PostgreSQL restarted, PostgreSQL failed over to its standby, the database slowed by a lock) against real `edgecd-hub` processes on a real PostgreSQL; the checker's invariants must hold and the fault must have happened. Times are figures, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edgecd_bench::faults::{FaultsBench, Report, Scenario};

/// The scenarios share two cores: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn reduced(scenario: Scenario) -> FaultsBench {
    FaultsBench {
        scenario,
        replicas: 3,
        streams: 24,
        apps: 5,
        rate: 400,
        command_every_ms: 250,
        before_s: 3,
        after_s: 5,
        storm_streams: 300,
        partition_s: 6,
        partition_share: 0.25,
        pg_down_s: 3,
        slow_db_s: 4,
        callers: 48,
        real_spokes: 1,
        heartbeat_ms: 500,
        stale_after_ms: 2_000,
        hub_binary: Some(
            edgecd_testkit::binaries::workspace_binary("edgecd-hub", "edgecd-hub").unwrap(),
        ),
        log_dir: None,
    }
}

async fn run(scenario: Scenario) -> Report {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut reports = reduced(scenario).run_scenarios().await.unwrap();
    assert_eq!(reports.len(), 1);
    let report = reports.remove(0);
    assert!(
        report.verdict.violations.is_empty(),
        "{scenario:?}: invariants violated:\n{}\nfigures: {:?}",
        report.verdict.violations.join("\n"),
        report.verdict.figures
    );
    // The load ran: statuses were acknowledged and commands issued, all checked; the real spoke deployed the
    // commit made after the fault.
    assert!(figure(&report, "acknowledged_changes") > 0.0);
    assert!(figure(&report, "commands_issued") > 0.0);
    assert!(figure(&report, "real_spokes_deployed_new_commit_s") >= 0.0);
    assert!(figure(&report, "commands_to_real_spokes") > 0.0);
    report
}

fn figure(report: &Report, name: &str) -> f64 {
    report
        .verdict
        .figures
        .get(name)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("figure {name} missing: {:?}", report.verdict.figures))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_no_acknowledged_status_and_no_command() {
    let report = run(Scenario::Kill).await;
    // The replica's streams were lost and came back on the survivors.
    assert!(figure(&report, "streams_reconnected") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_cut_at_once_resyncs_and_loses_nothing() {
    let report = run(Scenario::Storm).await;
    // Every stream was cut (a late heartbeat on a busy machine may cut one again).
    assert!(figure(&report, "stream_losses") >= 300.0);
    assert!(figure(&report, "all_resynced_after_restart_s") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_is_shown_stale_in_time_and_converges_after_the_heal() {
    let report = run(Scenario::Partition).await;
    // Every cut-off cluster was seen leave Connected: 6 of the 24 simulated streams, and the real spoke.
    assert_eq!(figure(&report, "cuts_observed_stale"), 7.0);
    assert!(figure(&report, "converged_after_heal_s") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_loses_nothing_and_the_api_answers_again() {
    let report = run(Scenario::PgRestart).await;
    // Present only if every replica answered a read after the restart.
    assert!(figure(&report, "api_answering_after_restart_s") >= 0.0);
    assert_eq!(figure(&report, "postgres_down_s"), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_failover_to_the_synchronous_standby_is_followed_without_a_restart_and_loses_nothing()
 {
    let report = run(Scenario::PgFailover).await;
    // Reads and writes through the API came back on the promoted standby.
    assert!(figure(&report, "api_reads_after_promotion_s") >= 0.0);
    assert!(figure(&report, "api_writes_after_promotion_s") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_makes_the_hub_push_back_with_retry_after_instead_of_queuing() {
    let report = run(Scenario::SlowDb).await;
    // Pushback happened (the invariants hold that every refusal carried retry-after and no call hung).
    let refused =
        figure(&report, "refused_resource_exhausted") + figure(&report, "refused_unavailable");
    assert!(refused > 0.0, "{:?}", report.verdict.figures);
}
