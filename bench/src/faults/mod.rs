//! `edgecd-bench faults`: hub replicas (processes) on one PostgreSQL, simulated spokes that keep the real spoke's promises, operator commands, and faults (a replica killed, a reconnect storm, a partition, PostgreSQL restarted); the checker then asserts that nothing acknowledged was lost and prints each scenario's figures.
//!
//! ```text
//!  load (status changes/s) ─► SimCluster ×N ─► Relay (load balancer; cuts a partition) ─► edgecd-hub ×R ─► PostgreSQL
//!  operator (SyncApplication every --command-every) ─────────────────────────────────────┘
//!  monitor (ListClusters, GetApplication, /metrics leader gauge) ─► Record ─► checker ◄─ Journal (what spokes saw)
//! ```

mod checker;
mod hubs;
mod journal;
mod real;
mod relay;
mod spoke;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use edgecd_hub::store::{ImportedApp, NewApp, NewCluster, PgStore, Store as _};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use rand::Rng as _;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use checker::Verdict;
use checker::{Record, Replicas, lock};
pub use hubs::{HubProcess, HubSettings, sibling_hub_binary};
use journal::Journal;
use relay::Relay;
use spoke::{SimCluster, SpokeSettings};

use super::simspoke::percentile_ms;

/// How long the operator retries one command (with its request id) before leaving it unanswered.
const OPERATOR_RETRY_FOR: Duration = Duration::from_secs(30);

/// The fault scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `kill -9` of a hub replica under load; its spokes reconnect to the survivors.
    Kill,
    /// Every stream cut at once (the hub killed and started again); time until all are resynced.
    Storm,
    /// Some spokes cut off from the hub (a black-holing relay) while their clusters keep changing; then healed.
    Partition,
    /// PostgreSQL stopped abruptly and started again, the hub left running.
    PgRestart,
    /// The PostgreSQL primary killed and its synchronous hot standby promoted; the hubs follow through their
    /// multi-host URL, not restarted.
    PgFailover,
    /// The database slowed: a lock held on the status table while operators call the API; the hub must push
    /// back (RESOURCE_EXHAUSTED, every connection in use, with `retry-after`) instead of queuing without bound.
    SlowDb,
    /// Every scenario above, one after the other.
    All,
}

/// Options of the faults harness; the defaults are the full-size runs of docs/reliability.md.
#[derive(Debug, Clone, clap::Args)]
pub struct FaultsBench {
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Hub replicas sharing the database (the storm restarts a single one).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Simulated spoke streams (kill, partition, pg-restart).
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Apps per stream.
    #[arg(long, default_value_t = 5)]
    pub apps: usize,
    /// Status changes per second over the whole fleet.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// How often the operator issues a sync, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub command_every_ms: u64,
    /// Seconds of load before the fault.
    #[arg(long, default_value_t = 10)]
    pub before_s: u64,
    /// Seconds of load after the fault (or the heal).
    #[arg(long, default_value_t = 20)]
    pub after_s: u64,
    /// Streams of the reconnect storm (one app each).
    #[arg(long, default_value_t = 10_000)]
    pub storm_streams: usize,
    /// How long the partition lasts, in seconds.
    #[arg(long, default_value_t = 120)]
    pub partition_s: u64,
    /// Share of the streams cut off by the partition.
    #[arg(long, default_value_t = 0.1)]
    pub partition_share: f64,
    /// How long PostgreSQL stays down, in seconds.
    #[arg(long, default_value_t = 10)]
    pub pg_down_s: u64,
    /// Real spokes (the spoke's engine and link on emulated clusters, syncing a git repository) beside the
    /// simulated ones; with a partition, the first is cut off too.
    #[arg(long, default_value_t = 2)]
    pub real_spokes: usize,
    /// How long the slow-database scenario holds its lock, in seconds.
    #[arg(long, default_value_t = 10)]
    pub slow_db_s: u64,
    /// Operators calling the API at once while the database is slow (above the hub's 512 calls in flight).
    #[arg(long, default_value_t = 600)]
    pub callers: usize,
    /// The hubs' heartbeat interval, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// The hubs' staleness threshold, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub stale_after_ms: u64,
    /// The `edgecd-hub` binary (default: beside `edgecd-bench`).
    #[arg(long)]
    pub hub_binary: Option<PathBuf>,
    /// Where the hub replicas' logs go, kept after the run (default: a temporary directory removed with it).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
}

/// How the hub converged after a partition healed (times since the heal).
struct Convergence {
    /// Every change made before the heal stored (acknowledged to its spoke).
    stored: Option<Duration>,
    /// And shown by the API.
    shown: Option<Duration>,
    /// When each cut cluster had all of its stored.
    clusters: Vec<(String, Duration)>,
}

/// One scenario's outcome.
#[derive(Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub verdict: Verdict,
}

