//! The console's JSON shapes: protobuf responses of `HubService` mapped to the camelCase objects the browser reads.
//!
//! Specs and statuses go through `edgecd_proto::convert` to the domain types
//! and their serde form (the Argo CD-like shape documented in
//! `docs/console.md`); list rows and clusters are mapped field by field.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use edgecd_core::app::AppOrigin;
use edgecd_core::{Health, SyncStatus};
use edgecd_proto::convert;
use edgecd_proto::v1;

fn time(t: Option<&edgecd_proto::Timestamp>) -> Value {
    t.and_then(convert::from_timestamp)
        .and_then(|t: OffsetDateTime| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn sync_name(code: i32) -> &'static str {
    match convert::from_sync_code(code) {
        SyncStatus::Synced => "Synced",
        SyncStatus::OutOfSync => "OutOfSync",
        SyncStatus::Unknown => "Unknown",
    }
}

fn health_name(code: i32) -> &'static str {
    match convert::from_health_code(code) {
        Health::Healthy => "Healthy",
        Health::Progressing => "Progressing",
        Health::Degraded => "Degraded",
        Health::Suspended => "Suspended",
        Health::Missing => "Missing",
        Health::Unknown => "Unknown",
    }
}

fn phase_name(code: i32) -> Value {
    match v1::OperationPhase::try_from(code) {
        Ok(v1::OperationPhase::Running) => json!("Running"),
        Ok(v1::OperationPhase::Succeeded) => json!("Succeeded"),
        Ok(v1::OperationPhase::Failed) => json!("Failed"),
        Ok(v1::OperationPhase::Error) => json!("Error"),
        Ok(v1::OperationPhase::Terminating) => json!("Terminating"),
        _ => Value::Null,
    }
}

/// Name of a connection state code, as the console shows it.
pub fn connection_name(code: i32) -> &'static str {
    match v1::ConnectionStateCode::try_from(code) {
        Ok(v1::ConnectionStateCode::Pending) => "Pending",
        Ok(v1::ConnectionStateCode::Connected) => "Connected",
        Ok(v1::ConnectionStateCode::Stale) => "Stale",
        Ok(v1::ConnectionStateCode::Disconnected) => "Disconnected",
        Ok(v1::ConnectionStateCode::Revoked) => "Revoked",
        _ => "Unregistered",
    }
}

fn origin_name(code: i32) -> &'static str {
    match convert::from_origin_code(code) {
        AppOrigin::Managed => "Managed",
        AppOrigin::Autonomous => "Autonomous",
    }
}

fn owner(o: Option<&v1::OwnerRef>) -> Value {
    o.filter(|o| !o.name.is_empty()).map_or(
        Value::Null,
        |o| json!({"kind": o.kind, "project": o.project, "name": o.name, "scope": o.scope}),
    )
}

fn sorted(map: &std::collections::HashMap<String, String>) -> Value {
    let ordered: std::collections::BTreeMap<_, _> = map.iter().collect();
    json!(ordered)
}

fn connection_fields(out: &mut Map<String, Value>, c: Option<&v1::ConnectionState>) {
    let state = c.map_or(0, |c| c.state);
    out.insert("connection".into(), json!(connection_name(state)));
    out.insert(
        "connectionSince".into(),
        time(c.and_then(|c| c.since.as_ref())),
    );
    out.insert(
        "lastHeartbeat".into(),
        time(c.and_then(|c| c.last_heartbeat.as_ref())),
    );
    out.insert(
        "hubReplica".into(),
        json!(c.map(|c| c.hub_replica.as_str()).unwrap_or_default()),
    );
}

