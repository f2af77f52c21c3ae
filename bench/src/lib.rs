//! edgecd's benchmarks, one module per `edgecd-bench` subcommand, and the simulated spoke that several of them drive.

pub mod console;
pub mod fanout;
pub mod faults;
pub mod ingest;
pub mod list;
pub mod render;
pub mod simspoke;
pub mod spoke;
pub mod streams;
pub mod tracing_overhead;

use std::sync::Arc;

use anyhow::Context as _;
use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination};
use edgecd_hub::store::{PgStore, SqliteStore, Store};

/// A throwaway PostgreSQL server with a fresh database: the server (stopped when dropped), the database's
/// URL, and the hub's store on it.
pub async fn start_postgres() -> anyhow::Result<(edgecd_testkit::PgServer, String, PgStore)> {
    let server = tokio::task::spawn_blocking(edgecd_testkit::PgServer::start)
        .await?
        .context("starting PostgreSQL")?;
    let url = server.create_database().context("creating the database")?;
    let store = PgStore::connect_url(&url)
        .await
        .context("opening PostgreSQL")?;
    Ok((server, url, store))
}

/// The hub store a benchmark runs on: SQLite in `dir`, or PostgreSQL from [`start_postgres`] (its server
/// returned too, to be kept alive for as long as the store).
pub async fn open_store(
    postgres: bool,
    dir: &std::path::Path,
) -> anyhow::Result<(Arc<dyn Store>, Option<edgecd_testkit::PgServer>)> {
    if postgres {
        let (server, _, store) = start_postgres().await?;
        Ok((Arc::new(store), Some(server)))
    } else {
        let store = SqliteStore::open(&dir.join("hub.db"))
            .await
            .context("opening SQLite")?;
        Ok((Arc::new(store), None))
    }
}

/// The app every benchmark fleet runs: `deploy` of one repository into namespace `web` of `cluster`.
pub fn web_app_spec(cluster: &str) -> ApplicationSpec {
    ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: "https://git.example.com/web.git".into(),
            target_revision: "HEAD".into(),
            path: "deploy".into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            cluster: cluster.into(),
            namespace: "web".into(),
            ..Destination::default()
        },
        ..ApplicationSpec::default()
    }
}

/// The value of one metric on a hub's `/metrics` page (a plain HTTP/1.0 GET):
/// the first sample whose name ends in `name`.
pub async fn hub_metric(http: std::net::SocketAddr, name: &str) -> anyhow::Result<f64> {
    use anyhow::Context as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(http).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut page = String::new();
    stream.read_to_string(&mut page).await?;
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            key.ends_with(name)
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .with_context(|| format!("metric {name} not on the hub's /metrics page"))
}
