//! The fleet's deployment record over the API: filtered and cursor-paginated in the database, scoped to the projects the caller may read.

use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::apps::page_size;
use super::{Call, HubApi, store_error};
use crate::store::DeploymentFilter;

/// Longest filter value accepted (bytes).
const MAX_FILTER: usize = 256;

fn text_filter(value: &str, field: &str) -> Result<Option<String>, Status> {
    if value.len() > MAX_FILTER {
        return Err(Status::invalid_argument(format!(
            "{field} is longer than {MAX_FILTER} bytes"
        )));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// The store filter a request asks for, before scoping.
fn filter(req: &v1::ListDeploymentsRequest) -> Result<DeploymentFilter, Status> {
    let mut results = Vec::new();
    for code in &req.results {
        match pc::from_phase_code(*code).filter(|p| p.is_finished()) {
            Some(phase) => results.push(phase),
            None => {
                return Err(Status::invalid_argument(format!(
                    "results: {code} is not SUCCEEDED, FAILED or ERROR"
                )));
            }
        }
    }
    let time = |t: &Option<edgecd_proto::Timestamp>, field: &str| {
        t.as_ref()
            .map(|t| {
                pc::from_timestamp(t)
                    .ok_or_else(|| Status::invalid_argument(format!("{field} is out of range")))
            })
            .transpose()
    };
    Ok(DeploymentFilter {
        cluster: text_filter(&req.cluster, "cluster")?,
        projects: text_filter(&req.project, "project")?.into_iter().collect(),
        app: text_filter(&req.app, "app")?,
        initiated_by: text_filter(&req.initiated_by, "initiated_by")?,
        results,
        since: time(&req.since, "since")?,
        until: time(&req.until, "until")?,
    })
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListDeploymentsRequest,
) -> Result<v1::ListDeploymentsResponse, Status> {
    let mut filter = filter(&req)?;
    let readable = api.projects_with(call, ProjectRole::Viewer).await?;
    if !super::apps::scope_projects(&mut filter.projects, readable) {
        return Ok(v1::ListDeploymentsResponse::default());
    }
    let cursor = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let page = api
        .store()
        .list_deployments(&filter, page_size(req.page_size), cursor)
        .await
        .map_err(|e| store_error(e, "deployments"))?;
    Ok(v1::ListDeploymentsResponse {
        items: page.items.iter().map(pc::deployment).collect(),
        next_page_token: page.next_cursor.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_filters_or_clear_refusals() {
        let req = v1::ListDeploymentsRequest {
            cluster: "edge-7".into(),
            project: "web".into(),
            results: vec![v1::OperationPhase::Failed as i32],
            since: Some(edgecd_proto::Timestamp {
                seconds: 60,
                nanos: 0,
            }),
            ..Default::default()
        };
        let f = filter(&req).unwrap();
        assert_eq!(f.cluster.as_deref(), Some("edge-7"));
        assert_eq!(f.projects, ["web"]);
        assert_eq!(f.results, [edgecd_core::app::OperationPhase::Failed]);
        assert_eq!(f.since.map(|t| t.unix_timestamp()), Some(60));
        assert!(f.app.is_none() && f.until.is_none());

        let running = v1::ListDeploymentsRequest {
            results: vec![v1::OperationPhase::Running as i32],
            ..Default::default()
        };
        let error = filter(&running).unwrap_err();
        assert_eq!(error.code(), tonic::Code::InvalidArgument);
        let long = v1::ListDeploymentsRequest {
            app: "a".repeat(MAX_FILTER + 1),
            ..Default::default()
        };
        assert!(filter(&long).unwrap_err().message().contains("app"));
    }
}
