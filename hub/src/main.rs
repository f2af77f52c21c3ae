//! `edgecd-hub`: the hub binary (`serve`); flags and environment only, the work is in `edgecd_hub::server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use edgecd_hub::access::OpenAccess;
use edgecd_hub::security::args::SecurityArgs;
use edgecd_hub::server::{Database, Server, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "edgecd-hub",
    version,
    about = "edgecd hub: fleet store, spoke streams and fleet API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve SpokeService and HubService (gRPC) and the admin HTTP port.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// gRPC address for spokes and clients.
    #[arg(long, env = "EDGECD_HUB_GRPC_LISTEN", default_value = "0.0.0.0:7443")]
    grpc_listen: SocketAddr,
    /// HTTP address for /live, /ready and /metrics.
    #[arg(long, env = "EDGECD_HUB_HTTP_LISTEN", default_value = "0.0.0.0:7080")]
    http_listen: SocketAddr,
    /// Directory of the embedded SQLite database (used when --database is not given).
    #[arg(
        long,
        env = "EDGECD_HUB_DATA_DIR",
        default_value = "/var/lib/edgecd-hub"
    )]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); several replicas may share one database.
    #[arg(long, env = "EDGECD_HUB_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Serve without authentication: every caller is an admin. Development only.
    #[arg(long, env = "EDGECD_HUB_INSECURE_DISABLE_AUTH")]
    insecure_disable_auth: bool,
    /// This replica's name (default: the host name, or a random one).
    #[arg(long, env = "EDGECD_HUB_REPLICA_ID")]
    replica_id: Option<String>,
    /// The host other replicas reach this one's gRPC port at (its pod IP, a headless Service name): live
    /// reads and exec about a cluster another replica holds are then relayed to it (docs/hub.md). With TLS,
    /// the serving certificate must name it (--tls-name).
    #[arg(long, env = "EDGECD_HUB_PEER_HOST")]
    peer_host: Option<String>,
    /// How often application sets at the hub are re-evaluated (git revisions polled), e.g. 3m.
    #[arg(long, env = "EDGECD_HUB_APPSET_INTERVAL", default_value = "3m", value_parser = parse_duration)]
    appset_interval: std::time::Duration,
    /// Git cache of the hub's own reads (application-set git generators, app-of-apps parents);
    /// default: `git` under --data-dir.
    #[arg(long, env = "EDGECD_HUB_GIT_CACHE_DIR")]
    git_cache_dir: Option<PathBuf>,
    /// The helm binary that renders app-of-apps parents that are Helm charts (a name looked up on PATH, or a
    /// path); the image ships it on PATH.
    #[arg(long, env = "EDGECD_HUB_HELM_BINARY", default_value = "helm")]
    helm_binary: PathBuf,
    /// Create a new, empty fleet (database and CA) even where an existing one is evidenced:
    /// the SQLite database is missing but its marker (`hub.db.fleet`) is present, or the store
    /// has no CA but records certificates issued to spokes. Every spoke must then enroll again.
    #[arg(long, env = "EDGECD_HUB_INIT_NEW_FLEET")]
    init_new_fleet: bool,
    /// How long after its certificate expired a spoke may still renew it (`RenewCertificate`, with
    /// its key) instead of enrolling again with a new bootstrap token, e.g. 168h; 0s turns it off.
    #[arg(long, env = "EDGECD_HUB_RENEW_GRACE", default_value = "168h", value_parser = parse_duration)]
    renew_grace: std::time::Duration,
    /// How often the hub and its spokes exchange heartbeats on a stream, e.g. 10s.
    #[arg(long, env = "EDGECD_HUB_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    heartbeat_interval: std::time::Duration,
    /// The staleness threshold: a connected cluster whose stream has been silent this long is shown Stale (its
    /// apps' last status no longer trusted), e.g. 30s. Keep it at least three heartbeats.
    #[arg(long, env = "EDGECD_HUB_STALE_AFTER", default_value = "30s", value_parser = parse_duration)]
    stale_after: std::time::Duration,
    /// Spoke handshakes (Hello to Welcome) this replica runs at once; more wait up to the Hello timeout
    /// (10 s) for a turn, then are refused with UNAVAILABLE and a jittered retry-after. Bounds a reconnect
    /// storm's load on the database.
    #[arg(long, env = "EDGECD_HUB_MAX_HANDSHAKES", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_handshakes: u32,
    /// Log filter (tracing-subscriber syntax).
    #[arg(long, env = "EDGECD_HUB_LOG", default_value = "info")]
    log: String,
    /// Log line format: `text`, or `json` (one object per line, with `trace_id` and `span_id` inside a traced span).
    #[arg(long, env = "EDGECD_HUB_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(flatten)]
    trace: edgecd_telemetry::TraceArgs,
    /// A link to a trace in your tracing UI, reported by GetServerInfo for clients to link trace ids:
    /// `{trace_id}` is replaced, e.g. 'https://tempo.example/trace/{trace_id}'.
    #[arg(long, env = "EDGECD_HUB_TRACE_URL_TEMPLATE")]
    trace_url_template: Option<String>,
    /// Mark the console's session cookie Secure: set it when browsers reach the console over HTTPS (an Ingress or
    /// load balancer terminating TLS in front of the HTTP port); browsers then never send it over plain HTTP.
    #[arg(long, env = "EDGECD_HUB_CONSOLE_SECURE_COOKIES")]
    console_secure_cookies: bool,
    /// The CA certificate (PEM) of the PostgreSQL server, when a private CA issued its certificate: the hub then
    /// connects over TLS and verifies the server's certificate and name against it (sslmode=verify-full unless
    /// the URL says verify-ca or require). Without it, an sslmode in the URL verifies against the system's roots.
    #[arg(long, env = "EDGECD_HUB_DATABASE_CA_FILE")]
    database_ca_file: Option<PathBuf>,
    #[command(flatten)]
    security: SecurityArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Serve(args) = Cli::parse().command;
    let telemetry = edgecd_telemetry::init(&edgecd_telemetry::Settings {
        service_name: "edgecd-hub",
        log_filter: args.log.clone(),
        log_format: if args.log_format == "json" {
            edgecd_telemetry::LogFormat::Json
        } else {
            edgecd_telemetry::LogFormat::Text
        },
        trace: args.trace.clone(),
    })
    .context("logs and traces")?;
    if telemetry.tracing_enabled() {
        tracing::info!("Exporting traces over OTLP.");
    }
    let database = match args.database {
        Some(url) => {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                bail!("--database must be a postgres:// URL");
            }
            Database::Postgres(url)
        }
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating {}", args.data_dir.display()))?;
            Database::Sqlite(args.data_dir.join("hub.db"))
        }
    };
    let mut config = ServerConfig::insecure_local(database);
    config.grpc_listen = args.grpc_listen;
    config.http_listen = args.http_listen;
    config.appsets.interval = args.appset_interval;
    config.init_new_fleet = args.init_new_fleet;
    config.console_secure_cookies = args.console_secure_cookies;
    if args.database_ca_file.is_some() && !matches!(config.database, Database::Postgres(_)) {
        bail!("--database-ca-file needs --database (a postgres:// URL)");
    }
    config.database_ca_file = args.database_ca_file;
    config.link.renew_grace = args.renew_grace;
    if args.heartbeat_interval.is_zero()
        || args.stale_after < args.heartbeat_interval.saturating_mul(2)
    {
        bail!(
            "--stale-after must be at least two --heartbeat-interval, and the interval above zero"
        );
    }
    config.link.heartbeat_interval = args.heartbeat_interval;
    config.link.stale_after = args.stale_after;
    config.link.max_handshakes = args.max_handshakes as usize;
    if let Some(template) = args.trace_url_template {
        if !template.contains("{trace_id}") {
            bail!("--trace-url-template must contain {{trace_id}}");
        }
        config.api.trace_url_template = template;
    }
    config.git_cache_dir = Some(
        args.git_cache_dir
            .unwrap_or_else(|| args.data_dir.join("git")),
    );
    config.helm_binary = args.helm_binary;
    if args.insecure_disable_auth {
        // No CA, no TLS, no accounts: every caller is an admin and spokes
        // are trusted by the name they send. Development only.
        tracing::warn!("Authentication is disabled: every caller is an admin.");
        config.authenticator = Arc::new(OpenAccess);
    } else {
        // The hub's CA (sealed with the master key, or supplied), TLS on
        // the gRPC port, mTLS identities for spokes, accounts and tokens.
        config.security = Some(
            args.security
                .into_settings()
                .context("security settings (or --insecure-disable-auth for development)")?,
        );
    }
    if let Some(id) = args.replica_id.or_else(|| std::env::var("HOSTNAME").ok()) {
        config.replica_id = id;
    }
    config.peer_host = args.peer_host.filter(|h| !h.trim().is_empty());
    let mut server = Server::start(config).await.context("starting the hub")?;
    let stop = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = ctrl_c => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        ctrl_c.await
    };
    tokio::select! {
        r = stop => r.context("waiting for a signal")?,
        r = server.wait() => {
            r.context("the hub stopped")?;
            bail!("the hub stopped unexpectedly");
        }
    }
    server.shutdown().await.context("shutting down")?;
    telemetry
        .shutdown_async(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    edgecd_core::duration::GoDuration::parse(text)
        .map(|d| d.0)
        .map_err(|e| e.to_string())
}
