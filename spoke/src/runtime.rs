//! The `edgecd-spoke run` shell: flags, logging, cluster connection, CRD and namespace setup, and the long-running tasks (engine, credential watcher, admin server) joined on shutdown.
//!
//! ```text
//!  RunArgs ─► Runtime::start ─► admin bound ─► CRD applied+served ─► namespace ─► GitCache ─► engine
//!                                  │                                                              │
//!                                  └── tasks: [admin, credentials, engine, …] ◄── Runtime::spawn ─┘
//!  SIGTERM/SIGINT ─► shutdown signal ─► controller drains in-flight reconciles ─► tasks joined ─► exit 0
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edgecd_core::duration::GoDuration;
use futures::FutureExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{AdminServer, Readiness};
use crate::cluster::{FIELD_MANAGER, LiveCluster};
use crate::git::{CredentialStore, GitCache, GitConfig};
use crate::reconcile::{self, Engine, EngineConfig};

/// Default cache directory; when it cannot be created, `$TMPDIR/edgecd-spoke` is used.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/edgecd-spoke";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `edgecd-spoke run`; every flag also reads a `SPOKE_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file (default: in-cluster config, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "SPOKE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, env = "SPOKE_CONTEXT")]
    pub context: Option<String>,
    /// Name of this cluster in the fleet (a DNS label).
    #[arg(long, env = "SPOKE_CLUSTER_NAME")]
    pub cluster_name: String,
    /// Namespace holding the Application CRs and repository Secrets.
    #[arg(long, env = "SPOKE_STATE_NAMESPACE", default_value = "edgecd-system")]
    pub state_namespace: String,
    /// How often every app is compared with git (jittered ±10 %), e.g. 3m, 90s.
    #[arg(long, env = "SPOKE_POLL_INTERVAL", default_value = "3m", value_parser = parse_duration)]
    pub poll_interval: GoDuration,
    /// Apps reconciled at once.
    #[arg(long, env = "SPOKE_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// How often a Synced app is compared in full (server-side dry runs) even when nothing it depends on
    /// changed; `0s` compares in full on every reconcile.
    #[arg(long, env = "SPOKE_FULL_COMPARE_INTERVAL", default_value = "30m", value_parser = parse_duration)]
    pub full_compare_interval: GoDuration,
    /// Git cache directory (default /var/cache/edgecd-spoke, else $TMPDIR/edgecd-spoke).
    #[arg(long, env = "SPOKE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The helm binary (Helm v4) rendering Helm sources: an absolute path, or a name looked up on PATH at
    /// start (helm itself runs with an empty environment).
    #[arg(long, env = "SPOKE_HELM_BINARY", default_value = "helm")]
    pub helm_binary: PathBuf,
    /// Address of the admin HTTP server (/live, /ready, /metrics).
    #[arg(long, env = "SPOKE_ADMIN_ADDR", default_value = "0.0.0.0:9464")]
    pub admin_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "SPOKE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `info,edgecd_spoke=debug`.
    #[arg(long, env = "SPOKE_LOG", default_value = "info")]
    pub log: String,
    #[command(flatten)]
    pub trace: edgecd_telemetry::TraceArgs,
    /// The hub's gRPC address, `https://host:port` (`http://` only for a local hub without TLS); without it
    /// the spoke runs standalone.
    #[arg(long, env = "SPOKE_HUB_ADDRESS")]
    pub hub_address: Option<String>,
    /// The URL this cluster is known by in Argo CD manifests (an app's `destination.server`, the clusters
    /// generator's `{{server}}`), usually its API server's external URL; reported to the hub at every
    /// connection. Default: the kubeconfig's server, unless that is the in-cluster address (the same on
    /// every cluster, so it identifies none).
    #[arg(long, env = "SPOKE_SERVER_URL")]
    pub server_url: Option<String>,
    /// One-time bootstrap token from `edgecd cluster add`: with an `https://`
    /// hub address, the spoke enrolls with it on first start and keeps its
    /// certificate in the Secret `edgecd-spoke-identity`.
    #[arg(long, env = "SPOKE_HUB_BOOTSTRAP_TOKEN", hide_env_values = true)]
    pub bootstrap_token: Option<crate::link::enroll::SecretText>,
    /// `sha256:<hex>` of the hub CA, when the bootstrap token does not carry it.
    #[arg(long, env = "SPOKE_HUB_CA_HASH")]
    pub hub_ca_hash: Option<String>,
    /// Whether the hub may run commands in this cluster's containers (exec, the console's terminal) for users
    /// its projects allow; `--exec=false` refuses every exec session here, whatever the hub says.
    #[arg(long, env = "SPOKE_EXEC", default_value_t = true, action = clap::ArgAction::Set)]
    pub exec: bool,
}

