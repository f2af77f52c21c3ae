//! Robustness of a running hub (issue 17, findings 9, 10 and 12): its SQLite file removed under it and restarted without it, slow and silent clients on the HTTP, gRPC and spoke admin ports, and a PostgreSQL outage (fast UNAVAILABLE with `retry-after`, recovery).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgecd_hub::pki::MasterKey;
use edgecd_hub::security::SecuritySettings;
use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig, ServerError};
use edgecd_hub::store::security::CertificateRecord;
use edgecd_hub::store::{NewCluster, SecurityStore, SqliteStore, Store};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use edgecd_testkit::PgServer;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// How long a test waits for the server to close a connection: well above
/// the short timeouts configured here, far below "forever".
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

async fn plaintext_client(hub: &RunningServer) -> HubServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", hub.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HubServiceClient::new(channel)
}

/// One HTTP/1.1 GET; the status code and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(CLOSE_WITHIN, stream.read_to_end(&mut response))
        .await
        .expect("the response ends")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Waits until the peer closes `stream` (EOF or reset), reading and
/// ignoring whatever it sends first (an error response is fine).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let wait = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(CLOSE_WITHIN, wait).await.is_ok()
}

fn project_request(name: &str) -> v1::CreateProjectRequest {
    v1::CreateProjectRequest {
        project: Some(v1::Project {
            name: name.into(),
            source_repos: vec!["https://git.example.com/*".into()],
            ..Default::default()
        }),
        upsert: false,
    }
}

// --- Finding 9: the SQLite file removed under a running hub ---

