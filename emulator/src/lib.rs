//! A Kubernetes API emulator for tests: a test fixture, not a Kubernetes implementation.
//!
//! It serves, over HTTPS with bearer tokens, the part of the Kubernetes API that edgecd's spoke uses through
//! kube-rs, closely enough that the spoke cannot tell it from a real API server (see `emulator/README.md` for the
//! coverage and the known differences). One process can host many independent clusters.
//!
//! ```text
//!  kube::Client ──HTTPS──▶ server (routing, auth) ──▶ store (objects, RVs, history) ◀── stages (status, GC)
//!                               │                        │  ▲
//!                               ├─ discovery             │  └─ ssa (apply/update, managedFields)
//!                               ├─ watch ◀── broadcast ──┘
//!                               └─ exec (pods/exec over WebSocket) ──▶ exec_runtime (simulated commands, shell)
//! ```
//!
//! Start one with [`KubeEmulator::start`], or use [`TestClusters::from_env_or_emulator`] to run the same
//! tests against real clusters when `EDGECD_E2E_KUBECONFIG` / `EDGECD_E2E_CLUSTERS` are set.

pub mod defaults;
pub mod discovery;
pub mod exec;
pub mod exec_runtime;
pub mod openapi;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod ssa;
pub mod stages;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use self::server::InjectedError;
use self::server::{ClusterEntry, Host};
use self::stages::StageConfig;
use self::store::{Store, StoreConfig};

/// Errors starting or using the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// TLS configuration failed.
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding or file IO failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A kubeconfig could not be built or loaded.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// A kube client could not be built.
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
    /// The configuration is invalid.
    #[error("invalid emulator configuration: {0}")]
    Config(String),
}

/// Emulator settings; the defaults suit tests.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Number of clusters, named `cluster-1` … `cluster-N`.
    pub clusters: usize,
    /// Listen address (default `127.0.0.1:0`, an ephemeral port).
    pub listen: SocketAddr,
    /// Delay before simulated controllers write status.
    pub stage_delay: Duration,
    /// Events retained per cluster for watch resumption; older resourceVersions get `410 Expired`.
    pub watch_history: usize,
    /// Interval of periodic BOOKMARK events on watches that asked for them.
    pub bookmark_interval: Duration,
    /// The longest a Deployment that makes no progress (crash-looping pods) stays `Progressing` before
    /// `Progressing=False, ProgressDeadlineExceeded`: its `spec.progressDeadlineSeconds` (default 600 s, as the
    /// real deployment controller waits), capped at this so that tests of failing images stay fast.
    /// `None` honours the deadline in full.
    pub max_progress_deadline: Option<Duration>,
    /// A followed pod log (`pods/log?follow=true`) gets `log_follow_lines` more lines every `log_follow_interval`.
    pub log_follow_interval: Duration,
    pub log_follow_lines: usize,
    /// The longest a `pods/exec` session may last; then it gets a failure `Status` and is closed.
    pub exec_timeout: Duration,
    /// How many `pods/exec` sessions may run at once (over all clusters); more are answered `429`.
    pub exec_sessions: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            clusters: 1,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stage_delay: Duration::from_millis(100),
            watch_history: 1000,
            bookmark_interval: Duration::from_secs(5),
            log_follow_interval: Duration::from_millis(200),
            log_follow_lines: 1,
            exec_timeout: Duration::from_secs(15 * 60),
            exec_sessions: 64,
            max_progress_deadline: Some(Duration::from_secs(2)),
        }
    }
}

