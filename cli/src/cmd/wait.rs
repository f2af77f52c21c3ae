//! Waiting for commands and for apps to become Synced and Healthy (one, several, or every app of a selection), with a spinner on stderr when it is a terminal.

use std::io::IsTerminal as _;
use std::time::Duration;

use edgecd_proto::client::Client;
use edgecd_proto::v1;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::appref::{display, fetch};
use crate::exit::{Exit, NOT_FOUND, NOT_READY};
use crate::output::{
    connection_trusted, effective_health, health_name, outcome_name, phase_name, sync_name,
};

const POLL: Duration = Duration::from_millis(500);

/// What "ready" means.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    sync: bool,
    health: bool,
}

impl Want {
    pub fn both() -> Self {
        Self {
            sync: true,
            health: true,
        }
    }
    pub fn sync_only() -> Self {
        Self {
            sync: true,
            health: false,
        }
    }
    pub fn health_only() -> Self {
        Self {
            sync: false,
            health: true,
        }
    }
}

/// A spinner on stderr, drawn only on a terminal.
fn spinner() -> ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Why a finished command did not succeed, or `None` while it runs or once it succeeded.
fn failure_detail(status: &v1::CommandStatus) -> Option<String> {
    let outcome = v1::CommandOutcome::try_from(status.outcome).unwrap_or_default();
    if !matches!(
        outcome,
        v1::CommandOutcome::Failed
            | v1::CommandOutcome::Expired
            | v1::CommandOutcome::Unsupported
            | v1::CommandOutcome::Rejected
    ) {
        return None;
    }
    let detail = match &status.payload {
        Some(v1::command_status::Payload::Operation(op)) if !op.message.is_empty() => {
            op.message.clone()
        }
        _ => status.message.clone(),
    };
    Some(format!(
        "command {} {}{}",
        status.command_id,
        outcome_name(status.outcome),
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        }
    ))
}

/// The exit code of a failed command: 3 when it names a revision that does not exist, else 6.
fn failure_code(detail: &str) -> u8 {
    if crate::exit::is_unknown_revision(detail) {
        NOT_FOUND
    } else {
        NOT_READY
    }
}

