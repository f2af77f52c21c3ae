//! `edgecd appset list|get|apply|delete` and `edgecd apply -f` (edgecd and Argo CD YAML through `ApplyManifests`).

use edgecd_proto::client::Error as SdkError;
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;

use super::read_input;
use crate::args::{ApplyArgs, AppsetCommand};
use crate::exit::{Exit, FAILURE};
use crate::output::{Table, natural_cmp, print_structured, time_text};
use crate::session::Session;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppsetView {
    project: String,
    name: String,
    scope: String,
    /// The generators, in Argo CD's YAML shape.
    generators: Vec<serde_json::Value>,
    /// The Application template (`metadata`, `spec`), placeholders as written.
    template: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_policy: Option<serde_json::Value>,
    generated: Vec<String>,
    /// Generated apps per cluster, for a set evaluated at spokes (`name@cluster`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    per_cluster: std::collections::BTreeMap<String, usize>,
    conditions: Vec<String>,
    /// A progressive sync's place of every app (`strategy: RollingSync`).
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rollout: Vec<RolloutView>,
    created_at: String,
}

#[derive(Debug, Serialize)]
struct RolloutView {
    app: String,
    step: i32,
    status: String,
    message: String,
}

/// Generated apps per cluster: `guestbook@cluster-1` counts for cluster-1; hub-generated apps count for none.
fn per_cluster(generated: &[v1::AppRef]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for app in generated {
        if let Some((_, cluster)) = app.name.split_once('@') {
            *counts.entry(cluster.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// `12 (cluster-1: 3, cluster-2: 3, …)`, or just the total.
fn apps_text(view: &AppsetView) -> String {
    if view.per_cluster.is_empty() {
        return view.generated.len().to_string();
    }
    let mut counts: Vec<(&String, &usize)> = view.per_cluster.iter().collect();
    counts.sort_by(|a, b| natural_cmp(a.0, b.0));
    let clusters: Vec<String> = counts
        .iter()
        .map(|(cluster, n)| format!("{cluster}: {n}"))
        .collect();
    format!("{} ({})", view.generated.len(), clusters.join(", "))
}

impl From<&v1::ApplicationSet> for AppsetView {
    fn from(s: &v1::ApplicationSet) -> Self {
        // Argo CD's shape (`- list: {elements: …}`), as applied; a set the converter cannot read
        // back still shows how many generators it has.
        let spec = edgecd_proto::convert::appset_spec_from_proto(s).ok();
        let (generators, template, sync_policy) = match &spec {
            Some(spec) => (
                spec.generators
                    .iter()
                    .map(|g| serde_json::to_value(g).unwrap_or(serde_json::Value::Null))
                    .collect(),
                serde_json::to_value(&spec.template).unwrap_or(serde_json::Value::Null),
                spec.sync_policy
                    .as_ref()
                    .and_then(|p| serde_json::to_value(p).ok()),
            ),
            None => (
                vec![serde_json::Value::Null; s.generators.len()],
                serde_json::Value::Null,
                None,
            ),
        };
        let mut generated: Vec<String> = s
            .generated
            .iter()
            .map(|a| format!("{}/{}", a.project, a.name))
            .collect();
        generated.sort_by(|a, b| natural_cmp(a, b));
        Self {
            project: s.project.clone(),
            name: s.name.clone(),
            scope: s.scope.clone(),
            generators,
            template,
            sync_policy,
            generated,
            per_cluster: per_cluster(&s.generated),
            conditions: s
                .conditions
                .iter()
                .map(|c| format!("{}: {}", c.r#type, c.message))
                .collect(),
            strategy: spec
                .as_ref()
                .and_then(|spec| spec.strategy.as_ref())
                .and_then(|st| serde_json::to_value(st).ok()),
            rollout: s
                .rollout
                .iter()
                .map(|r| RolloutView {
                    app: r
                        .app
                        .as_ref()
                        .map(|a| format!("{}/{}", a.project, a.name))
                        .unwrap_or_default(),
                    step: r.step,
                    status: r.status.clone(),
                    message: r.message.clone(),
                })
                .collect(),
            created_at: time_text(s.created_at.as_ref()),
        }
    }
}

pub async fn run(session: &Session, command: AppsetCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    match command {
        AppsetCommand::List { projects } => {
            let client = session.client().await?;
            let sets: Vec<v1::ApplicationSet> = client
                .application_sets(v1::ListApplicationSetsRequest {
                    projects,
                    page_size: 500,
                    page_token: String::new(),
                })
                .try_collect()
                .await
                .map_err(explain)?;
            let mut views: Vec<AppsetView> = sets.iter().map(AppsetView::from).collect();
            views.sort_by(|a, b| {
                natural_cmp(&a.project, &b.project).then(natural_cmp(&a.name, &b.name))
            });
            if !print_structured(output, &views)? {
                let mut table = Table::new(vec!["PROJECT", "NAME", "SCOPE", "APPS", "CONDITIONS"]);
                for v in views {
                    let apps = apps_text(&v);
                    table.row(vec![
                        v.project,
                        v.name,
                        v.scope,
                        apps,
                        v.conditions.join("; "),
                    ]);
                }
                out!("{}", table.render())?;
            }
            Ok(())
        }
        AppsetCommand::Get { name, project } => {
            let client = session.client().await?;
            let set = client
                .get_application_set(v1::GetApplicationSetRequest { project, name })
                .await
                .map_err(explain)?;
            let view = AppsetView::from(&set);
            if !print_structured(output, &view)? {
                out!("{}", describe(&view)?)?;
            }
            Ok(())
        }
        AppsetCommand::Apply(args) => apply(session, &args).await,
        AppsetCommand::Delete { name, project } => {
            let client = session.client().await?;
            client
                .delete_application_set(v1::DeleteApplicationSetRequest {
                    project: project.clone(),
                    name: name.clone(),
                })
                .await
                .map_err(explain)?;
            outln!("application set {project}/{name} deleted")?;
            Ok(())
        }
    }
}

/// YAML of `value`, every line indented by `indent` spaces.
fn indented_yaml(value: &impl Serialize, indent: usize) -> anyhow::Result<String> {
    let pad = " ".repeat(indent);
    Ok(crate::output::to_yaml(value)?
        .lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect())
}

/// The human view of `appset get`: where it runs, what it generates from (generators and
/// template, in the YAML it was applied as), and what it generated.
fn describe(view: &AppsetView) -> anyhow::Result<String> {
    let mut text = String::new();
    text.push_str(&format!("Name:        {}/{}\n", view.project, view.name));
    text.push_str(&format!("Scope:       {}\n", view.scope));
    text.push_str(&format!("Apps:        {}\n", apps_text(view)));
    text.push_str(&format!(
        "Generated:   {}\n",
        if view.generated.is_empty() {
            "-".to_owned()
        } else {
            view.generated.join(", ")
        }
    ));
    for c in &view.conditions {
        text.push_str(&format!("Condition:   {c}\n"));
    }
    text.push_str(&format!("Generators:  {}\n", view.generators.len()));
    text.push_str(&indented_yaml(&view.generators, 2)?);
    text.push_str("Template:\n");
    text.push_str(&indented_yaml(&view.template, 2)?);
    if let Some(policy) = &view.sync_policy {
        text.push_str("Sync policy:\n");
        text.push_str(&indented_yaml(policy, 2)?);
    }
    if let Some(strategy) = &view.strategy {
        text.push_str("Strategy:\n");
        text.push_str(&indented_yaml(strategy, 2)?);
    }
    if !view.rollout.is_empty() {
        text.push_str("Rollout:\n");
        let width = view.rollout.iter().map(|r| r.app.len()).max().unwrap_or(0);
        for r in &view.rollout {
            let step = if r.step < 0 {
                "-".to_owned()
            } else {
                r.step.to_string()
            };
            text.push_str(&format!(
                "  {:<width$}  step {step:<3} {:<12} {}\n",
                r.app, r.status, r.message
            ));
        }
    }
    Ok(text)
}

/// Adds what to do when the hub does not support application sets yet.
fn explain(error: SdkError) -> anyhow::Error {
    match error {
        SdkError::Unimplemented { .. } => anyhow::Error::new(error).context(
            "this hub does not support application sets yet; create the generated Applications with `edgecd app create` or `edgecd app apply -f` instead",
        ),
        other => other.into(),
    }
}

#[derive(Debug, Serialize)]
struct ApplyView {
    source: String,
    action: String,
    kind: String,
    project: String,
    name: String,
    message: String,
    /// What was accepted but is not acted on (`field: why`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// `edgecd apply -f`: every document through the hub's `ApplyManifests`.
pub async fn apply(session: &Session, args: &ApplyArgs) -> anyhow::Result<()> {
    let client = session.client().await?;
    let mut refused = 0;
    let mut views = Vec::new();
    for path in &args.file {
        let yaml = read_input(path)?;
        let response = client
            .apply_manifests(v1::ApplyManifestsRequest {
                yaml,
                dry_run: args.dry_run,
                default_project: args.project.clone(),
                cluster: args.cluster.clone().unwrap_or_default(),
                scope: args.scope(),
            })
            .await
            .map_err(explain)?;
        for r in response.results {
            if r.action == "refused" {
                refused += 1;
            }
            views.push(ApplyView {
                source: r.source,
                action: r.action,
                kind: r.kind,
                project: r.project,
                name: r.name,
                message: r.message,
                warnings: r.warnings,
            });
        }
    }
    if !print_structured(session.global.output, &views)? {
        for v in &views {
            let suffix = if v.message.is_empty() {
                String::new()
            } else {
                format!(": {}", v.message)
            };
            // A refused document may come back without its project: its name alone then.
            let name = if v.project.is_empty() {
                v.name.clone()
            } else {
                format!("{}/{}", v.project, v.name)
            };
            outln!(
                "{} {name} {}{}{suffix}",
                v.kind,
                v.action,
                if args.dry_run { " (dry run)" } else { "" }
            )?;
            for warning in &v.warnings {
                outln!("  warning: {warning}")?;
            }
        }
    }
    if refused > 0 {
        anyhow::bail!(Exit::new(FAILURE, format!("{refused} document(s) refused")));
    }
    Ok(())
}
