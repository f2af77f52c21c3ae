//! Conversions at the hub's stream edge: store records to hub messages (desired apps, commands) and spoke reports to store inputs.

use edgecd_core::app::AppOrigin;
use edgecd_core::app::ResourceKey;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use edgecd_telemetry::TraceContext;
use serde::{Deserialize, Serialize};

use crate::store::{
    AutonomousApp, CommandOutcome, CommandRecord, CommandUpdate, DesiredChange, DesiredChanges,
    EventRecord, EventSeverity, SnapshotPart, StatusBatch, StatusReport,
};

/// What a command asks for, as stored in the outbox (`payload` JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CommandPayload {
    #[serde(rename_all = "camelCase")]
    Sync {
        #[serde(default)]
        revision: String,
        #[serde(default)]
        prune: bool,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        force: bool,
        /// Only these resources (matched by group, kind, namespace and name); empty means all.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resources: Vec<ResourceKey>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        apply_out_of_sync_only: bool,
    },
    #[serde(rename_all = "camelCase")]
    Refresh {
        #[serde(default)]
        hard: bool,
    },
    #[serde(rename_all = "camelCase")]
    Rollback {
        history_id: i64,
        #[serde(default)]
        prune: bool,
        #[serde(default)]
        dry_run: bool,
    },
    Terminate,
    Diff,
    #[serde(rename_all = "camelCase")]
    Manifests {
        #[serde(default)]
        revision: String,
    },
    /// Deletes an app created at the edge (its CR at the spoke), with its resources when `cascade`.
    #[serde(rename_all = "camelCase")]
    Delete {
        #[serde(default)]
        cascade: bool,
    },
}

/// The outbox `kind` column of a payload.
pub fn command_payload_kind(payload: &CommandPayload) -> &'static str {
    match payload {
        CommandPayload::Sync { .. } => "sync",
        CommandPayload::Refresh { .. } => "refresh",
        CommandPayload::Rollback { .. } => "rollback",
        CommandPayload::Terminate => "terminate",
        CommandPayload::Diff => "diff",
        CommandPayload::Manifests { .. } => "manifests",
        CommandPayload::Delete { .. } => "delete",
    }
}

/// The capability a command kind needs at the spoke.
pub(super) fn required_capability(payload: &CommandPayload) -> &'static str {
    use edgecd_core::link::capabilities::names;
    match payload {
        CommandPayload::Terminate => names::COMMAND_TERMINATE,
        CommandPayload::Diff | CommandPayload::Manifests { .. } => names::COMMAND_QUERIES,
        CommandPayload::Delete { .. } => names::COMMAND_DELETE,
        CommandPayload::Sync {
            force,
            resources,
            apply_out_of_sync_only,
            ..
        } if *force || !resources.is_empty() || *apply_out_of_sync_only => {
            names::COMMAND_SYNC_OPTIONS
        }
        _ => names::COMMANDS,
    }
}

/// The stream message of an outbox command; `trace` is the context the spoke continues (none: the spoke's
/// work starts traces of its own).
pub(crate) fn command(
    record: &CommandRecord,
    payload: &CommandPayload,
    trace: Option<&TraceContext>,
) -> v1::Command {
    let kind = match payload {
        CommandPayload::Sync {
            revision,
            prune,
            dry_run,
            force,
            resources,
            apply_out_of_sync_only,
        } => v1::command::Kind::Sync(v1::SyncCommand {
            revision: revision.clone(),
            prune: *prune,
            dry_run: *dry_run,
            resources: resources.iter().map(pc::resource_key).collect(),
            force: *force,
            apply_out_of_sync_only: *apply_out_of_sync_only,
        }),
        CommandPayload::Refresh { hard } => {
            v1::command::Kind::Refresh(v1::RefreshCommand { hard: *hard })
        }
        CommandPayload::Rollback {
            history_id,
            prune,
            dry_run,
        } => v1::command::Kind::Rollback(v1::RollbackCommand {
            history_id: *history_id,
            prune: *prune,
            dry_run: *dry_run,
        }),
        CommandPayload::Terminate => v1::command::Kind::Terminate(v1::TerminateCommand {}),
        CommandPayload::Diff => v1::command::Kind::Diff(v1::DiffCommand { resources: vec![] }),
        CommandPayload::Manifests { revision } => {
            v1::command::Kind::Manifests(v1::ManifestsCommand {
                revision: revision.clone(),
            })
        }
        CommandPayload::Delete { cascade } => {
            v1::command::Kind::Delete(v1::DeleteCommand { cascade: *cascade })
        }
    };
    v1::Command {
        id: record.id.clone(),
        app: Some(v1::AppRef {
            project: record.project.clone(),
            name: spoke_name(&record.app).to_owned(),
        }),
        deadline: Some(pc::timestamp(record.deadline)),
        issued_by: record.issued_by.clone(),
        issued_at: Some(pc::timestamp(record.issued_at)),
        kind: Some(kind),
        traceparent: trace.map(|t| t.traceparent.clone()).unwrap_or_default(),
        tracestate: trace.map(|t| t.tracestate.clone()).unwrap_or_default(),
    }
}

