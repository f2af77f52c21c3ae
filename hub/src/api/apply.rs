//! `ApplyManifests`: edgecd and Argo CD YAML (Application, ApplicationSet, AppProject) mapped onto the hub's objects, all documents checked before any is applied.
//!
//! ```text
//!  YAML ─ render::yaml (bounded) ─► documents ─ core::argo::parse_document (strict: unsupported fields named)
//!       ─► every document valid? ── no ─► INVALID_ARGUMENT naming each refused document and field (nothing applied)
//!                                └ yes ─► per document: Application → destination (name | server URL) → create/update
//!                                                       ApplicationSet → scope (hub | request.cluster) → create/update
//!                                                       AppProject → destinations by server URL → create/update (admins)
//! ```

use edgecd_core::argo::{
    Document, ImportedApp, ImportedAppSet, ImportedProject, parse_document_warned,
};
use edgecd_core::selector::LabelSelector;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use tonic::Status;

use super::{Call, HubApi, store_error};
use crate::appsets::{HUB_CLUSTER, IN_CLUSTER_SERVER, resolve_destination};
use crate::store::appsets::HUB_SCOPE;
use crate::store::{NewAppSet, StoreError};
use edgecd_core::appset::AppSetScope;
use std::collections::BTreeMap;

/// Largest YAML accepted in one call.
const MAX_YAML_BYTES: usize = 4 * 1024 * 1024;
/// What YAML aliases may add to one call's documents, in bytes of the loaded value: the documents
/// this call takes (Applications, sets, projects) are small, and every caller may send one.
const MAX_ALIAS_BYTES: u64 = 4 * 1024 * 1024;

pub(super) async fn apply(
    api: &HubApi,
    call: &Call,
    req: v1::ApplyManifestsRequest,
) -> Result<v1::ApplyManifestsResponse, Status> {
    if req.yaml.len() > MAX_YAML_BYTES {
        return Err(Status::invalid_argument(format!(
            "the manifests are {} bytes; at most {MAX_YAML_BYTES} are accepted in one call",
            req.yaml.len()
        )));
    }
    let budget = edgecd_render::yaml::Budget::new(MAX_ALIAS_BYTES);
    let documents = edgecd_render::yaml::load_documents_within(&req.yaml, &budget)
        .map_err(|e| Status::invalid_argument(format!("manifests: {e}")))?;
    let mut parsed = Vec::new();
    let mut decisions = Vec::new();
    let mut refused = Vec::new();
    for (index, doc) in documents.iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        // Not an Argo CD or edgecd object: a ConfigMap or decision resource of clusterDecisionResource generators.
        if let Some(decision) = crate::appsets::decisions::parse_document(doc) {
            let (api_version, kind, name) = source(doc);
            match decision {
                Ok(decision) => decisions.push(decision),
                Err(error) => refused.push(format!(
                    "document {}: {api_version} {kind} {name}: {error}",
                    index + 1
                )),
            }
            continue;
        }
        match parse_document_warned(doc) {
            Ok((document, warnings)) => parsed.push((source(doc), document, warnings)),
            Err(error) => refused.push(format!("document {}: {error}", index + 1)),
        }
    }
    if !refused.is_empty() {
        return Err(Status::invalid_argument(format!(
            "nothing was applied: {}",
            refused.join("; ")
        )));
    }
    if parsed.is_empty() && decisions.is_empty() {
        return Err(Status::invalid_argument("the manifests hold no document"));
    }
    let mut results = Vec::with_capacity(parsed.len() + decisions.len());
    if !decisions.is_empty() {
        results.extend(apply_decisions(api, call, decisions, req.dry_run).await?);
    }
    let default_project = if req.default_project.is_empty() {
        "default"
    } else {
        req.default_project.as_str()
    };
    // Projects first, so the apps and sets of the same file can use them.
    parsed.sort_by_key(|(_, d, _)| !matches!(d, Document::Project(_)));
    for (source, document, warnings) in parsed {
        // The project a refusal names: the document's, as it would have been applied.
        let project = match &document {
            Document::Project(project) => project.name.clone(),
            Document::Application(app) => project_of(&app.project, default_project),
            Document::ApplicationSet(set) => project_of(&set.project, default_project),
        };
        let result = match document {
            Document::Project(project) => apply_project(api, call, project, req.dry_run).await,
            Document::Application(app) => {
                apply_app(api, call, app, default_project, &req.cluster, req.dry_run).await
            }
            Document::ApplicationSet(set) => {
                let reads_decisions = set.spec.uses_decision_resources();
                let scope = if !req.scope.is_empty() {
                    req.scope.as_str()
                } else if reads_decisions {
                    // The decision resources are the hub's: such a set is evaluated there, whatever cluster
                    // the call names for `in-cluster`.
                    ""
                } else {
                    req.cluster.as_str()
                };
                let applied = apply_set(api, call, set, default_project, scope, req.dry_run).await;
                applied.map(|mut result| {
                    if reads_decisions && !req.cluster.is_empty() && req.scope.is_empty() {
                        result.warnings.push(format!(
                            "spec.generators: a clusterDecisionResource generator reads the decision resources the hub holds, so the set is evaluated at the hub, not at cluster {}'s spoke; an in-cluster destination (https://kubernetes.default.svc) in its template is each decided cluster",
                            req.cluster
                        ));
                    }
                    result
                })
            }
        };
        let mut result = match result {
            Ok(result) => result,
            Err(status) => v1::ApplyResult {
                action: "refused".into(),
                message: status.message().to_owned(),
                project,
                ..v1::ApplyResult::default()
            },
        };
        if result.kind.is_empty() {
            result.kind = source.1.clone();
            result.name = source.2.clone();
        }
        result.source = format!("{} {} {}", source.0, source.1, source.2);
        result.warnings.extend(warnings);
        results.push(result);
    }
    Ok(v1::ApplyManifestsResponse { results })
}

