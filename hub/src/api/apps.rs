//! Application RPCs: list (filtered, sorted, cursor-paginated in the database, scoped to readable projects), count, get, create, update, delete, resource tree and history.

use edgecd_core::access::Action;
use edgecd_core::app::ApplicationSpec;
use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::convert;
use super::{Call, HubApi, store_error};
use crate::appsets::HUB_CLUSTER;
use crate::link::DESIRED_CHANNEL;
use crate::store::{AppFilter, AppQuery, AppRecord, NewApp, StoreError};

pub use crate::store::APP_DELETED_CHANNEL;

/// Restricts `filter` to the projects the caller may read (`None`: all).
/// Returns `false` if nothing can match, so the caller can skip the query.
pub(crate) fn scope_filter(filter: &mut AppFilter, readable: Option<Vec<String>>) -> bool {
    scope_projects(&mut filter.projects, readable)
}

/// Restricts `projects` (empty: all) to `readable` (`None`: all); `false` if nothing can match.
pub(crate) fn scope_projects(projects: &mut Vec<String>, readable: Option<Vec<String>>) -> bool {
    let Some(readable) = readable else {
        return true;
    };
    if projects.is_empty() {
        *projects = readable;
    } else {
        projects.retain(|p| readable.contains(p));
    }
    !projects.is_empty()
}

/// The request filter, restricted to projects where the caller holds `role`.
pub(crate) async fn scoped_filter(
    api: &HubApi,
    call: &Call,
    filter: Option<&v1::ApplicationFilter>,
    role: ProjectRole,
) -> Result<Option<AppFilter>, Status> {
    let mut filter = convert::filter(filter)?;
    let readable = api.projects_with(call, role).await?;
    Ok(scope_filter(&mut filter, readable).then_some(filter))
}

pub(crate) fn page_size(requested: u32) -> u32 {
    match requested {
        0 => 100,
        n => n.min(1000),
    }
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListApplicationsRequest,
) -> Result<v1::ListApplicationsResponse, Status> {
    let Some(filter) = scoped_filter(api, call, req.filter.as_ref(), ProjectRole::Viewer).await?
    else {
        return Ok(v1::ListApplicationsResponse::default());
    };
    let query = AppQuery {
        filter,
        sort: convert::sort(req.sort.as_ref()),
        page_size: page_size(req.page_size),
        cursor: (!req.page_token.is_empty()).then_some(req.page_token),
    };
    let page = api
        .store()
        .list_apps(&query)
        .await
        .map_err(|e| store_error(e, "applications"))?;
    Ok(v1::ListApplicationsResponse {
        items: page.items.iter().map(convert::summary).collect(),
        next_page_token: page.next_cursor.unwrap_or_default(),
        total: page.total.unwrap_or(0),
    })
}

pub(super) async fn count(
    api: &HubApi,
    call: &Call,
    req: v1::CountApplicationsRequest,
) -> Result<v1::ApplicationCounts, Status> {
    let Some(filter) = scoped_filter(api, call, req.filter.as_ref(), ProjectRole::Viewer).await?
    else {
        return Ok(v1::ApplicationCounts::default());
    };
    let counts = api
        .store()
        .count_apps(&filter)
        .await
        .map_err(|e| store_error(e, "applications"))?;
    Ok(convert::counts(&counts))
}

pub(super) async fn get(
    api: &HubApi,
    call: &Call,
    req: v1::GetApplicationRequest,
) -> Result<v1::Application, Status> {
    let app = convert::app_ref(req.app.as_ref())?;
    api.authorize(call, Action::Read, app.project.as_str())
        .await?;
    let record = api
        .store()
        .get_app(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, format!("application {app}")))?;
    let connection = api
        .store()
        .get_cluster(&record.cluster)
        .await
        .ok()
        .map(|c| c.connection);
    Ok(convert::application(&record, connection.as_ref()))
}

