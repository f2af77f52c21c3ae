//! Spoke enrollment end to end: a hub replica started as `edgecd-hub serve` does (CA sealed in SQLite, TLS), a spoke on the Kubernetes API emulator enrolling with a bootstrap token, keeping its identity in a Secret, reusing it after a restart, connecting over mTLS and renewing its certificate over the live stream without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use edgecd_e2e::emulator::{EmulatorConfig, KubeEmulator};
use edgecd_hub::pki::{MasterKey, PkiConfig};
use edgecd_hub::security::SecuritySettings;
use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{ConnectionKind, NewCluster};
use edgecd_spoke::cluster::LiveCluster;
use edgecd_spoke::git::{CredentialStore, GitCache, GitConfig};
use edgecd_spoke::link::enroll::{
    self, EnrollParams, IDENTITY_SECRET, IdentityManager, IdentitySecret,
};
use edgecd_spoke::link::{self, HubLinkConfig};
use edgecd_spoke::reconcile::{self, Engine, EngineConfig};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::oneshot;

const STATE_NS: &str = "edgecd-system";

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_spoke_enrolls_keeps_its_identity_in_a_secret_connects_over_mtls_and_renews_live() {
    let dir = tempfile::tempdir().unwrap();
    let (master, _) = MasterKey::generate().unwrap();
    let mut security = SecuritySettings::stored(master, vec!["127.0.0.1".into()]);
    // Short certificates, so that renewal (at two thirds) happens during the test.
    security.pki = PkiConfig {
        client_cert_lifetime: Duration::from_secs(6),
        ..PkiConfig::default()
    };
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.security = Some(security);
    let hub = Server::start(config).await.unwrap();
    let store = Arc::clone(hub.store());
    store
        .create_cluster(&NewCluster {
            name: "edge-1".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    let pki = hub.pki().unwrap();
    let token = pki.create_bootstrap_token("edge-1", None).await.unwrap();
    let address = format!("https://127.0.0.1:{}", hub.grpc_addr().port());

    let emulator = KubeEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let client = emulator.client().await.unwrap();
    let cluster = LiveCluster::new(client.clone());
    edgecd_spoke::runtime::install_crd(&cluster).await.unwrap();
    edgecd_spoke::runtime::ensure_namespace(cluster.client(), STATE_NS)
        .await
        .unwrap();

    // First start: enroll and store the identity in the Secret.
    let secret = IdentitySecret::new(client.clone(), STATE_NS);
    let params = EnrollParams {
        hub_address: address.clone(),
        bootstrap_token: token.token.clone(),
        ca_hash: None,
        spoke_version: "0.1.0".into(),
        connect_timeout: Duration::from_secs(5),
    };
    let identity = enroll::ensure_identity(&secret, "edge-1", Some(&params))
        .await
        .unwrap();
    let stored: Secret = Api::namespaced(client.clone(), STATE_NS)
        .get(IDENTITY_SECRET)
        .await
        .unwrap();
    let data = stored.data.unwrap();
    assert_eq!(data["tls.crt"].0, identity.cert_pem.as_bytes());
    assert_eq!(data["ca.crt"].0, identity.ca_pem.as_bytes());
    assert_eq!(data["cluster"].0, b"edge-1");

    // Restart: the stored identity is reused, no token needed (and the
    // token is spent anyway).
    let again = enroll::ensure_identity(&secret, "edge-1", None)
        .await
        .unwrap();
    assert_eq!(again, identity);
    let err = enroll::enroll(&params).await.unwrap_err();
    assert!(err.to_string().contains("was already used"), "{err}");

    // The link over mTLS, with renewal.
    let cache = tempfile::tempdir().unwrap();
    let git = GitCache::new(GitConfig::new(cache.path()), CredentialStore::default()).unwrap();
    let (engine, triggers) = Engine::new(
        cluster,
        git,
        EngineConfig {
            namespace: STATE_NS.into(),
            ..EngineConfig::default()
        },
    );
    let (engine_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(reconcile::run(Arc::clone(&engine), triggers, async move {
        let _ = stopped.await;
    }));
    let manager = IdentityManager::new(identity.clone(), Some(secret.clone()));
    let start_link = |manager: Arc<IdentityManager>| {
        let mut config = HubLinkConfig::new(address.clone(), "edge-1", STATE_NS);
        config.capabilities = link::with_renewal(&config.capabilities);
        config.identity = Some(manager);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(link::run(config, Arc::clone(&engine), async move {
            let _ = stopped.await;
        }));
        (stop, task)
    };
    let (stop, task) = start_link(Arc::clone(&manager));
    wait_for("edge-1 connected", async || {
        let c = store.get_cluster("edge-1").await.ok()?;
        (c.connection.state == ConnectionKind::Connected).then_some(())
    })
    .await;

    // Renewed over the live stream; the manager and the Secret hold the new
    // certificate without any restart.
    let renewed = wait_for("a renewed certificate", async || {
        let current = manager.current();
        (current.cert_pem != identity.cert_pem).then_some(current)
    })
    .await;
    assert_ne!(renewed.key_pem, identity.key_pem, "a fresh key per renewal");
    let on_disk = secret.load().await.unwrap().unwrap();
    assert_eq!(on_disk.cluster, "edge-1");
    assert!(on_disk.key_matches().unwrap());
    assert_ne!(on_disk.cert_pem, identity.cert_pem);
    let certs = pki.security().list_certificates("edge-1").await.unwrap();
    assert!(certs.len() >= 2, "{certs:?}");

    // The next connection uses the current certificate: the hub records
    // the expiry of the certificate each stream was opened with.
    let (_, first_expiry) = identity.validity().unwrap();
    let _ = stop.send(());
    let _ = task.await;
    let (stop, task) = start_link(Arc::clone(&manager));
    wait_for("a connection with a renewed certificate", async || {
        let c = store.get_cluster("edge-1").await.ok()?;
        (c.connection.state == ConnectionKind::Connected
            && c.certificate_not_after.is_some_and(|at| at > first_expiry))
        .then_some(())
    })
    .await;
    let _ = stop.send(());
    let _ = task.await;
    drop(engine_stop);
}
