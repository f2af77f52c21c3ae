//! `edgecd-dev`: a complete local fleet in one command (hub, emulated clusters, spokes, git, the talk's apps); see the `edgecd_dev` library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use edgecd_dev::{ADMIN_USER, Fleet, FleetConfig};

/// A local edgecd fleet: a hub, N emulated Kubernetes clusters with a spoke each, a git server
/// holding edge-fleet-repo, and the nginx-per-cluster apps. Runs until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Emulated clusters (cluster-1 … cluster-N).
    #[arg(long, default_value_t = 3)]
    clusters: usize,
    /// Extra generated apps per cluster (automated sync), for a larger fleet.
    #[arg(long, default_value_t = 0)]
    apps_per_cluster: usize,
    /// Also apply the fleet-scoped set appsets/edge-addons.yaml to every cluster (selector
    /// env=dev): each spoke generates guestbook, minecraft and nginx (name@cluster), synced.
    #[arg(long)]
    edge_addons: bool,
    /// Exit 0 once every app is Synced and Healthy (non-zero with a summary after --timeout).
    #[arg(long)]
    exit_when_synced: bool,
    /// How long --exit-when-synced waits, e.g. 5m.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
    /// SQLite file for the hub (default: in a temporary directory, removed on exit).
    #[arg(long)]
    database: Option<PathBuf>,
    /// The hub's gRPC address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// The hub's HTTP address (console, /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_listen: SocketAddr,
    /// Log filter for the hub, spokes and emulator (tracing env-filter syntax).
    #[arg(
        long,
        env = "EDGECD_DEV_LOG",
        default_value = "warn,kube_client=off,kube_runtime=off"
    )]
    log: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    edgecd_core::duration::GoDuration::parse(text)
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow::anyhow!("invalid --log {:?}: {e}", args.log))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    let started = Instant::now();
    let config = FleetConfig {
        clusters: args.clusters,
        apps_per_cluster: args.apps_per_cluster,
        edge_addons: args.edge_addons,
        database: args.database.clone(),
        grpc_listen: args.grpc_listen,
        http_listen: args.http_listen,
        ..FleetConfig::default()
    };
    let fleet = tokio::select! {
        fleet = Fleet::start(config, |p| eprintln!("[{}/{}] {}", p.step, p.steps, p.message)) => fleet?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted while starting");
            return Ok(ExitCode::from(130));
        }
    };
    eprintln!(
        "fleet up in {:.1}s: {} clusters, {} apps",
        started.elapsed().as_secs_f64(),
        fleet.clusters().len(),
        fleet.apps().len()
    );
    print_banner(&fleet);

    if args.exit_when_synced {
        eprintln!(
            "waiting until every app is Synced and Healthy (at most {}s) …",
            args.timeout.as_secs()
        );
        // A line whenever the count changes, at most every 5 s (and the last one), so a large fleet
        // shows it is converging.
        let mut shown: Option<Instant> = None;
        let progress = |ready: usize, total: usize| {
            if ready == total || shown.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                eprintln!(
                    "  {ready}/{total} apps Synced and Healthy ({:.0}s)",
                    started.elapsed().as_secs_f64()
                );
                shown = Some(Instant::now());
            }
        };
        let result = tokio::select! {
            result = fleet.wait_synced_with(args.timeout, progress) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        };
        let code = match result {
            Some(Ok(())) => {
                println!(
                    "all {} apps Synced and Healthy, {:.1}s after start",
                    fleet.apps().len(),
                    started.elapsed().as_secs_f64()
                );
                ExitCode::SUCCESS
            }
            Some(Err(error)) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
            None => ExitCode::from(130),
        };
        eprintln!("stopping the fleet …");
        fleet.shutdown().await;
        return Ok(code);
    }

    eprintln!("running; press Ctrl-C to stop and clean up");
    wait_for_signal().await;
    eprintln!("stopping the fleet …");
    fleet.shutdown().await;
    eprintln!("stopped; temporary files removed");
    Ok(ExitCode::SUCCESS)
}

fn print_banner(fleet: &Fleet) {
    println!();
    println!("edgecd dev fleet");
    println!("  console:   {}", fleet.console_url());
    println!("  hub gRPC:  {}", fleet.grpc_url());
    println!("  hub CA:    {}", fleet.ca_file().display());
    println!("  login:     {} / {}", ADMIN_USER, fleet.admin_password());
    println!("  spokes:    enrolled with one-time bootstrap tokens, linked over mTLS");
    println!("  git:       {}", fleet.repo().url());
    println!("  work copy: {}", fleet.repo().work_path().display());
    println!();
    println!(
        "  edgecd login {} --ca-file {} --username {} --password {}",
        fleet.grpc_url(),
        fleet.ca_file().display(),
        ADMIN_USER,
        fleet.admin_password()
    );
    println!("  edgecd app list");
    println!();
    println!(
        "The cluster-N.nginx apps come from appsets/nginx-per-cluster.yaml, applied at the hub"
    );
    println!("(edgecd appset get nginx); they were synced once, as after `argocd app sync`.");
    if fleet.config().edge_addons {
        println!(
            "The fleet-scoped set edge-addons ({}, scope {}) runs at every cluster's spoke:",
            edgecd_dev::EDGE_ADDONS_APPSET,
            edgecd_dev::EDGE_ADDONS_SCOPE
        );
        println!("  edgecd appset get edge-addons; edgecd app list --name nginx (one per cluster)");
    }
    println!();
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
