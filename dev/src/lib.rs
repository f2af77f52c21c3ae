//! `edgecd-dev` as a library: a complete local fleet in one process — hub, emulated clusters, one spoke per cluster, a git server holding `edge-fleet-repo`, and the talk's apps.
//!
//! ```text
//!  Fleet::start ─► hub (Server::start, SQLite in a temp dir) ─► git daemon on loopback + edge-fleet-repo
//!       ─► emulator (N clusters) ─► clusters registered (CreateCluster) ─► a spoke per cluster
//!          (spoke runtime, kubeconfig of its emulated cluster, hub link through a freezable relay)
//!       ─► appsets/nginx-per-cluster.yaml applied through HubService (ApplyManifests): the hub's
//!          ApplicationSet controller generates `cluster-N.nginx`, synced once as `argocd app sync`
//!          would; plus M apps per cluster with automated sync, created directly; with
//!          `edge_addons`, the fleet-scoped set `appsets/edge-addons.yaml` (scope `selector:env=dev`:
//!          every cluster's spoke generates `guestbook`, `minecraft` and `nginx`, `name@cluster`)
//!  Fleet::shutdown ─► spokes, hub, emulator stopped; temp dirs and the git daemon removed
//! ```
//!
//! The hub serves TLS with its own CA (sealed in its store with a master key generated for the
//! run, or kept next to `--database`); each spoke enrolls with a one-time bootstrap token from the
//! hub's PKI and links over mTLS, its identity taken from its client certificate. Operators log in
//! as `admin` with a password generated for the run (kept next to `--database`). Clusters are
//! registered with their emulated API server's URL, which is what the ApplicationSet's
//! `destination.server: '{{server}}'` resolves against.

pub mod relay;
pub mod repo;

/// The repository's `testdata/` folder (the fleet's git repository is compiled in from there).
pub use edgecd_testkit::testdata;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, KustomizeSource, SyncPolicy,
};
use edgecd_hub::auth::{Accounts, AuthConfig};
use edgecd_hub::link::LinkConfig;
use edgecd_hub::pki::MasterKey;
use edgecd_hub::security::SecuritySettings;
use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
use edgecd_proto::client::{Client, ClientConfig, Tls};
use edgecd_proto::v1;
use edgecd_spoke::runtime::{Runtime, RuntimeConfig};
use edgecd_testkit::{GitRepo, GitServer};
use futures::TryStreamExt as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use self::relay::Relay;
use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};

/// Namespace of the spokes' Application CRs in every emulated cluster.
pub const STATE_NAMESPACE: &str = "edgecd-system";
/// Name of the git repository on the loopback git server.
pub const REPO_NAME: &str = "edge-fleet";
/// The talk's ApplicationSet the fleet applies.
pub const NGINX_APPSET: &str = "appsets/nginx-per-cluster.yaml";
/// Namespace of the nginx apps, created in every cluster when it is enrolled (the
/// ApplicationSet's apps do not create it).
pub const NGINX_NAMESPACE: &str = "nginx";
/// The fleet-scoped set of [`FleetConfig::edge_addons`], in the fleet's repository.
pub use self::repo::EDGE_ADDONS_APPSET;
/// Where the edge-addons set runs: every cluster the fleet enrolls is labelled `env=dev`.
pub const EDGE_ADDONS_SCOPE: &str = "selector:env=dev";
/// The apps the edge-addons set generates at each cluster (its folders in the repository).
pub const EDGE_ADDONS: [&str; 3] = ["guestbook", "minecraft", "nginx"];
/// Namespace of the edge-addons' minecraft (set by its kustomization, so the app's
/// `CreateNamespace=true` does not create it): created in every cluster enrolled with
/// `edge_addons`.
pub const GAMES_NAMESPACE: &str = "games";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the fleet could not start, or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{what}: {source}")]
    Step {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("{0}")]
    Config(String),
    #[error(
        "not every app is Synced and Healthy after {secs}s ({ready} of {total} are); not ready:\n{summary}"
    )]
    NotReady {
        secs: u64,
        ready: usize,
        total: usize,
        summary: String,
    },
}