pub(super) fn desired_apps(changes: &DesiredChanges, base_version: u64) -> v1::DesiredApps {
    let mut upserts = Vec::new();
    let mut deletes = Vec::new();
    let mut keep_resources = Vec::new();
    for change in &changes.changes {
        match change {
            DesiredChange::Upsert(app) => upserts.push(v1::DesiredApp {
                meta: Some(v1::ApplicationMeta {
                    project: app.project.clone(),
                    name: app.name.clone(),
                    labels: pc::labels(&app.labels),
                    uid: app.uid.clone(),
                    spec_version: app.spec_version,
                    origin: v1::AppOrigin::Managed as i32,
                    ..v1::ApplicationMeta::default()
                }),
                spec: Some(pc::application_spec(&app.spec)),
                cascade_delete: true,
            }),
            DesiredChange::Delete {
                project,
                name,
                keep_resources: keep,
                ..
            } => {
                let app = v1::AppRef {
                    project: project.clone(),
                    name: name.clone(),
                };
                if *keep {
                    keep_resources.push(app.clone());
                }
                deletes.push(app);
            }
        }
    }
    v1::DesiredApps {
        version: changes.version,
        base_version,
        full_snapshot: base_version == 0,
        upserts,
        deletes,
        keep_resources,
    }
}

/// The hub's name for an app a spoke reports as `local`: a hub app keeps
/// its name, an app created at the edge is `local@cluster`. `None` when
/// `local` is not an app name a spoke may use (it may not name another
/// cluster's edge app, `x@other`, nor anything but a DNS subdomain).
pub(super) fn hub_name(local: &str, edge: bool, cluster: &str) -> Option<String> {
    edgecd_core::names::AppName::parse(local).ok()?;
    Some(if edge {
        edgecd_core::edge_app_name(local, cluster)
    } else {
        local.to_owned()
    })
}

/// The name the spoke knows an app by: an edge app's name without its `@cluster`.
pub(super) fn spoke_name(name: &str) -> &str {
    edgecd_core::split_edge_app_name(name).0
}

/// A spoke's status batch in the hub's names (see [`hub_name`]): reports of
/// edge apps are renamed `name@cluster`; reports naming what a spoke may not
/// name are dropped (and counted in the second value).
pub(super) fn status_batch(cluster: &str, batch: &v1::AppStatusBatch) -> (StatusBatch, u32) {
    let mut refused = 0;
    let reports = batch
        .reports
        .iter()
        .filter_map(|report| {
            let app = report.app.as_ref()?;
            let edge = pc::from_origin_code(report.origin) == AppOrigin::Autonomous;
            let Some(name) = hub_name(&app.name, edge, cluster) else {
                tracing::warn!(project = %app.project, app = %app.name, "A status report names an app a spoke may not name; ignored.");
                refused += 1;
                return None;
            };
            let status = report
                .status
                .as_ref()
                .map(pc::from_application_status)
                .unwrap_or_default();
            let autonomous = (pc::from_origin_code(report.origin) == AppOrigin::Autonomous)
                .then(|| {
                    let spec = report
                        .spec
                        .as_ref()
                        .and_then(|s| pc::from_application_spec(s, &app.project).ok())?;
                    let meta = report.meta.clone().unwrap_or_default();
                    Some(AutonomousApp {
                        spec,
                        labels: pc::from_labels(&meta.labels),
                        owner: meta.owner.as_ref().map(pc::from_owner_ref),
                    })
                })
                .flatten();
            Some(StatusReport {
                project: app.project.clone(),
                name,
                status,
                autonomous,
            })
        })
        .collect();
    let batch = StatusBatch {
        reports,
        removed: vec![],
        snapshot: batch.full_snapshot.then(|| SnapshotPart {
            snapshot_id: batch.snapshot_id.clone(),
            last: batch.snapshot_last,
        }),
    };
    (batch, refused)
}