#[tokio::test]
async fn sqlite_file_removed_while_running_refuses_writes_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");

    // A first start on an empty directory creates the fleet.
    let hub = Server::start(ServerConfig::insecure_local(Database::Sqlite(path.clone())))
        .await
        .expect("a first start creates the database");
    assert!(edgecd_hub::server::fleet_marker_path(&path).exists());
    assert_eq!(http_get(hub.http_addr(), "/ready").await.0, 200);
    let mut api = plaintext_client(&hub).await;
    api.create_project(project_request("before"))
        .await
        .expect("a write before the removal");

    std::fs::remove_file(&path).unwrap();

    let (status, body) = http_get(hub.http_addr(), "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("removed or replaced"), "{body}");
    let error = api
        .create_project(project_request("after"))
        .await
        .expect_err("a write into the removed file is refused");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert!(
        error.message().contains("removed or replaced"),
        "the error names the cause: {}",
        error.message()
    );
    assert!(error.metadata().get("retry-after").is_some());
    // Reads still answer from what the hub had.
    api.get_project(v1::GetProjectRequest {
        name: "before".into(),
    })
    .await
    .expect("reads still work");
    hub.shutdown().await.unwrap();

    // A restart would create an empty database (and a new CA): refused.
    let error = Server::start(ServerConfig::insecure_local(Database::Sqlite(path.clone())))
        .await
        .expect_err("no silent new fleet");
    assert!(
        matches!(error, ServerError::FleetDatabaseMissing { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("--init-new-fleet"), "{message}");
    assert!(!path.exists(), "nothing was created");

    // With the explicit flag, a new fleet starts.
    let mut config = ServerConfig::insecure_local(Database::Sqlite(path.clone()));
    config.init_new_fleet = true;
    let hub = Server::start(config).await.expect("a deliberate new fleet");
    assert_eq!(http_get(hub.http_addr(), "/ready").await.0, 200);
    hub.shutdown().await.unwrap();

    // And later starts on the new database need no flag.
    let hub = Server::start(ServerConfig::insecure_local(Database::Sqlite(path)))
        .await
        .expect("a restart on an existing database");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn sqlite_file_replaced_while_running_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let hub = Server::start(ServerConfig::insecure_local(Database::Sqlite(path.clone())))
        .await
        .unwrap();
    let mut api = plaintext_client(&hub).await;
    api.create_project(project_request("before")).await.unwrap();

    // Another database moved over the path (a careless restore).
    let other = dir.path().join("other.db");
    drop(SqliteStore::open(&other).await.unwrap());
    std::fs::rename(&other, &path).unwrap();

    let error = api
        .create_project(project_request("after"))
        .await
        .expect_err("a write after the replacement is refused");
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert_eq!(http_get(hub.http_addr(), "/ready").await.0, 503);
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_new_ca_over_enrolled_spokes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let (master, _) = MasterKey::generate().unwrap();
    let master = Arc::new(master);
    let secure = |init_new_fleet: bool| {
        let mut config = ServerConfig::insecure_local(Database::Sqlite(path.clone()));
        config.security = Some(SecuritySettings {
            ca: edgecd_hub::security::CaSettings::Stored(Arc::clone(&master)),
            ..SecuritySettings::stored(MasterKey::generate().unwrap().0, vec!["127.0.0.1".into()])
        });
        config.init_new_fleet = init_new_fleet;
        config
    };
    let hub = Server::start(secure(false)).await.unwrap();
    hub.shutdown().await.unwrap();

    // An enrolled spoke's certificate, then the CA lost (a partial restore).
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_cluster(&NewCluster {
            name: "edge-1".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    store
        .record_certificate(&CertificateRecord {
            serial: "01".into(),
            cluster: "edge-1".into(),
            not_before: now,
            not_after: now + time::Duration::days(1),
            issued_at: now,
            revoked_at: None,
        })
        .await
        .unwrap();
    sqlx::query("DELETE FROM hub_ca")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;

    let error = Server::start(secure(false))
        .await
        .expect_err("no new CA over enrolled spokes");
    assert!(
        matches!(error, ServerError::FleetWithoutCa { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("--init-new-fleet"), "{error}");
    let hub = Server::start(secure(true))
        .await
        .expect("a deliberate new CA");
    hub.shutdown().await.unwrap();
}

// --- Finding 10: slow and silent clients ---

async fn hub_with_short_timeouts(dir: &tempfile::TempDir) -> RunningServer {
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.http.header_read_timeout = Duration::from_millis(500);
    config.grpc_handshake_timeout = Duration::from_millis(500);
    Server::start(config).await.unwrap()
}

#[tokio::test]
async fn http_port_closes_slow_and_silent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_short_timeouts(&dir).await;
    let addr = hub.http_addr();

    // Many clients that send half a request, or nothing, and then wait.
    let mut slow = Vec::new();
    for i in 0..100 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            stream
                .write_all(b"GET /live HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(stream);
    }
    // The port still answers meanwhile.
    assert_eq!(http_get(addr, "/live").await.0, 200);
    for (i, stream) in slow.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream).await,
            "slow client {i} is closed after the header timeout"
        );
    }
    assert_eq!(http_get(addr, "/live").await.0, 200);
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_port_caps_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.http.max_connections = 2;
    let hub = Server::start(config).await.unwrap();
    let addr = hub.http_addr();
    // Two silent clients fill the port (for the default 10 s header timeout)...
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a third connection is closed at once instead of being held.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the connection over the cap is closed: {read:?}"
    );
    drop(held);
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_port_closes_connections_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_short_timeouts(&dir).await;

    // Half the HTTP/2 preface, then nothing; and nothing at all.
    let mut half = TcpStream::connect(hub.grpc_addr()).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut silent = TcpStream::connect(hub.grpc_addr()).await.unwrap();
    assert!(closed_by_server(&mut half).await);
    assert!(closed_by_server(&mut silent).await);

    // A connection that has made a call is kept past the deadline (and is
    // not counted among those waiting for their first call).
    let mut api = plaintext_client(&hub).await;
    api.get_server_info(v1::GetServerInfoRequest {})
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    api.get_server_info(v1::GetServerInfoRequest {})
        .await
        .expect("an active connection is not closed");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn grpc_port_caps_connections_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.grpc_max_handshakes = 1;
    let hub = Server::start(config).await.unwrap();
    let mut api = plaintext_client(&hub).await;
    api.get_server_info(v1::GetServerInfoRequest {})
        .await
        .unwrap();
    // One silent connection fills the waiting room (30 s deadline)...
    let silent = TcpStream::connect(hub.grpc_addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so another one is not accepted: its call waits (in the listen backlog), it is not refused...
    let addr = hub.grpc_addr();
    let mut waiting = tokio::spawn(async move {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        HubServiceClient::new(channel)
            .get_server_info(v1::GetServerInfoRequest {})
            .await
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut waiting)
            .await
            .is_err(),
        "a connection over the cap is not served while the room is full"
    );
    // ...while a serving one still works.
    api.get_server_info(v1::GetServerInfoRequest {})
        .await
        .expect("an established connection keeps working");
    // The silent one leaves: the waiting one is accepted and answered.
    drop(silent);
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the room has space")
        .unwrap();
    assert!(answered.is_ok(), "{answered:?}");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn spoke_admin_port_closes_slow_clients() {
    let server = edgecd_spoke::admin::AdminServer::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        edgecd_spoke::admin::Readiness::default(),
        prometheus_client::registry::Registry::default(),
    )
    .await
    .unwrap()
    .with_limits(Duration::from_millis(500), 64);
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /live HTTP/1.1\r\nHost: spoke\r\n")
        .await
        .unwrap();
    assert_eq!(http_get(addr, "/live").await.0, 200);
    assert!(closed_by_server(&mut slow).await);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

// --- Finding 12: a PostgreSQL outage ---

#[tokio::test]
async fn postgres_outage_fails_fast_with_retry_after() {
    let mut pg = PgServer::start().expect("starting PostgreSQL");
    let url = pg.create_database().unwrap();
    let (master, _) = MasterKey::generate().unwrap();
    let mut security = SecuritySettings::stored(master, vec!["127.0.0.1".into()]);
    security.initial_admin_password = Some("admin-password".into());
    let mut config = ServerConfig::insecure_local(Database::Postgres(url));
    config.security = Some(security);
    let hub = Server::start(config).await.unwrap();

    let pki = hub.pki().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let address = format!("https://127.0.0.1:{}", hub.grpc_addr().port());
    let channel = edgecd_spoke::link::tls::channel(&address, Arc::new(tls), Duration::from_secs(5))
        .await
        .unwrap();
    let mut api = HubServiceClient::new(channel);
    let token = api
        .login(v1::LoginRequest {
            method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
                username: "admin".into(),
                password: "admin-password".into(),
            })),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let authed = |name: &str| {
        let mut request = Request::new(project_request(name));
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    api.create_project(authed("before")).await.unwrap();

    pg.stop().unwrap();
    for name in ["during-1", "during-2"] {
        let started = Instant::now();
        let error = api
            .create_project(authed(name))
            .await
            .expect_err("the database is down");
        let took = started.elapsed();
        assert_eq!(error.code(), Code::Unavailable, "{error:?}");
        assert!(
            error.message().contains("database is unavailable"),
            "the error names the database: {}",
            error.message()
        );
        let retry_after: u64 = error
            .metadata()
            .get("retry-after")
            .expect("UNAVAILABLE carries retry-after")
            .to_str()
            .unwrap()
            .parse()
            .expect("whole seconds");
        assert!(retry_after >= 1);
        // Generous: the call used to block for the 5 s acquire timeout.
        assert!(took < Duration::from_secs(3), "the call took {took:?}");
    }

    pg.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.create_project(authed("after")).await {
            Ok(_) => break,
            Err(error) if Instant::now() < deadline => {
                assert_eq!(error.code(), Code::Unavailable, "{error:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("the hub did not recover: {error:?}"),
        }
    }
    hub.shutdown().await.unwrap();
}