fn step<E: Into<BoxError>>(what: impl Into<String>) -> impl FnOnce(E) -> DevError {
    let what = what.into();
    move |e| DevError::Step {
        what,
        source: e.into(),
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Emulated clusters, named cluster-1 … cluster-N.
    pub clusters: usize,
    /// Extra generated apps per cluster (besides the nginx app).
    pub apps_per_cluster: usize,
    /// SQLite file for the hub; a temp dir's `hub.db` if `None`.
    pub database: Option<PathBuf>,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// How often spokes compare every app with git.
    pub poll_interval: Duration,
    /// The hub marks a silent spoke Stale after this long.
    pub stale_after: Duration,
    /// Delay before the emulator's simulated controllers write status.
    pub stage_delay: Duration,
    /// How many of the emulated clusters are enrolled at start (all if `None`); the others
    /// can join later with [`Fleet::enroll`].
    pub enrolled: Option<usize>,
    /// Apply the fleet-scoped set [`EDGE_ADDONS_APPSET`] at start: each cluster's spoke generates
    /// its own [`EDGE_ADDONS`] (automated sync), shown at the hub as `name@cluster`.
    pub edge_addons: bool,
    /// The hub's `--trace-url-template` (empty: none).
    pub trace_url_template: String,
    /// The hub's `--helm-binary` (Helm app-of-apps parents).
    pub helm_binary: PathBuf,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            clusters: 3,
            apps_per_cluster: 0,
            database: None,
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: Duration::from_secs(30),
            stale_after: Duration::from_secs(6),
            stage_delay: Duration::from_millis(300),
            enrolled: None,
            edge_addons: false,
            trace_url_template: String::new(),
            helm_binary: "helm".into(),
        }
    }
}

/// A progress report while starting.
#[derive(Debug, Clone)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub message: String,
}

const STEPS: usize = 6;

