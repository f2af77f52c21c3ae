//! The checker: what the hub showed while the faults ran (cluster connection states, which replica held the fleet-wide job), what the operator issued, and after the heal the assertions that nothing acknowledged was lost, every command ran once in effect, no cut-off cluster looked connected, and one writer ran each job.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::journal::Journal;
use super::spoke::{PROJECT, version_of};

/// What the monitor saw and the harness did, with times.
#[derive(Debug, Default)]
pub struct Record {
    /// (when, cluster, state) of the watched clusters.
    pub states: Vec<(Instant, String, i32)>,
    /// (when, replica, app name) of watched apps shown Healthy with the cluster's connection state.
    pub healthy_apps: Vec<(Instant, String, i32)>,
    /// (when, replicas holding the `appsets` role at that poll).
    pub leaders: Vec<(Instant, Vec<String>)>,
    /// cluster → (cut, healed) intervals.
    pub cuts: BTreeMap<String, Vec<(Instant, Option<Instant>)>>,
    /// Command ids the API returned, with the app each is for.
    pub issued: BTreeMap<String, String>,
    /// When each was returned.
    pub issued_at: Vec<Instant>,
    /// Request ids of calls not answered (yet): each may have issued its command (taking the request id
    /// as its id) or not.
    pub unanswered: BTreeSet<String>,
}

/// The live replicas' endpoints (gRPC, HTTP), as the harness changes them.
pub type Replicas = Arc<Mutex<Vec<(String, String, std::net::SocketAddr)>>>;

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Polls the hub every `period` for the watched clusters' states, their apps, and every replica's leader
/// gauge: three loops side by side, so a slow one (a hundred apps read under load) does not stretch the
/// others' period, and a state is observed within about one `ListClusters` call of its change.
pub fn spawn_monitor(
    replicas: Replicas,
    watched: Vec<(String, String)>,
    record: Arc<Mutex<Record>>,
    period: Duration,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::join!(
            poll_states(&replicas, &watched, &record, period, stop.clone()),
            poll_apps(&replicas, &watched, &record, period, stop.clone()),
            poll_leaders(&replicas, &record, period, stop),
        );
    })
}

/// Waits for the next tick of `tick`; false once `stop` changed (the fleet stopped).
async fn next_tick(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tick.tick() => true,
        _ = stop.changed() => false,
    }
}

