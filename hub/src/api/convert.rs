//! Conversions at the API edge between hub store records and `HubService` messages (domain types go through `edgecd_proto::convert`).

use edgecd_core::app::{AppOrigin, OperationState, ResourceKey};
use edgecd_core::{AppRef, Health, SyncStatus};
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use crate::store::{
    AppCounts, AppFilter, AppRecord, AppSort, AppSummary, AuditEntry, ClusterConnection,
    ClusterRecord, CommandOutcome, CommandRecord, ConnectionKind, EventRecord, EventSeverity,
    SortKey,
};

/// Validates an `AppRef` from a request (`project` defaults to `default`).
pub(crate) fn app_ref(app: Option<&v1::AppRef>) -> Result<AppRef, Status> {
    let app = app.ok_or_else(|| Status::invalid_argument("app is required"))?;
    let project = if app.project.is_empty() {
        "default"
    } else {
        app.project.as_str()
    };
    AppRef::parse(project, &app.name).map_err(|e| Status::invalid_argument(e.to_string()))
}

pub(crate) fn connection_code(kind: ConnectionKind) -> v1::ConnectionStateCode {
    match kind {
        ConnectionKind::Pending => v1::ConnectionStateCode::Pending,
        ConnectionKind::Connected => v1::ConnectionStateCode::Connected,
        ConnectionKind::Stale => v1::ConnectionStateCode::Stale,
        ConnectionKind::Disconnected => v1::ConnectionStateCode::Disconnected,
        ConnectionKind::Revoked => v1::ConnectionStateCode::Revoked,
    }
}

pub(crate) fn from_connection_code(code: i32) -> Option<ConnectionKind> {
    match v1::ConnectionStateCode::try_from(code) {
        Ok(v1::ConnectionStateCode::Pending) => Some(ConnectionKind::Pending),
        Ok(v1::ConnectionStateCode::Connected) => Some(ConnectionKind::Connected),
        Ok(v1::ConnectionStateCode::Stale) => Some(ConnectionKind::Stale),
        Ok(v1::ConnectionStateCode::Disconnected) => Some(ConnectionKind::Disconnected),
        Ok(v1::ConnectionStateCode::Revoked) => Some(ConnectionKind::Revoked),
        _ => None,
    }
}

pub(crate) fn connection(c: &ClusterConnection) -> v1::ConnectionState {
    v1::ConnectionState {
        state: connection_code(c.state) as i32,
        since: c.since.map(pc::timestamp),
        last_heartbeat: c.last_heartbeat.map(pc::timestamp),
        hub_replica: c.hub_replica.clone(),
    }
}

fn kind_only(kind: Option<ConnectionKind>) -> Option<v1::ConnectionState> {
    kind.map(|k| v1::ConnectionState {
        state: connection_code(k) as i32,
        ..v1::ConnectionState::default()
    })
}

pub(crate) fn summary(s: &AppSummary) -> v1::ApplicationSummary {
    v1::ApplicationSummary {
        project: s.project.clone(),
        name: s.name.clone(),
        cluster: s.cluster.clone(),
        namespace: s.namespace.clone(),
        repo_url: s.repo_url.clone(),
        path: s.path.clone(),
        target_revision: s.target_revision.clone(),
        sync: pc::sync_code(s.sync) as i32,
        health: pc::health_code(s.health) as i32,
        revision: s.revision.clone(),
        operation_phase: s.operation_phase.map_or(0, |p| pc::phase_code(p) as i32),
        labels: pc::labels(&s.labels),
        updated_at: Some(pc::timestamp(s.updated_at)),
        origin: pc::origin_code(s.origin) as i32,
        owner: s.owner.as_ref().map(pc::owner_ref),
        cluster_connection: kind_only(s.cluster_connection),
        spec_version: s.spec_version,
        automated: s.automated,
        error_conditions: s.error_conditions,
    }
}

