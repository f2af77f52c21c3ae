//! edgecd's benchmarks, one module per `edgecd-bench` subcommand, and the simulated spoke that several of them drive.

pub mod console;
pub mod fanout;
pub mod ingest;
pub mod list;
pub mod render;
pub mod simspoke;
pub mod spoke;
pub mod streams;

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
