//! Command RPCs: sync, refresh, rollback and terminate go to the durable outbox and return at once; diff and manifests wait for the spoke's answer; bulk commands over a filter; get and list.

use std::time::Duration;

use edgecd_core::AppRef;
use edgecd_core::access::Action;
use edgecd_core::project::ProjectRole;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use time::OffsetDateTime;
use tonic::Status;

use super::apps::{page_size, scoped_filter};
use super::convert;
use super::{Call, HubApi, store_error, with_retry_after};
use crate::link::{CommandPayload, command_payload_kind};
use crate::store::{
    AppQuery, AppRecord, ClusterRecord, CommandOutcome, CommandRecord, CommandScope,
    ConnectionKind, NewCommand,
};

pub(super) const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Apps one bulk command may address.
const BULK_LIMIT: usize = 10_000;
/// Resources one selective sync may name.
const MAX_SELECTED_RESOURCES: usize = 1_000;

fn ttl(requested: Option<&edgecd_proto::Duration>) -> Result<Duration, Status> {
    match requested {
        None => Ok(DEFAULT_TTL),
        Some(d) => match pc::from_duration(d) {
            Some(d) if d.is_zero() => Ok(DEFAULT_TTL),
            Some(d) if d <= MAX_TTL => Ok(d),
            _ => Err(Status::invalid_argument("ttl must be between 0 and 7 days")),
        },
    }
}

/// Enqueues a command for an app the caller may operate; audited.
async fn issue(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    payload: CommandPayload,
    ttl: Duration,
    request_id: &str,
) -> Result<v1::CommandStatus, Status> {
    let target = app
        .map(|a| format!("app:{}/{}", a.project, a.name))
        .unwrap_or_default();
    let result = async {
        let app = convert::app_ref(app)?;
        let request_id = parse_request_id(request_id)?;
        api.authorize(call, Action::Operate, app.project.as_str())
            .await?;
        // A retry answers with what the first call issued, before anything that may have changed since
        // (the app deleted, automated sync turned on) could refuse it.
        if let Some(id) = &request_id
            && let Some(status) = earlier_request(api, &app, &payload, id).await?
        {
            return Ok(status);
        }
        let record = api
            .store()
            .get_app(app.project.as_str(), app.name.as_str())
            .await
            .map_err(|e| store_error(e, format!("application {app}")))?;
        refuse_up_front(&record, &payload)?;
        // An identical command still waiting for delivery is the same
        // request: answer with it instead of queueing the work twice. Not
        // under a request id: the command must then take that id, or a retry
        // whose answer was lost (and the joined command delivered since)
        // would find nothing under it and issue the work a second time.
        if request_id.is_none()
            && let Some(queued) = identical_pending(api, &app, &payload).await?
        {
            let mut status = convert::command_status(&queued);
            status.notice = format!(
                "an identical {} command queued at {} by {} has not been delivered yet: this request joins it",
                queued.kind,
                queued
                    .issued_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                queued.issued_by
            );
            return Ok(status);
        }
        let command = match enqueue_as(
            api,
            call,
            &app,
            Some(&record.cluster),
            payload.clone(),
            ttl,
            request_id.clone(),
        )
        .await
        {
            Ok(command) => command,
            // Two calls with one request id at once: the other one's insert won.
            Err(error) => match &request_id {
                Some(id) => match earlier_request(api, &app, &payload, id).await? {
                    Some(status) => return Ok(status),
                    None => return Err(error),
                },
                None => return Err(error),
            },
        };
        let mut status = convert::command_status(&command);
        status.notice = unreachable_notice(api, &command.cluster).await;
        Ok(status)
    }
    .await;
    api.audit(call, &target, &result).await;
    result
}

/// A request id, when given: a UUID (any version), kept in its canonical lower-case form so a retry
/// spelled differently is still the same request.
fn parse_request_id(raw: &str) -> Result<Option<String>, Status> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 64 {
        return Err(Status::invalid_argument(
            "request_id must be a UUID (it is longer than 64 bytes)",
        ));
    }
    uuid::Uuid::parse_str(raw)
        .map(|id| Some(id.hyphenated().to_string()))
        .map_err(|e| Status::invalid_argument(format!("request_id {raw:?} is not a UUID: {e}")))
}

