//! Acting on many apps at once: a selection (`-l`, `--cluster`, `--cluster-selector`, `--project`, `--all`) is previewed and confirmed, then synced or refreshed through `BulkCommand`, deleted or rolled back app by app, or waited for; the exit code says whether every app made it.

use std::collections::BTreeMap;

use edgecd_proto::client::Client;
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;

use super::appref::{app_ref, display};
use super::selector;
use super::wait::{self, Want};
use crate::args::{Output, Selection};
use crate::confirm::confirm;
use crate::exit::{Exit, NOT_FOUND, NOT_READY};
use crate::output::{
    Table, effective_health, natural_cmp, or_dash, print_structured, short_rev, sync_name,
};

/// Apps listed in a preview; the rest are counted.
const PREVIEW_ROWS: usize = 50;

/// What a command acts on.
#[derive(Debug, Clone)]
pub enum Target {
    /// Apps named on the command line.
    Named(Vec<v1::AppRef>),
    /// Every app matching a filter (previewed first).
    Selected(Box<v1::ApplicationFilter>),
}

impl Selection {
    /// Whether any selecting flag (other than a project for a named app) is set.
    fn selects(&self) -> bool {
        self.all
            || self.selector.is_some()
            || !self.clusters.is_empty()
            || self.cluster_selector.is_some()
    }
}

/// Names or a selection, never both; a selection needs at least one flag (`--all` for everything).
pub fn target(names: &[String], selection: &Selection) -> anyhow::Result<Target> {
    if !names.is_empty() {
        if selection.selects() {
            anyhow::bail!(Exit::usage(
                "name applications or select them with -l/--cluster/--cluster-selector/--all, not both"
            ));
        }
        if selection.projects.len() > 1 {
            anyhow::bail!(Exit::usage(
                "with an application name, --project names its one project (or write PROJECT/NAME)"
            ));
        }
        let project = selection.projects.first().map(String::as_str);
        return Ok(Target::Named(
            names
                .iter()
                .map(|n| app_ref(n, project))
                .collect::<anyhow::Result<_>>()?,
        ));
    }
    if !selection.selects() && selection.projects.is_empty() {
        anyhow::bail!(Exit::usage(
            "name an application, or select applications with -l/--selector, --cluster, \
             --cluster-selector or --project (--all for every application)"
        ));
    }
    Ok(Target::Selected(Box::new(filter(selection)?)))
}

/// The hub-side filter of a selection.
pub fn filter(selection: &Selection) -> anyhow::Result<v1::ApplicationFilter> {
    Ok(v1::ApplicationFilter {
        projects: selection.projects.clone(),
        clusters: selection.clusters.clone(),
        cluster_selector: selection
            .cluster_selector
            .as_deref()
            .map(|s| selector(s, "--cluster-selector"))
            .transpose()?,
        app_selector: selection
            .selector
            .as_deref()
            .map(|s| selector(s, "--selector"))
            .transpose()?,
        ..Default::default()
    })
}

/// Every app matching `filter`, in the hub's order (the order `BulkCommand` addresses them in).
pub async fn matching(
    client: &Client,
    filter: &v1::ApplicationFilter,
) -> anyhow::Result<Vec<v1::ApplicationSummary>> {
    Ok(client
        .applications(v1::ListApplicationsRequest {
            filter: Some(filter.clone()),
            page_size: 1000,
            ..Default::default()
        })
        .try_collect()
        .await?)
}

