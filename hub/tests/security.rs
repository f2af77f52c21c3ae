//! Attacks on spoke enrollment and the mTLS link, over real TLS on TCP with the spoke's own enrollment and TLS code, on SQLite and on PostgreSQL (two hub replicas sharing one database): each attack fails with a clear error and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_hub::link::{LinkConfig, SpokeLink};
use edgecd_hub::pki::{CaSource, HubCa, MasterKey, Pki, PkiConfig};
use edgecd_hub::store::security::CertificateRecord;
use edgecd_hub::store::{
    CommandOutcome, ConnectionKind, EventFilter, NewCluster, NewCommand, PgStore, SecurityStore,
    SqliteStore, Store,
};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_proto::v1::{
    EventBatch, HubMessage, RenewRequest, SpokeMessage, go_away, hub_message, spoke_message,
};
use edgecd_spoke::link::enroll::{self, EnrollError, EnrollParams, IdentityManager};
use edgecd_spoke::link::tls::{self, SpokeIdentity};
use edgecd_spoke::link::{HelloParams, LinkError, LinkSession, handshake};
use edgecd_testkit::PgServer;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

// --- fixtures ---

fn pg_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start().expect("starting PostgreSQL"))
}

/// Both views of one store.
#[derive(Clone)]
struct Db {
    fleet: Arc<dyn Store>,
    security: Arc<dyn SecurityStore>,
}

async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    Db {
        fleet: store.clone(),
        security: store,
    }
}

async fn pg_db(url: &str) -> Db {
    let store = Arc::new(PgStore::connect_url(url).await.unwrap());
    Db {
        fleet: store.clone(),
        security: store,
    }
}

/// One hub replica: its PKI and link, served over TLS on loopback.
struct Hub {
    addr: SocketAddr,
    pki: Arc<Pki>,
    db: Db,
}

impl Hub {
    fn address(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }
}

async fn start_hub(db: &Db, master: &MasterKey) -> Hub {
    start_hub_with(db, master, PkiConfig::default()).await
}

async fn start_hub_with(db: &Db, master: &MasterKey, pki_config: PkiConfig) -> Hub {
    let pki = Arc::new(
        Pki::open(
            db.fleet.clone(),
            db.security.clone(),
            CaSource::Store(master),
            pki_config,
        )
        .await
        .unwrap(),
    );
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(500),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, db.fleet.clone()).with_pki(pki.clone());
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
        db: db.clone(),
    }
}

async fn register(db: &Db, name: &str) {
    db.fleet
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

/// Registers `name`, makes a token and enrolls with the spoke's own code.
async fn enrolled(hub: &Hub, name: &str) -> SpokeIdentity {
    register(&hub.db, name).await;
    let token = hub.pki.create_bootstrap_token(name, None).await.unwrap();
    enroll::enroll(&enroll_params(hub, &token.token))
        .await
        .unwrap()
}

fn hello(cluster: &str, epoch: &str, next_seq: u64) -> HelloParams {
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
        next_spoke_seq: next_seq,
    }
}

/// Opens the stream with `identity`'s certificate, saying `hello`.
async fn connect_as(
    hub: &Hub,
    identity: &SpokeIdentity,
    hello: &HelloParams,
) -> Result<LinkSession, LinkError> {
    let config = tls::mtls_config(identity).unwrap();
    let channel = tls::channel(&hub.address(), config, Duration::from_secs(5))
        .await
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    handshake(channel, hello).await
}

fn refused_message(error: &LinkError) -> String {
    match error {
        LinkError::Refused(status) => status.message().to_owned(),
        other => other.to_string(),
    }
}

async fn connection(db: &Db, cluster: &str) -> ConnectionKind {
    db.fleet
        .get_cluster(cluster)
        .await
        .unwrap()
        .connection
        .state
}

