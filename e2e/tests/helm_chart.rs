//! The spoke's Helm chart (`charts/edgecd-spoke`) under real Helm v4 (`scripts/helm-build`, or `EDGECD_HELM_BIN`): `helm lint --strict`, `helm template` compared byte for byte with the golden renders in `charts/edgecd-spoke/tests/golden/` (`EDGECD_UPDATE_GOLDEN=1` rewrites them), `helm install --wait` and `helm upgrade --wait` into a real API server (testkit's `RealCluster`), and the real `edgecd-spoke` binary, started exactly as the installed Deployment's container says (`edgecd_e2e::pod`: args, env, volumes, ports; the ServiceAccount's token handed over as a kubeconfig), syncing apps with only the chart's ServiceAccount token and RBAC, the default rules and the narrowed ones of `charts/edgecd-spoke/tests/narrow-rbac-values.yaml` (under which the API server refuses a kind outside them as Forbidden for the ServiceAccount).
//!
//! Without `EDGECD_HELM_BIN` and without Go, every test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use edgecd_core::app::{
    ApplicationSource, ApplicationSpec, ApplicationStatus, AutomatedSync, Destination, SyncPolicy,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_e2e::images;
use edgecd_e2e::pod::{self, ContainerProcess, Pod};
use edgecd_spoke::crd::Application;
use edgecd_testkit::{GitRepo, RealCluster, helm};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/edgecd-spoke");
/// The release, its namespace (also the spoke's state namespace) and hence
/// the ServiceAccount's name (the release name contains the chart's).
const RELEASE: &str = "edgecd-spoke";
const RELEASE_NS: &str = "edgecd-system";
const APP_NS: &str = "helm-demo";

/// One golden render: `helm template RELEASE CHART -n NAMESPACE --set ...`.
struct Golden {
    file: &'static str,
    release: &'static str,
    namespace: &'static str,
    sets: &'static [&'static str],
}

const GOLDEN: &[Golden] = &[
    Golden {
        file: "default.yaml",
        release: "edgecd-spoke",
        namespace: "edgecd-system",
        sets: &["clusterName=ci-edge-01"],
    },
    Golden {
        file: "hub.yaml",
        release: "edge",
        namespace: "edgecd-agents",
        sets: &[
            "clusterName=par-edge-01",
            "serverUrl=https://par-edge-01.example.com:6443",
            "hub.address=https://hub.example.com:8443",
            "hub.bootstrapToken.existingSecret=edgecd-bootstrap",
            "stateNamespace=edgecd-apps",
            "log.format=text",
            "service.create=false",
            "cache.medium=Memory",
            "image.tag=0.1.0-rc.1",
        ],
    },
];

fn helm_binary() -> Option<PathBuf> {
    helm::binary_or_skip()
}

fn helm(bin: &Path, args: &[&str]) -> String {
    helm::stdout(bin, args)
}

