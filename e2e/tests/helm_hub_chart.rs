//! The hub's Helm chart (`charts/edgecd-hub`) under real Helm v4: `helm lint --strict`, golden renders (`charts/edgecd-hub/tests/golden/`, `EDGECD_UPDATE_GOLDEN=1` rewrites them), the values schemas of both charts refusing wrong values, and `helm install` into a real API server (testkit's `RealCluster`) after which the real `edgecd-hub` binary is started with exactly the installed Deployment's container args and env (Secrets read back from the API server, downward-API fields played with loopback values, mounted Secrets written to a temp dir), on SQLite and on PostgreSQL, and must answer `/ready`, `GetServerInfo` and the admin's login.
//!
//! Without `EDGECD_HELM_BIN` and without Go, every test says SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use edgecd_e2e::images;
use edgecd_e2e::pod::{self, ContainerProcess, Pod};
use edgecd_hub::pki::MasterKey;
use edgecd_hub::store::{PgStore, Store as _};
use edgecd_proto::client::{Client, ClientConfig, Tls};
use edgecd_testkit::{PgServer, RealCluster, helm};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Secret, Service,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ObjectMeta, PostParams};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/edgecd-hub");
const SPOKE_CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/edgecd-spoke");
/// The Secrets both installs name (the PostgreSQL one also names `DB_SECRET` and `CA_SECRET`).
const MASTER_KEY_SECRET: &str = "edgecd-hub-master-key";
const ADMIN_SECRET: &str = "edgecd-hub-admin";
const DB_SECRET: &str = "edgecd-hub-db";
const CA_SECRET: &str = "edgecd-hub-ca";
const ADMIN_PASSWORD: &str = "chart-admin-password-7";

/// One golden render: `helm template RELEASE CHART -n NAMESPACE -f VALUES... --set ...`.
struct Golden {
    file: &'static str,
    release: &'static str,
    namespace: &'static str,
    /// Values files, relative to the chart.
    values: &'static [&'static str],
    sets: &'static [&'static str],
}

/// The SQLite release: the chart's defaults with the two Secrets named.
const SQLITE_SETS: &[&str] = &[
    "masterKey.existingSecret=edgecd-hub-master-key",
    "adminPassword.existingSecret=edgecd-hub-admin",
];

const GOLDEN: &[Golden] = &[
    Golden {
        file: "default.yaml",
        release: "edgecd-hub",
        namespace: "edgecd-hub",
        values: &[],
        sets: SQLITE_SETS,
    },
    Golden {
        file: "postgres.yaml",
        release: "hub",
        namespace: "fleet",
        values: &["tests/postgres-values.yaml"],
        // Not installed below: the real API server has no ServiceMonitor CRD.
        sets: &["serviceMonitor.enabled=true"],
    },
];

fn helm_binary() -> Option<PathBuf> {
    helm::binary_or_skip()
}

fn run_helm(bin: &Path, args: &[&str]) -> std::process::Output {
    helm::run(bin, args).unwrap()
}

fn helm(bin: &Path, args: &[&str]) -> String {
    helm::stdout(bin, args)
}