/// Stores the ConfigMaps and decision resources of one call (admins only): every decision resource's kind
/// must be named by a ConfigMap, stored or in the same call, else nothing of the call is applied. A change
/// re-evaluates the hub's application sets.
async fn apply_decisions(
    api: &HubApi,
    call: &Call,
    documents: Vec<crate::appsets::decisions::DecisionDocument>,
    dry_run: bool,
) -> Result<Vec<v1::ApplyResult>, Status> {
    use crate::appsets::decisions::{MAX_DECISION_RESOURCES, kind_matches};
    api.authorize_admin(call).map_err(|status| {
        let named: Vec<String> = documents
            .iter()
            .map(|d| format!("{} {} {}", d.api_version, d.kind, d.name))
            .collect();
        Status::new(
            status.code(),
            format!(
                "{}: {}; only admins apply ConfigMaps and the resources of clusterDecisionResource generators (otherwise the hub keeps Application, ApplicationSet and AppProject objects)",
                named.join(", "),
                status.message()
            ),
        )
    })?;
    let stored = api
        .store()
        .appsets()
        .list_decision_resources()
        .await
        .map_err(|e| store_error(e, "decision resources"))?;
    let named: Vec<(String, String)> = stored
        .iter()
        .filter(|r| crate::appsets::decisions::is_config_map(&r.api_version, &r.kind))
        .filter_map(|r| crate::appsets::decisions::named_kind(&r.body))
        .chain(documents.iter().filter_map(|d| d.names_kind()))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = documents
        .iter()
        .find(|d| !seen.insert((d.api_version.as_str(), d.kind.as_str(), d.name.as_str())))
    {
        return Err(Status::invalid_argument(format!(
            "nothing was applied: {} {} {} is given twice",
            twice.api_version, twice.kind, twice.name
        )));
    }
    let unnamed: Vec<String> = documents
        .iter()
        .filter(|d| !d.is_config_map())
        .filter(|d| {
            !named
                .iter()
                .any(|(api_version, kind)| *api_version == d.api_version && kind_matches(&d.kind, kind))
        })
        .map(|d| {
            format!(
                "{} {} {}: the hub keeps Application, ApplicationSet and AppProject objects, and the ConfigMaps and resources of clusterDecisionResource generators; no ConfigMap names {} {} (data.apiVersion, data.kind)",
                d.api_version, d.kind, d.name, d.api_version, d.kind
            )
        })
        .collect();
    if !unnamed.is_empty() {
        return Err(Status::invalid_argument(format!(
            "nothing was applied: {}",
            unnamed.join("; ")
        )));
    }
    let new = documents
        .iter()
        .filter(|d| {
            !stored
                .iter()
                .any(|r| r.api_version == d.api_version && r.kind == d.kind && r.name == d.name)
        })
        .count();
    if stored.len() + new > MAX_DECISION_RESOURCES {
        return Err(Status::resource_exhausted(format!(
            "nothing was applied: the hub keeps at most {MAX_DECISION_RESOURCES} ConfigMaps and decision resources ({} held, {new} new)",
            stored.len()
        )));
    }
    let mut results = Vec::with_capacity(documents.len());
    let mut changed = false;
    // Sets are told even when a later write fails: what was written is there.
    let announce = async |changed: bool| {
        if changed {
            // The hub's controller evaluates again the sets that read decision resources (watchers ignore it).
            api.announce(
                crate::appsets::APPSETS_CHANNEL,
                crate::appsets::DECISIONS_CHANGED,
            )
            .await;
        }
    };
    for d in documents {
        let existing = stored
            .iter()
            .find(|r| r.api_version == d.api_version && r.kind == d.kind && r.name == d.name);
        let action = match existing {
            Some(r) if r.labels == d.labels && r.body == d.body => "unchanged",
            Some(_) => "updated",
            None => "created",
        };
        let source = format!("{} {} {}", d.api_version, d.kind, d.name);
        if !dry_run && action != "unchanged" {
            let target = format!("decision:{}/{}/{}", d.api_version, d.kind, d.name);
            let outcome = api
                .store()
                .appsets()
                .put_decision_resource(&d.api_version, &d.kind, &d.name, &d.labels, &d.body)
                .await
                .map_err(|e| store_error(e, source.clone()));
            api.audit(call, &target, &outcome).await;
            match outcome {
                Ok(written) => changed |= written,
                Err(status) => {
                    announce(changed).await;
                    return Err(status);
                }
            }
        }
        let mut result = result(
            action,
            &d.kind,
            "",
            &d.name,
            if dry_run {
                "dry run".into()
            } else {
                String::new()
            },
        );
        result.source = source;
        results.push(result);
    }
    announce(changed).await;
    Ok(results)
}