/// One in-process spoke.
#[derive(Debug)]
struct SpokeHandle {
    cluster: String,
    relay: Relay,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The running fleet.
#[derive(Debug)]
pub struct Fleet {
    hub: Option<RunningServer>,
    emulator: Option<KubeEmulator>,
    spokes: Vec<SpokeHandle>,
    git: GitServer,
    repo: GitRepo,
    client: Client,
    /// Enrolled clusters, in enrollment order.
    clusters: Vec<String>,
    /// Every emulated cluster with its kubeconfig.
    emulated: Vec<(String, PathBuf)>,
    config: FleetConfig,
    apps: Vec<v1::AppRef>,
    ca_file: PathBuf,
    admin_password: String,
    dir: tempfile::TempDir,
    grpc_addr: SocketAddr,
    /// Bootstrap tokens of registered clusters whose spoke has not started.
    tokens: BTreeMap<String, String>,
}

impl Fleet {
    /// Starts everything and creates the apps; `progress` is called before each step.
    pub async fn start(
        config: FleetConfig,
        mut progress: impl FnMut(Progress),
    ) -> Result<Self, DevError> {
        if config.clusters == 0 {
            return Err(DevError::Config("--clusters must be at least 1".into()));
        }
        // The emulator and the spokes' kube clients speak TLS.
        edgecd_spoke::runtime::install_crypto_provider();
        let mut report = |step: usize, message: String| {
            progress(Progress {
                step,
                steps: STEPS,
                message,
            });
        };
        let dir = tempfile::Builder::new()
            .prefix("edgecd-dev-")
            .tempdir()
            .map_err(step("creating the temp dir"))?;
        let clusters: Vec<String> = (1..=config.clusters)
            .map(|i| format!("cluster-{i}"))
            .collect();

        // 1. The hub.
        let database = config
            .database
            .clone()
            .unwrap_or_else(|| dir.path().join("hub.db"));
        report(
            1,
            format!("starting the hub (SQLite {})", database.display()),
        );
        let mut hub_config = ServerConfig::insecure_local(Database::Sqlite(database));
        hub_config.grpc_listen = config.grpc_listen;
        hub_config.http_listen = config.http_listen;
        hub_config.drain_timeout = Duration::from_secs(3);
        hub_config.api.trace_url_template = config.trace_url_template.clone();
        hub_config.helm_binary = config.helm_binary.clone();
        hub_config.link = LinkConfig {
            heartbeat_interval: (config.stale_after / 3).max(Duration::from_millis(200)),
            stale_after: config.stale_after,
            ..LinkConfig::default()
        };
        let master = master_key(config.database.as_deref())?;
        hub_config.security = Some(SecuritySettings::stored(
            master,
            vec!["127.0.0.1".into(), "localhost".into()],
        ));
        let hub = Server::start(hub_config)
            .await
            .map_err(step("starting the hub"))?;
        let grpc_addr = hub.grpc_addr();
        let ca_pem = hub
            .pki()
            .map(|pki| pki.ca_pem().to_owned())
            .ok_or_else(|| DevError::Config("the hub started without its PKI".into()))?;
        let ca_file = dir.path().join("hub-ca.pem");
        std::fs::write(&ca_file, &ca_pem).map_err(step("writing the hub's CA certificate"))?;
        let admin_password = admin_account(&hub, config.database.as_deref()).await?;
        let anonymous = Client::connect(
            ClientConfig::new(format!("https://127.0.0.1:{}", grpc_addr.port()))
                .with_tls(Tls::CaPem(ca_pem)),
        )
        .await
        .map_err(step("connecting to the hub"))?;
        let session = anonymous
            .login_password(ADMIN_USER, &admin_password)
            .await
            .map_err(step("logging in as admin"))?;
        let client = anonymous
            .with_session(&session)
            .map_err(step("using the admin session"))?;

        // 2. Git.
        report(2, "starting the git server with edge-fleet-repo".into());
        let git = GitServer::start().map_err(step("starting git daemon"))?;
        let repo = git
            .create_repo(REPO_NAME)
            .map_err(step("creating the repository"))?;
        for (path, text) in repo::repository_files(repo.url(), &clusters) {
            repo.write(&path, &text)
                .map_err(step(format!("writing {path}")))?;
        }
        repo.commit("edge-fleet-repo")
            .map_err(step("committing edge-fleet-repo"))?;

        // 3. Emulated clusters.
        report(3, format!("starting {} emulated clusters", config.clusters));
        let emulator = KubeEmulator::start(EmulatorConfig {
            clusters: config.clusters,
            stage_delay: config.stage_delay,
            ..EmulatorConfig::default()
        })
        .await
        .map_err(step("starting the Kubernetes API emulator"))?;
        let kubeconfigs = emulator
            .write_kubeconfigs(&dir.path().join("kubeconfigs"))
            .map_err(step("writing kubeconfigs"))?;

        // 4. Clusters registered at the hub, then a spoke each.
        let enrolled = config
            .enrolled
            .unwrap_or(config.clusters)
            .min(config.clusters);
        report(4, format!("enrolling {enrolled} clusters, a spoke each"));
        let mut fleet = Self {
            hub: Some(hub),
            emulator: Some(emulator),
            spokes: Vec::new(),
            git,
            repo,
            client,
            clusters: Vec::new(),
            emulated: clusters.iter().cloned().zip(kubeconfigs).collect(),
            config: config.clone(),
            apps: Vec::new(),
            ca_file,
            admin_password,
            dir,
            grpc_addr,
            tokens: BTreeMap::new(),
        };
        for (i, name) in clusters.iter().take(enrolled).enumerate() {
            let labels = BTreeMap::from([
                (
                    "region".to_owned(),
                    if i % 2 == 0 { "eu" } else { "us" }.to_owned(),
                ),
                ("env".to_owned(), "dev".to_owned()),
            ]);
            fleet.register(name, &labels).await?;
        }
        for name in clusters.iter().take(enrolled) {
            fleet.start_spoke(name).await?;
        }
        fleet.wait_connected(Duration::from_secs(120)).await?;

        // 5. Apps: what nginx-per-cluster generates, the generated extras, the edge addons.
        report(
            5,
            format!(
                "applying the nginx-per-cluster ApplicationSet{}{}",
                if config.apps_per_cluster > 0 {
                    format!(", {} generated apps per cluster", config.apps_per_cluster)
                } else {
                    String::new()
                },
                if config.edge_addons {
                    format!(
                        ", the fleet-scoped set edge-addons ({} apps per cluster, generated at each)",
                        EDGE_ADDONS.len()
                    )
                } else {
                    String::new()
                }
            ),
        );
        fleet.apply_nginx_appset().await?;
        fleet.create_apps(config.apps_per_cluster).await?;
        if config.edge_addons {
            fleet.apply_edge_addons().await?;
        }

        // 6. The first sync of the manual apps, as `argocd app sync` after the set created them.
        report(6, "syncing the nginx apps".into());
        for app in fleet.apps.clone() {
            if app.name.ends_with(".nginx") {
                fleet
                    .client
                    .sync_application(v1::SyncApplicationRequest {
                        request_id: String::new(),
                        app: Some(app.clone()),
                        sync: Some(v1::SyncCommand::default()),
                        ttl: None,
                    })
                    .await
                    .map_err(step(format!("syncing {}/{}", app.project, app.name)))?;
            }
        }
        Ok(fleet)
    }

