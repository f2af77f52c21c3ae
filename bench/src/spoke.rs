//! `edgecd-bench spoke`: CPU time per reconcile pass over N unchanged apps and peak RSS of the real `edgecd-spoke` binary, run as a child process against the Kubernetes API emulator and a git daemon (each in its own process).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_spoke::crd::Application;
use kube::api::{Api, ListParams, PostParams};

/// Measures the spoke's steady state: all apps Synced, nothing changes, every app re-checked once per poll
/// interval by the spoke's own poll timer.
#[derive(Debug, clap::Args)]
pub struct SpokeBench {
    /// Number of apps (small kustomize apps: a ConfigMap and a Deployment each).
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// The spoke's `--poll-interval` in seconds: one reconcile pass over every app per interval (±10 % jitter).
    #[arg(long, default_value_t = 10)]
    poll_seconds: u64,
    /// Measured windows of `--poll-seconds` each.
    #[arg(long, default_value_t = 6)]
    windows: usize,
    /// The spoke's `--concurrency`.
    #[arg(long, default_value_t = 8)]
    concurrency: u16,
    /// The spoke's `--full-compare-interval` in the main run (a second run always compares in full).
    #[arg(long, default_value = "30m")]
    full_compare_interval: String,
    /// Skip the second run, which compares every app in full on every reconcile.
    #[arg(long)]
    no_full_compare_run: bool,
    /// Goal: CPU milliseconds per pass.
    #[arg(long, default_value_t = 50.0)]
    cpu_goal_ms: f64,
    /// Goal: peak RSS in MiB.
    #[arg(long, default_value_t = 40.0)]
    rss_goal_mib: f64,
}

const STATE_NS: &str = "edgecd-system";

/// A child process killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system, all threads) of process `pid` from `/proc/<pid>/stat`.
fn cpu_time(pid: u32, ticks_per_second: f64) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("parsing {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11)
        .zip(fields.get(12))
        .and_then(|(u, s)| Some(u.parse::<u64>().ok()? + s.parse::<u64>().ok()?))
        .with_context(|| format!("parsing utime/stime in {path}"))?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
}

/// A `/proc/<pid>/status` figure in KiB, e.g. `VmHWM`.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("{field} not in {path}"))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating edgecd-bench")?;
    let path = exe.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it with `cargo build --release -p edgecd-spoke -p edgecd-kube-emulator -p edgecd-bench --bins`",
        path.display()
    );
    Ok(path)
}

