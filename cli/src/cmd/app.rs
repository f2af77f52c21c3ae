//! `edgecd app …`: list, get, create, apply, set, delete, sync, refresh, diff, history, rollback, wait, manifests.

use std::collections::BTreeMap;

use edgecd_core::app::ApplicationSpec;
use edgecd_proto::client::Client;
use edgecd_proto::convert as pc;
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::appref::{app_ref, display, fetch};
use super::bulk::{self, Target};
use super::wait::{self, Want};
use super::{parse_pairs, read_input, selector};
use crate::args::{
    AppCommand, AppCreateArgs, AppFilterArgs, AppSetArgs, HealthArg, Output, SyncArg,
};
use crate::exit::{Exit, FAILURE};
use crate::output::{
    Table, age, connection_name, effective_health, health_name, labels_text, natural_cmp, or_dash,
    phase_name, print_structured, short_rev, sync_name, time_text,
};
use crate::session::Session;

pub async fn run(session: &Session, command: AppCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    // Names and selections that contradict each other are usage errors before any connection.
    match &command {
        AppCommand::Delete {
            name, selection, ..
        }
        | AppCommand::Sync {
            name, selection, ..
        }
        | AppCommand::Refresh {
            name, selection, ..
        }
        | AppCommand::Rollback {
            name, selection, ..
        } => {
            bulk::target(name.as_slice(), selection)?;
        }
        AppCommand::Wait {
            names, selection, ..
        } => {
            bulk::target(names, selection)?;
        }
        _ => {}
    }
    let client = session.client().await?;
    match command {
        AppCommand::List { filter, page_size } => list(&client, output, &filter, page_size).await,
        AppCommand::Get { app, project } => {
            get(&client, output, &app_ref(&app.name, project.as_deref())?).await
        }
        AppCommand::Create(args) => create(&client, output, args).await,
        AppCommand::Apply { file, dry_run } => {
            for path in &file {
                apply_file(&client, &read_input(path)?, dry_run).await?;
            }
            Ok(())
        }
        AppCommand::Set(args) => set(&client, output, args).await,
        AppCommand::Delete {
            name,
            selection,
            cascade,
            yes,
        } => match bulk::target(name.as_slice(), &selection)? {
            Target::Named(apps) => {
                for app in &apps {
                    delete(&client, app, cascade, yes).await?;
                }
                Ok(())
            }
            Target::Selected(filter) => bulk::delete(&client, output, &filter, yes, cascade).await,
        },
        AppCommand::Sync {
            name,
            selection,
            yes,
            revision,
            prune,
            dry_run,
            force,
            r#async,
            wait,
        } => {
            let sync = v1::SyncCommand {
                revision: revision.unwrap_or_default(),
                prune,
                dry_run,
                force,
                ..v1::SyncCommand::default()
            };
            let app = match bulk::target(name.as_slice(), &selection)? {
                Target::Selected(filter) => {
                    return bulk::sync(&client, output, &filter, yes, sync, r#async, wait.timeout)
                        .await;
                }
                Target::Named(apps) => apps.into_iter().next().ok_or_else(no_app)?,
            };
            let status = client
                .sync_application(v1::SyncApplicationRequest {
                    request_id: String::new(),
                    app: Some(app.clone()),
                    sync: Some(sync),
                    ttl: None,
                })
                .await?;
            noteln!(
                "sync of {} queued (command {})",
                display(&app),
                status.command_id
            );
            if !status.notice.is_empty() {
                noteln!("note: {}", status.notice);
            }
            if r#async || dry_run {
                return Ok(());
            }
            wait::command(&client, &app, &status.command_id, wait.timeout).await?;
            wait::apps(
                &client,
                std::slice::from_ref(&app),
                Want::both(),
                wait.timeout,
            )
            .await?;
            get(&client, output, &app).await
        }
        AppCommand::Refresh {
            name,
            selection,
            yes,
            hard,
        } => {
            let app = match bulk::target(name.as_slice(), &selection)? {
                Target::Selected(filter) => {
                    return bulk::refresh(&client, output, &filter, yes, hard).await;
                }
                Target::Named(apps) => apps.into_iter().next().ok_or_else(no_app)?,
            };
            let status = client
                .refresh_application(v1::RefreshApplicationRequest {
                    request_id: String::new(),
                    app: Some(app.clone()),
                    hard,
                    ttl: None,
                })
                .await?;
            if !status.notice.is_empty() {
                noteln!("note: {}", status.notice);
            }
            outln!(
                "refresh of {} queued (command {})",
                display(&app),
                status.command_id
            )?;
            Ok(())
        }
        AppCommand::Diff {
            app,
            project,
            exit_code,
        } => {
            diff(
                &client,
                output,
                &app_ref(&app.name, project.as_deref())?,
                exit_code,
            )
            .await
        }
        AppCommand::History { app, project } => {
            history(&client, output, &app_ref(&app.name, project.as_deref())?).await
        }
        AppCommand::Rollback {
            name,
            id,
            selection,
            yes,
            prune,
            r#async,
            wait,
        } => {
            let app = match bulk::target(name.as_slice(), &selection)? {
                Target::Selected(filter) => {
                    // `id` is the second positional: never given without a name.
                    return bulk::rollback(
                        &client,
                        output,
                        &filter,
                        yes,
                        prune,
                        r#async,
                        wait.timeout,
                    )
                    .await;
                }
                Target::Named(apps) => apps.into_iter().next().ok_or_else(no_app)?,
            };
            let id = match id {
                Some(id) => id,
                None => bulk::previous_id(&client, &app).await?,
            };
            // The hub refuses up front what it knows cannot work (automated sync on, an unknown
            // history id): that error ends the command here, before any wait.
            let status = client
                .rollback_application(v1::RollbackApplicationRequest {
                    request_id: String::new(),
                    app: Some(app.clone()),
                    history_id: id,
                    prune,
                    dry_run: false,
                    ttl: None,
                })
                .await?;
            noteln!(
                "rollback of {} to history {id} queued (command {})",
                display(&app),
                status.command_id
            );
            if !status.notice.is_empty() {
                noteln!("note: {}", status.notice);
            }
            if r#async {
                return Ok(());
            }
            wait::command(&client, &app, &status.command_id, wait.timeout).await?;
            wait::apps(
                &client,
                std::slice::from_ref(&app),
                Want::health_only(),
                wait.timeout,
            )
            .await?;
            get(&client, output, &app).await
        }
        AppCommand::Wait {
            names,
            selection,
            sync,
            health,
            wait,
        } => {
            let want = match (sync, health) {
                (true, false) => Want::sync_only(),
                (false, true) => Want::health_only(),
                _ => Want::both(),
            };
            match bulk::target(&names, &selection)? {
                Target::Selected(filter) => bulk::wait(&client, &filter, want, wait.timeout).await,
                Target::Named(apps) => {
                    wait::apps(&client, &apps, want, wait.timeout).await?;
                    for app in &apps {
                        noteln!("{} is ready", display(app));
                    }
                    Ok(())
                }
            }
        }
        AppCommand::TerminateOp { app, project } => {
            let app = app_ref(&app.name, project.as_deref())?;
            let status = client
                .terminate_operation(v1::TerminateOperationRequest {
                    request_id: String::new(),
                    app: Some(app.clone()),
                })
                .await?;
            if !status.notice.is_empty() {
                noteln!("note: {}", status.notice);
            }
            outln!(
                "termination of {}'s running operation queued (command {})",
                display(&app),
                status.command_id
            )?;
            Ok(())
        }
        AppCommand::Resources { app, project } => {
            super::live::resources(&client, output, &app_ref(&app.name, project.as_deref())?).await
        }
        AppCommand::Manifest {
            app,
            resource,
            project,
            namespace,
            show_managed_fields,
        } => {
            let app = app_ref(&app.name, project.as_deref())?;
            super::live::manifest(
                &client,
                &app,
                &resource,
                namespace.as_deref(),
                show_managed_fields,
            )
            .await
        }
        AppCommand::Events {
            app,
            resource,
            project,
            namespace,
        } => {
            let app = app_ref(&app.name, project.as_deref())?;
            super::live::events(&client, output, &app, &resource, namespace.as_deref()).await
        }
        AppCommand::Logs(args) => super::live::logs(&client, args).await,
        AppCommand::Exec(args) => super::exec::exec(&client, args).await,
        AppCommand::Manifests {
            app,
            project,
            revision,
        } => {
            let result = client
                .get_application_manifests(v1::GetApplicationManifestsRequest {
                    app: Some(app_ref(&app.name, project.as_deref())?),
                    revision: revision.unwrap_or_default(),
                })
                .await?;
            if !print_structured(output, &ManifestsView::from(&result))? {
                for (i, manifest) in result.manifests_yaml.iter().enumerate() {
                    if i > 0 {
                        outln!("---")?;
                    }
                    out!("{}", manifest.trim_end_matches('\n'))?;
                    outln!()?;
                }
            }
            Ok(())
        }
    }
}

