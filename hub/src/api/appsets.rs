//! Application-set RPCs: list and get (readable projects), create, update and delete (project owners), with dry runs that show what would be generated.

use edgecd_core::access::Action;
use edgecd_core::appset::ApplicationSetSpec;
use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::apps::page_size;
use super::clusters::offset_page;
use super::{Call, HubApi, store_error};
use edgecd_core::appset::AppSetScope;

use crate::appsets::{APPSETS_CHANNEL, OWNER_KIND, delete_owned};
use crate::link::DESIRED_CHANNEL;
use crate::store::appsets::HUB_SCOPE;
use crate::store::{AppSetRecord, NewAppSet, StoreError};

/// The protocol form of a stored set, with its last evaluation.
pub(crate) fn to_proto(record: &AppSetRecord) -> Result<v1::ApplicationSet, Status> {
    let spec = ApplicationSetSpec::from_json(&record.spec).map_err(|e| {
        Status::internal(format!(
            "stored application set {}/{} no longer parses: {e}",
            record.project, record.name
        ))
    })?;
    let mut set = pc::appset_spec_to_proto(&record.project, &record.name, &record.scope, &spec)
        .map_err(|e| Status::internal(e.to_string()))?;
    set.version = record.version;
    set.generated = record
        .status
        .generated
        .iter()
        .map(|qualified| {
            let (project, name) = qualified.split_once('/').unwrap_or(("", qualified));
            v1::AppRef {
                project: project.to_owned(),
                name: name.to_owned(),
            }
        })
        .collect();
    set.conditions = record
        .status
        .conditions
        .iter()
        .map(|c| v1::Condition {
            r#type: c.kind.clone(),
            message: c.message.clone(),
            last_transition_time: Some(pc::timestamp(c.last_transition_time)),
        })
        .collect();
    set.rollout = record
        .status
        .rollout
        .iter()
        .map(|r| v1::RolloutApplication {
            app: Some(v1::AppRef {
                project: r.project.clone(),
                name: r.application.clone(),
            }),
            status: r.status.as_str().to_owned(),
            step: i32::try_from(r.step).unwrap_or(-1),
            message: r.message.clone(),
            last_transition_time: Some(pc::timestamp(r.last_transition_time)),
            command_id: r.command.clone(),
        })
        .collect();
    set.created_at = Some(pc::timestamp(record.created_at));
    Ok(set)
}

/// A validated set to store: names, spec as Argo JSON, and scope (`hub`, enrolled clusters, or a selector).
pub(crate) async fn parse(
    api: &HubApi,
    set: Option<&v1::ApplicationSet>,
) -> Result<(NewAppSet, ApplicationSetSpec), Status> {
    let set = set.ok_or_else(|| Status::invalid_argument("application_set is required"))?;
    let project = if set.project.is_empty() {
        "default"
    } else {
        set.project.as_str()
    };
    edgecd_core::ProjectName::parse(project)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    edgecd_core::names::AppName::parse(set.name.as_str())
        .map_err(|e| Status::invalid_argument(format!("application set {e}")))?;
    let spec = pc::appset_spec_from_proto(set).map_err(|e| {
        Status::invalid_argument(format!("application set {project}/{}: {e}", set.name))
    })?;
    let scope = match set.scope.as_str() {
        "" => AppSetScope::Hub,
        text => AppSetScope::parse(text).map_err(|e| {
            Status::invalid_argument(format!("application set {project}/{}: {e}", set.name))
        })?,
    };
    // Decision resources are held by the hub, and only the hub sees a rollout's apps across clusters: such
    // a set is evaluated there.
    if scope != AppSetScope::Hub
        && let Some(why) = spec.hub_only()
    {
        return Err(Status::invalid_argument(format!(
            "application set {project}/{}: the set is evaluated at the hub ({why}): apply it without a cluster scope",
            set.name
        )));
    }
    // Named clusters must be registered; a selector may match clusters enrolled later.
    if let AppSetScope::Clusters(names) = &scope {
        for cluster in names {
            api.store()
                .get_cluster(cluster)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => Status::failed_precondition(format!(
                        "scope: cluster {cluster} is not registered at this hub"
                    )),
                    other => store_error(other, format!("cluster {cluster}")),
                })?;
        }
    }
    let scope = scope.to_string();
    let json = serde_json::to_value(&spec).map_err(|e| Status::internal(e.to_string()))?;
    Ok((
        NewAppSet {
            project: project.to_owned(),
            name: set.name.clone(),
            scope,
            spec: json,
            owner: None,
        },
        spec,
    ))
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListApplicationSetsRequest,
) -> Result<v1::ListApplicationSetsResponse, Status> {
    let readable = api.projects_with(call, ProjectRole::Viewer).await?;
    let sets: Vec<AppSetRecord> = api
        .store()
        .appsets()
        .list_appsets(&req.projects, None)
        .await
        .map_err(|e| store_error(e, "application sets"))?
        .into_iter()
        .filter(|s| readable.as_ref().is_none_or(|r| r.contains(&s.project)))
        .collect();
    let (page, next_page_token) = offset_page(sets, page_size(req.page_size), &req.page_token)?;
    let mut items = Vec::with_capacity(page.len());
    for record in &page {
        items.push(with_edge_apps(api, record).await?);
    }
    Ok(v1::ListApplicationSetsResponse {
        items,
        next_page_token,
    })
}

