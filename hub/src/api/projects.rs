//! Project RPCs: list and get (projects the caller may read), create and delete (admins), update (project owners).

use edgecd_core::access::Action;
use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::apps::page_size;
use super::clusters::offset_page;
use super::{Call, HubApi, store_error};
use crate::store::{ProjectRecord, StoreError};

fn project(record: &ProjectRecord) -> v1::Project {
    pc::project(
        &record.name,
        &record.spec,
        record.version,
        Some(record.created_at),
    )
}

fn parse(p: Option<&v1::Project>) -> Result<(String, edgecd_core::project::ProjectSpec), Status> {
    let p = p.ok_or_else(|| Status::invalid_argument("project is required"))?;
    edgecd_core::ProjectName::parse(p.name.clone())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let spec =
        pc::from_project(p).map_err(|e| Status::invalid_argument(format!("project: {e}")))?;
    Ok((p.name.clone(), spec))
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListProjectsRequest,
) -> Result<v1::ListProjectsResponse, Status> {
    let readable = api.projects_with(call, ProjectRole::Viewer).await?;
    let projects: Vec<ProjectRecord> = api
        .store()
        .list_projects()
        .await
        .map_err(|e| store_error(e, "projects"))?
        .into_iter()
        .filter(|p| readable.as_ref().is_none_or(|r| r.contains(&p.name)))
        .collect();
    let (page, next_page_token) = offset_page(projects, page_size(req.page_size), &req.page_token)?;
    Ok(v1::ListProjectsResponse {
        items: page.iter().map(project).collect(),
        next_page_token,
    })
}

pub(super) async fn get(
    api: &HubApi,
    call: &Call,
    req: v1::GetProjectRequest,
) -> Result<v1::Project, Status> {
    api.authorize(call, Action::Read, &req.name).await?;
    let record = api
        .store()
        .get_project(&req.name)
        .await
        .map_err(|e| store_error(e, format!("project {}", req.name)))?;
    Ok(project(&record))
}

pub(super) async fn create(
    api: &HubApi,
    call: &Call,
    req: v1::CreateProjectRequest,
) -> Result<v1::Project, Status> {
    let target = format!(
        "project:{}",
        req.project.as_ref().map(|p| p.name.as_str()).unwrap_or("")
    );
    let result = async {
        api.authorize_admin(call)?;
        let (name, spec) = parse(req.project.as_ref())?;
        let what = format!("project {name}");
        let record = match api.store().create_project(&name, &spec).await {
            Ok(record) => record,
            Err(StoreError::AlreadyExists { .. }) if req.upsert => {
                let current = api
                    .store()
                    .get_project(&name)
                    .await
                    .map_err(|e| store_error(e, what.clone()))?;
                api.store()
                    .update_project(&name, current.version, &spec)
                    .await
                    .map_err(|e| store_error(e, what))?
            }
            Err(error) => return Err(store_error(error, what)),
        };
        api.forget_project(&name);
        Ok(project(&record))
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

pub(super) async fn update(
    api: &HubApi,
    call: &Call,
    req: v1::UpdateProjectRequest,
) -> Result<v1::Project, Status> {
    let target = format!(
        "project:{}",
        req.project.as_ref().map(|p| p.name.as_str()).unwrap_or("")
    );
    let result = async {
        let (name, spec) = parse(req.project.as_ref())?;
        let current = api.authorize(call, Action::Edit, &name).await?;
        let what = format!("project {name}");
        // Only admins may change who holds which role, or the project's
        // limits: an owner who could widen them could reach clusters,
        // namespaces, repositories and cluster-scoped kinds the admin kept
        // from the project.
        if !call.principal.admin
            && let Some(field) = changed_limit(&current.spec, &spec)
        {
            return Err(Status::permission_denied(format!(
                "{} may not change the {field} of {what} (admins only; a project owner may change its description)",
                call.principal.subject
            )));
        }
        let expected = match req.expected_version {
            0 => current.version,
            v => v,
        };
        let record = api
            .store()
            .update_project(&name, expected, &spec)
            .await
            .map_err(|e| store_error(e, what))?;
        api.forget_project(&name);
        Ok(project(&record))
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

/// The first admin-only part of a project that `new` changes, named as the
/// API names it; `None` when only what owners may edit changed.
fn changed_limit(
    old: &edgecd_core::project::ProjectSpec,
    new: &edgecd_core::project::ProjectSpec,
) -> Option<&'static str> {
    // Destructured so that a new field cannot be added without deciding who may change it.
    let edgecd_core::project::ProjectSpec {
        description: _,
        source_repos,
        destinations,
        cluster_resource_whitelist,
        cluster_resource_blacklist,
        namespace_resource_blacklist,
        namespace_resource_whitelist,
        roles,
        // Reporting orphans and (not yet enforced) sync windows widen nothing: owners may change them.
        orphaned_resources: _,
        sync_windows: _,
        live,
    } = new;
    if &old.roles != roles {
        Some("role bindings")
    } else if &old.live != live {
        Some("log or exec role")
    } else if &old.source_repos != source_repos {
        Some("source repositories")
    } else if &old.destinations != destinations {
        Some("destinations")
    } else if &old.cluster_resource_whitelist != cluster_resource_whitelist
        || &old.cluster_resource_blacklist != cluster_resource_blacklist
    {
        Some("cluster-scoped kinds")
    } else if &old.namespace_resource_blacklist != namespace_resource_blacklist
        || &old.namespace_resource_whitelist != namespace_resource_whitelist
    {
        Some("namespaced kinds")
    } else {
        None
    }
}

pub(super) async fn delete(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteProjectRequest,
) -> Result<v1::DeleteProjectResponse, Status> {
    let target = format!("project:{}", req.name);
    let result = async {
        api.authorize_admin(call)?;
        api.store()
            .delete_project(&req.name)
            .await
            .map_err(|e| store_error(e, format!("project {}", req.name)))?;
        api.forget_project(&req.name);
        Ok(v1::DeleteProjectResponse {})
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgecd_core::project::{LiveAccess, ProjectRole, ProjectSpec};

    #[test]
    fn the_log_role_is_the_admins_like_the_role_bindings() {
        let old = ProjectSpec::default();
        let opened = ProjectSpec {
            live: LiveAccess {
                logs: ProjectRole::Viewer,
                exec: None,
            },
            ..ProjectSpec::default()
        };
        assert_eq!(changed_limit(&old, &opened), Some("log or exec role"));
        let exec_on = ProjectSpec {
            live: LiveAccess {
                exec: Some(ProjectRole::Owner),
                ..LiveAccess::default()
            },
            ..ProjectSpec::default()
        };
        assert_eq!(changed_limit(&old, &exec_on), Some("log or exec role"));
        let described = ProjectSpec {
            description: "the web team".into(),
            ..ProjectSpec::default()
        };
        assert_eq!(changed_limit(&old, &described), None);
    }
}