/// The matching apps, or exit 3 when there are none.
async fn matching_some(
    client: &Client,
    filter: &v1::ApplicationFilter,
) -> anyhow::Result<Vec<v1::ApplicationSummary>> {
    let apps = matching(client, filter).await?;
    if apps.is_empty() {
        anyhow::bail!(Exit::new(NOT_FOUND, "no applications match the selection"));
    }
    Ok(apps)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The preview table: the first [`PREVIEW_ROWS`] apps in natural order, and how many more.
pub fn preview_text(apps: &[v1::ApplicationSummary]) -> String {
    let mut sorted: Vec<&v1::ApplicationSummary> = apps.iter().collect();
    sorted.sort_by(|a, b| natural_cmp(&a.project, &b.project).then(natural_cmp(&a.name, &b.name)));
    let mut table = Table::new(vec![
        "PROJECT", "NAME", "CLUSTER", "SYNC", "HEALTH", "REVISION",
    ]);
    for a in sorted.iter().take(PREVIEW_ROWS) {
        table.row(vec![
            a.project.clone(),
            a.name.clone(),
            or_dash(&a.cluster),
            sync_name(a.sync).to_owned(),
            effective_health(a.health, a.cluster_connection.as_ref()),
            short_rev(&a.revision),
        ]);
    }
    let mut text = format!(
        "{} application{} match{}:\n{}",
        apps.len(),
        plural(apps.len()),
        if apps.len() == 1 { "es" } else { "" },
        table.render()
    );
    if apps.len() > PREVIEW_ROWS {
        text.push_str(&format!(
            "… and {} more (`edgecd app list` with the same flags lists them all)\n",
            apps.len() - PREVIEW_ROWS
        ));
    }
    text
}

/// Shows the matching apps on stderr and asks `question` about them.
fn preview_and_confirm(
    apps: &[v1::ApplicationSummary],
    question: &str,
    yes: bool,
) -> anyhow::Result<()> {
    note!("{}", preview_text(apps));
    confirm(question, yes)
}

/// What happened to one app.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub project: String,
    pub name: String,
    pub cluster: String,
    /// `Succeeded`, `Queued`, `Deleted`, or why not: `Failed`, `Refused`, `NotFound`, `NotReady`.
    pub result: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The exit code this outcome stands for (0 when it went well).
    #[serde(skip)]
    pub code: u8,
}

impl Outcome {
    fn of(app: &v1::ApplicationSummary, result: &str, code: u8, message: String) -> Self {
        Self {
            project: app.project.clone(),
            name: app.name.clone(),
            cluster: app.cluster.clone(),
            result: result.to_owned(),
            command_id: String::new(),
            message,
            code,
        }
    }

    fn failed(app: &v1::ApplicationSummary, error: &anyhow::Error) -> Self {
        let code = crate::exit::code(error);
        let result = match code {
            NOT_FOUND => "NotFound",
            crate::exit::AUTH => "Denied",
            NOT_READY => "NotReady",
            _ => "Refused",
        };
        Self::of(app, result, code, crate::exit::render(error))
    }
}

/// Prints every outcome (stdout), then fails with the first failure's exit code if any app failed;
/// else says how many apps were `done` (e.g. "synced").
fn finish(output: Output, verb: &str, done: &str, outcomes: &[Outcome]) -> anyhow::Result<()> {
    if !print_structured(output, outcomes)? {
        let mut table = Table::new(vec!["PROJECT", "NAME", "CLUSTER", "RESULT", "MESSAGE"]);
        for o in outcomes {
            table.row(vec![
                o.project.clone(),
                o.name.clone(),
                or_dash(&o.cluster),
                o.result.clone(),
                o.message.clone(),
            ]);
        }
        out!("{}", table.render())?;
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.code != 0).collect();
    if let Some(first) = failed.first() {
        anyhow::bail!(Exit::new(
            first.code,
            format!(
                "{verb} failed for {} of {} application{} (first: {}/{}: {})",
                failed.len(),
                outcomes.len(),
                plural(outcomes.len()),
                first.project,
                first.name,
                first.message
            )
        ));
    }
    noteln!(
        "{verb}: {} application{} {done}",
        outcomes.len(),
        plural(outcomes.len())
    );
    Ok(())
}