fn every(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// The live replicas in turn: an API client of the next one.
fn next_replica(
    replicas: &Replicas,
    turn: &mut usize,
) -> Option<HubServiceClient<tonic::transport::Channel>> {
    let live = lock(replicas).clone();
    if live.is_empty() {
        return None;
    }
    *turn = turn.wrapping_add(1);
    let channel = super::super::simspoke::channel(&live[*turn % live.len()].0).ok()?;
    Some(HubServiceClient::new(channel))
}

/// The watched clusters' connection states, from `ListClusters`.
async fn poll_states(
    replicas: &Replicas,
    watched: &[(String, String)],
    record: &Mutex<Record>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if watched.is_empty() {
        return;
    }
    let (mut tick, mut turn) = (every(period), 0_usize);
    while next_tick(&mut tick, &mut stop).await {
        let Some(mut api) = next_replica(replicas, &mut turn) else {
            continue;
        };
        let answer = tokio::time::timeout(Duration::from_secs(5), all_clusters(&mut api)).await;
        if let Ok(Ok(clusters)) = answer {
            let now = Instant::now();
            let mut record = lock(record);
            for (cluster, _) in watched {
                if let Some(c) = clusters.iter().find(|c| &c.name == cluster) {
                    let state = c.connection.as_ref().map_or(0, |s| s.state);
                    record.states.push((now, cluster.clone(), state));
                }
            }
        }
    }
}

/// One app of each watched cluster: shown Healthy, and with which connection state of its cluster. The
/// apps are read at once, each answer recorded when it arrives.
async fn poll_apps(
    replicas: &Replicas,
    watched: &[(String, String)],
    record: &Arc<Mutex<Record>>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    if watched.is_empty() {
        return;
    }
    let (mut tick, mut turn) = (every(period), 0_usize);
    while next_tick(&mut tick, &mut stop).await {
        let Some(api) = next_replica(replicas, &mut turn) else {
            continue;
        };
        let mut reads = tokio::task::JoinSet::new();
        for (cluster, app) in watched.iter().cloned() {
            let (mut api, record) = (api.clone(), Arc::clone(record));
            reads.spawn(async move {
                let answer = tokio::time::timeout(
                    Duration::from_secs(2),
                    api.get_application(v1::GetApplicationRequest {
                        app: Some(v1::AppRef {
                            project: PROJECT.into(),
                            name: app,
                        }),
                    }),
                )
                .await;
                if let Ok(Ok(app)) = answer {
                    let app = app.into_inner();
                    let healthy = app
                        .status
                        .as_ref()
                        .and_then(|s| s.health.as_ref())
                        .is_some_and(|h| h.status == v1::HealthStatusCode::Healthy as i32);
                    if healthy {
                        let state = app.cluster_connection.as_ref().map_or(0, |s| s.state);
                        lock(&record)
                            .healthy_apps
                            .push((Instant::now(), cluster, state));
                    }
                }
            });
        }
        while reads.join_next().await.is_some() {}
    }
}

/// Which replicas say they hold the `appsets` role (each one's gauge).
async fn poll_leaders(
    replicas: &Replicas,
    record: &Mutex<Record>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = every(period);
    while next_tick(&mut tick, &mut stop).await {
        let live = lock(replicas).clone();
        if live.is_empty() {
            continue;
        }
        let mut holders = Vec::new();
        for (_, id, http) in &live {
            let held = tokio::time::timeout(
                Duration::from_secs(2),
                crate::hub_metric(*http, "appsets_leader"),
            )
            .await;
            if matches!(held, Ok(Ok(v)) if v >= 1.0) {
                holders.push(id.clone());
            }
        }
        lock(record).leaders.push((Instant::now(), holders));
    }
}

/// Every cluster, paged through `ListClusters`.
async fn all_clusters(
    api: &mut HubServiceClient<tonic::transport::Channel>,
) -> Result<Vec<v1::Cluster>, tonic::Status> {
    let mut clusters = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_clusters(v1::ListClustersRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..v1::ListClustersRequest::default()
            })
            .await?
            .into_inner();
        clusters.extend(page.items);
        if page.next_page_token.is_empty() {
            return Ok(clusters);
        }
        token = page.next_page_token;
    }
}

/// What the checker concluded: violated invariants, and figures.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    pub figures: BTreeMap<String, serde_json::Value>,
}

impl Verdict {
    pub fn figure(&mut self, name: &str, value: impl Into<serde_json::Value>) {
        self.figures.insert(name.to_owned(), value.into());
    }
}

/// Every app's status revision as the hub shows it (app name → version), paged through `ListApplications`.
pub async fn hub_versions(endpoint: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    hub_versions_of(endpoint, v1::ApplicationFilter::default()).await
}

/// [`hub_versions`] of the apps `filter` selects.
pub async fn hub_versions_of(
    endpoint: &str,
    filter: v1::ApplicationFilter,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut api = HubServiceClient::new(super::super::simspoke::channel(endpoint)?)
        .max_decoding_message_size(64 << 20);
    let mut versions = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_applications(v1::ListApplicationsRequest {
                filter: Some(filter.clone()),
                page_size: 1000,
                page_token: token.clone(),
                ..v1::ListApplicationsRequest::default()
            })
            .await?
            .into_inner();
        for item in page.items {
            versions.insert(item.name, version_of(&item.revision).unwrap_or(0));
        }
        if page.next_page_token.is_empty() {
            return Ok(versions);
        }
        token = page.next_page_token;
    }
}