/// The command an earlier call with this request id issued, when there was one: the same app and
/// the same command answer with it (a retry), anything else is refused rather than answered with a
/// command the caller did not ask for.
async fn earlier_request(
    api: &HubApi,
    app: &AppRef,
    payload: &CommandPayload,
    id: &str,
) -> Result<Option<v1::CommandStatus>, Status> {
    let earlier = match api.store().get_command(id).await {
        Ok(command) => command,
        Err(crate::store::StoreError::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(store_error(error, format!("command {id}"))),
    };
    let wanted =
        serde_json::to_value(payload).map_err(|_| Status::internal("cannot encode the command"))?;
    if earlier.project != app.project.as_str()
        || earlier.app != app.name.as_str()
        || earlier.kind != command_payload_kind(payload)
        || earlier.payload != wanted
    {
        return Err(Status::already_exists(format!(
            "request_id {id} was already used for a different request; use a new UUID for a new request"
        )));
    }
    let mut status = convert::command_status(&earlier);
    status.notice = format!(
        "request {id} was already received: this is the {} command it issued",
        earlier.kind
    );
    Ok(Some(status))
}

/// Refusals the hub can know before queueing, so the caller hears at once rather than after the spoke answers:
/// a rollback while automated sync is on (it would sync straight back) or to an entry the app's history lacks.
fn refuse_up_front(app: &AppRecord, payload: &CommandPayload) -> Result<(), Status> {
    let CommandPayload::Rollback { history_id, .. } = payload else {
        return Ok(());
    };
    let name = format!("{}/{}", app.project, app.name);
    let what = format!("application {name}");
    if app.spec.automated().is_some() {
        return Err(Status::failed_precondition(format!(
            "rollback of {name} is refused while automated sync is on (it would sync back at once); \
             turn it off first (edgecd app set {name} --auto-sync=false)"
        )));
    }
    let history = app
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    if !history.iter().any(|h| h.id == *history_id) {
        let known = history
            .iter()
            .map(|h| h.id.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Status::not_found(if known.is_empty() {
            format!("{what} has no deployment history to roll back to (history id {history_id})")
        } else {
            format!("{what} has no history entry {history_id} (known: {known})")
        }));
    }
    Ok(())
}

/// A still-Pending command for the app with exactly this payload.
async fn identical_pending(
    api: &HubApi,
    app: &AppRef,
    payload: &CommandPayload,
) -> Result<Option<CommandRecord>, Status> {
    let kind = command_payload_kind(payload);
    if !matches!(kind, "sync" | "refresh") {
        return Ok(None);
    }
    let wanted =
        serde_json::to_value(payload).map_err(|_| Status::internal("cannot encode the command"))?;
    let now = OffsetDateTime::now_utc();
    let pending = api
        .store()
        .pending_commands_of_app(app.project.as_str(), app.name.as_str(), kind)
        .await
        .map_err(|e| store_error(e, format!("the commands of application {app}")))?;
    Ok(pending
        .into_iter()
        .find(|c| c.deadline > now && c.payload == wanted))
}

/// What the caller should know when the command's cluster is not connected: it waits for the spoke.
async fn unreachable_notice(api: &HubApi, cluster: &str) -> String {
    match api.store().get_cluster(cluster).await {
        Ok(record) => connection_notice(cluster, record.connection.state),
        Err(error) => {
            tracing::debug!(%cluster, %error, "No cluster record for a command notice.");
            String::new()
        }
    }
}

/// The notice for a command queued for a cluster in `state` (empty when connected).
pub(super) fn connection_notice(cluster: &str, state: ConnectionKind) -> String {
    let what = match state {
        ConnectionKind::Connected => return String::new(),
        ConnectionKind::Pending => "has not connected yet",
        ConnectionKind::Stale => "is Stale (its spoke has gone quiet)",
        ConnectionKind::Disconnected => "is Disconnected",
        ConnectionKind::Revoked => {
            return format!("cluster {cluster} is revoked: the command will never be delivered");
        }
    };
    format!(
        "cluster {cluster} {what}: the command is queued and runs when its spoke connects, unless its time to live passes first"
    )
}

/// Writes one command to the outbox (which announces it to the replica
/// holding the cluster's stream). `cluster` skips looking the app up.
pub(super) async fn enqueue(
    api: &HubApi,
    call: &Call,
    app: &AppRef,
    cluster: Option<&str>,
    payload: CommandPayload,
    ttl: Duration,
) -> Result<CommandRecord, Status> {
    enqueue_as(api, call, app, cluster, payload, ttl, None).await
}

/// [`enqueue`] with the id the command takes (a caller's request id), or a fresh one.
async fn enqueue_as(
    api: &HubApi,
    call: &Call,
    app: &AppRef,
    cluster: Option<&str>,
    payload: CommandPayload,
    ttl: Duration,
    id: Option<String>,
) -> Result<CommandRecord, Status> {
    let what = format!("application {app}");
    let cluster = match cluster {
        Some(cluster) => cluster.to_owned(),
        None => {
            api.store()
                .get_app(app.project.as_str(), app.name.as_str())
                .await
                .map_err(|e| store_error(e, what.clone()))?
                .cluster
        }
    };
    let command = NewCommand {
        id,
        project: app.project.as_str().to_owned(),
        app: app.name.as_str().to_owned(),
        cluster,
        kind: command_payload_kind(&payload).to_owned(),
        payload: serde_json::to_value(&payload)
            .map_err(|_| Status::internal("cannot encode the command"))?,
        issued_by: call.principal.subject.clone(),
        deadline: OffsetDateTime::now_utc() + ttl,
        trace: call.trace.clone(),
    };
    let record = api
        .store()
        .enqueue_command(&command)
        .await
        .map_err(|e| store_error(e, format!("a command for {what}")))?;
    api.metrics().commands_issued.inc();
    tracing::info!(command = %record.id, kind = %record.kind, app = %app, cluster = %record.cluster, "Command issued.");
    Ok(record)
}

fn sync_payload(sync: Option<&v1::SyncCommand>) -> Result<CommandPayload, Status> {
    let sync = sync.cloned().unwrap_or_default();
    if sync.resources.len() > MAX_SELECTED_RESOURCES {
        return Err(Status::invalid_argument(format!(
            "a sync selects at most {MAX_SELECTED_RESOURCES} resources ({} given); sync the whole application instead",
            sync.resources.len()
        )));
    }
    let mut resources = Vec::with_capacity(sync.resources.len());
    for key in &sync.resources {
        if key.kind.is_empty() || key.name.is_empty() {
            return Err(Status::invalid_argument(
                "a selected resource needs a kind and a name (group and namespace as the object has them)",
            ));
        }
        resources.push(pc::from_resource_key(key));
    }
    Ok(CommandPayload::Sync {
        revision: sync.revision,
        prune: sync.prune,
        dry_run: sync.dry_run,
        force: sync.force,
        resources,
        apply_out_of_sync_only: sync.apply_out_of_sync_only,
    })
}

pub(super) async fn sync(
    api: &HubApi,
    call: &Call,
    req: v1::SyncApplicationRequest,
) -> Result<v1::CommandStatus, Status> {
    let payload = sync_payload(req.sync.as_ref())?;
    issue(
        api,
        call,
        req.app.as_ref(),
        payload,
        ttl(req.ttl.as_ref())?,
        &req.request_id,
    )
    .await
}

pub(super) async fn refresh(
    api: &HubApi,
    call: &Call,
    req: v1::RefreshApplicationRequest,
) -> Result<v1::CommandStatus, Status> {
    let payload = CommandPayload::Refresh { hard: req.hard };
    issue(
        api,
        call,
        req.app.as_ref(),
        payload,
        ttl(req.ttl.as_ref())?,
        &req.request_id,
    )
    .await
}

pub(super) async fn rollback(
    api: &HubApi,
    call: &Call,
    req: v1::RollbackApplicationRequest,
) -> Result<v1::CommandStatus, Status> {
    let payload = CommandPayload::Rollback {
        history_id: req.history_id,
        prune: req.prune,
        dry_run: req.dry_run,
    };
    issue(
        api,
        call,
        req.app.as_ref(),
        payload,
        ttl(req.ttl.as_ref())?,
        &req.request_id,
    )
    .await
}

pub(super) async fn terminate(
    api: &HubApi,
    call: &Call,
    req: v1::TerminateOperationRequest,
) -> Result<v1::CommandStatus, Status> {
    issue(
        api,
        call,
        req.app.as_ref(),
        CommandPayload::Terminate,
        DEFAULT_TTL,
        &req.request_id,
    )
    .await
}

/// The app's record and its cluster's.
pub(super) async fn app_and_cluster(
    api: &HubApi,
    app: &AppRef,
) -> Result<(AppRecord, ClusterRecord), Status> {
    let record = api
        .store()
        .get_app(app.project.as_str(), app.name.as_str())
        .await
        .map_err(|e| store_error(e, format!("application {app}")))?;
    let cluster = api
        .store()
        .get_cluster(&record.cluster)
        .await
        .map_err(|e| store_error(e, format!("cluster {}", record.cluster)))?;
    Ok((record, cluster))
}

/// Sends a query command to the app's spoke and waits for its answer.
async fn query(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    payload: CommandPayload,
) -> Result<CommandRecord, Status> {
    let app = convert::app_ref(app)?;
    api.authorize(call, Action::Read, app.project.as_str())
        .await?;
    let (_, cluster) = app_and_cluster(api, &app).await?;
    let retry = api.config().retry_after;
    if !matches!(
        cluster.connection.state,
        ConnectionKind::Connected | ConnectionKind::Stale
    ) || cluster.revoked_at.is_some()
    {
        return Err(with_retry_after(
            Status::unavailable(format!(
                "cluster {} is not connected; the spoke computes this answer",
                cluster.name
            )),
            retry,
        ));
    }
    let timeout = api.config().query_timeout;
    let command = enqueue(api, call, &app, Some(&cluster.name), payload, timeout).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        let current = api
            .store()
            .get_command(&command.id)
            .await
            .map_err(|e| store_error(e, format!("command {}", command.id)))?;
        match current.outcome {
            CommandOutcome::Succeeded => return Ok(current),
            CommandOutcome::Failed | CommandOutcome::Rejected => {
                return Err(Status::failed_precondition(format!(
                    "cluster {} could not answer for application {app}: {}",
                    cluster.name, current.message
                )));
            }
            CommandOutcome::Unsupported => {
                return Err(Status::unimplemented(format!(
                    "the spoke of cluster {} does not support this query: {}",
                    cluster.name, current.message
                )));
            }
            CommandOutcome::Expired => break,
            CommandOutcome::Pending | CommandOutcome::Delivered | CommandOutcome::Running => {}
        }
        if tokio::time::Instant::now() + pause > deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
    Err(with_retry_after(
        Status::unavailable(format!(
            "cluster {} did not answer within {}s",
            cluster.name,
            timeout.as_secs()
        )),
        retry,
    ))
}

pub(super) async fn diff(
    api: &HubApi,
    call: &Call,
    req: v1::GetApplicationDiffRequest,
) -> Result<v1::DiffResult, Status> {
    if req.resources.len() > MAX_SELECTED_RESOURCES {
        return Err(Status::invalid_argument(format!(
            "a diff selects at most {MAX_SELECTED_RESOURCES} resources ({} given)",
            req.resources.len()
        )));
    }
    let record = query(api, call, req.app.as_ref(), CommandPayload::Diff).await?;
    let mut result = convert::diff_result(record.result.as_ref()).unwrap_or_default();
    // Selected resources: matched by group, kind, namespace and name (any version), as a selective sync.
    if !req.resources.is_empty() {
        let same = |a: &v1::ResourceKey, b: &v1::ResourceKey| {
            a.group == b.group && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
        };
        result.resources.retain(|diff| {
            diff.key
                .as_ref()
                .is_some_and(|key| req.resources.iter().any(|wanted| same(key, wanted)))
        });
    }
    Ok(result)
}

pub(super) async fn manifests(
    api: &HubApi,
    call: &Call,
    req: v1::GetApplicationManifestsRequest,
) -> Result<v1::ManifestsResult, Status> {
    let payload = CommandPayload::Manifests {
        revision: req.revision,
    };
    let record = query(api, call, req.app.as_ref(), payload).await?;
    Ok(convert::manifests_result(record.result.as_ref()).unwrap_or_default())
}

pub(super) async fn bulk(
    api: &HubApi,
    call: &Call,
    req: v1::BulkCommandRequest,
) -> Result<v1::BulkCommandResponse, Status> {
    let result = bulk_inner(api, call, &req).await;
    let target = format!(
        "bulk:{}",
        serde_json::to_string(&convert::filter(req.filter.as_ref()).ok()).unwrap_or_default()
    );
    api.audit(call, &target, &result).await;
    result
}

async fn bulk_inner(
    api: &HubApi,
    call: &Call,
    req: &v1::BulkCommandRequest,
) -> Result<v1::BulkCommandResponse, Status> {
    use v1::bulk_command_request::Kind;
    let payload = match &req.kind {
        Some(Kind::Sync(sync)) => sync_payload(Some(sync))?,
        Some(Kind::Refresh(refresh)) => CommandPayload::Refresh { hard: refresh.hard },
        None => {
            return Err(Status::invalid_argument(
                "kind (sync or refresh) is required",
            ));
        }
    };
    let ttl = ttl(req.ttl.as_ref())?;
    // Only apps of projects the caller may operate in.
    let Some(filter) = scoped_filter(api, call, req.filter.as_ref(), ProjectRole::Deployer).await?
    else {
        return Ok(v1::BulkCommandResponse::default());
    };
    let mut query = AppQuery {
        filter,
        sort: Default::default(),
        page_size: page_size(1000),
        cursor: None,
    };
    let mut targets = Vec::new();
    loop {
        let page = api
            .store()
            .list_apps(&query)
            .await
            .map_err(|e| store_error(e, "applications"))?;
        if page.total.is_some_and(|t| t as usize > BULK_LIMIT) {
            return Err(Status::invalid_argument(format!(
                "the filter matches {} applications; a bulk command addresses at most {BULK_LIMIT}",
                page.total.unwrap_or(0)
            )));
        }
        targets.extend(
            page.items
                .into_iter()
                .map(|s| (s.project, s.name, s.cluster, s.cluster_connection)),
        );
        match page.next_cursor {
            Some(cursor) if targets.len() < BULK_LIMIT => query.cursor = Some(cursor),
            _ => break,
        }
    }
    // One transaction for all of them: a multi-row insert and one
    // announcement per cluster (see `Store::enqueue_commands`).
    let kind = command_payload_kind(&payload).to_owned();
    let payload = serde_json::to_value(&payload)
        .map_err(|_| Status::internal("cannot encode the command"))?;
    let deadline = OffsetDateTime::now_utc() + ttl;
    let mut notices = Vec::with_capacity(targets.len());
    let commands: Vec<NewCommand> = targets
        .into_iter()
        .map(|(project, app, cluster, connection)| {
            notices.push(
                connection.map_or_else(String::new, |state| connection_notice(&cluster, state)),
            );
            NewCommand {
                id: None,
                project,
                app,
                cluster,
                kind: kind.clone(),
                payload: payload.clone(),
                issued_by: call.principal.subject.clone(),
                deadline,
                trace: call.trace.clone(),
            }
        })
        .collect();
    let records = api
        .store()
        .enqueue_commands(&commands)
        .await
        .map_err(|e| store_error(e, "bulk commands"))?;
    api.metrics().commands_issued.inc_by(records.len() as u64);
    tracing::info!(commands = records.len(), kind = %kind, "Bulk command issued.");
    Ok(v1::BulkCommandResponse {
        commands: records
            .iter()
            .zip(notices)
            .map(|(record, notice)| v1::CommandStatus {
                notice,
                ..convert::command_status(record)
            })
            .collect(),
    })
}

pub(super) async fn get(
    api: &HubApi,
    call: &Call,
    req: v1::GetCommandRequest,
) -> Result<v1::CommandStatus, Status> {
    let what = format!("command {}", req.command_id);
    let record = api
        .store()
        .get_command(&req.command_id)
        .await
        .map_err(|e| store_error(e, what.clone()))?;
    if api
        .authorize(call, Action::Read, &record.project)
        .await
        .is_err()
    {
        // Do not reveal commands of other projects.
        return Err(Status::not_found(format!("{what} not found")));
    }
    Ok(convert::command_status(&record))
}

pub(super) async fn list(
    api: &HubApi,
    call: &Call,
    req: v1::ListCommandsRequest,
) -> Result<v1::ListCommandsResponse, Status> {
    let scope = match (&req.app, req.cluster.is_empty()) {
        (Some(app), true) => {
            let app = convert::app_ref(Some(app))?;
            api.authorize(call, Action::Read, app.project.as_str())
                .await?;
            CommandScope::App {
                project: app.project.as_str().to_owned(),
                name: app.name.as_str().to_owned(),
            }
        }
        (None, false) => {
            // A cluster's commands span projects.
            api.authorize_admin(call)?;
            CommandScope::Cluster(req.cluster.clone())
        }
        _ => {
            return Err(Status::invalid_argument(
                "exactly one of app and cluster is required",
            ));
        }
    };
    let cursor = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
    let page = api
        .store()
        .list_commands(&scope, page_size(req.page_size), cursor)
        .await
        .map_err(|e| store_error(e, "commands"))?;
    Ok(v1::ListCommandsResponse {
        items: page.items.iter().map(convert::command_record).collect(),
        next_page_token: page.next_cursor.unwrap_or_default(),
    })
}
