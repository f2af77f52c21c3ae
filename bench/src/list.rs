//! `edgecd-bench list`: latency of filtered, sorted, cursor-paginated app lists over 100,000 apps on 1,000 clusters, on SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_core::app::{ApplicationStatus, HealthReport, SyncReport};
use edgecd_core::project::ProjectSpec;
use edgecd_core::selector::LabelSelector;
use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::{
    AppFilter, AppQuery, AppSort, ClusterConnection, ConnectionKind, ImportedApp, Labels, NewApp,
    NewCluster, PgStore, SortKey, SqliteStore, Store,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Options of the list benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ListBench {
    /// Applications to load.
    #[arg(long, default_value_t = 100_000)]
    pub apps: usize,
    /// Clusters the apps are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub clusters: usize,
    /// Rows per page.
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Timed list calls per scenario and backend.
    #[arg(long, default_value_t = 300)]
    pub iterations: usize,
    /// Which backends to measure.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    pub backend: Backends,
}

/// `edgecd-bench list-explain`: loads the `list` fleet into PostgreSQL and
/// prints the `EXPLAIN ANALYZE` plan of every statement of one run of each
/// scenario (through `auto_explain` at notice level) to stderr.
#[derive(Debug, Clone, clap::Args)]
pub struct ListExplain {
    #[command(flatten)]
    pub list: ListBench,
}

impl ListExplain {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(async {
            let (server, url, store) = crate::start_postgres().await?;
            self.list.load(&store).await?;
            self.list.explain(&url).await?;
            drop(server);
            Ok(())
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backends {
    Sqlite,
    Postgres,
    Both,
}

/// Figures of one scenario on one backend.
#[derive(Debug, serde::Serialize)]
struct Row {
    backend: &'static str,
    scenario: &'static str,
    calls: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_rows: f64,
    mean_total: f64,
}

/// Figures of one backend.
#[derive(Debug, serde::Serialize)]
struct BackendFigures {
    backend: &'static str,
    load_seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    goal_p99_ms: f64,
    meets_goal: bool,
}

const REGIONS: [&str; 4] = ["eu", "us", "ap", "sa"];
const KINDS: [&str; 10] = [
    "nginx", "redis", "cache", "origin", "ingest", "packager", "edge-api", "logs", "metrics",
    "player",
];
const PROJECTS: usize = 10;

impl ListBench {
    /// Loads the fleet into each backend, times the scenarios, prints a
    /// table and, as the last line, a JSON summary.
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> anyhow::Result<()> {
        let mut rows = Vec::new();
        let mut figures = Vec::new();
        if self.backend != Backends::Postgres {
            let dir = tempfile::tempdir().context("temp dir")?;
            let store = SqliteStore::open(&dir.path().join("bench.db"))
                .await
                .context("opening SQLite")?;
            let (backend_rows, backend) = self.measure("sqlite", 40.0, &store).await?;
            rows.extend(backend_rows);
            figures.push(backend);
        }
        if self.backend != Backends::Sqlite {
            let (server, _, store) = crate::start_postgres().await?;
            let (backend_rows, backend) = self.measure("postgres", 20.0, &store).await?;
            rows.extend(backend_rows);
            figures.push(backend);
            drop(server);
        }
        println!(
            "{:<10} {:<34} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9}",
            "backend", "scenario", "calls", "p50 ms", "p99 ms", "max ms", "rows", "total"
        );
        for row in &rows {
            println!(
                "{:<10} {:<34} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>7.0} {:>9.0}",
                row.backend,
                row.scenario,
                row.calls,
                row.p50_ms,
                row.p99_ms,
                row.max_ms,
                row.mean_rows,
                row.mean_total
            );
        }
        for f in &figures {
            println!(
                "{:<10} {:<34} load {:.1} s, p50 {:.2} ms, p99 {:.2} ms (goal ≤ {} ms): {}",
                f.backend,
                "all scenarios",
                f.load_seconds,
                f.p50_ms,
                f.p99_ms,
                f.goal_p99_ms,
                if f.meets_goal { "met" } else { "MISSED" }
            );
        }
        let summary = serde_json::json!({
            "bench": "list",
            "apps": self.apps,
            "clusters": self.clusters,
            "page_size": self.page_size,
            "iterations": self.iterations,
            "backends": figures,
            "rows": rows,
        });
        println!("{summary}");
        Ok(())
    }

    async fn measure(
        &self,
        backend: &'static str,
        goal_p99_ms: f64,
        store: &dyn Store,
    ) -> anyhow::Result<(Vec<Row>, BackendFigures)> {
        let started = Instant::now();
        self.load(store).await?;
        let load_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "{backend}: loaded {} apps on {} clusters in {load_seconds:.1} s",
            self.apps, self.clusters
        );
        let mut rng = StdRng::seed_from_u64(7);
        let mut rows = Vec::new();
        let mut all = Vec::new();
        for scenario in SCENARIOS {
            // Warm up caches and prepared statements.
            for _ in 0..5 {
                self.run_scenario(store, scenario, &mut rng, &mut Vec::new())
                    .await?;
            }
            let mut samples = Vec::with_capacity(self.iterations);
            let mut row_counts = Vec::new();
            let mut totals = Vec::new();
            while samples.len() < self.iterations {
                let mut calls = Vec::new();
                self.run_scenario(store, scenario, &mut rng, &mut calls)
                    .await?;
                for (elapsed, page_rows, total) in calls {
                    samples.push(elapsed);
                    row_counts.push(page_rows as f64);
                    // The total comes with the first page only.
                    if let Some(total) = total {
                        totals.push(total as f64);
                    }
                }
            }
            all.extend(samples.iter().copied());
            rows.push(Row {
                backend,
                scenario: scenario.name,
                calls: samples.len(),
                p50_ms: percentile(&samples, 50.0),
                p99_ms: percentile(&samples, 99.0),
                max_ms: percentile(&samples, 100.0),
                mean_rows: mean(&row_counts),
                mean_total: mean(&totals),
            });
        }
        let p99_ms = percentile(&all, 99.0);
        let figures = BackendFigures {
            backend,
            load_seconds,
            p50_ms: percentile(&all, 50.0),
            p99_ms,
            goal_p99_ms,
            meets_goal: p99_ms <= goal_p99_ms,
        };
        Ok((rows, figures))
    }

    /// Creates the projects and clusters, then bulk-imports the apps with
    /// a realistic spread of statuses.
    pub(crate) async fn load(&self, store: &dyn Store) -> anyhow::Result<()> {
        for p in 0..PROJECTS {
            store
                .create_project(&format!("team-{p:02}"), &ProjectSpec::permissive())
                .await?;
        }
        let mut rng = StdRng::seed_from_u64(42);
        for c in 0..self.clusters {
            let mut labels = Labels::new();
            labels.insert("region".into(), REGIONS[c % REGIONS.len()].into());
            labels.insert(
                "tier".into(),
                if c % 3 == 0 { "core" } else { "edge" }.into(),
            );
            labels.insert("zone".into(), format!("z{:02}", c % 20));
            if c % 10 == 0 {
                labels.insert("gpu".into(), "true".into());
            }
            let name = cluster_name(c);
            store
                .create_cluster(&NewCluster {
                    name: name.clone(),
                    labels,
                    annotations: Labels::new(),
                    server_url: format!("https://{name}.edge.example:6443"),
                })
                .await?;
            let state = match rng.random_range(0..100) {
                0..90 => ConnectionKind::Connected,
                90..95 => ConnectionKind::Stale,
                _ => ConnectionKind::Disconnected,
            };
            store
                .set_cluster_connection(
                    &name,
                    &ClusterConnection {
                        state,
                        since: Some(time::OffsetDateTime::now_utc()),
                        last_heartbeat: Some(time::OffsetDateTime::now_utc()),
                        hub_replica: "bench".into(),
                    },
                )
                .await?;
        }
        let per_cluster = self.apps.div_ceil(self.clusters.max(1));
        let mut batch = Vec::with_capacity(5_000);
        for i in 0..self.apps {
            let c = i / per_cluster;
            let j = i % per_cluster;
            let kind = KINDS[j % KINDS.len()];
            let project = format!("team-{:02}", (j / KINDS.len()) % PROJECTS);
            let mut spec = edgecd_core::app::ApplicationSpec::default();
            spec.source.repo_url = "https://git.example/fleet.git".into();
            spec.source.path = format!("apps/{kind}/overlays/{}", cluster_name(c));
            spec.source.target_revision = "main".into();
            spec.destination.cluster = cluster_name(c);
            spec.destination.namespace = kind.into();
            let mut labels = Labels::new();
            labels.insert("app".into(), kind.into());
            labels.insert("team".into(), project.clone());
            let health = match rng.random_range(0..100) {
                0..85 => Health::Healthy,
                85..90 => Health::Progressing,
                90..94 => Health::Degraded,
                94..97 => Health::Missing,
                97..99 => Health::Suspended,
                _ => Health::Unknown,
            };
            let sync = match rng.random_range(0..100) {
                0..90 => SyncStatus::Synced,
                90..98 => SyncStatus::OutOfSync,
                _ => SyncStatus::Unknown,
            };
            batch.push(ImportedApp {
                app: NewApp {
                    project,
                    name: format!("{kind}-{}-{j:03}", cluster_name(c)),
                    spec,
                    labels,
                    owner: None,
                },
                status: Some(ApplicationStatus {
                    sync: SyncReport {
                        status: sync,
                        revision: format!("{:040x}", rng.random::<u128>()),
                    },
                    health: HealthReport {
                        status: health,
                        message: String::new(),
                    },
                    status_version: 1,
                    ..ApplicationStatus::default()
                }),
            });
            if batch.len() == 5_000 {
                store.import_apps(&batch).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.import_apps(&batch).await?;
        }
        store.analyze().await?;
        Ok(())
    }

    /// Prints the PostgreSQL plans (`EXPLAIN ANALYZE`, via `auto_explain`
    /// at notice level) of one run of each scenario, to stderr.
    async fn explain(&self, url: &str) -> anyhow::Result<()> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "sqlx::postgres::notice=trace",
            ))
            .with_writer(std::io::stderr)
            .try_init();
        let separator = if url.contains('?') { '&' } else { '?' };
        let options = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 \
             -c auto_explain.log_analyze=on -c auto_explain.log_buffers=on \
             -c auto_explain.log_nested_statements=on -c auto_explain.log_level=notice";
        let url = format!("{url}{separator}options={}", options.replace(' ', "%20"));
        let store = PgStore::connect_url(&url)
            .await
            .context("opening PostgreSQL with auto_explain")?;
        let mut rng = StdRng::seed_from_u64(11);
        for scenario in SCENARIOS {
            eprintln!("===== EXPLAIN ANALYZE: {} =====", scenario.name);
            self.run_scenario(&store, scenario, &mut rng, &mut Vec::new())
                .await?;
        }
        Ok(())
    }

    /// Runs one scenario: a first page and some cursor continuations,
    /// recording (latency, rows, total) per call.
    async fn run_scenario(
        &self,
        store: &dyn Store,
        scenario: &Scenario,
        rng: &mut StdRng,
        calls: &mut Vec<(Duration, usize, Option<u64>)>,
    ) -> anyhow::Result<()> {
        let filter = (scenario.filter)(rng, self.clusters);
        let mut query = AppQuery {
            filter,
            sort: scenario.sort,
            page_size: self.page_size,
            cursor: None,
        };
        for _ in 0..=scenario.continuations {
            let start = Instant::now();
            let page = store.list_apps(&query).await?;
            calls.push((start.elapsed(), page.items.len(), page.total));
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        Ok(())
    }
}

/// One query shape, with randomised parameters.
struct Scenario {
    name: &'static str,
    filter: fn(&mut StdRng, usize) -> AppFilter,
    sort: AppSort,
    /// Pages fetched after the first by following the cursor.
    continuations: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "cluster labels, by name, 3 pages",
        filter: |rng, _| AppFilter {
            cluster_selector: selector(&format!(
                "region={},tier=edge",
                REGIONS[rng.random_range(0..REGIONS.len())]
            )),
            ..AppFilter::default()
        },
        sort: AppSort {
            key: SortKey::Name,
            descending: false,
        },
        continuations: 2,
    },
    Scenario {
        name: "health degraded|missing, by update",
        filter: |_, _| AppFilter {
            health: vec![Health::Degraded, Health::Missing],
            ..AppFilter::default()
        },
        sort: AppSort {
            key: SortKey::UpdatedAt,
            descending: true,
        },
        continuations: 2,
    },
    Scenario {
        name: "project + name search, by name",
        filter: |rng, clusters| AppFilter {
            projects: vec![format!("team-{:02}", rng.random_range(0..PROJECTS))],
            search: format!(
                "{}-edge-{:02}",
                KINDS[rng.random_range(0..KINDS.len())],
                rng.random_range(0..clusters.div_ceil(100).max(1))
            ),
            ..AppFilter::default()
        },
        sort: AppSort {
            key: SortKey::Name,
            descending: false,
        },
        continuations: 1,
    },
    Scenario {
        name: "zone + out-of-sync, by cluster",
        filter: |rng, _| AppFilter {
            cluster_selector: selector(&format!("zone=z{:02}", rng.random_range(0..20))),
            sync: vec![SyncStatus::OutOfSync],
            ..AppFilter::default()
        },
        sort: AppSort {
            key: SortKey::Cluster,
            descending: false,
        },
        continuations: 1,
    },
    Scenario {
        name: "unfiltered, by health desc, 5 pages",
        filter: |_, _| AppFilter::default(),
        sort: AppSort {
            key: SortKey::Health,
            descending: true,
        },
        continuations: 4,
    },
    Scenario {
        name: "stale|disconnected + app label",
        filter: |rng, _| AppFilter {
            connection: vec![ConnectionKind::Stale, ConnectionKind::Disconnected],
            app_selector: selector(&format!("app={}", KINDS[rng.random_range(0..KINDS.len())])),
            ..AppFilter::default()
        },
        sort: AppSort {
            key: SortKey::Name,
            descending: false,
        },
        continuations: 1,
    },
];

fn selector(text: &str) -> LabelSelector {
    LabelSelector::parse(text).unwrap_or_default()
}

fn cluster_name(c: usize) -> String {
    format!("edge-{c:04}")
}

fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}