/// Waits (up to `limit`) until the hub shows every app at the cluster's current version; returns how long it
/// took, or `None` if it never did.
pub async fn wait_converged(
    endpoint: &str,
    journal: &Journal,
    apps: &[String],
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if journal.drained()
            && let Ok(shown) = hub_versions(endpoint).await
            && apps.iter().enumerate().all(|(i, name)| {
                shown.get(name).copied().unwrap_or(0) >= journal.current_version(i)
            })
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Acknowledged status: the hub shows, for every app, at least the newest version it acknowledged.
pub async fn check_status(
    endpoint: &str,
    journal: &Journal,
    apps: &[String],
    verdict: &mut Verdict,
) -> anyhow::Result<()> {
    let shown = hub_versions(endpoint).await?;
    compare_status(&shown, journal, apps, verdict);
    Ok(())
}

/// [`check_status`] on what the hub showed (`shown`: app name → version).
pub fn compare_status(
    shown: &BTreeMap<String, u64>,
    journal: &Journal,
    apps: &[String],
    verdict: &mut Verdict,
) {
    let mut lost = 0_u64;
    let mut acknowledged = 0_u64;
    for (i, name) in apps.iter().enumerate() {
        let acked = journal.acked_version(i);
        acknowledged += acked;
        let at_hub = shown.get(name).copied().unwrap_or(0);
        if at_hub < acked {
            lost += 1;
            if lost <= 5 {
                verdict.violations.push(format!(
                    "{name}: the hub acknowledged status version {acked} but shows {at_hub}"
                ));
            }
        }
    }
    if lost > 5 {
        verdict
            .violations
            .push(format!("… {lost} apps in all lost an acknowledged status"));
    }
    verdict.figure("apps_with_acknowledged_status_lost", lost);
    verdict.figure("acknowledged_changes", acknowledged);
}

/// Commands a spoke executed that no operator call issued: neither answered with their id nor still
/// unanswered under it (a request id is the id its command takes).
fn phantoms<'a>(
    executed: impl IntoIterator<Item = &'a String>,
    issued: &BTreeMap<String, String>,
    unanswered: &BTreeSet<String>,
) -> Vec<&'a String> {
    executed
        .into_iter()
        .filter(|id| !issued.contains_key(*id) && !unanswered.contains(*id))
        .collect()
}

