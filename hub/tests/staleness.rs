//! Review finding 6: after a hub crash, a cluster whose spoke never came back stayed Connected (23 minutes, and across a restart), so its apps kept their last Healthy status. A hub started on the crashed hub's database marks it Disconnected once it has been silent too long, and the API shows its apps so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edgecd_hub::server::{Database, Server, ServerConfig};
use edgecd_hub::store::{
    ClusterConnection, ConnectionKind, NewApp, NewCluster, SqliteStore, Store,
};
use edgecd_proto::v1;
use time::OffsetDateTime;

#[tokio::test]
async fn a_cluster_left_connected_by_a_crashed_hub_is_marked_disconnected_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    // What a replica that died holding edge-1's stream left behind: Connected,
    // last heartbeat a while ago, and an app last reported Healthy.
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .create_cluster(&NewCluster {
                name: "edge-1".into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
        let spec = serde_json::from_value(serde_json::json!({
            "source": {"repoURL": "https://git.example.com/web", "path": "."},
            "destination": {"name": "edge-1", "namespace": "web"},
        }))
        .unwrap();
        store
            .create_app(&NewApp {
                project: "default".into(),
                name: "web".into(),
                spec,
                labels: Default::default(),
                owner: None,
            })
            .await
            .unwrap();
        let last = OffsetDateTime::now_utc() - time::Duration::minutes(23);
        store
            .set_cluster_connection(
                "edge-1",
                &ClusterConnection {
                    state: ConnectionKind::Connected,
                    since: Some(last),
                    last_heartbeat: Some(last),
                    hub_replica: "hub-crashed".into(),
                },
            )
            .await
            .unwrap();
    }

    let mut config = ServerConfig::insecure_local(Database::Sqlite(path));
    config.link.heartbeat_interval = Duration::from_millis(100);
    config.link.stale_after = Duration::from_millis(300);
    let hub = Server::start(config).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://127.0.0.1:{}",
        hub.grpc_addr().port()
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let mut client = v1::hub_service_client::HubServiceClient::new(channel);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let app = loop {
        let page = client
            .list_applications(v1::ListApplicationsRequest::default())
            .await
            .unwrap()
            .into_inner();
        let app = page.items.into_iter().find(|a| a.name == "web").unwrap();
        let state = app.cluster_connection.as_ref().map(|c| c.state);
        if state == Some(v1::ConnectionStateCode::Disconnected as i32) {
            break app;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "edge-1 is still {state:?} at the restarted hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(app.cluster, "edge-1");
    let cluster = client
        .get_cluster(v1::GetClusterRequest {
            name: "edge-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let connection = cluster.connection.unwrap();
    assert_eq!(
        connection.state,
        v1::ConnectionStateCode::Disconnected as i32
    );
    drop(hub);
}