/// Most generated apps shown for a set evaluated at a spoke.
const EDGE_GENERATED_SHOWN: u32 = 1000;

/// The protocol form of a stored set; for a set evaluated at a spoke, whose
/// evaluations the hub does not hold, `generated` lists the apps that spoke
/// reported as owned by the set (`name@cluster`, at most 1,000, from the
/// owner index).
pub(super) async fn with_edge_apps(
    api: &HubApi,
    record: &AppSetRecord,
) -> Result<v1::ApplicationSet, Status> {
    let mut set = to_proto(record)?;
    if record.scope == HUB_SCOPE {
        return Ok(set);
    }
    let query = crate::store::AppQuery {
        filter: crate::store::AppFilter {
            projects: vec![record.project.clone()],
            origin: Some(edgecd_core::app::AppOrigin::Autonomous),
            // Every cluster's spoke names its own cluster as the owner's scope.
            owner: Some(edgecd_core::app::OwnerRef {
                kind: "ApplicationSet".into(),
                project: record.project.clone(),
                name: record.name.clone(),
                scope: String::new(),
            }),
            ..crate::store::AppFilter::default()
        },
        sort: Default::default(),
        page_size: EDGE_GENERATED_SHOWN,
        cursor: None,
    };
    let page = api.store().list_apps(&query).await.map_err(|e| {
        store_error(
            e,
            format!(
                "applications of application set {}/{}",
                record.project, record.name
            ),
        )
    })?;
    set.generated = page
        .items
        .into_iter()
        .map(|a| v1::AppRef {
            project: a.project,
            name: a.name,
        })
        .collect();
    Ok(set)
}

pub(super) async fn get(
    api: &HubApi,
    call: &Call,
    req: v1::GetApplicationSetRequest,
) -> Result<v1::ApplicationSet, Status> {
    api.authorize(call, Action::Read, &req.project).await?;
    let record = api
        .store()
        .appsets()
        .get_appset(&req.project, &req.name)
        .await
        .map_err(|e| store_error(e, format!("application set {}/{}", req.project, req.name)))?;
    with_edge_apps(api, &record).await
}

pub(super) async fn create(
    api: &HubApi,
    call: &Call,
    req: v1::CreateApplicationSetRequest,
) -> Result<v1::ApplicationSet, Status> {
    let target = target(req.application_set.as_ref());
    let dry_run = req.dry_run;
    let result = async {
        let (new, spec) = parse(api, req.application_set.as_ref()).await?;
        api.authorize(call, Action::Edit, &new.project).await?;
        if dry_run {
            return preview(api, &new, &spec).await;
        }
        let record = write(api, &new, req.upsert, None).await?;
        to_proto(&record)
    }
    .await;
    if !dry_run {
        api.audit(call, &target, &result).await;
    }
    result
}