/// `args`, then `--values CHART/FILE` for each file and `--set S` for each set.
fn with_values(mut args: Vec<String>, values: &[&str], sets: &[&str]) -> Vec<String> {
    for file in values {
        args.extend(["--values".into(), format!("{CHART}/{file}")]);
    }
    for set in sets {
        args.extend(["--set".into(), (*set).to_owned()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn the_chart_lints_strictly_and_renders_as_its_golden_files() {
    let Some(bin) = helm_binary() else {
        return;
    };
    let golden_dir = Path::new(CHART).join("tests/golden");
    for golden in GOLDEN {
        let lint = with_values(
            vec!["lint".into(), "--strict".into(), CHART.into()],
            golden.values,
            golden.sets,
        );
        let lint = helm(&bin, &strs(&lint));
        assert!(lint.contains("0 chart(s) failed"), "{lint}");

        let template = with_values(
            vec![
                "template".into(),
                golden.release.into(),
                CHART.into(),
                "--namespace".into(),
                golden.namespace.into(),
            ],
            golden.values,
            golden.sets,
        );
        let rendered = helm(&bin, &strs(&template));
        helm::check_golden(&golden_dir.join(golden.file), &rendered);
    }
}

/// Values that `helm template` must refuse: (chart, sets, what the refusal says).
const REFUSED: &[(&str, &[&str], &str)] = &[
    // The hub's values.schema.json.
    (
        CHART,
        &["masterKey.existingSecret=k", "replicaCount=three"],
        "at '/replicaCount': got string, want integer",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "grpc.port=grpc"],
        "at '/grpc/port': got string, want integer",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "ingress.enabled=yes"],
        "at '/ingress/enabled': got string, want boolean",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "database.type=mysql"],
        "at '/database/type'",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "databse.type=postgres"],
        "additional properties 'databse' not allowed",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "rateLimits.loginPerIp=lots"],
        "at '/rateLimits/loginPerIp'",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "appsetInterval=3 minutes"],
        "at '/appsetInterval'",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "link.staleAfter=0"],
        "at '/link/staleAfter'",
    ),
    // The hub's templates: combinations the schema cannot express.
    (
        CHART,
        &["masterKey.existingSecret=k", "replicaCount=3"],
        "replicaCount is 3, but SQLite serves one replica",
    ),
    (
        CHART,
        &["masterKey.existingSecret=k", "database.type=postgres"],
        "database.type=postgres needs database.postgres.existingSecret",
    ),
    (CHART, &[], "masterKey.existingSecret is required"),
    (
        CHART,
        &[
            "masterKey.existingSecret=k",
            "oidc.issuer=https://idp.example.com",
        ],
        "oidc needs all of issuer, clientId and jwksUrl, or none",
    ),
    // The spoke's values.schema.json.
    (
        SPOKE_CHART,
        &["clusterName=ci", "concurrency=many"],
        "at '/concurrency': got string, want integer",
    ),
    (
        SPOKE_CHART,
        &["clusterName=ci", "exec.enabled=sometimes"],
        "at '/exec/enabled': got string, want boolean",
    ),
    (
        SPOKE_CHART,
        &["clusterName=ci", "adminPort=admin"],
        "at '/adminPort': got string, want integer",
    ),
    (SPOKE_CHART, &["clusterName=Edge_01"], "at '/clusterName'"),
    (
        SPOKE_CHART,
        &["clusterName=ci", "hub.adress=https://hub.example.com"],
        "additional properties 'adress' not allowed",
    ),
];

#[test]
fn the_values_schemas_refuse_wrong_values_of_both_charts() {
    let Some(bin) = helm_binary() else {
        return;
    };
    for &(chart, sets, expected) in REFUSED {
        let mut args = vec!["template", "x", chart];
        for set in sets {
            args.extend(["--set", *set]);
        }
        let output = run_helm(&bin, &args);
        let ok = output.status.success();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !ok,
            "helm template {chart} {sets:?} was accepted:\n{output}"
        );
        assert!(
            output.contains(expected),
            "helm template {chart} {sets:?} failed without {expected:?}:\n{output}"
        );
    }
    // The values shipped and those of the tests pass (lint --strict checks the schema too).
    for (chart, values, sets) in [
        (SPOKE_CHART, None, &["clusterName=ci"][..]),
        (
            SPOKE_CHART,
            Some(format!("{SPOKE_CHART}/tests/narrow-rbac-values.yaml")),
            &["clusterName=ci"][..],
        ),
        (CHART, None, SQLITE_SETS),
        (
            CHART,
            Some(format!("{CHART}/tests/postgres-values.yaml")),
            &[][..],
        ),
    ] {
        let mut args = vec!["lint", "--strict", chart];
        if let Some(values) = &values {
            args.extend(["--values", values.as_str()]);
        }
        for set in sets {
            args.extend(["--set", *set]);
        }
        let lint = helm(&bin, &args);
        assert!(lint.contains("0 chart(s) failed"), "{lint}");
    }
}

/// A real control plane, or `None` (with a message) where helm or realkube cannot be had.
fn real_cluster() -> Option<(PathBuf, RealCluster)> {
    helm::binary_and_real_cluster()
}

