//! `edgecd-bench spoke`: CPU time per reconcile pass over N unchanged apps and the spoke's peak RSS, with the engine in this process and the Kubernetes API emulator and git daemon in child processes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, OperationPhase, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig, ReconcileObserver};
use kube::api::{Api, ListParams, PostParams};

/// Measures the spoke's steady state: all apps Synced, nothing changes, every app re-checked once per pass.
#[derive(Debug, clap::Args)]
pub struct SpokeBench {
    /// Number of apps (small kustomize apps: a ConfigMap and a Deployment each).
    #[arg(long, default_value_t = 100)]
    apps: usize,
    /// Measured passes (the CPU figure is their mean).
    #[arg(long, default_value_t = 10)]
    passes: usize,
    /// Engine concurrency.
    #[arg(long, default_value_t = 8)]
    concurrency: u16,
    /// Tokio worker threads of the engine.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Goal: CPU milliseconds per pass.
    #[arg(long, default_value_t = 50.0)]
    cpu_goal_ms: f64,
    /// Goal: peak RSS in MiB.
    #[arg(long, default_value_t = 40.0)]
    rss_goal_mib: f64,
}

const STATE_NS: &str = "edgecd-system";

/// Counts finished reconciles.
#[derive(Debug, Default)]
struct Finished(AtomicU64);

impl ReconcileObserver for Finished {
    fn reconciled(&self, _ok: bool, _duration: Duration) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn synced(&self, _phase: OperationPhase) {}
}