/// A name was required but none was given (never reached: `bulk::target` asks for one).
fn no_app() -> anyhow::Error {
    anyhow::Error::new(Exit::usage("name an application"))
}

/// `app delete NAME`: says what is deleted and what cascades, asks (unless `--yes`), deletes.
async fn delete(client: &Client, app: &v1::AppRef, cascade: bool, yes: bool) -> anyhow::Result<()> {
    // Fetched first: an unknown app is exit 3 at once, and the question can say what goes.
    let current = fetch(client, app).await?;
    let cluster = current
        .spec
        .as_ref()
        .and_then(|s| s.destination.as_ref())
        .map(|d| d.cluster.clone())
        .unwrap_or_default();
    let resources = current.status.as_ref().map_or(0, |s| s.resources.len());
    let cascades = if cascade {
        format!(
            "Its {resources} resource{} will be deleted from cluster {cluster} too (--cascade=false keeps them).",
            if resources == 1 { "" } else { "s" }
        )
    } else {
        format!("Its resources stay in cluster {cluster} (--cascade=false).")
    };
    let owner = current
        .meta
        .as_ref()
        .and_then(|m| m.owner.as_ref())
        .filter(|o| !o.name.is_empty())
        .map(|o| {
            format!(
                " It is owned by {} {}/{}, which may generate it again.",
                o.kind, o.project, o.name
            )
        })
        .unwrap_or_default();
    crate::confirm::confirm(
        &format!("Delete application {}? {cascades}{owner}", display(app)),
        yes,
    )?;
    client
        .delete_application(v1::DeleteApplicationRequest {
            app: Some(app.clone()),
            cascade,
        })
        .await?;
    outln!(
        "application {} deleted{}",
        display(app),
        if cascade {
            format!(" (its resources are being deleted from cluster {cluster})")
        } else {
            format!(" (its resources stay in cluster {cluster})")
        }
    )?;
    Ok(())
}

