//! Conversions between protocol v1 messages and `edgecd-core` domain types: the one place where the gRPC edges of hub and spoke translate.

use std::collections::BTreeMap;

use edgecd_core::app::{
    AppOrigin, ApplicationSource, ApplicationSpec, ApplicationStatus, AutomatedSync, Condition,
    Destination, DirectorySource, HealthReport, HistoryEntry, IgnoreDifference, KustomizeReplica,
    KustomizeSource, OperationPhase, OperationState, OwnerRef, ResourceKey, ResourceResult,
    ResourceStatus, RetryBackoff, RetryStrategy, SyncPolicy, SyncReport,
};
use edgecd_core::app::{HelmFileParameter, HelmParameter, HelmSource};
use edgecd_core::app::{JsonnetOptions, JsonnetVar};
use edgecd_core::deployment::Deployment;
use edgecd_core::duration::GoDuration;
use edgecd_core::project::{GroupKind, ProjectDestination, ProjectRole, ProjectSpec, RoleBinding};
use edgecd_core::selector::{LabelSelector, Operator, Requirement};
use edgecd_core::{Health, SyncStatus};
use time::OffsetDateTime;

use crate::v1;

mod appset;
pub use appset::{appset_spec_from_proto, appset_spec_to_proto};

/// A protocol message that does not make a valid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConvertError {
    pub field: String,
    pub reason: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> ConvertError {
    ConvertError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

// === time ===

pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

fn opt_time(t: &Option<prost_types::Timestamp>) -> Option<OffsetDateTime> {
    t.as_ref().and_then(from_timestamp)
}

fn time_or_epoch(t: &Option<prost_types::Timestamp>) -> OffsetDateTime {
    opt_time(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub fn duration(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub fn from_duration(d: &prost_types::Duration) -> Option<std::time::Duration> {
    std::time::Duration::try_from(*d).ok()
}

// === enums ===

pub fn sync_code(s: SyncStatus) -> v1::SyncStatusCode {
    match s {
        SyncStatus::Synced => v1::SyncStatusCode::Synced,
        SyncStatus::OutOfSync => v1::SyncStatusCode::OutOfSync,
        SyncStatus::Unknown => v1::SyncStatusCode::Unknown,
    }
}

pub fn from_sync_code(code: i32) -> SyncStatus {
    match v1::SyncStatusCode::try_from(code) {
        Ok(v1::SyncStatusCode::Synced) => SyncStatus::Synced,
        Ok(v1::SyncStatusCode::OutOfSync) => SyncStatus::OutOfSync,
        _ => SyncStatus::Unknown,
    }
}

pub fn health_code(h: Health) -> v1::HealthStatusCode {
    match h {
        Health::Healthy => v1::HealthStatusCode::Healthy,
        Health::Progressing => v1::HealthStatusCode::Progressing,
        Health::Degraded => v1::HealthStatusCode::Degraded,
        Health::Suspended => v1::HealthStatusCode::Suspended,
        Health::Missing => v1::HealthStatusCode::Missing,
        Health::Unknown => v1::HealthStatusCode::Unknown,
    }
}

pub fn from_health_code(code: i32) -> Health {
    match v1::HealthStatusCode::try_from(code) {
        Ok(v1::HealthStatusCode::Healthy) => Health::Healthy,
        Ok(v1::HealthStatusCode::Progressing) => Health::Progressing,
        Ok(v1::HealthStatusCode::Degraded) => Health::Degraded,
        Ok(v1::HealthStatusCode::Suspended) => Health::Suspended,
        Ok(v1::HealthStatusCode::Missing) => Health::Missing,
        _ => Health::Unknown,
    }
}

pub fn phase_code(p: OperationPhase) -> v1::OperationPhase {
    match p {
        OperationPhase::Running => v1::OperationPhase::Running,
        OperationPhase::Succeeded => v1::OperationPhase::Succeeded,
        OperationPhase::Failed => v1::OperationPhase::Failed,
        OperationPhase::Error => v1::OperationPhase::Error,
        OperationPhase::Terminating => v1::OperationPhase::Terminating,
    }
}

pub fn from_phase_code(code: i32) -> Option<OperationPhase> {
    match v1::OperationPhase::try_from(code) {
        Ok(v1::OperationPhase::Running) => Some(OperationPhase::Running),
        Ok(v1::OperationPhase::Succeeded) => Some(OperationPhase::Succeeded),
        Ok(v1::OperationPhase::Failed) => Some(OperationPhase::Failed),
        Ok(v1::OperationPhase::Error) => Some(OperationPhase::Error),
        Ok(v1::OperationPhase::Terminating) => Some(OperationPhase::Terminating),
        _ => None,
    }
}

pub fn origin_code(o: AppOrigin) -> v1::AppOrigin {
    match o {
        AppOrigin::Managed => v1::AppOrigin::Managed,
        AppOrigin::Autonomous => v1::AppOrigin::Autonomous,
    }
}

pub fn from_origin_code(code: i32) -> AppOrigin {
    match v1::AppOrigin::try_from(code) {
        Ok(v1::AppOrigin::Autonomous) => AppOrigin::Autonomous,
        _ => AppOrigin::Managed,
    }
}

// === identity ===

pub fn resource_key(k: &ResourceKey) -> v1::ResourceKey {
    v1::ResourceKey {
        group: k.group.clone(),
        version: k.version.clone(),
        kind: k.kind.clone(),
        namespace: k.namespace.clone(),
        name: k.name.clone(),
    }
}

pub fn from_resource_key(k: &v1::ResourceKey) -> ResourceKey {
    ResourceKey {
        group: k.group.clone(),
        version: k.version.clone(),
        kind: k.kind.clone(),
        namespace: k.namespace.clone(),
        name: k.name.clone(),
    }
}

pub fn owner_ref(o: &OwnerRef) -> v1::OwnerRef {
    v1::OwnerRef {
        kind: o.kind.clone(),
        project: o.project.clone(),
        name: o.name.clone(),
        scope: o.scope.clone(),
    }
}

pub fn from_owner_ref(o: &v1::OwnerRef) -> OwnerRef {
    OwnerRef {
        kind: o.kind.clone(),
        project: o.project.clone(),
        name: o.name.clone(),
        scope: o.scope.clone(),
    }
}

pub fn label_selector(s: &LabelSelector) -> v1::LabelSelector {
    v1::LabelSelector {
        match_labels: s.match_labels.clone().into_iter().collect(),
        match_expressions: s
            .match_expressions
            .iter()
            .map(|r| v1::LabelSelectorRequirement {
                key: r.key.clone(),
                operator: format!("{:?}", r.operator),
                values: r.values.clone(),
            })
            .collect(),
    }
}

pub fn from_label_selector(s: &v1::LabelSelector) -> Result<LabelSelector, ConvertError> {
    let match_expressions = s
        .match_expressions
        .iter()
        .map(|r| {
            let operator = match r.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(invalid(
                        "label selector operator",
                        format!("{other:?} is not In, NotIn, Exists or DoesNotExist"),
                    ));
                }
            };
            Ok(Requirement {
                key: r.key.clone(),
                operator,
                values: r.values.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(LabelSelector {
        match_labels: s.match_labels.clone().into_iter().collect(),
        match_expressions,
    })
}

// === spec ===

/// The protocol form of one source.
fn application_source(source: &ApplicationSource) -> v1::ApplicationSource {
    let render = if let Some(k) = &source.kustomize {
        Some(v1::application_source::Render::Kustomize(
            v1::KustomizeSource {
                name_prefix: k.name_prefix.clone(),
                name_suffix: k.name_suffix.clone(),
                common_labels: k.common_labels.clone().into_iter().collect(),
                common_annotations: k.common_annotations.clone().into_iter().collect(),
                images: k.images.clone(),
                namespace: k.namespace.clone(),
                replicas: k
                    .replicas
                    .iter()
                    .map(|r| v1::KustomizeReplica {
                        name: r.name.clone(),
                        count: r.count,
                    })
                    .collect(),
                patches: k.patches.iter().map(|p| p.to_string()).collect(),
                components: k.components.clone(),
                ignore_missing_components: k.ignore_missing_components,
                common_annotations_envsubst: k.common_annotations_envsubst,
                label_without_selector: k.label_without_selector,
                label_include_templates: k.label_include_templates,
                force_common_labels: k.force_common_labels,
                force_common_annotations: k.force_common_annotations,
                version: k.version.clone(),
            },
        ))
    } else {
        source.directory.as_ref().map(|d| {
            v1::application_source::Render::Directory(v1::DirectorySource {
                recurse: d.recurse,
                include: d.include.clone(),
                exclude: d.exclude.clone(),
                jsonnet: d.jsonnet.as_ref().map(|j| {
                    let vars = |vars: &[JsonnetVar]| {
                        vars.iter()
                            .map(|v| v1::JsonnetVar {
                                name: v.name.clone(),
                                value: v.value.clone(),
                                code: v.code,
                            })
                            .collect()
                    };
                    v1::JsonnetSource {
                        ext_vars: vars(&j.ext_vars),
                        tlas: vars(&j.tlas),
                        libs: j.libs.clone(),
                    }
                }),
            })
        })
    };
    v1::ApplicationSource {
        repo_url: source.repo_url.clone(),
        target_revision: source.target_revision.clone(),
        path: source.path.clone(),
        render,
        helm: source.helm.as_ref().map(helm_source),
        chart: source.chart.clone(),
        r#ref: source.ref_name.clone(),
        name: source.name.clone(),
    }
}

pub fn application_spec(spec: &ApplicationSpec) -> v1::ApplicationSpec {
    v1::ApplicationSpec {
        // A multi-source spec has no `source`.
        source: (!spec.source.is_unset() || spec.sources.is_empty())
            .then(|| application_source(&spec.source)),
        sources: spec.sources.iter().map(application_source).collect(),
        destination: Some(v1::Destination {
            cluster: spec.destination.cluster.clone(),
            namespace: spec.destination.namespace.clone(),
            server: spec.destination.server.clone(),
        }),
        sync_policy: spec.sync_policy.as_ref().map(|p| v1::SyncPolicy {
            automated: p.automated.as_ref().map(|a| v1::AutomatedSync {
                prune: a.prune,
                self_heal: a.self_heal,
                allow_empty: a.allow_empty,
            }),
            sync_options: p.sync_options.clone(),
            retry: p.retry.as_ref().map(|r| {
                let backoff = r.backoff.clone().unwrap_or_default();
                v1::RetryStrategy {
                    limit: r.limit.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                    backoff_duration: backoff.duration.map(|d| duration(d.0)),
                    backoff_factor: backoff.factor.unwrap_or(0),
                    backoff_max_duration: backoff.max_duration.map(|d| duration(d.0)),
                }
            }),
        }),
        revision_history_limit: spec.revision_history_limit.unwrap_or(0),
        ignore_differences: spec
            .ignore_differences
            .iter()
            .map(|d| v1::IgnoreDifference {
                group: d.group.clone(),
                kind: d.kind.clone(),
                name: d.name.clone(),
                namespace: d.namespace.clone(),
                json_pointers: d.json_pointers.clone(),
                managed_fields_managers: d.managed_fields_managers.clone(),
                jq_path_expressions: d.jq_path_expressions.clone(),
            })
            .collect(),
        managed_namespace_metadata: spec.managed_namespace_metadata.as_ref().map(|m| {
            v1::ManagedNamespaceMetadata {
                labels: m.labels.clone().into_iter().collect(),
                annotations: m.annotations.clone().into_iter().collect(),
            }
        }),
        info: spec
            .info
            .iter()
            .map(|i| v1::InfoItem {
                name: i.name.clone(),
                value: i.value.clone(),
            })
            .collect(),
    }
}

fn helm_source(h: &HelmSource) -> v1::HelmSource {
    v1::HelmSource {
        release_name: h.release_name.clone(),
        value_files: h.value_files.clone(),
        values: h.values.clone(),
        values_object: h
            .values_object
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        parameters: h
            .parameters
            .iter()
            .map(|p| v1::HelmParameter {
                name: p.name.clone(),
                value: p.value.clone(),
                force_string: p.force_string,
            })
            .collect(),
        file_parameters: h
            .file_parameters
            .iter()
            .map(|p| v1::HelmFileParameter {
                name: p.name.clone(),
                path: p.path.clone(),
            })
            .collect(),
        skip_crds: h.skip_crds,
        skip_schema_validation: h.skip_schema_validation,
        skip_tests: h.skip_tests,
        namespace: h.namespace.clone(),
        kube_version: h.kube_version.clone(),
        api_versions: h.api_versions.clone(),
        pass_credentials: h.pass_credentials,
        ignore_missing_value_files: h.ignore_missing_value_files,
        version: h.version.clone(),
    }
}

fn from_helm_source(h: &v1::HelmSource) -> Result<HelmSource, ConvertError> {
    let values_object = if h.values_object.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(&h.values_object).map_err(|e| {
            invalid(
                "spec.source.helm.valuesObject",
                format!("is not a JSON object: {e}"),
            )
        })?)
    };
    Ok(HelmSource {
        release_name: h.release_name.clone(),
        value_files: h.value_files.clone(),
        values: h.values.clone(),
        values_object,
        parameters: h
            .parameters
            .iter()
            .map(|p| HelmParameter {
                name: p.name.clone(),
                value: p.value.clone(),
                force_string: p.force_string,
            })
            .collect(),
        file_parameters: h
            .file_parameters
            .iter()
            .map(|p| HelmFileParameter {
                name: p.name.clone(),
                path: p.path.clone(),
            })
            .collect(),
        skip_crds: h.skip_crds,
        skip_schema_validation: h.skip_schema_validation,
        skip_tests: h.skip_tests,
        namespace: h.namespace.clone(),
        kube_version: h.kube_version.clone(),
        api_versions: h.api_versions.clone(),
        pass_credentials: h.pass_credentials,
        ignore_missing_value_files: h.ignore_missing_value_files,
        version: h.version.clone(),
    })
}

/// The domain spec of a protocol spec; `project` comes from the metadata.
pub fn from_application_spec(
    spec: &v1::ApplicationSpec,
    project: &str,
) -> Result<ApplicationSpec, ConvertError> {
    let sources = spec
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| from_application_source(s, &format!("spec.sources[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let source = match (&spec.source, sources.is_empty()) {
        (Some(source), _) => from_application_source(source, "spec.source")?,
        (None, false) => ApplicationSource::default(),
        (None, true) => return Err(invalid("spec.source", "is required")),
    };
    let destination = spec.destination.clone().unwrap_or_default();
    let sync_policy = spec.sync_policy.as_ref().map(|p| SyncPolicy {
        automated: p.automated.as_ref().map(|a| AutomatedSync {
            prune: a.prune,
            self_heal: a.self_heal,
            allow_empty: a.allow_empty,
        }),
        sync_options: p.sync_options.clone(),
        retry: p.retry.as_ref().map(|r| RetryStrategy {
            limit: i64::from(r.limit),
            backoff: Some(RetryBackoff {
                duration: r
                    .backoff_duration
                    .as_ref()
                    .and_then(from_duration)
                    .map(GoDuration),
                factor: (r.backoff_factor > 0).then_some(r.backoff_factor),
                max_duration: r
                    .backoff_max_duration
                    .as_ref()
                    .and_then(from_duration)
                    .map(GoDuration),
            }),
        }),
    });
    Ok(ApplicationSpec {
        project: project.to_owned(),
        source,
        sources,
        destination: Destination {
            cluster: destination.cluster,
            server: destination.server,
            namespace: destination.namespace,
        },
        sync_policy,
        revision_history_limit: (spec.revision_history_limit > 0)
            .then_some(spec.revision_history_limit),
        ignore_differences: spec
            .ignore_differences
            .iter()
            .map(|d| IgnoreDifference {
                group: d.group.clone(),
                kind: d.kind.clone(),
                name: d.name.clone(),
                namespace: d.namespace.clone(),
                json_pointers: d.json_pointers.clone(),
                managed_fields_managers: d.managed_fields_managers.clone(),
                jq_path_expressions: d.jq_path_expressions.clone(),
            })
            .collect(),
        managed_namespace_metadata: spec.managed_namespace_metadata.as_ref().map(|m| {
            edgecd_core::app::ManagedNamespaceMetadata {
                labels: m.labels.clone().into_iter().collect(),
                annotations: m.annotations.clone().into_iter().collect(),
            }
        }),
        info: spec
            .info
            .iter()
            .map(|i| edgecd_core::app::InfoItem {
                name: i.name.clone(),
                value: i.value.clone(),
            })
            .collect(),
    })
}

/// The domain form of one source; `field` names it in errors (`spec.source`, `spec.sources[1]`).
fn from_application_source(
    source: &v1::ApplicationSource,
    field: &str,
) -> Result<ApplicationSource, ConvertError> {
    if source.repo_url.trim().is_empty() {
        return Err(invalid(&format!("{field}.repoURL"), "is required"));
    }
    let (directory, kustomize) = match &source.render {
        Some(v1::application_source::Render::Directory(d)) => (
            Some(DirectorySource {
                recurse: d.recurse,
                include: d.include.clone(),
                exclude: d.exclude.clone(),
                jsonnet: d.jsonnet.as_ref().map(|j| {
                    let vars = |vars: &[v1::JsonnetVar]| {
                        vars.iter()
                            .map(|v| JsonnetVar {
                                name: v.name.clone(),
                                value: v.value.clone(),
                                code: v.code,
                            })
                            .collect()
                    };
                    JsonnetOptions {
                        ext_vars: vars(&j.ext_vars),
                        tlas: vars(&j.tlas),
                        libs: j.libs.clone(),
                    }
                }),
            }),
            None,
        ),
        Some(v1::application_source::Render::Kustomize(k)) => (
            None,
            Some(KustomizeSource {
                patches: k
                    .patches
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        serde_json::from_str(p).map_err(|e| {
                            invalid(
                                &format!("{field}.kustomize.patches[{i}]"),
                                format!("is not a JSON object: {e}"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                components: k.components.clone(),
                ignore_missing_components: k.ignore_missing_components,
                common_annotations_envsubst: k.common_annotations_envsubst,
                label_without_selector: k.label_without_selector,
                label_include_templates: k.label_include_templates,
                force_common_labels: k.force_common_labels,
                force_common_annotations: k.force_common_annotations,
                version: k.version.clone(),
                name_prefix: k.name_prefix.clone(),
                name_suffix: k.name_suffix.clone(),
                common_labels: k.common_labels.clone().into_iter().collect(),
                common_annotations: k.common_annotations.clone().into_iter().collect(),
                images: k.images.clone(),
                namespace: k.namespace.clone(),
                replicas: k
                    .replicas
                    .iter()
                    .map(|r| KustomizeReplica {
                        name: r.name.clone(),
                        count: r.count,
                    })
                    .collect(),
            }),
        ),
        None => (None, None),
    };
    Ok(ApplicationSource {
        repo_url: source.repo_url.clone(),
        target_revision: source.target_revision.clone(),
        path: source.path.clone(),
        directory,
        kustomize,
        chart: source.chart.clone(),
        helm: source.helm.as_ref().map(from_helm_source).transpose()?,
        ref_name: source.r#ref.clone(),
        name: source.name.clone(),
    })
}

// === status ===

fn health_report(h: &HealthReport) -> v1::HealthStatus {
    v1::HealthStatus {
        status: health_code(h.status) as i32,
        message: h.message.clone(),
    }
}

fn from_health_report(h: &Option<v1::HealthStatus>) -> HealthReport {
    h.as_ref()
        .map(|h| HealthReport {
            status: from_health_code(h.status),
            message: h.message.clone(),
        })
        .unwrap_or_default()
}

fn resource_result(r: &ResourceResult) -> v1::ResourceResult {
    v1::ResourceResult {
        key: Some(resource_key(&r.key)),
        status: r.status.clone(),
        message: r.message.clone(),
        sync_wave: r.sync_wave,
    }
}

fn from_resource_result(r: &v1::ResourceResult) -> ResourceResult {
    ResourceResult {
        key: r.key.as_ref().map(from_resource_key).unwrap_or_default(),
        status: r.status.clone(),
        message: r.message.clone(),
        sync_wave: r.sync_wave,
    }
}

pub fn operation_state(o: &OperationState) -> v1::OperationState {
    v1::OperationState {
        command_id: o.command_id.clone(),
        phase: phase_code(o.phase) as i32,
        message: o.message.clone(),
        started_at: Some(timestamp(o.started_at)),
        finished_at: o.finished_at.map(timestamp),
        revision: o.revision.clone(),
        resources: o.resources.iter().map(resource_result).collect(),
        retry_count: o.retry_count,
        initiated_by: o.initiated_by.clone(),
        trace_id: o.trace_id.clone(),
    }
}

pub fn from_operation_state(o: &v1::OperationState) -> Option<OperationState> {
    Some(OperationState {
        command_id: o.command_id.clone(),
        phase: from_phase_code(o.phase)?,
        message: o.message.clone(),
        started_at: time_or_epoch(&o.started_at),
        finished_at: opt_time(&o.finished_at),
        revision: o.revision.clone(),
        resources: o.resources.iter().map(from_resource_result).collect(),
        retry_count: o.retry_count,
        initiated_by: o.initiated_by.clone(),
        trace_id: bounded_trace_id(&o.trace_id),
    })
}

/// A reported trace id kept only when it is one: 32 lower-case hex digits.
fn bounded_trace_id(id: &str) -> String {
    if edgecd_core::deployment::is_trace_id(id) {
        id.to_owned()
    } else {
        String::new()
    }
}

fn history_entry(h: &HistoryEntry) -> v1::HistoryEntry {
    v1::HistoryEntry {
        id: h.id,
        revision: h.revision.clone(),
        source: (!h.source.is_unset() || h.sources.is_empty())
            .then(|| application_source(&h.source)),
        revisions: h.revisions.clone(),
        sources: h.sources.iter().map(application_source).collect(),
        started_at: Some(timestamp(h.started_at)),
        deployed_at: Some(timestamp(h.deployed_at)),
        result: phase_code(h.result) as i32,
        initiated_by: h.initiated_by.clone(),
        resources: h.resources.iter().map(resource_result).collect(),
        trace_id: h.trace_id.clone(),
        rollback: h.rollback_of.is_some(),
        rollback_of: h.rollback_of.unwrap_or_default(),
    }
}

fn from_history_entry(h: &v1::HistoryEntry) -> HistoryEntry {
    // History is shown, never acted on at the hub: a source that does not convert is shown empty.
    let source = h
        .source
        .as_ref()
        .and_then(|s| from_application_source(s, "history.source").ok())
        .unwrap_or_default();
    let sources = h
        .sources
        .iter()
        .map(|s| from_application_source(s, "history.sources").unwrap_or_default())
        .collect();
    HistoryEntry {
        id: h.id,
        revision: h.revision.clone(),
        source,
        sources,
        revisions: h.revisions.clone(),
        started_at: time_or_epoch(&h.started_at),
        deployed_at: time_or_epoch(&h.deployed_at),
        result: from_phase_code(h.result).unwrap_or(OperationPhase::Error),
        initiated_by: h.initiated_by.clone(),
        resources: h.resources.iter().map(from_resource_result).collect(),
        trace_id: bounded_trace_id(&h.trace_id),
        rollback_of: h.rollback.then_some(h.rollback_of),
    }
}

/// What an event in a live session counts against the session's window: its text and a fixed overhead. The
/// spoke charges and the hub credits by this one measure, so the window neither leaks nor drifts.
pub fn live_event_bytes(event: &v1::Event) -> usize {
    event.reason.len() + event.message.len() + event.id.len() + 64
}

/// Bytes a piece of exec input counts against the spoke's input credit (a resize or the end of stdin counts
/// one), as both the hub and the spoke count it.
pub fn live_input_cost(input: &v1::live_input::Input) -> usize {
    match input {
        v1::live_input::Input::Stdin(data) => data.len().max(1),
        v1::live_input::Input::Resize(_) | v1::live_input::Input::StdinClosed(_) => 1,
    }
}

/// A deployment of the fleet's record.
pub fn deployment(d: &Deployment) -> v1::Deployment {
    let kind = if d.rollback_of.is_some() {
        v1::DeploymentKind::Rollback
    } else {
        v1::DeploymentKind::Sync
    };
    v1::Deployment {
        cluster: d.cluster.clone(),
        app: Some(v1::AppRef {
            project: d.project.clone(),
            name: d.app.clone(),
        }),
        history_id: d.history_id,
        kind: kind as i32,
        result: phase_code(d.result) as i32,
        from_revision: d.from_revision.clone(),
        to_revision: d.to_revision.clone(),
        initiated_by: d.initiated_by.clone(),
        automated: d.automated(),
        started_at: Some(timestamp(d.started_at)),
        finished_at: Some(timestamp(d.finished_at)),
        trace_id: d.trace_id.clone(),
        message: d.message.clone(),
        command_id: d.command_id.clone(),
        rollback_of: d.rollback_of.unwrap_or_default(),
    }
}

/// A deployment `cluster` reported, bounded (see [`Deployment::bounded`]); the message's own cluster is not
/// trusted. Refused without an app, times, or a finished result.
pub fn from_deployment(cluster: &str, d: &v1::Deployment) -> Result<Deployment, ConvertError> {
    let app = d
        .app
        .as_ref()
        .filter(|a| !a.project.is_empty() && !a.name.is_empty())
        .ok_or_else(|| invalid("deployment.app", "missing"))?;
    let result = from_phase_code(d.result)
        .filter(|p| p.is_finished())
        .ok_or_else(|| invalid("deployment.result", "not a finished operation's"))?;
    let started_at =
        opt_time(&d.started_at).ok_or_else(|| invalid("deployment.started_at", "missing"))?;
    let finished_at =
        opt_time(&d.finished_at).ok_or_else(|| invalid("deployment.finished_at", "missing"))?;
    let rollback = d.kind == v1::DeploymentKind::Rollback as i32;
    Ok(Deployment {
        cluster: cluster.to_owned(),
        project: app.project.clone(),
        app: app.name.clone(),
        history_id: d.history_id,
        rollback_of: rollback.then_some(d.rollback_of),
        result,
        from_revision: d.from_revision.clone(),
        to_revision: d.to_revision.clone(),
        initiated_by: d.initiated_by.clone(),
        started_at,
        finished_at,
        trace_id: d.trace_id.clone(),
        message: d.message.clone(),
        command_id: d.command_id.clone(),
    }
    .bounded())
}

pub fn application_status(s: &ApplicationStatus) -> v1::ApplicationStatus {
    v1::ApplicationStatus {
        sync: Some(v1::SyncStatus {
            status: sync_code(s.sync.status) as i32,
            revision: s.sync.revision.clone(),
        }),
        health: Some(health_report(&s.health)),
        resources: s
            .resources
            .iter()
            .map(|r| v1::ResourceStatus {
                key: Some(resource_key(&r.key)),
                sync: sync_code(r.status) as i32,
                health: r.health.as_ref().map(health_report),
                requires_pruning: r.requires_pruning,
                sync_wave: r.sync_wave,
                message: String::new(),
            })
            .collect(),
        conditions: s
            .conditions
            .iter()
            .map(|c| v1::Condition {
                r#type: c.kind.clone(),
                message: c.message.clone(),
                last_transition_time: Some(timestamp(c.last_transition_time)),
            })
            .collect(),
        operation_state: s.operation_state.as_ref().map(operation_state),
        history: s.history.iter().map(history_entry).collect(),
        reconciled_at: s.reconciled_at.map(timestamp),
        observed_spec_version: s.observed_spec_version,
        status_version: s.status_version,
    }
}

pub fn from_application_status(s: &v1::ApplicationStatus) -> ApplicationStatus {
    ApplicationStatus {
        sync: s
            .sync
            .as_ref()
            .map(|x| SyncReport {
                status: from_sync_code(x.status),
                revision: x.revision.clone(),
            })
            .unwrap_or_default(),
        health: from_health_report(&s.health),
        resources: s
            .resources
            .iter()
            .map(|r| ResourceStatus {
                key: r.key.as_ref().map(from_resource_key).unwrap_or_default(),
                status: from_sync_code(r.sync),
                health: r
                    .health
                    .as_ref()
                    .map(|h| from_health_report(&Some(h.clone()))),
                requires_pruning: r.requires_pruning,
                sync_wave: r.sync_wave,
            })
            .collect(),
        conditions: s
            .conditions
            .iter()
            .map(|c| Condition {
                kind: c.r#type.clone(),
                message: c.message.clone(),
                last_transition_time: time_or_epoch(&c.last_transition_time),
            })
            .collect(),
        operation_state: s.operation_state.as_ref().and_then(from_operation_state),
        history: s.history.iter().map(from_history_entry).collect(),
        reconciled_at: opt_time(&s.reconciled_at),
        observed_spec_version: s.observed_spec_version,
        status_version: s.status_version,
    }
}

/// Labels as the protocol carries them.
pub fn labels(map: &BTreeMap<String, String>) -> std::collections::HashMap<String, String> {
    map.clone().into_iter().collect()
}

pub fn from_labels(map: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    map.clone().into_iter().collect()
}

// === projects ===

pub fn project_role_kind(role: ProjectRole) -> v1::ProjectRoleKind {
    match role {
        ProjectRole::Owner => v1::ProjectRoleKind::Owner,
        ProjectRole::Deployer => v1::ProjectRoleKind::Deployer,
        ProjectRole::Viewer => v1::ProjectRoleKind::Viewer,
    }
}

pub fn from_project_role_kind(code: i32) -> Option<ProjectRole> {
    match v1::ProjectRoleKind::try_from(code) {
        Ok(v1::ProjectRoleKind::Owner) => Some(ProjectRole::Owner),
        Ok(v1::ProjectRoleKind::Deployer) => Some(ProjectRole::Deployer),
        Ok(v1::ProjectRoleKind::Viewer) => Some(ProjectRole::Viewer),
        _ => None,
    }
}

fn group_kinds(list: &[GroupKind]) -> Vec<v1::GroupKind> {
    list.iter()
        .map(|g| v1::GroupKind {
            group: g.group.clone(),
            kind: g.kind.clone(),
            name: g.name.clone(),
        })
        .collect()
}

fn from_group_kinds(list: &[v1::GroupKind]) -> Vec<GroupKind> {
    list.iter()
        .map(|g| GroupKind {
            group: g.group.clone(),
            kind: g.kind.clone(),
            name: g.name.clone(),
        })
        .collect()
}

/// A project's protocol form (name, version and creation time come from the caller).
pub fn project(
    name: &str,
    spec: &ProjectSpec,
    version: u64,
    created_at: Option<OffsetDateTime>,
) -> v1::Project {
    v1::Project {
        name: name.to_owned(),
        description: spec.description.clone(),
        source_repos: spec.source_repos.clone(),
        destinations: spec
            .destinations
            .iter()
            .map(|d| v1::ProjectDestination {
                cluster_selector: d.cluster_selector.as_ref().map(label_selector),
                all_clusters: d.clusters.iter().any(|c| c == "*"),
                cluster_names: d.clusters.iter().filter(|c| *c != "*").cloned().collect(),
                namespace: d.namespace.clone(),
            })
            .collect(),
        cluster_resource_allow: group_kinds(&spec.cluster_resource_whitelist),
        cluster_resource_deny: group_kinds(&spec.cluster_resource_blacklist),
        namespace_resource_deny: group_kinds(&spec.namespace_resource_blacklist),
        roles: spec
            .roles
            .iter()
            .map(|r| v1::ProjectRoleBinding {
                role: project_role_kind(r.role) as i32,
                users: r.users.clone(),
                groups: r.groups.clone(),
            })
            .collect(),
        version,
        created_at: created_at.map(timestamp),
        namespace_resource_allow: spec
            .namespace_resource_whitelist
            .as_deref()
            .map(group_kinds)
            .unwrap_or_default(),
        namespace_resource_allow_listed: spec.namespace_resource_whitelist.is_some(),
        orphaned_resources: spec
            .orphaned_resources
            .as_ref()
            .map(|o| v1::OrphanedResources {
                warn: o.warn,
                ignore: group_kinds(&o.ignore),
            }),
        sync_windows_json: if spec.sync_windows.is_empty() {
            String::new()
        } else {
            serde_json::Value::Array(spec.sync_windows.clone()).to_string()
        },
        logs_role: project_role_kind(spec.live.logs) as i32,
        exec_role: spec
            .live
            .exec
            .map_or(v1::ProjectRoleKind::Unspecified, project_role_kind) as i32,
    }
}

/// The domain spec of a protocol project.
pub fn from_project(p: &v1::Project) -> Result<ProjectSpec, ConvertError> {
    let mut destinations = Vec::with_capacity(p.destinations.len());
    for (i, d) in p.destinations.iter().enumerate() {
        let cluster_selector = match &d.cluster_selector {
            Some(s) if !s.match_labels.is_empty() || !s.match_expressions.is_empty() => {
                Some(from_label_selector(s).map_err(|e| ConvertError {
                    field: format!("destinations[{i}].{}", e.field),
                    reason: e.reason,
                })?)
            }
            _ => None,
        };
        let mut clusters = d.cluster_names.clone();
        if d.all_clusters {
            clusters.push("*".into());
        }
        destinations.push(ProjectDestination {
            cluster_selector,
            clusters,
            namespace: d.namespace.clone(),
        });
    }
    let mut roles = Vec::with_capacity(p.roles.len());
    for (i, r) in p.roles.iter().enumerate() {
        let role = from_project_role_kind(r.role).ok_or_else(|| {
            invalid(
                &format!("roles[{i}].role"),
                "must be owner, deployer or viewer",
            )
        })?;
        roles.push(RoleBinding {
            role,
            users: r.users.clone(),
            groups: r.groups.clone(),
        });
    }
    Ok(ProjectSpec {
        description: p.description.clone(),
        source_repos: p.source_repos.clone(),
        destinations,
        cluster_resource_whitelist: from_group_kinds(&p.cluster_resource_allow),
        cluster_resource_blacklist: from_group_kinds(&p.cluster_resource_deny),
        namespace_resource_blacklist: from_group_kinds(&p.namespace_resource_deny),
        roles,
        namespace_resource_whitelist: p
            .namespace_resource_allow_listed
            .then(|| from_group_kinds(&p.namespace_resource_allow)),
        orphaned_resources: p.orphaned_resources.as_ref().map(|o| {
            edgecd_core::project::OrphanedResources {
                warn: o.warn,
                ignore: from_group_kinds(&o.ignore),
            }
        }),
        sync_windows: if p.sync_windows_json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&p.sync_windows_json)
                .map_err(|e| invalid("sync_windows_json", format!("is not a JSON list: {e}")))?
        },
        live: edgecd_core::project::LiveAccess {
            logs: match p.logs_role {
                0 => edgecd_core::project::LiveAccess::default().logs,
                code => from_project_role_kind(code)
                    .ok_or_else(|| invalid("logs_role", "must be owner, deployer or viewer"))?,
            },
            exec: match p.exec_role {
                0 => None,
                code => Some(from_project_role_kind(code).ok_or_else(|| {
                    invalid(
                        "exec_role",
                        "must be owner, deployer or viewer (unspecified: off)",
                    )
                })?),
            },
        },
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn deployments_round_trip_under_the_streams_cluster_and_bad_ones_are_refused() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let sent = Deployment {
            cluster: "edge-1".into(),
            project: "web".into(),
            app: "cache".into(),
            history_id: 7,
            rollback_of: Some(3),
            result: OperationPhase::Failed,
            from_revision: "a".repeat(40),
            to_revision: "b".repeat(40),
            initiated_by: "alice".into(),
            started_at: at,
            finished_at: at + time::Duration::seconds(12),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            message: "one or more objects failed to apply".into(),
            command_id: "cmd-1".into(),
        };
        let wire = deployment(&sent);
        assert_eq!(wire.kind, v1::DeploymentKind::Rollback as i32);
        assert!(!wire.automated);
        // The stream's cluster, never the message's.
        let mut forged = wire.clone();
        forged.cluster = "edge-2".into();
        assert_eq!(from_deployment("edge-1", &forged).unwrap(), sent);
        let sync = v1::Deployment {
            kind: v1::DeploymentKind::Sync as i32,
            ..wire.clone()
        };
        assert_eq!(from_deployment("edge-1", &sync).unwrap().rollback_of, None);
        for (what, bad) in [
            (
                "no app",
                v1::Deployment {
                    app: None,
                    ..wire.clone()
                },
            ),
            (
                "a running operation",
                v1::Deployment {
                    result: v1::OperationPhase::Running as i32,
                    ..wire.clone()
                },
            ),
            (
                "no start",
                v1::Deployment {
                    started_at: None,
                    ..wire.clone()
                },
            ),
        ] {
            let error = from_deployment("edge-1", &bad).unwrap_err();
            assert!(error.field.starts_with("deployment."), "{what}: {error}");
        }
        let huge = v1::Deployment {
            message: "x".repeat(1 << 20),
            trace_id: "not a trace".into(),
            ..wire
        };
        let bounded = from_deployment("edge-1", &huge).unwrap();
        assert!(bounded.message.len() <= edgecd_core::deployment::MAX_MESSAGE);
        assert!(bounded.trace_id.is_empty());
    }
    use std::time::Duration;

    use super::*;

    fn full_spec() -> ApplicationSpec {
        ApplicationSpec {
            sources: vec![],
            project: "team-a".into(),
            source: ApplicationSource {
                repo_url: "https://git.example/fleet.git".into(),
                target_revision: "main".into(),
                path: "deploy/overlays/cluster-1".into(),
                directory: None,
                kustomize: Some(KustomizeSource {
                    images: vec!["nginx=nginx:1.27".into()],
                    replicas: vec![KustomizeReplica {
                        name: "nginx".into(),
                        count: 3,
                    }],
                    patches: vec![
                        serde_json::json!({"path": "p.yaml", "target": {"kind": "Deployment"}}),
                    ],
                    components: vec!["../c".into()],
                    ignore_missing_components: true,
                    common_annotations_envsubst: true,
                    label_without_selector: true,
                    label_include_templates: true,
                    force_common_labels: true,
                    force_common_annotations: true,
                    version: "v5.4.3".into(),
                    ..KustomizeSource::default()
                }),
                ..ApplicationSource::default()
            },
            destination: Destination {
                cluster: "cluster-1".into(),
                server: String::new(),
                namespace: "web".into(),
            },
            sync_policy: Some(SyncPolicy {
                automated: Some(AutomatedSync {
                    prune: true,
                    self_heal: true,
                    allow_empty: false,
                }),
                sync_options: vec!["CreateNamespace=true".into()],
                retry: Some(RetryStrategy {
                    limit: 5,
                    backoff: Some(RetryBackoff {
                        duration: Some(GoDuration(Duration::from_secs(5))),
                        factor: Some(2),
                        max_duration: Some(GoDuration(Duration::from_secs(180))),
                    }),
                }),
            }),
            revision_history_limit: Some(10),
            ignore_differences: vec![IgnoreDifference {
                group: "apps".into(),
                kind: "Deployment".into(),
                json_pointers: vec!["/spec/replicas".into()],
                jq_path_expressions: vec![".spec.template.spec.containers[].image".into()],
                managed_fields_managers: vec!["hpa".into()],
                ..IgnoreDifference::default()
            }],
            managed_namespace_metadata: Some(edgecd_core::app::ManagedNamespaceMetadata {
                labels: [("team".to_owned(), "web".to_owned())].into(),
                annotations: [("a".to_owned(), "b".to_owned())].into(),
            }),
            info: vec![edgecd_core::app::InfoItem {
                name: "url".into(),
                value: "https://x".into(),
            }],
        }
    }

    #[test]
    fn spec_round_trips() {
        let spec = full_spec();
        let back = from_application_spec(&application_spec(&spec), "team-a").unwrap();
        assert_eq!(back, spec);
    }

    /// A directory source's Jsonnet options (extVars and TLAs, string and code; libs) survive the protocol.
    #[test]
    fn jsonnet_directory_source_round_trips() {
        let mut spec = full_spec();
        spec.source = ApplicationSource {
            repo_url: "https://git.example/apps.git".into(),
            path: "jsonnet/web".into(),
            directory: Some(DirectorySource {
                recurse: true,
                include: "*.jsonnet".into(),
                exclude: String::new(),
                jsonnet: Some(JsonnetOptions {
                    ext_vars: vec![JsonnetVar {
                        name: "env".into(),
                        value: "prod".into(),
                        code: false,
                    }],
                    tlas: vec![JsonnetVar {
                        name: "replicas".into(),
                        value: "1 + 2".into(),
                        code: true,
                    }],
                    libs: vec!["vendor".into()],
                }),
            }),
            ..ApplicationSource::default()
        };
        let back = from_application_spec(&application_spec(&spec), "team-a").unwrap();
        assert_eq!(back, spec);
    }

    /// Every Helm field (a chart of a chart repository with values, parameters, capabilities) survives the
    /// protocol and comes back equal; `valuesObject` travels as JSON.
    #[test]
    fn helm_source_round_trips() {
        let mut spec = full_spec();
        spec.source = ApplicationSource {
            repo_url: "https://charts.example/stable".into(),
            target_revision: "^1.2.0".into(),
            chart: "web".into(),
            helm: Some(HelmSource {
                release_name: "web".into(),
                value_files: vec!["values-paris.yaml".into()],
                values: "a: 1\n".into(),
                values_object: Some(serde_json::json!({"b": {"c": [1, 2]}})),
                parameters: vec![HelmParameter {
                    name: "image.tag".into(),
                    value: "1.2".into(),
                    force_string: true,
                }],
                file_parameters: vec![HelmFileParameter {
                    name: "config".into(),
                    path: "files/c.txt".into(),
                }],
                skip_crds: true,
                skip_schema_validation: true,
                skip_tests: true,
                namespace: "web".into(),
                kube_version: "1.33.0".into(),
                api_versions: vec!["monitoring.coreos.com/v1".into()],
                pass_credentials: true,
                ignore_missing_value_files: true,
                version: "v3".into(),
            }),
            ..ApplicationSource::default()
        };
        let back = from_application_spec(&application_spec(&spec), "team-a").unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn missing_source_is_named() {
        let err = from_application_spec(&v1::ApplicationSpec::default(), "p").unwrap_err();
        assert_eq!(err.to_string(), "invalid spec.source: is required");
    }

    #[test]
    fn status_round_trips() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let status = ApplicationStatus {
            sync: SyncReport {
                status: SyncStatus::OutOfSync,
                revision: "abc".into(),
            },
            health: HealthReport {
                status: Health::Degraded,
                message: "boom".into(),
            },
            resources: vec![ResourceStatus {
                key: ResourceKey {
                    group: "apps".into(),
                    version: "v1".into(),
                    kind: "Deployment".into(),
                    namespace: "web".into(),
                    name: "nginx".into(),
                },
                status: SyncStatus::OutOfSync,
                health: Some(HealthReport {
                    status: Health::Degraded,
                    message: "boom".into(),
                }),
                requires_pruning: false,
                sync_wave: 1,
            }],
            conditions: vec![Condition {
                kind: "SyncError".into(),
                message: "m".into(),
                last_transition_time: t,
            }],
            operation_state: Some(OperationState {
                command_id: "c1".into(),
                phase: OperationPhase::Failed,
                message: "x".into(),
                started_at: t,
                finished_at: Some(t),
                revision: "abc".into(),
                resources: vec![],
                retry_count: 2,
                initiated_by: "u".into(),
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            }),
            history: vec![HistoryEntry {
                id: 3,
                revision: "abc".into(),
                source: full_spec().source,
                sources: vec![],
                revisions: vec![],
                started_at: t,
                deployed_at: t,
                result: OperationPhase::Succeeded,
                initiated_by: "automated sync".into(),
                resources: vec![],
                trace_id: String::new(),
                rollback_of: None,
            }],
            reconciled_at: Some(t),
            observed_spec_version: 4,
            status_version: 9,
        };
        // A reported trace id that is not 32 lower-case hex digits is dropped, not stored.
        let mut forged = application_status(&status);
        if let Some(op) = forged.operation_state.as_mut() {
            op.trace_id = "<script>".repeat(100);
        }
        assert_eq!(
            from_application_status(&forged)
                .operation_state
                .map(|o| o.trace_id),
            Some(String::new())
        );
        assert_eq!(
            from_application_status(&application_status(&status)),
            status
        );
    }

    #[test]
    fn selectors_round_trip_and_bad_operators_fail() {
        let s = LabelSelector::parse("region=eu,tier in (edge),!legacy").unwrap();
        assert_eq!(from_label_selector(&label_selector(&s)).unwrap(), s);
        let bad = v1::LabelSelector {
            match_labels: Default::default(),
            match_expressions: vec![v1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "Near".into(),
                values: vec![],
            }],
        };
        assert!(
            from_label_selector(&bad)
                .unwrap_err()
                .to_string()
                .contains("Near")
        );
    }
}
