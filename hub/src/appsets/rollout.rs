//! Progressive syncs of hub-evaluated sets (`strategy: RollingSync`): reads the set's apps and the syncs it asked, moves the rollout on (`edgecd_core::appset::rollout`), asks the next syncs through the command outbox and keeps each app's place in the set's status.
//!
//! ```text
//!  pass(set) ─ owned apps (store: labels, spec version, reported sync/health/revision, operation's command)
//!           ─ the rollout's sync commands (store) ─► advance (core) ─► enqueue sync commands ─► status.rollout
//! ```
//!
//! A pass runs after each evaluation of such a set, when an app of a cluster changes status (at most every
//! `ROLLOUT_TICK`), and every `ROLLOUT_TICK` while asked syncs have not started (their commands are watched).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use edgecd_core::app::OwnerRef;
use edgecd_core::appset::ApplicationSetSpec;
use edgecd_core::appset::rollout::{
    self, Advance, CommandProgress, Reported, RolloutApp, RolloutPhase,
};
use time::OffsetDateTime;

use super::{AppSetController, OWNER_KIND, condition, owned_summaries};
use crate::link::{CommandPayload, command_payload_kind};
use crate::store::appsets::HUB_SCOPE;
use crate::store::{AppSetRecord, AppSetStatus, CommandOutcome, NewCommand, StoreError};

/// How often rollouts with syncs in flight are looked at, and the least time between two passes woken by
/// status changes.
pub(super) const ROLLOUT_TICK: Duration = Duration::from_secs(3);
/// How long a sync the rollout asks may wait for its spoke before it expires (and is asked again).
const SYNC_TTL: Duration = Duration::from_secs(600);
/// The conditions a rollout writes on its set.
pub(super) const ROLLOUT_CONDITIONS: [&str; 3] = [
    "RolloutProgressing",
    "RolloutComplete",
    "InvalidRolloutConfig",
];

impl AppSetController {
    /// One pass over every hub set with a rolling sync: whether any set rolls out, and whether any has asked
    /// syncs that have not started. A set that stopped rolling (strategy changed) has its rollout status
    /// cleared.
    pub(super) async fn advance_rollouts(&self) -> (bool, bool) {
        let Some(sets) = self.hub_sets().await else {
            // Looked at again next tick.
            return (true, true);
        };
        let mut awaiting = false;
        let mut rolling = false;
        for set in sets {
            let Ok(spec) = ApplicationSetSpec::from_json(&set.spec) else {
                continue;
            };
            if spec.rolling_steps().is_none() && set.status.rollout.is_empty() {
                continue;
            }
            rolling = true;
            let mut status = set.status.clone();
            match self.advance_rollout(&set, &spec, &mut status).await {
                Ok(waits) => awaiting |= waits,
                Err(error) => {
                    awaiting = true;
                    tracing::warn!(project = %set.project, appset = %set.name, %error, "Rollout pass failed.");
                    continue;
                }
            }
            if status != set.status
                && let Err(error) = self.record_status(&set, &status).await
            {
                tracing::warn!(project = %set.project, appset = %set.name, %error, "Cannot record the rollout.");
            }
        }
        (rolling, awaiting)
    }

    /// Moves `set`'s rollout on in `status` (its `rollout` entries and rollout conditions), asking the syncs
    /// of the apps whose turn it is; true while asked syncs have not started (their commands are watched).
    #[tracing::instrument(skip_all, fields(project = %set.project, appset = %set.name))]
    pub(super) async fn advance_rollout(
        &self,
        set: &AppSetRecord,
        spec: &ApplicationSetSpec,
        status: &mut AppSetStatus,
    ) -> Result<bool, StoreError> {
        let (previous, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut status.conditions)
            .into_iter()
            .partition(|c| ROLLOUT_CONDITIONS.contains(&c.kind.as_str()));
        status.conditions = kept;
        let Some(steps) = spec.rolling_steps() else {
            // No longer rolling: every app syncs on its own policy again.
            status.rollout.clear();
            status.rollout_prune.clear();
            return Ok(false);
        };
        let owner = OwnerRef {
            kind: OWNER_KIND.into(),
            project: set.project.clone(),
            name: set.name.clone(),
            scope: HUB_SCOPE.into(),
        };
        let (apps, targets) = self.rollout_apps(&owner).await?;
        let asked: Vec<String> = status
            .rollout
            .iter()
            .filter(|s| !s.command.is_empty())
            .map(|s| s.command.clone())
            .collect();
        let commands = command_progress(&self.store.get_commands(&asked).await?);
        let now = OffsetDateTime::now_utc();
        let mut advance = rollout::advance(steps, &status.rollout, &apps, &commands, now);
        let prune: BTreeSet<&str> = status.rollout_prune.iter().map(String::as_str).collect();
        self.ask_syncs(set, &mut advance, &prune, &targets).await;
        let awaiting = advance.awaiting_commands();
        status.rollout = advance.statuses;
        let kind = if advance.progressing_step.is_some() {
            "RolloutProgressing"
        } else {
            "RolloutComplete"
        };
        let mut conditions = vec![condition(kind, advance.summary)];
        if !advance.issues.is_empty() {
            conditions.push(condition("InvalidRolloutConfig", advance.issues.join("; ")));
        }
        // An unchanged condition keeps its time (and the status is not written again for nothing).
        for mut new in conditions {
            if let Some(old) = previous
                .iter()
                .find(|c| c.kind == new.kind && c.message == new.message)
            {
                new.last_transition_time = old.last_transition_time;
            }
            status.conditions.push(new);
        }
        Ok(awaiting)
    }

