//! A spoke whose certificate expired while it was offline gets back in through the hub's renewal grace (`RenewCertificate`, no new bootstrap token), over real TLS on TCP with the spoke's own enrollment and TLS code; a certificate expired beyond the grace, a revoked, unknown or foreign one, and a CSR for another key never renew.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_hub::link::{DEFAULT_RENEW_GRACE, LinkConfig, SpokeLink};
use edgecd_hub::pki::{CaSource, HubCa, MasterKey, Pki, PkiConfig};
use edgecd_hub::store::security::CertificateRecord;
use edgecd_hub::store::{NewCluster, SecurityStore, SqliteStore, Store};
use edgecd_proto::v1::RenewCertificateRequest;
use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_spoke::link::enroll::{self, EnrollError, EnrollParams, IdentityManager, RenewParams};
use edgecd_spoke::link::tls::{self, SpokeIdentity};
use edgecd_spoke::link::{HelloParams, LinkError, LinkSession, handshake};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

// --- fixtures ---

struct Hub {
    addr: SocketAddr,
    pki: Arc<Pki>,
    fleet: Arc<dyn Store>,
    security: Arc<dyn SecurityStore>,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn address(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn renew_params(&self) -> RenewParams {
        RenewParams {
            hub_address: self.address(),
            spoke_version: "0.1.0".into(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A hub on SQLite issuing certificates of `lifetime`, with the default renewal grace.
async fn start_hub(lifetime: Duration) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let (master, _) = MasterKey::generate().unwrap();
    let pki = Arc::new(
        Pki::open(
            store.clone(),
            store.clone(),
            CaSource::Store(&master),
            PkiConfig {
                client_cert_lifetime: lifetime,
                ..PkiConfig::default()
            },
        )
        .await
        .unwrap(),
    );
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        ..LinkConfig::default()
    };
    assert_eq!(config.renew_grace, DEFAULT_RENEW_GRACE);
    let link = SpokeLink::new(config, store.clone()).with_pki(pki.clone());
    link.spawn_router();
    link.spawn_watch();
    let tls = pki
        .server_tls_config(&["localhost".into(), "127.0.0.1".into()])
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    Hub {
        addr,
        pki,
        fleet: store.clone(),
        security: store,
        _dir: dir,
    }
}

async fn register(hub: &Hub, name: &str) {
    hub.fleet
        .create_cluster(&NewCluster {
            name: name.into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
}

fn enroll_params(hub: &Hub, token: &str) -> EnrollParams {
    EnrollParams {
        hub_address: hub.address(),
        bootstrap_token: token.into(),
        ca_hash: None,
        spoke_version: "0.1.0".into(),
        connect_timeout: Duration::from_secs(5),
    }
}

/// Registers `name`, makes a token and enrolls with the spoke's own code; returns the identity and the
/// (now spent) token.
async fn enrolled(hub: &Hub, name: &str) -> (SpokeIdentity, String) {
    register(hub, name).await;
    let token = hub.pki.create_bootstrap_token(name, None).await.unwrap();
    let identity = enroll::enroll(&enroll_params(hub, &token.token))
        .await
        .unwrap();
    (identity, token.token)
}

fn hello(cluster: &str, epoch: &str) -> HelloParams {
    HelloParams {
        cluster_name: cluster.into(),
        spoke_version: "0.1.0".into(),
        protocol: ProtocolVersion { major: 1, minor: 0 },
        capabilities: Capabilities::all_v1(),
        kubernetes_version: "v1.33.0".into(),
        server_url: String::new(),
        epoch: epoch.into(),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    }
}

async fn connect_as(hub: &Hub, identity: &SpokeIdentity) -> Result<LinkSession, LinkError> {
    let config = tls::mtls_config(identity).unwrap();
    let channel = tls::channel(&hub.address(), config, Duration::from_secs(5))
        .await
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    handshake(channel, &hello(&identity.cluster, "e1")).await
}

/// A certificate for a fresh key signed by `ca` for `cluster`, valid from `not_before` to `not_after`;
/// the identity trusts the real hub CA (`hub_ca_pem`), as an attacker would.
fn certificate_from(
    ca: &HubCa,
    hub_ca_pem: &str,
    cluster: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> (SpokeIdentity, CertificateRecord) {
    let (key_pem, csr) = enroll::new_key_and_csr().unwrap();
    let issued = ca
        .sign_client(&csr, cluster, not_before, not_after)
        .unwrap();
    (
        SpokeIdentity {
            cluster: cluster.into(),
            key_pem,
            cert_pem: issued.pem,
            ca_pem: hub_ca_pem.into(),
        },
        CertificateRecord {
            serial: issued.serial,
            cluster: cluster.into(),
            not_before,
            not_after,
            issued_at: not_before,
            revoked_at: None,
        },
    )
}

/// A certificate the hub issued (and recorded) for `cluster` that expired `ago`.
async fn expired_certificate(hub: &Hub, cluster: &str, ago: time::Duration) -> SpokeIdentity {
    let not_after = OffsetDateTime::now_utc() - ago;
    let (identity, record) = certificate_from(
        hub.pki.ca(),
        hub.pki.ca_pem(),
        cluster,
        not_after - time::Duration::hours(24),
        not_after,
    );
    hub.security.record_certificate(&record).await.unwrap();
    identity
}

fn refusal(error: &EnrollError) -> String {
    match error {
        EnrollError::RenewalRefused(message) => message.clone(),
        other => panic!("expected a refusal, got {other}"),
    }
}

async fn audited_renewals(hub: &Hub) -> Vec<(String, String, String)> {
    hub.fleet
        .list_audit(100, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.action == "RenewCertificate")
        .map(|e| (e.actor, e.result, e.message))
        .collect()
}

// --- the way back ---

/// Regression (issue 17, finding 7): a spoke offline longer than its certificate's life was locked out
/// until a new bootstrap token. Now the expired certificate renews through the grace, without a token,
/// and only then opens the stream.
#[tokio::test]
async fn an_expired_certificate_renews_through_the_grace_without_a_new_token() {
    let hub = start_hub(Duration::from_secs(2)).await;
    let (identity, spent_token) = enrolled(&hub, "edge-1").await;
    let (_, not_after) = identity.validity().unwrap();
    tokio::time::sleep(
        Duration::try_from(not_after - OffsetDateTime::now_utc()).unwrap_or_default()
            + Duration::from_millis(1500),
    )
    .await;
    // Expired: the stream refuses it, and the spent token cannot enroll again.
    assert!(connect_as(&hub, &identity).await.is_err());
    let again = enroll::enroll(&enroll_params(&hub, &spent_token))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already used"), "{again}");

    // The link's step before connecting: the expired certificate is renewed, memory only here.
    let manager = IdentityManager::new(identity.clone(), None);
    assert!(
        manager
            .renew_before_connect(&hub.renew_params())
            .await
            .unwrap()
    );
    let renewed = manager.current();
    assert_eq!(renewed.cluster, "edge-1");
    assert_eq!(
        renewed.key_pem, identity.key_pem,
        "same key: the CSR proved it"
    );
    assert_ne!(renewed.cert_pem, identity.cert_pem);
    assert!(renewed.validity().unwrap().1 > OffsetDateTime::now_utc());
    let session = connect_as(&hub, &renewed).await.unwrap();
    assert_eq!(session.negotiated.cluster_name, "edge-1");
    drop(session);

    // A certificate that is still fresh is not renewed before connecting.
    let fresh_hub = start_hub(Duration::from_secs(3600)).await;
    let (fresh, _) = enrolled(&fresh_hub, "edge-2").await;
    let manager = IdentityManager::new(fresh.clone(), None);
    assert!(
        !manager
            .renew_before_connect(&fresh_hub.renew_params())
            .await
            .unwrap()
    );
    assert_eq!(manager.current(), fresh);

    let audit = audited_renewals(&hub).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].1, "ok");
    assert!(audit[0].0.starts_with("certificate:"), "{audit:?}");
}

#[tokio::test]
async fn a_certificate_expired_within_the_grace_renews_and_beyond_it_is_refused() {
    let hub = start_hub(Duration::from_secs(24 * 3600)).await;
    register(&hub, "edge-1").await;
    // Expired six days ago (grace: seven): renewed, for 24 h from now.
    let recent = expired_certificate(&hub, "edge-1", time::Duration::days(6)).await;
    assert!(connect_as(&hub, &recent).await.is_err());
    let renewed = enroll::renew_certificate(&hub.renew_params(), &recent)
        .await
        .unwrap();
    let (_, not_after) = renewed.validity().unwrap();
    assert!(not_after > OffsetDateTime::now_utc() + time::Duration::hours(23));
    connect_as(&hub, &renewed).await.unwrap();

    // Expired eight days ago: refused, the spoke needs a new bootstrap token.
    let old = expired_certificate(&hub, "edge-1", time::Duration::days(8)).await;
    let error = enroll::renew_certificate(&hub.renew_params(), &old)
        .await
        .unwrap_err();
    let message = refusal(&error);
    assert!(
        message.contains("more than the renewal grace of 604800s ago")
            && message.contains("new bootstrap token"),
        "{message}"
    );
}

#[tokio::test]
async fn a_revoked_or_unknown_certificate_never_renews() {
    let hub = start_hub(Duration::from_secs(24 * 3600)).await;
    register(&hub, "edge-1").await;
    let expired = expired_certificate(&hub, "edge-1", time::Duration::hours(1)).await;
    hub.pki.revoke_cluster("edge-1").await.unwrap();
    let message = refusal(
        &enroll::renew_certificate(&hub.renew_params(), &expired)
            .await
            .unwrap_err(),
    );
    assert!(message.contains("has been revoked"), "{message}");

    // Signed by the hub's own CA but never issued (not recorded) by this hub.
    register(&hub, "edge-2").await;
    let now = OffsetDateTime::now_utc();
    let (unknown, record) = certificate_from(
        hub.pki.ca(),
        hub.pki.ca_pem(),
        "edge-2",
        now - time::Duration::hours(25),
        now - time::Duration::hours(1),
    );
    let message = refusal(
        &enroll::renew_certificate(&hub.renew_params(), &unknown)
            .await
            .unwrap_err(),
    );
    assert!(
        message.contains(&format!(
            "certificate {} of cluster edge-2 was not issued by this hub",
            record.serial
        )),
        "{message}"
    );
    assert!(
        hub.security
            .list_certificates("edge-2")
            .await
            .unwrap()
            .is_empty()
    );
    let audit = audited_renewals(&hub).await;
    assert_eq!(audit.len(), 2);
    assert!(
        audit.iter().all(|(_, result, _)| result == "refused"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_certificate_from_a_foreign_ca_never_renews() {
    let hub = start_hub(Duration::from_secs(24 * 3600)).await;
    register(&hub, "edge-1").await;
    let foreign = HubCa::generate("edgecd hub CA").unwrap();
    let now = OffsetDateTime::now_utc();
    // Same name and shape, recorded under its serial as if the hub had issued it: the signature decides.
    let (forged, record) = certificate_from(
        &foreign,
        hub.pki.ca_pem(),
        "edge-1",
        now - time::Duration::hours(25),
        now - time::Duration::hours(1),
    );
    hub.security.record_certificate(&record).await.unwrap();
    let error = enroll::renew_certificate(&hub.renew_params(), &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EnrollError::RenewalRefused(m) if m.contains("not issued by this hub's CA")),
        "{error}"
    );
    assert_eq!(
        hub.security
            .list_certificates("edge-1")
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Holding an (expired) certificate without its key is not enough: the CSR must be signed by the
/// certificate's key.
#[tokio::test]
async fn a_csr_for_another_key_is_refused() {
    let hub = start_hub(Duration::from_secs(24 * 3600)).await;
    register(&hub, "edge-1").await;
    let stolen = expired_certificate(&hub, "edge-1", time::Duration::hours(1)).await;
    let (_, other_csr) = enroll::new_key_and_csr().unwrap();
    let channel = tls::channel(
        &hub.address(),
        tls::server_auth_config(&stolen).unwrap(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let status = SpokeServiceClient::new(channel)
        .renew_certificate(RenewCertificateRequest {
            certificate_pem: stolen.cert_pem.clone(),
            csr_pem: other_csr,
            spoke_version: "0.1.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("the CSR is not for the key of the presented certificate"),
        "{}",
        status.message()
    );
    assert_eq!(
        hub.security
            .list_certificates("edge-1")
            .await
            .unwrap()
            .len(),
        1
    );
}