fn parse_duration(text: &str) -> Result<GoDuration, String> {
    GoDuration::parse(text).map_err(|e| e.to_string())
}

/// Settings of a [`Runtime`], from [`RunArgs`] minus logging.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster_name: edgecd_core::ClusterName,
    pub engine: EngineConfig,
    pub cache_dir: PathBuf,
    pub admin_addr: SocketAddr,
    /// The hub to link to; `None` runs standalone.
    pub hub_address: Option<String>,
    /// Enrollment with the hub (bootstrap token, CA hash).
    pub bootstrap_token: Option<crate::link::enroll::SecretText>,
    pub hub_ca_hash: Option<String>,
    /// The URL this cluster is known by (`--server-url`); `None`: the kubeconfig's, unless in-cluster.
    pub server_url: Option<String>,
    /// Exec sessions are served (`--exec`).
    pub exec: bool,
}

impl RunArgs {
    /// The logging and tracing flags.
    pub fn telemetry_settings(&self) -> edgecd_telemetry::Settings {
        edgecd_telemetry::Settings {
            service_name: "edgecd-spoke",
            log_filter: self.log.clone(),
            log_format: match self.log_format {
                LogFormat::Text => edgecd_telemetry::LogFormat::Text,
                LogFormat::Json => edgecd_telemetry::LogFormat::Json,
            },
            trace: self.trace.clone(),
        }
    }

    /// Validates the flags into a runtime configuration.
    pub fn into_config(self) -> anyhow::Result<(RuntimeConfig, LogFormat, String)> {
        let Self {
            kubeconfig,
            context,
            cluster_name,
            state_namespace,
            poll_interval,
            concurrency,
            full_compare_interval,
            cache_dir,
            helm_binary,
            admin_addr,
            log_format,
            log,
            trace: _,
            hub_address,
            bootstrap_token,
            hub_ca_hash,
            server_url,
            exec,
        } = self;
        let cluster_name = edgecd_core::ClusterName::parse(cluster_name.clone())
            .with_context(|| format!("--cluster-name {cluster_name:?}"))?;
        anyhow::ensure!(concurrency > 0, "--concurrency must be at least 1");
        anyhow::ensure!(
            poll_interval.0 >= Duration::from_secs(1),
            "--poll-interval must be at least 1s"
        );
        let engine = EngineConfig {
            namespace: state_namespace,
            poll_interval: poll_interval.0,
            concurrency,
            full_compare_interval: full_compare_interval.0,
            identity: format!("edgecd-spoke/{cluster_name}"),
            cluster_name: cluster_name.to_string(),
            ..EngineConfig::default()
        };
        let hub_address = hub_address.filter(|a| !a.trim().is_empty());
        let bootstrap_token = bootstrap_token.filter(|t| !t.0.trim().is_empty());
        if let Some(token) = &bootstrap_token {
            // Checked once here: a token that cannot work is not retried forever.
            crate::link::enroll::pinned_ca_hash(&token.0, hub_ca_hash.as_deref()).context(
                "--bootstrap-token (SPOKE_HUB_BOOTSTRAP_TOKEN): copy the whole token `edgecd cluster add` printed",
            )?;
            match hub_address.as_deref() {
                None => anyhow::bail!(
                    "--bootstrap-token needs --hub-address https://HOST:PORT (the hub to enroll with)"
                ),
                Some(address) if !address.starts_with("https://") => anyhow::bail!(
                    "--hub-address {address:?}: enrolling with a bootstrap token needs https://HOST:PORT"
                ),
                Some(_) => {}
            }
        }
        let server_url = match server_url.map(|u| u.trim().to_owned()) {
            Some(url) if !url.is_empty() => {
                let parsed: http::Uri = url
                    .parse()
                    .with_context(|| format!("--server-url {url:?} is not a URL"))?;
                anyhow::ensure!(
                    matches!(parsed.scheme_str(), Some("https" | "http"))
                        && parsed.host().is_some(),
                    "--server-url {url:?}: expected https://HOST[:PORT]"
                );
                Some(url)
            }
            _ => None,
        };
        let cache_dir = cache_dir.unwrap_or_else(default_cache_dir);
        let engine = EngineConfig {
            helm_binary,
            helm_dir: Some(cache_dir.join("helm")),
            ..engine
        };
        let config = RuntimeConfig {
            kubeconfig,
            context,
            cluster_name,
            engine,
            cache_dir,
            admin_addr,
            hub_address,
            bootstrap_token,
            hub_ca_hash,
            server_url,
            exec,
        };
        Ok((config, log_format, log))
    }
}