pub fn filter(args: &AppFilterArgs) -> anyhow::Result<v1::ApplicationFilter> {
    Ok(v1::ApplicationFilter {
        projects: args.projects.clone(),
        clusters: args.clusters.clone(),
        cluster_selector: args
            .cluster_selector
            .as_deref()
            .map(|s| selector(s, "--cluster-selector"))
            .transpose()?,
        app_selector: args
            .selector
            .as_deref()
            .map(|s| selector(s, "--selector"))
            .transpose()?,
        sync: args
            .sync
            .iter()
            .map(|s| match s {
                SyncArg::Synced => v1::SyncStatusCode::Synced,
                SyncArg::OutOfSync => v1::SyncStatusCode::OutOfSync,
                SyncArg::Unknown => v1::SyncStatusCode::Unknown,
            } as i32)
            .collect(),
        health: args
            .health
            .iter()
            .map(|h| match h {
                HealthArg::Healthy => v1::HealthStatusCode::Healthy,
                HealthArg::Progressing => v1::HealthStatusCode::Progressing,
                HealthArg::Degraded => v1::HealthStatusCode::Degraded,
                HealthArg::Suspended => v1::HealthStatusCode::Suspended,
                HealthArg::Missing => v1::HealthStatusCode::Missing,
                HealthArg::Unknown => v1::HealthStatusCode::Unknown,
            } as i32)
            .collect(),
        search: args.search.clone().unwrap_or_default(),
        names: args.names.clone(),
        ..Default::default()
    })
}

/// One row of `app list`, also its YAML/JSON form.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppRow {
    pub project: String,
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    #[serde(rename = "repoURL")]
    pub repo_url: String,
    pub path: String,
    pub target_revision: String,
    pub sync: String,
    /// The reported health, or the cluster's connection state when it is not Connected.
    pub health: String,
    pub reported_health: String,
    pub cluster_connection: String,
    pub revision: String,
    pub operation: String,
    pub automated: bool,
    pub labels: BTreeMap<String, String>,
    pub updated_at: String,
}

impl From<&v1::ApplicationSummary> for AppRow {
    fn from(a: &v1::ApplicationSummary) -> Self {
        Self {
            project: a.project.clone(),
            name: a.name.clone(),
            cluster: a.cluster.clone(),
            namespace: a.namespace.clone(),
            repo_url: a.repo_url.clone(),
            path: a.path.clone(),
            target_revision: a.target_revision.clone(),
            sync: sync_name(a.sync).into(),
            health: effective_health(a.health, a.cluster_connection.as_ref()),
            reported_health: health_name(a.health).into(),
            cluster_connection: a
                .cluster_connection
                .as_ref()
                .map_or("-", |c| connection_name(c.state))
                .into(),
            revision: a.revision.clone(),
            operation: phase_name(a.operation_phase).into(),
            automated: a.automated,
            labels: a.labels.clone().into_iter().collect(),
            updated_at: time_text(a.updated_at.as_ref()),
        }
    }
}

pub fn app_table(rows: &[AppRow], wide: bool) -> Table {
    let mut table = if wide {
        Table::new(vec![
            "PROJECT",
            "NAME",
            "CLUSTER",
            "NAMESPACE",
            "SYNC",
            "HEALTH",
            "REVISION",
            "OPERATION",
            "AUTO",
            "REPO",
            "PATH",
            "TARGET",
            "LABELS",
        ])
    } else {
        Table::new(vec![
            "PROJECT", "NAME", "CLUSTER", "SYNC", "HEALTH", "REVISION",
        ])
    };
    for r in rows {
        let mut cells = vec![r.project.clone(), r.name.clone(), or_dash(&r.cluster)];
        if wide {
            cells.push(or_dash(&r.namespace));
        }
        cells.extend([r.sync.clone(), r.health.clone(), short_rev(&r.revision)]);
        if wide {
            let labels: std::collections::HashMap<_, _> = r.labels.clone().into_iter().collect();
            cells.extend([
                r.operation.clone(),
                if r.automated { "auto" } else { "manual" }.into(),
                r.repo_url.clone(),
                or_dash(&r.path),
                or_dash(&r.target_revision),
                labels_text(&labels),
            ]);
        }
        table.row(cells);
    }
    table
}

