//! Cluster RPCs: list and get with connection state (any authenticated caller), and registration, labels, deletion and revocation (admins).

use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use time::OffsetDateTime;
use tonic::Status;

use super::apps::{page_size, scope_filter};
use super::convert;
use super::{Call, HubApi, store_error};
use crate::link::REVOKED_CHANNEL;
use crate::store::{AppFilter, ClusterRecord, NewCluster};

/// An offset cursor over a bounded in-memory list (clusters, projects: at
/// most a few thousand rows, loaded by one indexed query).
pub(crate) fn offset_page<T>(
    items: Vec<T>,
    page_size: u32,
    token: &str,
) -> Result<(Vec<T>, String), Status> {
    let start: usize = if token.is_empty() {
        0
    } else {
        token
            .strip_prefix("o:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Status::invalid_argument("invalid page token"))?
    };
    let end = start.saturating_add(page_size as usize).min(items.len());
    let next = if end < items.len() {
        format!("o:{end}")
    } else {
        String::new()
    };
    let page = items
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok((page, next))
}

fn effective_state(c: &ClusterRecord) -> crate::store::ConnectionKind {
    if c.revoked_at.is_some() {
        crate::store::ConnectionKind::Revoked
    } else {
        c.connection.state
    }
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListClustersRequest,
) -> Result<v1::ListClustersResponse, Status> {
    let filter = req.filter.unwrap_or_default();
    convert::bounded_search(&filter.search, "filter.search")?;
    convert::bounded_list(&filter.connection, "filter.connection")?;
    let selector = convert::label_selector(filter.selector.as_ref(), "filter.selector")?;
    let states: Vec<_> = filter
        .connection
        .iter()
        .filter_map(|c| convert::from_connection_code(*c))
        .collect();
    let search = filter.search.to_lowercase();
    let clusters: Vec<ClusterRecord> = api
        .store()
        .list_clusters(&selector)
        .await
        .map_err(|e| store_error(e, "clusters"))?
        .into_iter()
        .filter(|c| states.is_empty() || states.contains(&effective_state(c)))
        .filter(|c| search.is_empty() || c.name.to_lowercase().contains(&search))
        .collect();
    let total = clusters.len() as u64;
    let (page, next_page_token) = offset_page(clusters, page_size(req.page_size), &req.page_token)?;
    // App counts of the page's clusters (apps of projects the caller may
    // see), in one grouped query; clusters without such apps count zero.
    let mut filter = AppFilter {
        clusters: page.iter().map(|c| c.name.clone()).collect(),
        ..AppFilter::default()
    };
    let counts = if !page.is_empty()
        && scope_filter(
            &mut filter,
            api.projects_with(call, ProjectRole::Viewer).await?,
        ) {
        Some(
            api.store()
                .count_apps_by_cluster(&filter)
                .await
                .map_err(|e| store_error(e, "applications of the clusters"))?,
        )
    } else {
        None
    };
    let zero = crate::store::AppCounts::default();
    Ok(v1::ListClustersResponse {
        items: page
            .iter()
            .map(|c| {
                let counts = counts
                    .as_ref()
                    .map(|counts| counts.get(&c.name).unwrap_or(&zero));
                convert::cluster(c, counts)
            })
            .collect(),
        next_page_token,
        total,
    })
}

pub(super) async fn get(
    api: &HubApi,
    call: &Call,
    req: v1::GetClusterRequest,
) -> Result<v1::Cluster, Status> {
    let what = format!("cluster {}", req.name);
    let record = api
        .store()
        .get_cluster(&req.name)
        .await
        .map_err(|e| store_error(e, what.clone()))?;
    let mut filter = AppFilter {
        clusters: vec![record.name.clone()],
        ..AppFilter::default()
    };
    let counts = if scope_filter(
        &mut filter,
        api.projects_with(call, ProjectRole::Viewer).await?,
    ) {
        Some(
            api.store()
                .count_apps(&filter)
                .await
                .map_err(|e| store_error(e, format!("applications of {what}")))?,
        )
    } else {
        None
    };
    Ok(convert::cluster(&record, counts.as_ref()))
}

pub(super) async fn create(
    api: &HubApi,
    call: &Call,
    req: v1::CreateClusterRequest,
) -> Result<v1::CreateClusterResponse, Status> {
    let target = format!("cluster:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        edgecd_core::ClusterName::parse(req.name.clone())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if req.name == crate::appsets::HUB_CLUSTER {
            return Err(Status::invalid_argument(format!(
                "cluster name {} is reserved: it means the hub itself (app-of-apps parents)",
                req.name
            )));
        }
        let record = api
            .store()
            .create_cluster(&NewCluster {
                name: req.name.clone(),
                labels: pc::from_labels(&req.labels),
                annotations: pc::from_labels(&req.annotations),
                server_url: req.server_url.clone(),
            })
            .await
            .map_err(|e| store_error(e, format!("cluster {}", req.name)))?;
        api.announce(crate::link::CLUSTERS_CHANNEL, &record.name)
            .await;
        // With a certificate authority, registration also returns the
        // one-time bootstrap token and the install command.
        if api.pki().is_some() {
            let ttl = req
                .token_ttl
                .and_then(|d| std::time::Duration::try_from(d).ok())
                .filter(|d| !d.is_zero());
            return super::accounts::bootstrap_response(api, &record.name, ttl).await;
        }
        Ok(v1::CreateClusterResponse {
            cluster: Some(convert::cluster(&record, None)),
            ..v1::CreateClusterResponse::default()
        })
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn update(
    api: &HubApi,
    call: &Call,
    req: v1::UpdateClusterRequest,
) -> Result<v1::Cluster, Status> {
    let target = format!("cluster:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        let what = format!("cluster {}", req.name);
        let expected = match req.expected_version {
            0 => {
                api.store()
                    .get_cluster(&req.name)
                    .await
                    .map_err(|e| store_error(e, what.clone()))?
                    .version
            }
            v => v,
        };
        let record = api
            .store()
            .update_cluster_labels(
                &req.name,
                expected,
                &pc::from_labels(&req.labels),
                &pc::from_labels(&req.annotations),
            )
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        let record = if !req.server_url.is_empty() && req.server_url != record.server_url {
            api.store()
                .set_cluster_server_url(&req.name, &req.server_url)
                .await
                .map_err(|e| store_error(e, what.clone()))?;
            api.store()
                .get_cluster(&req.name)
                .await
                .map_err(|e| store_error(e, what))?
        } else {
            record
        };
        api.announce(crate::link::CLUSTERS_CHANNEL, &record.name)
            .await;
        // New labels may bring it into (or out of) the scope of fleet-scoped application sets: its session
        // re-sends its sets now rather than at its next periodic check.
        api.announce(crate::link::DESIRED_CHANNEL, &record.name)
            .await;
        Ok(convert::cluster(&record, None))
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn delete(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteClusterRequest,
) -> Result<v1::DeleteClusterResponse, Status> {
    let target = format!("cluster:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        api.store()
            .delete_cluster(&req.name)
            .await
            .map_err(|e| store_error(e, format!("cluster {}", req.name)))?;
        api.announce(REVOKED_CHANNEL, &req.name).await;
        api.announce(crate::link::CLUSTERS_CHANNEL, &req.name).await;
        Ok(v1::DeleteClusterResponse {})
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn revoke(
    api: &HubApi,
    call: &Call,
    req: v1::RevokeClusterRequest,
) -> Result<v1::Cluster, Status> {
    let target = format!("cluster:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        let what = format!("cluster {}", req.name);
        api.store()
            .revoke_cluster(&req.name, OffsetDateTime::now_utc())
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        api.announce(REVOKED_CHANNEL, &req.name).await;
        // What its spoke created is no longer vouched for by anyone.
        let forgotten = api
            .store()
            .delete_edge_apps(&req.name, None)
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        api.announce(crate::link::CLUSTERS_CHANNEL, &req.name).await;
        api.announce(crate::link::APPS_CHANNEL, &req.name).await;
        tracing::info!(cluster = %req.name, reason = %req.reason, edge_apps_removed = forgotten, "Cluster revoked.");
        let record = api
            .store()
            .get_cluster(&req.name)
            .await
            .map_err(|e| store_error(e, what))?;
        Ok(convert::cluster(&record, None))
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}