    /// Applies `appsets/nginx-per-cluster.yaml` (the fixture, repoURL pointing at the fleet's git
    /// server) and waits until the hub generated an app for every enrolled cluster.
    async fn apply_nginx_appset(&mut self) -> Result<(), DevError> {
        let yaml = repo::fixture_files()
            .into_iter()
            .find(|(path, _)| path == NGINX_APPSET)
            .map(|(_, bytes)| {
                String::from_utf8_lossy(bytes).replace(repo::PLACEHOLDER_REPO_URL, self.repo.url())
            })
            .ok_or_else(|| DevError::Config(format!("the fixture has no {NGINX_APPSET}")))?;
        self.client
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml,
                ..Default::default()
            })
            .await
            .map_err(step(format!("applying {NGINX_APPSET}")))?;
        let wanted: Vec<String> = self.clusters.iter().map(|c| format!("{c}.nginx")).collect();
        self.wait_apps_exist(&wanted, Duration::from_secs(60))
            .await?;
        for name in wanted {
            self.apps.push(v1::AppRef::new("default", &name));
        }
        Ok(())
    }

    /// Applies [`EDGE_ADDONS_APPSET`] with scope [`EDGE_ADDONS_SCOPE`]: the hub sends it to every
    /// enrolled cluster, whose spoke generates and syncs its [`EDGE_ADDONS`]. The apps are counted
    /// in [`Fleet::apps`] at once (`name@cluster`); [`Fleet::wait_synced`] waits for them.
    async fn apply_edge_addons(&mut self) -> Result<(), DevError> {
        let yaml = repo::repository_files(self.repo.url(), &[])
            .into_iter()
            .find(|(path, _)| path == EDGE_ADDONS_APPSET)
            .map(|(_, text)| text)
            .ok_or_else(|| {
                DevError::Config(format!("the repository has no {EDGE_ADDONS_APPSET}"))
            })?;
        let results = self
            .client
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml,
                scope: EDGE_ADDONS_SCOPE.into(),
                ..Default::default()
            })
            .await
            .map_err(step(format!("applying {EDGE_ADDONS_APPSET}")))?
            .results;
        if let Some(refused) = results
            .iter()
            .find(|r| !matches!(r.action.as_str(), "created" | "updated" | "unchanged"))
        {
            return Err(DevError::Config(format!(
                "applying {EDGE_ADDONS_APPSET}: {} {}: {}",
                refused.action, refused.name, refused.message
            )));
        }
        for cluster in &self.clusters {
            for addon in EDGE_ADDONS {
                self.apps
                    .push(v1::AppRef::new("default", format!("{addon}@{cluster}")));
            }
        }
        Ok(())
    }

    /// Waits until every named app (project `default`) exists at the hub.
    pub async fn wait_apps_exist(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), DevError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            for name in names {
                if self
                    .client
                    .get_application(v1::GetApplicationRequest {
                        app: Some(v1::AppRef::new("default", name)),
                    })
                    .await
                    .is_err()
                {
                    missing.push(name.clone());
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DevError::Config(format!(
                    "the application set did not generate {} within {}s",
                    missing.join(", "),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn create_apps(&mut self, per_cluster: usize) -> Result<(), DevError> {
        let repo_url = self.repo.url().to_owned();
        for cluster in self.clusters.clone() {
            for i in 1..=per_cluster {
                let spec = ApplicationSpec {
                    project: "default".into(),
                    source: ApplicationSource {
                        repo_url: repo_url.clone(),
                        target_revision: "HEAD".into(),
                        path: "deploy/generated".into(),
                        kustomize: Some(KustomizeSource {
                            name_prefix: format!("gen-{i}-"),
                            ..KustomizeSource::default()
                        }),
                        ..ApplicationSource::default()
                    },
                    destination: Destination {
                        cluster: cluster.clone(),
                        namespace: "generated".into(),
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
                let labels = [("edgecd.io/generated".to_owned(), "true".to_owned())];
                self.create_app(&format!("{cluster}.gen-{i}"), &spec, &labels)
                    .await?;
            }
        }
        Ok(())
    }

    async fn create_app(
        &mut self,
        name: &str,
        spec: &ApplicationSpec,
        labels: &[(String, String)],
    ) -> Result<(), DevError> {
        self.client
            .create_application(v1::CreateApplicationRequest {
                meta: Some(v1::ApplicationMeta {
                    project: "default".into(),
                    name: name.to_owned(),
                    labels: labels.iter().cloned().collect(),
                    ..Default::default()
                }),
                spec: Some(edgecd_proto::convert::application_spec(spec)),
                dry_run: false,
                upsert: true,
            })
            .await
            .map_err(step(format!("creating application default/{name}")))?;
        self.apps.push(v1::AppRef::new("default", name));
        Ok(())
    }

    /// The emulated cluster `name`.
    fn emulated_cluster(
        &self,
        name: &str,
    ) -> Result<&edgecd_kube_emulator::ClusterHandle, DevError> {
        self.emulator
            .as_ref()
            .ok_or_else(|| DevError::Config("the emulator is stopped".into()))?
            .clusters()
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| DevError::Config(format!("no emulated cluster {name}")))
    }

    /// Creates `namespace` in emulated cluster `cluster`, as an operator bootstrapping it would; one that
    /// exists already is left as it is.
    pub async fn create_namespace(&self, cluster: &str, namespace: &str) -> Result<(), DevError> {
        let kube = self
            .emulated_cluster(cluster)?
            .client()
            .await
            .map_err(step(format!("connecting to emulated cluster {cluster}")))?;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(kube);
        let object = k8s_openapi::api::core::v1::Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(namespace.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match namespaces
            .create(&kube::api::PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(error) => Err(step(format!("creating namespace {namespace} in {cluster}"))(error)),
        }
    }

    /// The names of the apps the hub lists for `filter` (at most 1,000).
    pub async fn app_names(
        &self,
        filter: v1::ApplicationFilter,
    ) -> Result<std::collections::BTreeSet<String>, DevError> {
        let page = self
            .client
            .list_applications(v1::ListApplicationsRequest {
                filter: Some(filter),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .map_err(step("listing applications".to_owned()))?;
        Ok(page.items.into_iter().map(|a| a.name).collect())
    }

    /// Registers an emulated cluster at the hub with its API server URL and labels, and creates
    /// the nginx namespace in it, as an operator bootstrapping the cluster would.
    async fn register(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String, DevError> {
        let handle = self.emulated_cluster(name)?;
        let mut wanted = vec![NGINX_NAMESPACE];
        if self.config.edge_addons {
            wanted.push(GAMES_NAMESPACE);
        }
        for namespace in wanted {
            self.create_namespace(name, namespace).await?;
        }
        let created = self
            .client
            .create_cluster(v1::CreateClusterRequest {
                name: name.to_owned(),
                labels: labels.clone().into_iter().collect(),
                server_url: handle.url().to_owned(),
                ..Default::default()
            })
            .await
            .map_err(step(format!("registering {name}")))?;
        // The one-time token the spoke enrolls with: from CreateCluster, or asked for.
        let token = if created.bootstrap_token.is_empty() {
            self.client
                .create_bootstrap_token(v1::CreateBootstrapTokenRequest {
                    cluster: name.to_owned(),
                    token_ttl: None,
                })
                .await
                .map_err(step(format!("issuing a bootstrap token for {name}")))?
                .bootstrap_token
        } else {
            created.bootstrap_token
        };
        self.tokens.insert(name.to_owned(), token.clone());
        Ok(token)
    }

    /// Starts the spoke of a registered cluster (it enrolls with the cluster's bootstrap token).
    async fn start_spoke(&mut self, name: &str) -> Result<(), DevError> {
        let token = self
            .tokens
            .remove(name)
            .ok_or_else(|| DevError::Config(format!("cluster {name} is not registered")))?;
        let kubeconfig = self
            .emulated
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| DevError::Config(format!("no emulated cluster {name}")))?;
        let spoke = start_spoke(
            &self.config,
            self.dir.path(),
            name,
            &kubeconfig,
            self.grpc_addr,
            &token,
        )
        .await?;
        self.spokes.push(spoke);
        self.clusters.push(name.to_owned());
        Ok(())
    }

    /// Enrolls one more emulated cluster (registered with `labels`, its spoke started) and waits
    /// until it is connected: a cluster joining the fleet.
    pub async fn enroll(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), DevError> {
        self.register(name, labels).await?;
        self.start_spoke(name).await?;
        self.wait_connected(Duration::from_secs(60)).await
    }

    /// Creates project `name` that allows every source repository and every
    /// destination (cluster and namespace).
    pub async fn create_open_project(&self, name: &str) -> Result<(), DevError> {
        self.client
            .create_project(v1::CreateProjectRequest {
                project: Some(v1::Project {
                    name: name.to_owned(),
                    source_repos: vec!["*".into()],
                    destinations: vec![v1::ProjectDestination {
                        all_clusters: true,
                        namespace: "*".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                upsert: false,
            })
            .await
            .map_err(step(format!("creating project {name}")))?;
        Ok(())
    }

    async fn wait_connected(&self, timeout: Duration) -> Result<(), DevError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let clusters: Vec<v1::Cluster> = self
                .client
                .clusters(v1::ListClustersRequest::default())
                .try_collect()
                .await
                .map_err(step("listing clusters"))?;
            let waiting: Vec<String> = clusters
                .iter()
                .filter(|c| {
                    c.connection.as_ref().map(|s| s.state)
                        != Some(v1::ConnectionStateCode::Connected as i32)
                })
                .map(|c| c.name.clone())
                .collect();
            if waiting.is_empty() && clusters.len() >= self.clusters.len() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DevError::Config(format!(
                    "spokes did not connect within {}s: {}",
                    timeout.as_secs(),
                    waiting.join(", ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every app is Synced and Healthy on a connected cluster; the error summarises what is not.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), DevError> {
        self.wait_synced_with(timeout, |_, _| {}).await
    }

    /// [`Fleet::wait_synced`], calling `progress(ready, total)` whenever the number of ready apps changes.
    pub async fn wait_synced_with(
        &self,
        timeout: Duration,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<(), DevError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = None;
        loop {
            let apps: Vec<v1::ApplicationSummary> = self
                .client
                .applications(v1::ListApplicationsRequest {
                    page_size: 1000,
                    ..Default::default()
                })
                .try_collect()
                .await
                .map_err(step("listing applications"))?;
            let not_ready: Vec<String> = apps
                .iter()
                .filter_map(|a| {
                    not_ready(a).map(|why| format!("  {}/{}: {why}", a.project, a.name))
                })
                .collect();
            let ready = (
                apps.len() - not_ready.len(),
                apps.len().max(self.apps.len()),
            );
            if last != Some(ready) {
                progress(ready.0, ready.1);
                last = Some(ready);
            }
            if not_ready.is_empty() && apps.len() >= self.apps.len() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let shown: Vec<String> = not_ready.iter().take(20).cloned().collect();
                let more = not_ready.len().saturating_sub(shown.len());
                let mut summary = shown.join("\n");
                if more > 0 {
                    summary.push_str(&format!("\n  … and {more} more"));
                }
                return Err(DevError::NotReady {
                    secs: timeout.as_secs(),
                    ready: apps.len() - not_ready.len(),
                    total: apps.len(),
                    summary,
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `https://127.0.0.1:PORT` of the hub's gRPC API (for `edgecd login` and the SDK).
    pub fn grpc_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.grpc_addr().port())
    }

    /// The password of the `admin` user (printed by `edgecd-dev`: a dev fleet's login is its purpose).
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The hub's CA certificate (PEM file), to trust for [`Fleet::grpc_url`].
    pub fn ca_file(&self) -> &std::path::Path {
        &self.ca_file
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.hub.as_ref().map_or(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            RunningServer::grpc_addr,
        )
    }

    /// `http://127.0.0.1:PORT` of the hub's HTTP port (console, `/metrics`).
    pub fn console_url(&self) -> String {
        let addr = self.hub.as_ref().map_or(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            RunningServer::http_addr,
        );
        format!("http://{addr}")
    }

    /// A client of the hub (no token: the dev hub runs without authentication).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn clusters(&self) -> &[String] {
        &self.clusters
    }

    /// What the fleet was started with.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    pub fn apps(&self) -> &[v1::AppRef] {
        &self.apps
    }

    /// The working copy of the fleet's git repository: write, commit, and spokes see it.
    pub fn repo(&self) -> &GitRepo {
        &self.repo
    }

    /// The loopback git server (to host more repositories).
    pub fn git_server(&self) -> &GitServer {
        &self.git
    }

    pub fn git_port(&self) -> u16 {
        self.git.port()
    }

    /// The emulated clusters (to change live objects, i.e. make drift).
    pub fn emulator(&self) -> Option<&KubeEmulator> {
        self.emulator.as_ref()
    }

    /// The fleet's temp dir (hub database unless --database, kubeconfigs, git caches).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Freezes a spoke's link: the stream stays open but nothing flows, as when the spoke hangs
    /// or its network partitions; the hub marks the cluster Stale.
    pub fn freeze_spoke(&self, cluster: &str) -> Result<(), DevError> {
        self.spoke(cluster)?.relay.set_frozen(true);
        Ok(())
    }

    pub fn thaw_spoke(&self, cluster: &str) -> Result<(), DevError> {
        self.spoke(cluster)?.relay.set_frozen(false);
        Ok(())
    }

    /// Stops a spoke for good (its stream closes: the hub marks the cluster Disconnected).
    pub async fn stop_spoke(&mut self, cluster: &str) -> Result<(), DevError> {
        let spoke = self
            .spokes
            .iter_mut()
            .find(|s| s.cluster == cluster)
            .ok_or_else(|| DevError::Config(format!("no spoke for cluster {cluster}")))?;
        spoke.stop().await;
        Ok(())
    }

    fn spoke(&self, cluster: &str) -> Result<&SpokeHandle, DevError> {
        self.spokes
            .iter()
            .find(|s| s.cluster == cluster)
            .ok_or_else(|| DevError::Config(format!("no spoke for cluster {cluster}")))
    }

    /// Stops spokes, hub and emulator; temp dirs and the git daemon go when `self` is dropped.
    pub async fn shutdown(mut self) {
        for spoke in &mut self.spokes {
            spoke.stop().await;
        }
        if let Some(hub) = self.hub.take()
            && let Err(error) = hub.shutdown().await
        {
            tracing::warn!(%error, "The hub did not stop cleanly.");
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }
}

impl SpokeHandle {
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Unfreeze so the link can say goodbye.
        self.relay.set_frozen(false);
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => {
                    tracing::warn!(cluster = %self.cluster, error = %format!("{error:#}"), "Spoke stopped with an error.")
                }
                Ok(Err(join)) => {
                    tracing::warn!(cluster = %self.cluster, %join, "Spoke task failed.")
                }
                Err(_) => tracing::warn!(cluster = %self.cluster, "Spoke did not stop within 10s."),
            }
        }
    }
}

async fn start_spoke(
    config: &FleetConfig,
    dir: &std::path::Path,
    cluster: &str,
    kubeconfig: &std::path::Path,
    hub: SocketAddr,
    bootstrap_token: &str,
) -> Result<SpokeHandle, DevError> {
    let relay = Relay::start(hub)
        .await
        .map_err(step(format!("starting the link relay of {cluster}")))?;
    // Configured exactly as `edgecd-spoke run` with these flags would be.
    let cache_dir = dir.join("spokes").join(cluster);
    let poll = format!("{}s", config.poll_interval.as_secs().max(1));
    // The relay listens on 127.0.0.1 too, so the hub's certificate (for 127.0.0.1) matches.
    let hub_address = format!("https://127.0.0.1:{}", relay.addr().port());
    let argv: Vec<std::ffi::OsString> = vec![
        "edgecd-spoke".into(),
        "--cluster-name".into(),
        cluster.into(),
        "--kubeconfig".into(),
        kubeconfig.into(),
        "--state-namespace".into(),
        STATE_NAMESPACE.into(),
        "--poll-interval".into(),
        poll.into(),
        "--cache-dir".into(),
        cache_dir.into(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
        "--hub-address".into(),
        hub_address.into(),
        "--bootstrap-token".into(),
        bootstrap_token.into(),
    ];
    let args =
        SpokeFlags::try_parse_from(argv).map_err(step(format!("spoke flags for {cluster}")))?;
    let (runtime_config, _, _): (RuntimeConfig, _, _) =
        args.run.into_config().map_err(|e| DevError::Step {
            what: format!("spoke configuration of {cluster}"),
            source: e.into(),
        })?;
    let runtime = Runtime::start(runtime_config)
        .await
        .map_err(|e| DevError::Step {
            what: format!("starting the spoke of {cluster}"),
            source: e.into(),
        })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(runtime.run_until(async move {
        let _ = stopped.await;
    }));
    Ok(SpokeHandle {
        cluster: cluster.to_owned(),
        relay,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The operator account of the dev fleet.
pub const ADMIN_USER: &str = "admin";

/// Creates the `admin` user with a random password, or, for `--database FILE` that has one
/// already, reads its password from `FILE.admin-password` (mode 0600).
async fn admin_account(
    hub: &RunningServer,
    database: Option<&std::path::Path>,
) -> Result<String, DevError> {
    use rand::Rng as _;
    let saved = database.map(|d| PathBuf::from(format!("{}.admin-password", d.display())));
    if let Some(path) = &saved
        && path.exists()
    {
        return std::fs::read_to_string(path)
            .map(|p| p.trim().to_owned())
            .map_err(step(format!("reading {}", path.display())));
    }
    let password: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect();
    let pki = hub
        .pki()
        .ok_or_else(|| DevError::Config("the hub started without its PKI".into()))?;
    let accounts = Accounts::new(
        Arc::clone(hub.store()),
        Arc::clone(pki.security()),
        AuthConfig::default(),
    )
    .map_err(step("opening the hub's accounts"))?;
    accounts
        .create_user(ADMIN_USER, Some(&password), true, &[])
        .await
        .map_err(step("creating the admin user"))?;
    if let Some(path) = &saved {
        write_private(path, &password)?;
    }
    Ok(password)
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), DevError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(step(format!("writing {}", path.display())))
}

/// A master key for the hub's sealed CA: fresh for a throwaway database; for `--database FILE`,
/// kept in `FILE.master-key` (mode 0600) so the CA can be unsealed on the next run.
fn master_key(database: Option<&std::path::Path>) -> Result<MasterKey, DevError> {
    let Some(database) = database else {
        return MasterKey::generate()
            .map(|(key, _)| key)
            .map_err(step("generating the hub's master key"));
    };
    let path = PathBuf::from(format!("{}.master-key", database.display()));
    if path.exists() {
        return MasterKey::from_file(&path)
            .map_err(step(format!("reading the master key {}", path.display())));
    }
    let (key, text) = MasterKey::generate().map_err(step("generating the hub's master key"))?;
    write_private(&path, &text)?;
    Ok(key)
}

/// `edgecd-spoke run`'s flags, parsed from the arguments the dev fleet builds.
#[derive(Debug, clap::Parser)]
struct SpokeFlags {
    #[command(flatten)]
    run: edgecd_spoke::runtime::RunArgs,
}

/// Why an app is not ready, or `None` when it is Synced and Healthy on a connected cluster.
pub fn not_ready(app: &v1::ApplicationSummary) -> Option<String> {
    let connected = app
        .cluster_connection
        .as_ref()
        .is_none_or(|c| c.state == v1::ConnectionStateCode::Connected as i32);
    let synced = app.sync == v1::SyncStatusCode::Synced as i32;
    let healthy = app.health == v1::HealthStatusCode::Healthy as i32;
    if connected && synced && healthy {
        return None;
    }
    let mut why = Vec::new();
    if !connected {
        why.push("cluster not connected".to_owned());
    }
    if !synced {
        why.push(format!("sync {}", sync_text(app.sync)));
    }
    if !healthy {
        why.push(format!("health {}", health_text(app.health)));
    }
    Some(why.join(", "))
}

fn sync_text(code: i32) -> &'static str {
    match v1::SyncStatusCode::try_from(code) {
        Ok(v1::SyncStatusCode::Synced) => "Synced",
        Ok(v1::SyncStatusCode::OutOfSync) => "OutOfSync",
        Ok(v1::SyncStatusCode::Unknown) => "Unknown",
        _ => "not reported yet",
    }
}

fn health_text(code: i32) -> &'static str {
    match v1::HealthStatusCode::try_from(code) {
        Ok(v1::HealthStatusCode::Healthy) => "Healthy",
        Ok(v1::HealthStatusCode::Progressing) => "Progressing",
        Ok(v1::HealthStatusCode::Degraded) => "Degraded",
        Ok(v1::HealthStatusCode::Suspended) => "Suspended",
        Ok(v1::HealthStatusCode::Missing) => "Missing",
        Ok(v1::HealthStatusCode::Unknown) => "Unknown",
        _ => "not reported yet",
    }
}