async fn list(
    client: &Client,
    output: Output,
    args: &AppFilterArgs,
    page_size: u32,
) -> anyhow::Result<()> {
    let request = v1::ListApplicationsRequest {
        filter: Some(filter(args)?),
        page_size: page_size.clamp(1, 1000),
        ..Default::default()
    };
    let apps: Vec<v1::ApplicationSummary> = client.applications(request).try_collect().await?;
    let mut rows: Vec<AppRow> = apps.iter().map(AppRow::from).collect();
    // Natural order (gen-2 before gen-10), by project then name, as the table reads.
    rows.sort_by(|a, b| natural_cmp(&a.project, &b.project).then(natural_cmp(&a.name, &b.name)));
    if !print_structured(output, &rows)? {
        if rows.is_empty() {
            noteln!("No applications found.");
        } else {
            out!("{}", app_table(&rows, output == Output::Wide).render())?;
        }
    }
    Ok(())
}

/// `app get -o yaml|json`: the Application in edgecd's resource shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    api_version: &'static str,
    kind: &'static str,
    metadata: AppMetaView,
    spec: serde_json::Value,
    status: serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppMetaView {
    project: String,
    name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    uid: String,
    spec_version: u64,
    created_at: String,
    updated_at: String,
    /// `Managed` (desired state at the hub) or `Autonomous` (created at the edge).
    #[serde(skip_serializing_if = "String::is_empty")]
    origin: String,
    /// The ApplicationSet or app-of-apps parent that generated the app; change it there.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<OwnerView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OwnerView {
    kind: String,
    project: String,
    name: String,
    /// Where the owner is evaluated: `hub` or a cluster's name.
    scope: String,
}

fn origin_name(code: i32) -> &'static str {
    match v1::AppOrigin::try_from(code) {
        Ok(v1::AppOrigin::Managed) => "Managed",
        Ok(v1::AppOrigin::Autonomous) => "Autonomous",
        _ => "",
    }
}

/// `ApplicationSet default/nginx (at the hub)`, or `None` for an app nobody generated.
pub fn owner_text(meta: &v1::ApplicationMeta) -> Option<String> {
    let owner = meta.owner.as_ref().filter(|o| !o.name.is_empty())?;
    let project = if owner.project.is_empty() {
        "default"
    } else {
        &owner.project
    };
    let at = match owner.scope.as_str() {
        "" | "hub" => "at the hub".to_owned(),
        cluster => format!("at cluster {cluster}'s spoke"),
    };
    Some(format!("{} {project}/{} ({at})", owner.kind, owner.name))
}

impl AppView {
    pub fn new(app: &v1::Application) -> Self {
        let meta = app.meta.clone().unwrap_or_default();
        let spec = app
            .spec
            .as_ref()
            .and_then(|s| pc::from_application_spec(s, &meta.project).ok())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(serde_json::Value::Null);
        let mut status = app
            .status
            .as_ref()
            .map(pc::from_application_status)
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(object) = status.as_object_mut() {
            let connection = app.cluster_connection.as_ref();
            object.insert(
                "clusterConnection".into(),
                connection_name(connection.map_or(0, |c| c.state)).into(),
            );
            let health = app
                .status
                .as_ref()
                .and_then(|s| s.health.as_ref())
                .map_or(0, |h| h.status);
            object.insert(
                "effectiveHealth".into(),
                effective_health(health, connection).into(),
            );
        }
        Self {
            api_version: "edgecd.io/v1alpha1",
            kind: "Application",
            metadata: AppMetaView {
                project: meta.project,
                name: meta.name,
                labels: meta.labels.into_iter().collect(),
                annotations: meta.annotations.into_iter().collect(),
                uid: meta.uid,
                spec_version: meta.spec_version,
                created_at: time_text(meta.created_at.as_ref()),
                updated_at: time_text(meta.updated_at.as_ref()),
                origin: origin_name(meta.origin).to_owned(),
                owner: meta
                    .owner
                    .as_ref()
                    .filter(|o| !o.name.is_empty())
                    .map(|o| OwnerView {
                        kind: o.kind.clone(),
                        project: o.project.clone(),
                        name: o.name.clone(),
                        scope: o.scope.clone(),
                    }),
            },
            spec,
            status,
        }
    }
}

async fn get(client: &Client, output: Output, app_ref: &v1::AppRef) -> anyhow::Result<()> {
    let app = fetch(client, app_ref).await?;
    if print_structured(output, &AppView::new(&app))? {
        return Ok(());
    }
    out!("{}", describe(&app, OffsetDateTime::now_utc()))?;
    Ok(())
}