/// Validates a requested spec against its project and destination cluster.
async fn checked_spec(
    api: &HubApi,
    call: &Call,
    meta: Option<&v1::ApplicationMeta>,
    spec: Option<&v1::ApplicationSpec>,
) -> Result<(edgecd_core::AppRef, ApplicationSpec, crate::store::Labels), Status> {
    let meta = meta.ok_or_else(|| Status::invalid_argument("meta is required"))?;
    let app = convert::app_ref(Some(&v1::AppRef {
        project: meta.project.clone(),
        name: meta.name.clone(),
    }))?;
    let spec = spec.ok_or_else(|| Status::invalid_argument("spec is required"))?;
    let spec = pc::from_application_spec(spec, app.project.as_str())
        .map_err(|e| Status::invalid_argument(format!("application {app}: spec: {e}")))?;
    let project = api
        .authorize(call, Action::Edit, app.project.as_str())
        .await?;
    let labels = pc::from_labels(&meta.labels);
    validate(&app, &spec, &labels)?;
    if spec.destination.cluster.is_empty() {
        return Err(Status::invalid_argument(
            "spec.destination.cluster is required (the hub deploys by cluster name)",
        ));
    }
    // `in-cluster` is the hub itself: an app-of-apps parent, rendered by the hub.
    let (cluster_name, cluster_server, cluster_labels) = if spec.destination.cluster == HUB_CLUSTER
    {
        (
            HUB_CLUSTER.to_owned(),
            String::new(),
            crate::store::Labels::new(),
        )
    } else {
        let cluster = api
            .store()
            .get_cluster(&spec.destination.cluster)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => Status::failed_precondition(format!(
                    "cluster {} is not registered at this hub",
                    spec.destination.cluster
                )),
                other => store_error(other, format!("cluster {}", spec.destination.cluster)),
            })?;
        (cluster.name, cluster.server_url, cluster.labels)
    };
    project
        .spec
        .check_sources(app.project.as_str(), &spec)
        .map_err(|v| Status::permission_denied(v.to_string()))?;
    project
        .spec
        .check_destination_at(
            app.project.as_str(),
            &cluster_name,
            &cluster_server,
            &cluster_labels,
            &spec.destination.namespace,
        )
        .map_err(|v| Status::permission_denied(v.to_string()))?;
    Ok((app, spec, labels))
}

/// Refuses, before anything is stored, a spec or labels no spoke could use (`ApplicationSpec::validate`,
/// Kubernetes' label rules): INVALID_ARGUMENT naming the app, the field and the cause.
pub(crate) fn validate(
    app: &impl std::fmt::Display,
    spec: &ApplicationSpec,
    labels: &crate::store::Labels,
) -> Result<(), Status> {
    spec.validate()
        .and_then(|()| edgecd_core::app::validate_labels(labels, "meta.labels"))
        .map_err(|e| Status::invalid_argument(format!("application {app}: {e}")))
}

pub(super) async fn create(
    api: &HubApi,
    call: &Call,
    req: v1::CreateApplicationRequest,
) -> Result<v1::Application, Status> {
    let target = req
        .meta
        .as_ref()
        .map(|m| format!("app:{}/{}", m.project, m.name))
        .unwrap_or_default();
    let result = create_inner(api, call, req).await;
    if !matches!(&result, Ok((_, true))) {
        api.audit(call, &target, &result).await;
    }
    result.map(|(app, _)| app)
}