/// A child process killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Process CPU time (user + system) from `/proc/self/stat`.
fn cpu_time(ticks_per_second: f64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("parsing /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11)
        .zip(fields.get(12))
        .and_then(|(u, s)| Some(u.parse::<u64>().ok()? + s.parse::<u64>().ok()?))
        .context("parsing utime/stime")?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
}

/// A `/proc/self/status` figure in KiB, e.g. `VmHWM`.
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .with_context(|| format!("{field} not in /proc/self/status"))
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
        "{} not found: build it with `cargo build --release -p edgecd-e2e --bins`",
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

/// Results of one run.
#[derive(Debug, serde::Serialize)]
struct Report {
    bench: &'static str,
    apps: usize,
    passes: usize,
    concurrency: u16,
    workers: usize,
    setup_seconds: f64,
    idle_reconciles_per_s: f64,
    idle_cpu_ms_per_s: f64,
    cpu_ms_per_pass: Vec<f64>,
    cpu_ms_per_pass_mean: f64,
    cpu_ms_per_app: f64,
    wall_ms_per_pass_mean: f64,
    peak_rss_mib: f64,
    rss_mib: f64,
    cpu_goal_ms: f64,
    rss_goal_mib: f64,
    cpu_goal_met: bool,
    rss_goal_met: bool,
}

impl SpokeBench {
    pub fn run(self) -> anyhow::Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers.max(1))
            .enable_all()
            .build()
            .context("starting tokio")?;
        // On a worker thread, like the spoke's own tasks.
        runtime.block_on(async move { tokio::spawn(self.run_async()).await })?
    }

    async fn run_async(self) -> anyhow::Result<()> {
        let started = Instant::now();
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let (_emulator, kubeconfig) = start_emulator(dir.path())?;
        let server = edgecd_testkit::GitServer::start().context("starting git daemon")?;
        let repo = server.create_repo("bench-apps")?;
        write_apps(&repo, self.apps)?;
        repo.commit("bench apps")?;

        let config = edgecd_spoke::runtime::kube_config(Some(&kubeconfig), None).await?;
        let client = kube::Client::try_from(config)?;
        let cluster = LiveCluster::new(client.clone());
        edgecd_spoke::runtime::install_crd(&cluster).await?;
        edgecd_spoke::runtime::ensure_namespace(&client, STATE_NS).await?;
        let git = GitCache::new(
            GitConfig::new(dir.path().join("cache")),
            CredentialStore::default(),
        )?;
        let engine_config = EngineConfig {
            namespace: STATE_NS.into(),
            // Only the passes this benchmark triggers.
            poll_interval: Duration::from_secs(3600),
            concurrency: self.concurrency,
            ..EngineConfig::default()
        };
        let (engine, triggers) = Engine::new(cluster, git, engine_config);
        let finished = Arc::new(Finished::default());
        engine.set_observer(finished.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let controller = tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async {
            let _ = stopped.await;
        }));

        let apps: Api<Application> = Api::namespaced(client.clone(), STATE_NS);
        for i in 0..self.apps {
            apps.create(&PostParams::default(), &app(i, repo.url()))
                .await
                .with_context(|| format!("creating app {i}"))?;
        }
        // All Synced and Healthy, then quiet.
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
                break;
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
        let setup_seconds = started.elapsed().as_secs_f64();
        let ticks = clock_ticks();

        // Idle: nothing changes and nothing is triggered; an idle spoke should not reconcile at all.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_window = Duration::from_secs(10);
        let idle_before = finished.0.load(Ordering::Relaxed);
        let idle_cpu0 = cpu_time(ticks)?;
        tokio::time::sleep(idle_window).await;
        let idle_cpu_ms_per_s =
            (cpu_time(ticks)? - idle_cpu0).as_secs_f64() * 1e3 / idle_window.as_secs_f64();
        let idle_reconciles_per_s =
            (finished.0.load(Ordering::Relaxed) - idle_before) as f64 / idle_window.as_secs_f64();
        eprintln!("idle: {idle_reconciles_per_s:.1} reconciles/s, {idle_cpu_ms_per_s:.1} CPU ms/s");
        let names: Vec<String> = (0..self.apps).map(|i| format!("app-{i:03}")).collect();
        let mut cpu_ms = Vec::new();
        let mut wall_ms = Vec::new();
        println!(
            "{:>5} {:>10} {:>10} {:>12}",
            "pass", "cpu ms", "wall ms", "reconciles"
        );
        for pass in 0..self.passes {
            let before = finished.0.load(Ordering::Relaxed);
            let cpu0 = cpu_time(ticks)?;
            let wall0 = Instant::now();
            for name in &names {
                engine.trigger(name);
            }
            let target = before + self.apps as u64;
            while finished.0.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(20)).await;
                anyhow::ensure!(
                    wall0.elapsed() < Duration::from_secs(300),
                    "pass {pass} did not finish in 300s"
                );
            }
            let wall = wall0.elapsed();
            let cpu = cpu_time(ticks)? - cpu0;
            let ran = finished.0.load(Ordering::Relaxed) - before;
            println!(
                "{:>5} {:>10.1} {:>10.1} {:>12}",
                pass,
                cpu.as_secs_f64() * 1e3,
                wall.as_secs_f64() * 1e3,
                ran
            );
            cpu_ms.push(cpu.as_secs_f64() * 1e3);
            wall_ms.push(wall.as_secs_f64() * 1e3);
            // Let any trailing events settle between passes.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let peak_rss_mib = status_kib("VmHWM")? as f64 / 1024.0;
        let rss_mib = status_kib("VmRSS")? as f64 / 1024.0;
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), controller).await;

        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let cpu_mean = mean(&cpu_ms);
        let report = Report {
            bench: "spoke",
            apps: self.apps,
            passes: self.passes,
            concurrency: self.concurrency,
            workers: self.workers,
            setup_seconds,
            idle_reconciles_per_s,
            idle_cpu_ms_per_s,
            cpu_ms_per_pass_mean: cpu_mean,
            cpu_ms_per_app: cpu_mean / self.apps.max(1) as f64,
            cpu_ms_per_pass: cpu_ms,
            wall_ms_per_pass_mean: mean(&wall_ms),
            peak_rss_mib,
            rss_mib,
            cpu_goal_ms: self.cpu_goal_ms,
            rss_goal_mib: self.rss_goal_mib,
            cpu_goal_met: cpu_mean <= self.cpu_goal_ms,
            rss_goal_met: peak_rss_mib <= self.rss_goal_mib,
        };
        println!();
        println!("{:<28} {:>10} {:>10}", "figure", "measured", "goal");
        println!(
            "{:<28} {:>10.1} {:>10.1}",
            "CPU ms per pass (mean)", report.cpu_ms_per_pass_mean, report.cpu_goal_ms
        );
        println!(
            "{:<28} {:>10.1} {:>10.1}",
            "peak RSS MiB (VmHWM)", report.peak_rss_mib, report.rss_goal_mib
        );
        println!(
            "{:<28} {:>10.1} {:>10}",
            "idle reconciles per s", report.idle_reconciles_per_s, "0"
        );
        println!(
            "{:<28} {:>10.1} {:>10}",
            "idle CPU ms per s", report.idle_cpu_ms_per_s, "-"
        );
        println!(
            "{:<28} {:>10.2} {:>10}",
            "CPU ms per app", report.cpu_ms_per_app, "-"
        );
        println!(
            "{:<28} {:>10.1} {:>10}",
            "wall ms per pass (mean)", report.wall_ms_per_pass_mean, "-"
        );
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }
}