/// One row of the application table (also the payload of live `app` events).
pub fn app_summary(a: &v1::ApplicationSummary) -> Value {
    let mut out = Map::new();
    out.insert("project".into(), json!(a.project));
    out.insert("name".into(), json!(a.name));
    out.insert("cluster".into(), json!(a.cluster));
    out.insert("namespace".into(), json!(a.namespace));
    out.insert("repoUrl".into(), json!(a.repo_url));
    out.insert("path".into(), json!(a.path));
    out.insert("targetRevision".into(), json!(a.target_revision));
    out.insert("sync".into(), json!(sync_name(a.sync)));
    out.insert("health".into(), json!(health_name(a.health)));
    out.insert("revision".into(), json!(a.revision));
    out.insert("operationPhase".into(), phase_name(a.operation_phase));
    out.insert("labels".into(), sorted(&a.labels));
    out.insert("updatedAt".into(), time(a.updated_at.as_ref()));
    out.insert("origin".into(), json!(origin_name(a.origin)));
    out.insert("owner".into(), owner(a.owner.as_ref()));
    out.insert("automated".into(), json!(a.automated));
    out.insert("errorConditions".into(), json!(a.error_conditions));
    connection_fields(&mut out, a.cluster_connection.as_ref());
    Value::Object(out)
}

/// Which buttons the console may offer for an app (the hub refuses the calls anyway).
#[derive(Debug, Clone, Copy, Default)]
pub struct Permissions {
    /// Sync, refresh, rollback, terminate.
    pub operate: bool,
    /// Change the spec (never for an app created at the edge).
    pub edit: bool,
    /// Delete the app.
    pub delete: bool,
}

/// One application with spec and status, and what the caller may do with it.
pub fn application(app: &v1::Application, may: Permissions) -> Value {
    let meta = app.meta.clone().unwrap_or_default();
    let spec = app
        .spec
        .as_ref()
        .and_then(|s| convert::from_application_spec(s, &meta.project).ok())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let status = app
        .status
        .as_ref()
        .map(convert::from_application_status)
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let st = app.status.as_ref();
    // An app a spoke's application set created names its cluster only as
    // the set's scope (its destination is the in-cluster server).
    let cluster = app
        .spec
        .as_ref()
        .and_then(|s| s.destination.as_ref())
        .map(|d| d.cluster.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            meta.owner
                .as_ref()
                .filter(|o| meta.origin == v1::AppOrigin::Autonomous as i32 && o.scope != "hub")
                .map(|o| o.scope.clone())
        })
        .unwrap_or_default();
    let mut summary = Map::new();
    summary.insert("project".into(), json!(meta.project));
    summary.insert("name".into(), json!(meta.name));
    summary.insert("cluster".into(), json!(cluster));
    summary.insert(
        "sync".into(),
        json!(sync_name(
            st.and_then(|s| s.sync.as_ref()).map_or(0, |s| s.status)
        )),
    );
    summary.insert(
        "health".into(),
        json!(health_name(
            st.and_then(|s| s.health.as_ref()).map_or(0, |h| h.status)
        )),
    );
    summary.insert(
        "revision".into(),
        json!(
            st.and_then(|s| s.sync.as_ref())
                .map(|s| s.revision.as_str())
                .unwrap_or_default()
        ),
    );
    summary.insert("labels".into(), sorted(&meta.labels));
    summary.insert("origin".into(), json!(origin_name(meta.origin)));
    summary.insert("owner".into(), owner(meta.owner.as_ref()));
    summary.insert("specVersion".into(), json!(meta.spec_version));
    summary.insert("updatedAt".into(), time(meta.updated_at.as_ref()));
    connection_fields(&mut summary, app.cluster_connection.as_ref());
    json!({
        "app": summary,
        "spec": spec,
        "status": status,
        "permissions": {"operate": may.operate, "edit": may.edit, "delete": may.delete},
    })
}

