//! `edgecd cluster list|get|add|set|remove|revoke|token`.

use std::collections::BTreeMap;

use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;
use time::OffsetDateTime;

use super::{parse_pairs, selector};
use crate::args::{ClusterCommand, Output};
use crate::output::{
    Table, age, connection_name, labels_text, natural_cmp, or_dash, print_structured, time_text,
};
use crate::session::Session;

/// A cluster as printed (table row and YAML/JSON).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub name: String,
    pub connection: String,
    pub since: String,
    pub last_heartbeat: String,
    pub hub_replica: String,
    pub labels: BTreeMap<String, String>,
    pub server_url: String,
    pub spoke_version: String,
    /// The spoke's release against the hub's (docs/protocol.md#version-skew).
    pub version_skew: String,
    pub kubernetes_version: String,
    pub apps: u32,
    pub synced: u32,
    pub healthy: u32,
    pub degraded: u32,
    pub created_at: String,
    pub certificate_not_after: String,
}

impl From<&v1::Cluster> for ClusterView {
    fn from(c: &v1::Cluster) -> Self {
        let connection = c.connection.clone().unwrap_or_default();
        let versions = c.versions.clone().unwrap_or_default();
        let counts = c.app_counts.unwrap_or_default();
        Self {
            name: c.name.clone(),
            connection: connection_name(connection.state).into(),
            since: time_text(connection.since.as_ref()),
            last_heartbeat: time_text(connection.last_heartbeat.as_ref()),
            hub_replica: connection.hub_replica,
            labels: c.labels.clone().into_iter().collect(),
            server_url: c.server_url.clone(),
            version_skew: versions
                .skew
                .as_ref()
                .map(|s| s.message.clone())
                .unwrap_or_default(),
            spoke_version: versions.spoke_version,
            kubernetes_version: versions.kubernetes_version,
            apps: counts.total,
            synced: counts.synced,
            healthy: counts.healthy,
            degraded: counts.degraded,
            created_at: time_text(c.created_at.as_ref()),
            certificate_not_after: time_text(c.certificate_not_after.as_ref()),
        }
    }
}

/// The spoke's version, marked when it is outside the supported skew.
fn spoke_cell(versions: &v1::ClusterVersions) -> String {
    let unsupported = versions
        .skew
        .as_ref()
        .is_some_and(|s| s.state == v1::version_skew::State::Unsupported as i32);
    if unsupported {
        format!("{} (unsupported skew)", versions.spoke_version)
    } else {
        or_dash(&versions.spoke_version)
    }
}

pub fn cluster_table(clusters: &[v1::Cluster], wide: bool, now: OffsetDateTime) -> Table {
    let mut headers = vec!["NAME", "CONNECTION", "SINCE", "APPS", "SYNCED", "HEALTHY"];
    if wide {
        headers.extend(["DEGRADED", "SPOKE", "KUBERNETES", "REPLICA", "LABELS"]);
    }
    let mut table = Table::new(headers);
    for c in clusters {
        let connection = c.connection.clone().unwrap_or_default();
        let counts = c.app_counts.unwrap_or_default();
        let versions = c.versions.clone().unwrap_or_default();
        let mut row = vec![
            c.name.clone(),
            connection_name(connection.state).into(),
            age(connection.since.as_ref(), now),
            counts.total.to_string(),
            counts.synced.to_string(),
            counts.healthy.to_string(),
        ];
        if wide {
            row.extend([
                counts.degraded.to_string(),
                spoke_cell(&versions),
                or_dash(&versions.kubernetes_version),
                or_dash(&connection.hub_replica),
                labels_text(&c.labels),
            ]);
        }
        table.row(row);
    }
    table
}