/// The kubeconfig's server as the cluster's URL for the hub, or "" for the in-cluster address
/// (`kubernetes.default.svc`, or the `KUBERNETES_SERVICE_HOST` service IP), which every cluster shares.
fn reported_server_url(url: &http::Uri) -> String {
    let host = url.host().unwrap_or_default();
    let service_host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
    let in_cluster = host.starts_with("kubernetes.default")
        || (!service_host.is_empty() && host.trim_matches(['[', ']']) == service_host);
    if in_cluster {
        String::new()
    } else {
        url.to_string().trim_end_matches('/').to_owned()
    }
}

/// `/var/cache/edgecd-spoke` when it can be created, else `$TMPDIR/edgecd-spoke`.
pub fn default_cache_dir() -> PathBuf {
    let preferred = PathBuf::from(DEFAULT_CACHE_DIR);
    if std::fs::create_dir_all(&preferred).is_ok() {
        preferred
    } else {
        std::env::temp_dir().join("edgecd-spoke")
    }
}

/// Installs rustls' `ring` provider as the process default (before any TLS client is built).
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `edgecd-spoke run`: everything until SIGTERM/SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    install_crypto_provider();
    let telemetry = edgecd_telemetry::init(&args.telemetry_settings())?;
    let (config, _, _) = args.into_config()?;
    let runtime = Runtime::start(config).await?;
    let result = runtime.run_until(shutdown_signal()).await;
    telemetry.shutdown_async(Duration::from_secs(5)).await;
    result
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "Cannot listen for SIGTERM.");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received; shutting down."),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down."),
    }
}

