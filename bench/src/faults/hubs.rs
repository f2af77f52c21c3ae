//! Hub replicas as `edgecd-hub serve` child processes on one PostgreSQL: started, killed with SIGKILL, and started again on the same ports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use tokio::process::{Child, Command};

/// What every replica of a run is started with.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The `edgecd-hub` binary.
    pub binary: PathBuf,
    /// The PostgreSQL URL all replicas share.
    pub database: String,
    pub heartbeat: Duration,
    pub stale_after: Duration,
    /// Where each replica's log goes (`<id>.log`).
    pub log_dir: PathBuf,
}

/// One replica process.
#[derive(Debug)]
pub struct HubProcess {
    pub id: String,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    settings: HubSettings,
    child: Option<Child>,
}

impl HubProcess {
    /// Starts replica `id` on fresh loopback ports and waits until its API answers.
    pub async fn start(settings: &HubSettings, id: &str) -> anyhow::Result<Self> {
        let mut hub = Self {
            id: id.to_owned(),
            grpc: SocketAddr::from(([127, 0, 0, 1], edgecd_testkit::net::free_port()?)),
            http: SocketAddr::from(([127, 0, 0, 1], edgecd_testkit::net::free_port()?)),
            settings: settings.clone(),
            child: None,
        };
        hub.spawn().await?;
        Ok(hub)
    }

    /// The replica's gRPC endpoint (`http://127.0.0.1:port`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `kill -9`: the process gets no chance to drain, close streams or release anything.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill().context("sending SIGKILL")?;
            child.wait().await.context("reaping the killed hub")?;
        }
        Ok(())
    }

    /// Starts the process again on the same ports (a restarted pod behind the same Service).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await?;
        self.spawn().await
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let log_path = self.settings.log_dir.join(format!("{}.log", self.id));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let data_dir = self.settings.log_dir.join(format!("{}-data", self.id));
        let mut command = Command::new(&self.settings.binary);
        command
            .arg("serve")
            .arg("--insecure-disable-auth")
            .args(["--grpc-listen", &self.grpc.to_string()])
            .args(["--http-listen", &self.http.to_string()])
            .args(["--database", &self.settings.database])
            .args(["--replica-id", &self.id])
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--heartbeat-interval",
                &go_duration(self.settings.heartbeat),
            ])
            .args(["--stale-after", &go_duration(self.settings.stale_after)])
            .args(["--log", "warn"])
            .env_remove("EDGECD_HUB_DATABASE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file")?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", self.settings.binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// Waits until the API answers `GetServerInfo`.
    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("polling the hub process")?
            {
                self.child = None;
                bail!(
                    "hub replica {} exited during start-up ({status}); see {}",
                    self.id,
                    self.settings
                        .log_dir
                        .join(format!("{}.log", self.id))
                        .display()
                );
            }
            if let Ok(channel) = super::super::simspoke::channel(&self.endpoint()) {
                let mut api = HubServiceClient::new(channel);
                let answer = tokio::time::timeout(
                    Duration::from_secs(2),
                    api.get_server_info(v1::GetServerInfoRequest::default()),
                )
                .await;
                if matches!(answer, Ok(Ok(_))) {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                bail!("hub replica {} not ready after {limit:?}", self.id);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `30s`, `500ms`: a duration as the hub's flags take it.
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The `edgecd-hub` binary beside the running executable (`target/<profile>/`), as cargo builds it.
pub fn sibling_hub_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating edgecd-bench")?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("edgecd-hub");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "no edgecd-hub beside {} (build it with `cargo build -p edgecd-hub` in the same profile, or pass --hub-binary)",
        exe.display()
    )
}