/// A CSR of a fresh key and a certificate signed for `cluster` by `ca`,
/// valid from `not_before` to `not_after`.
fn certificate_from(
    ca: &HubCa,
    ca_pem: &str,
    cluster: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> (SpokeIdentity, String) {
    let (key_pem, csr) = enroll::new_key_and_csr().unwrap();
    let issued = ca
        .sign_client(&csr, cluster, not_before, not_after)
        .unwrap();
    (
        SpokeIdentity {
            cluster: cluster.into(),
            key_pem,
            cert_pem: issued.pem,
            ca_pem: ca_pem.into(),
        },
        issued.serial,
    )
}

// --- enrollment ---

#[tokio::test]
async fn enrollment_binds_the_certificate_to_the_cluster_and_stores_only_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;
    let token = hub
        .pki
        .create_bootstrap_token("edge-1", None)
        .await
        .unwrap();
    assert!(
        token.token.ends_with(&hub.pki.ca_hash()),
        "the token pins the CA"
    );

    let identity = enroll::enroll(&enroll_params(&hub, &token.token))
        .await
        .unwrap();
    assert_eq!(identity.cluster, "edge-1");
    assert!(identity.key_matches().unwrap());
    let (not_before, not_after) = identity.validity().unwrap();
    let lifetime = not_after - not_before;
    assert!(lifetime <= time::Duration::hours(24) + time::Duration::minutes(5));

    // The stream works with it; the hub takes the name from the certificate.
    let session = connect_as(&hub, &identity, &hello("", "e1", 1))
        .await
        .unwrap();
    assert_eq!(session.negotiated.cluster_name, "edge-1");

    // Only hashes and sealed keys are at rest.
    let store = SqliteStore::open(&dir.path().join("hub.db")).await.unwrap();
    let secret = token.token.split('.').nth(1).unwrap().to_owned();
    let (hash,): (String,) = sqlx::query_as("SELECT secret_hash FROM bootstrap_tokens")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_ne!(hash, secret);
    assert!(!hash.contains(&secret));
    let (sealed,): (String,) = sqlx::query_as("SELECT key_sealed FROM hub_ca")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(!sealed.contains("PRIVATE KEY"));
    let certs = db.security.list_certificates("edge-1").await.unwrap();
    assert_eq!(certs.len(), 1);
    assert!(certs[0].revoked_at.is_none());
}

#[tokio::test]
async fn the_ca_survives_a_restart_and_does_not_open_with_another_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, text) = MasterKey::generate().unwrap();
    let first = start_hub(&db, &master).await;
    let again = MasterKey::from_text(&text, "test").unwrap();
    let second = start_hub(&db, &again).await;
    assert_eq!(first.pki.ca_hash(), second.pki.ca_hash());

    let (wrong, _) = MasterKey::generate().unwrap();
    let err = Pki::open(
        db.fleet.clone(),
        db.security.clone(),
        CaSource::Store(&wrong),
        PkiConfig::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot open sealed hub-ca-key: wrong master key or corrupted data"
    );
}

#[tokio::test]
async fn a_reused_token_fails_on_every_replica() {
    let url = pg_server().create_database().unwrap();
    let (db_a, db_b) = (pg_db(&url).await, pg_db(&url).await);
    let (master, _) = MasterKey::generate().unwrap();
    let (a, b) = (
        start_hub(&db_a, &master).await,
        start_hub(&db_b, &master).await,
    );
    assert_eq!(a.pki.ca_hash(), b.pki.ca_hash(), "replicas share the CA");
    register(&db_a, "edge-1").await;

    let token = a.pki.create_bootstrap_token("edge-1", None).await.unwrap();
    enroll::enroll(&enroll_params(&a, &token.token))
        .await
        .unwrap();
    for hub in [&a, &b] {
        let err = enroll::enroll(&enroll_params(hub, &token.token))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the hub refused enrollment: bootstrap token {} was already used",
                token.id
            )
        );
    }
    assert_eq!(
        db_a.security
            .list_certificates("edge-1")
            .await
            .unwrap()
            .len(),
        1
    );

    // Two replicas racing with one fresh token: exactly one wins.
    let token = a.pki.create_bootstrap_token("edge-1", None).await.unwrap();
    let (pa, pb) = (
        enroll_params(&a, &token.token),
        enroll_params(&b, &token.token),
    );
    let (ra, rb) = tokio::join!(enroll::enroll(&pa), enroll::enroll(&pb));
    assert_eq!(
        usize::from(ra.is_ok()) + usize::from(rb.is_ok()),
        1,
        "{ra:?} {rb:?}"
    );
    let loser = ra.err().or(rb.err()).unwrap();
    assert!(loser.to_string().contains("was already used"), "{loser}");
    assert_eq!(
        db_a.security
            .list_certificates("edge-1")
            .await
            .unwrap()
            .len(),
        2
    );

    // Every attempt is audited under the token id, never its secret.
    let secret = token.token.split('.').nth(1).unwrap().to_owned();
    let audit = db_a.fleet.list_audit(100, None).await.unwrap().items;
    let enrolls: Vec<_> = audit.iter().filter(|e| e.action == "Enroll").collect();
    assert_eq!(enrolls.len(), 5);
    assert_eq!(enrolls.iter().filter(|e| e.result == "ok").count(), 2);
    assert!(
        enrolls
            .iter()
            .all(|e| e.actor.starts_with("bootstrap-token:"))
    );
    assert!(
        audit
            .iter()
            .all(|e| !e.actor.contains(&secret) && !e.message.contains(&secret))
    );
}