/// A future resolving when shutdown starts; clone it into every task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Resolves once shutdown has started.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The running spoke: shared handles and the tasks joined on shutdown.
///
/// More tasks (the hub link) are added with [`Runtime::spawn`]; each gets a [`ShutdownSignal`] from
/// [`Runtime::shutdown_signal`] and must return soon after it fires.
#[derive(Debug)]
pub struct Runtime {
    pub config: RuntimeConfig,
    pub cluster: LiveCluster,
    pub git: GitCache,
    pub engine: Arc<Engine>,
    /// The ApplicationSet controller's state (cluster labels from the hub, triggers).
    pub appsets: Arc<crate::appset::AppSets>,
    pub readiness: Readiness,
    /// The API server URL of the kube client (reported to the hub).
    pub server_url: String,
    admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Runtime {
    /// Connects to the cluster, binds the admin server, installs the CRD and the state namespace, and starts
    /// the engine, the credential watcher and the admin server.
    #[tracing::instrument(skip_all, fields(cluster = %config.cluster_name))]
    pub async fn start(config: RuntimeConfig) -> anyhow::Result<Self> {
        let (stop, _) = watch::channel(false);
        let readiness = Readiness::default();

        let kube_config = kube_config(config.kubeconfig.as_deref(), config.context.as_deref())
            .await
            .context("loading the Kubernetes client configuration")?;
        let server_url = match &config.server_url {
            Some(url) => url.clone(),
            None => reported_server_url(&kube_config.cluster_url),
        };
        let client = kube::Client::try_from(kube_config).context("building the kube client")?;
        let cluster = LiveCluster::new(client.clone());

        let git = GitCache::new(
            GitConfig::new(&config.cache_dir),
            CredentialStore::default(),
        )
        .with_context(|| format!("opening the git cache in {}", config.cache_dir.display()))?;
        let (engine, triggers) = Engine::new(cluster.clone(), git.clone(), config.engine.clone());
        let (registry, metrics) = crate::metrics::registry(Arc::clone(&engine), git.clone());
        engine.set_observer(metrics);
        let (appsets, appset_triggers) =
            crate::appset::AppSets::new(Arc::clone(&engine), git.clone());

        // The admin server comes first, so /live answers while the CRD is being set up.
        let admin = AdminServer::bind(config.admin_addr, readiness.clone(), registry).await?;
        let admin_addr = admin.local_addr().context("reading the admin address")?;
        tracing::info!(%admin_addr, "Admin server listening.");
        let mut runtime = Self {
            config,
            cluster,
            git,
            engine,
            appsets,
            readiness,
            server_url,
            admin_addr,
            stop,
            tasks: Vec::new(),
        };
        let shutdown = runtime.shutdown_signal();
        runtime.spawn("admin", async move {
            admin.serve(shutdown.wait()).await?;
            Ok(())
        });

        let namespace = runtime.config.engine.namespace.clone();
        install_crd(&runtime.cluster).await?;
        ensure_namespace(&client, &namespace).await?;

        // Local Secrets and (with a hub) the hub's credentials, merged; the hub's last set comes from
        // its Secret first, so a restart while the hub is unreachable can still pull.
        let credentials =
            crate::credentials::CredentialSources::new(runtime.git.credentials().clone());
        if runtime.config.hub_address.is_some() {
            match crate::credentials::load_hub(&client, &namespace).await {
                Ok(Some(stored)) => {
                    let set = crate::credentials::credentials_from_hub(&stored);
                    tracing::info!(
                        count = set.len(),
                        "Using the hub's repository credentials kept in the cluster."
                    );
                    credentials.set_hub(set);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "Cannot read the hub's repository credentials kept in the cluster.")
                }
            }
        }
        let shutdown = runtime.shutdown_signal();
        let watch_credentials = credentials.clone();
        let watch_client = client.clone();
        let watch_namespace = namespace.clone();
        runtime.spawn("credentials", async move {
            tokio::select! {
                () = crate::credentials::watch_sources(watch_client, watch_namespace, watch_credentials) => {}
                () = shutdown.wait() => {}
            }
            Ok(())
        });

        let shutdown = runtime.shutdown_signal();
        let engine = Arc::clone(&runtime.engine);
        runtime.spawn("engine", async move {
            reconcile::run(engine, triggers, shutdown.wait()).await;
            Ok(())
        });

        let shutdown = runtime.shutdown_signal();
        let appsets = Arc::clone(&runtime.appsets);
        runtime.spawn("appsets", async move {
            crate::appset::run(appsets, appset_triggers, shutdown.wait()).await;
            Ok(())
        });

        if let Some(address) = runtime.config.hub_address.clone() {
            let mut link = crate::link::HubLinkConfig::new(
                address.clone(),
                runtime.config.cluster_name.to_string(),
                namespace.clone(),
            );
            link.appsets = Some(Arc::clone(&runtime.appsets));
            link.credentials = Some(credentials.clone());
            link.server_url = runtime.server_url.clone();
            link.exec = runtime.config.exec;
            let shutdown = runtime.shutdown_signal();
            let engine = Arc::clone(&runtime.engine);
            let enrollment = address.starts_with("https://").then(|| {
                let secret = crate::link::enroll::IdentitySecret::new(
                    engine.cluster().client().clone(),
                    &namespace,
                );
                let params = runtime.config.bootstrap_token.as_ref().map(|token| {
                    crate::link::enroll::EnrollParams {
                        hub_address: address.clone(),
                        bootstrap_token: token.0.clone(),
                        ca_hash: runtime.config.hub_ca_hash.clone(),
                        spoke_version: link.spoke_version.clone(),
                        connect_timeout: link.connect_timeout,
                    }
                });
                let renew = crate::link::enroll::RenewParams {
                    hub_address: address.clone(),
                    spoke_version: link.spoke_version.clone(),
                    connect_timeout: link.connect_timeout,
                };
                (secret, renew, params)
            });
            runtime.spawn("hub-link", async move {
                if let Some((secret, renew, params)) = enrollment {
                    // Enrollment waits for the hub; the engine runs meanwhile.
                    let cluster = link.cluster_name.clone();
                    let enrolled = async {
                        let mut backoff = edgecd_core::link::Backoff::reconnect();
                        loop {
                            match crate::link::enroll::obtain_identity(&secret, &cluster, Some(&renew), params.as_ref()).await {
                                Ok(identity) => break identity,
                                Err(error) => {
                                    let delay = backoff.next_delay(&mut rand::rng(), None);
                                    tracing::warn!(%error, ?delay, "Cannot obtain a hub identity; retrying.");
                                    tokio::time::sleep(delay).await;
                                }
                            }
                        }
                    };
                    let identity = tokio::select! {
                        identity = enrolled => identity,
                        () = shutdown.clone().wait() => return Ok(()),
                    };
                    link.identity = Some(crate::link::enroll::IdentityManager::new(identity, Some(secret)));
                    link.capabilities = crate::link::with_renewal(&link.capabilities);
                }
                crate::link::run(link, engine, shutdown.wait()).await;
                Ok(())
            });
        }

        // Ready once the controller has listed the Applications.
        let engine = Arc::clone(&runtime.engine);
        let readiness = runtime.readiness.clone();
        let shutdown = runtime.shutdown_signal();
        runtime.spawn("readiness", async move {
            // Polled: the store's readiness future keeps only one waker (the controller's).
            let listed = async {
                loop {
                    let ready = engine
                        .apps()
                        .and_then(|store| store.wait_until_ready().now_or_never());
                    if let Some(result) = ready {
                        return result.is_ok();
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                ok = listed => if ok {
                    readiness.set_ready(true);
                    tracing::info!(namespace, "Controller started; ready.");
                },
                () = shutdown.wait() => {}
            }
            Ok(())
        });
        Ok(runtime)
    }

    /// The admin server's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// A future that resolves when shutdown starts.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.stop.subscribe())
    }

    /// Runs `task` until shutdown; it is joined (and its error reported) by [`Runtime::run_until`].
    /// A task ending early with an error stops the whole runtime.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let stop = self.stop.clone();
        let handle = tokio::spawn(async move {
            let result = task.await;
            if let Err(error) = &result {
                tracing::error!(task = name, error = %format!("{error:#}"), "Task failed; shutting down.");
                stop.send_replace(true);
            }
            result
        });
        self.tasks.push((name, handle));
    }

