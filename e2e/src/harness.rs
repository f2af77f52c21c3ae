//! What end-to-end tests share: a Kubernetes back end (the API emulator or a real control plane), a spoke engine running on it with an optional hub link, and polling with a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::crd::Application;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::{RealCluster, realkube};
use kube::Api;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::emulator::{EmulatorConfig, KubeEmulator};

/// The namespace of the spoke's Application CRs in these tests.
pub const STATE_NS: &str = "edgecd-system";

/// Where a test's Kubernetes API comes from: the project's emulator (fast,
/// many clusters per process) or `testkit`'s real control plane (etcd,
/// kube-apiserver, kube-controller-manager and a node simulator).
#[allow(missing_debug_implementations)]
pub enum Backend {
    /// One emulated cluster whose workloads become ready after 50 ms.
    Emulator(KubeEmulator),
    /// A real control plane.
    Real(RealCluster),
    /// The cluster of `EDGECD_E2E_KUBECONFIG` (kind, k3s, any cluster).
    External(Box<kube::Config>),
}

/// What a test leaves behind on a cluster: on a cluster named by
/// `EDGECD_E2E_KUBECONFIG`, which outlives the test, it is deleted
/// before the test starts (run such tests one at a time).
#[derive(Debug, Clone, Copy)]
pub struct Leftovers<'a> {
    /// Namespaces the test creates.
    pub namespaces: &'a [&'a str],
    /// CustomResourceDefinitions the test creates.
    pub crds: &'a [&'a str],
}

impl Backend {
    /// A fresh emulated cluster.
    pub async fn emulator() -> anyhow::Result<Self> {
        let emulator = KubeEmulator::start(EmulatorConfig {
            stage_delay: Duration::from_millis(50),
            ..EmulatorConfig::default()
        })
        .await?;
        Ok(Self::Emulator(emulator))
    }

    /// A real API server: the cluster of `EDGECD_E2E_KUBECONFIG` (with
    /// `EDGECD_E2E_CONTEXT`, if set), cleared of `leftovers` and the
    /// spoke's state namespace; else a fresh real control plane; else
    /// `None` (after printing `SKIPPED`) where neither
    /// `EDGECD_REALKUBE_BIN` nor Go is there to build one.
    pub async fn real(leftovers: Leftovers<'_>) -> anyhow::Result<Option<Self>> {
        // The first of a `:`-separated list, as `TestClusters` reads it.
        let external = std::env::var_os("EDGECD_E2E_KUBECONFIG")
            .and_then(|paths| std::env::split_paths(&paths).next())
            .filter(|path| !path.as_os_str().is_empty());
        if let Some(path) = external {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path)
                .with_context(|| format!("reading EDGECD_E2E_KUBECONFIG {path:?}"))?;
            let options = kube::config::KubeConfigOptions {
                context: std::env::var("EDGECD_E2E_CONTEXT").ok(),
                ..Default::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
            clear(kube::Client::try_from(config.clone())?, leftovers).await?;
            return Ok(Some(Self::External(Box::new(config))));
        }
        if std::env::var_os("EDGECD_REALKUBE_BIN").is_none() && !realkube::go_available() {
            eprintln!(
                "SKIPPED: Go is not installed, so the real control plane (testkit/realkube) cannot be built"
            );
            return Ok(None);
        }
        let cluster = tokio::task::spawn_blocking(RealCluster::start)
            .await
            .context("starting realkube")??;
        eprintln!(
            "realkube ready in {:?} ({})",
            cluster.started_in(),
            cluster.dir().display()
        );
        Ok(Some(Self::Real(cluster)))
    }

    /// Whether this is a real API server.
    pub fn is_real(&self) -> bool {
        !matches!(self, Self::Emulator(_))
    }

    /// A client with the back end's admin credential.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(match self {
            Self::Emulator(emulator) => emulator.client().await?,
            Self::Real(real) => real.client().await?,
            Self::External(config) => kube::Client::try_from((**config).clone())?,
        })
    }
}