    /// The set's apps as the rollout sees them (labels and spec version, their source, and what their spoke
    /// reported), and where each one's syncs go.
    async fn rollout_apps(
        &self,
        owner: &OwnerRef,
    ) -> Result<(Vec<RolloutApp>, Targets), StoreError> {
        let summaries = owned_summaries(self.store.as_ref(), owner).await?;
        let mut apps = Vec::with_capacity(summaries.len());
        let mut targets = Targets::new();
        for summary in summaries {
            let health = summary.health_shown();
            // The operation's command and the spec version the report is for are in the full status.
            let record = match self.store.get_app(&summary.project, &summary.name).await {
                Ok(record) => record,
                Err(StoreError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let reported = record.status.as_ref().map(|s| Reported {
                observed_spec_version: s.observed_spec_version,
                sync: s.sync.status,
                health,
                revision: s.sync.revision.clone(),
                operation_command: s
                    .operation_state
                    .as_ref()
                    .map(|o| o.command_id.clone())
                    .unwrap_or_default(),
                operation_running: s.operation_state.as_ref().is_some_and(|o| {
                    matches!(
                        o.phase,
                        edgecd_core::app::OperationPhase::Running
                            | edgecd_core::app::OperationPhase::Terminating
                    )
                }),
                reconciled_at: s.reconciled_at,
            });
            // One git source (`source`, not a `sources` list, which the spoke syncs at its targets only): its
            // revisions are commits, comparable across apps and pinned in the syncs asked.
            let one = &record.spec.source;
            let source = if !record.spec.is_multi_source()
                && one.chart.is_empty()
                && !one.repo_url.starts_with("oci://")
            {
                format!("{}@{}", one.repo_url, one.target_revision)
            } else {
                String::new()
            };
            targets.insert(
                (record.project.clone(), record.name.clone()),
                Target {
                    cluster: record.cluster,
                    pin: !source.is_empty(),
                },
            );
            apps.push(RolloutApp {
                project: record.project,
                name: record.name,
                labels: record.labels,
                spec_version: record.spec_version,
                source,
                reported,
            });
        }
        Ok((apps, targets))
    }

    /// Enqueues a sync for every app `advance` moved to Pending and records its command; an app whose sync
    /// cannot be enqueued goes back to Waiting (asked again next pass).
    async fn ask_syncs(
        &self,
        set: &AppSetRecord,
        advance: &mut Advance,
        prune: &BTreeSet<&str>,
        targets: &Targets,
    ) {
        let issued_by = format!("appset:{}/{} (RollingSync)", set.project, set.name);
        for &i in &advance.to_sync {
            let entry = &mut advance.statuses[i];
            let qualified = format!("{}/{}", entry.project, entry.application);
            let Some(target) = targets.get(&(entry.project.clone(), entry.application.clone()))
            else {
                entry.status = RolloutPhase::Waiting;
                entry.message = "its destination cluster is not known: waiting".into();
                continue;
            };
            // At the commit its step was opened for: a command that waits in the outbox for a disconnected
            // cluster never deploys a commit pushed meanwhile, which the steps before it have not run.
            let revision = if target.pin {
                entry.target_revision.clone()
            } else {
                String::new()
            };
            let payload = CommandPayload::Sync {
                revision,
                prune: prune.contains(qualified.as_str()),
                dry_run: false,
                force: false,
                resources: Vec::new(),
                apply_out_of_sync_only: false,
            };
            let encoded = match serde_json::to_value(&payload) {
                Ok(encoded) => encoded,
                Err(error) => {
                    entry.status = RolloutPhase::Waiting;
                    entry.message = format!("its sync could not be encoded ({error}): waiting");
                    continue;
                }
            };
            let command = NewCommand {
                id: None,
                project: entry.project.clone(),
                app: entry.application.clone(),
                cluster: target.cluster.clone(),
                kind: command_payload_kind(&payload).to_owned(),
                payload: encoded,
                issued_by: issued_by.clone(),
                deadline: OffsetDateTime::now_utc() + SYNC_TTL,
                trace: None,
            };
            match self.store.enqueue_command(&command).await {
                Ok(record) => {
                    tracing::info!(app = %qualified, cluster = %target.cluster, command = %record.id, step = entry.step, "Rollout: sync asked.");
                    entry.command = record.id;
                }
                Err(error) => {
                    tracing::warn!(app = %qualified, %error, "Rollout: cannot ask a sync; asking again next pass.");
                    entry.status = RolloutPhase::Waiting;
                    entry.message = format!("its sync could not be asked ({error}): waiting");
                }
            }
        }
    }
}

/// Where an app's syncs go, and whether they are pinned to the revision its step was opened for (a single
/// git source, whose revisions are commits).
struct Target {
    cluster: String,
    pin: bool,
}

/// Each app's [`Target`], by (project, name).
type Targets = BTreeMap<(String, String), Target>;

/// Where each asked command is, by id; an id the outbox no longer holds is left out (the core asks again).
fn command_progress(records: &[crate::store::CommandRecord]) -> BTreeMap<String, CommandProgress> {
    records
        .iter()
        .map(|record| {
            let progress = match record.outcome {
                CommandOutcome::Pending | CommandOutcome::Delivered | CommandOutcome::Running => {
                    CommandProgress::InFlight
                }
                CommandOutcome::Expired => CommandProgress::Undelivered(format!(
                    "expired before its spoke took it: {}",
                    record.message
                )),
                outcome => CommandProgress::Finished(if record.message.is_empty() {
                    format!("{outcome:?}")
                } else {
                    format!("{outcome:?}: {}", record.message)
                }),
            };
            (record.id.clone(), progress)
        })
        .collect()
}
