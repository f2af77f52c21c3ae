//! `edgecd-bench ingest`: simulated spokes stream status changes to a real hub `Server` over gRPC; sustained changes per second persisted (acknowledged by the hub only once stored) and the delay until a change is visible through `HubService.GetApplication`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{ImportedApp, NewApp, NewCluster};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;

use super::fanout::Backend;
use super::simspoke::{self, SimSpoke, percentile_ms};

/// Options of the ingest benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestBench {
    /// Simulated spokes streaming changes.
    #[arg(long, default_value_t = 100)]
    pub spokes: usize,
    /// Apps per spoke.
    #[arg(long, default_value_t = 100)]
    pub apps: usize,
    /// Status reports per batch message.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Unacknowledged batches per spoke.
    #[arg(long, default_value_t = 4)]
    pub window: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Offered changes per second over all spokes (open loop: each spoke
    /// sends its batches on a fixed schedule, still at most `window`
    /// unacknowledged). Without it every spoke sends as fast as its window
    /// allows (closed loop: the hub's saturation throughput, where the
    /// delay until visible is the queue that window builds).
    #[arg(long)]
    pub rate: Option<u64>,
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    pub backend: Backend,
    /// Trace the in-process hub, exporting over OTLP/gRPC to this endpoint (sampling from
    /// `OTEL_TRACES_SAMPLER`); `ingest-tracing` runs the benchmark with and without it.
    #[arg(long, hide = true)]
    pub otlp_endpoint: Option<String>,
}

impl IngestBench {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> anyhow::Result<()> {
        let telemetry = match &self.otlp_endpoint {
            Some(endpoint) => Some(edgecd_telemetry::init(&edgecd_telemetry::Settings {
                service_name: "edgecd-hub",
                log_filter: "warn".into(),
                log_format: edgecd_telemetry::LogFormat::Text,
                trace: edgecd_telemetry::TraceArgs {
                    otlp_endpoint: Some(endpoint.clone()),
                    trace_filter: edgecd_telemetry::DEFAULT_TRACE_FILTER.into(),
                },
            })?),
            None => None,
        };
        let result = self.measure().await;
        if let Some(telemetry) = telemetry {
            telemetry.shutdown_async(Duration::from_secs(10)).await;
        }
        result
    }