/// Says once each distinct notice the hub gave while queueing (a cluster not connected, a command joined).
fn notices(commands: &[v1::CommandStatus]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in commands.iter().filter(|c| !c.notice.is_empty()) {
        *counts.entry(c.notice.as_str()).or_insert(0) += 1;
    }
    for (notice, n) in counts {
        if n == 1 {
            noteln!("note: {notice}");
        } else {
            noteln!("note ({n} applications): {notice}");
        }
    }
}

/// Pairs the commands `BulkCommand` returned with the previewed apps: by the app each command names
/// (hubs that name it), else by position (both follow the hub's order for the same filter). `None` if
/// the selection changed in between (a command for an app not previewed, or other counts).
fn pair<'a>(
    apps: &'a [v1::ApplicationSummary],
    commands: &'a [v1::CommandStatus],
) -> Option<Vec<(&'a v1::ApplicationSummary, &'a v1::CommandStatus)>> {
    if !commands.is_empty() && commands.iter().all(|c| c.app.is_some()) {
        let by_name: std::collections::HashMap<(&str, &str), &v1::ApplicationSummary> = apps
            .iter()
            .map(|a| ((a.project.as_str(), a.name.as_str()), a))
            .collect();
        return commands
            .iter()
            .map(|c| {
                let app = c.app.as_ref()?;
                by_name
                    .get(&(app.project.as_str(), app.name.as_str()))
                    .map(|summary| (*summary, c))
            })
            .collect();
    }
    (apps.len() == commands.len()).then(|| apps.iter().zip(commands).collect())
}

/// Waits for every queued command, then for the apps whose command succeeded to be ready.
async fn wait_all(
    client: &Client,
    filter: &v1::ApplicationFilter,
    queued: Vec<(v1::ApplicationSummary, String)>,
    want: Want,
    timeout: std::time::Duration,
) -> anyhow::Result<Vec<Outcome>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let ids: Vec<String> = queued.iter().map(|(_, id)| id.clone()).collect();
    let ends = wait::commands(client, &ids, timeout).await?;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(queued.len());
    let mut ready_wanted = Vec::new();
    for ((app, id), end) in queued.iter().zip(ends) {
        let mut outcome = match end {
            wait::CommandEnd::Succeeded => {
                ready_wanted.push((app.project.clone(), app.name.clone()));
                Outcome::of(app, "Succeeded", 0, String::new())
            }
            wait::CommandEnd::Failed { code, message } => Outcome::of(app, "Failed", code, message),
        };
        outcome.command_id = id.clone();
        outcomes.push(outcome);
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let not_ready = wait::selected(client, filter, &ready_wanted, want, left).await?;
    for outcome in &mut outcomes {
        if let Some(reason) = not_ready.get(&(outcome.project.clone(), outcome.name.clone())) {
            outcome.result = "NotReady".into();
            outcome.code = NOT_READY;
            outcome.message = reason.clone();
        }
    }
    Ok(outcomes)
}

/// `app sync` of a selection: one `BulkCommand`, then (unless `--async`) every command and app awaited.
pub async fn sync(
    client: &Client,
    output: Output,
    filter: &v1::ApplicationFilter,
    yes: bool,
    sync: v1::SyncCommand,
    no_wait: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let apps = matching_some(client, filter).await?;
    let dry = if sync.dry_run { " (dry run)" } else { "" };
    preview_and_confirm(
        &apps,
        &format!(
            "Sync{dry} these {} application{}?",
            apps.len(),
            plural(apps.len())
        ),
        yes,
    )?;
    let response = client
        .bulk_command(v1::BulkCommandRequest {
            filter: Some(filter.clone()),
            kind: Some(v1::bulk_command_request::Kind::Sync(sync.clone())),
            ttl: None,
        })
        .await?;
    noteln!(
        "sync queued for {} application{}",
        response.commands.len(),
        plural(response.commands.len())
    );
    notices(&response.commands);
    bulk_result(
        client,
        output,
        filter,
        &apps,
        &response.commands,
        no_wait || sync.dry_run,
        Want::both(),
        timeout,
        "sync",
    )
    .await
}