/// A document's project: the one it names, or the request's default when it names none (or Argo
/// CD's `default` while another default was asked for).
fn project_of(named: &str, default_project: &str) -> String {
    if named.is_empty() || named == "default" && default_project != "default" {
        default_project.to_owned()
    } else {
        named.to_owned()
    }
}

/// `(apiVersion, kind, name)` of a document, for messages.
fn source(doc: &serde_json::Value) -> (String, String, String) {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("").to_owned();
    (
        text(doc.get("apiVersion")),
        text(doc.get("kind")),
        text(doc.get("metadata").and_then(|m| m.get("name"))),
    )
}

fn result(action: &str, kind: &str, project: &str, name: &str, message: String) -> v1::ApplyResult {
    v1::ApplyResult {
        action: action.into(),
        kind: kind.into(),
        project: project.into(),
        name: name.into(),
        message,
        ..v1::ApplyResult::default()
    }
}

async fn apply_app(
    api: &HubApi,
    call: &Call,
    app: ImportedApp,
    default_project: &str,
    cluster: &str,
    dry_run: bool,
) -> Result<v1::ApplyResult, Status> {
    let project = project_of(&app.project, default_project);
    let mut spec = app.spec;
    spec.project = project.clone();
    let clusters = api
        .store()
        .list_clusters(&LabelSelector::default())
        .await
        .map_err(|e| store_error(e, "clusters"))?;
    let facts: Vec<edgecd_core::appset::ClusterFacts> = clusters
        .into_iter()
        .filter(|c| c.revoked_at.is_none())
        .map(|c| edgecd_core::appset::ClusterFacts {
            name: c.name,
            server: c.server_url,
            labels: c.labels,
            annotations: c.annotations,
        })
        .collect();
    let in_cluster = spec.destination.cluster == "in-cluster"
        || spec.destination.cluster.is_empty()
            && spec.destination.server.trim_end_matches('/') == IN_CLUSTER_SERVER;
    let target = if in_cluster && !cluster.is_empty() {
        cluster.to_owned()
    } else if in_cluster {
        // The hub itself: an app-of-apps parent, rendered by the hub.
        HUB_CLUSTER.to_owned()
    } else {
        resolve_destination(&spec.destination.cluster, &spec.destination.server, &facts)
            .map_err(|why| {
                Status::failed_precondition(format!("application {project}/{}: {why}", app.name))
            })?
            .name
            .clone()
    };
    spec.destination.cluster = target;

    let existing = match api.store().get_app(&project, &app.name).await {
        Ok(existing) => Some(existing),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => {
            return Err(store_error(
                error,
                format!("application {project}/{}", app.name),
            ));
        }
    };
    if let Some(existing) = &existing {
        super::apps::refuse_owned(existing)?;
        if existing.spec == spec && existing.labels == app.labels {
            return Ok(result(
                "unchanged",
                "Application",
                &project,
                &app.name,
                String::new(),
            ));
        }
    }
    let request = v1::CreateApplicationRequest {
        meta: Some(v1::ApplicationMeta {
            project: project.clone(),
            name: app.name.clone(),
            labels: pc::labels(&app.labels),
            annotations: pc::labels(&app.annotations),
            ..v1::ApplicationMeta::default()
        }),
        spec: Some(pc::application_spec(&spec)),
        upsert: true,
        dry_run,
    };
    let target = format!("app:{project}/{}", app.name);
    let outcome = super::apps::create_inner(api, call, request).await;
    if !dry_run {
        api.audit(call, &target, &outcome).await;
    }
    outcome?;
    let action = if existing.is_some() {
        "updated"
    } else {
        "created"
    };
    Ok(result(
        action,
        "Application",
        &project,
        &app.name,
        format!("deploys to cluster {}", spec.destination.cluster),
    ))
}

