//! A real Kubernetes control plane on loopback: the `realkube` program (etcd, kube-apiserver, kube-controller-manager and a node simulator, built from the Kubernetes Go modules) started from tests.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{Error, Result, io_error, watchdog};

/// The build script, relative to this crate.
const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/realkube-build");

/// How long the control plane may take to answer `/readyz` and settle.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A running `realkube`: embedded etcd, kube-apiserver and
/// kube-controller-manager in one process on free loopback ports, with a
/// simulated node that binds pods and reports them Running and Ready.
///
/// Its data, certificates, admin kubeconfig and logs live in a temp dir.
/// Dropping it kills the process and removes the dir; when the test is
/// panicking the logs are kept and their tail printed. The process also
/// exits when the test process dies (it watches the stdin pipe this holds).
#[derive(Debug)]
pub struct RealCluster {
    child: Child,
    _stdin: ChildStdin,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    kubeconfig: PathBuf,
    started_in: Duration,
}

impl RealCluster {
    /// Builds (or finds the cached) `realkube` binary and starts a fresh
    /// control plane, waiting until it is ready.
    ///
    /// `EDGECD_REALKUBE_BIN` names a binary to use instead of building;
    /// `EDGECD_REALKUBE_READY_TIMEOUT` (seconds) bounds the wait.
    pub fn start() -> Result<Self> {
        let bin = binary()?;
        // etcd's ports are probed free, then bound: retry an early exit
        // (the rare race), not a timeout.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Self::spawn(&bin, &[]) {
                Ok(cluster) => return Ok(cluster),
                Err((early_exit, e)) if !early_exit || attempts == 3 => return Err(e),
                Err(_) => {}
            }
        }
    }

    /// Starts `bin` with extra `realkube` flags (for example
    /// `--apiserver-flag=--feature-gates=...` or `--controllers=false`).
    pub fn start_with(bin: &Path, extra_args: &[&str]) -> Result<Self> {
        Self::spawn(bin, extra_args).map_err(|(_, e)| e)
    }

    /// Starts `bin` and waits for "ready"; the flag of an error says whether
    /// the process exited by itself before it was ready.
    fn spawn(bin: &Path, extra_args: &[&str]) -> Result<Self, (bool, Error)> {
        let setup = |e: Error| (false, e);
        let dir = tempfile::Builder::new()
            .prefix("edgecd-realkube-")
            .tempdir()
            .map_err(io_error("creating the realkube temp dir"))
            .map_err(setup)?;
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        let kubeconfig = root.join("kubeconfig");
        let stdout_path = root.join("stdout.log");
        let log_path = root.join("realkube.log");
        let stdout = File::create(&stdout_path)
            .map_err(io_error("creating stdout.log"))
            .map_err(setup)?;
        let stderr = File::create(&log_path)
            .map_err(io_error("creating realkube.log"))
            .map_err(setup)?;
        let started = Instant::now();
        let mut child = Command::new(bin)
            .arg("--dir")
            .arg(&data)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(io_error(format!("starting {}", bin.display())))
            .map_err(setup)?;
        let Some(stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(setup(Error::Setup("realkube's stdin was not piped".into())));
        };
        // Stop it and remove its data even if the test process dies first
        // (the stdin pipe already makes it exit; only if the pid is still
        // ours: pids are reused). Logs stay for a post-mortem.
        let pid = child.id();
        watchdog::spawn(&format!(
            "grep -q {data} /proc/{pid}/cmdline 2>/dev/null && kill -9 {pid}; rm -rf {data}",
            data = data.display()
        ))
        .map_err(setup)?;
        let mut cluster = Self {
            child,
            _stdin: stdin,
            dir: Some(dir),
            root,
            kubeconfig,
            started_in: Duration::ZERO,
        };
        let timeout = std::env::var("EDGECD_REALKUBE_READY_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(DEFAULT_READY_TIMEOUT, Duration::from_secs);
        loop {
            let out = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            if out.lines().any(|l| l.trim() == "ready") {
                cluster.started_in = started.elapsed();
                return Ok(cluster);
            }
            if let Ok(Some(status)) = cluster.child.try_wait() {
                let tail = cluster.keep_logs();
                return Err((
                    true,
                    Error::Setup(format!(
                        "realkube exited before it was ready ({status}); logs in {}:\n{tail}",
                        cluster.root.display()
                    )),
                ));
            }
            if started.elapsed() > timeout {
                let _ = cluster.child.kill();
                let _ = cluster.child.wait();
                let tail = cluster.keep_logs();
                return Err(setup(Error::Setup(format!(
                    "realkube was not ready within {timeout:?}; logs in {}:\n{tail}",
                    cluster.root.display()
                ))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The admin kubeconfig (bearer token, CA inline, namespace `default`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The admin kubeconfig's text.
    pub fn kubeconfig_yaml(&self) -> Result<String> {
        std::fs::read_to_string(&self.kubeconfig).map_err(io_error("reading the kubeconfig"))
    }

    /// A kube client with the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| Error::Setup(format!("reading the realkube kubeconfig: {e}")))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| Error::Setup(format!("loading the realkube kubeconfig: {e}")))?;
        kube::Client::try_from(config)
            .map_err(|e| Error::Setup(format!("building a client for realkube: {e}")))
    }

    /// The temp dir: `kubeconfig`, `realkube.log` (etcd, apiserver and
    /// controller logs), `stdout.log` and `data/` (etcd data, certificates).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// How long the start took, from spawning the process to "ready".
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The last `lines` lines of the control plane's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.root.join("realkube.log"), lines)
    }

    /// Keeps the temp dir (without the etcd data) for a post-mortem and
    /// returns the log's tail.
    fn keep_logs(&mut self) -> String {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir.path().join("data"));
            let _ = dir.keep();
        }
        self.log_tail(60)
    }
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() && self.dir.is_some() {
            let tail = self.keep_logs();
            eprintln!(
                "realkube logs kept in {} (tail of realkube.log):\n{tail}",
                self.root.display()
            );
        }
    }
}

/// The `realkube` binary: `EDGECD_REALKUBE_BIN`, or what
/// `scripts/realkube-build` builds or finds in its cache (once per process).
pub fn binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| crate::gobuilt::binary("EDGECD_REALKUBE_BIN", BUILD_SCRIPT))
        .clone()
        .map_err(Error::Setup)
}

/// The `kubectl` built from the Kubernetes modules at realkube's release: `EDGECD_KUBECTL_BIN`, or the
/// `kubectl` that `scripts/realkube-build` puts beside the `realkube` binary (building both if needed).
pub fn kubectl_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("EDGECD_KUBECTL_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let realkube = binary()?;
    let kubectl = realkube.with_file_name("kubectl");
    if kubectl.is_file() {
        Ok(kubectl)
    } else {
        Err(Error::Setup(format!(
            "no kubectl beside {} (EDGECD_REALKUBE_BIN names a binary built without it; rerun scripts/realkube-build)",
            realkube.display()
        )))
    }
}

/// Whether Go is installed, so that `realkube` can be built.
pub fn go_available() -> bool {
    Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The last `lines` lines of a file (reading at most its last 256 KiB).
fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