#[tokio::test]
async fn an_expired_or_forged_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;

    let expired = hub
        .pki
        .create_bootstrap_token("edge-1", Some(Duration::ZERO))
        .await
        .unwrap();
    let err = enroll::enroll(&enroll_params(&hub, &expired.token))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the hub refused enrollment: bootstrap token {} expired at",
            expired.id
        )),
        "{message}"
    );

    // Right id, wrong secret.
    let good = hub
        .pki
        .create_bootstrap_token("edge-1", None)
        .await
        .unwrap();
    let mut parts: Vec<String> = good.token.split('.').map(str::to_owned).collect();
    parts[1] = "x".repeat(32);
    let forged = parts.join(".");
    let err = enroll::enroll(&enroll_params(&hub, &forged))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the hub refused enrollment: bootstrap token {}: wrong secret",
            good.id
        )
    );
    // Nothing was issued, and the real token still works once.
    assert!(
        db.security
            .list_certificates("edge-1")
            .await
            .unwrap()
            .is_empty()
    );
    enroll::enroll(&enroll_params(&hub, &good.token))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_spoke_refuses_a_hub_that_does_not_hold_the_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;
    let token = hub
        .pki
        .create_bootstrap_token("edge-1", None)
        .await
        .unwrap();
    let impostor_pin = format!("sha256:{}", "0".repeat(64));
    let bare = token.token.rsplit_once('.').unwrap().0.to_owned();
    let mut params = enroll_params(&hub, &bare);
    params.ca_hash = Some(impostor_pin);
    let err = enroll::enroll(&params).await.unwrap_err();
    assert!(matches!(err, EnrollError::Tls(_)), "{err}");
    // The token was never presented to anyone, so it is still unused.
    enroll::enroll(&enroll_params(&hub, &token.token))
        .await
        .unwrap();
}

// --- identity on the stream ---

#[tokio::test]
async fn a_spoke_presenting_another_clusters_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    let identity = enrolled(&hub, "edge-1").await;
    register(&db, "edge-2").await;

    let err = connect_as(&hub, &identity, &hello("edge-2", "e1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        refused_message(&err),
        "the client certificate identifies cluster edge-1 but Hello names cluster edge-2"
    );
    assert_eq!(connection(&db, "edge-2").await, ConnectionKind::Pending);
    assert_eq!(connection(&db, "edge-1").await, ConnectionKind::Pending);
}

#[tokio::test]
async fn a_certificate_from_a_foreign_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    let real = enrolled(&hub, "edge-1").await;

    // Same name, same shape, but signed by another CA; it even trusts the
    // real hub CA so that only the client certificate is wrong.
    let foreign = HubCa::generate("attacker CA").unwrap();
    let now = OffsetDateTime::now_utc();
    let (mut forged, serial) = certificate_from(
        &foreign,
        foreign.cert_pem(),
        "edge-1",
        now,
        now + time::Duration::hours(1),
    );
    forged.ca_pem = real.ca_pem.clone();
    let err = connect_as(&hub, &forged, &hello("edge-1", "e1", 1))
        .await
        .unwrap_err();
    let message = refused_message(&err);
    assert!(!message.is_empty());
    assert!(
        db.security.get_certificate(&serial).await.is_err(),
        "never recorded"
    );
    assert_eq!(connection(&db, "edge-1").await, ConnectionKind::Pending);
    assert_eq!(
        db.fleet.get_link_state("edge-1").await.unwrap().spoke_seq,
        0
    );
}