/// A resource tree as flat nodes with a `parent` uid (the first parent).
pub fn tree(t: &v1::ResourceTreeResponse) -> Value {
    let nodes: Vec<Value> = t
        .nodes
        .iter()
        .map(|n| {
            let key = n.key.clone().unwrap_or_default();
            json!({
                "uid": n.uid,
                "parent": n.parent_uids.first().cloned().unwrap_or_default(),
                "group": key.group,
                "version": key.version,
                "kind": key.kind,
                "namespace": key.namespace,
                "name": key.name,
                // The node's own sync status: the hub's field, else what the spoke put in `info`.
                "sync": if n.sync != 0 {
                    json!(sync_name(n.sync))
                } else {
                    match n.info.get("sync").map(String::as_str) {
                        Some(s @ ("Synced" | "OutOfSync")) => json!(s),
                        _ => Value::Null,
                    }
                },
                "health": n.health.as_ref().filter(|h| h.status != 0).map(|h| health_name(h.status)),
                "healthMessage": n.health.as_ref().map(|h| h.message.as_str()).unwrap_or_default(),
                "info": sorted(&n.info),
            })
        })
        .collect();
    json!({"nodes": nodes, "reportedAt": time(t.reported_at.as_ref())})
}

/// One resource of an app, named by the console: `group`, `kind`, `namespace`, `name`
/// (the query of `/diff` and `/manifests`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ResourceFilter {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
}

impl ResourceFilter {
    /// Whether the query names a resource (kind and name); otherwise it is the whole app.
    pub fn is_set(&self) -> bool {
        !self.kind.is_empty() && !self.name.is_empty()
    }

    /// Whether `(group, kind, namespace, name)` is this resource. A namespace left out on
    /// either side (a desired manifest without one, defaulted at apply) matches any.
    pub fn matches(&self, group: &str, kind: &str, namespace: &str, name: &str) -> bool {
        self.group == group
            && self.kind == kind
            && self.name == name
            && (self.namespace.is_empty() || namespace.is_empty() || self.namespace == namespace)
    }
}

/// The per-resource diff of an application: the modified resources, or with a
/// filter that resource whether modified or not, with its live (managed fields)
/// and desired YAML.
pub fn diff(d: &v1::DiffResult, only: Option<&ResourceFilter>) -> Value {
    let resources: Vec<Value> = d
        .resources
        .iter()
        .filter(|r| {
            let key = r.key.clone().unwrap_or_default();
            match only {
                Some(f) => f.matches(&key.group, &key.kind, &key.namespace, &key.name),
                None => r.modified,
            }
        })
        .map(|r| {
            let key = r.key.clone().unwrap_or_default();
            json!({
                "group": key.group, "kind": key.kind, "namespace": key.namespace, "name": key.name,
                "status": if r.modified { "OutOfSync" } else { "Synced" },
                "modified": r.modified, "diff": r.diff,
                "liveYaml": r.live_yaml, "desiredYaml": r.desired_yaml,
            })
        })
        .collect();
    json!({ "resources": resources })
}

