//! A Helm chart repository on loopback for tests: serves the files of a directory (`index.yaml`, packaged charts) over plain HTTP/1.1, optionally behind basic auth, and records what was asked; plus `helm package` / `helm repo index` helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Error, Result, io_error};

/// One request the server answered: the path, whether it carried the expected credentials, and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRequest {
    pub path: String,
    pub authorized: bool,
    pub status: u16,
}

/// A running chart repository; stops when dropped.
#[derive(Debug)]
pub struct ChartRepoServer {
    url: String,
    root: PathBuf,
    requests: Arc<Mutex<Vec<ChartRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChartRepoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChartRepoServer {
    /// Serves `root` at `http://127.0.0.1:PORT/`; with `basic_auth`, every request needs it (401 otherwise).
    pub async fn start(root: impl Into<PathBuf>, basic_auth: Option<(&str, &str)>) -> Result<Self> {
        let root = root.into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io_error("binding the chart repository"))?;
        let url = format!(
            "http://{}/",
            listener
                .local_addr()
                .map_err(io_error("the chart repository's address"))?
        );
        let expected = basic_auth.map(|(user, password)| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let root = root.clone();
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let root = root.clone();
                    let requests = Arc::clone(&requests);
                    let expected = expected.clone();
                    tokio::spawn(async move {
                        let _ = serve(stream, &root, expected.as_deref(), &requests).await;
                    });
                }
            })
        };
        Ok(Self {
            url,
            root,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The served directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<ChartRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    root: &Path,
    expected: Option<&str>,
    requests: &Mutex<Vec<ChartRequest>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.lines();
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let authorization = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| v.trim().to_owned())
    });
    let authorized = expected.is_none_or(|e| authorization.as_deref() == Some(e));
    let file = path
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (status, body) = if !authorized {
        (401, b"unauthorized\n".to_vec())
    } else if file.is_empty() || file.contains("..") {
        (404, b"not found\n".to_vec())
    } else {
        match tokio::fs::read(root.join(&file)).await {
            Ok(bytes) => (200, bytes),
            Err(_) => (404, b"not found\n".to_vec()),
        }
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ChartRequest {
            path,
            authorized: authorization.is_some() && authorized,
            status,
        });
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        response.push_str("WWW-Authenticate: Basic realm=\"charts\"\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// Runs helm with private home directories (nothing of the user's read or written), failing with its output.
pub fn run_helm(helm: &Path, home: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new(helm)
        .args(args)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .map_err(io_error(format!("running {}", helm.display())))?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "helm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `helm package CHART --version VERSION -d OUT`; returns the package's path.
pub fn package_chart(helm: &Path, chart: &Path, version: &str, out: &Path) -> Result<PathBuf> {
    let home = out.join(".helm-home");
    std::fs::create_dir_all(&home).map_err(io_error(home.display().to_string()))?;
    let chart_text = chart.display().to_string();
    let out_text = out.display().to_string();
    let printed = run_helm(
        helm,
        &home,
        &[
            "package",
            &chart_text,
            "--version",
            version,
            "-d",
            &out_text,
        ],
    )?;
    let path = printed
        .trim()
        .rsplit_once(": ")
        .map(|(_, p)| PathBuf::from(p.trim()))
        .ok_or_else(|| Error::Setup(format!("helm package printed {printed:?}")))?;
    Ok(path)
}

/// `helm repo index DIR --url URL`: writes `DIR/index.yaml` with every package's digest.
pub fn index_repo(helm: &Path, dir: &Path, url: &str) -> Result<()> {
    let home = dir.join(".helm-home");
    std::fs::create_dir_all(&home).map_err(io_error(home.display().to_string()))?;
    let dir_text = dir.display().to_string();
    run_helm(helm, &home, &["repo", "index", &dir_text, "--url", url])?;
    Ok(())
}