/// Waits until a command has finished; fails (exit 6, or 3 for an unknown revision) if it did not succeed.
pub async fn command(
    client: &Client,
    app: &v1::AppRef,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<v1::CommandStatus> {
    let bar = spinner();
    let deadline = Instant::now() + timeout;
    loop {
        let status = client
            .get_command(v1::GetCommandRequest {
                command_id: id.to_owned(),
            })
            .await?;
        let outcome = v1::CommandOutcome::try_from(status.outcome).unwrap_or_default();
        bar.set_message(format!(
            "{}: command {}",
            display(app),
            outcome_name(status.outcome)
        ));
        if outcome == v1::CommandOutcome::Succeeded {
            bar.finish_and_clear();
            return Ok(status);
        }
        if let Some(detail) = failure_detail(&status) {
            bar.finish_and_clear();
            anyhow::bail!(Exit::new(
                failure_code(&detail),
                format!("{}: {detail}", display(app))
            ));
        }
        if Instant::now() >= deadline {
            bar.finish_and_clear();
            anyhow::bail!(Exit::new(
                NOT_READY,
                format!(
                    "timed out after {}s: command {id} for {} is still {}",
                    timeout.as_secs(),
                    display(app),
                    outcome_name(status.outcome)
                )
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How one of many awaited commands ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandEnd {
    Succeeded,
    /// Failed, expired, refused by the spoke, or still running at the deadline; `code` is the exit code it stands for.
    Failed {
        code: u8,
        message: String,
    },
}

/// Waits until every command has finished (polling those still open, a few at a time), for at most `timeout`.
pub async fn commands(
    client: &Client,
    ids: &[String],
    timeout: Duration,
) -> anyhow::Result<Vec<CommandEnd>> {
    use futures::StreamExt as _;
    let bar = spinner();
    let deadline = Instant::now() + timeout;
    let mut ends: Vec<Option<CommandEnd>> = vec![None; ids.len()];
    loop {
        let open: Vec<usize> = (0..ids.len()).filter(|i| ends[*i].is_none()).collect();
        if open.is_empty() {
            break;
        }
        let statuses: Vec<(usize, Result<v1::CommandStatus, _>)> =
            futures::stream::iter(open.iter().map(|&i| async move {
                let status = client
                    .get_command(v1::GetCommandRequest {
                        command_id: ids[i].clone(),
                    })
                    .await;
                (i, status)
            }))
            .buffer_unordered(8)
            .collect()
            .await;
        for (i, status) in statuses {
            let status = status?;
            if status.outcome == v1::CommandOutcome::Succeeded as i32 {
                ends[i] = Some(CommandEnd::Succeeded);
            } else if let Some(detail) = failure_detail(&status) {
                ends[i] = Some(CommandEnd::Failed {
                    code: failure_code(&detail),
                    message: detail,
                });
            }
        }
        let done = ends.iter().filter(|e| e.is_some()).count();
        bar.set_message(format!("{done} of {} commands finished", ids.len()));
        if done == ids.len() {
            break;
        }
        if Instant::now() >= deadline {
            for (i, end) in ends.iter_mut().enumerate() {
                if end.is_none() {
                    *end = Some(CommandEnd::Failed {
                        code: NOT_READY,
                        message: format!(
                            "timed out after {}s: command {} has not finished",
                            timeout.as_secs(),
                            ids[i]
                        ),
                    });
                }
            }
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    bar.finish_and_clear();
    Ok(ends
        .into_iter()
        .map(|e| {
            e.unwrap_or(CommandEnd::Failed {
                code: NOT_READY,
                message: "not awaited".into(),
            })
        })
        .collect())
}

/// Why an app of a list is not ready yet, or `None` if it is (as [`not_ready`], from a list row).
pub fn summary_not_ready(app: &v1::ApplicationSummary, want: Want) -> Option<String> {
    let connection = app.cluster_connection.as_ref();
    let mut reasons = Vec::new();
    if !connection_trusted(connection) {
        reasons.push(format!(
            "cluster {}",
            effective_health(app.health, connection)
        ));
    }
    if want.sync && app.sync != v1::SyncStatusCode::Synced as i32 {
        reasons.push(sync_name(app.sync).to_owned());
    }
    if want.health && app.health != v1::HealthStatusCode::Healthy as i32 {
        reasons.push(health_name(app.health).to_owned());
    }
    if app.operation_phase == v1::OperationPhase::Running as i32 {
        reasons.push(format!("operation {}", phase_name(app.operation_phase)));
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// Waits until each of `wanted` (project, name) is ready, listing the apps of `filter` once per
/// round (one paged query, not a call per app); returns those still not ready at the deadline with why.
pub async fn selected(
    client: &Client,
    filter: &v1::ApplicationFilter,
    wanted: &[(String, String)],
    want: Want,
    timeout: Duration,
) -> anyhow::Result<std::collections::BTreeMap<(String, String), String>> {
    use futures::TryStreamExt as _;
    let bar = spinner();
    let deadline = Instant::now() + timeout;
    loop {
        let apps: Vec<v1::ApplicationSummary> = client
            .applications(v1::ListApplicationsRequest {
                filter: Some(filter.clone()),
                page_size: 1000,
                ..Default::default()
            })
            .try_collect()
            .await?;
        let rows: std::collections::HashMap<(&str, &str), &v1::ApplicationSummary> = apps
            .iter()
            .map(|a| ((a.project.as_str(), a.name.as_str()), a))
            .collect();
        let mut pending = std::collections::BTreeMap::new();
        for (project, name) in wanted {
            let reason = match rows.get(&(project.as_str(), name.as_str())) {
                Some(app) => summary_not_ready(app, want),
                None => Some("no longer matches (deleted?)".to_owned()),
            };
            if let Some(reason) = reason {
                pending.insert((project.clone(), name.clone()), reason);
            }
        }
        bar.set_message(format!(
            "{} of {} applications ready",
            wanted.len() - pending.len(),
            wanted.len()
        ));
        if pending.is_empty() || Instant::now() >= deadline {
            bar.finish_and_clear();
            return Ok(pending);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why an app is not ready yet, or `None` if it is.
pub fn not_ready(app: &v1::Application, want: Want) -> Option<String> {
    let status = app.status.clone().unwrap_or_default();
    let sync = status.sync.clone().unwrap_or_default();
    let health = status.health.clone().unwrap_or_default();
    let connection = app.cluster_connection.as_ref();
    let mut reasons = Vec::new();
    if !connection_trusted(connection) {
        reasons.push(format!(
            "cluster {}",
            effective_health(health.status, connection)
        ));
    }
    if want.sync && sync.status != v1::SyncStatusCode::Synced as i32 {
        reasons.push(sync_name(sync.status).to_owned());
    }
    if want.health && health.status != v1::HealthStatusCode::Healthy as i32 {
        reasons.push(health_name(health.status).to_owned());
    }
    if let Some(op) = &status.operation_state
        && op.phase == v1::OperationPhase::Running as i32
    {
        reasons.push(format!("operation {}", phase_name(op.phase)));
    }
    let spec_version = app.meta.as_ref().map_or(0, |m| m.spec_version);
    if status.observed_spec_version != 0 && status.observed_spec_version < spec_version {
        reasons.push("status not yet for the latest spec".into());
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// Waits until every app is ready; fails (exit 6) with what is not after `timeout`.
pub async fn apps(
    client: &Client,
    apps: &[v1::AppRef],
    want: Want,
    timeout: Duration,
) -> anyhow::Result<()> {
    let bar = spinner();
    let deadline = Instant::now() + timeout;
    loop {
        let mut pending = Vec::new();
        for app in apps {
            let current = fetch(client, app).await?;
            if let Some(reason) = not_ready(&current, want) {
                pending.push(format!("{}: {reason}", display(app)));
            }
        }
        if pending.is_empty() {
            bar.finish_and_clear();
            return Ok(());
        }
        bar.set_message(format!("waiting for {}", pending.join("; ")));
        if Instant::now() >= deadline {
            bar.finish_and_clear();
            anyhow::bail!(Exit::new(
                NOT_READY,
                format!(
                    "timed out after {}s; not ready: {}",
                    timeout.as_secs(),
                    pending.join("; ")
                )
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(
        sync: v1::SyncStatusCode,
        health: v1::HealthStatusCode,
        conn: v1::ConnectionStateCode,
    ) -> v1::Application {
        v1::Application {
            status: Some(v1::ApplicationStatus {
                sync: Some(v1::SyncStatus {
                    status: sync as i32,
                    revision: String::new(),
                }),
                health: Some(v1::HealthStatus {
                    status: health as i32,
                    message: String::new(),
                }),
                ..Default::default()
            }),
            cluster_connection: Some(v1::ConnectionState {
                state: conn as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readiness() {
        use v1::ConnectionStateCode as C;
        use v1::HealthStatusCode as H;
        use v1::SyncStatusCode as S;
        assert_eq!(
            not_ready(&app(S::Synced, H::Healthy, C::Connected), Want::both()),
            None
        );
        assert_eq!(
            not_ready(&app(S::OutOfSync, H::Healthy, C::Connected), Want::both()).as_deref(),
            Some("OutOfSync")
        );
        assert_eq!(
            not_ready(
                &app(S::OutOfSync, H::Healthy, C::Connected),
                Want::health_only()
            ),
            None
        );
        assert_eq!(
            not_ready(&app(S::Synced, H::Healthy, C::Stale), Want::both()).as_deref(),
            Some("cluster Stale")
        );
    }
}
