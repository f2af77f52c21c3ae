//! A hub for API tests: SQLite in a temporary directory, authentication off (every caller is an admin), reached over plaintext gRPC with the SDK, cluster `edge-1` registered and never connected.

use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
use edgecd_proto::client::{Client, ClientConfig, Tls};
use edgecd_proto::v1;

pub struct Hub {
    /// Keeps the server running; not every test reads it.
    #[allow(dead_code)]
    pub hub: RunningServer,
    pub client: Client,
    _dir: tempfile::TempDir,
}

/// Starts the hub and registers `edge-1`.
pub async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::insecure_local(Database::Sqlite(dir.path().join("hub.db")));
    config.git_cache_dir = Some(dir.path().join("git"));
    let hub = Server::start(config).await.unwrap();
    let client = Client::connect(
        ClientConfig::new(format!("http://{}", hub.grpc_addr())).with_tls(Tls::InsecurePlaintext),
    )
    .await
    .unwrap();
    client
        .create_cluster(v1::CreateClusterRequest {
            name: "edge-1".into(),
            ..v1::CreateClusterRequest::default()
        })
        .await
        .unwrap();
    Hub {
        hub,
        client,
        _dir: dir,
    }
}