/// Returns the app and whether this was a dry run.
pub(crate) async fn create_inner(
    api: &HubApi,
    call: &Call,
    req: v1::CreateApplicationRequest,
) -> Result<(v1::Application, bool), Status> {
    let (app, spec, labels) = checked_spec(api, call, req.meta.as_ref(), req.spec.as_ref()).await?;
    let what = format!("application {app}");
    if req.upsert {
        match api
            .store()
            .get_app(app.project.as_str(), app.name.as_str())
            .await
        {
            Ok(existing) => {
                refuse_owned(&existing)?;
                if req.dry_run {
                    return Ok((convert::application(&existing, None), true));
                }
                if existing.spec == spec && existing.labels == labels {
                    // Unchanged: no new version, nothing to announce.
                    return Ok((convert::application(&existing, None), false));
                }
                let updated = api
                    .store()
                    .update_app(
                        app.project.as_str(),
                        app.name.as_str(),
                        existing.spec_version,
                        &spec,
                        &labels,
                    )
                    .await
                    .map_err(|e| store_error(e, what.clone()))?;
                announce_desired(api, &existing.cluster, &updated.cluster).await;
                return Ok((convert::application(&updated, None), false));
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(store_error(error, what)),
        }
    }
    let new = NewApp {
        project: app.project.as_str().to_owned(),
        name: app.name.as_str().to_owned(),
        spec,
        labels,
        owner: None,
    };
    if req.dry_run {
        if api.store().get_app(&new.project, &new.name).await.is_ok() {
            return Err(Status::already_exists(format!("{what} already exists")));
        }
        return Ok((dry_run_app(&new), true));
    }
    let record = api
        .store()
        .create_app(&new)
        .await
        .map_err(|e| store_error(e, what))?;
    api.announce(DESIRED_CHANNEL, &record.cluster).await;
    Ok((convert::application(&record, None), false))
}

fn dry_run_app(new: &NewApp) -> v1::Application {
    v1::Application {
        meta: Some(v1::ApplicationMeta {
            project: new.project.clone(),
            name: new.name.clone(),
            labels: pc::labels(&new.labels),
            origin: v1::AppOrigin::Managed as i32,
            ..v1::ApplicationMeta::default()
        }),
        spec: Some(pc::application_spec(&new.spec)),
        status: None,
        cluster_connection: None,
    }
}

async fn announce_desired(api: &HubApi, old_cluster: &str, new_cluster: &str) {
    api.announce(DESIRED_CHANNEL, new_cluster).await;
    if old_cluster != new_cluster {
        api.announce(DESIRED_CHANNEL, old_cluster).await;
    }
}

pub(super) async fn update(
    api: &HubApi,
    call: &Call,
    req: v1::UpdateApplicationRequest,
) -> Result<v1::Application, Status> {
    let target = req
        .meta
        .as_ref()
        .map(|m| format!("app:{}/{}", m.project, m.name))
        .unwrap_or_default();
    let dry_run = req.dry_run;
    let result = update_inner(api, call, req).await;
    if !dry_run {
        api.audit(call, &target, &result).await;
    }
    result
}

async fn update_inner(
    api: &HubApi,
    call: &Call,
    req: v1::UpdateApplicationRequest,
) -> Result<v1::Application, Status> {
    let (app, spec, labels) = checked_spec(api, call, req.meta.as_ref(), req.spec.as_ref()).await?;
    let what = format!("application {app}");
    let existing = api
        .store()
        .get_app(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, what.clone()))?;
    refuse_owned(&existing)?;
    let expected = match req.expected_spec_version {
        0 => existing.spec_version,
        v => v,
    };
    if req.dry_run {
        if expected != existing.spec_version {
            return Err(Status::aborted(format!(
                "{what} was changed concurrently: expected version {expected}, found {}",
                existing.spec_version
            )));
        }
        let mut preview = existing.clone();
        preview.spec = spec;
        preview.labels = labels;
        return Ok(convert::application(&preview, None));
    }
    if expected == existing.spec_version && existing.spec == spec && existing.labels == labels {
        // Unchanged: no new version, nothing to announce.
        return Ok(convert::application(&existing, None));
    }
    let updated = api
        .store()
        .update_app(
            app.project.as_str(),
            app.name.as_str(),
            expected,
            &spec,
            &labels,
        )
        .await
        .map_err(|e| store_error(e, what))?;
    announce_desired(api, &existing.cluster, &updated.cluster).await;
    Ok(convert::application(&updated, None))
}

/// One rule on every write path: an app generated by an ApplicationSet (or
/// another owner) is changed through its owner, which would otherwise
/// revert the change at its next evaluation.
pub(crate) fn refuse_owned(existing: &AppRecord) -> Result<(), Status> {
    match &existing.owner {
        Some(owner) => Err(Status::failed_precondition(format!(
            "application {}/{} is owned by {} {}/{}; change that instead",
            existing.project, existing.name, owner.kind, owner.project, owner.name
        ))),
        None => Ok(()),
    }
}

pub(super) async fn delete(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteApplicationRequest,
) -> Result<v1::DeleteApplicationResponse, Status> {
    let target = req
        .app
        .as_ref()
        .map(|a| format!("app:{}/{}", a.project, a.name))
        .unwrap_or_default();
    let result = delete_inner(api, call, req).await;
    api.audit(call, &target, &result).await;
    result
}