/// Creates `namespace` and a Secret in it with `data`.
async fn secret(client: &kube::Client, namespace: &str, name: &str, data: &[(&str, &str)]) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        string_data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

async fn namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
}

/// `helm install RELEASE CHART -n NAMESPACE` with `values` and `sets` (no `--wait`: the SQLite claim is
/// never bound, there being no provisioner; the pods are not what is tested).
fn install(bin: &Path, real: &RealCluster, golden: &Golden, sets: &[&str]) {
    release(bin, real, golden, "install", sets);
}

/// `helm VERB RELEASE CHART -n NAMESPACE` (`install` or `upgrade`) with the golden's values and `sets`; returns
/// the release's revision.
fn release(bin: &Path, real: &RealCluster, golden: &Golden, verb: &str, sets: &[&str]) -> u32 {
    let kubeconfig = real.kubeconfig_path().to_str().unwrap().to_owned();
    let args = with_values(
        vec![
            verb.into(),
            golden.release.into(),
            CHART.into(),
            "--kubeconfig".into(),
            kubeconfig,
            "--namespace".into(),
            golden.namespace.into(),
        ],
        golden.values,
        sets,
    );
    let out = helm(bin, &strs(&args));
    assert!(out.contains("STATUS: deployed"), "{out}");
    out.lines()
        .find_map(|line| line.strip_prefix("REVISION: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no revision in:\n{out}"))
}

/// The installed Deployment's pod spec, after checking what every install must have: the security
/// context the chart promises and the probes on `/live` and `/ready`.
async fn installed_pod_spec(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    replicas: i32,
) -> PodSpec {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(replicas));
    assert_eq!(
        spec.strategy.unwrap().type_.as_deref(),
        Some("Recreate"),
        "replicas are upgraded together"
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    let hub = container(&pod);
    let security = hub.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|g| g.path.clone())
    };
    assert_eq!(probe_path(&hub.liveness_probe).as_deref(), Some("/live"));
    assert_eq!(probe_path(&hub.readiness_probe).as_deref(), Some("/ready"));
    let requests = hub.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    pod
}

fn container(pod: &PodSpec) -> &Container {
    pod.containers.iter().find(|c| c.name == "hub").unwrap()
}

/// `edgecd-hub` started as the container of a pod would be (`edgecd_e2e::pod`), with where its ports landed.
struct HubProcess {
    process: ContainerProcess,
    /// Where the ports named `grpc` and `http` ended up (the pod's IP, a free port).
    grpc: SocketAddr,
    http: SocketAddr,
    /// Host directory of each mount path.
    mounts: BTreeMap<String, PathBuf>,
}

