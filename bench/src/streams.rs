//! `edgecd-bench streams`: N concurrent spoke streams held by one hub replica (a child process, SQLite); resident memory per stream.
//!
//! The hub runs out of process (this binary with `--serve`) so that its
//! resident set is not mixed with the simulated spokes'.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use edgecd_hub::link::LinkConfig;
use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{NewCluster, SqliteStore, Store};

use super::simspoke::{self, SimSpoke, rss_kib};

/// Options of the streams benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamsBench {
    /// Concurrent spoke streams to open.
    #[arg(long, default_value_t = 10_000)]
    pub streams: usize,
    /// Streams opened at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// Internal: serve a hub on this SQLite file and print its address.
    #[arg(long, hide = true)]
    pub serve: Option<PathBuf>,
}

/// Heartbeats are slowed down so that 10,000 idle streams do not turn into
/// 1,000 SQLite writes per second; see docs/benchmarks.md.
const HEARTBEAT: Duration = Duration::from_secs(30);

impl StreamsBench {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        match self.serve.clone() {
            Some(db) => runtime.block_on(serve(db)),
            None => runtime.block_on(self.measure()),
        }
    }

    async fn measure(self) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("hub.db");
        eprintln!("Registering {} clusters…", self.streams);
        {
            let store = SqliteStore::open(&db).await?;
            for i in 0..self.streams {
                store
                    .create_cluster(&NewCluster {
                        name: format!("edge-{i:05}"),
                        ..NewCluster::default()
                    })
                    .await?;
            }
        }
        let mut child = Command::new(std::env::current_exe()?)
            .args(["streams", "--serve"])
            .arg(&db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the hub process")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("hub stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("READY ") else {
            bail!("the hub process did not start: {line:?}");
        };
        let address = format!("http://{addr}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let base = rss_kib(pid).context("reading the hub's RSS")?;
        eprintln!(
            "Hub up (pid {pid}, RSS {base} KiB); opening {} streams…",
            self.streams
        );

        let limit = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let (done_tx, mut done) = tokio::sync::mpsc::channel::<Result<(), String>>(1024);
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(self.streams);
        for i in 0..self.streams {
            let channel = simspoke::channel(&address)?;
            let limit = Arc::clone(&limit);
            let done_tx = done_tx.clone();
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let permit = limit.acquire_owned().await;
                let mut spoke = match SimSpoke::connect(channel, &format!("edge-{i:05}")).await {
                    Ok(spoke) => spoke,
                    Err(error) => {
                        let _ = done_tx.send(Err(format!("{error:#}"))).await;
                        return;
                    }
                };
                drop(permit);
                let _ = done_tx.send(Ok(())).await;
                let mut beat = tokio::time::interval(HEARTBEAT);
                loop {
                    tokio::select! {
                        r = spoke.receive() => if r.is_err() { return },
                        _ = beat.tick() => if spoke.heartbeat().await.is_err() { return },
                        _ = stop.changed() => return,
                    }
                }
            }));
        }
        drop(done_tx);
        let mut opened = 0_usize;
        let mut errors: Vec<String> = Vec::new();
        while opened + errors.len() < self.streams {
            match done.recv().await {
                Some(Ok(())) => opened += 1,
                Some(Err(e)) => errors.push(e),
                None => break,
            }
        }
        let open_time = start.elapsed();
        // Let allocations settle, then sample a few times.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut rss = 0;
        for _ in 0..3 {
            rss = rss.max(rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let still_open = tasks.iter().filter(|t| !t.is_finished()).count();
        let per_stream_kib = if opened > 0 {
            (rss.saturating_sub(base)) as f64 / opened as f64
        } else {
            0.0
        };
        let _ = stop_tx.send(true);
        for task in tasks {
            task.abort();
        }
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = child.kill();
        let _ = child.wait();

        println!(
            "{:>8} {:>8} {:>10} {:>12} {:>12} {:>14} {:>8}",
            "streams", "opened", "open s", "base KiB", "RSS KiB", "KiB/stream", "errors"
        );
        println!(
            "{:>8} {:>8} {:>10.1} {:>12} {:>12} {:>14.1} {:>8}",
            self.streams,
            opened,
            open_time.as_secs_f64(),
            base,
            rss,
            per_stream_kib,
            errors.len()
        );
        if let Some(first) = errors.first() {
            eprintln!("first error: {first}");
        }
        let figures = serde_json::json!({
            "bench": "streams",
            "streams": self.streams,
            "opened": opened,
            "still_open": still_open,
            "open_seconds": open_time.as_secs_f64(),
            "hub_rss_base_kib": base,
            "hub_rss_kib": rss,
            "kib_per_stream": per_stream_kib,
            "errors": errors.len(),
            "first_error": errors.first(),
            "goal_streams": 10_000,
            "goal_kib_per_stream": 64,
            "met": opened >= 10_000 && per_stream_kib <= 64.0,
        });
        println!("{figures}");
        Ok(())
    }
}

/// The hub side: serves until stdin closes.
async fn serve(db: PathBuf) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).await?);
    let mut config = ServerConfig::insecure_local(Database::Store(store));
    config.link = LinkConfig {
        heartbeat_interval: HEARTBEAT,
        stale_after: HEARTBEAT * 4,
        ..LinkConfig::default()
    };
    let hub = Server::start(config).await?;
    println!("READY {}", hub.grpc_addr());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await?;
    hub.abort();
    Ok(())
}
