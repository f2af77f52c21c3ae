//! edgecd end-to-end support: benchmarks, the browser driver and the test harness (the dev fleet lives in `dev/`, crate `edgecd-dev`, and the Kubernetes API emulator in `emulator/`, crate `edgecd-kube-emulator`; both are re-exported here).

pub mod bench;
pub mod browser;
pub mod harness;

/// The local dev fleet (`dev/`, crate `edgecd-dev`).
pub use edgecd_dev as dev;

/// The Kubernetes API emulator (`emulator/`, crate `edgecd-kube-emulator`).
pub use edgecd_kube_emulator as emulator;

/// The repository's `testdata/` folder: the fixtures that the tests, the benchmarks and the dev fleet read.
pub fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
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