impl HubProcess {
    fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

/// Starts the real `edgecd-hub` (the image's entrypoint) as the hub container of `spec` in pod `pod`.
async fn start_as_container(
    client: &kube::Client,
    namespace: &str,
    spec: &PodSpec,
    pod: &Pod,
    dir: &Path,
) -> HubProcess {
    let (package, bin) = images::entrypoint_binary(images::Image::Hub).unwrap();
    let bin = edgecd_testkit::binaries::workspace_binary(&package, &bin).unwrap();
    let process = pod::start(pod::Start {
        client,
        namespace,
        spec,
        container: "hub",
        pod,
        dir,
        binary: &bin,
        extra_env: Vec::new(),
    })
    .await;
    HubProcess {
        grpc: process.port("grpc"),
        http: process.port("http"),
        mounts: process.mounts.clone(),
        process,
    }
}

/// The `Set-Cookie` header of the console's login (`POST /api/v1/login` on the HTTP port) as the admin.
fn console_login_cookie(addr: SocketAddr) -> String {
    let body = format!(r#"{{"username":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Edgecd-Csrf: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    response
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session cookie from the console's login:\n{response}"))
}

/// Waits until the readiness probe's path answers 200 (and the liveness probe's then too).
async fn wait_ready(hub: &mut HubProcess) {
    hub.process.wait_ready(Duration::from_secs(90)).await;
}

/// Accepts any server certificate and keeps the chain it was shown: how an operator reads a generated
/// CA off the hub (`openssl s_client -showcerts`), which the test then verifies properly.
#[derive(Debug)]
struct KeepChain {
    chain: Mutex<Vec<rustls_pki_types::CertificateDer<'static>>>,
    schemes: Vec<rustls::SignatureScheme>,
}

impl rustls::client::danger::ServerCertVerifier for KeepChain {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap();
        chain.push(end_entity.clone().into_owned());
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls_pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.schemes.clone()
    }
}

/// The last certificate of the chain the hub serves on `addr` (its CA), as PEM.
fn served_ca(addr: SocketAddr) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(KeepChain {
        chain: Mutex::new(Vec::new()),
        schemes: provider
            .signature_verification_algorithms
            .supported_schemes(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut socket).unwrap();
    }
    let chain = verifier.chain.lock().unwrap();
    assert!(
        chain.len() >= 2,
        "the hub serves its CA after its certificate"
    );
    let der = base64::engine::general_purpose::STANDARD.encode(chain.last().unwrap());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in der.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Calls the hub's gRPC port as clients do, verifying its certificate against `ca_pem` for each of
/// `names` (None: the address dialled, i.e. the pod's IP): `GetServerInfo` names the pod's replica,
/// and the first admin (created from the password Secret) logs in.
async fn check_api(hub: &HubProcess, pod: &Pod, ca_pem: &str, names: &[Option<String>]) {
    for name in names {
        let mut config =
            ClientConfig::new(format!("https://{}", hub.grpc)).with_tls(Tls::CaPem(ca_pem.into()));
        config.tls_server_name.clone_from(name);
        let client = Client::connect(config).await.unwrap_or_else(|e| {
            panic!(
                "connecting to {} as {name:?}: {e}\n{}",
                hub.grpc,
                hub.log_tail()
            )
        });
        let info = client.get_server_info().await.unwrap();
        assert_eq!(info.replica, pod.name, "{name:?}");
        assert_eq!(info.login_methods, vec!["local"]);
        let session = client
            .login_password("admin", ADMIN_PASSWORD)
            .await
            .unwrap();
        let admin = client
            .with_token(Some(&secrecy::SecretString::from(session.token)))
            .unwrap();
        assert_eq!(admin.who_am_i().await.unwrap().name, "admin");
    }
}

/// The gRPC Service's in-cluster names, which the serving certificate must carry.
fn service_names(service: &str, namespace: &str) -> Vec<Option<String>> {
    vec![
        Some(service.to_owned()),
        Some(format!("{service}.{namespace}.svc")),
        Some(format!("{service}.{namespace}.svc.cluster.local")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_chart_starts_the_real_hub_on_sqlite_and_on_postgresql() {
    let Some((helm_bin, real)) = real_cluster() else {
        return;
    };
    let client = real.client().await.unwrap();
    let (_, master_key) = MasterKey::generate().unwrap();

    // SQLite: the chart's defaults, one replica, a claim for the database.
    let sqlite = &GOLDEN[0];
    let ns = sqlite.namespace;
    namespace(&client, ns).await;
    secret(
        &client,
        ns,
        MASTER_KEY_SECRET,
        &[("master.key", master_key.as_str())],
    )
    .await;
    secret(&client, ns, ADMIN_SECRET, &[("password", ADMIN_PASSWORD)]).await;
    install(&helm_bin, &real, sqlite, sqlite.sets);
    let claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get("edgecd-hub-data")
        .await
        .unwrap();
    assert_eq!(
        claim.metadata.annotations.unwrap()["helm.sh/resource-policy"],
        "keep"
    );
    for service in ["edgecd-hub-grpc", "edgecd-hub-http"] {
        Api::<Service>::namespaced(client.clone(), ns)
            .get(service)
            .await
            .unwrap();
    }
    let spec = installed_pod_spec(&client, ns, "edgecd-hub", 1).await;
    let env_names: Vec<&str> = container(&spec)
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        !env_names.contains(&"EDGECD_HUB_PEER_HOST"),
        "one replica relays to nobody"
    );
    let dir = tempfile::tempdir().unwrap();
    let pod = Pod {
        name: "edgecd-hub-5d9c7b8f6-x2k4q".into(),
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let mut hub = start_as_container(&client, ns, &spec, &pod, dir.path()).await;
    wait_ready(&mut hub).await;
    // The database is on the claim's volume.
    assert!(hub.mounts["/var/lib/edgecd-hub"].join("hub.db").exists());
    let grpc = hub.grpc;
    let ca = tokio::task::spawn_blocking(move || served_ca(grpc))
        .await
        .unwrap();
    let mut names = service_names("edgecd-hub-grpc", ns);
    names.extend([None, Some("localhost".into())]);
    check_api(&hub, &pod, &ca, &names).await;
    // No Ingress with TLS: the console is plain HTTP, its cookie not marked Secure.
    let http = hub.http;
    let cookie = tokio::task::spawn_blocking(move || console_login_cookie(http))
        .await
        .unwrap();
    assert!(cookie.starts_with("edgecd_session="), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    drop(hub);

    // `helm upgrade` with new settings, and the first step of a master-key rotation (docs/operations.md): the
    // Deployment's pod spec follows, the claim and the database on it stay (the hub started from the new spec on
    // the same volume serves the same CA, which lives in the database, sealed again with the new key).
    let (_, new_master_key) = MasterKey::generate().unwrap();
    secret(
        &client,
        ns,
        "edgecd-hub-master-key-2",
        &[("master.key", new_master_key.as_str())],
    )
    .await;
    let mut upgraded_sets = sqlite.sets.to_vec();
    upgraded_sets.extend([
        "log.filter=debug",
        "http.secureCookies=true",
        "masterKey.existingSecret=edgecd-hub-master-key-2",
        "masterKey.previousExistingSecret=edgecd-hub-master-key",
    ]);
    assert_eq!(
        release(&helm_bin, &real, sqlite, "upgrade", &upgraded_sets),
        2
    );
    let spec = installed_pod_spec(&client, ns, "edgecd-hub", 1).await;
    let env_value = |name: &str| {
        container(&spec)
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(env_value("EDGECD_HUB_LOG").as_deref(), Some("debug"));
    assert_eq!(
        env_value("EDGECD_HUB_CONSOLE_SECURE_COOKIES").as_deref(),
        Some("true")
    );
    let mut hub = start_as_container(&client, ns, &spec, &pod, dir.path()).await;
    wait_ready(&mut hub).await;
    let grpc = hub.grpc;
    let ca_after = tokio::task::spawn_blocking(move || served_ca(grpc))
        .await
        .unwrap();
    assert_eq!(ca_after, ca, "the upgraded hub opened another database");
    check_api(&hub, &pod, &ca, &names).await;
    let http = hub.http;
    let cookie = tokio::task::spawn_blocking(move || console_login_cookie(http))
        .await
        .unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    drop(hub);

    // The rotation's second step: the previous key dropped. The new key alone opens the fleet's CA.
    upgraded_sets.retain(|set| !set.starts_with("masterKey.previousExistingSecret"));
    upgraded_sets.push("masterKey.previousExistingSecret=");
    assert_eq!(
        release(&helm_bin, &real, sqlite, "upgrade", &upgraded_sets),
        3
    );
    let spec = installed_pod_spec(&client, ns, "edgecd-hub", 1).await;
    assert!(
        !container(&spec)
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "EDGECD_HUB_PREVIOUS_MASTER_KEY_FILE")
    );
    let mut hub = start_as_container(&client, ns, &spec, &pod, dir.path()).await;
    wait_ready(&mut hub).await;
    let grpc = hub.grpc;
    let ca_rotated = tokio::task::spawn_blocking(move || served_ca(grpc))
        .await
        .unwrap();
    assert_eq!(ca_rotated, ca, "the CA changed with the master key");
    drop(hub);

    // PostgreSQL: three replicas, an operator CA, Ingress and NetworkPolicy (tests/postgres-values.yaml).
    // TLS only, its certificate issued by a CA of its own: the hub verifies it with the CA from the ConfigMap.
    let pg = PgServer::start_tls().unwrap();
    let pg_ca_file = pg.tls_ca_file().unwrap().to_owned();
    let url = pg.create_database().unwrap();
    let postgres = &GOLDEN[1];
    let ns = postgres.namespace;
    // An operator CA: the control plane's own (realkube writes a P-256 key in PKCS#8 PEM), as an
    // organisation would bring its CA.
    let ca_cert = std::fs::read_to_string(real.dir().join("data/pki/ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(real.dir().join("data/pki/ca.key")).unwrap();
    namespace(&client, ns).await;
    secret(
        &client,
        ns,
        MASTER_KEY_SECRET,
        &[("master.key", master_key.as_str())],
    )
    .await;
    secret(&client, ns, ADMIN_SECRET, &[("password", ADMIN_PASSWORD)]).await;
    secret(&client, ns, DB_SECRET, &[("url", &url)]).await;
    let pg_ca = std::fs::read_to_string(&pg_ca_file).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("edgecd-hub-postgres-ca".into()),
                    ..ObjectMeta::default()
                },
                data: Some([("ca.crt".to_owned(), pg_ca)].into()),
                ..ConfigMap::default()
            },
        )
        .await
        .unwrap();
    secret(
        &client,
        ns,
        CA_SECRET,
        &[("tls.crt", ca_cert.as_str()), ("tls.key", ca_key.as_str())],
    )
    .await;
    install(&helm_bin, &real, postgres, &[]);
    let full = "hub-edgecd-hub";
    Api::<Ingress>::namespaced(client.clone(), ns)
        .get(&format!("{full}-console"))
        .await
        .unwrap();
    Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .get(full)
        .await
        .unwrap();
    Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
        .get(full)
        .await
        .unwrap();
    let grpc_service = Api::<Service>::namespaced(client.clone(), ns)
        .get(&format!("{full}-grpc"))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(grpc_service.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        grpc_service.external_traffic_policy.as_deref(),
        Some("Local")
    );
    let spec = installed_pod_spec(&client, ns, full, 3).await;
    let hub_container = container(&spec);
    let field = |name: &str| {
        hub_container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.clone())
    };
    assert_eq!(
        field("EDGECD_HUB_PEER_HOST").as_deref(),
        Some("status.podIP")
    );
    assert_eq!(
        field("EDGECD_HUB_REPLICA_ID").as_deref(),
        Some("metadata.name")
    );

    // Two of the replicas, sharing the database, with pod IPs 127.0.0.2 and 127.0.0.3 (127.0.0.1 is named
    // by every certificate of the chart): each registers its pod IP as its peer address, and its
    // certificate names that IP (through $(EDGECD_HUB_PEER_HOST)), the Service and tls.names.
    let store = PgStore::connect_url_with_ca(&url, Some(&pg_ca_file))
        .await
        .unwrap();
    let mut running = Vec::new();
    for (n, name) in [
        "hub-edgecd-hub-7f6d5c4b3-a1b2c",
        "hub-edgecd-hub-7f6d5c4b3-d3e4f",
    ]
    .into_iter()
    .enumerate()
    {
        let pod = Pod {
            name: name.into(),
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(n).unwrap())),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut hub = start_as_container(&client, ns, &spec, &pod, dir.path()).await;
        wait_ready(&mut hub).await;
        let mut names = service_names(&format!("{full}-grpc"), ns);
        names.extend([None, Some("hub.example.com".into())]);
        check_api(&hub, &pod, &ca_cert, &names).await;
        // The console is behind the Ingress with TLS: the chart turns Secure cookies on, and the hub
        // understands the setting.
        let http = hub.http;
        let cookie = tokio::task::spawn_blocking(move || console_login_cookie(http))
            .await
            .unwrap();
        assert!(cookie.ends_with("; Secure"), "{cookie}");
        let expected = format!("https://{}", hub.grpc);
        let start = Instant::now();
        loop {
            let registered = store.replica_address(&pod.name).await.unwrap();
            if registered.as_deref() == Some(expected.as_str()) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} registered {registered:?}, not {expected}",
                pod.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        running.push((hub, dir));
    }
    drop(running);
    drop(pg);
}
