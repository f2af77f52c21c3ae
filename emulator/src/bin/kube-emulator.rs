//! `kube-emulator`: serves N emulated Kubernetes API servers (a test fixture) and writes their kubeconfigs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};

/// Kubernetes API emulator for edgecd tests (not a real Kubernetes).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of clusters, named cluster-1 … cluster-N.
    #[arg(long, env = "KUBE_EMULATOR_CLUSTERS", default_value_t = 1)]
    clusters: usize,
    /// Directory for `cluster-K.kubeconfig` files.
    #[arg(long, env = "KUBE_EMULATOR_OUT")]
    out: PathBuf,
    /// Listen address.
    #[arg(long, env = "KUBE_EMULATOR_LISTEN", default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Delay before simulated controllers write status, in milliseconds.
    #[arg(long, env = "KUBE_EMULATOR_STAGE_DELAY_MS", default_value_t = 500)]
    stage_delay_ms: u64,
    /// Watch events retained per cluster.
    #[arg(long, env = "KUBE_EMULATOR_WATCH_HISTORY", default_value_t = 1000)]
    watch_history: usize,
    /// Bookmark interval, in seconds.
    #[arg(long, env = "KUBE_EMULATOR_BOOKMARK_SECONDS", default_value_t = 30)]
    bookmark_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args {
        clusters,
        out,
        listen,
        stage_delay_ms,
        watch_history,
        bookmark_seconds,
    } = Args::parse();
    let config = EmulatorConfig {
        clusters,
        listen,
        stage_delay: Duration::from_millis(stage_delay_ms),
        watch_history,
        bookmark_interval: Duration::from_secs(bookmark_seconds),
        ..EmulatorConfig::default()
    };
    let emulator = KubeEmulator::start(config)
        .await
        .context("starting the emulator")?;
    emulator
        .write_kubeconfigs(&out)
        .context("writing kubeconfigs")?;
    println!("ready");
    wait_for_signal().await.context("waiting for a signal")?;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