pub(crate) fn application(app: &AppRecord, cluster: Option<&ClusterConnection>) -> v1::Application {
    v1::Application {
        meta: Some(v1::ApplicationMeta {
            project: app.project.clone(),
            name: app.name.clone(),
            labels: pc::labels(&app.labels),
            annotations: Default::default(),
            uid: app.uid.clone(),
            spec_version: app.spec_version,
            created_at: Some(pc::timestamp(app.created_at)),
            updated_at: Some(pc::timestamp(app.updated_at)),
            origin: pc::origin_code(app.origin) as i32,
            owner: app.owner.as_ref().map(pc::owner_ref),
            deletion_requested_at: None,
        }),
        spec: Some(pc::application_spec(&destined(app))),
        status: app.status.as_ref().map(pc::application_status),
        cluster_connection: cluster.map(connection),
    }
}

/// The app's spec as the hub shows it: an app created at the edge names its
/// destination as the spoke sees it (its own API server, no cluster name), so
/// the cluster that reported it is filled in.
fn destined(app: &AppRecord) -> std::borrow::Cow<'_, edgecd_core::app::ApplicationSpec> {
    if app.origin == AppOrigin::Autonomous && app.spec.destination.cluster != app.cluster {
        let mut spec = app.spec.clone();
        spec.destination.cluster = app.cluster.clone();
        std::borrow::Cow::Owned(spec)
    } else {
        std::borrow::Cow::Borrowed(&app.spec)
    }
}

/// The spoke's release against this hub's under the version-skew policy.
fn version_skew(spoke_version: &str) -> v1::VersionSkew {
    use edgecd_core::link::Skew;
    use v1::version_skew::State;
    let skew = edgecd_core::link::skew::POLICY.assess(env!("CARGO_PKG_VERSION"), spoke_version);
    let (state, minors) = match &skew {
        Skew::Same => (State::Same, 0),
        Skew::Supported { minors } => (State::Supported, *minors),
        Skew::Unsupported { .. } => (State::Unsupported, 0),
        Skew::Unknown { .. } => (State::Unknown, 0),
    };
    v1::VersionSkew {
        state: state as i32,
        message: skew.to_string(),
        minors: i32::try_from(minors).unwrap_or_default(),
    }
}

pub(crate) fn cluster(c: &ClusterRecord, counts: Option<&AppCounts>) -> v1::Cluster {
    v1::Cluster {
        name: c.name.clone(),
        labels: pc::labels(&c.labels),
        annotations: pc::labels(&c.annotations),
        server_url: c.server_url.clone(),
        versions: Some(v1::ClusterVersions {
            spoke_version: c.versions.spoke_version.clone(),
            kubernetes_version: c.versions.kubernetes_version.clone(),
            protocol_major: c.versions.protocol_major,
            protocol_minor: c.versions.protocol_minor,
            capabilities: c.versions.capabilities.clone(),
            skew: Some(version_skew(&c.versions.spoke_version)),
        }),
        connection: Some(if c.revoked_at.is_some() {
            v1::ConnectionState {
                state: v1::ConnectionStateCode::Revoked as i32,
                since: c.revoked_at.map(pc::timestamp),
                ..connection(&c.connection)
            }
        } else {
            connection(&c.connection)
        }),
        app_counts: counts.map(app_counts),
        created_at: Some(pc::timestamp(c.created_at)),
        certificate_not_after: c.certificate_not_after.map(pc::timestamp),
        version: c.version,
    }
}

fn app_counts(c: &AppCounts) -> v1::AppCounts {
    let n = |map: &std::collections::BTreeMap<String, u64>, key: &str| {
        u32::try_from(map.get(key).copied().unwrap_or(0)).unwrap_or(u32::MAX)
    };
    v1::AppCounts {
        total: u32::try_from(c.total).unwrap_or(u32::MAX),
        synced: n(&c.by_sync, SyncStatus::Synced.as_str()),
        out_of_sync: n(&c.by_sync, SyncStatus::OutOfSync.as_str()),
        healthy: n(&c.by_health, Health::Healthy.as_str()),
        progressing: n(&c.by_health, Health::Progressing.as_str()),
        degraded: n(&c.by_health, Health::Degraded.as_str()),
        missing: n(&c.by_health, Health::Missing.as_str()),
        unknown: n(&c.by_health, Health::Unknown.as_str()),
        suspended: n(&c.by_health, Health::Suspended.as_str()),
    }
}