/// Commands: every issued command executed (at least once, redeliveries deduplicated by id) and reported
/// Succeeded at the hub; nothing executed that was not issued. A command for one of `real_apps` (a real
/// spoke's, whose executions the journal does not see) must reach a final answer at the hub, which only the
/// spoke's report gives: Succeeded, or Failed because another operation of the app was still running (any
/// other failure is a violation). One left Running is lost. Waits up to `limit` for stragglers. A command
/// whose call was never answered (`unanswered`) need not run, and may.
pub async fn check_commands(
    endpoint: &str,
    journal: &Journal,
    issued: &BTreeMap<String, String>,
    unanswered: &BTreeSet<String>,
    real_apps: &BTreeSet<String>,
    limit: Duration,
    verdict: &mut Verdict,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut api = HubServiceClient::new(super::super::simspoke::channel(endpoint)?);
    let mut pending: BTreeSet<String> = issued.keys().cloned().collect();
    // The hub's last word on each command still pending: outcome and message.
    let mut last: BTreeMap<String, (i32, String)> = BTreeMap::new();
    loop {
        let executed = journal.commands();
        let mut still = BTreeSet::new();
        for id in &pending {
            let status = api
                .get_command(v1::GetCommandRequest {
                    command_id: id.clone(),
                })
                .await
                .map(tonic::Response::into_inner);
            let (outcome, message) = status.map_or((0, String::new()), |c| (c.outcome, c.message));
            let real = issued.get(id).is_some_and(|app| real_apps.contains(app));
            // A real spoke may refuse a sync while another operation of the app runs (as Argo CD does):
            // a final answer, not a lost command.
            let answered = outcome == v1::CommandOutcome::Succeeded as i32
                || (real
                    && outcome == v1::CommandOutcome::Failed as i32
                    && message.contains("another operation is already in progress"));
            if !(real || executed.contains_key(id)) || !answered {
                still.insert(id.clone());
                last.insert(id.clone(), (outcome, message));
            }
        }
        pending = still;
        if pending.is_empty() || start.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let executed = journal.commands();
    for id in pending.iter().take(5) {
        let app = issued.get(id).map_or("?", String::as_str);
        let (outcome, message) = last.get(id).cloned().unwrap_or_default();
        let outcome = v1::CommandOutcome::try_from(outcome)
            .map_or_else(|_| outcome.to_string(), |o| o.as_str_name().to_owned());
        let what = if real_apps.contains(app) {
            "a real spoke's command"
        } else if executed.contains_key(id) {
            "executed by the spoke"
        } else {
            "never executed"
        };
        verdict.violations.push(format!(
            "command {id} for {app} ({what}) is {outcome} at the hub ({message:?}), not Succeeded"
        ));
    }
    for id in phantoms(executed.keys(), issued, unanswered).iter().take(5) {
        verdict
            .violations
            .push(format!("command {id} executed but never issued"));
    }
    let redelivered: u32 = executed.values().map(|n| n.saturating_sub(1)).sum();
    verdict.figure("commands_issued", issued.len());
    verdict.figure("commands_unanswered", unanswered.len());
    verdict.figure(
        "commands_to_real_spokes",
        issued
            .values()
            .filter(|app| real_apps.contains(*app))
            .count(),
    );
    verdict.figure("commands_lost", pending.len());
    verdict.figure("commands_redelivered_deduplicated", redelivered);
    Ok(())
}

/// Connection honesty: no watched cluster shown Connected (and no app of one shown Healthy while its cluster
/// shows Connected) once it had been cut off longer than `bound`; and the time each cut took to show.
pub fn check_connections(record: &Record, bound: Duration, verdict: &mut Verdict) {
    let cut_for = |cluster: &str, at: Instant| -> Option<Duration> {
        record.cuts.get(cluster)?.iter().find_map(|(from, to)| {
            (at >= *from && to.is_none_or(|to| at <= to)).then(|| at - *from)
        })
    };
    let connected = v1::ConnectionStateCode::Connected as i32;
    let mut wrong = 0_usize;
    for (at, cluster, state) in &record.states {
        if *state == connected && cut_for(cluster, *at).is_some_and(|d| d > bound) {
            wrong += 1;
            if wrong <= 5 {
                verdict.violations.push(format!(
                    "{cluster} shown Connected {:.1} s into a cut (bound {:.1} s)",
                    cut_for(cluster, *at).unwrap_or_default().as_secs_f64(),
                    bound.as_secs_f64()
                ));
            }
        }
    }
    for (at, cluster, state) in &record.healthy_apps {
        if *state == connected && cut_for(cluster, *at).is_some_and(|d| d > bound) {
            wrong += 1;
            if wrong <= 10 {
                verdict.violations.push(format!(
                    "an app of {cluster} shown Healthy with its cluster Connected {:.1} s into a cut",
                    cut_for(cluster, *at).unwrap_or_default().as_secs_f64()
                ));
            }
        }
    }
    // Time from each cut to the first observation that is not Connected.
    let mut shown_after: Vec<f64> = Vec::new();
    for (cluster, cuts) in &record.cuts {
        for (from, to) in cuts {
            let first = record.states.iter().find(|(at, c, s)| {
                c == cluster && at >= from && to.is_none_or(|to| *at <= to) && *s != connected
            });
            if let Some((at, _, _)) = first {
                shown_after.push((*at - *from).as_secs_f64());
            }
        }
    }
    let max = shown_after.iter().copied().fold(0.0_f64, f64::max);
    verdict.figure("cut_shown_stale_max_s", (max * 10.0).round() / 10.0);
    verdict.figure("cuts_observed_stale", shown_after.len());
}

/// One writer per fleet-wide job: no two replicas held the `appsets` role for longer than `overlap`.
pub fn check_single_writer(record: &Record, overlap: Duration, verdict: &mut Verdict) {
    let mut since: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    // And the longest stretch with no writer (a takeover's delay).
    let mut none_since: Option<Instant> = None;
    let mut longest_none = Duration::ZERO;
    for (at, holders) in &record.leaders {
        if holders.len() > 1 {
            let from = *since.get_or_insert(*at);
            longest = longest.max(*at - from);
        } else {
            since = None;
        }
        if holders.is_empty() {
            none_since.get_or_insert(*at);
        } else if let Some(from) = none_since.take() {
            longest_none = longest_none.max(*at - from);
        }
    }
    // A gap still open at the last poll counts up to it.
    if let (Some(from), Some((last, _))) = (none_since, record.leaders.last()) {
        longest_none = longest_none.max(*last - from);
    }
    if longest > overlap {
        verdict.violations.push(format!(
            "two replicas held the appsets role at once for {:.1} s (documented overlap {:.1} s)",
            longest.as_secs_f64(),
            overlap.as_secs_f64()
        ));
    }
    let polls_with_one = record.leaders.iter().filter(|(_, h)| h.len() == 1).count();
    verdict.figure("leader_polls", record.leaders.len());
    verdict.figure("leader_polls_with_one_holder", polls_with_one);
    verdict.figure("leader_overlap_max_s", round1(longest));
    verdict.figure("leader_gap_max_s", round1(longest_none));
}

/// Seconds to one decimal.
pub fn round1(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(acked: &[u64]) -> Journal {
        let journal = Journal::new(acked.len(), 1);
        for (i, v) in acked.iter().enumerate() {
            journal.acknowledged(i, *v);
        }
        journal
    }

    #[test]
    fn a_command_executed_under_an_unanswered_request_id_is_no_phantom() {
        let issued = BTreeMap::from([("a".to_owned(), "app-1".to_owned())]);
        let unanswered = BTreeSet::from(["b".to_owned()]);
        let executed = ["a", "b", "c"].map(str::to_owned);
        assert_eq!(
            phantoms(&executed, &issued, &unanswered),
            vec![&"c".to_owned()]
        );
        assert!(phantoms(&executed[..2], &issued, &unanswered).is_empty());
    }

    #[test]
    fn a_status_the_hub_acknowledged_and_no_longer_shows_is_a_loss() {
        let apps = vec!["a".to_owned(), "b".to_owned()];
        let journal = journal_with(&[4, 7]);
        let mut verdict = Verdict::default();
        let shown = BTreeMap::from([("a".to_owned(), 4), ("b".to_owned(), 6)]);
        compare_status(&shown, &journal, &apps, &mut verdict);
        assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
        assert!(
            verdict.violations[0]
                .starts_with("b: the hub acknowledged status version 7 but shows 6")
        );
        assert_eq!(verdict.figures["apps_with_acknowledged_status_lost"], 1);

        // Newer than acknowledged (stored, the acknowledgement lost with the stream) is no loss.
        let mut verdict = Verdict::default();
        let shown = BTreeMap::from([("a".to_owned(), 5), ("b".to_owned(), 7)]);
        compare_status(&shown, &journal, &apps, &mut verdict);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    }

    #[test]
    fn connected_past_the_bound_into_a_cut_is_a_violation_and_within_it_is_not() {
        let t0 = Instant::now();
        let connected = v1::ConnectionStateCode::Connected as i32;
        let stale = v1::ConnectionStateCode::Stale as i32;
        let mut record = Record::default();
        record.cuts.insert(
            "edge-1".into(),
            vec![(t0, Some(t0 + Duration::from_secs(20)))],
        );
        record.states = vec![
            (t0 + Duration::from_secs(2), "edge-1".into(), connected),
            (t0 + Duration::from_secs(3), "edge-1".into(), stale),
        ];
        let mut verdict = Verdict::default();
        check_connections(&record, Duration::from_secs(5), &mut verdict);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.figures["cut_shown_stale_max_s"], 3.0);

        record
            .states
            .push((t0 + Duration::from_secs(9), "edge-1".into(), connected));
        record
            .healthy_apps
            .push((t0 + Duration::from_secs(9), "edge-1".into(), connected));
        // After the heal, Connected is right again.
        record
            .states
            .push((t0 + Duration::from_secs(30), "edge-1".into(), connected));
        let mut verdict = Verdict::default();
        check_connections(&record, Duration::from_secs(5), &mut verdict);
        assert_eq!(verdict.violations.len(), 2, "{:?}", verdict.violations);
        assert!(verdict.violations[0].contains("shown Connected 9.0 s into a cut"));
        assert!(verdict.violations[1].contains("shown Healthy with its cluster Connected"));
    }

    #[test]
    fn two_writers_longer_than_the_overlap_is_a_violation() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let record = Record {
            leaders: vec![
                (at(0), vec!["r0".into()]),
                (at(1), vec![]),
                (at(4), vec!["r1".into()]),
                (at(5), vec!["r1".into(), "r2".into()]),
                (at(7), vec!["r1".into(), "r2".into()]),
                (at(8), vec!["r2".into()]),
            ],
            ..Record::default()
        };
        let mut verdict = Verdict::default();
        check_single_writer(&record, Duration::from_secs(3), &mut verdict);
        assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
        assert_eq!(verdict.figures["leader_overlap_max_s"], 2.0);
        assert_eq!(verdict.figures["leader_gap_max_s"], 3.0);
        let mut verdict = Verdict::default();
        check_single_writer(&record, Duration::from_secs(1), &mut verdict);
        assert_eq!(verdict.violations.len(), 1, "{:?}", verdict.violations);
    }
}
