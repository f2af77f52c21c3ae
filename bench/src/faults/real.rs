//! Real spokes in the faults harness: the spoke's engine and hub link (`edgecd-spoke`) on emulated clusters (one emulator process, a cluster each), syncing the talk's demo app from a git server, through the same relays as the simulated spokes; after the faults heal, each must have deployed the repository's newest commit and the hub must show it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use edgecd_spoke::sync::SyncOptions;
use edgecd_testkit::{GitRepo, GitServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where each real spoke keeps its state.
const STATE_NS: &str = "edgecd-system";

/// The name of real spoke `i`'s cluster.
pub fn cluster_name(i: usize) -> String {
    format!("real-{i}")
}

/// The app each real spoke runs.
pub fn app_name(cluster: &str) -> String {
    format!("{cluster}-demo")
}

/// The talk's demo repository on a git server.
pub struct DemoRepo {
    _server: GitServer,
    pub repo: GitRepo,
}

impl DemoRepo {
    pub fn start() -> anyhow::Result<Self> {
        let server = GitServer::start().context("starting the git server")?;
        let repo = server
            .create_repo("demo")
            .context("creating the repository")?;
        repo.copy_dir(&edgecd_testkit::testdata().join("talk-demo-repo"), "")
            .context("copying the demo repository")?;
        repo.commit("demo").context("committing")?;
        Ok(Self {
            _server: server,
            repo,
        })
    }

    /// A new commit that changes what the overlay renders (an annotation on every object), so every real
    /// spoke has something to deploy after the faults.
    pub fn change(&self, n: usize) -> anyhow::Result<String> {
        let path = "deploy/overlays/cluster1/kustomization.yaml";
        let original =
            std::fs::read_to_string(edgecd_testkit::testdata().join("talk-demo-repo").join(path))
                .context("reading the overlay")?;
        self.repo
            .write(
                path,
                &format!(
                    "{}\ncommonAnnotations:\n  edgecd.io/faults-change: \"{n}\"\n",
                    original.trim_end()
                ),
            )
            .context("writing the overlay")?;
        self.repo
            .commit(&format!("change {n}"))
            .context("committing")
    }

    /// The app spec of a real spoke: the demo overlay, synced automatically with prune and self-heal.
    pub fn spec(&self, cluster: &str) -> ApplicationSpec {
        ApplicationSpec {
            project: super::spoke::PROJECT.into(),
            source: ApplicationSource {
                repo_url: self.repo.url().into(),
                target_revision: "HEAD".into(),
                path: "deploy/overlays/cluster1".into(),
                ..ApplicationSource::default()
            },
            destination: Destination {
                cluster: cluster.into(),
                namespace: "demo".into(),
                ..Destination::default()
            },
            sync_policy: Some(SyncPolicy {
                automated: Some(AutomatedSync {
                    prune: true,
                    self_heal: true,
                    allow_empty: false,
                }),
                sync_options: vec!["CreateNamespace=true".into()],
                ..SyncPolicy::default()
            }),
            ..ApplicationSpec::default()
        }
    }
}

/// The emulated clusters of the real spokes.
pub async fn emulator(clusters: usize) -> anyhow::Result<KubeEmulator> {
    KubeEmulator::start(EmulatorConfig {
        clusters: clusters.max(1),
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .context("starting the Kubernetes API emulator")
}

/// Starts a real spoke on emulated cluster `index`, its link dialling `endpoint`; runs until `stop`.
pub async fn start_spoke(
    emulator: &KubeEmulator,
    index: usize,
    cluster: &str,
    endpoint: &str,
    cache: &std::path::Path,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let handle = emulator
        .clusters()
        .get(index)
        .context("no such emulated cluster")?;
    let live = LiveCluster::new(
        handle
            .client()
            .await
            .context("an emulated cluster's client")?,
    );
    edgecd_spoke::runtime::install_crd(&live)
        .await
        .context("installing the CRD")?;
    edgecd_spoke::runtime::ensure_namespace(live.client(), STATE_NS)
        .await
        .context("creating the state namespace")?;
    let git = GitCache::new(
        GitConfig {
            ls_remote_ttl: Duration::from_millis(500),
            ..GitConfig::new(cache)
        },
        CredentialStore::default(),
    )
    .context("the spoke's git cache")?;
    let config = EngineConfig {
        namespace: STATE_NS.into(),
        poll_interval: Duration::from_secs(2),
        progress_interval: Duration::from_millis(500),
        sync: SyncOptions {
            wave_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
            ..SyncOptions::default()
        },
        ..EngineConfig::default()
    };
    let (engine, triggers) = Engine::new(live, git, config);
    let until = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let engine_task = tokio::spawn(reconcile::run(
        Arc::clone(&engine),
        triggers,
        until(stop.clone()),
    ));
    let link_task = tokio::spawn(link::run(
        HubLinkConfig::new(endpoint.to_owned(), cluster, STATE_NS),
        engine,
        until(stop),
    ));
    Ok(vec![engine_task, link_task])
}