/// `app refresh` of a selection: one `BulkCommand`.
pub async fn refresh(
    client: &Client,
    output: Output,
    filter: &v1::ApplicationFilter,
    yes: bool,
    hard: bool,
) -> anyhow::Result<()> {
    let apps = matching_some(client, filter).await?;
    preview_and_confirm(
        &apps,
        &format!(
            "Refresh{} these {} application{}?",
            if hard { " (hard)" } else { "" },
            apps.len(),
            plural(apps.len())
        ),
        yes,
    )?;
    let response = client
        .bulk_command(v1::BulkCommandRequest {
            filter: Some(filter.clone()),
            kind: Some(v1::bulk_command_request::Kind::Refresh(
                v1::RefreshCommand { hard },
            )),
            ttl: None,
        })
        .await?;
    notices(&response.commands);
    bulk_result(
        client,
        output,
        filter,
        &apps,
        &response.commands,
        true,
        Want::both(),
        std::time::Duration::ZERO,
        "refresh",
    )
    .await
}

/// Reports what a `BulkCommand` queued, and waits for it unless `no_wait`.
#[allow(clippy::too_many_arguments)]
async fn bulk_result(
    client: &Client,
    output: Output,
    filter: &v1::ApplicationFilter,
    apps: &[v1::ApplicationSummary],
    commands: &[v1::CommandStatus],
    no_wait: bool,
    want: Want,
    timeout: std::time::Duration,
    verb: &str,
) -> anyhow::Result<()> {
    let Some(pairs) = pair(apps, commands) else {
        // The selection changed between the preview and the command: the hub's list is the truth,
        // but which command is whose is unknown; wait for the commands by id.
        noteln!(
            "note: the selection changed since the preview ({} previewed, {} queued)",
            apps.len(),
            commands.len()
        );
        let ids: Vec<String> = commands.iter().map(|c| c.command_id.clone()).collect();
        let ends = if no_wait {
            Vec::new()
        } else {
            wait::commands(client, &ids, timeout).await?
        };
        let failed = ends
            .iter()
            .filter(|e| !matches!(e, wait::CommandEnd::Succeeded))
            .count();
        outln!("{verb} queued: {}", ids.join(", "))?;
        if let Some(wait::CommandEnd::Failed { code, message }) = ends
            .into_iter()
            .find(|e| !matches!(e, wait::CommandEnd::Succeeded))
        {
            anyhow::bail!(Exit::new(
                code,
                format!(
                    "{verb} failed for {failed} of {} application{} (first: {message})",
                    ids.len(),
                    plural(ids.len())
                )
            ));
        }
        return Ok(());
    };
    if no_wait {
        let outcomes: Vec<Outcome> = pairs
            .iter()
            .map(|(app, status)| {
                let mut o = Outcome::of(app, "Queued", 0, status.notice.clone());
                o.command_id = status.command_id.clone();
                o
            })
            .collect();
        return finish(output, verb, "queued", &outcomes);
    }
    let queued = pairs
        .iter()
        .map(|(app, status)| ((*app).clone(), status.command_id.clone()))
        .collect();
    let outcomes = wait_all(client, filter, queued, want, timeout).await?;
    finish(output, verb, "synced", &outcomes)
}

/// `app delete` of a selection: every app deleted by its own call; failures do not stop the rest.
pub async fn delete(
    client: &Client,
    output: Output,
    filter: &v1::ApplicationFilter,
    yes: bool,
    cascade: bool,
) -> anyhow::Result<()> {
    let apps = matching_some(client, filter).await?;
    let cascades = if cascade {
        "Their resources are deleted from their clusters too (--cascade=false keeps them)."
    } else {
        "Their resources stay in their clusters (--cascade=false)."
    };
    preview_and_confirm(
        &apps,
        &format!(
            "Delete these {} application{}? {cascades}",
            apps.len(),
            plural(apps.len())
        ),
        yes,
    )?;
    let mut outcomes = Vec::with_capacity(apps.len());
    for app in &apps {
        let app_ref = v1::AppRef::new(app.project.clone(), app.name.clone());
        let result = client
            .delete_application(v1::DeleteApplicationRequest {
                app: Some(app_ref),
                cascade,
            })
            .await;
        outcomes.push(match result {
            Ok(_) => Outcome::of(app, "Deleted", 0, String::new()),
            Err(error) => Outcome::failed(app, &anyhow::Error::new(error)),
        });
    }
    finish(output, "delete", "deleted", &outcomes)
}