fn with_sets<'a>(mut args: Vec<&'a str>, sets: &[&'a str]) -> Vec<&'a str> {
    for set in sets {
        args.extend(["--set", set]);
    }
    args
}

#[test]
fn the_chart_lints_strictly_and_renders_as_its_golden_files() {
    let Some(bin) = helm_binary() else {
        return;
    };
    let golden_dir = Path::new(CHART).join("tests/golden");
    for golden in GOLDEN {
        let lint = helm(
            &bin,
            &with_sets(vec!["lint", "--strict", CHART], golden.sets),
        );
        assert!(lint.contains("0 chart(s) failed"), "{lint}");

        let rendered = helm(
            &bin,
            &with_sets(
                vec![
                    "template",
                    golden.release,
                    CHART,
                    "--namespace",
                    golden.namespace,
                ],
                golden.sets,
            ),
        );
        helm::check_golden(&golden_dir.join(golden.file), &rendered);
    }
}

/// The spoke started as the installed Deployment's container (`edgecd_e2e::pod`); killed on drop.
struct SpokeProcess(ContainerProcess);

impl SpokeProcess {
    fn log_tail(&self) -> String {
        self.0.log_tail()
    }
}

/// A real control plane with the chart installed (`--wait`: the node
/// simulator starts the spoke's pod, so the Deployment becomes available), or
/// `None` where helm or realkube cannot be had.
async fn installed(extra: &[&str]) -> Option<(PathBuf, RealCluster)> {
    let (helm_bin, real) = helm::binary_and_real_cluster()?;
    let kubeconfig = real.kubeconfig_path().to_str().unwrap().to_owned();
    let start = Instant::now();
    let mut args = vec![
        "install",
        RELEASE,
        CHART,
        "--kubeconfig",
        &kubeconfig,
        "--namespace",
        RELEASE_NS,
        "--create-namespace",
        "--set",
        "clusterName=helm-ci",
        "--wait",
        "--timeout",
        "180s",
    ];
    args.extend(extra);
    let out = helm(&helm_bin, &args);
    eprintln!("helm install --wait took {:?}:\n{out}", start.elapsed());
    assert!(out.contains("STATUS: deployed"), "{out}");
    Some((helm_bin, real))
}

/// A kubeconfig with the API server and CA of `real` and a fresh token of
/// the chart's ServiceAccount (TokenRequest), written into `dir`.
async fn service_account_kubeconfig(real: &RealCluster, dir: &Path) -> PathBuf {
    let admin = real.client().await.unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin, RELEASE_NS);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request(RELEASE, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let admin_config = kube::config::Kubeconfig::read_from(real.kubeconfig_path()).unwrap();
    let cluster = admin_config.clusters[0].cluster.clone().unwrap();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "realkube", "cluster": {
            "server": cluster.server.unwrap(),
            "certificate-authority-data": cluster.certificate_authority_data.unwrap(),
        }}],
        "users": [{"name": "edgecd-spoke", "user": {"token": token}}],
        "contexts": [{"name": "edgecd-spoke", "context": {
            "cluster": "realkube", "user": "edgecd-spoke", "namespace": RELEASE_NS,
        }}],
        "current-context": "edgecd-spoke",
    });
    let path = dir.join("service-account.kubeconfig");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Starts the real spoke (the image's entrypoint) exactly as the installed Deployment's container says: its
/// args and env (the cluster name, state namespace, poll interval, cache directory and admin address from the
/// chart's values), its volumes as directories, its admin port moved to a free loopback port. The one thing a
/// cluster gives the pod that the test must hand over itself is the ServiceAccount's credentials: `kubeconfig`
/// (the chart's ServiceAccount token) as `KUBECONFIG`, where a pod would find the token mounted.
async fn start_spoke(admin: &kube::Client, kubeconfig: &Path, dir: &Path) -> SpokeProcess {
    let deployment = Api::<Deployment>::namespaced(admin.clone(), RELEASE_NS)
        .get(RELEASE)
        .await
        .unwrap();
    let spec = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        spec.service_account_name.as_deref(),
        Some(RELEASE),
        "the pod runs as the chart's ServiceAccount"
    );
    let (package, bin) = images::entrypoint_binary(images::Image::Spoke).unwrap();
    let bin = edgecd_testkit::binaries::workspace_binary(&package, &bin).unwrap();
    let pod = Pod {
        name: format!("{RELEASE}-6c9f8d7b5-q7x2m"),
        ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    let mut process = pod::start(pod::Start {
        client: admin,
        namespace: RELEASE_NS,
        spec: &spec,
        container: "spoke",
        pod: &pod,
        dir,
        binary: &bin,
        extra_env: vec![("KUBECONFIG".to_owned(), kubeconfig.display().to_string())],
    })
    .await;
    process.wait_ready(Duration::from_secs(90)).await;
    SpokeProcess(process)
}

fn app(name: &str, repo: &GitRepo, path: &str) -> Application {
    let spec = ApplicationSpec {
        project: "default".into(),
        source: ApplicationSource {
            repo_url: repo.url().to_owned(),
            target_revision: "HEAD".into(),
            path: path.into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            namespace: APP_NS.into(),
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
    Application::new(name, RELEASE_NS, spec)
}

/// Polls the app's status until `done` holds; on timeout fails with the
/// last status and the spoke's log.
async fn wait_for_app(
    apps: &Api<Application>,
    name: &str,
    what: &str,
    spoke: &mut SpokeProcess,
    done: impl Fn(&ApplicationStatus) -> bool,
) -> ApplicationStatus {
    let timeout = Duration::from_secs(120);
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < timeout {
        if let Ok(Some(status)) = spoke.0.child.try_wait() {
            panic!(
                "edgecd-spoke exited ({status}) while waiting for {what}:\n{}",
                spoke.log_tail()
            );
        }
        if let Some(status) = apps.get(name).await.ok().and_then(|a| a.status) {
            if done(&status) {
                eprintln!("{name}: {what} after {:?}", start.elapsed());
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "timed out after {timeout:?} waiting for {name} to be {what}; last status {}\nspoke log:\n{}",
        serde_json::to_string_pretty(&last).unwrap(),
        spoke.log_tail()
    );
}

fn synced_and_healthy(status: &ApplicationStatus) -> bool {
    status.sync.status == SyncStatus::Synced && status.health.status == Health::Healthy
}

/// A ConfigMap, a Deployment of two `nginx:1.27` replicas and its Service.
const WEB_YAML: &str = include_str!("../../testdata/web-app/all.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_chart_runs_the_spoke_with_its_own_service_account() {
    let Some((helm_bin, real)) = installed(&[]).await else {
        return;
    };
    let admin = real.client().await.unwrap();

    // What the chart made: its Deployment rolled out (pod started by the
    // node simulator), its ClusterRole, the Application CRDs from crds/.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NS);
    let spoke_deployment = deployments.get(RELEASE).await.unwrap();
    assert_eq!(spoke_deployment.status.unwrap().available_replicas, Some(1));
    Api::<ClusterRole>::all(admin.clone())
        .get(RELEASE)
        .await
        .unwrap();
    Api::<Service>::namespaced(admin.clone(), RELEASE_NS)
        .get("edgecd-spoke-admin")
        .await
        .unwrap();

    // The spoke as the chart's ServiceAccount, not as admin.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = service_account_kubeconfig(&real, dir.path()).await;
    let review = Api::<SelfSubjectReview>::all(client_for(&kubeconfig).await)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    assert_eq!(
        review
            .status
            .unwrap()
            .user_info
            .unwrap()
            .username
            .as_deref(),
        Some("system:serviceaccount:edgecd-system:edgecd-spoke")
    );
    let mut spoke = start_spoke(&admin, &kubeconfig, dir.path()).await;

    let repo = GitRepo::local().unwrap();
    repo.write("web/all.yaml", WEB_YAML).unwrap();
    let head = repo.commit("a plain-YAML app").unwrap();
    let apps: Api<Application> = Api::namespaced(admin.clone(), RELEASE_NS);
    apps.create(&PostParams::default(), &app("web", &repo, "web"))
        .await
        .unwrap();
    let status = wait_for_app(
        &apps,
        "web",
        "Synced and Healthy",
        &mut spoke,
        synced_and_healthy,
    )
    .await;
    assert_eq!(status.sync.revision, head);

    let web = Api::<Deployment>::namespaced(admin.clone(), APP_NS)
        .get("web")
        .await
        .unwrap();
    assert_eq!(web.status.unwrap().ready_replicas, Some(2));
    Api::<Service>::namespaced(admin.clone(), APP_NS)
        .get("web")
        .await
        .unwrap();
    let settings = Api::<ConfigMap>::namespaced(admin.clone(), APP_NS)
        .get("settings")
        .await
        .unwrap();
    assert_eq!(settings.data.unwrap()["greeting"], "hello");
    // Applied by the spoke with the ServiceAccount's token: the API server
    // recorded the spoke's field manager on the object.
    let managers: Vec<String> = settings
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.iter().any(|m| m.contains("edgecd")),
        "{managers:?}"
    );
    drop(spoke);

    // `helm upgrade` with a new setting: the Deployment's pod spec follows (revision 2, rolled out by the node
    // simulator), and a spoke started again after it takes over the cluster as it was: the app stays Synced at
    // the same revision, and nothing is deployed again.
    let kubeconfig_path = real.kubeconfig_path().to_str().unwrap().to_owned();
    let out = helm(
        &helm_bin,
        &[
            "upgrade",
            RELEASE,
            CHART,
            "--kubeconfig",
            &kubeconfig_path,
            "--namespace",
            RELEASE_NS,
            "--reuse-values",
            "--set",
            "log.filter=debug",
            "--wait",
            "--timeout",
            "180s",
        ],
    );
    assert!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 2"),
        "{out}"
    );
    let upgraded = deployments.get(RELEASE).await.unwrap();
    let env = upgraded.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "SPOKE_LOG" && e.value.as_deref() == Some("debug")),
        "{env:?}"
    );
    assert_eq!(upgraded.status.unwrap().available_replicas, Some(1));
    let before = status.history.len();
    let mut spoke = start_spoke(&admin, &kubeconfig, dir.path()).await;
    let after = wait_for_app(
        &apps,
        "web",
        "Synced and Healthy after the restart",
        &mut spoke,
        synced_and_healthy,
    )
    .await;
    assert_eq!(after.sync.revision, head);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let again = apps.get("web").await.unwrap().status.unwrap();
    assert_eq!(
        again.history.len(),
        before,
        "the restarted spoke deployed again: {:?}",
        again.history
    );
    drop(spoke);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_rbac_syncs_the_kinds_it_allows_and_refuses_others_as_forbidden() {
    let values = Path::new(CHART).join("tests/narrow-rbac-values.yaml");
    let values = values.to_str().unwrap().to_owned();
    let Some((_helm, real)) = installed(&["--values", &values]).await else {
        return;
    };
    let admin = real.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = service_account_kubeconfig(&real, dir.path()).await;
    let mut spoke = start_spoke(&admin, &kubeconfig, dir.path()).await;

    let repo = GitRepo::local().unwrap();
    repo.write(
        "allowed/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n",
    )
    .unwrap();
    repo.write(
        "outside/account.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: outsider\n",
    )
    .unwrap();
    repo.commit("one app within the rules, one outside")
        .unwrap();
    let apps: Api<Application> = Api::namespaced(admin.clone(), RELEASE_NS);

    // Within the narrowed rules (the list in docs/spoke.md): synced.
    apps.create(&PostParams::default(), &app("allowed", &repo, "allowed"))
        .await
        .unwrap();
    wait_for_app(
        &apps,
        "allowed",
        "Synced and Healthy",
        &mut spoke,
        synced_and_healthy,
    )
    .await;
    Api::<ConfigMap>::namespaced(admin.clone(), APP_NS)
        .get("settings")
        .await
        .unwrap();

    // A ServiceAccount is outside them: the API server refuses the
    // ServiceAccount's token (its user is named in the refusal), the app
    // says so in a ComparisonError, and nothing is created.
    apps.create(&PostParams::default(), &app("outside", &repo, "outside"))
        .await
        .unwrap();
    let refusal = "serviceaccounts \"outsider\" is forbidden: \
                   User \"system:serviceaccount:edgecd-system:edgecd-spoke\" cannot get resource \"serviceaccounts\"";
    let status = wait_for_app(&apps, "outside", "refused", &mut spoke, |status| {
        status
            .conditions
            .iter()
            .any(|c| c.kind == "ComparisonError" && c.message.contains(refusal))
    })
    .await;
    assert_eq!(status.sync.status, SyncStatus::Unknown);
    let outsider = Api::<ServiceAccount>::namespaced(admin.clone(), APP_NS)
        .get_opt("outsider")
        .await
        .unwrap();
    assert!(outsider.is_none(), "the refused ServiceAccount was created");
    drop(spoke);
}