pub(super) async fn update(
    api: &HubApi,
    call: &Call,
    req: v1::UpdateApplicationSetRequest,
) -> Result<v1::ApplicationSet, Status> {
    let target = target(req.application_set.as_ref());
    let result = async {
        let (new, _) = parse(api, req.application_set.as_ref()).await?;
        api.authorize(call, Action::Edit, &new.project).await?;
        let record = write(api, &new, false, Some(req.expected_version)).await?;
        to_proto(&record)
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

fn target(set: Option<&v1::ApplicationSet>) -> String {
    set.map(|s| format!("appset:{}/{}", s.project, s.name))
        .unwrap_or_default()
}

/// What a create would generate, without writing: the set as it would be stored, `generated` filled.
async fn preview(
    api: &HubApi,
    new: &NewAppSet,
    spec: &ApplicationSetSpec,
) -> Result<v1::ApplicationSet, Status> {
    let mut set = pc::appset_spec_to_proto(&new.project, &new.name, &new.scope, spec)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    if new.scope != HUB_SCOPE {
        // Evaluated by the spoke, with its own view of git.
        return Ok(set);
    }
    let Some(controller) = api.appset_controller() else {
        return Ok(set);
    };
    let (apps, problems, _) = controller.preview(&new.project, spec).await.map_err(|e| {
        Status::invalid_argument(format!("application set {}/{}: {e}", new.project, new.name))
    })?;
    set.generated = apps
        .iter()
        .map(|a| v1::AppRef {
            project: a.project.clone(),
            name: a.name.clone(),
        })
        .collect();
    set.conditions = problems
        .into_iter()
        .map(|(name, why)| v1::Condition {
            r#type: "ErrorOccurred".into(),
            message: format!("{name}: {why}"),
            last_transition_time: None,
        })
        .collect();
    Ok(set)
}

/// Creates, upserts or updates a set, then wakes its evaluator (the hub's controller or the scope's spoke).
pub(crate) async fn write(
    api: &HubApi,
    new: &NewAppSet,
    upsert: bool,
    expected_version: Option<u64>,
) -> Result<AppSetRecord, Status> {
    let what = format!("application set {}/{}", new.project, new.name);
    let store = api.store().appsets();
    let existing = match store.get_appset(&new.project, &new.name).await {
        Ok(existing) => Some(existing),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => return Err(store_error(error, what)),
    };
    let record = match (existing, expected_version) {
        (None, Some(_)) => {
            return Err(Status::not_found(format!("{what} not found")));
        }
        (None, None) => store
            .create_appset(new)
            .await
            .map_err(|e| store_error(e, what.clone()))?,
        (Some(_), None) if !upsert => {
            return Err(Status::already_exists(format!("{what} already exists")));
        }
        (Some(existing), _) if existing.owner.is_some() => {
            let owner = existing.owner.as_ref().map_or(String::new(), |o| {
                format!("{} {}/{}", o.kind, o.project, o.name)
            });
            return Err(Status::failed_precondition(format!(
                "{what} is owned by {owner}; change that instead"
            )));
        }
        (Some(existing), expected) => {
            let expected = match expected {
                Some(0) | None => existing.version,
                Some(v) => v,
            };
            if existing.spec == new.spec
                && existing.scope == new.scope
                && expected == existing.version
            {
                return Ok(existing);
            }
            let record = store
                .update_appset(new, expected)
                .await
                .map_err(|e| store_error(e, what.clone()))?;
            if existing.scope != record.scope {
                // The clusters it no longer reaches drop it (and its apps, per its policy).
                announce_clusters(api, &existing).await;
            }
            record
        }
    };
    announce(api, &record).await;
    Ok(record)
}

/// Announces a written or deleted set to watchers and the hub's controller
/// (which evaluates hub-scoped sets only), and a spoke-scoped set to its
/// spoke's session, which re-sends its sets on that signal.
async fn announce(api: &HubApi, record: &AppSetRecord) {
    api.announce(
        APPSETS_CHANNEL,
        &format!("{}/{}", record.project, record.name),
    )
    .await;
    announce_clusters(api, record).await;
}

/// Wakes the sessions of the clusters whose spokes evaluate `record`, which re-send their sets.
async fn announce_clusters(api: &HubApi, record: &AppSetRecord) {
    match crate::appsets::clusters_reached(api.store(), &crate::appsets::scope_of(record)).await {
        Ok(clusters) => {
            for cluster in clusters {
                api.announce(DESIRED_CHANNEL, &cluster).await;
            }
        }
        // The sessions re-check their sets every few heartbeats anyway.
        Err(error) => {
            tracing::warn!(%error, set = %record.name, "Cannot list the clusters of an application set.")
        }
    }
}

pub(super) async fn delete(
    api: &HubApi,
    call: &Call,
    req: v1::DeleteApplicationSetRequest,
) -> Result<v1::DeleteApplicationSetResponse, Status> {
    let target = format!("appset:{}/{}", req.project, req.name);
    let result = async {
        api.authorize(call, Action::Edit, &req.project).await?;
        let what = format!("application set {}/{}", req.project, req.name);
        let record = api
            .store()
            .appsets()
            .get_appset(&req.project, &req.name)
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        api.store()
            .appsets()
            .delete_appset(&req.project, &req.name)
            .await
            .map_err(|e| store_error(e, what.clone()))?;
        if record.scope == HUB_SCOPE {
            // Argo CD deletes the generated apps with their set.
            let owner = edgecd_core::app::OwnerRef {
                kind: OWNER_KIND.into(),
                project: record.project.clone(),
                name: record.name.clone(),
                scope: HUB_SCOPE.into(),
            };
            delete_owned(api.store(), &owner)
                .await
                .map_err(|e| store_error(e, format!("applications of {what}")))?;
        }
        announce(api, &record).await;
        Ok(v1::DeleteApplicationSetResponse {})
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}