/// Applies one set where `scope` says (the text form of [`AppSetScope`]; empty: the hub).
async fn apply_set(
    api: &HubApi,
    call: &Call,
    set: ImportedAppSet,
    default_project: &str,
    scope: &str,
    dry_run: bool,
) -> Result<v1::ApplyResult, Status> {
    let project = project_of(&set.project, default_project);
    let mut proto =
        pc::appset_spec_to_proto(&project, &set.name, scope, &set.spec).map_err(|e| {
            Status::invalid_argument(format!("application set {project}/{}: {e}", set.name))
        })?;
    if scope.is_empty() {
        proto.scope = HUB_SCOPE.into();
    }
    let (new, _): (NewAppSet, _) = super::appsets::parse(api, Some(&proto)).await?;
    api.authorize(call, edgecd_core::access::Action::Edit, &new.project)
        .await?;
    let existing = match api
        .store()
        .appsets()
        .get_appset(&new.project, &new.name)
        .await
    {
        Ok(existing) => Some(existing),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => {
            return Err(store_error(
                error,
                format!("application set {}/{}", new.project, new.name),
            ));
        }
    };
    // Applying a set again never moves it silently: a new scope must still reach every cluster the set reaches
    // (the scope grows), or the apps it generated there would go.
    if let Some(existing) = existing.as_ref().filter(|e| e.scope != new.scope) {
        let clusters: Vec<(String, BTreeMap<String, String>)> = api
            .store()
            .list_clusters(&LabelSelector::default())
            .await
            .map_err(|e| store_error(e, "clusters"))?
            .into_iter()
            .map(|c| (c.name, c.labels))
            .collect();
        let was = crate::appsets::scope_of(existing);
        let now = crate::appsets::scope_from(&new.scope);
        if !now.covers(&was, &clusters) {
            return Err(Status::failed_precondition(moved_set_message(
                &new.project,
                &new.name,
                &was,
                &now,
                &clusters,
            )));
        }
    }
    if existing
        .as_ref()
        .is_some_and(|e| e.spec == new.spec && e.scope == new.scope)
    {
        return Ok(result(
            "unchanged",
            "ApplicationSet",
            &new.project,
            &new.name,
            String::new(),
        ));
    }
    let where_ = if new.scope == HUB_SCOPE {
        "evaluated at the hub".to_owned()
    } else {
        format!("evaluated at cluster {}'s spoke", new.scope)
    };
    if dry_run {
        return Ok(result(
            if existing.is_some() {
                "updated"
            } else {
                "created"
            },
            "ApplicationSet",
            &new.project,
            &new.name,
            format!("{where_} (dry run)"),
        ));
    }
    let target = format!("appset:{}/{}", new.project, new.name);
    let outcome = super::appsets::write(api, &new, true, None).await;
    api.audit(call, &target, &outcome).await;
    outcome?;
    Ok(result(
        if existing.is_some() {
            "updated"
        } else {
            "created"
        },
        "ApplicationSet",
        &new.project,
        &new.name,
        where_,
    ))
}