/// A running emulator; shuts down when dropped or on [`KubeEmulator::shutdown`].
#[derive(Debug)]
pub struct KubeEmulator {
    addr: SocketAddr,
    ca_pem: String,
    clusters: Vec<ClusterHandle>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Connection details and state of one simulated cluster.
#[derive(Debug, Clone)]
pub struct ClusterHandle {
    name: String,
    url: String,
    token: String,
    ca_pem: String,
    store: Arc<Store>,
    injections: Arc<std::sync::Mutex<Vec<InjectedError>>>,
}

// === impl KubeEmulator ===

impl KubeEmulator {
    /// Starts the listener, the stores and the status engines.
    pub async fn start(config: EmulatorConfig) -> Result<Self, Error> {
        if config.clusters == 0 {
            return Err(Error::Config("at least one cluster is required".into()));
        }
        let tls = tls::generate()?;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut entries = BTreeMap::new();
        let mut clusters = Vec::with_capacity(config.clusters);
        let mut tasks = Vec::new();
        let store_config = StoreConfig {
            history: config.watch_history,
        };
        for i in 1..=config.clusters {
            let name = format!("cluster-{i}");
            let token = random_token();
            let store = Arc::new(Store::new(&store_config));
            tasks.push(tokio::spawn(stages::run(
                store.clone(),
                StageConfig {
                    delay: config.stage_delay,
                    max_progress_deadline: config.max_progress_deadline,
                },
                shutdown_rx.clone(),
            )));
            let url = if config.clusters == 1 {
                format!("https://{addr}")
            } else {
                format!("https://{addr}/clusters/{name}")
            };
            let injections = Arc::new(std::sync::Mutex::new(Vec::new()));
            clusters.push(ClusterHandle {
                name: name.clone(),
                url,
                token: token.clone(),
                ca_pem: tls.ca_pem.clone(),
                store: store.clone(),
                injections: injections.clone(),
            });
            entries.insert(
                name,
                ClusterEntry {
                    token,
                    store,
                    injections,
                },
            );
        }
        let host = Arc::new(Host {
            clusters: entries,
            server_address: addr.to_string(),
            bookmark_interval: config.bookmark_interval,
            log_follow_interval: config.log_follow_interval,
            log_follow_lines: config.log_follow_lines.max(1),
            exec: exec::ExecLimits::new(config.exec_timeout, config.exec_sessions),
            shutdown: shutdown_rx,
        });
        tasks.push(tokio::spawn(server::serve(
            listener,
            TlsAcceptor::from(tls.config.clone()),
            host,
        )));
        Ok(Self {
            addr,
            ca_pem: tls.ca_pem,
            clusters,
            shutdown,
            tasks,
        })
    }

    /// The listener address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// All clusters.
    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// The first (or only) cluster.
    pub fn cluster(&self) -> &ClusterHandle {
        // `start` refuses zero clusters, so there is always a first one.
        &self.clusters[0]
    }

    /// URL of the first cluster.
    pub fn url(&self) -> &str {
        self.cluster().url()
    }

    /// Bearer token of the first cluster.
    pub fn token(&self) -> &str {
        self.cluster().token()
    }

    /// Kubeconfig YAML of the first cluster.
    pub fn kubeconfig_yaml(&self) -> String {
        self.cluster().kubeconfig_yaml()
    }

    /// Kubeconfig of the first cluster.
    pub fn kubeconfig(&self) -> Result<Kubeconfig, Error> {
        self.cluster().kubeconfig()
    }

    /// `kube::Config` of the first cluster.
    pub async fn kube_config(&self) -> Result<kube::Config, Error> {
        self.cluster().kube_config().await
    }

    /// A client for the first cluster.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        self.cluster().client().await
    }

    /// Writes `DIR/<cluster>.kubeconfig` for every cluster; returns the paths.
    pub fn write_kubeconfigs(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        std::fs::create_dir_all(dir)?;
        self.clusters
            .iter()
            .map(|c| {
                let path = dir.join(format!("{}.kubeconfig", c.name));
                std::fs::write(&path, c.kubeconfig_yaml())?;
                Ok(path)
            })
            .collect()
    }

    /// Stops serving and waits for the background tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for KubeEmulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

// === impl ClusterHandle ===

impl ClusterHandle {
    /// Cluster name (`cluster-K`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Server URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Direct access to the cluster's store (for tests that inspect state without HTTP).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Answers the next `error.times` requests matching `error` with its error instead of serving them.
    pub fn inject_error(&self, error: InjectedError) {
        self.injections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(error);
    }