/// Deletes `leftovers` and the spoke's state namespace, and waits until
/// they are gone.
async fn clear(client: kube::Client, leftovers: Leftovers<'_>) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::DeleteParams;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let all_namespaces = || leftovers.namespaces.iter().chain([&STATE_NS]);
    for name in all_namespaces() {
        namespaces.delete(name, &DeleteParams::default()).await.ok();
    }
    for name in leftovers.crds {
        crds.delete(name, &DeleteParams::default()).await.ok();
    }
    let start = Instant::now();
    loop {
        let mut left = Vec::new();
        for name in all_namespaces() {
            if namespaces.get_opt(name).await?.is_some() {
                left.push(format!("namespace {name}"));
            }
        }
        for name in leftovers.crds {
            if crds.get_opt(name).await?.is_some() {
                left.push(format!("CRD {name}"));
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(180) {
            anyhow::bail!(
                "an earlier test's {} is still being deleted",
                left.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The engine settings of the spoke tests: git polled every 500 ms, progress every 200 ms, a wave given
/// 30 s to become healthy and polled every 50 ms.
pub fn test_engine_config() -> EngineConfig {
    EngineConfig {
        namespace: STATE_NS.into(),
        poll_interval: Duration::from_millis(500),
        progress_interval: Duration::from_millis(200),
        sync: SyncOptions {
            wave_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
            ..SyncOptions::default()
        },
        ..EngineConfig::default()
    }
}

/// The real spoke runtime's settings for the cluster of `kubeconfig`, as `edgecd-spoke run
/// --cluster-name NAME` has them (standalone, caches under `cache_dir`), with [`test_engine_config`].
pub fn test_runtime_config(
    kubeconfig: &std::path::Path,
    cluster: &str,
    cache_dir: std::path::PathBuf,
) -> anyhow::Result<edgecd_spoke::runtime::RuntimeConfig> {
    Ok(edgecd_spoke::runtime::RuntimeConfig {
        server_url: None,
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        cluster_name: edgecd_core::ClusterName::parse(cluster.to_owned())?,
        engine: EngineConfig {
            identity: format!("edgecd-spoke/{cluster}"),
            cluster_name: cluster.into(),
            ..test_engine_config()
        },
        cache_dir,
        admin_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        hub_address: None,
        bootstrap_token: None,
        hub_ca_hash: None,
        exec: true,
    })
}

/// The real spoke runtime (`edgecd-spoke run`) on a back end's cluster; stopped when dropped.
#[allow(missing_debug_implementations)]
pub struct RuntimeSpoke {
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl RuntimeSpoke {
    /// Starts the runtime on `backend`'s cluster through a kubeconfig, as the binary reads it
    /// (`edgecd-spoke run --cluster-name NAME [--helm-binary HELM]`), standalone, with
    /// [`test_runtime_config`]'s settings and its caches in a fresh directory.
    pub async fn start(
        backend: &Backend,
        name: &str,
        helm: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (kubeconfig, context) = match backend {
            Backend::Emulator(emulator) => {
                let mut written = emulator.write_kubeconfigs(dir.path())?;
                anyhow::ensure!(!written.is_empty(), "the emulator wrote no kubeconfig");
                (written.remove(0), None)
            }
            Backend::Real(real) => (real.kubeconfig_path().to_path_buf(), None),
            Backend::External(_) => {
                let paths = std::env::var_os("EDGECD_E2E_KUBECONFIG")
                    .context("EDGECD_E2E_KUBECONFIG is not set")?;
                let first = std::env::split_paths(&paths)
                    .next()
                    .context("EDGECD_E2E_KUBECONFIG is empty")?;
                (first, std::env::var("EDGECD_E2E_CONTEXT").ok())
            }
        };
        Self::start_in(dir, &kubeconfig, context, name, helm).await
    }

    /// Starts the runtime on the cluster of `kubeconfig` (and `context`).
    pub async fn start_with_kubeconfig(
        kubeconfig: &std::path::Path,
        context: Option<String>,
        name: &str,
        helm: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        Self::start_in(tempfile::tempdir()?, kubeconfig, context, name, helm).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        kubeconfig: &std::path::Path,
        context: Option<String>,
        name: &str,
        helm: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let mut config = test_runtime_config(kubeconfig, name, dir.path().join("cache"))?;
        config.context = context;
        if let Some(helm) = helm {
            config.engine.helm_binary = helm.to_path_buf();
            config.engine.helm_dir = Some(dir.path().join("cache/helm"));
        }
        let runtime = edgecd_spoke::runtime::Runtime::start(config).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(runtime.run_until(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            _stop: stop,
            _dir: dir,
        })
    }
}

/// A spoke engine (reconcile loop, git cache) on one cluster, with a hub
/// link that can be started and stopped. Everything stops when dropped.
#[allow(missing_debug_implementations)]
pub struct SpokeEngine {
    /// The cluster it reconciles.
    pub cluster: LiveCluster,
    /// The engine.
    pub engine: Arc<Engine>,
    _engine_stop: oneshot::Sender<()>,
    link: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    _cache: tempfile::TempDir,
}

impl SpokeEngine {
    /// Installs the spoke's CRDs and state namespace as `edgecd-spoke run`
    /// does, then starts an engine that polls git every 500 ms and waits
    /// at most `wave_timeout` for a wave to become healthy.
    pub async fn start(
        client: kube::Client,
        cluster_name: &str,
        wave_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let cluster = LiveCluster::new(client);
        edgecd_spoke::runtime::install_crd(&cluster).await?;
        edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS).await?;
        let cache = tempfile::tempdir()?;
        let git_config = GitConfig {
            ls_remote_ttl: Duration::from_millis(100),
            ..GitConfig::new(cache.path())
        };
        let git = GitCache::new(git_config, CredentialStore::default())?;
        let config = EngineConfig {
            namespace: STATE_NS.into(),
            cluster_name: cluster_name.into(),
            poll_interval: Duration::from_millis(500),
            progress_interval: Duration::from_millis(200),
            sync: SyncOptions {
                wave_timeout,
                poll_interval: Duration::from_millis(100),
                ..SyncOptions::default()
            },
            ..EngineConfig::default()
        };
        let (engine, triggers) = Engine::new(cluster.clone(), git, config);
        let (engine_stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            cluster,
            engine,
            _engine_stop: engine_stop,
            link: None,
            _cache: cache,
        })
    }

    /// Opens the hub link with `config` (a running link is stopped first).
    pub async fn connect(&mut self, config: HubLinkConfig) {
        self.disconnect().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(link::run(config, Arc::clone(&self.engine), async move {
            let _ = stopped.await;
        }));
        self.link = Some((stop, task));
    }

    /// Stops the hub link, if any, and waits for it to end.
    pub async fn disconnect(&mut self) {
        if let Some((stop, task)) = self.link.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// The Application CRs of the state namespace.
    pub fn apps(&self) -> Api<Application> {
        Api::namespaced(self.cluster.client().clone(), STATE_NS)
    }
}

/// Polls `check` every 200 ms until it gives a value; panics naming
/// `what` (and the last value `check` saw, if it keeps one) after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Application CR `name` of `apps` once it is Synced and Healthy; panics after `timeout`.
pub async fn synced_healthy(apps: &Api<Application>, name: &str, timeout: Duration) -> Application {
    wait_for(&format!("{name} Synced and Healthy"), timeout, async || {
        let app = apps.get(name).await.ok()?;
        let status = app.status.as_ref()?;
        (status.sync.status == edgecd_core::SyncStatus::Synced
            && status.health.status == edgecd_core::Health::Healthy)
            .then_some(app)
    })
    .await
}

/// The `ComparisonError` condition of the Application CR `name` of `apps`, once its sync status is Unknown;
/// panics after `timeout`.
pub async fn comparison_error(
    apps: &Api<Application>,
    name: &str,
    timeout: Duration,
) -> edgecd_core::app::Condition {
    wait_for(
        &format!("a ComparisonError on {name}"),
        timeout,
        async || {
            let status = apps.get(name).await.ok()?.status?;
            if status.sync.status != edgecd_core::SyncStatus::Unknown {
                return None;
            }
            status
                .conditions
                .into_iter()
                .find(|c| c.kind == "ComparisonError")
        },
    )
    .await
}

/// Runs each named scenario (an `async fn(Backend)`) on the emulator and on
/// a real control plane, as `<scenario>::emulator` and
/// `<scenario>::real_cluster`. The calling test file defines `LEFTOVERS` (what a real cluster may keep).
#[macro_export]
macro_rules! on_both_back_ends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn emulator() {
                let backend = edgecd_e2e::harness::Backend::emulator().await.unwrap();
                super::$scenario(backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real_cluster() {
                let leftovers = super::LEFTOVERS;
                if let Some(backend) = edgecd_e2e::harness::Backend::real(leftovers).await.unwrap() {
                    super::$scenario(backend).await;
                }
            }
        }
    )*};
}