#[tokio::test]
async fn a_stream_without_a_client_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;
    let config = tls::pinned_config(&hub.pki.ca_hash()).unwrap();
    let channel = tls::channel(&hub.address(), config, Duration::from_secs(5))
        .await
        .unwrap();
    let err = handshake(channel, &hello("edge-1", "e1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        refused_message(&err),
        "no client certificate: the stream needs the spoke's certificate (mTLS)"
    );
    assert_eq!(connection(&db, "edge-1").await, ConnectionKind::Pending);
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;
    // Issued by the real CA and recorded, as it was two days ago.
    let issued_at = OffsetDateTime::now_utc() - time::Duration::days(2);
    let (old, serial) = certificate_from(
        hub.pki.ca(),
        hub.pki.ca_pem(),
        "edge-1",
        issued_at,
        issued_at + time::Duration::hours(24),
    );
    db.security
        .record_certificate(&CertificateRecord {
            serial,
            cluster: "edge-1".into(),
            not_before: issued_at,
            not_after: issued_at + time::Duration::hours(24),
            issued_at,
            revoked_at: None,
        })
        .await
        .unwrap();
    let err = connect_as(&hub, &old, &hello("edge-1", "e1", 1))
        .await
        .unwrap_err();
    assert!(!refused_message(&err).is_empty());
    assert_eq!(connection(&db, "edge-1").await, ConnectionKind::Pending);
    assert_eq!(
        db.fleet.get_link_state("edge-1").await.unwrap().spoke_seq,
        0
    );
}

#[tokio::test]
async fn a_certificate_the_hub_never_issued_is_refused_even_from_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    register(&db, "edge-1").await;
    let now = OffsetDateTime::now_utc();
    let (unknown, serial) = certificate_from(
        hub.pki.ca(),
        hub.pki.ca_pem(),
        "edge-1",
        now,
        now + time::Duration::hours(1),
    );
    let err = connect_as(&hub, &unknown, &hello("edge-1", "e1", 1))
        .await
        .unwrap_err();
    assert_eq!(
        refused_message(&err),
        format!("certificate {serial} of cluster edge-1 was not issued by this hub")
    );
}

// --- revocation ---