    async fn measure(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (store, _pg) = crate::open_store(self.backend == Backend::Postgres, dir.path()).await?;
        eprintln!(
            "Loading {} clusters × {} apps (+ 1 probe cluster)…",
            self.spokes, self.apps
        );
        let clusters: Vec<String> = (0..self.spokes)
            .map(|i| format!("edge-{i:04}"))
            .chain(std::iter::once("probe".to_owned()))
            .collect();
        let mut imported = Vec::new();
        for cluster in &clusters {
            store
                .create_cluster(&NewCluster {
                    name: cluster.clone(),
                    ..NewCluster::default()
                })
                .await?;
            let count = if cluster == "probe" { 1 } else { self.apps };
            for a in 0..count {
                imported.push(ImportedApp {
                    app: NewApp {
                        project: "default".into(),
                        name: format!("{cluster}-app-{a:03}"),
                        spec: crate::web_app_spec(cluster),
                        labels: Default::default(),
                        owner: None,
                    },
                    status: None,
                });
            }
        }
        for chunk in imported.chunks(5_000) {
            store.import_apps(chunk).await?;
        }
        store.analyze().await?;
        let hub = Server::start(ServerConfig::insecure_local(Database::Store(Arc::clone(
            &store,
        ))))
        .await?;
        let address = format!("http://{}", hub.grpc_addr());

        let mut spokes = Vec::new();
        for cluster in &clusters[..self.spokes] {
            spokes.push(SimSpoke::connect(simspoke::channel(&address)?, cluster).await?);
        }
        let mut probe = SimSpoke::connect(simspoke::channel(&address)?, "probe").await?;
        eprintln!(
            "{} spokes connected; streaming for {} s…",
            self.spokes, self.seconds
        );

        let persisted = Arc::new(AtomicU64::new(0));
        // Nanoseconds from the start to the last counted acknowledgement:
        // the measured span (a spoke's last receive may end after `end`).
        let last_ack = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let end = start + Duration::from_secs(self.seconds);
        let batch = self.batch.min(self.apps).max(1);
        // One batch per spoke every `pace`, the spokes' schedules staggered.
        let pace = self
            .rate
            .filter(|rate| *rate > 0)
            .map(|rate| Duration::from_secs_f64(batch as f64 * self.spokes as f64 / rate as f64));
        let spoke_count = spokes.len();
        let mut tasks = Vec::new();
        for (i, mut spoke) in spokes.into_iter().enumerate() {
            let persisted = Arc::clone(&persisted);
            let last_ack = Arc::clone(&last_ack);
            let sent = Arc::clone(&sent);
            let names: Vec<String> = (0..self.apps)
                .map(|a| format!("{}-app-{a:03}", spoke.cluster))
                .collect();
            let window = self.window.max(1);
            let mut next =
                start + pace.map_or(Duration::ZERO, |p| p.mul_f64(i as f64 / spoke_count as f64));
            tasks.push(tokio::spawn(async move {
                let mut offset = 0;
                let mut version = 1;
                let mut acked_before = 0;
                while Instant::now() < end {
                    if spoke.in_flight() < window && Instant::now() >= next {
                        let apps: Vec<String> = (0..batch)
                            .map(|k| names[(offset + k) % names.len()].clone())
                            .collect();
                        offset += batch;
                        if offset >= names.len() {
                            offset %= names.len();
                            version += 1;
                        }
                        // Each app's version rises with every full cycle,
                        // so every report is a change that is stored.
                        let body = SimSpoke::status_batch("default", &apps, version, "r");
                        if spoke.send(body).await.is_err() {
                            return;
                        }
                        sent.fetch_add(batch as u64, Ordering::Relaxed);
                        if let Some(pace) = pace {
                            next += pace;
                        }
                        continue;
                    }
                    let received = if spoke.in_flight() < window {
                        // Paced and not yet due: acknowledgements until then.
                        tokio::time::timeout_at(next.into(), spoke.receive())
                            .await
                            .ok()
                    } else {
                        Some(spoke.receive().await)
                    };
                    match received {
                        Some(Ok(_)) => {}
                        Some(Err(_)) => return,
                        None => continue,
                    }
                    let acked = spoke.acked;
                    if acked > acked_before {
                        persisted
                            .fetch_add((acked - acked_before) * batch as u64, Ordering::Relaxed);
                        let at = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        last_ack.fetch_max(at, Ordering::Relaxed);
                    }
                    acked_before = acked;
                }
            }));
        }

        // Probe: one change every 100 ms on the probe cluster, polled
        // through the API until visible.
        let mut api = HubServiceClient::new(simspoke::channel(&address)?);
        let mut delays = Vec::new();
        let mut n = 0_u64;
        let probe_app = vec!["probe-app-000".to_owned()];
        while Instant::now() < end {
            n += 1;
            let revision = format!("probe-{n}");
            let sent = Instant::now();
            probe
                .send(SimSpoke::status_batch("default", &probe_app, n, &revision))
                .await?;
            loop {
                let app = api
                    .get_application(v1::GetApplicationRequest {
                        app: Some(v1::AppRef {
                            project: "default".into(),
                            name: "probe-app-000".into(),
                        }),
                    })
                    .await?
                    .into_inner();
                let seen = app
                    .status
                    .and_then(|s| s.sync)
                    .is_some_and(|s| s.revision == revision);
                if seen {
                    delays.push(sent.elapsed());
                    break;
                }
                if sent.elapsed() > Duration::from_secs(30) {
                    anyhow::bail!("probe change {n} not visible after 30 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // Drain the probe's acknowledgements.
            while probe.in_flight() > 0 {
                probe.receive().await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for task in tasks {
            let _ = task.await;
        }
        let elapsed = Duration::from_nanos(last_ack.load(Ordering::Relaxed))
            .as_secs_f64()
            .max(f64::EPSILON);
        let changes = persisted.load(Ordering::Relaxed);
        let rate = changes as f64 / elapsed;
        let probes = delays.len();
        let p50 = percentile_ms(&mut delays, 50.0);
        let p99 = percentile_ms(&mut delays, 99.0);
        let max = percentile_ms(&mut delays, 100.0);
        // Reports the hub wrote: fewer than the changes when a turn merged
        // two reports of one app (the newer one is written).
        let written = crate::hub_metric(hub.http_addr(), "status_reports_written_total").await?;
        hub.shutdown().await?;

        println!(
            "{:<9} {:>7} {:>8} {:>6} {:>6} {:>8} {:>12} {:>11} {:>10} {:>7} {:>9} {:>9} {:>9}",
            "backend",
            "spokes",
            "offered",
            "batch",
            "window",
            "seconds",
            "changes",
            "changes/s",
            "written/s",
            "probes",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        println!(
            "{:<9} {:>7} {:>8} {:>6} {:>6} {:>8.1} {:>12} {:>11.0} {:>10.0} {:>7} {:>9.1} {:>9.1} {:>9.1}",
            format!("{:?}", self.backend).to_lowercase(),
            self.spokes,
            self.rate
                .map_or_else(|| "max".to_owned(), |r| r.to_string()),
            self.batch,
            self.window,
            elapsed,
            changes,
            rate,
            written / elapsed,
            probes,
            p50,
            p99,
            max
        );
        let figures = serde_json::json!({
            "bench": "ingest",
            "backend": self.backend,
            "spokes": self.spokes,
            "apps": self.spokes * self.apps,
            "batch": self.batch,
            "window": self.window,
            "offered_changes_per_second": self.rate,
            "seconds": elapsed,
            "changes_sent": sent.load(Ordering::Relaxed),
            "changes_persisted": changes,
            "reports_written": written,
            "reports_written_per_second": written / elapsed,
            "changes_per_second": rate,
            "visibility_probes": probes,
            "visibility_p50_ms": p50,
            "visibility_p99_ms": p99,
            "visibility_max_ms": max,
            "goal_changes_per_second": 20_000,
            "goal_visibility_p99_ms": 1000.0,
            "met": rate >= 20_000.0 && p99 <= 1000.0,
        });
        println!("{figures}");
        Ok(())
    }
}