/// Why a set evaluated `was` is not applied `now`, and how to widen its scope or move it instead.
fn moved_set_message(
    project: &str,
    name: &str,
    was: &AppSetScope,
    now: &AppSetScope,
    clusters: &[(String, BTreeMap<String, String>)],
) -> String {
    let flag = |scope: &AppSetScope| match scope {
        AppSetScope::Hub => "without --cluster".to_owned(),
        AppSetScope::Clusters(names) if names.len() == 1 => {
            format!("with --cluster {}", names.iter().next().map_or("", |n| n))
        }
        AppSetScope::Clusters(names) => format!(
            "with --clusters {}",
            names
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ),
        AppSetScope::Selector(selector) => format!("with --cluster-selector {selector}"),
    };
    let kept = now.matching(clusters);
    let lost: Vec<&str> = was
        .matching(clusters)
        .into_iter()
        .filter(|c| !kept.contains(c))
        .collect();
    let widen = match (was, now) {
        (AppSetScope::Clusters(before), AppSetScope::Clusters(after)) => {
            let all: std::collections::BTreeSet<&str> =
                before.iter().chain(after).map(String::as_str).collect();
            format!(
                "to run it at both, apply it with --clusters {} or with a --cluster-selector that matches them",
                all.into_iter().collect::<Vec<_>>().join(",")
            )
        }
        _ => "to run it at more clusters, apply it with a --clusters list or --cluster-selector that still \
              includes where it runs now"
            .to_owned(),
    };
    let where_lost = if lost.is_empty() {
        String::new()
    } else {
        format!(" (on {})", lost.join(", "))
    };
    format!(
        "application set {project}/{name} is evaluated {}; applying it {} would move it and delete the apps it \
         generated there{where_lost}. Nothing was changed. {widen}; to run the same set {} as well, apply it under \
         another metadata.name; to move it, delete it first (edgecd appset delete {project}/{name}) and apply it \
         again",
        was.describe(),
        flag(now),
        now.describe(),
    )
}

async fn apply_project(
    api: &HubApi,
    call: &Call,
    project: ImportedProject,
    dry_run: bool,
) -> Result<v1::ApplyResult, Status> {
    api.authorize_admin(call)?;
    edgecd_core::ProjectName::parse(project.name.as_str())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let spec = project.spec;
    // Destinations by server URL stay URLs (Argo CD never requires a destination's cluster to exist): they
    // match any cluster reporting that server URL, now or once it enrolls. Say which match today.
    let mut notes = Vec::new();
    if !project.destination_servers.is_empty() {
        let clusters = api
            .store()
            .list_clusters(&LabelSelector::default())
            .await
            .map_err(|e| store_error(e, "clusters"))?;
        for (index, server) in &project.destination_servers {
            let matching: Vec<&str> = clusters
                .iter()
                .filter(|c| {
                    edgecd_core::project::destination_entry_matches(server, &c.name, &c.server_url)
                })
                .map(|c| c.name.as_str())
                .collect();
            notes.push(if matching.is_empty() {
                format!(
                    "spec.destinations[{index}].server {server}: no enrolled cluster has this server URL yet; it will match one that does"
                )
            } else {
                format!(
                    "spec.destinations[{index}].server {server}: matches cluster(s) {}",
                    matching.join(", ")
                )
            });
        }
    }
    let message = notes.join("; ");
    let what = format!("project {}", project.name);
    let existing = match api.store().get_project(&project.name).await {
        Ok(existing) => Some(existing),
        Err(StoreError::NotFound { .. }) => None,
        Err(error) => return Err(store_error(error, what)),
    };
    if existing.as_ref().is_some_and(|e| e.spec == spec) {
        return Ok(result(
            "unchanged",
            "AppProject",
            "",
            &project.name,
            message,
        ));
    }
    let action = if existing.is_some() {
        "updated"
    } else {
        "created"
    };
    if dry_run {
        return Ok(result(
            action,
            "AppProject",
            "",
            &project.name,
            if message.is_empty() {
                "dry run".into()
            } else {
                format!("{message} (dry run)")
            },
        ));
    }
    let target = format!("project:{}", project.name);
    let outcome = match &existing {
        Some(existing) => {
            api.store()
                .update_project(&project.name, existing.version, &spec)
                .await
        }
        None => api.store().create_project(&project.name, &spec).await,
    }
    .map_err(|e| store_error(e, what));
    api.forget_project(&project.name);
    api.audit(call, &target, &outcome).await;
    outcome?;
    Ok(result(action, "AppProject", "", &project.name, message))
}