pub async fn run(session: &Session, command: ClusterCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    let client = session.client().await?;
    match command {
        ClusterCommand::List {
            selector: sel,
            search,
        } => {
            let request = v1::ListClustersRequest {
                filter: Some(v1::ClusterFilter {
                    selector: sel
                        .as_deref()
                        .map(|s| selector(s, "--selector"))
                        .transpose()?,
                    connection: Vec::new(),
                    search: search.unwrap_or_default(),
                }),
                page_size: 500,
                page_token: String::new(),
            };
            let mut clusters: Vec<v1::Cluster> = client.clusters(request).try_collect().await?;
            clusters.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            let views: Vec<ClusterView> = clusters.iter().map(ClusterView::from).collect();
            if !print_structured(output, &views)? {
                if clusters.is_empty() {
                    noteln!("No clusters found.");
                } else {
                    let table =
                        cluster_table(&clusters, output == Output::Wide, OffsetDateTime::now_utc());
                    out!("{}", table.render())?;
                }
            }
        }
        ClusterCommand::Get { name } => {
            let cluster = client.get_cluster(v1::GetClusterRequest { name }).await?;
            let view = ClusterView::from(&cluster);
            if !print_structured(output, &view)? {
                out!("{}", describe(&view))?;
            }
        }
        ClusterCommand::Add {
            name,
            labels,
            server_url,
        } => {
            let response = client
                .create_cluster(v1::CreateClusterRequest {
                    name: name.clone(),
                    labels: parse_pairs(&labels, "--label")?.into_iter().collect(),
                    annotations: Default::default(),
                    server_url: server_url.unwrap_or_default(),
                    token_ttl: None,
                })
                .await?;
            print_enrollment(output, &name, &response, &hub_server(session)?)?;
        }
        ClusterCommand::Token { name } => {
            let response = client
                .create_bootstrap_token(v1::CreateBootstrapTokenRequest {
                    cluster: name.clone(),
                    token_ttl: None,
                })
                .await?;
            print_enrollment(output, &name, &response, &hub_server(session)?)?;
        }
        ClusterCommand::Set {
            name,
            labels,
            remove_labels,
            server_url,
        } => {
            let added = parse_pairs(&labels, "--label")?;
            if added.is_empty() && remove_labels.is_empty() && server_url.is_none() {
                anyhow::bail!(crate::exit::Exit::usage(
                    "nothing to change: pass --label, --remove-label or --server-url"
                ));
            }
            let current = client
                .get_cluster(v1::GetClusterRequest { name: name.clone() })
                .await?;
            let mut wanted = current.labels.clone();
            for key in &remove_labels {
                if wanted.remove(key).is_none() {
                    anyhow::bail!(crate::exit::Exit::new(
                        crate::exit::NOT_FOUND,
                        format!("cluster {name} has no label {key:?}")
                    ));
                }
            }
            wanted.extend(added);
            let server_url = server_url.unwrap_or_default();
            if wanted == current.labels
                && (server_url.is_empty() || server_url == current.server_url)
            {
                outln!("cluster {name} unchanged")?;
                return Ok(());
            }
            let updated = client
                .update_cluster(v1::UpdateClusterRequest {
                    name: name.clone(),
                    labels: wanted,
                    annotations: current.annotations.clone(),
                    server_url,
                    expected_version: current.version,
                })
                .await?;
            let view = ClusterView::from(&updated);
            if !print_structured(output, &view)? {
                outln!("cluster {name} updated")?;
                out!("{}", describe(&view))?;
            }
        }
        ClusterCommand::Remove { name } => {
            client
                .delete_cluster(v1::DeleteClusterRequest { name: name.clone() })
                .await?;
            outln!("cluster {name} removed")?;
        }
        ClusterCommand::Revoke { name, reason } => {
            client
                .revoke_cluster(v1::RevokeClusterRequest {
                    name: name.clone(),
                    reason,
                })
                .await?;
            outln!("cluster {name} revoked: its spoke is refused from now on")?;
        }
    }
    Ok(())
}