/// The history entry before the current (latest) one: where a rollback without an id goes.
pub fn previous_entry(entries: &[v1::HistoryEntry]) -> Option<&v1::HistoryEntry> {
    let mut sorted: Vec<&v1::HistoryEntry> = entries.iter().collect();
    sorted.sort_by_key(|h| h.id);
    sorted
        .len()
        .checked_sub(2)
        .and_then(|i| sorted.get(i).copied())
}

/// The id a rollback without one goes to, or exit 3 saying why there is none.
pub async fn previous_id(client: &Client, app: &v1::AppRef) -> anyhow::Result<i64> {
    let history = client
        .list_history(v1::ListHistoryRequest {
            app: Some(app.clone()),
        })
        .await?;
    previous_entry(&history.entries)
        .map(|h| h.id)
        .ok_or_else(|| {
            anyhow::Error::new(Exit::new(
                NOT_FOUND,
                format!(
                    "{} has no previous history entry to roll back to ({} entr{})",
                    display(app),
                    history.entries.len(),
                    if history.entries.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    }
                ),
            ))
        })
}

/// `app rollback` of a selection: each app to its own previous history entry.
pub async fn rollback(
    client: &Client,
    output: Output,
    filter: &v1::ApplicationFilter,
    yes: bool,
    prune: bool,
    no_wait: bool,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let apps = matching_some(client, filter).await?;
    preview_and_confirm(
        &apps,
        &format!(
            "Roll back these {} application{}, each to its previous history entry?",
            apps.len(),
            plural(apps.len())
        ),
        yes,
    )?;
    let mut outcomes = Vec::new();
    let mut queued = Vec::new();
    for app in &apps {
        let app_ref = v1::AppRef::new(app.project.clone(), app.name.clone());
        let issued = async {
            let id = previous_id(client, &app_ref).await?;
            let status = client
                .rollback_application(v1::RollbackApplicationRequest {
                    request_id: String::new(),
                    app: Some(app_ref.clone()),
                    history_id: id,
                    prune,
                    dry_run: false,
                    ttl: None,
                })
                .await?;
            anyhow::Ok((id, status))
        }
        .await;
        match issued {
            Ok((id, status)) => {
                noteln!(
                    "rollback of {} to history {id} queued (command {})",
                    display(&app_ref),
                    status.command_id
                );
                if !status.notice.is_empty() {
                    noteln!("note: {}", status.notice);
                }
                queued.push((app.clone(), status.command_id));
            }
            Err(error) => outcomes.push(Outcome::failed(app, &error)),
        }
    }
    if no_wait {
        outcomes.extend(queued.iter().map(|(app, id)| {
            let mut o = Outcome::of(app, "Queued", 0, String::new());
            o.command_id = id.clone();
            o
        }));
    } else {
        outcomes.extend(wait_all(client, filter, queued, Want::health_only(), timeout).await?);
    }
    outcomes
        .sort_by(|a, b| natural_cmp(&a.project, &b.project).then(natural_cmp(&a.name, &b.name)));
    finish(
        output,
        "rollback",
        if no_wait { "queued" } else { "rolled back" },
        &outcomes,
    )
}