/// The human view of `app get`.
pub fn describe(app: &v1::Application, now: OffsetDateTime) -> String {
    let meta = app.meta.clone().unwrap_or_default();
    let spec = app.spec.clone().unwrap_or_default();
    let source = spec.source.clone().unwrap_or_default();
    let destination = spec.destination.clone().unwrap_or_default();
    let status = app.status.clone().unwrap_or_default();
    let sync = status.sync.clone().unwrap_or_default();
    let health = status.health.clone().unwrap_or_default();
    let connection = app.cluster_connection.as_ref();
    let policy = match spec.sync_policy.as_ref().and_then(|p| p.automated.as_ref()) {
        Some(auto) => {
            let mut flags = Vec::new();
            if auto.prune {
                flags.push("prune");
            }
            if auto.self_heal {
                flags.push("self-heal");
            }
            if flags.is_empty() {
                "Automated".to_owned()
            } else {
                format!("Automated ({})", flags.join(", "))
            }
        }
        None => "Manual".to_owned(),
    };
    let mut lines: Vec<(&str, String)> = vec![("Name", format!("{}/{}", meta.project, meta.name))];
    if let Some(owner) = owner_text(&meta) {
        lines.push(("Owner", format!("{owner}; change the app through it")));
    } else if meta.origin == v1::AppOrigin::Autonomous as i32 {
        lines.push((
            "Owner",
            "none (created at the edge; read-only here)".to_owned(),
        ));
    }
    lines.extend([
        (
            "Cluster",
            format!(
                "{} ({})",
                or_dash(&destination.cluster),
                connection_name(connection.map_or(0, |c| c.state))
            ),
        ),
        ("Namespace", or_dash(&destination.namespace)),
    ]);
    if spec.sources.is_empty() {
        lines.extend([
            ("Repo", source.repo_url.clone()),
            ("Path", or_dash(&source.path)),
            ("Target", or_dash(&source.target_revision)),
        ]);
    } else {
        // A multi-source app: one line per source, in order.
        for s in &spec.sources {
            let what = if s.chart.is_empty() {
                or_dash(&s.path)
            } else {
                format!("chart {}", s.chart)
            };
            let mut line = format!("{} {what} @ {}", s.repo_url, or_dash(&s.target_revision));
            if !s.r#ref.is_empty() {
                line.push_str(&format!(" (ref ${})", s.r#ref));
            }
            if !s.name.is_empty() {
                line.push_str(&format!(" ({})", s.name));
            }
            lines.push(("Source", line));
        }
    }
    lines.extend([
        ("Sync policy", policy),
        (
            "Sync",
            match sync.revision.as_str() {
                "" => sync_name(sync.status).to_owned(),
                rev => format!(
                    "{} to {}",
                    sync_name(sync.status),
                    rev.split(", ")
                        .map(short_rev)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
        ),
        ("Health", {
            let shown = effective_health(health.status, connection);
            if shown != health_name(health.status) {
                format!(
                    "{shown} (cluster not connected; last reported {})",
                    health_name(health.status)
                )
            } else if health.message.is_empty() {
                shown
            } else {
                format!("{shown}: {}", health.message)
            }
        }),
    ]);
    if let Some(op) = &status.operation_state {
        let mut text = phase_name(op.phase).to_owned();
        if !op.message.is_empty() {
            text = format!("{text}: {}", op.message);
        }
        if op.finished_at.is_some() {
            text = format!("{text} ({} ago)", age(op.finished_at.as_ref(), now));
        }
        lines.push(("Operation", text));
    }
    lines.push(("Reconciled", age(status.reconciled_at.as_ref(), now)));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (key, value) in lines {
        out.push_str(&format!("{:<width$}{value}\n", format!("{key}:")));
    }
    for condition in &status.conditions {
        out.push_str(&format!(
            "{:<width$}{}: {}\n",
            "Condition:", condition.r#type, condition.message
        ));
    }
    if !status.resources.is_empty() {
        let mut table = Table::new(vec![
            "KIND",
            "NAMESPACE",
            "NAME",
            "SYNC",
            "HEALTH",
            "MESSAGE",
        ]);
        for r in &status.resources {
            let key = r.key.clone().unwrap_or_default();
            let health = r.health.clone().unwrap_or_default();
            table.row(vec![
                key.kind,
                or_dash(&key.namespace),
                key.name,
                sync_name(r.sync).into(),
                health_name(health.status).into(),
                if r.requires_pruning {
                    "requires pruning".into()
                } else {
                    r.message.clone()
                },
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

/// An Application document in edgecd or Argo CD YAML.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppDocument {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: DocMeta,
    spec: ApplicationSpec,
}

#[derive(Debug, Default, Deserialize)]
struct DocMeta {
    #[serde(default)]
    name: String,
    /// Argo CD's `argocd` namespace carries no meaning here.
    #[serde(default)]
    #[allow(dead_code)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Parses every Application document of `text` into create requests.
pub fn parse_apps(text: &str) -> anyhow::Result<Vec<v1::CreateApplicationRequest>> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| anyhow::anyhow!("invalid YAML: {e}"))?;
    let mut requests = Vec::new();
    for (i, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let doc: AppDocument = serde_json::from_value(document)
            .map_err(|e| anyhow::anyhow!("document {}: {e}", i + 1))?;
        let known = matches!(
            doc.api_version.split('/').next(),
            Some("edgecd.io" | "argoproj.io")
        );
        if doc.kind != "Application" || !known {
            anyhow::bail!(
                "document {}: {} {} is not an Application (use `edgecd apply -f` for ApplicationSets and AppProjects)",
                i + 1,
                doc.api_version,
                doc.kind
            );
        }
        if doc.metadata.name.is_empty() {
            anyhow::bail!("document {}: metadata.name is required", i + 1);
        }
        let project = if doc.spec.project.is_empty() {
            "default".to_owned()
        } else {
            doc.spec.project.clone()
        };
        requests.push(v1::CreateApplicationRequest {
            meta: Some(v1::ApplicationMeta {
                project,
                name: doc.metadata.name,
                labels: doc.metadata.labels.into_iter().collect(),
                annotations: doc.metadata.annotations.into_iter().collect(),
                ..Default::default()
            }),
            spec: Some(pc::application_spec(&doc.spec)),
            dry_run: false,
            upsert: true,
        });
    }
    if requests.is_empty() {
        anyhow::bail!("no Application documents found");
    }
    Ok(requests)
}

/// What creating (or upserting) an application did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upserted {
    Created,
    Updated,
    Unchanged,
    /// A dry run of a new app.
    WouldCreate,
    /// A dry run of an app that exists: the hub checked the spec; it would be updated if it differs.
    WouldUpdate,
}

impl Upserted {
    fn word(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::WouldCreate => "is valid (dry run): it would be created",
            Self::WouldUpdate => "is valid (dry run): it exists and would be updated if it differs",
        }
    }
}

/// Sends a create (or, with `upsert`, create-or-update) and says truthfully what happened: the
/// app's spec version before and after tells an update from an unchanged spec (the hub does not
/// bump the version for a spec equal to the stored one).
async fn create_or_update(
    client: &Client,
    request: v1::CreateApplicationRequest,
) -> anyhow::Result<(v1::Application, Upserted)> {
    let meta = request.meta.clone().unwrap_or_default();
    let app = v1::AppRef::new(meta.project.clone(), meta.name.clone());
    let before = if request.upsert {
        match client
            .get_application(v1::GetApplicationRequest {
                app: Some(app.clone()),
            })
            .await
        {
            Ok(existing) => Some(existing.meta.map_or(0, |m| m.spec_version)),
            Err(edgecd_proto::client::Error::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        }
    } else {
        None
    };
    let dry_run = request.dry_run;
    let result = client.create_application(request).await?;
    let after = result.meta.as_ref().map_or(0, |m| m.spec_version);
    let what = match (before, dry_run) {
        (None, true) => Upserted::WouldCreate,
        (Some(_), true) => Upserted::WouldUpdate,
        (None, false) => Upserted::Created,
        (Some(v), false) if v == after => Upserted::Unchanged,
        (Some(_), false) => Upserted::Updated,
    };
    Ok((result, what))
}

async fn apply_file(client: &Client, text: &str, dry_run: bool) -> anyhow::Result<()> {
    for mut request in parse_apps(text)? {
        request.dry_run = dry_run;
        let meta = request.meta.clone().unwrap_or_default();
        let name = format!("{}/{}", meta.project, meta.name);
        let (app, what) = create_or_update(client, request).await.map_err(|error| {
            // Say which document failed, unless the hub's message already names the app.
            if crate::exit::render(&error).contains(&name) {
                error
            } else {
                error.context(format!("applying application {name}"))
            }
        })?;
        let version = app.meta.map_or(0, |m| m.spec_version);
        outln!(
            "application {}/{} {} (spec version {version})",
            meta.project,
            meta.name,
            what.word()
        )?;
    }
    Ok(())
}

async fn create(client: &Client, output: Output, args: AppCreateArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.file {
        let mut requests = parse_apps(&read_input(path)?)?;
        for request in &mut requests {
            request.upsert = args.upsert;
            request.dry_run = args.dry_run;
        }
        for request in requests {
            let (app, what) = create_or_update(client, request).await?;
            print_created(output, &app, what)?;
        }
        return Ok(());
    }
    let name = args
        .name
        .as_deref()
        .ok_or_else(|| Exit::usage("an application name is required (or -f FILE)"))?;
    let app = app_ref(name, args.project.as_deref())?;
    let labels = parse_pairs(&args.labels, "--label")?;
    let spec = ApplicationSpec {
        project: app.project.clone(),
        source: edgecd_core::app::ApplicationSource {
            repo_url: args.repo.unwrap_or_default(),
            target_revision: args.revision,
            path: args.path.unwrap_or_default(),
            ..Default::default()
        },
        destination: edgecd_core::app::Destination {
            cluster: args.dest_cluster.unwrap_or_default(),
            namespace: args.dest_namespace,
            ..Default::default()
        },
        sync_policy: Some(edgecd_core::app::SyncPolicy {
            automated: args.auto_sync.then_some(edgecd_core::app::AutomatedSync {
                prune: args.auto_prune,
                self_heal: args.self_heal,
                allow_empty: false,
            }),
            sync_options: args.sync_options,
            retry: None,
        }),
        ..Default::default()
    };
    let (created, what) = create_or_update(
        client,
        v1::CreateApplicationRequest {
            meta: Some(v1::ApplicationMeta {
                project: app.project.clone(),
                name: app.name.clone(),
                labels: labels.into_iter().collect(),
                ..Default::default()
            }),
            spec: Some(pc::application_spec(&spec)),
            dry_run: args.dry_run,
            upsert: args.upsert,
        },
    )
    .await?;
    print_created(output, &created, what)
}

fn print_created(output: Output, app: &v1::Application, what: Upserted) -> anyhow::Result<()> {
    if !print_structured(output, &AppView::new(app))? {
        let meta = app.meta.clone().unwrap_or_default();
        outln!("application {}/{} {}", meta.project, meta.name, what.word())?;
    }
    Ok(())
}

async fn set(client: &Client, output: Output, args: AppSetArgs) -> anyhow::Result<()> {
    let app_ref = app_ref(&args.app.name, args.project.as_deref())?;
    let app = fetch(client, &app_ref).await?;
    let mut meta = app.meta.clone().unwrap_or_default();
    let mut spec = app.spec.clone().unwrap_or_default();
    let mut source = spec.source.clone().unwrap_or_default();
    let mut destination = spec.destination.clone().unwrap_or_default();
    let mut changed = false;
    let mut assign = |field: &mut String, value: Option<String>| {
        if let Some(value) = value {
            changed |= *field != value;
            *field = value;
        }
    };
    if !spec.sources.is_empty()
        && (args.repo.is_some() || args.path.is_some() || args.revision.is_some())
    {
        anyhow::bail!(Exit::usage(
            "--repo, --path and --revision change a single-source app; edit a multi-source app's spec.sources with `edgecd apply -f`"
        ));
    }
    assign(&mut source.repo_url, args.repo);
    assign(&mut source.path, args.path);
    assign(&mut source.target_revision, args.revision);
    assign(&mut destination.namespace, args.dest_namespace);
    let mut policy = spec.sync_policy.clone().unwrap_or_default();
    if let Some(auto) = args.auto_sync {
        changed = true;
        policy.automated = auto.then(|| policy.automated.unwrap_or_default());
    }
    if args.self_heal.is_some() || args.auto_prune.is_some() {
        let Some(automated) = policy.automated.as_mut() else {
            anyhow::bail!(Exit::usage(
                "--self-heal and --auto-prune need automated sync (add --auto-sync true)"
            ));
        };
        changed = true;
        if let Some(v) = args.self_heal {
            automated.self_heal = v;
        }
        if let Some(v) = args.auto_prune {
            automated.prune = v;
        }
    }
    for (k, v) in parse_pairs(&args.labels, "--label")? {
        changed = true;
        meta.labels.insert(k, v);
    }
    if !changed {
        anyhow::bail!(Exit::usage("nothing to change: pass at least one flag"));
    }
    if spec.sources.is_empty() {
        spec.source = Some(source);
    }
    spec.destination = Some(destination);
    spec.sync_policy = Some(policy);
    let expected = meta.spec_version;
    let updated = client
        .update_application(v1::UpdateApplicationRequest {
            meta: Some(meta),
            spec: Some(spec),
            expected_spec_version: expected,
            dry_run: false,
        })
        .await?;
    if !print_structured(output, &AppView::new(&updated))? {
        let version = updated.meta.map_or(0, |m| m.spec_version);
        outln!(
            "application {} {} (spec version {version})",
            display(&app_ref),
            if version == expected {
                "unchanged"
            } else {
                "updated"
            }
        )?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffView {
    kind: String,
    namespace: String,
    name: String,
    modified: bool,
    diff: String,
}

async fn diff(
    client: &Client,
    output: Output,
    app: &v1::AppRef,
    exit_code: bool,
) -> anyhow::Result<()> {
    let result = client
        .get_application_diff(v1::GetApplicationDiffRequest {
            app: Some(app.clone()),
            resources: Vec::new(),
        })
        .await?;
    let views: Vec<DiffView> = result
        .resources
        .iter()
        .map(|r| {
            let key = r.key.clone().unwrap_or_default();
            DiffView {
                kind: key.kind,
                namespace: key.namespace,
                name: key.name,
                modified: r.modified,
                diff: r.diff.clone(),
            }
        })
        .collect();
    let modified = views.iter().filter(|v| v.modified).count();
    if !print_structured(output, &views)? {
        for view in views.iter().filter(|v| v.modified) {
            let ns = if view.namespace.is_empty() {
                String::new()
            } else {
                format!("{}/", view.namespace)
            };
            outln!("===== {} {ns}{} =====", view.kind, view.name)?;
            out!("{}", view.diff)?;
            if !view.diff.ends_with('\n') {
                outln!()?;
            }
        }
        if modified == 0 {
            noteln!("{} has no differences from git", display(app));
        }
    }
    if exit_code && modified > 0 {
        anyhow::bail!(Exit::new(
            FAILURE,
            format!(
                "{} differs from git in {modified} resource(s)",
                display(app)
            )
        ));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryView {
    id: i64,
    revision: String,
    path: String,
    result: String,
    started_at: String,
    deployed_at: String,
    initiated_by: String,
    /// The trace the sync ran in (the operator's, for a sync a command started).
    #[serde(skip_serializing_if = "String::is_empty")]
    trace_id: String,
}

async fn history(client: &Client, output: Output, app: &v1::AppRef) -> anyhow::Result<()> {
    let response = client
        .list_history(v1::ListHistoryRequest {
            app: Some(app.clone()),
        })
        .await?;
    let views: Vec<HistoryView> = response
        .entries
        .iter()
        .map(|h| HistoryView {
            id: h.id,
            revision: h.revision.clone(),
            path: h
                .source
                .as_ref()
                .map(|s| s.path.clone())
                .unwrap_or_default(),
            result: phase_name(h.result).into(),
            started_at: time_text(h.started_at.as_ref()),
            deployed_at: time_text(h.deployed_at.as_ref()),
            initiated_by: h.initiated_by.clone(),
            trace_id: h.trace_id.clone(),
        })
        .collect();
    if !print_structured(output, &views)? {
        if views.is_empty() {
            noteln!("{} has no sync history yet", display(app));
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let mut table = Table::new(vec![
            "ID",
            "REVISION",
            "RESULT",
            "DEPLOYED",
            "AGE",
            "INITIATED BY",
        ]);
        for (v, h) in views.iter().zip(&response.entries) {
            let at = h.deployed_at.as_ref().or(h.started_at.as_ref());
            table.row(vec![
                v.id.to_string(),
                short_rev(&v.revision),
                v.result.clone(),
                time_text(at),
                age(at, now),
                or_dash(&v.initiated_by),
            ]);
        }
        out!("{}", table.render())?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct ManifestsView {
    revision: String,
    manifests: Vec<serde_json::Value>,
}

impl From<&v1::ManifestsResult> for ManifestsView {
    fn from(r: &v1::ManifestsResult) -> Self {
        Self {
            revision: r.revision.clone(),
            manifests: r
                .manifests_yaml
                .iter()
                .map(|m| serde_saphyr::from_str(m).unwrap_or_else(|_| m.clone().into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        let app = app_ref("team-a/nginx", None).unwrap();
        assert_eq!(
            (app.project.as_str(), app.name.as_str()),
            ("team-a", "nginx")
        );
        let app = app_ref("nginx", None).unwrap();
        assert_eq!(app.project, "default");
        let app = app_ref("nginx", Some("team-b")).unwrap();
        assert_eq!(app.project, "team-b");
        assert!(app_ref("team-a/nginx", Some("team-b")).is_err());
        assert!(app_ref("a/b/c", None).is_err());
        assert!(app_ref("", None).is_err());
    }

    #[test]
    fn argo_and_edgecd_applications_parse() {
        let text = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
spec:
  project: team-a
  source:
    repoURL: https://example.com/repo.git
    targetRevision: HEAD
    path: guestbook
  destination:
    name: cluster-1
    namespace: guestbook
  syncPolicy:
    automated: {prune: true}
---
apiVersion: edgecd.io/v1alpha1
kind: Application
metadata:
  name: nginx
  labels: {tier: web}
spec:
  source: {repoURL: "git://127.0.0.1/repo.git", path: deploy/overlays/cluster-1}
  destination: {name: cluster-1}
"#;
        let requests = parse_apps(text).unwrap();
        assert_eq!(requests.len(), 2);
        let meta = requests[0].meta.clone().unwrap();
        assert_eq!(
            (meta.project.as_str(), meta.name.as_str()),
            ("team-a", "guestbook")
        );
        let spec = requests[0].spec.clone().unwrap();
        assert_eq!(spec.destination.unwrap().cluster, "cluster-1");
        assert!(spec.sync_policy.unwrap().automated.unwrap().prune);
        let meta = requests[1].meta.clone().unwrap();
        assert_eq!(meta.project, "default");
        assert_eq!(meta.labels.get("tier").map(String::as_str), Some("web"));
    }

    #[test]
    fn other_kinds_are_refused_with_a_hint() {
        let text = "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: x}\nspec: {source: {repoURL: x}}\n";
        let error = parse_apps(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("edgecd apply -f"), "{error}");
    }

    #[test]
    fn rows_mark_apps_of_stale_clusters() {
        let summary = v1::ApplicationSummary {
            project: "default".into(),
            name: "cluster-2.nginx".into(),
            cluster: "cluster-2".into(),
            sync: v1::SyncStatusCode::Synced as i32,
            health: v1::HealthStatusCode::Healthy as i32,
            revision: "0123456789abcdef0123456789abcdef01234567".into(),
            cluster_connection: Some(v1::ConnectionState {
                state: v1::ConnectionStateCode::Stale as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let row = AppRow::from(&summary);
        assert_eq!(row.health, "Stale");
        assert_eq!(row.reported_health, "Healthy");
        assert_eq!(
            app_table(&[row], false).render(),
            "PROJECT   NAME              CLUSTER     SYNC     HEALTH   REVISION\n\
             default   cluster-2.nginx   cluster-2   Synced   Stale    0123456\n"
        );
    }

    #[test]
    fn describe_shows_the_connection() {
        let app = v1::Application {
            meta: Some(v1::ApplicationMeta {
                project: "default".into(),
                name: "nginx".into(),
                ..Default::default()
            }),
            spec: Some(v1::ApplicationSpec {
                destination: Some(v1::Destination {
                    cluster: "cluster-1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(v1::ApplicationStatus {
                health: Some(v1::HealthStatus {
                    status: v1::HealthStatusCode::Healthy as i32,
                    message: String::new(),
                }),
                ..Default::default()
            }),
            cluster_connection: Some(v1::ConnectionState {
                state: v1::ConnectionStateCode::Disconnected as i32,
                ..Default::default()
            }),
        };
        let text = describe(&app, OffsetDateTime::UNIX_EPOCH);
        assert!(
            text.contains("Cluster:     cluster-1 (Disconnected)"),
            "{text}"
        );
        assert!(
            text.contains("Disconnected (cluster not connected; last reported Healthy)"),
            "{text}"
        );
    }
}