    /// The kubeconfig as YAML text.
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let name = &self.name;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {name}-admin\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n    namespace: default\ncurrent-context: {name}\n",
            url = self.url,
            token = self.token,
        )
    }

    /// The kubeconfig.
    pub fn kubeconfig(&self) -> Result<Kubeconfig, Error> {
        Ok(Kubeconfig::from_yaml(&self.kubeconfig_yaml())?)
    }

    /// A `kube::Config` built from the kubeconfig.
    pub async fn kube_config(&self) -> Result<kube::Config, Error> {
        Ok(
            kube::Config::from_custom_kubeconfig(self.kubeconfig()?, &KubeConfigOptions::default())
                .await?,
        )
    }

    /// A client for this cluster.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Clusters for an end-to-end test: real ones from the environment, or emulated ones.
///
/// * `EDGECD_E2E_KUBECONFIG`: kubeconfig paths separated by `:`; each file's current context is one cluster.
/// * `EDGECD_E2E_CLUSTERS`: a directory; every `*.kubeconfig` file in it is one cluster (sorted by name),
///   e.g. the output directory of `kube-emulator --out DIR` or of a script creating kind/k3d clusters.
///
/// When neither is set, an emulator with the requested number of clusters is started and kept alive as
/// long as this value lives.
#[derive(Debug)]
pub struct TestClusters {
    configs: Vec<kube::Config>,
    emulator: Option<KubeEmulator>,
}

// === impl TestClusters ===

impl TestClusters {
    /// Reads the environment, or starts an emulator with `n` clusters.
    pub async fn from_env_or_emulator(n: usize) -> Result<Self, Error> {
        Self::from_vars_or_emulator(|k| std::env::var(k).ok(), n).await
    }

    /// Like [`TestClusters::from_env_or_emulator`] with an explicit variable lookup (for tests).
    pub async fn from_vars_or_emulator(
        var: impl Fn(&str) -> Option<String>,
        n: usize,
    ) -> Result<Self, Error> {
        let mut paths: Vec<PathBuf> = Vec::new();
        if let Some(list) = var("EDGECD_E2E_KUBECONFIG").filter(|v| !v.is_empty()) {
            paths.extend(list.split(':').filter(|p| !p.is_empty()).map(PathBuf::from));
        } else if let Some(dir) = var("EDGECD_E2E_CLUSTERS").filter(|v| !v.is_empty()) {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "kubeconfig"))
                .collect();
            found.sort();
            paths = found;
        }
        if !paths.is_empty() {
            if paths.len() < n {
                return Err(Error::Config(format!(
                    "{n} clusters requested, {} configured",
                    paths.len()
                )));
            }
            let mut configs = Vec::new();
            for path in paths.into_iter().take(n) {
                let kubeconfig = Kubeconfig::read_from(&path)?;
                configs.push(
                    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await?,
                );
            }
            return Ok(Self {
                configs,
                emulator: None,
            });
        }
        let emulator = KubeEmulator::start(EmulatorConfig {
            clusters: n,
            ..EmulatorConfig::default()
        })
        .await?;
        let mut configs = Vec::new();
        for cluster in emulator.clusters() {
            configs.push(cluster.kube_config().await?);
        }
        Ok(Self {
            configs,
            emulator: Some(emulator),
        })
    }

    /// The client configurations, one per cluster.
    pub fn configs(&self) -> &[kube::Config] {
        &self.configs
    }

    /// Clients, one per cluster.
    pub fn clients(&self) -> Result<Vec<kube::Client>, Error> {
        self.configs
            .iter()
            .map(|c| Ok(kube::Client::try_from(c.clone())?))
            .collect()
    }

    /// The emulator, when the clusters are emulated.
    pub fn emulator(&self) -> Option<&KubeEmulator> {
        self.emulator.as_ref()
    }
}