/// The identity of a rendered manifest: (group, kind, namespace, name).
fn manifest_key(doc: &Value) -> (String, String, String, String) {
    let text = |pointer: &str| {
        doc.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let api_version = text("/apiVersion");
    let group = api_version
        .split_once('/')
        .map(|(g, _)| g.to_owned())
        .unwrap_or_default();
    (
        group,
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// The desired manifests rendered from git: all, or with a filter only that
/// resource's document. A document that does not parse is kept when
/// nothing is filtered and skipped otherwise.
pub fn manifests(m: &v1::ManifestsResult, only: Option<&ResourceFilter>) -> Value {
    let mut out: Vec<String> = Vec::new();
    for text in &m.manifests_yaml {
        let Some(filter) = only else {
            out.push(text.clone());
            continue;
        };
        let Ok(documents) = edgecd_render::yaml::load_documents(text) else {
            continue;
        };
        let documents: Vec<&Value> = documents.iter().filter(|d| !d.is_null()).collect();
        let single = documents.len() == 1;
        for doc in documents {
            let (group, kind, namespace, name) = manifest_key(doc);
            if filter.matches(&group, &kind, &namespace, &name) {
                out.push(if single {
                    text.clone()
                } else {
                    edgecd_render::yaml::to_yaml_document(doc)
                });
            }
        }
    }
    json!({ "revision": m.revision, "manifests": out })
}

/// A deployment of the fleet's record.
pub fn deployment(d: &v1::Deployment) -> Value {
    let app = d.app.clone().unwrap_or_default();
    let rollback = d.kind == v1::DeploymentKind::Rollback as i32;
    json!({
        "cluster": d.cluster, "project": app.project, "app": app.name, "historyId": d.history_id,
        "kind": if rollback { "rollback" } else { "sync" },
        "rollbackOf": if rollback { json!(d.rollback_of) } else { Value::Null },
        "result": phase_name(d.result), "fromRevision": d.from_revision, "toRevision": d.to_revision,
        "initiatedBy": d.initiated_by, "automated": d.automated,
        "startedAt": time(d.started_at.as_ref()), "finishedAt": time(d.finished_at.as_ref()),
        "traceId": d.trace_id, "message": d.message, "commandId": d.command_id,
    })
}

pub fn event(e: &v1::Event) -> Value {
    let app = e.app.clone().unwrap_or_default();
    let resource = e
        .resource
        .as_ref()
        .filter(|r| !r.kind.is_empty())
        .map(|r| {
            if r.namespace.is_empty() {
                format!("{} {}", r.kind, r.name)
            } else {
                format!("{} {}/{}", r.kind, r.namespace, r.name)
            }
        })
        .unwrap_or_default();
    let severity = if e.severity == v1::EventSeverity::Warning as i32 {
        "Warning"
    } else {
        "Normal"
    };
    json!({
        "id": e.id, "cluster": e.cluster, "project": app.project, "app": app.name,
        "resource": resource, "severity": severity, "reason": e.reason,
        "message": e.message, "time": time(e.time.as_ref()),
    })
}

pub fn cluster(c: &v1::Cluster) -> Value {
    let versions = c.versions.clone().unwrap_or_default();
    let mut out = Map::new();
    out.insert("name".into(), json!(c.name));
    out.insert("labels".into(), sorted(&c.labels));
    out.insert("serverUrl".into(), json!(c.server_url));
    out.insert(
        "kubernetesVersion".into(),
        json!(versions.kubernetes_version),
    );
    out.insert("spokeVersion".into(), json!(versions.spoke_version));
    let skew = versions.skew.unwrap_or_default();
    out.insert(
        "versionSkew".into(),
        json!({
            "state": v1::version_skew::State::try_from(skew.state)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("STATE_"),
            "message": skew.message,
        }),
    );
    out.insert(
        "appCount".into(),
        c.app_counts
            .as_ref()
            .map_or(Value::Null, |a| json!(a.total)),
    );
    out.insert(
        "appCounts".into(),
        c.app_counts.as_ref().map_or(Value::Null, |a| {
            json!({
                "total": a.total, "synced": a.synced, "outOfSync": a.out_of_sync,
                "healthy": a.healthy, "progressing": a.progressing, "degraded": a.degraded,
                "missing": a.missing, "unknown": a.unknown, "suspended": a.suspended,
            })
        }),
    );
    out.insert(
        "certificateNotAfter".into(),
        time(c.certificate_not_after.as_ref()),
    );
    out.insert("createdAt".into(), time(c.created_at.as_ref()));
    connection_fields(&mut out, c.connection.as_ref());
    Value::Object(out)
}

/// A project destination in words: "every cluster, any namespace",
/// "clusters cluster-1, cluster-2 or matching region=eu, namespace nginx".
pub fn destination_text(d: &edgecd_core::project::ProjectDestination) -> String {
    let selector = d
        .cluster_selector
        .as_ref()
        .map(ToString::to_string)
        .filter(|s| !s.is_empty());
    let every = d.clusters.iter().any(|c| c == "*");
    let clusters = match (every, d.clusters.is_empty(), selector) {
        (true, _, _) => "every cluster".to_owned(),
        (false, true, None) => "no cluster".to_owned(),
        (false, true, Some(s)) => format!("clusters matching {s}"),
        (false, false, None) => format!(
            "{} {}",
            if d.clusters.len() == 1 {
                "cluster"
            } else {
                "clusters"
            },
            d.clusters.join(", ")
        ),
        (false, false, Some(s)) => format!("clusters {} or matching {s}", d.clusters.join(", ")),
    };
    let namespace = match d.namespace.as_str() {
        "" | "*" => "any namespace".to_owned(),
        ns => format!("namespace {ns}"),
    };
    format!("{clusters}, {namespace}")
}

/// A project: its spec in the domain's serde form (the shape of `edgecd project get -o json`)
/// and its destinations in words.
pub fn project(p: &v1::Project) -> Value {
    let domain = convert::from_project(p).ok();
    let destinations: Vec<String> = domain
        .as_ref()
        .map(|spec| spec.destinations.iter().map(destination_text).collect())
        .unwrap_or_default();
    let spec = domain
        .and_then(|spec| serde_json::to_value(spec).ok())
        .unwrap_or(Value::Null);
    json!({
        "name": p.name,
        "version": p.version,
        "createdAt": time(p.created_at.as_ref()),
        "spec": spec,
        "destinations": destinations,
    })
}

/// A label selector as kubectl writes it (`region=eu,tier in (a,b)`); empty for "everything".
fn selector_text(s: Option<&v1::LabelSelector>) -> String {
    let Some(s) = s else {
        return String::new();
    };
    let labels: std::collections::BTreeMap<_, _> = s.match_labels.iter().collect();
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for e in &s.match_expressions {
        parts.push(match e.operator.as_str() {
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!(
                "{} {} ({})",
                e.key,
                if op == "NotIn" { "notin" } else { "in" },
                e.values.join(",")
            ),
        });
    }
    parts.join(",")
}

/// The kind of a generator, as nested generators are named (`matrix(clusters, list)`).
fn generator_kind(g: &v1::ApplicationSetGenerator) -> String {
    use v1::application_set_generator::Generator as G;
    match &g.generator {
        Some(G::List(_)) => "list".into(),
        Some(G::Clusters(_)) => "clusters".into(),
        Some(G::Git(g)) if g.files.is_empty() => "git directories".into(),
        Some(G::Git(_)) => "git files".into(),
        Some(G::Matrix(m)) => format!("matrix({})", generator_kinds(&m.generators)),
        Some(G::Merge(m)) => format!("merge({})", generator_kinds(&m.generators)),
        None => "unknown".into(),
    }
}

fn generator_kinds(gs: &[v1::ApplicationSetGenerator]) -> String {
    gs.iter().map(generator_kind).collect::<Vec<_>>().join(", ")
}

/// One line saying what a generator produces: `clusters (all)`,
/// `git directories deploy/clusters/cluster-3/*`, `list (3 elements)`,
/// `matrix(clusters, list)`.
pub fn generator_summary(g: &v1::ApplicationSetGenerator) -> String {
    use v1::application_set_generator::Generator as G;
    match &g.generator {
        Some(G::List(l)) => match l.elements_json.len() {
            1 => "list (1 element)".into(),
            n => format!("list ({n} elements)"),
        },
        Some(G::Clusters(c)) => {
            let selector = selector_text(c.selector.as_ref());
            if selector.is_empty() {
                "clusters (all)".into()
            } else {
                format!("clusters ({selector})")
            }
        }
        Some(G::Git(git)) => {
            let paths: Vec<String> = if git.files.is_empty() {
                git.directories
                    .iter()
                    .map(|d| {
                        if d.exclude {
                            format!("!{}", d.path)
                        } else {
                            d.path.clone()
                        }
                    })
                    .collect()
            } else {
                git.files
                    .iter()
                    .map(|f| {
                        if f.exclude {
                            format!("!{}", f.path)
                        } else {
                            f.path.clone()
                        }
                    })
                    .collect()
            };
            format!("{} {}", generator_kind(g), paths.join(" "))
                .trim_end()
                .to_owned()
        }
        Some(G::Matrix(_) | G::Merge(_)) | None => generator_kind(g),
    }
}

fn policy_name(code: i32) -> &'static str {
    match v1::ApplicationSetPolicy::try_from(code) {
        Ok(v1::ApplicationSetPolicy::CreateOnly) => "create-only",
        Ok(v1::ApplicationSetPolicy::CreateUpdate) => "create-update",
        Ok(v1::ApplicationSetPolicy::CreateDelete) => "create-delete",
        _ => "sync",
    }
}

fn condition(c: &v1::Condition) -> Value {
    json!({
        "type": c.r#type,
        "message": c.message,
        "error": c.r#type.contains("Error"),
        "lastTransitionTime": time(c.last_transition_time.as_ref()),
    })
}

/// One app's place in a progressive sync.
fn rollout_app(r: &v1::RolloutApplication) -> Value {
    let app = r.app.clone().unwrap_or_default();
    json!({
        "project": app.project, "name": app.name,
        "phase": r.status, "step": r.step, "message": r.message,
        "commandId": r.command_id,
        "lastTransitionTime": time(r.last_transition_time.as_ref()),
    })
}

/// An application set: where it is evaluated, what generates and what it
/// stamps out, how many apps it generated and its conditions (errors flagged).
pub fn appset(s: &v1::ApplicationSet) -> Value {
    let template = s.template.clone().unwrap_or_default();
    let spec = template.spec.unwrap_or_default();
    let source = spec.source.unwrap_or_default();
    let dest = spec.destination.unwrap_or_default();
    let generated: Vec<Value> = s
        .generated
        .iter()
        .map(|a| json!({"project": a.project, "name": a.name}))
        .collect();
    json!({
        "project": s.project, "name": s.name,
        "scope": if s.scope.is_empty() { "hub" } else { s.scope.as_str() },
        "generators": s.generators.iter().map(generator_summary).collect::<Vec<_>>(),
        "policy": policy_name(s.policy),
        "preserveResourcesOnDeletion": s.preserve_resources_on_deletion,
        "template": {
            "name": template.name, "project": template.project,
            "repoUrl": source.repo_url, "path": source.path, "targetRevision": source.target_revision,
            "cluster": dest.cluster, "server": dest.server, "namespace": dest.namespace,
            "automated": spec.sync_policy.is_some_and(|p| p.automated.is_some()),
        },
        "generated": s.generated.len(),
        "generatedApps": generated,
        "conditions": s.conditions.iter().map(condition).collect::<Vec<_>>(),
        "error": s.conditions.iter().any(|c| c.r#type.contains("Error")),
        "rollout": s.rollout.iter().map(rollout_app).collect::<Vec<_>>(),
        "version": s.version,
        "createdAt": time(s.created_at.as_ref()),
    })
}

pub fn command_status(c: &v1::CommandStatus) -> Value {
    let state = v1::CommandOutcome::try_from(c.outcome)
        .map(|o| {
            let name = o.as_str_name().trim_start_matches("COMMAND_OUTCOME_");
            let mut chars = name.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_string() + &chars.as_str().to_lowercase()
            })
        })
        .unwrap_or_default();
    json!({
        "id": c.command_id, "state": state, "message": c.message, "notice": c.notice,
        "updatedAt": time(c.updated_at.as_ref()),
    })
}

pub fn counts(c: &v1::ApplicationCounts) -> Value {
    let buckets = |b: &[v1::CountBucket]| {
        let map: Map<String, Value> = b.iter().map(|b| (b.key.clone(), json!(b.count))).collect();
        Value::Object(map)
    };
    json!({
        "total": c.total,
        "bySync": buckets(&c.by_sync),
        "byHealth": buckets(&c.by_health),
        "byConnection": buckets(&c.by_cluster_connection),
        "byProject": buckets(&c.by_project),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_states_in_words() {
        let row = v1::ApplicationSummary {
            project: "default".into(),
            name: "nginx".into(),
            cluster: "cluster-1".into(),
            sync: v1::SyncStatusCode::OutOfSync as i32,
            health: v1::HealthStatusCode::Degraded as i32,
            operation_phase: v1::OperationPhase::Failed as i32,
            cluster_connection: Some(v1::ConnectionState {
                state: v1::ConnectionStateCode::Stale as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = app_summary(&row);
        assert_eq!(v["sync"], "OutOfSync");
        assert_eq!(v["health"], "Degraded");
        assert_eq!(v["operationPhase"], "Failed");
        assert_eq!(v["connection"], "Stale");
        assert_eq!(v["origin"], "Managed");
    }

    #[test]
    fn command_outcomes_read_as_words() {
        let c = v1::CommandStatus {
            command_id: "c1".into(),
            outcome: v1::CommandOutcome::Delivered as i32,
            ..Default::default()
        };
        assert_eq!(command_status(&c)["state"], "Delivered");
    }

    #[test]
    fn command_notice_is_shown() {
        let c = v1::CommandStatus {
            command_id: "c2".into(),
            outcome: v1::CommandOutcome::Pending as i32,
            notice: "cluster cluster-3 is Stale: the command runs when its spoke reconnects".into(),
            ..Default::default()
        };
        let v = command_status(&c);
        assert_eq!(v["state"], "Pending");
        assert!(v["notice"].as_str().unwrap_or_default().contains("Stale"));
    }

    #[test]
    fn destinations_read_as_words() {
        use edgecd_core::project::ProjectDestination;
        let every = ProjectDestination {
            clusters: vec!["*".into()],
            namespace: "*".into(),
            ..Default::default()
        };
        assert_eq!(destination_text(&every), "every cluster, any namespace");
        let two = ProjectDestination {
            clusters: vec!["cluster-1".into(), "cluster-2".into()],
            namespace: "nginx".into(),
            ..Default::default()
        };
        assert_eq!(
            destination_text(&two),
            "clusters cluster-1, cluster-2, namespace nginx"
        );
        let selected = ProjectDestination {
            cluster_selector: edgecd_core::selector::LabelSelector::parse("region=eu").ok(),
            namespace: String::new(),
            ..Default::default()
        };
        assert_eq!(
            destination_text(&selected),
            "clusters matching region=eu, any namespace"
        );
    }

    #[test]
    fn a_resource_filter_picks_its_diff_and_manifest() {
        let key = |kind: &str, name: &str| v1::ResourceKey {
            group: if kind == "Deployment" {
                "apps".into()
            } else {
                String::new()
            },
            version: "v1".into(),
            kind: kind.into(),
            namespace: "nginx".into(),
            name: name.into(),
        };
        let d = v1::DiffResult {
            resources: vec![
                v1::ResourceDiff {
                    key: Some(key("Deployment", "nginx")),
                    modified: true,
                    diff: "-replicas: 9\n+replicas: 1".into(),
                    ..Default::default()
                },
                v1::ResourceDiff {
                    key: Some(key("Service", "nginx")),
                    modified: false,
                    live_yaml: "kind: Service".into(),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(
            diff(&d, None)["resources"].as_array().map(Vec::len),
            Some(1)
        );
        let service = ResourceFilter {
            kind: "Service".into(),
            namespace: "nginx".into(),
            name: "nginx".into(),
            ..Default::default()
        };
        let v = diff(&d, Some(&service));
        assert_eq!(v["resources"][0]["modified"], false);
        assert_eq!(v["resources"][0]["liveYaml"], "kind: Service");
        let m = v1::ManifestsResult {
            revision: "abc".into(),
            manifests_yaml: vec![
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: nginx\n".into(),
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: nginx\n".into(),
                "not: [valid".into(),
            ],
        };
        let deployment = ResourceFilter {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "nginx".into(),
            name: "nginx".into(),
        };
        let v = manifests(&m, Some(&deployment));
        assert_eq!(v["manifests"].as_array().map(Vec::len), Some(1));
        assert!(
            v["manifests"][0]
                .as_str()
                .unwrap_or_default()
                .contains("kind: Deployment")
        );
        assert_eq!(
            manifests(&m, None)["manifests"].as_array().map(Vec::len),
            Some(3)
        );
    }

    #[test]
    fn generators_are_summarised_in_one_line() {
        use v1::application_set_generator::Generator as G;
        let clusters = v1::ApplicationSetGenerator {
            generator: Some(G::Clusters(v1::ClustersGenerator::default())),
        };
        assert_eq!(generator_summary(&clusters), "clusters (all)");
        let eu = v1::ApplicationSetGenerator {
            generator: Some(G::Clusters(v1::ClustersGenerator {
                selector: Some(v1::LabelSelector {
                    match_labels: [("region".to_owned(), "eu".to_owned())].into(),
                    match_expressions: vec![v1::LabelSelectorRequirement {
                        key: "tier".into(),
                        operator: "In".into(),
                        values: vec!["a".into(), "b".into()],
                    }],
                }),
                ..Default::default()
            })),
        };
        assert_eq!(generator_summary(&eu), "clusters (region=eu,tier in (a,b))");
        let git = v1::ApplicationSetGenerator {
            generator: Some(G::Git(v1::GitGenerator {
                directories: vec![v1::GitDirectory {
                    path: "deploy/clusters/cluster-3/*".into(),
                    exclude: false,
                }],
                ..Default::default()
            })),
        };
        assert_eq!(
            generator_summary(&git),
            "git directories deploy/clusters/cluster-3/*"
        );
        let list = v1::ApplicationSetGenerator {
            generator: Some(G::List(v1::ListGenerator {
                elements_json: vec!["{}".into(), "{}".into()],
            })),
        };
        assert_eq!(generator_summary(&list), "list (2 elements)");
        let matrix = v1::ApplicationSetGenerator {
            generator: Some(G::Matrix(v1::MatrixGenerator {
                generators: vec![clusters, list],
            })),
        };
        assert_eq!(generator_summary(&matrix), "matrix(clusters, list)");
    }

    #[test]
    fn appset_conditions_flag_errors() {
        let set = v1::ApplicationSet {
            project: "default".into(),
            name: "nginx".into(),
            policy: v1::ApplicationSetPolicy::CreateOnly as i32,
            conditions: vec![
                v1::Condition {
                    r#type: "ErrorOccurred".into(),
                    message: "cluster x unknown".into(),
                    last_transition_time: None,
                },
                v1::Condition {
                    r#type: "ResourcesUpToDate".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut set = set;
        set.rollout = vec![v1::RolloutApplication {
            app: Some(v1::AppRef::new("default", "web-1")),
            status: "Pending".into(),
            step: 2,
            message: "step 2 is rolling out: sync asked".into(),
            command_id: "c-1".into(),
            ..Default::default()
        }];
        let v = appset(&set);
        assert_eq!(v["rollout"][0]["name"], "web-1");
        assert_eq!(v["rollout"][0]["phase"], "Pending");
        assert_eq!(v["rollout"][0]["step"], 2);
        assert_eq!(v["scope"], "hub");
        assert_eq!(v["policy"], "create-only");
        assert_eq!(v["error"], true);
        assert_eq!(v["conditions"][0]["error"], true);
        assert_eq!(v["conditions"][1]["error"], false);
    }
}