pub(super) fn command_update(status: &v1::CommandStatus) -> CommandUpdate {
    let outcome = match v1::CommandOutcome::try_from(status.outcome) {
        Ok(v1::CommandOutcome::Delivered) => CommandOutcome::Delivered,
        Ok(v1::CommandOutcome::Running) => CommandOutcome::Running,
        Ok(v1::CommandOutcome::Succeeded) => CommandOutcome::Succeeded,
        Ok(v1::CommandOutcome::Failed) => CommandOutcome::Failed,
        Ok(v1::CommandOutcome::Expired) => CommandOutcome::Expired,
        Ok(v1::CommandOutcome::Unsupported) => CommandOutcome::Unsupported,
        Ok(v1::CommandOutcome::Rejected) => CommandOutcome::Rejected,
        _ => CommandOutcome::Failed,
    };
    let result = match &status.payload {
        Some(v1::command_status::Payload::Operation(op)) => pc::from_operation_state(op)
            .and_then(|op| serde_json::to_value(op).ok())
            .map(|op| serde_json::json!({ "operation": op })),
        Some(v1::command_status::Payload::Diff(diff)) => Some(serde_json::json!({
            "diff": diff.resources.iter().map(|r| serde_json::json!({
                "key": r.key.as_ref().map(pc::from_resource_key),
                "liveYaml": r.live_yaml,
                "desiredYaml": r.desired_yaml,
                "diff": r.diff,
                "modified": r.modified,
            })).collect::<Vec<_>>()
        })),
        Some(v1::command_status::Payload::Manifests(m)) => Some(serde_json::json!({
            "manifests": { "revision": m.revision, "yaml": m.manifests_yaml }
        })),
        None => None,
    };
    CommandUpdate {
        id: status.command_id.clone(),
        outcome,
        message: status.message.clone(),
        result,
    }
}

/// An event as stored; `app` is the hub's name of the app it is about (see [`hub_name`]).
pub(super) fn event(cluster: &str, e: &v1::Event, app: String) -> EventRecord {
    let project = e
        .app
        .as_ref()
        .map(|a| a.project.clone())
        .unwrap_or_default();
    EventRecord {
        id: e.id.clone(),
        seq: 0,
        cluster: cluster.to_owned(),
        project,
        app,
        resource: e
            .resource
            .as_ref()
            .map(|r| pc::from_resource_key(r).to_string())
            .unwrap_or_default(),
        severity: if e.severity == v1::EventSeverity::Warning as i32 {
            EventSeverity::Warning
        } else {
            EventSeverity::Normal
        },
        reason: e.reason.clone(),
        message: e.message.clone(),
        time: e
            .time
            .as_ref()
            .and_then(pc::from_timestamp)
            .unwrap_or_else(time::OffsetDateTime::now_utc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_apps_are_renamed_at_the_link() {
        assert_eq!(
            hub_name("nginx", true, "cluster-3").as_deref(),
            Some("nginx@cluster-3")
        );
        assert_eq!(
            hub_name("nginx", false, "cluster-3").as_deref(),
            Some("nginx")
        );
        // A spoke cannot name another cluster's edge app, nor its own in the hub's form.
        assert_eq!(hub_name("nginx@cluster-1", true, "cluster-2"), None);
        assert_eq!(hub_name("nginx@cluster-2", false, "cluster-2"), None);
        assert_eq!(hub_name("", true, "cluster-2"), None);
        assert_eq!(spoke_name("nginx@cluster-3"), "nginx");
        assert_eq!(spoke_name("nginx"), "nginx");
    }

    #[test]
    fn payloads_serialize_with_a_kind_tag() {
        let p = CommandPayload::Sync {
            revision: "abc".into(),
            prune: true,
            dry_run: false,
            force: false,
            resources: vec![],
            apply_out_of_sync_only: false,
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["kind"], "sync");
        assert_eq!(json["dryRun"], false);
        let back: CommandPayload = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let r: CommandPayload =
            serde_json::from_str(r#"{"kind":"rollback","historyId":3}"#).unwrap();
        assert_eq!(command_payload_kind(&r), "rollback");
    }
}