fn describe(view: &ClusterView) -> String {
    let labels: std::collections::HashMap<_, _> = view.labels.clone().into_iter().collect();
    let lines = [
        ("Name", view.name.clone()),
        (
            "Connection",
            format!("{} since {}", view.connection, view.since),
        ),
        ("Last heartbeat", view.last_heartbeat.clone()),
        ("Hub replica", or_dash(&view.hub_replica)),
        ("Labels", labels_text(&labels)),
        ("Server URL", or_dash(&view.server_url)),
        (
            "Spoke",
            if view.spoke_version.is_empty() {
                "-".to_owned()
            } else {
                format!("{} ({})", view.spoke_version, view.version_skew)
            },
        ),
        ("Kubernetes", or_dash(&view.kubernetes_version)),
        (
            "Apps",
            format!(
                "{} ({} synced, {} healthy, {} degraded)",
                view.apps, view.synced, view.healthy, view.degraded
            ),
        ),
        ("Certificate until", view.certificate_not_after.clone()),
    ];
    lines
        .iter()
        .map(|(k, v)| format!("{:<19}{v}\n", format!("{k}:")))
        .collect()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EnrollmentView {
    cluster: String,
    bootstrap_token: String,
    token_expires_at: String,
    install_command: String,
    hub_address: String,
    ca_hash: String,
}

/// The address this CLI reaches the hub at (its context's or `--server`).
fn hub_server(session: &Session) -> anyhow::Result<String> {
    Ok(session.target()?.server)
}

/// The hub's SpokeService address for a spoke: what the hub says, else the address this CLI is
/// connected to, always over TLS (`https://host:port`: the spoke speaks only TLS to the hub).
pub fn spoke_hub_address(from_hub: &str, cli_server: &str) -> String {
    let address = if from_hub.is_empty() {
        cli_server
    } else {
        from_hub
    };
    let host_port = address
        .split_once("://")
        .map_or(address, |(_, rest)| rest)
        .trim_end_matches('/');
    format!("https://{host_port}")
}

/// The install command with the hub's address filled in (the hub writes a placeholder when it
/// does not know the address its clients reach it at).
pub fn install_command(command: &str, hub_address: &str) -> String {
    command
        .replace("https://HUB_ADDRESS", hub_address)
        .replace("HUB_ADDRESS", hub_address.trim_start_matches("https://"))
}

fn is_loopback_address(address: &str) -> bool {
    let host = address
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map_or(address, |(host, _)| host);
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

fn print_enrollment(
    output: Output,
    name: &str,
    r: &v1::CreateClusterResponse,
    cli_server: &str,
) -> anyhow::Result<()> {
    let hub_address = spoke_hub_address(&r.hub_address, cli_server);
    // The bootstrap token is the point of this command: it is shown once, on purpose.
    let view = EnrollmentView {
        cluster: name.to_owned(),
        bootstrap_token: r.bootstrap_token.clone(),
        token_expires_at: time_text(r.token_expires_at.as_ref()),
        install_command: install_command(&r.install_command, &hub_address),
        hub_address: hub_address.clone(),
        ca_hash: r.ca_hash.clone(),
    };
    if !print_structured(output, &view)? {
        outln!("cluster {name} registered")?;
        if !view.bootstrap_token.is_empty() {
            outln!(
                "bootstrap token (shown once, expires {}):",
                view.token_expires_at
            )?;
            outln!("  {}", view.bootstrap_token)?;
        }
        if !view.install_command.is_empty() {
            outln!(
                "install its spoke with (the spoke dials the hub at {} over TLS):",
                view.hub_address
            )?;
            outln!("  {}", view.install_command)?;
            if is_loopback_address(&view.hub_address) {
                noteln!(
                    "note: {} is this machine's loopback address; a spoke in another cluster needs \
                     an address of the hub it can reach (change hub.address in the command)",
                    view.hub_address
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_name_the_hub() {
        let address = spoke_hub_address("", "http://hub.example.com:50051/");
        assert_eq!(address, "https://hub.example.com:50051");
        assert_eq!(
            spoke_hub_address("https://hub.internal:8443", "https://10.0.0.1:50051"),
            "https://hub.internal:8443"
        );
        let command = install_command(
            "helm install edgecd-spoke charts/edgecd-spoke --set hub.address=https://HUB_ADDRESS",
            &address,
        );
        assert_eq!(
            command,
            "helm install edgecd-spoke charts/edgecd-spoke --set hub.address=https://hub.example.com:50051"
        );
        assert!(is_loopback_address("https://127.0.0.1:50051"));
        assert!(!is_loopback_address("https://hub.example.com:50051"));
    }

    #[test]
    fn cluster_rows() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(10);
        let cluster = v1::Cluster {
            name: "cluster-1".into(),
            connection: Some(v1::ConnectionState {
                state: v1::ConnectionStateCode::Stale as i32,
                since: Some(edgecd_proto::Timestamp {
                    seconds: 540,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            app_counts: Some(v1::AppCounts {
                total: 3,
                synced: 3,
                healthy: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            cluster_table(&[cluster], false, now).render(),
            "NAME        CONNECTION   SINCE   APPS   SYNCED   HEALTHY\n\
             cluster-1   Stale        1m      3      3        2\n"
        );
    }
}