/// Reads hub messages until a GoAway or the end of the stream.
async fn until_go_away(session: &mut LinkSession) -> Option<go_away::Reason> {
    loop {
        match session.inbound.message().await {
            Ok(Some(HubMessage {
                body: Some(hub_message::Body::GoAway(go_away)),
                ..
            })) => return Some(go_away.reason()),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn revocation_disconnects_the_live_stream_on_another_replica_and_refuses_the_certificate() {
    let url = pg_server().create_database().unwrap();
    let (db_a, db_b) = (pg_db(&url).await, pg_db(&url).await);
    let (master, _) = MasterKey::generate().unwrap();
    let (a, b) = (
        start_hub(&db_a, &master).await,
        start_hub(&db_b, &master).await,
    );
    let identity = enrolled(&a, "edge-1").await;
    let mut session = connect_as(&a, &identity, &hello("edge-1", "e1", 1))
        .await
        .unwrap();

    // Revoked through replica B; the stream on replica A ends at once.
    b.pki.revoke_cluster("edge-1").await.unwrap();
    assert_eq!(
        until_go_away(&mut session).await,
        Some(go_away::Reason::Revoked)
    );
    for hub in [&a, &b] {
        let err = connect_as(hub, &identity, &hello("edge-1", "e2", 1))
            .await
            .unwrap_err();
        let message = refused_message(&err);
        assert!(
            message.starts_with("certificate ")
                && message.ends_with("of cluster edge-1 has been revoked"),
            "{message}"
        );
    }
    assert_eq!(connection(&db_a, "edge-1").await, ConnectionKind::Revoked);
    // A new token for a revoked cluster is refused too.
    let err = a
        .pki
        .create_bootstrap_token("edge-1", None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "cluster edge-1 has been revoked");
}

#[tokio::test]
async fn removing_a_cluster_refuses_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    let identity = enrolled(&hub, "edge-1").await;
    db.fleet.delete_cluster("edge-1").await.unwrap();
    let err = connect_as(&hub, &identity, &hello("edge-1", "e1", 1))
        .await
        .unwrap_err();
    let message = refused_message(&err);
    assert!(message.ends_with("was not issued by this hub"), "{message}");
}

#[tokio::test]
async fn a_stream_outliving_its_certificate_is_told_to_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let config = PkiConfig {
        client_cert_lifetime: Duration::from_secs(2),
        ..PkiConfig::default()
    };
    let hub = start_hub_with(&db, &master, config).await;
    let identity = enrolled(&hub, "edge-1").await;
    let mut session = connect_as(&hub, &identity, &hello("edge-1", "e1", 1))
        .await
        .unwrap();
    // Heartbeats keep the stream alive; once the certificate has expired
    // the hub ends the stream, and the certificate no longer connects.
    assert_eq!(
        until_go_away(&mut session).await,
        Some(go_away::Reason::Draining)
    );
    let err = connect_as(&hub, &identity, &hello("edge-1", "e2", 1))
        .await
        .unwrap_err();
    assert!(!refused_message(&err).is_empty());
}

// --- rotation ---

fn event_batch(i: u64) -> spoke_message::Body {
    spoke_message::Body::Events(EventBatch {
        events: vec![edgecd_proto::v1::Event {
            id: format!("event-{i}"),
            cluster: "edge-1".into(),
            reason: "Test".into(),
            message: format!("event {i}"),
            time: Some(edgecd_proto::convert::timestamp(OffsetDateTime::now_utc())),
            ..Default::default()
        }],
    })
}

/// Drives one stream: sends `bodies` as sequenced messages from `first_seq`,
/// acknowledges every hub message, and returns the hub messages received
/// until the hub has acknowledged everything and `done` holds.
async fn exchange(
    session: &mut LinkSession,
    first_seq: u64,
    bodies: Vec<spoke_message::Body>,
    done: impl Fn(&[HubMessage]) -> bool,
) -> Vec<HubMessage> {
    let last = first_seq + bodies.len() as u64 - 1;
    for (i, body) in bodies.into_iter().enumerate() {
        session
            .outbound
            .send(SpokeMessage {
                seq: first_seq + i as u64,
                ack: 0,
                body: Some(body),
            })
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    let mut hub_ack = 0;
    while hub_ack < last || !done(&received) {
        let message = session.inbound.message().await.unwrap().unwrap();
        hub_ack = hub_ack.max(message.ack);
        if message.seq > 0 {
            session
                .outbound
                .send(SpokeMessage {
                    seq: 0,
                    ack: message.seq,
                    body: None,
                })
                .await
                .unwrap();
        }
        received.push(message);
    }
    received
}

fn renewals(messages: &[HubMessage]) -> Vec<edgecd_proto::v1::RenewResponse> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            Some(hub_message::Body::Renew(r)) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn commands(messages: &[HubMessage]) -> usize {
    messages
        .iter()
        .filter(|m| matches!(m.body, Some(hub_message::Body::Command(_))))
        .count()
}

#[tokio::test]
async fn certificate_rotation_during_a_live_stream_loses_no_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(&dir).await;
    let (master, _) = MasterKey::generate().unwrap();
    let hub = start_hub(&db, &master).await;
    let first = enrolled(&hub, "edge-1").await;
    let manager = IdentityManager::new(first.clone(), None);
    let mut session = connect_as(&hub, &manager.current(), &hello("edge-1", "e1", 1))
        .await
        .unwrap();
    assert!(session.negotiated.capabilities.contains("cert-renewal.v1"));

    // Commands issued at the hub while the rotation happens.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let record = db
            .fleet
            .enqueue_command(&NewCommand {
                id: None,
                project: "default".into(),
                app: "web".into(),
                cluster: "edge-1".into(),
                kind: "refresh".into(),
                payload: serde_json::json!({"kind": "refresh", "hard": false}),
                issued_by: "test".into(),
                deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
                trace: None,
            })
            .await
            .unwrap();
        ids.push(record.id);
    }
    // Ten events, the renewal request, ten more events.
    let csr_pem = manager.renewal_csr().unwrap();
    let mut bodies: Vec<_> = (1..=10).map(event_batch).collect();
    bodies.push(spoke_message::Body::Renew(RenewRequest { csr_pem }));
    bodies.extend((12..=21).map(event_batch));
    let received = exchange(&mut session, 1, bodies, |r| {
        renewals(r).len() == 1 && commands(r) == 5
    })
    .await;

    let response = renewals(&received).remove(0);
    assert_eq!(response.error, "");
    manager.renewed(&response).await.unwrap();
    let renewed = manager.current();
    assert_ne!(renewed.cert_pem, first.cert_pem);
    assert_ne!(renewed.key_pem, first.key_pem, "a fresh key");
    assert_eq!(
        db.security.list_certificates("edge-1").await.unwrap().len(),
        2
    );

    // The old stream carries on after the renewal (one more event; its
    // acknowledgement also shows the hub has processed our earlier acks).
    exchange(&mut session, 22, vec![event_batch(22)], |_| true).await;
    // The spoke reconnects with the new certificate; the new stream
    // resumes exactly where the old one stopped.
    drop(session);
    let mut session = connect_as(&hub, &renewed, &hello("edge-1", "e1", 23))
        .await
        .unwrap();
    assert_eq!(session.negotiated.resume_spoke_seq, 22);
    assert!(!session.negotiated.full_status_resync);
    // Commands without a result are offered again on a new stream (the
    // spoke deduplicates them by id): nothing the hub sent is lost.
    exchange(&mut session, 23, vec![event_batch(23)], |r| {
        commands(r) == 5
    })
    .await;

    let events = db
        .fleet
        .list_events(
            &EventFilter {
                cluster: Some("edge-1".into()),
                app: None,
            },
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        events.items.len(),
        22,
        "every event (22 of 23 messages) stored exactly once"
    );
    for id in ids {
        let command = db.fleet.get_command(&id).await.unwrap();
        assert_eq!(command.outcome, CommandOutcome::Delivered, "{id}");
    }
}