pub(crate) fn counts(c: &AppCounts) -> v1::ApplicationCounts {
    let buckets = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(key, count)| v1::CountBucket {
                key: key.clone(),
                count: *count,
            })
            .collect()
    };
    v1::ApplicationCounts {
        total: c.total,
        by_sync: buckets(&c.by_sync),
        by_health: buckets(&c.by_health),
        by_cluster_connection: buckets(&c.by_connection),
        by_project: buckets(&c.by_project),
    }
}

/// Longest `search` text accepted in a filter, in characters.
pub(crate) const MAX_SEARCH_CHARS: usize = 256;
/// Most entries accepted in one list of a filter (projects, clusters, owners' names…): a fleet has
/// around a hundred clusters, and every entry becomes a bound parameter of the query.
pub(crate) const MAX_FILTER_ENTRIES: usize = 1000;
/// Most requirements (match labels plus expressions) in one label selector, and values in one requirement.
pub(crate) const MAX_SELECTOR_ENTRIES: usize = 100;
/// Longest label key or value accepted in a selector, in bytes (Kubernetes allows 253 + 1 + 63).
const MAX_SELECTOR_TEXT: usize = 317;

/// Most names in `ApplicationFilter.names`: each is an index range of its own.
pub(crate) const MAX_FILTER_NAMES: usize = 100;