async fn delete_inner(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteApplicationRequest,
) -> Result<v1::DeleteApplicationResponse, Status> {
    let app = convert::app_ref(req.app.as_ref())?;
    api.authorize(call, Action::Edit, app.project.as_str())
        .await?;
    let what = format!("application {app}");
    let existing = api
        .store()
        .get_app(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, what.clone()))?;
    if existing.origin == edgecd_core::app::AppOrigin::Autonomous {
        // Created at the edge: the hub forgets its record at once (it never
        // manages the app, and a spoke that does not cooperate cannot keep
        // it shown), and asks its spoke, if it can, to delete it there (with
        // its resources when cascading). A set evaluated there generates it
        // again, as Argo CD's ApplicationSet controller does; a spoke that
        // reports it again and whose project admits it there brings it back;
        // revoking the cluster removes all.
        let cluster = api
            .store()
            .get_cluster(&existing.cluster)
            .await
            .map_err(|e| store_error(e, format!("cluster {}", existing.cluster)))?;
        let can_delete = cluster
            .versions
            .capabilities
            .iter()
            .any(|c| c == edgecd_core::link::capabilities::names::COMMAND_DELETE);
        if can_delete {
            super::commands::enqueue(
                api,
                call,
                &app,
                Some(&existing.cluster),
                crate::link::CommandPayload::Delete {
                    cascade: req.cascade,
                },
                super::commands::DEFAULT_TTL,
            )
            .await?;
        }
        api.store()
            .delete_edge_apps(
                &existing.cluster,
                Some((app.project.as_str(), app.name.as_str())),
            )
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        api.announce(APP_DELETED_CHANNEL, &app.to_string()).await;
        return Ok(v1::DeleteApplicationResponse {});
    }
    api.store()
        .delete_app_with(app.project.as_str(), app.name.as_str(), None, !req.cascade)
        .await
        .map_err(|e| store_error(e, what.clone()))?;
    if existing.cluster == HUB_CLUSTER && req.cascade {
        // An app-of-apps parent: its children go with it (without cascade
        // they stay, as Argo CD leaves a parent's child Applications).
        crate::appsets::delete_children(api.store(), app.project.as_str(), app.name.as_str())
            .await
            .map_err(|e| store_error(e, format!("children of {what}")))?;
    }
    api.announce(DESIRED_CHANNEL, &existing.cluster).await;
    api.announce(APP_DELETED_CHANNEL, &app.to_string()).await;
    Ok(v1::DeleteApplicationResponse {})
}

pub(super) async fn resource_tree(
    api: &HubApi,
    call: &Call,
    req: v1::GetResourceTreeRequest,
) -> Result<v1::ResourceTreeResponse, Status> {
    let app = convert::app_ref(req.app.as_ref())?;
    api.authorize(call, Action::Read, app.project.as_str())
        .await?;
    let tree = api
        .store()
        .get_resource_tree(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, format!("application {app}")))?;
    let nodes = tree
        .as_ref()
        .and_then(|t| t.get("nodes"))
        .and_then(|n| n.as_array())
        .map(|nodes| nodes.iter().map(tree_node).collect())
        .unwrap_or_default();
    Ok(v1::ResourceTreeResponse {
        nodes,
        reported_at: None,
    })
}

fn tree_node(n: &serde_json::Value) -> v1::ResourceNodeInfo {
    let key = n
        .get("key")
        .and_then(|k| serde_json::from_value::<edgecd_core::app::ResourceKey>(k.clone()).ok());
    let health = n
        .get("health")
        .and_then(|h| serde_json::from_value::<edgecd_core::Health>(h.clone()).ok());
    v1::ResourceNodeInfo {
        key: key.as_ref().map(pc::resource_key),
        uid: n
            .get("uid")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        parent_uids: n
            .get("parentUids")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        health: health.map(|h| v1::HealthStatus {
            status: pc::health_code(h) as i32,
            message: n
                .get("healthMessage")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
        }),
        info: n
            .get("info")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        sync: 0,
    }
}

pub(super) async fn history(
    api: &HubApi,
    call: &Call,
    req: v1::ListHistoryRequest,
) -> Result<v1::ListHistoryResponse, Status> {
    let app = convert::app_ref(req.app.as_ref())?;
    api.authorize(call, Action::Read, app.project.as_str())
        .await?;
    let record = api
        .store()
        .get_app(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, format!("application {app}")))?;
    let entries = record
        .status
        .as_ref()
        .map(|s| pc::application_status(s).history)
        .unwrap_or_default();
    Ok(v1::ListHistoryResponse { entries })
}
