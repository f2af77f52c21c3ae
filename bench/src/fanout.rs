//! `edgecd-bench fanout`: one bulk sync command over 1,000 connected simulated spokes (real gRPC streams to a real hub `Server`); time from issuing it until each spoke has it (and acknowledges it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{ImportedApp, NewApp, NewCluster};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use tokio::sync::watch;

use super::simspoke::{self, Received, SimSpoke, percentile_ms};

/// Options of the fan-out benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutBench {
    /// Connected spokes (one app each).
    #[arg(long, default_value_t = 1_000)]
    pub spokes: usize,
    /// Store backend of the hub.
    #[arg(long, value_enum, default_value_t = Backend::Postgres)]
    pub backend: Backend,
    /// Repetitions of the bulk command.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, serde::Serialize)]
struct Round {
    round: usize,
    bulk_call_ms: f64,
    received: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl FanoutBench {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (store, _pg) = crate::open_store(self.backend == Backend::Postgres, dir.path()).await?;
        eprintln!("Registering {} clusters with one app each…", self.spokes);
        let mut apps = Vec::with_capacity(self.spokes);
        for i in 0..self.spokes {
            let name = format!("edge-{i:05}");
            store
                .create_cluster(&NewCluster {
                    name: name.clone(),
                    ..NewCluster::default()
                })
                .await?;
            apps.push(ImportedApp {
                app: NewApp {
                    project: "default".into(),
                    name: format!("web-{i:05}"),
                    spec: crate::web_app_spec(&name),
                    labels: Default::default(),
                    owner: None,
                },
                status: None,
            });
        }
        store.import_apps(&apps).await?;
        let hub = Server::start(ServerConfig::insecure_local(Database::Store(Arc::clone(
            &store,
        ))))
        .await?;
        let address = format!("http://{}", hub.grpc_addr());

        eprintln!("Connecting {} simulated spokes…", self.spokes);
        let received: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let (stop_tx, stop) = watch::channel(false);
        let mut tasks = Vec::new();
        let (ready_tx, mut ready) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(self.spokes);
        let limit = Arc::new(tokio::sync::Semaphore::new(100));
        for i in 0..self.spokes {
            let cluster = format!("edge-{i:05}");
            let channel = simspoke::channel(&address)?;
            let received = Arc::clone(&received);
            let mut stop = stop.clone();
            let ready_tx = ready_tx.clone();
            let limit = Arc::clone(&limit);
            tasks.push(tokio::spawn(async move {
                let permit = limit.acquire_owned().await;
                let mut spoke = match SimSpoke::connect(channel, &cluster).await {
                    Ok(spoke) => spoke,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error)).await;
                        return;
                    }
                };
                drop(permit);
                let _ = ready_tx.send(Ok(())).await;
                loop {
                    tokio::select! {
                        message = spoke.receive() => match message {
                            Ok(Received::Command(command)) => {
                                let at = Instant::now();
                                received.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(at);
                                // The result also acknowledges the command.
                                if spoke.send(SimSpoke::succeeded(&command.id)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(Received::Other) => {}
                            Err(_) => return,
                        },
                        _ = stop.changed() => return,
                    }
                }
            }));
        }
        drop(ready_tx);
        let mut connected = 0;
        while connected < self.spokes {
            match ready.recv().await {
                Some(result) => result?,
                None => anyhow::bail!("spokes stopped before connecting"),
            }
            connected += 1;
        }
        eprintln!("{connected} spokes connected.");
        tokio::time::sleep(Duration::from_secs(2)).await;

        let channel = simspoke::channel(&address)?;
        let mut api = HubServiceClient::new(channel);
        let mut rounds = Vec::new();
        for round in 1..=self.rounds {
            received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
            let start = Instant::now();
            let response = api
                .bulk_command(v1::BulkCommandRequest {
                    filter: None,
                    kind: Some(v1::bulk_command_request::Kind::Sync(
                        v1::SyncCommand::default(),
                    )),
                    ttl: None,
                })
                .await?
                .into_inner();
            let bulk_call = start.elapsed();
            anyhow::ensure!(
                response.commands.len() == self.spokes,
                "bulk command addressed {} apps, expected {}",
                response.commands.len(),
                self.spokes
            );
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let n = received
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len();
                if n >= self.spokes || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut latencies: Vec<Duration> = received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|at| at.duration_since(start))
                .collect();
            rounds.push(Round {
                round,
                bulk_call_ms: bulk_call.as_secs_f64() * 1000.0,
                received: latencies.len(),
                p50_ms: percentile_ms(&mut latencies, 50.0),
                p99_ms: percentile_ms(&mut latencies, 99.0),
                max_ms: percentile_ms(&mut latencies, 100.0),
            });
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        hub.shutdown().await?;

        println!(
            "{:<6} {:>10} {:>9} {:>10} {:>10} {:>10}",
            "round", "bulk ms", "received", "p50 ms", "p99 ms", "max ms"
        );
        for r in &rounds {
            println!(
                "{:<6} {:>10.1} {:>9} {:>10.1} {:>10.1} {:>10.1}",
                r.round, r.bulk_call_ms, r.received, r.p50_ms, r.p99_ms, r.max_ms
            );
        }
        let worst_p99 = rounds.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
        let all_received = rounds.iter().all(|r| r.received == self.spokes);
        let figures = serde_json::json!({
            "bench": "fanout",
            "backend": self.backend,
            "spokes": self.spokes,
            "rounds": rounds,
            "worst_p99_ms": worst_p99,
            "goal_p99_ms": 1000.0,
            "met": all_received && worst_p99 <= 1000.0,
        });
        println!("{figures}");
        Ok(())
    }
}
