//! End to end: repository credentials set at the hub reach only the spokes that run apps of the projects allowed to use them, are merged into the spoke's git credentials, kept in a Secret in the spoke's namespace, removed when deleted at the hub, and still used by a spoke restarted while the hub is unreachable (dev fleet: real hub, spokes over mTLS, a private HTTP git repository with basic auth; the Kubernetes API emulator as the only stand-in).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use clap::Parser as _;
use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;
use edgecd_spoke::credentials::{HUB_CREDENTIALS_SECRET, StoredCredential, load_hub};
use edgecd_spoke::runtime::{RunArgs, Runtime};
use edgecd_testkit::{GitHttpServer, GitRepo, HTTP_PASSWORD, HTTP_USER};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use tokio::sync::oneshot;

const DEADLINE: Duration = Duration::from_secs(120);
const STATE_NS: &str = "edgecd-system";
/// A prefix only project `default` may use (no repository behind it): a marker that a cluster received
/// a set computed after the team-a credential existed.
const DEFAULT_ONLY: &str = "https://git.example.invalid/default/";

async fn kube(fleet: &Fleet, cluster: &str) -> kube::Client {
    fleet
        .emulator()
        .unwrap()
        .clusters()
        .iter()
        .find(|c| c.name() == cluster)
        .unwrap()
        .client()
        .await
        .unwrap()
}

async fn app(fleet: &Fleet, project: &str, name: &str) -> Option<v1::Application> {
    fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new(project, name)),
        })
        .await
        .ok()
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {}s waiting for {what}",
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The hub's credentials as the spoke of `cluster` keeps them in its Secret (`None`: never received).
async fn kept(fleet: &Fleet, cluster: &str) -> Option<Vec<StoredCredential>> {
    load_hub(&kube(fleet, cluster).await, STATE_NS)
        .await
        .unwrap()
}

fn prefixes(kept: &[StoredCredential]) -> Vec<String> {
    let mut prefixes: Vec<String> = kept.iter().map(|c| c.url_prefix.clone()).collect();
    prefixes.sort();
    prefixes
}

async fn wait_kept(fleet: &Fleet, cluster: &str, what: &str, want: impl Fn(&[String]) -> bool) {
    wait_for(
        &format!("{cluster}'s kept credentials: {what}"),
        async || {
            let kept = kept(fleet, cluster).await?;
            want(&prefixes(&kept)).then_some(())
        },
    )
    .await;
}