/// `ApplicationFilter.names`, bounded: at most [`MAX_FILTER_NAMES`], each a
/// non-empty name of at most 253 bytes.
pub(crate) fn filter_names(names: &[String], field: &str) -> Result<Vec<String>, Status> {
    if names.len() > MAX_FILTER_NAMES {
        return Err(Status::invalid_argument(format!(
            "{field} has {} entries; at most {MAX_FILTER_NAMES} are accepted",
            names.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        if name.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{field}: an entry is empty; give app names"
            )));
        }
        if name.len() > 253 {
            return Err(Status::invalid_argument(format!(
                "{field}: an entry is {} bytes long; app names are at most 253",
                name.len()
            )));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Refuses a list with more than [`MAX_FILTER_ENTRIES`] entries, naming the field.
pub(crate) fn bounded_list<T>(items: &[T], field: &str) -> Result<(), Status> {
    if items.len() > MAX_FILTER_ENTRIES {
        return Err(Status::invalid_argument(format!(
            "{field} has {} entries; at most {MAX_FILTER_ENTRIES} are accepted",
            items.len()
        )));
    }
    Ok(())
}

/// Refuses a search text longer than [`MAX_SEARCH_CHARS`], naming the field.
pub(crate) fn bounded_search(search: &str, field: &str) -> Result<(), Status> {
    let chars = search.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(Status::invalid_argument(format!(
            "{field} is {chars} characters long; at most {MAX_SEARCH_CHARS} are accepted"
        )));
    }
    Ok(())
}

/// A request's label selector, bounded (requirements, values, key and value lengths) and converted.
pub(crate) fn label_selector(
    s: Option<&v1::LabelSelector>,
    field: &str,
) -> Result<edgecd_core::selector::LabelSelector, Status> {
    let Some(s) = s else {
        return Ok(Default::default());
    };
    let requirements = s.match_labels.len() + s.match_expressions.len();
    if requirements > MAX_SELECTOR_ENTRIES {
        return Err(Status::invalid_argument(format!(
            "{field} has {requirements} requirements; at most {MAX_SELECTOR_ENTRIES} are accepted"
        )));
    }
    let too_long = |text: &str| text.len() > MAX_SELECTOR_TEXT;
    for r in &s.match_expressions {
        if r.values.len() > MAX_SELECTOR_ENTRIES {
            return Err(Status::invalid_argument(format!(
                "{field}.match_expressions: a requirement has {} values; at most {MAX_SELECTOR_ENTRIES} are accepted",
                r.values.len()
            )));
        }
        if too_long(&r.key) || r.values.iter().any(|v| too_long(v)) {
            return Err(Status::invalid_argument(format!(
                "{field}.match_expressions: a key or value is longer than {MAX_SELECTOR_TEXT} bytes"
            )));
        }
    }
    if s.match_labels
        .iter()
        .any(|(k, v)| too_long(k) || too_long(v))
    {
        return Err(Status::invalid_argument(format!(
            "{field}.match_labels: a key or value is longer than {MAX_SELECTOR_TEXT} bytes"
        )));
    }
    pc::from_label_selector(s).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// The store filter of a request filter. Every list and text is bounded: a request over the limits is
/// INVALID_ARGUMENT naming the field and the limit, never a query the database refuses.
pub(crate) fn filter(f: Option<&v1::ApplicationFilter>) -> Result<AppFilter, Status> {
    let Some(f) = f else {
        return Ok(AppFilter::default());
    };
    bounded_search(&f.search, "filter.search")?;
    bounded_list(&f.projects, "filter.projects")?;
    bounded_list(&f.clusters, "filter.clusters")?;
    bounded_list(&f.sync, "filter.sync")?;
    bounded_list(&f.health, "filter.health")?;
    bounded_list(&f.origins, "filter.origins")?;
    bounded_list(&f.cluster_connection, "filter.cluster_connection")?;
    if let Some(owner) = &f.owner
        && [&owner.kind, &owner.project, &owner.name, &owner.scope]
            .iter()
            .any(|text| text.len() > 253)
    {
        return Err(Status::invalid_argument(
            "filter.owner: kind, project, name and scope are at most 253 bytes each",
        ));
    }
    let selector = |s: &Option<v1::LabelSelector>, field: &str| {
        label_selector(s.as_ref(), &format!("filter.{field}"))
    };
    if !f.repo_urls.is_empty() {
        return Err(Status::invalid_argument(
            "filter.repo_urls is not supported by this hub yet",
        ));
    }
    let origin = match (
        f.origins.contains(&(v1::AppOrigin::Managed as i32)),
        f.origins.contains(&(v1::AppOrigin::Autonomous as i32)),
    ) {
        (true, false) => Some(AppOrigin::Managed),
        (false, true) => Some(AppOrigin::Autonomous),
        _ => None,
    };
    Ok(AppFilter {
        projects: f.projects.clone(),
        clusters: f.clusters.clone(),
        cluster_selector: selector(&f.cluster_selector, "cluster_selector")?,
        app_selector: selector(&f.app_selector, "app_selector")?,
        sync: f
            .sync
            .iter()
            .filter(|c| **c != 0)
            .map(|c| pc::from_sync_code(*c))
            .collect(),
        health: f
            .health
            .iter()
            .filter(|c| **c != 0)
            .map(|c| pc::from_health_code(*c))
            .collect(),
        origin,
        owner: f.owner.as_ref().map(pc::from_owner_ref),
        connection: f
            .cluster_connection
            .iter()
            .filter_map(|c| from_connection_code(*c))
            .collect(),
        search: f.search.trim().to_owned(),
        names: filter_names(&f.names, "filter.names")?,
        ..AppFilter::default()
    })
}

pub(crate) fn sort(s: Option<&v1::ApplicationSort>) -> AppSort {
    let Some(s) = s else {
        return AppSort::default();
    };
    let key = match v1::ApplicationSortField::try_from(s.field) {
        Ok(v1::ApplicationSortField::Project) => SortKey::Project,
        Ok(v1::ApplicationSortField::Cluster) => SortKey::Cluster,
        Ok(v1::ApplicationSortField::Sync) => SortKey::Sync,
        Ok(v1::ApplicationSortField::Health) => SortKey::Health,
        Ok(v1::ApplicationSortField::UpdatedAt) => SortKey::UpdatedAt,
        _ => SortKey::Name,
    };
    AppSort {
        key,
        descending: s.descending,
    }
}

pub(crate) fn outcome_code(o: CommandOutcome) -> v1::CommandOutcome {
    match o {
        CommandOutcome::Pending => v1::CommandOutcome::Pending,
        CommandOutcome::Delivered => v1::CommandOutcome::Delivered,
        CommandOutcome::Running => v1::CommandOutcome::Running,
        CommandOutcome::Succeeded => v1::CommandOutcome::Succeeded,
        CommandOutcome::Failed => v1::CommandOutcome::Failed,
        CommandOutcome::Expired => v1::CommandOutcome::Expired,
        CommandOutcome::Unsupported => v1::CommandOutcome::Unsupported,
        CommandOutcome::Rejected => v1::CommandOutcome::Rejected,
    }
}

/// The diff a spoke reported, from the command's stored result.
pub(crate) fn diff_result(result: Option<&serde_json::Value>) -> Option<v1::DiffResult> {
    let items = result?.get("diff")?.as_array()?;
    Some(v1::DiffResult {
        resources: items
            .iter()
            .map(|item| {
                let text = |field: &str| {
                    item.get(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                v1::ResourceDiff {
                    key: item
                        .get("key")
                        .and_then(|k| serde_json::from_value::<ResourceKey>(k.clone()).ok())
                        .map(|k| pc::resource_key(&k)),
                    live_yaml: text("liveYaml"),
                    desired_yaml: text("desiredYaml"),
                    diff: text("diff"),
                    modified: item
                        .get("modified")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false),
                }
            })
            .collect(),
    })
}

pub(crate) fn manifests_result(result: Option<&serde_json::Value>) -> Option<v1::ManifestsResult> {
    let m = result?.get("manifests")?;
    Some(v1::ManifestsResult {
        revision: m
            .get("revision")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned(),
        manifests_yaml: m
            .get("yaml")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) fn command_status(c: &CommandRecord) -> v1::CommandStatus {
    use v1::command_status::Payload;
    let result = c.result.as_ref();
    let payload = if let Some(op) = result
        .and_then(|r| r.get("operation"))
        .and_then(|op| serde_json::from_value::<OperationState>(op.clone()).ok())
    {
        Some(Payload::Operation(pc::operation_state(&op)))
    } else if let Some(diff) = diff_result(result) {
        Some(Payload::Diff(diff))
    } else {
        manifests_result(result).map(Payload::Manifests)
    };
    v1::CommandStatus {
        command_id: c.id.clone(),
        outcome: outcome_code(c.outcome) as i32,
        message: c.message.clone(),
        updated_at: Some(pc::timestamp(c.updated_at)),
        payload,
        notice: String::new(),
        app: Some(v1::AppRef {
            project: c.project.clone(),
            name: c.app.clone(),
        }),
    }
}

pub(crate) fn command_record(c: &CommandRecord) -> v1::CommandRecord {
    let command = serde_json::from_value::<crate::link::CommandPayload>(c.payload.clone())
        .ok()
        .map(|payload| crate::link::command_message(c, &payload, c.trace.as_ref()));
    v1::CommandRecord {
        command,
        status: Some(command_status(c)),
        cluster: c.cluster.clone(),
    }
}

pub(crate) fn event(e: &EventRecord) -> v1::Event {
    v1::Event {
        id: e.id.clone(),
        cluster: e.cluster.clone(),
        app: (!e.app.is_empty()).then(|| v1::AppRef {
            project: e.project.clone(),
            name: e.app.clone(),
        }),
        resource: parse_resource(&e.resource),
        severity: match e.severity {
            EventSeverity::Normal => v1::EventSeverity::Normal,
            EventSeverity::Warning => v1::EventSeverity::Warning,
        } as i32,
        reason: e.reason.clone(),
        message: e.message.clone(),
        time: Some(pc::timestamp(e.time)),
    }
}

/// `Kind namespace/name` (or `Kind name`) back into a key.
fn parse_resource(text: &str) -> Option<v1::ResourceKey> {
    let (kind, rest) = text.split_once(' ')?;
    let (namespace, name) = rest.split_once('/').unwrap_or(("", rest));
    Some(v1::ResourceKey {
        kind: kind.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        ..v1::ResourceKey::default()
    })
}

pub(crate) fn audit(a: &AuditEntry) -> v1::AuditEntry {
    v1::AuditEntry {
        id: 0,
        time: Some(pc::timestamp(a.time)),
        actor: a.actor.clone(),
        action: a.action.clone(),
        target: a.target.clone(),
        source: a.source.clone(),
        result: a.result.clone(),
        message: a.message.clone(),
    }
}