/// Starts `kube-emulator` with one cluster; returns it and its kubeconfig.
fn start_emulator(dir: &Path) -> anyhow::Result<(ChildGuard, PathBuf)> {
    let mut child = Command::new(sibling_binary("kube-emulator")?)
        .args(["--clusters", "1", "--stage-delay-ms", "50", "--out"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting kube-emulator")?;
    let stdout = child.stdout.take().context("kube-emulator stdout")?;
    let guard = ChildGuard(child);
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("waiting for kube-emulator")?;
    anyhow::ensure!(line.trim() == "ready", "kube-emulator said {line:?}");
    // Keep draining its stdout so it never blocks or dies on a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((guard, dir.join("cluster-1.kubeconfig")))
}

/// Starts `edgecd-spoke run` against the emulated cluster.
fn start_spoke(
    bench: &SpokeBench,
    dir: &Path,
    kubeconfig: &Path,
    admin: SocketAddr,
    full_compare_interval: &str,
) -> anyhow::Result<ChildGuard> {
    let child = Command::new(sibling_binary("edgecd-spoke")?)
        .arg("run")
        .args(["--cluster-name", "bench"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--state-namespace", STATE_NS])
        .args(["--poll-interval", &format!("{}s", bench.poll_seconds)])
        .args(["--concurrency", &bench.concurrency.to_string()])
        .args(["--full-compare-interval", full_compare_interval])
        .arg("--cache-dir")
        .arg(dir.join("spoke-cache"))
        .args(["--admin-addr", &admin.to_string()])
        .args(["--log", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgecd-spoke")?;
    Ok(ChildGuard(child))
}

/// A plain HTTP/1.0 GET on the spoke's admin port: (status code, body).
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .with_context(|| format!("reading {path}"))?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no status line from {path}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Counters read from the spoke's `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
struct Scrape {
    /// `edgecd_spoke_reconciles_total` over both results.
    reconciles: u64,
    /// The errors alone.
    errors: u64,
    /// `edgecd_spoke_comparisons_total{kind="full"}`.
    full_compares: u64,
    /// `edgecd_spoke_comparisons_total{kind="reused"}`.
    reused_compares: u64,
}

fn scrape(admin: SocketAddr) -> anyhow::Result<Scrape> {
    let (code, body) = http_get(admin, "/metrics")?;
    anyhow::ensure!(code == 200, "/metrics answered {code}");
    let mut scrape = Scrape::default();
    let value = |line: &str, rest: &str| -> anyhow::Result<u64> {
        rest.rsplit_once(' ')
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .with_context(|| format!("parsing {line:?}"))
    };
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("edgecd_spoke_reconciles_total{") {
            let n = value(line, rest)?;
            scrape.reconciles += n;
            if rest.contains("result=\"error\"") {
                scrape.errors += n;
            }
        } else if let Some(rest) = line.strip_prefix("edgecd_spoke_comparisons_total{") {
            let n = value(line, rest)?;
            if rest.contains("kind=\"full\"") {
                scrape.full_compares += n;
            } else if rest.contains("kind=\"reused\"") {
                scrape.reused_compares += n;
            }
        }
    }
    Ok(scrape)
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

fn write_apps(repo: &edgecd_testkit::GitRepo, apps: usize) -> anyhow::Result<()> {
    for i in 0..apps {
        let dir = format!("apps/app-{i:03}");
        repo.write(
            &format!("{dir}/kustomization.yaml"),
            &format!(
                "namePrefix: app-{i:03}-\ncommonLabels:\n  bench: app-{i:03}\nresources:\n- config.yaml\n- deployment.yaml\n"
            ),
        )?;
        repo.write(
            &format!("{dir}/config.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  index: \"{i}\"\n  greeting: hello\n"),
        )?;
        repo.write(
            &format!("{dir}/deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        ports:\n        - containerPort: 80\n",
        )?;
    }
    Ok(())
}

fn app(i: usize, repo_url: &str) -> Application {
    let spec = ApplicationSpec {
        project: "bench".into(),
        source: ApplicationSource {
            repo_url: repo_url.to_owned(),
            target_revision: "HEAD".into(),
            path: format!("apps/app-{i:03}"),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: "bench".into(),
            ..Destination::default()
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: None,
        }),
        ..ApplicationSpec::default()
    };
    Application::new(&format!("app-{i:03}"), STATE_NS, spec)
}

/// One measured window.
#[derive(Debug, serde::Serialize)]
struct Window {
    cpu_ms: f64,
    reconciles: u64,
    cpu_ms_per_pass: f64,
}

/// The steady state of one spoke process.
#[derive(Debug, serde::Serialize)]
struct Measurement {
    full_compare_interval: String,
    windows: Vec<Window>,
    measured_seconds: f64,
    cpu_ms_total: f64,
    reconciles: u64,
    reconcile_errors: u64,
    /// Full comparisons (server-side dry runs) and reused ones over the windows.
    full_compares: u64,
    reused_compares: u64,
    passes: f64,
    reconciles_per_app_per_poll: f64,
    cpu_ms_per_reconcile: f64,
    cpu_ms_per_pass_mean: f64,
    peak_rss_mib: f64,
    rss_mib: f64,
}

/// Results of one run.
#[derive(Debug, serde::Serialize)]
struct Report {
    bench: &'static str,
    apps: usize,
    poll_seconds: u64,
    concurrency: u16,
    setup_seconds: f64,
    cpu_ms_per_pass_mean: f64,
    peak_rss_mib: f64,
    cpu_goal_ms: f64,
    rss_goal_mib: f64,
    cpu_goal_met: bool,
    rss_goal_met: bool,
    /// The spoke as configured (`--full-compare-interval` as given).
    main: Measurement,
    /// A fresh spoke process comparing every app in full on every reconcile (`--full-compare-interval 0s`).
    full_compare: Option<Measurement>,
}

impl SpokeBench {
    pub fn run(self) -> anyhow::Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting tokio")?;
        runtime.block_on(self.run_async())
    }

    async fn wait_ready(&self, admin: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if matches!(http_get(admin, "/ready"), Ok((200, _))) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "edgecd-spoke not ready after 120s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn run_async(self) -> anyhow::Result<()> {
        anyhow::ensure!(self.apps > 0, "--apps must be at least 1");
        anyhow::ensure!(self.poll_seconds > 0, "--poll-seconds must be at least 1");
        let started = Instant::now();
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let (_emulator, kubeconfig) = start_emulator(dir.path())?;
        let server = edgecd_testkit::GitServer::start().context("starting git daemon")?;
        let repo = server.create_repo("bench-apps")?;
        write_apps(&repo, self.apps)?;
        repo.commit("bench apps")?;

        let admin = free_addr()?;
        let spoke = start_spoke(
            &self,
            dir.path(),
            &kubeconfig,
            admin,
            &self.full_compare_interval,
        )?;
        self.wait_ready(admin).await?;

        // The bench's own client (its CPU is not the spoke's) creates the apps.
        let config = edgecd_spoke::runtime::kube_config(Some(&kubeconfig), None).await?;
        let client = kube::Client::try_from(config)?;
        let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
        for i in 0..self.apps {
            apps.create(&PostParams::default(), &app(i, repo.url()))
                .await
                .with_context(|| format!("creating app {i}"))?;
        }
        self.wait_synced(&apps).await?;
        let setup_seconds = started.elapsed().as_secs_f64();

        println!(
            "main run: --poll-interval {}s --full-compare-interval {}",
            self.poll_seconds, self.full_compare_interval
        );
        let main = self
            .measure(&spoke, admin, &self.full_compare_interval)
            .await?;
        drop(spoke);

        let full_compare = if self.no_full_compare_run {
            None
        } else {
            println!();
            println!(
                "second run, a fresh process: --poll-interval {}s --full-compare-interval 0s",
                self.poll_seconds
            );
            let admin = free_addr()?;
            let spoke = start_spoke(&self, dir.path(), &kubeconfig, admin, "0s")?;
            self.wait_ready(admin).await?;
            self.wait_synced(&apps).await?;
            let measured = self.measure(&spoke, admin, "0s").await?;
            drop(spoke);
            Some(measured)
        };
        drop(client);

        let report = Report {
            bench: "spoke",
            apps: self.apps,
            poll_seconds: self.poll_seconds,
            concurrency: self.concurrency,
            setup_seconds,
            cpu_ms_per_pass_mean: main.cpu_ms_per_pass_mean,
            peak_rss_mib: main.peak_rss_mib,
            cpu_goal_ms: self.cpu_goal_ms,
            rss_goal_mib: self.rss_goal_mib,
            cpu_goal_met: main.reconciles > 0 && main.cpu_ms_per_pass_mean <= self.cpu_goal_ms,
            rss_goal_met: main.peak_rss_mib <= self.rss_goal_mib,
            main,
            full_compare,
        };
        println!();
        println!(
            "{:<40} {:>10} {:>12} {:>8}",
            "figure", "main run", "full compare", "goal"
        );
        let full = report.full_compare.as_ref();
        let row = |name: &str, main: f64, full: Option<f64>, goal: &str, digits: usize| {
            let full = full.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
            println!("{name:<40} {main:>10.digits$} {full:>12} {goal:>8}");
        };
        row(
            "CPU ms per pass (mean)",
            report.main.cpu_ms_per_pass_mean,
            full.map(|m| m.cpu_ms_per_pass_mean),
            &format!("{}", report.cpu_goal_ms),
            1,
        );
        row(
            "peak RSS MiB (VmHWM)",
            report.main.peak_rss_mib,
            full.map(|m| m.peak_rss_mib),
            &format!("{}", report.rss_goal_mib),
            1,
        );
        row(
            "CPU ms per reconcile",
            report.main.cpu_ms_per_reconcile,
            full.map(|m| m.cpu_ms_per_reconcile),
            "-",
            3,
        );
        row(
            "reconciles per app per poll interval",
            report.main.reconciles_per_app_per_poll,
            full.map(|m| m.reconciles_per_app_per_poll),
            "1",
            2,
        );
        row(
            "full comparisons (server-side dry runs)",
            report.main.full_compares as f64,
            full.map(|m| m.full_compares as f64),
            "-",
            0,
        );
        row(
            "reused comparisons",
            report.main.reused_compares as f64,
            full.map(|m| m.reused_compares as f64),
            "-",
            0,
        );
        row(
            "reconcile errors",
            report.main.reconcile_errors as f64,
            full.map(|m| m.reconcile_errors as f64),
            "0",
            0,
        );
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }

    /// Waits until every app is Synced and Healthy.
    async fn wait_synced(&self, apps: &Api<Application>) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let list =
                tokio::time::timeout(Duration::from_secs(10), apps.list(&ListParams::default()))
                    .await
                    .context("listing the apps timed out")??;
            let done = list
                .items
                .iter()
                .filter(|a| {
                    a.status.as_ref().is_some_and(|s| {
                        s.sync.status == SyncStatus::Synced && s.health.status == Health::Healthy
                    })
                })
                .count();
            if done == self.apps {
                return Ok(());
            }
            if let Some(pending) = list.items.iter().find(|a| {
                a.status.as_ref().is_none_or(|s| {
                    s.sync.status != SyncStatus::Synced || s.health.status != Health::Healthy
                })
            }) {
                let status = pending.status.clone().unwrap_or_default();
                eprintln!(
                    "{done}/{} apps Synced and Healthy; {}: {:?} {:?} {}",
                    self.apps,
                    pending.metadata.name.as_deref().unwrap_or("?"),
                    status.sync.status,
                    status.health.status,
                    status
                        .conditions
                        .iter()
                        .map(|c| c.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {done}/{} apps Synced and Healthy after 600s",
                self.apps
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Measures the spoke process `spoke` over `--windows` poll intervals, after letting one poll interval
    /// pass (the reconciles after start-up or after the syncs).
    async fn measure(
        &self,
        spoke: &ChildGuard,
        admin: SocketAddr,
        full_compare_interval: &str,
    ) -> anyhow::Result<Measurement> {
        let pid = spoke.0.id();
        let poll = Duration::from_secs(self.poll_seconds);
        tokio::time::sleep(poll + Duration::from_secs(2)).await;

        let ticks = clock_ticks();
        println!(
            "{:>7} {:>10} {:>12} {:>14}",
            "window", "cpu ms", "reconciles", "cpu ms / pass"
        );
        let first = scrape(admin)?;
        let cpu0 = cpu_time(pid, ticks)?;
        let measured = Instant::now();
        let (mut last_reconciles, mut last_cpu) = (first.reconciles, cpu0);
        let mut windows = Vec::new();
        for window in 0..self.windows {
            tokio::time::sleep(poll).await;
            let cpu = cpu_time(pid, ticks)?;
            let count = scrape(admin)?.reconciles;
            let cpu_ms = (cpu - last_cpu).as_secs_f64() * 1e3;
            let ran = count - last_reconciles;
            let per_pass = if ran == 0 {
                0.0
            } else {
                cpu_ms * self.apps as f64 / ran as f64
            };
            println!("{window:>7} {cpu_ms:>10.1} {ran:>12} {per_pass:>14.1}");
            windows.push(Window {
                cpu_ms,
                reconciles: ran,
                cpu_ms_per_pass: per_pass,
            });
            (last_reconciles, last_cpu) = (count, cpu);
        }
        let measured_seconds = measured.elapsed().as_secs_f64();
        let last = scrape(admin)?;
        let cpu_ms_total = (cpu_time(pid, ticks)? - cpu0).as_secs_f64() * 1e3;
        let peak_rss_mib = status_kib(pid, "VmHWM")? as f64 / 1024.0;
        let rss_mib = status_kib(pid, "VmRSS")? as f64 / 1024.0;
        let ran = last.reconciles - first.reconciles;
        let passes = ran as f64 / self.apps as f64;
        Ok(Measurement {
            full_compare_interval: full_compare_interval.to_owned(),
            windows,
            measured_seconds,
            cpu_ms_total,
            reconciles: ran,
            reconcile_errors: last.errors - first.errors,
            full_compares: last.full_compares - first.full_compares,
            reused_compares: last.reused_compares - first.reused_compares,
            passes,
            reconciles_per_app_per_poll: passes * self.poll_seconds as f64 / measured_seconds,
            cpu_ms_per_reconcile: if ran == 0 {
                0.0
            } else {
                cpu_ms_total / ran as f64
            },
            cpu_ms_per_pass_mean: if ran == 0 { 0.0 } else { cpu_ms_total / passes },
            peak_rss_mib,
            rss_mib,
        })
    }
}
