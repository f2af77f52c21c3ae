//! Lists every application of a hub with its sync and health: `cargo run -p edgecd-proto --example list_apps`.
//!
//! Reads `EDGECD_SERVER` (default `http://127.0.0.1:50051`, the dev fleet), `EDGECD_TOKEN` (from
//! `edgecd login`, or `edgecd-dev`'s output) and `EDGECD_CA` (a PEM file; otherwise `https://`
//! uses the system roots and `http://` is plaintext, for a hub on loopback only).

use edgecd_proto::client::{Client, ClientConfig, Tls};
use edgecd_proto::v1::{HealthStatusCode, ListApplicationsRequest, SyncStatusCode};
use futures::TryStreamExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = std::env::var("EDGECD_SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let tls = match std::env::var("EDGECD_CA") {
        Ok(path) => Tls::CaPem(std::fs::read_to_string(path)?),
        Err(_) if server.starts_with("http://") => Tls::InsecurePlaintext,
        Err(_) => Tls::SystemRoots,
    };
    let config = ClientConfig::new(server)
        .with_tls(tls)
        .with_token(std::env::var("EDGECD_TOKEN").unwrap_or_default());
    let client = Client::connect(config).await?;

    let mut apps = client.applications(ListApplicationsRequest {
        page_size: 500,
        ..Default::default()
    });
    let mut count = 0;
    while let Some(app) = apps.try_next().await? {
        let sync = SyncStatusCode::try_from(app.sync).unwrap_or_default();
        let health = HealthStatusCode::try_from(app.health).unwrap_or_default();
        println!(
            "{:<30} {:<12} {:<10} {:?}/{:?}",
            format!("{}/{}", app.project, app.name),
            app.cluster,
            app.revision.get(..7).unwrap_or(&app.revision),
            sync,
            health,
        );
        count += 1;
    }
    println!("{count} applications");
    Ok(())
}