    /// Waits for `signal` (or a failed task), then stops every task and waits for them: the controller lets
    /// running reconciles finish first.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut stopped = self.stop.subscribe();
        tokio::select! {
            () = signal => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
        self.readiness.set_ready(false);
        self.stop.send_replace(true);
        let mut failure = None;
        for (name, handle) in self.tasks {
            match handle.await {
                Ok(Ok(())) => tracing::debug!(task = name, "Task stopped."),
                Ok(Err(error)) => {
                    failure.get_or_insert(error.context(format!("task {name}")));
                }
                Err(join) => {
                    failure.get_or_insert(anyhow::anyhow!("task {name} panicked: {join}"));
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => {
                tracing::info!("Stopped.");
                Ok(())
            }
        }
    }
}

/// The kube client configuration: `kubeconfig` if given; else in-cluster; else the default kubeconfig.
pub async fn kube_config(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Config> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = kubeconfig {
        let file = Kubeconfig::read_from(path)
            .with_context(|| format!("reading kubeconfig {}", path.display()))?;
        return kube::Config::from_custom_kubeconfig(file, &options)
            .await
            .with_context(|| format!("using kubeconfig {}", path.display()));
    }
    if context.is_none()
        && let Ok(config) = kube::Config::incluster()
    {
        return Ok(config);
    }
    if context.is_some() {
        return kube::Config::from_kubeconfig(&options)
            .await
            .context("using the default kubeconfig");
    }
    kube::Config::infer()
        .await
        .context("no in-cluster configuration and no usable kubeconfig")
}

/// Applies the Application and ApplicationSet CRDs (server-side, field manager `edgecd`) and waits until both
/// kinds are served.
#[tracing::instrument(skip_all)]
pub async fn install_crd(cluster: &LiveCluster) -> anyhow::Result<()> {
    let crds = [
        (crate::crd::application_crd(), "Application"),
        (crate::appset::application_set_crd(), "ApplicationSet"),
    ];
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().clone());
    for (crd, kind) in crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CustomResourceDefinition {name}"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match cluster.resolve(crate::crd::API_VERSION, kind).await {
                Ok(_) => break,
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(anyhow::Error::new(error).context(format!(
                        "CustomResourceDefinition {name} not served after 60s"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        tracing::info!(crd = %name, "CRD installed and served.");
    }
    Ok(())
}

/// Creates the state namespace unless it exists (needs no update rights on namespaces).
#[tracing::instrument(skip(client))]
pub async fn ensure_namespace(client: &kube::Client, namespace: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api
        .get_opt(namespace)
        .await
        .with_context(|| format!("reading namespace {namespace}"))?
        .is_some()
    {
        return Ok(());
    }
    let object = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            tracing::info!(namespace, "State namespace created.");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => {
            Err(anyhow::Error::new(error).context(format!("creating namespace {namespace}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        run: RunArgs,
    }

    fn config(extra: &[&str]) -> anyhow::Result<RuntimeConfig> {
        let mut argv = vec!["spoke", "--cluster-name", "edge-1"];
        argv.extend_from_slice(extra);
        Flags::try_parse_from(argv)?
            .run
            .into_config()
            .map(|(c, _, _)| c)
    }

    const HASH: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A token that cannot work is refused once, at start, with what to do; never retried forever.
    #[test]
    fn a_malformed_bootstrap_token_or_a_plain_hub_address_is_refused_at_start() {
        let truncated = config(&[
            "--hub-address",
            "https://hub:8443",
            "--bootstrap-token",
            "abc",
        ])
        .unwrap_err();
        let text = format!("{truncated:#}");
        assert!(text.contains("malformed bootstrap token"), "{text}");
        assert!(text.contains("copy the whole token"), "{text}");
        assert!(!text.contains("abc"), "the token is echoed: {text}");

        let token = format!("abc.secret.{HASH}");
        let plain = config(&[
            "--hub-address",
            "http://hub:8080",
            "--bootstrap-token",
            &token,
        ])
        .unwrap_err();
        assert!(
            format!("{plain:#}").contains("needs https://HOST:PORT"),
            "{plain:#}"
        );
        let missing = config(&["--bootstrap-token", &token]).unwrap_err();
        assert!(
            format!("{missing:#}").contains("needs --hub-address"),
            "{missing:#}"
        );
        config(&[
            "--hub-address",
            "https://hub:8443",
            "--bootstrap-token",
            &token,
        ])
        .unwrap();
    }

    #[test]
    fn the_server_url_is_checked_and_the_in_cluster_address_is_never_reported() {
        let set = config(&["--server-url", "https://edge-1.example.com:6443"]).unwrap();
        assert_eq!(
            set.server_url.as_deref(),
            Some("https://edge-1.example.com:6443")
        );
        assert!(config(&["--server-url", "edge-1"]).is_err());
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        assert_eq!(
            reported_server_url(&uri("https://kubernetes.default.svc/")),
            ""
        );
        assert_eq!(
            reported_server_url(&uri("https://kubernetes.default.svc.cluster.local:443")),
            ""
        );
        assert_eq!(
            reported_server_url(&uri("https://203.0.113.7:6443/")),
            "https://203.0.113.7:6443"
        );
    }
}