/// `app wait` of a selection: every matching app ready, or exit 6 naming those that are not.
pub async fn wait(
    client: &Client,
    filter: &v1::ApplicationFilter,
    want: Want,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let apps = matching_some(client, filter).await?;
    let wanted: Vec<(String, String)> = apps
        .iter()
        .map(|a| (a.project.clone(), a.name.clone()))
        .collect();
    noteln!(
        "waiting for {} application{}",
        wanted.len(),
        plural(wanted.len())
    );
    let not_ready = wait::selected(client, filter, &wanted, want, timeout).await?;
    if not_ready.is_empty() {
        noteln!("{} application{} ready", wanted.len(), plural(wanted.len()));
        return Ok(());
    }
    let mut names: Vec<String> = not_ready
        .iter()
        .map(|((p, n), reason)| format!("{p}/{n}: {reason}"))
        .collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let shown = names.len().min(20);
    let more = if names.len() > shown {
        format!("; … and {} more", names.len() - shown)
    } else {
        String::new()
    };
    anyhow::bail!(Exit::new(
        NOT_READY,
        format!(
            "timed out after {}s: {} of {} application{} not ready: {}{more}",
            timeout.as_secs(),
            names.len(),
            wanted.len(),
            plural(wanted.len()),
            names[..shown].join("; ")
        )
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection() -> Selection {
        Selection::default()
    }

    #[test]
    fn names_or_a_selection() {
        let named = target(&["team-a/web".into()], &selection());
        assert!(matches!(named, Ok(Target::Named(ref apps)) if apps[0].project == "team-a"));
        let mut sel = selection();
        sel.projects = vec!["team-b".into()];
        let named = target(&["web".into()], &sel);
        assert!(matches!(named, Ok(Target::Named(ref apps)) if apps[0].project == "team-b"));
        // Projects alone select.
        assert!(
            matches!(target(&[], &sel), Ok(Target::Selected(ref f)) if f.projects == ["team-b"])
        );
        // Nothing at all: usage.
        let none = target(&[], &selection()).err();
        assert_eq!(
            none.as_ref().map(crate::exit::code),
            Some(crate::exit::USAGE)
        );
        // A name and a selector: usage.
        let mut both = selection();
        both.selector = Some("tier=web".into());
        let error = target(&["web".into()], &both).err();
        assert_eq!(
            error.as_ref().map(crate::exit::code),
            Some(crate::exit::USAGE)
        );
        // --all selects everything (an empty filter).
        let mut all = selection();
        all.all = true;
        assert!(
            matches!(target(&[], &all), Ok(Target::Selected(ref f)) if **f == v1::ApplicationFilter::default())
        );
        // A bad selector is a usage error.
        let mut bad = selection();
        bad.selector = Some("=x".into());
        let error = target(&[], &bad).err();
        assert_eq!(
            error.as_ref().map(crate::exit::code),
            Some(crate::exit::USAGE)
        );
    }

    #[test]
    fn previous_entries() {
        let entry = |id| v1::HistoryEntry {
            id,
            ..Default::default()
        };
        assert_eq!(
            previous_entry(&[entry(3), entry(1), entry(2)]).map(|h| h.id),
            Some(2)
        );
        assert_eq!(previous_entry(&[entry(1)]).map(|h| h.id), None);
        assert_eq!(previous_entry(&[]).map(|h| h.id), None);
    }

    #[test]
    fn previews_count_and_sort_naturally() {
        let app = |name: &str| v1::ApplicationSummary {
            project: "default".into(),
            name: name.into(),
            cluster: "cluster-1".into(),
            ..Default::default()
        };
        let apps: Vec<_> = (1..=60).rev().map(|i| app(&format!("gen-{i}"))).collect();
        let text = preview_text(&apps);
        assert!(text.starts_with("60 applications match:\n"), "{text}");
        let rows: Vec<&str> = text.lines().skip(2).take(3).collect();
        assert!(rows[0].contains("gen-1 "), "{text}");
        assert!(rows[1].contains("gen-2 "), "{text}");
        assert!(rows[2].contains("gen-3 "), "{text}");
        assert!(text.contains("… and 10 more"), "{text}");
        assert!(preview_text(&[app("x")]).starts_with("1 application matches:"));
    }
}