/// Master-key rotation (docs/operations.md#master-key), on SQLite and on PostgreSQL: a hub started with the new
/// key and the previous one seals the stored CA key and every repository credential again with the new key
/// (also with two replicas starting at once: each value is replaced once), after which the new key alone opens
/// them and the old one no longer does; the fleet's CA is the same throughout.
async fn rotation(db: Db) {
    use edgecd_hub::pki::repos::{self, RepoSecret};
    use edgecd_hub::security::SecuritySettings;
    let names = vec!["127.0.0.1".to_owned()];
    let (old, old_text) = MasterKey::generate().unwrap();
    let first = SecuritySettings::stored(old, names.clone())
        .open(db.fleet.clone(), db.security.clone())
        .await
        .unwrap();
    let secret = RepoSecret {
        username: "deploy-bot".into(),
        password: "s3cret".into(),
        ..RepoSecret::default()
    };
    for prefix in ["https://git.example.com/a/", "https://git.example.com/b/"] {
        repos::put(
            db.security.as_ref(),
            first.sealer().unwrap(),
            prefix,
            &[],
            &secret,
        )
        .await
        .unwrap();
    }
    let ca_hash = first.ca_hash();

    // The new key with the previous one, on two replicas at once.
    let (_, new_text) = MasterKey::generate().unwrap();
    let rotating = || {
        MasterKey::from_text(&new_text, "new")
            .unwrap()
            .with_previous(MasterKey::from_text(&old_text, "old").unwrap())
    };
    let (replica_a, replica_b) = (
        SecuritySettings::stored(rotating(), names.clone()),
        SecuritySettings::stored(rotating(), names.clone()),
    );
    let (a, b) = tokio::join!(
        replica_a.open(db.fleet.clone(), db.security.clone()),
        replica_b.open(db.fleet.clone(), db.security.clone()),
    );
    assert_eq!(a.unwrap().ca_hash(), ca_hash);
    assert_eq!(b.unwrap().ca_hash(), ca_hash);

    // The new key alone: everything opens; the old key alone opens nothing any more.
    let new_only = SecuritySettings::stored(MasterKey::from_text(&new_text, "new").unwrap(), names)
        .open(db.fleet.clone(), db.security.clone())
        .await
        .unwrap();
    assert_eq!(new_only.ca_hash(), ca_hash);
    let old_only = MasterKey::from_text(&old_text, "old").unwrap();
    for record in db.security.list_repo_credentials().await.unwrap() {
        assert_eq!(
            repos::open(new_only.sealer().unwrap(), &record).unwrap(),
            secret
        );
        assert!(
            repos::open(&old_only, &record).is_err(),
            "{}",
            record.url_prefix
        );
    }
    let err = Pki::open(
        db.fleet.clone(),
        db.security.clone(),
        CaSource::Store(&old_only),
        PkiConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("wrong master key"), "{err}");

    // A credential neither key opens is reported, not fatal; the rest of the fleet starts.
    let (stray, _) = MasterKey::generate().unwrap();
    repos::put(
        db.security.as_ref(),
        &stray,
        "https://git.example.com/stray/",
        &[],
        &secret,
    )
    .await
    .unwrap();
    let report = edgecd_hub::pki::reseal(db.security.as_ref(), &rotating())
        .await
        .unwrap();
    assert_eq!(
        report,
        edgecd_hub::pki::ResealReport {
            ca_key: false,
            credentials: 0,
            unopened: vec!["https://git.example.com/stray/".to_owned()],
        }
    );
}

#[tokio::test]
async fn a_master_key_rotation_seals_everything_again_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rotation(sqlite_db(&dir).await).await;
}

#[tokio::test]
async fn a_master_key_rotation_seals_everything_again_on_postgresql() {
    let url = pg_server().create_database().unwrap();
    rotation(pg_db(&url).await).await;
}