impl FaultsBench {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let reports = runtime.block_on(self.run_scenarios())?;
        print_table(&reports);
        let failed: Vec<String> = reports
            .iter()
            .flat_map(|r| {
                r.verdict
                    .violations
                    .iter()
                    .map(move |v| format!("{:?}: {v}", r.scenario))
            })
            .collect();
        if !failed.is_empty() {
            bail!("invariants violated:\n{}", failed.join("\n"));
        }
        Ok(())
    }

    /// Runs the chosen scenarios; each report holds its violations (none expected) and figures.
    pub async fn run_scenarios(&self) -> anyhow::Result<Vec<Report>> {
        let chosen = match self.scenario {
            Scenario::All => vec![
                Scenario::Kill,
                Scenario::Storm,
                Scenario::Partition,
                Scenario::PgRestart,
                Scenario::PgFailover,
                Scenario::SlowDb,
            ],
            one => vec![one],
        };
        let binary = match &self.hub_binary {
            Some(path) => path.clone(),
            None => sibling_hub_binary()?,
        };
        let mut reports = Vec::new();
        for scenario in chosen {
            eprintln!("faults: {scenario:?}…");
            let verdict = match scenario {
                Scenario::Kill => self.kill(&binary).await?,
                Scenario::Storm => self.storm(&binary).await?,
                Scenario::Partition => self.partition(&binary).await?,
                Scenario::PgRestart => self.pg_restart(&binary).await?,
                Scenario::PgFailover => self.pg_failover(&binary).await?,
                Scenario::SlowDb => self.slow_db(&binary).await?,
                Scenario::All => continue,
            };
            let report = Report { scenario, verdict };
            println!("{}", json_line(&report));
            reports.push(report);
        }
        Ok(reports)
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(1))
    }

    fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms.max(1))
    }

    /// How long a cut may go unseen: the threshold, one heartbeat (the hub checks on its heartbeat tick) and a
    /// second for the write and the monitor's poll.
    fn connection_bound(&self) -> Duration {
        self.stale_after() + self.heartbeat() + Duration::from_secs(1)
    }

    /// The usual fleet: the replicas, streams and apps asked for, through relays, no partition, no standby.
    fn shape(&self) -> FleetShape {
        FleetShape {
            replicas: self.replicas.max(1),
            streams: self.streams,
            apps: self.apps,
            cut_group: 0,
            via_relay: true,
            standby: false,
        }
    }

    /// Starts a scenario's fleet and its load, and lets it run for `before_s`.
    async fn loaded(&self, binary: &std::path::Path, shape: FleetShape) -> anyhow::Result<Fleet> {
        let mut fleet = Fleet::start(self, binary, shape).await?;
        fleet.start_load(self.rate, Duration::from_millis(self.command_every_ms));
        tokio::time::sleep(Duration::from_secs(self.before_s)).await;
        Ok(fleet)
    }

    async fn kill(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let mut fleet = self
            .loaded(
                binary,
                FleetShape {
                    replicas: self.replicas.max(2),
                    ..self.shape()
                },
            )
            .await?;
        let before = (
            fleet.journal.reconnects().len(),
            fleet.journal.recoveries().len(),
        );
        let victim_pid = fleet.hubs[0].pid();
        fleet.kill_replica(0).await?;
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_secs(self.after_s)).await;
        let mut verdict = fleet.finish(self).await?;
        let mut reconnects: Vec<Duration> = fleet.journal.reconnects()[before.0..].to_vec();
        let mut caught_up: Vec<Duration> = fleet.journal.recoveries()[before.1..].to_vec();
        verdict.figure("killed_pid", victim_pid.unwrap_or_default());
        verdict.figure("streams_reconnected", reconnects.len());
        for (name, samples) in [
            ("reconnect", &mut reconnects),
            ("caught_up", &mut caught_up),
        ] {
            for (label, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
                verdict.figure(
                    &format!("{name}_{label}_ms"),
                    ms1(percentile_ms(samples, p)),
                );
            }
        }
        verdict.figure("seconds_after_kill", killed.elapsed().as_secs_f64().round());
        if reconnects.is_empty() {
            verdict
                .violations
                .push("no stream was lost: the kill did not happen".into());
        }
        fleet.stop().await;
        Ok(verdict)
    }

    async fn storm(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let mut fleet = Fleet::start(
            self,
            binary,
            FleetShape {
                replicas: 1,
                streams: self.storm_streams,
                apps: 1,
                cut_group: 0,
                via_relay: false,
                standby: false,
            },
        )
        .await?;
        // A trickle of changes; the storm is the resync.
        fleet.start_load(
            (self.storm_streams as u64 / 10).max(1),
            Duration::from_millis(self.command_every_ms),
        );
        tokio::time::sleep(Duration::from_secs(self.before_s.min(5))).await;
        let commits_before = fleet.commits();
        fleet.hubs[0].kill().await?;
        let cut = Instant::now();
        fleet.hubs[0].restart().await?;
        let up = Instant::now();
        let pid = fleet.hubs[0].pid().unwrap_or_default();
        let total = fleet.clusters.len();
        let mut rss_max = 0_u64;
        let limit = Duration::from_secs(300);
        let resynced_after = loop {
            rss_max = rss_max.max(super::simspoke::rss_kib(pid).unwrap_or(0));
            if fleet.journal.resynced_count() >= total {
                break Some(up.elapsed());
            }
            if up.elapsed() > limit {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let commits = fleet.commits().saturating_sub(commits_before);
        let storm_s = resynced_after.map_or(f64::NAN, |d| d.as_secs_f64());
        let mut verdict = fleet.finish(self).await?;
        let mut reconnects = fleet.journal.reconnects();
        match resynced_after {
            Some(d) => {
                verdict.figure("all_resynced_after_restart_s", checker::round1(d));
                // The restart is done when the API answers, which the storm itself delays: from the kill too.
                verdict.figure("all_resynced_after_kill_s", checker::round1(d + (up - cut)));
            }
            None => verdict.violations.push(format!(
                "not every stream resynced within {limit:?} of the restart"
            )),
        }
        verdict.figure("streams", total);
        verdict.figure("restart_took_ms", (up - cut).as_millis() as u64);
        verdict.figure(
            "reconnect_p99_ms",
            ms1(percentile_ms(&mut reconnects, 99.0)),
        );
        verdict.figure("hub_rss_max_mib", rss_max / 1024);
        verdict.figure("db_transactions_during_storm", commits);
        if storm_s.is_finite() && storm_s > 0.0 {
            verdict.figure("db_transactions_per_s", (commits as f64 / storm_s).round());
        }
        fleet.stop().await;
        Ok(verdict)
    }

    async fn partition(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let cut_group = ((self.streams as f64 * self.partition_share).ceil() as usize)
            .clamp(1, self.streams.max(1));
        let mut fleet = self
            .loaded(
                binary,
                FleetShape {
                    cut_group,
                    ..self.shape()
                },
            )
            .await?;
        fleet.cut();
        tokio::time::sleep(Duration::from_secs(self.partition_s)).await;
        let targets = fleet.cut_targets();
        fleet.heal();
        let healed = Instant::now();
        let convergence = fleet
            .converged_within(&targets, healed, Duration::from_secs(120))
            .await;
        let (stored_after, shown_after) = (convergence.stored, convergence.shown);
        tokio::time::sleep(Duration::from_secs(self.after_s.min(5))).await;
        let mut back: Vec<Duration> = fleet.clusters[..fleet.cut_group]
            .iter()
            .filter_map(|c| fleet.journal.welcomed_after(c, healed))
            .map(|at| at - healed)
            .collect();
        // Where the time goes: a cluster's Welcome after the heal, then its resend until stored.
        let mut converged: Vec<Duration> = convergence.clusters.iter().map(|(_, at)| *at).collect();
        let mut resend: Vec<Duration> = convergence
            .clusters
            .iter()
            .filter_map(|(cluster, at)| {
                let welcomed = fleet.journal.welcomed_after(cluster, healed)? - healed;
                Some(at.saturating_sub(welcomed))
            })
            .collect();
        let mut verdict = fleet.finish(self).await?;
        for (name, samples) in [
            ("cluster_converged", &mut converged),
            ("resend_after_welcome", &mut resend),
        ] {
            for (label, p) in [("p50", 50.0), ("p90", 90.0), ("max", 100.0)] {
                verdict.figure(
                    &format!("{name}_{label}_ms"),
                    ms1(percentile_ms(samples, p)),
                );
            }
        }
        verdict.figure(
            "reconnected_after_heal_p50_ms",
            ms1(percentile_ms(&mut back, 50.0)),
        );
        verdict.figure(
            "reconnected_after_heal_max_ms",
            ms1(percentile_ms(&mut back, 100.0)),
        );
        match (stored_after, shown_after) {
            (Some(stored), Some(shown)) => {
                verdict.figure("converged_after_heal_s", checker::round1(stored));
                verdict.figure("shown_by_api_after_heal_s", checker::round1(shown));
            }
            _ => verdict
                .violations
                .push("the hub did not converge within 120 s of the heal".into()),
        }
        verdict.figure("streams_cut", cut_group);
        verdict.figure("partition_s", self.partition_s);
        verdict.figure("stale_after_s", self.stale_after().as_secs_f64());
        fleet.stop().await;
        Ok(verdict)
    }

    async fn pg_restart(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let mut fleet = self.loaded(binary, self.shape()).await?;
        fleet.stop_postgres().await?;
        tokio::time::sleep(Duration::from_secs(self.pg_down_s)).await;
        fleet.start_postgres().await?;
        let up = Instant::now();
        let answering = fleet.api_answering_within(Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(self.after_s)).await;
        let mut verdict = fleet.finish(self).await?;
        match answering {
            Some(d) => verdict.figure("api_answering_after_restart_s", checker::round1(d)),
            None => verdict
                .violations
                .push("a replica's API did not answer within 60 s of PostgreSQL's restart".into()),
        }
        verdict.figure("postgres_down_s", self.pg_down_s);
        verdict.figure("since_restart_s", up.elapsed().as_secs_f64().round());
        fleet.stop().await;
        Ok(verdict)
    }

    async fn pg_failover(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let mut fleet = self
            .loaded(
                binary,
                FleetShape {
                    standby: true,
                    ..self.shape()
                },
            )
            .await?;
        let killed = Instant::now();
        fleet.stop_postgres().await?;
        let standby = fleet.standby.take().context("no standby")?;
        let standby =
            tokio::task::spawn_blocking(move || standby.promote().map(|()| standby)).await??;
        fleet.standby = Some(standby);
        let promoted = Instant::now();
        let answering = fleet.api_answering_within(Duration::from_secs(60)).await;
        let first_command = fleet
            .first_command_after(promoted, Duration::from_secs(60))
            .await;
        tokio::time::sleep(Duration::from_secs(self.after_s)).await;
        let mut verdict = fleet.finish(self).await?;
        verdict.figure("promote_took_s", checker::round1(promoted - killed));
        match answering {
            Some(d) => verdict.figure("api_reads_after_promotion_s", checker::round1(d)),
            None => verdict
                .violations
                .push("a replica's API did not answer within 60 s of the promotion".into()),
        }
        match first_command {
            Some(d) => verdict.figure("api_writes_after_promotion_s", checker::round1(d)),
            None => verdict
                .violations
                .push("no command could be issued within 60 s of the promotion".into()),
        }
        verdict.figure("replication", "synchronous");
        fleet.stop().await;
        Ok(verdict)
    }

    async fn slow_db(&self, binary: &std::path::Path) -> anyhow::Result<Verdict> {
        let mut fleet = self.loaded(binary, self.shape()).await?;
        let hold = Duration::from_secs(self.slow_db_s.max(1));
        let holder = fleet.hold_lock("app_status", hold)?;
        // Let the lock be taken before the callers start.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let calls = Arc::new(Mutex::new(Vec::<CallOutcome>::new()));
        let until = Instant::now() + hold.saturating_sub(Duration::from_millis(500));
        let live = lock_replicas(&fleet.replicas);
        let mut callers = Vec::new();
        for i in 0..self.callers.max(1) {
            let endpoint = live[i % live.len()].0.clone();
            let app = fleet.apps[i % fleet.apps.len()].clone();
            let calls = Arc::clone(&calls);
            callers.push(tokio::spawn(async move {
                let Ok(channel) = super::simspoke::channel(&endpoint) else {
                    return;
                };
                let mut api = HubServiceClient::new(channel);
                while Instant::now() < until {
                    let started = Instant::now();
                    let answer = tokio::time::timeout(
                        Duration::from_secs(30),
                        api.get_application(v1::GetApplicationRequest {
                            app: Some(v1::AppRef {
                                project: spoke::PROJECT.into(),
                                name: app.clone(),
                            }),
                        }),
                    )
                    .await;
                    let outcome = match answer {
                        Err(_) => CallOutcome::TimedOut,
                        Ok(Ok(_)) => CallOutcome::Answered(started.elapsed()),
                        Ok(Err(status)) => {
                            let retry_after = status.metadata().get("retry-after").is_some();
                            CallOutcome::Refused(status.code(), retry_after, started.elapsed())
                        }
                    };
                    let refused = matches!(outcome, CallOutcome::Refused(..));
                    lock(&calls).push(outcome);
                    if refused {
                        // A well-behaved client honours retry-after (1 s); this one retries sooner to press.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }));
        }
        let mut rss_max = 0_u64;
        while Instant::now() < until {
            for hub in &fleet.hubs {
                if let Some(pid) = hub.pid() {
                    rss_max = rss_max.max(super::simspoke::rss_kib(pid).unwrap_or(0));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for caller in callers {
            let _ = caller.await;
        }
        holder.await.context("the lock holder")??;
        let mut verdict = fleet.finish(self).await?;
        let calls = std::mem::take(&mut *lock(&calls));
        let mut answered = Vec::new();
        let mut refused_in = Vec::new();
        let (mut exhausted, mut unavailable, mut other, mut timed_out, mut without_retry_after) =
            (0_u64, 0_u64, 0_u64, 0_u64, 0_u64);
        for call in calls.iter().cloned() {
            match call {
                CallOutcome::Answered(d) => answered.push(d),
                CallOutcome::TimedOut => timed_out += 1,
                CallOutcome::Refused(code, retry_after, d) => {
                    refused_in.push(d);
                    match code {
                        tonic::Code::ResourceExhausted => exhausted += 1,
                        tonic::Code::Unavailable => unavailable += 1,
                        _ => other += 1,
                    }
                    if !retry_after
                        && matches!(
                            code,
                            tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                        )
                    {
                        without_retry_after += 1;
                    }
                }
            }
        }
        // The server is up, only slow: the pushback is RESOURCE_EXHAUSTED (every connection in use). A call
        // whose wait ended just as the lock went may still read as UNAVAILABLE; a figure, not a violation.
        if exhausted == 0 {
            verdict.violations.push(format!(
                "the hub never pushed back with RESOURCE_EXHAUSTED while the database was slow \
                 ({unavailable} refused UNAVAILABLE)"
            ));
        }
        if without_retry_after > 0 {
            verdict.violations.push(format!(
                "{without_retry_after} refusals without retry-after"
            ));
        }
        if timed_out > 0 {
            verdict.violations.push(format!(
                "{timed_out} calls neither answered nor refused within 30 s (queued without bound)"
            ));
        }
        verdict.figure("lock_held_s", hold.as_secs());
        verdict.figure("callers", self.callers);
        verdict.figure("calls", calls.len());
        verdict.figure("answered", answered.len());
        verdict.figure("answered_max_ms", ms1(percentile_ms(&mut answered, 100.0)));
        verdict.figure("refused_resource_exhausted", exhausted);
        verdict.figure("refused_unavailable", unavailable);
        verdict.figure("refused_other", other);
        verdict.figure("refused_p50_ms", ms1(percentile_ms(&mut refused_in, 50.0)));
        verdict.figure("refused_max_ms", ms1(percentile_ms(&mut refused_in, 100.0)));
        verdict.figure("hub_rss_max_mib", rss_max / 1024);
        fleet.stop().await;
        Ok(verdict)
    }
}

/// How one API call during the slow-database scenario ended.
#[derive(Debug, Clone)]
enum CallOutcome {
    Answered(Duration),
    /// Refused: code, whether `retry-after` came with it, and how long it took.
    Refused(tonic::Code, bool, Duration),
    TimedOut,
}

fn lock_replicas(replicas: &Replicas) -> Vec<(String, String, std::net::SocketAddr)> {
    lock(replicas).clone()
}

/// The shape of one scenario's fleet.
#[derive(Debug, Clone, Copy)]
struct FleetShape {
    replicas: usize,
    streams: usize,
    apps: usize,
    /// The first `cut_group` streams go through the relay that partitions.
    cut_group: usize,
    /// Streams go through relays (a load balancer over the replicas), or straight to the first replica.
    via_relay: bool,
    /// A synchronous hot standby, named second in the hubs' multi-host URL.
    standby: bool,
}

/// A running scenario: PostgreSQL, the replicas, relays, simulated spokes, load and monitor.
struct Fleet {
    pg: Option<edgecd_testkit::PgServer>,
    /// The hot standby, when the shape has one.
    standby: Option<edgecd_testkit::PgServer>,
    database: String,
    hubs: Vec<HubProcess>,
    replicas: Replicas,
    /// [0]: the rest of the fleet; [1]: the group a partition cuts.
    relays: Vec<Relay>,
    journal: Arc<Journal>,
    apps: Vec<String>,
    apps_per_cluster: usize,
    clusters: Vec<String>,
    cut_group: usize,
    changes: Vec<mpsc::UnboundedSender<usize>>,
    /// The real spokes' clusters and the repository they sync.
    real: Vec<String>,
    demo: real::DemoRepo,
    _emulator: Option<edgecd_kube_emulator::KubeEmulator>,
    record: Arc<Mutex<Record>>,
    load_stop: watch::Sender<bool>,
    fleet_stop: watch::Sender<bool>,
    load: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    async fn start(
        bench: &FaultsBench,
        binary: &std::path::Path,
        shape: FleetShape,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("edgecd-faults-")
            .tempdir()?;
        let pg = tokio::task::spawn_blocking(edgecd_testkit::PgServer::start)
            .await?
            .context("starting PostgreSQL")?;
        let url = pg.create_database().context("creating the database")?;
        let database = url.rsplit('/').next().unwrap_or_default().to_owned();
        let clusters: Vec<String> = (0..shape.streams).map(|i| format!("edge-{i:05}")).collect();
        let mut apps = Vec::with_capacity(shape.streams * shape.apps);
        let demo = tokio::task::block_in_place(real::DemoRepo::start)?;
        let real_clusters: Vec<String> = (0..bench.real_spokes).map(real::cluster_name).collect();
        {
            let store = PgStore::connect_url(&url)
                .await
                .context("opening PostgreSQL")?;
            // Every app, simulated or real: (name, spec).
            let mut wanted: Vec<(String, edgecd_core::app::ApplicationSpec)> = Vec::new();
            for cluster in &clusters {
                for name in spoke::app_names(cluster, shape.apps) {
                    apps.push(name.clone());
                    wanted.push((name, crate::web_app_spec(cluster)));
                }
            }
            for cluster in &real_clusters {
                wanted.push((real::app_name(cluster), demo.spec(cluster)));
            }
            for cluster in clusters.iter().chain(&real_clusters) {
                store
                    .create_cluster(&NewCluster {
                        name: cluster.clone(),
                        ..NewCluster::default()
                    })
                    .await?;
            }
            let imported: Vec<ImportedApp> = wanted
                .into_iter()
                .map(|(name, spec)| ImportedApp {
                    app: NewApp {
                        project: spoke::PROJECT.into(),
                        name,
                        spec,
                        labels: BTreeMap::default(),
                        owner: None,
                    },
                    status: None,
                })
                .collect();
            for chunk in imported.chunks(5_000) {
                store.import_apps(chunk).await?;
            }
            store.analyze().await?;
        }
        let (standby, database_url) = if shape.standby {
            let standby = {
                let pg = &pg;
                // Synchronous: a commit the hub was told of is on both servers.
                tokio::task::block_in_place(|| pg.start_standby(true))
            }
            .context("starting the standby")?;
            // libpq's multi-host form: the hubs use whichever accepts writes.
            let url = format!(
                "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{database}",
                pg.port(),
                standby.port()
            );
            (Some(standby), url)
        } else {
            (None, url)
        };
        let settings = HubSettings {
            binary: binary.to_path_buf(),
            database: database_url,
            heartbeat: bench.heartbeat(),
            stale_after: bench.stale_after(),
            log_dir: match &bench.log_dir {
                Some(kept) => {
                    std::fs::create_dir_all(kept)
                        .with_context(|| format!("creating {}", kept.display()))?;
                    kept.clone()
                }
                None => dir.path().to_path_buf(),
            },
        };
        let mut hubs = Vec::new();
        for i in 0..shape.replicas.max(1) {
            hubs.push(HubProcess::start(&settings, &format!("replica-{i}")).await?);
        }
        let replicas: Replicas = Arc::new(Mutex::new(
            hubs.iter()
                .map(|h| (h.endpoint(), h.id.clone(), h.http))
                .collect(),
        ));
        let targets: Vec<_> = hubs.iter().map(|h| h.grpc).collect();
        let mut relays = Vec::new();
        if shape.via_relay {
            relays.push(Relay::start(targets.clone()).await?);
            relays.push(Relay::start(targets).await?);
        }
        let journal = Arc::new(Journal::new(apps.len(), clusters.len()));
        let (fleet_stop, fleet_stopped) = watch::channel(false);
        let (load_stop, _) = watch::channel(false);
        let spoke_settings = SpokeSettings {
            batch: 50,
            heartbeat: bench.heartbeat(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        };
        let mut changes = Vec::new();
        let mut tasks = Vec::new();
        for (i, cluster) in clusters.iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            changes.push(tx);
            let endpoint = match relays.as_slice() {
                [rest, cut, ..] => {
                    if i < shape.cut_group {
                        cut.endpoint()
                    } else {
                        rest.endpoint()
                    }
                }
                _ => hubs[0].endpoint(),
            };
            let sim = SimCluster::new(
                cluster,
                i,
                i * shape.apps,
                shape.apps,
                Arc::clone(&journal),
                spoke_settings.clone(),
            );
            tasks.push(tokio::spawn(sim.run(endpoint, rx, fleet_stopped.clone())));
        }
        // The real spokes: the first is in the partitioned group when there is one.
        let emulator = if real_clusters.is_empty() {
            None
        } else {
            Some(real::emulator(real_clusters.len()).await?)
        };
        if let Some(emulator) = &emulator {
            for (i, cluster) in real_clusters.iter().enumerate() {
                let endpoint = match relays.as_slice() {
                    [rest, cut, ..] => {
                        if i == 0 && shape.cut_group > 0 {
                            cut.endpoint()
                        } else {
                            rest.endpoint()
                        }
                    }
                    _ => hubs[0].endpoint(),
                };
                let cache = dir.path().join(format!("{cluster}-git"));
                tasks.extend(
                    real::start_spoke(
                        emulator,
                        i,
                        cluster,
                        &endpoint,
                        &cache,
                        fleet_stopped.clone(),
                    )
                    .await?,
                );
            }
        }
        let record = Arc::new(Mutex::new(Record::default()));
        let mut watched: Vec<(String, String)> = clusters[..shape.cut_group]
            .iter()
            .map(|c| (c.clone(), spoke::app_names(c, 1).remove(0)))
            .collect();
        if shape.cut_group > 0
            && let Some(first) = real_clusters.first()
        {
            watched.push((first.clone(), real::app_name(first)));
        }
        tasks.push(checker::spawn_monitor(
            Arc::clone(&replicas),
            watched,
            Arc::clone(&record),
            Duration::from_millis(250),
            fleet_stopped,
        ));
        let fleet = Self {
            pg: Some(pg),
            standby,
            database,
            hubs,
            replicas,
            relays,
            journal,
            apps,
            apps_per_cluster: shape.apps,
            clusters,
            cut_group: shape.cut_group,
            changes,
            real: real_clusters,
            demo,
            _emulator: emulator,
            record,
            load_stop,
            fleet_stop,
            load: Vec::new(),
            tasks,
            _dir: dir,
        };
        // Everyone connected and caught up before any fault.
        let start = Instant::now();
        while fleet.journal.resynced_count() < fleet.clusters.len() {
            if start.elapsed() > Duration::from_secs(600) {
                bail!(
                    "only {} of {} streams connected within 600 s",
                    fleet.journal.resynced_count(),
                    fleet.clusters.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let head = fleet.demo.repo.head()?;
        if let Err(behind) = fleet.real_synced_at(&head, Duration::from_secs(180)).await {
            bail!("the real spokes did not sync within 180 s: {behind}");
        }
        eprintln!(
            "faults: {} simulated and {} real spokes on {} replica(s) connected and synced in {:.1} s",
            fleet.clusters.len(),
            fleet.real.len(),
            fleet.hubs.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(fleet)
    }

    /// Waits until the hub shows every real spoke's app Synced and Healthy at `commit`; else says which is not.
    async fn real_synced_at(&self, commit: &str, limit: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let mut behind = String::new();
        while start.elapsed() < limit {
            let endpoint = lock(&self.replicas).first().map(|r| r.0.clone());
            behind.clear();
            if let Some(endpoint) = endpoint
                && let Ok(channel) = super::simspoke::channel(&endpoint)
            {
                let mut api = HubServiceClient::new(channel);
                for cluster in &self.real {
                    let app = api
                        .get_application(v1::GetApplicationRequest {
                            app: Some(v1::AppRef {
                                project: spoke::PROJECT.into(),
                                name: real::app_name(cluster),
                            }),
                        })
                        .await
                        .map(tonic::Response::into_inner);
                    let status = app.as_ref().ok().and_then(|a| a.status.as_ref());
                    let sync = status.and_then(|s| s.sync.as_ref());
                    let healthy = status
                        .and_then(|s| s.health.as_ref())
                        .is_some_and(|h| h.status == v1::HealthStatusCode::Healthy as i32);
                    let synced = sync.is_some_and(|s| {
                        s.status == v1::SyncStatusCode::Synced as i32 && s.revision == commit
                    });
                    if !(healthy && synced) {
                        behind = format!(
                            "{cluster}: sync {:?} at {:?}, healthy {healthy}",
                            sync.map(|s| s.status),
                            sync.map(|s| s.revision.clone())
                        );
                        break;
                    }
                }
                if behind.is_empty() {
                    return Ok(start.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(if behind.is_empty() {
            "no replica answered".into()
        } else {
            behind
        })
    }

    /// Status changes at `rate`/s over random apps, and a sync every `command_every` on a live replica.
    fn start_load(&mut self, rate: u64, command_every: Duration) {
        let senders = self.changes.clone();
        let per_cluster = self.apps_per_cluster.max(1);
        let total = self.apps.len();
        let mut stop = self.load_stop.subscribe();
        self.load.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut owed = 0.0_f64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                owed += rate as f64 / 100.0;
                let mut rng = rand::rng();
                while owed >= 1.0 && total > 0 {
                    owed -= 1.0;
                    let app = rng.random_range(0..total);
                    if let Some(sender) = senders.get(app / per_cluster) {
                        let _ = sender.send(app % per_cluster);
                    }
                }
            }
        }));
        let replicas = Arc::clone(&self.replicas);
        let apps = self.apps.clone();
        // Every fifth command goes to a real spoke's app, in turn.
        let real_apps: Vec<String> = self.real.iter().map(|c| real::app_name(c)).collect();
        let record = Arc::clone(&self.record);
        let mut stop = self.load_stop.subscribe();
        self.load.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(command_every.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut turn = 0_usize;
            let mut issued = 0_usize;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                issued += 1;
                let app = if issued.is_multiple_of(5) && !real_apps.is_empty() {
                    real_apps[(issued / 5) % real_apps.len()].clone()
                } else if apps.is_empty() {
                    continue;
                } else {
                    apps[rand::rng().random_range(0..apps.len())].clone()
                };
                // One request id per command, kept across retries: a call whose answer was lost (a
                // replica killed, the database restarted) may still have issued the command, and the
                // retry must then get that command back rather than issue a second one. Until an answer
                // comes the id is "unanswered": if it runs, it was issued.
                let request_id = uuid::Uuid::new_v4().to_string();
                lock(&record).unanswered.insert(request_id.clone());
                let started = Instant::now();
                'answered: while started.elapsed() < OPERATOR_RETRY_FOR {
                    let live = lock(&replicas).clone();
                    for attempt in 0..live.len() {
                        turn = turn.wrapping_add(1);
                        let (endpoint, _, _) = &live[(turn + attempt) % live.len()];
                        let Ok(channel) = super::simspoke::channel(endpoint) else {
                            continue;
                        };
                        let answer = tokio::time::timeout(
                            Duration::from_secs(5),
                            HubServiceClient::new(channel).sync_application(
                                v1::SyncApplicationRequest {
                                    app: Some(v1::AppRef {
                                        project: spoke::PROJECT.into(),
                                        name: app.clone(),
                                    }),
                                    sync: Some(v1::SyncCommand::default()),
                                    ttl: Some(edgecd_proto::convert::duration(
                                        Duration::from_secs(3600),
                                    )),
                                    request_id: request_id.clone(),
                                },
                            ),
                        )
                        .await;
                        if let Ok(Ok(status)) = answer {
                            let mut record = lock(&record);
                            record.unanswered.remove(&request_id);
                            record
                                .issued
                                .insert(status.into_inner().command_id, app.clone());
                            record.issued_at.push(Instant::now());
                            break 'answered;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }

    async fn kill_replica(&mut self, index: usize) -> anyhow::Result<()> {
        let id = self.hubs[index].id.clone();
        self.hubs[index].kill().await?;
        lock(&self.replicas).retain(|(_, r, _)| *r != id);
        let survivors: Vec<_> = self
            .hubs
            .iter()
            .filter(|h| h.is_running())
            .map(|h| h.grpc)
            .collect();
        for relay in &self.relays {
            relay.set_targets(survivors.clone());
        }
        Ok(())
    }

    fn cut(&self) {
        if let Some(relay) = self.relays.get(1) {
            relay.cut();
        }
        let now = Instant::now();
        let mut record = lock(&self.record);
        let real = self.real.first().filter(|_| self.cut_group > 0);
        for cluster in self.clusters[..self.cut_group].iter().chain(real) {
            record
                .cuts
                .entry(cluster.clone())
                .or_default()
                .push((now, None));
        }
    }

    fn heal(&self) {
        let now = Instant::now();
        {
            let mut record = lock(&self.record);
            for cuts in record.cuts.values_mut() {
                for cut in cuts.iter_mut() {
                    if cut.1.is_none() {
                        cut.1 = Some(now);
                    }
                }
            }
        }
        if let Some(relay) = self.relays.get(1) {
            relay.heal();
        }
    }

    async fn stop_postgres(&mut self) -> anyhow::Result<()> {
        let mut pg = self.pg.take().context("no PostgreSQL")?;
        let pg = tokio::task::spawn_blocking(move || pg.stop().map(|()| pg)).await??;
        self.pg = Some(pg);
        Ok(())
    }

    async fn start_postgres(&mut self) -> anyhow::Result<()> {
        let mut pg = self.pg.take().context("no PostgreSQL")?;
        let pg = tokio::task::spawn_blocking(move || pg.restart().map(|()| pg)).await??;
        self.pg = Some(pg);
        Ok(())
    }

    /// Holds an exclusive lock on `table` for `hold` (a transaction that sleeps), in the background.
    fn hold_lock(
        &self,
        table: &str,
        hold: Duration,
    ) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
        let pg = self.pg.as_ref().context("no PostgreSQL")?;
        let port = pg.port();
        let database = self.database.clone();
        let sql = format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;",
            hold.as_secs_f64()
        );
        Ok(tokio::task::spawn_blocking(move || {
            edgecd_testkit::postgres::psql(port, &database, &sql)
                .map(|_| ())
                .context("holding the lock")
        }))
    }

    /// Committed transactions of the fleet's database so far.
    fn commits(&self) -> u64 {
        self.pg
            .as_ref()
            .and_then(|pg| {
                pg.query(
                    &self.database,
                    "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                )
                .ok()
            })
            .and_then(|text| text.parse().ok())
            .unwrap_or(0)
    }

    /// How long after `since` the operator's first command was issued (a write through the API).
    async fn first_command_after(&self, since: Instant, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(at) = lock(&self.record).issued_at.iter().find(|at| **at >= since) {
                return Some(*at - since);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// How long until every live replica's API answers a read again.
    async fn api_answering_within(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let live = lock(&self.replicas).clone();
        for (endpoint, _, _) in &live {
            loop {
                if start.elapsed() > limit {
                    return None;
                }
                if let Ok(channel) = super::simspoke::channel(endpoint) {
                    let answer = tokio::time::timeout(
                        Duration::from_secs(2),
                        HubServiceClient::new(channel).list_clusters(v1::ListClustersRequest {
                            page_size: 1,
                            ..v1::ListClustersRequest::default()
                        }),
                    )
                    .await;
                    if matches!(answer, Ok(Ok(_))) {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Some(start.elapsed())
    }

    /// The cut-off clusters' apps (by index) and their versions now (what they did during the partition).
    fn cut_targets(&self) -> Vec<(usize, u64)> {
        (0..self.cut_group * self.apps_per_cluster)
            .map(|i| (i, self.journal.current_version(i)))
            .collect()
    }

    /// Waits (up to `limit` from `since`) until the hub has stored each of `targets` at least at its version
    /// (the spokes' journal: the hub acknowledges a change only once it committed it), read every 20 ms;
    /// then until the API shows them (the cut clusters' apps, listed by cluster). Both are times since `since`.
    async fn converged_within(
        &self,
        targets: &[(usize, u64)],
        since: Instant,
        limit: Duration,
    ) -> Convergence {
        let mut stored = None;
        // When each cut cluster had all its targets stored.
        let per_cluster = self.apps_per_cluster.max(1);
        let mut clusters: Vec<Option<Duration>> = vec![None; self.cut_group];
        while since.elapsed() < limit {
            let at = since.elapsed();
            for (c, chunk) in targets.chunks(per_cluster).enumerate() {
                if let Some(slot) = clusters.get_mut(c).filter(|slot| slot.is_none())
                    && chunk
                        .iter()
                        .all(|(i, version)| self.journal.acked_version(*i) >= *version)
                {
                    *slot = Some(at);
                }
            }
            if clusters.iter().all(Option::is_some) {
                stored = Some(at);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let clusters = self.clusters[..self.cut_group]
            .iter()
            .zip(clusters)
            .filter_map(|(name, at)| Some((name.clone(), at?)))
            .collect();
        let Some(endpoint) = lock(&self.replicas).first().map(|r| r.0.clone()) else {
            return Convergence {
                stored,
                shown: None,
                clusters,
            };
        };
        let filter = v1::ApplicationFilter {
            clusters: self.clusters[..self.cut_group].to_vec(),
            ..v1::ApplicationFilter::default()
        };
        while since.elapsed() < limit {
            if let Ok(shown) = checker::hub_versions_of(&endpoint, filter.clone()).await
                && targets
                    .iter()
                    .all(|(i, version)| shown.get(&self.apps[*i]).copied().unwrap_or(0) >= *version)
            {
                return Convergence {
                    stored,
                    shown: Some(since.elapsed()),
                    clusters,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Convergence {
            stored,
            shown: None,
            clusters,
        }
    }

    /// Stops the load, waits for the fleet to drain, and checks every invariant.
    async fn finish(&mut self, bench: &FaultsBench) -> anyhow::Result<Verdict> {
        let _ = self.load_stop.send(true);
        for task in self.load.drain(..) {
            let _ = task.await;
        }
        let mut verdict = Verdict::default();
        let endpoint = lock(&self.replicas)
            .first()
            .map(|r| r.0.clone())
            .context("no live replica")?;
        match checker::wait_converged(
            &endpoint,
            &self.journal,
            &self.apps,
            Duration::from_secs(180),
        )
        .await
        {
            Some(d) => verdict.figure("drained_after_load_s", checker::round1(d)),
            None => verdict.violations.push(
                "the fleet did not drain: changes still unacknowledged or not shown after 180 s"
                    .into(),
            ),
        }
        checker::check_status(&endpoint, &self.journal, &self.apps, &mut verdict).await?;
        let (issued, unanswered) = {
            let record = lock(&self.record);
            (record.issued.clone(), record.unanswered.clone())
        };
        let real_apps: std::collections::BTreeSet<String> =
            self.real.iter().map(|c| real::app_name(c)).collect();
        checker::check_commands(
            &endpoint,
            &self.journal,
            &issued,
            &unanswered,
            &real_apps,
            Duration::from_secs(120),
            &mut verdict,
        )
        .await?;
        {
            let record = lock(&self.record);
            checker::check_connections(&record, bench.connection_bound(), &mut verdict);
            // A replica that lost its database session keeps believing it leads until its next check fails:
            // two checks of `LEADER_CHECK` (5 s) each.
            checker::check_single_writer(&record, Duration::from_secs(10), &mut verdict);
        }
        // The real spokes deploy a new commit after the faults, and the hub shows it.
        if !self.real.is_empty() {
            let commit = tokio::task::block_in_place(|| self.demo.change(1))?;
            match self.real_synced_at(&commit, Duration::from_secs(180)).await {
                Ok(d) => verdict.figure("real_spokes_deployed_new_commit_s", checker::round1(d)),
                Err(behind) => verdict.violations.push(format!(
                    "a real spoke did not deploy the commit made after the faults within 180 s: {behind}"
                )),
            }
        }
        verdict.figure("real_spokes", self.real.len());
        verdict.figure("replicas", self.hubs.len());
        verdict.figure("streams", self.clusters.len());
        verdict.figure("apps", self.apps.len());
        verdict.figure("stream_losses", self.journal.losses());
        verdict.figure(
            "stream_losses_by_cause",
            serde_json::to_value(self.journal.loss_causes()).unwrap_or_default(),
        );
        Ok(verdict)
    }

    async fn stop(mut self) {
        let _ = self.load_stop.send(true);
        let _ = self.fleet_stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        for hub in &mut self.hubs {
            let _ = hub.kill().await;
        }
    }
}

/// Milliseconds to one decimal.
fn ms1(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// One JSON line per scenario.
fn json_line(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "bench": "faults",
        "scenario": report.scenario,
        "violations": report.verdict.violations,
        "figures": report.verdict.figures,
    })
}

fn print_table(reports: &[Report]) {
    println!("{:<11} {:<40} value", "scenario", "figure");
    for report in reports {
        for (name, value) in &report.verdict.figures {
            println!(
                "{:<11} {:<40} {value}",
                format!("{:?}", report.scenario).to_lowercase(),
                name
            );
        }
        println!(
            "{:<11} {:<40} {}",
            format!("{:?}", report.scenario).to_lowercase(),
            "invariants",
            if report.verdict.violations.is_empty() {
                "held".to_owned()
            } else {
                format!("{} violated", report.verdict.violations.len())
            }
        );
    }
}