async fn set_credential(fleet: &Fleet, prefix: &str, project: &str) {
    fleet
        .client()
        .set_repository_credential(v1::SetRepositoryCredentialRequest {
            url_prefix: prefix.into(),
            projects: vec![project.into()],
            username: HTTP_USER.into(),
            password: HTTP_PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn configmap(fleet: &Fleet, cluster: &str, namespace: &str, name: &str) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(kube(fleet, cluster).await, namespace);
    api.get_opt(name).await.unwrap()
}

/// `edgecd-spoke run`'s flags.
#[derive(Debug, clap::Parser)]
struct SpokeFlags {
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_repository_credentials_reach_only_entitled_spokes_and_survive_a_restart_without_the_hub()
 {
    let mut fleet = Fleet::start(
        FleetConfig {
            clusters: 2,
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();

    // A private repository (HTTP basic auth) and project team-a, whose app runs on cluster-1;
    // cluster-2 runs only apps of project default.
    let repo = GitRepo::local().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("a private app").unwrap();
    let server = GitHttpServer::start().unwrap();
    let url = server.serve("team/private", &repo).unwrap();
    let team_prefix = format!("http://127.0.0.1:{}/team/", server.port());
    fleet.create_open_project("team-a").await.unwrap();
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: private\nspec:\n  project: team-a\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: app\n  destination:\n    name: cluster-1\n    namespace: private\n  syncPolicy:\n    automated:\n      prune: true\n    syncOptions:\n    - CreateNamespace=true\n"
    );
    let applied = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        applied.results.iter().all(|r| r.action != "refused"),
        "{:?}",
        applied.results
    );

    // Without a credential the spoke cannot read it, and says so.
    let message = wait_for("the auth error of team-a/private", async || {
        let status = app(&fleet, "team-a", "private").await?.status?;
        status
            .conditions
            .iter()
            .find(|c| c.message.contains("authentication"))
            .map(|c| c.message.clone())
    })
    .await;
    assert!(
        message.contains(&format!("authentication to repository {url} failed")),
        "{message}"
    );
    assert!(
        configmap(&fleet, "cluster-1", "private", "first")
            .await
            .is_none()
    );

    // The credential for project team-a: the app syncs.
    set_credential(&fleet, &team_prefix, "team-a").await;
    wait_for("team-a/private Synced and Healthy", async || {
        let status = app(&fleet, "team-a", "private").await?.status?;
        (status.sync?.status == v1::SyncStatusCode::Synced as i32
            && status.health?.status == v1::HealthStatusCode::Healthy as i32)
            .then_some(())
    })
    .await;
    wait_for("ConfigMap private/first in cluster-1", async || {
        configmap(&fleet, "cluster-1", "private", "first").await
    })
    .await;
    let at_one = kept(&fleet, "cluster-1").await.unwrap();
    let entry = at_one
        .iter()
        .find(|c| c.url_prefix.starts_with(team_prefix.trim_end_matches('/')))
        .expect("cluster-1 keeps the team-a credential");
    assert_eq!(entry.username, HTTP_USER);
    assert_eq!(entry.password, HTTP_PASSWORD);

    // cluster-2 (only project default) never gets it: once it holds a set computed after the
    // team-a credential existed (with a credential for default), that set lacks team-a's.
    set_credential(&fleet, DEFAULT_ONLY, "default").await;
    wait_kept(&fleet, "cluster-2", "the default credential", |p| {
        p.iter()
            .any(|p| p.starts_with("https://git.example.invalid/"))
    })
    .await;
    let at_two = kept(&fleet, "cluster-2").await.unwrap();
    assert_eq!(at_two.len(), 1, "{:?}", prefixes(&at_two));
    assert!(
        at_two.iter().all(|c| !c.url_prefix.contains("127.0.0.1")),
        "{:?}",
        prefixes(&at_two)
    );
    wait_kept(&fleet, "cluster-1", "both credentials", |p| p.len() == 2).await;

    // Deleting it at the hub removes it at the spoke.
    fleet
        .client()
        .delete_repository_credential(v1::DeleteRepositoryCredentialRequest {
            url_prefix: team_prefix.clone(),
        })
        .await
        .unwrap();
    wait_kept(&fleet, "cluster-1", "team-a's credential gone", |p| {
        p.len() == 1 && !p.iter().any(|p| p.contains("127.0.0.1"))
    })
    .await;

    // Set again, then the spoke restarts while the hub is unreachable, with an empty git cache:
    // it pulls a new commit of the private repository with the credentials kept in its Secret.
    set_credential(&fleet, &team_prefix, "team-a").await;
    wait_kept(&fleet, "cluster-1", "team-a's credential back", |p| {
        p.iter().any(|p| p.contains("127.0.0.1"))
    })
    .await;
    fleet.stop_spoke("cluster-1").await.unwrap();
    repo.write(
        "app/second.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\ndata:\n  k: v\n",
    )
    .unwrap();
    repo.commit("a second ConfigMap").unwrap();
    let unreachable = edgecd_testkit::net::free_port().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let kubeconfig = fleet.dir().join("kubeconfigs").join("cluster-1.kubeconfig");
    let flags = SpokeFlags::try_parse_from([
        "edgecd-spoke".to_owned(),
        "--cluster-name".into(),
        "cluster-1".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--state-namespace".into(),
        STATE_NS.into(),
        "--poll-interval".into(),
        "2s".into(),
        "--cache-dir".into(),
        cache.path().display().to_string(),
        "--admin-addr".into(),
        "127.0.0.1:0".into(),
        "--hub-address".into(),
        format!("https://127.0.0.1:{unreachable}"),
    ])
    .unwrap();
    let (config, _, _) = flags.run.into_config().unwrap();
    let runtime = Runtime::start(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(runtime.run_until(async move {
        let _ = stopped.await;
    }));
    wait_for(
        "ConfigMap private/second from the restarted spoke",
        async || configmap(&fleet, "cluster-1", "private", "second").await,
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(kube(&fleet, "cluster-1").await, STATE_NS);
    assert!(
        secrets
            .get_opt(HUB_CREDENTIALS_SECRET)
            .await
            .unwrap()
            .is_some()
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    fleet.shutdown().await;
}
