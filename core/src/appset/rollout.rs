//! Progressive syncs (Argo CD's `strategy: RollingSync`): the step each generated app belongs to, and how a rollout moves on from the apps' reported sync and health.
//!
//! ```text
//!  Waiting ──(its step is open, maxUpdate allows, the spoke has its current spec)──► Pending (a sync is asked)
//!  Pending ──(the sync started or finished)──► Progressing ──(Synced and Healthy)──► Healthy
//!  any ──(new revision or new spec)──► Waiting          Waiting ──(already Synced)──► Progressing | Healthy
//! ```
//!
//! A step is open when every app of the steps before it is Healthy. Pure: the caller reads the apps and the
//! commands, issues the syncs [`Advance::to_sync`] names and stores [`Advance::statuses`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::status::{Health, SyncStatus};

/// Most steps a rollout may have.
pub const MAX_STEPS: usize = 32;
/// Most match expressions per step.
pub const MAX_EXPRESSIONS: usize = 16;
/// Most values per match expression.
pub const MAX_VALUES: usize = 64;

/// The set's `strategy`: `AllAtOnce` (the default: every generated app syncs on its own policy) or
/// `RollingSync` (the set syncs its apps step by step).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_sync: Option<RollingSync>,
    /// `AllAtOnce` (or empty): a set's apps are deleted together.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deletion_order: String,
}

impl Strategy {
    /// The steps of a rolling sync; `None` for `AllAtOnce`.
    pub fn rolling_steps(&self) -> Option<&[RolloutStep]> {
        if self.kind != ROLLING_SYNC {
            return None;
        }
        self.rolling_sync
            .as_ref()
            .map(|r| r.steps.as_slice())
            .filter(|steps| !steps.is_empty())
    }
}

/// The `type` of a rolling sync.
pub const ROLLING_SYNC: &str = "RollingSync";

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingSync {
    #[serde(default)]
    pub steps: Vec<RolloutStep>,
}

/// One step: the apps whose labels match every expression (an empty list matches every app), and how many
/// of them may sync at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStep {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<MatchExpression>,
    /// Unset: all of the step's apps at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_update: Option<MaxUpdate>,
}

/// `key In [values]` or `key NotIn [values]` over an app's labels. `In` needs the label; `NotIn` matches an
/// app without it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MatchExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl MatchExpression {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match labels.get(&self.key) {
            Some(value) => {
                let listed = self.values.contains(value);
                if self.operator == "NotIn" {
                    !listed
                } else {
                    listed
                }
            }
            None => self.operator == "NotIn",
        }
    }
}

/// Kubernetes' int-or-string: a number of apps, or a percentage of the step's apps (`10%`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxUpdate {
    Count(u64),
    Percent(String),
}

impl MaxUpdate {
    /// The parsed percentage, if this is one (`10%` → 10).
    pub fn percent(text: &str) -> Option<u64> {
        let digits = text.strip_suffix('%')?;
        if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// How many of a step's `total` apps may be syncing at once. A percentage rounds down, but a
    /// percentage above 0 allows at least one app (as Argo CD).
    pub fn limit(&self, total: usize) -> usize {
        match self {
            Self::Count(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Self::Percent(text) => {
                let pct = Self::percent(text).unwrap_or(100);
                let scaled = (total as u128 * u128::from(pct) / 100) as usize;
                if pct > 0 { scaled.max(1) } else { 0 }
            }
        }
    }
}

/// Where one app stands in the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RolloutPhase {
    /// Has changes to roll out, and waits for its step (or for `maxUpdate`).
    Waiting,
    /// A sync was asked; waiting for it to start.
    Pending,
    /// Synced or syncing, not yet Synced and Healthy.
    Progressing,
    /// Synced and Healthy at its current revision and spec.
    Healthy,
}

impl RolloutPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "Waiting",
            Self::Pending => "Pending",
            Self::Progressing => "Progressing",
            Self::Healthy => "Healthy",
        }
    }
}

/// One app's place in the rollout, kept in the set's status between passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutAppStatus {
    pub project: String,
    pub application: String,
    pub status: RolloutPhase,
    /// 1-based; -1: in no step (synced by hand only).
    pub step: i64,
    pub message: String,
    /// The revision the app was compared with when this entry last changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_revision: String,
    /// The app's spec version when this entry last changed.
    #[serde(default)]
    pub spec_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub last_transition_time: OffsetDateTime,
    /// The sync command asked for it (Pending, and kept while Progressing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command: String,
}

/// What the spoke last reported about an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The spec version the report was computed for.
    pub observed_spec_version: u64,
    pub sync: SyncStatus,
    /// Unknown while the app's cluster is not reachable.
    pub health: Health,
    pub revision: String,
    /// The command that started the app's current or last operation (empty: none did).
    pub operation_command: String,
    /// Whether that operation is still running.
    pub operation_running: bool,
    /// When the spoke last compared the app (its clock).
    pub reconciled_at: Option<OffsetDateTime>,
}

/// One app the set owns, as the rollout sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutApp {
    pub project: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub spec_version: u64,
    /// Apps with the same non-empty key render one source (repository and target revision): a later step's
    /// app of a key is synced only at the revision the earlier steps' apps of that key are Healthy at.
    pub source: String,
    /// `None` until the spoke reports it.
    pub reported: Option<Reported>,
}

impl RolloutApp {
    /// The report, if it was computed for the app's current spec.
    fn current(&self) -> Option<&Reported> {
        self.reported
            .as_ref()
            .filter(|r| r.observed_spec_version == self.spec_version)
    }

    /// Synced and Healthy now, for its current spec (an unreachable cluster's health is Unknown).
    fn synced_and_healthy(&self) -> bool {
        self.current()
            .is_some_and(|r| r.sync == SyncStatus::Synced && r.health == Health::Healthy)
    }
}

/// Where a sync command asked by the rollout is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandProgress {
    /// Queued, delivered or running.
    InFlight,
    /// It ran (the outcome, as `Succeeded` or `Failed: why`), or the spoke answered it without running
    /// (`Rejected: why`).
    Finished(String),
    /// It will never run: expired before its spoke took it, or gone.
    Undelivered(String),
}

/// Most configuration problems named in one pass.
const MAX_ISSUES: usize = 20;

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    /// Every owned app's entry, sorted by project and name.
    pub statuses: Vec<RolloutAppStatus>,
    /// Indices into `statuses` of the apps moved to Pending now: the caller asks each a sync (at the
    /// entry's `target_revision`, where it pins one) and records its command, or puts it back to Waiting.
    pub to_sync: Vec<usize>,
    /// The step being rolled out (1-based), or `None` when every step's apps are Healthy.
    pub progressing_step: Option<usize>,
    /// Human summary for the set's condition.
    pub summary: String,
    /// Configuration problems: an app two steps select, a step selecting nothing (at most 20, then a count).
    pub issues: Vec<String>,
}

impl Advance {
    /// Whether syncs were asked and have not started (a pass should look at their commands again soon).
    pub fn awaiting_commands(&self) -> bool {
        self.statuses.iter().any(|s| {
            s.status == RolloutPhase::Pending
                || !s.command.is_empty() && s.status == RolloutPhase::Waiting
        })
    }
}

/// The steps (0-based) whose expressions all match `labels`.
fn steps_selecting(steps: &[RolloutStep], labels: &BTreeMap<String, String>) -> Vec<usize> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, step)| step.match_expressions.iter().all(|e| e.matches(labels)))
        .map(|(i, _)| i)
        .collect()
}

/// Whether an entry counts against its step's `maxUpdate`: a sync asked or running, or a sync still in flight
/// for an app that went back to Waiting.
fn updating(entry: &RolloutAppStatus) -> bool {
    match entry.status {
        RolloutPhase::Pending | RolloutPhase::Progressing => true,
        RolloutPhase::Waiting => !entry.command.is_empty(),
        RolloutPhase::Healthy => false,
    }
}

/// Moves the rollout on: updates every app's entry from its report and the commands asked before, opens
/// the steps whose predecessors are Synced and Healthy, and moves Waiting apps of open steps to Pending as
/// `maxUpdate` allows.
pub fn advance(
    steps: &[RolloutStep],
    previous: &[RolloutAppStatus],
    apps: &[RolloutApp],
    commands: &BTreeMap<String, CommandProgress>,
    now: OffsetDateTime,
) -> Advance {
    let before: BTreeMap<(&str, &str), &RolloutAppStatus> = previous
        .iter()
        .map(|s| ((s.project.as_str(), s.application.as_str()), s))
        .collect();
    let mut apps: Vec<&RolloutApp> = apps.iter().collect();
    apps.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
    let mut issues = Vec::new();
    let mut statuses = Vec::with_capacity(apps.len());
    let mut step_apps: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for app in &apps {
        let selected = steps_selecting(steps, &app.labels);
        if selected.len() > 1 {
            let list: Vec<String> = selected.iter().map(|i| (i + 1).to_string()).collect();
            issues.push(format!(
                "{}/{} is selected by steps {}; it rolls out in step {}",
                app.project,
                app.name,
                list.join(", "),
                selected[0] + 1
            ));
        }
        let step = selected.first().copied();
        if let Some(step) = step {
            step_apps[step].push(statuses.len());
        }
        let step_number = step.map_or(-1, |s| s as i64 + 1);
        let entry = match before.get(&(app.project.as_str(), app.name.as_str())) {
            Some(old) => update(old, app, step_number, commands, now),
            None => RolloutAppStatus {
                project: app.project.clone(),
                application: app.name.clone(),
                status: RolloutPhase::Waiting,
                step: step_number,
                message: "new in the rollout: waiting for its step".into(),
                target_revision: app
                    .reported
                    .as_ref()
                    .map(|r| r.revision.clone())
                    .unwrap_or_default(),
                spec_version: app.spec_version,
                last_transition_time: now,
                command: String::new(),
            },
        };
        statuses.push(entry);
    }
    for (i, members) in step_apps.iter().enumerate() {
        if members.is_empty() {
            issues.push(format!("step {} selects no application", i + 1));
        }
    }
    if issues.len() > MAX_ISSUES {
        let more = issues.len() - MAX_ISSUES;
        issues.truncate(MAX_ISSUES);
        issues.push(format!("and {more} more"));
    }

    // Open steps in order: a step is open while every app of the steps before it is Healthy in the rollout
    // and Synced and Healthy in its current report. `healthy_at` keeps, per source, the revision the open
    // steps' apps run: a later step's app of that source syncs only at that revision.
    let mut healthy_at: BTreeMap<&str, &str> = BTreeMap::new();
    let mut to_sync = Vec::new();
    let mut progressing_step = None;
    for (i, members) in step_apps.iter().enumerate() {
        let limit = steps[i]
            .max_update
            .as_ref()
            .map_or(usize::MAX, |m| m.limit(members.len()));
        let mut busy = members.iter().filter(|&&m| updating(&statuses[m])).count();
        for &m in members {
            if busy >= limit {
                break;
            }
            let app = apps[m];
            let entry = &mut statuses[m];
            if entry.status != RolloutPhase::Waiting || !entry.command.is_empty() {
                continue;
            }
            // A sync is asked only once the spoke has the app's current spec (else it could run the old one,
            // or not know the app yet).
            let Some(report) = app.current() else {
                continue;
            };
            if let Some(&revision) = healthy_at.get(app.source.as_str())
                && revision != report.revision
            {
                entry.message = format!(
                    "waiting for its spoke to see revision {revision}, which the steps before it are Healthy at (it reports {})",
                    if report.revision.is_empty() {
                        "none"
                    } else {
                        &report.revision
                    }
                );
                continue;
            }
            entry.status = RolloutPhase::Pending;
            entry.message = format!("step {} is rolling out: sync asked", i + 1);
            entry.target_revision = report.revision.clone();
            entry.last_transition_time = now;
            to_sync.push(m);
            busy += 1;
        }
        let done = members
            .iter()
            .all(|&m| statuses[m].status == RolloutPhase::Healthy && apps[m].synced_and_healthy());
        if !done {
            progressing_step = Some(i + 1);
            break;
        }
        for &m in members {
            let app = apps[m];
            if !app.source.is_empty()
                && let Some(report) = app.current().filter(|r| !r.revision.is_empty())
            {
                healthy_at
                    .entry(app.source.as_str())
                    .or_insert(report.revision.as_str());
            }
        }
    }
    let summary = summarize(steps.len(), &step_apps, &statuses, progressing_step);
    Advance {
        statuses,
        to_sync,
        progressing_step,
        summary,
        issues,
    }
}

fn summarize(
    steps: usize,
    step_apps: &[Vec<usize>],
    statuses: &[RolloutAppStatus],
    progressing_step: Option<usize>,
) -> String {
    let unstepped = statuses.iter().filter(|s| s.step < 0).count();
    let by_hand = if unstepped == 0 {
        String::new()
    } else {
        format!("; {unstepped} application(s) in no step are synced by hand only")
    };
    match progressing_step {
        Some(step) => {
            let members = &step_apps[step - 1];
            let healthy = members
                .iter()
                .filter(|&&m| statuses[m].status == RolloutPhase::Healthy)
                .count();
            let waiting = members
                .iter()
                .filter(|&&m| statuses[m].status == RolloutPhase::Waiting)
                .count();
            format!(
                "rolling out step {step} of {steps}: {healthy} of {} application(s) Healthy, {waiting} Waiting{by_hand}",
                members.len()
            )
        }
        None => format!(
            "rollout complete: every application of the {steps} step(s) is Synced and Healthy{by_hand}"
        ),
    }
}

/// Carries an existing entry forward: the command it asked moves a Pending entry on (or back), a new
/// revision or spec sends it back to Waiting (a sync still in flight keeps counting against `maxUpdate`
/// until it ends), then [`settle`].
fn update(
    old: &RolloutAppStatus,
    app: &RolloutApp,
    step: i64,
    commands: &BTreeMap<String, CommandProgress>,
    now: OffsetDateTime,
) -> RolloutAppStatus {
    let mut entry = old.clone();
    entry.step = step;
    // The outbox may still say Running when the spoke's report shows the operation over (a spoke restarted
    // mid-sync never answers the command): the report wins.
    let operation_over = app.reported.as_ref().is_some_and(|r| {
        !entry.command.is_empty() && r.operation_command == entry.command && !r.operation_running
    });
    let in_flight = !entry.command.is_empty()
        && !operation_over
        && matches!(
            commands.get(&entry.command),
            Some(CommandProgress::InFlight)
        );
    if entry.status == RolloutPhase::Pending {
        let started = !entry.command.is_empty()
            && app
                .reported
                .as_ref()
                .is_some_and(|r| r.operation_command == entry.command);
        let progress = if entry.command.is_empty() {
            Some(CommandProgress::Undelivered("no sync was asked".into()))
        } else {
            commands.get(&entry.command).cloned()
        };
        if started {
            entry.status = RolloutPhase::Progressing;
            entry.message = "its sync started".into();
            entry.last_transition_time = now;
        } else {
            match progress {
                Some(CommandProgress::InFlight) => {}
                Some(CommandProgress::Finished(outcome)) => {
                    entry.status = RolloutPhase::Progressing;
                    entry.message = format!("its sync command ended: {outcome}");
                    entry.last_transition_time = now;
                }
                Some(CommandProgress::Undelivered(why)) => {
                    entry.status = RolloutPhase::Waiting;
                    entry.message = format!("its sync never ran ({why}): waiting to ask again");
                    entry.command.clear();
                    entry.last_transition_time = now;
                }
                None => {
                    entry.status = RolloutPhase::Waiting;
                    entry.message = "its sync command is gone: waiting to ask again".into();
                    entry.command.clear();
                    entry.last_transition_time = now;
                }
            }
        }
    }
    // A Waiting app whose earlier sync has ended may be asked again.
    if entry.status == RolloutPhase::Waiting && !in_flight {
        entry.command.clear();
    }

    // A first revision counts too: an app that failed before it had one (a comparison error) has changes
    // to roll out once it has one.
    let revision = app.reported.as_ref().map_or("", |r| r.revision.as_str());
    let revision_changed = !revision.is_empty() && revision != old.target_revision;
    let spec_changed = app.spec_version != old.spec_version;
    if revision_changed || spec_changed {
        entry.target_revision = revision.to_owned();
        entry.spec_version = app.spec_version;
        entry.status = RolloutPhase::Waiting;
        if !in_flight {
            entry.command.clear();
        }
        entry.last_transition_time = now;
        entry.message = match (revision_changed, spec_changed) {
            (true, true) => "new revision and spec: waiting for its step",
            (true, false) => "new revision: waiting for its step",
            _ => "new spec: waiting for its step",
        }
        .into();
    }
    settle(entry, app, now)
}

/// A Waiting app that its spoke compared after it started waiting and found Synced needs no sync: Healthy,
/// or Progressing until it is; a Progressing one becomes Healthy once Synced and Healthy.
fn settle(mut entry: RolloutAppStatus, app: &RolloutApp, now: OffsetDateTime) -> RolloutAppStatus {
    let Some(report) = app.current() else {
        return entry;
    };
    if report.sync != SyncStatus::Synced {
        return entry;
    }
    // The report must be newer than the change that made the app wait (a report computed before it, but sent
    // after, would skip the sync). A spoke's clock behind the hub's only costs a sync.
    let fresh = report
        .reconciled_at
        .is_some_and(|at| at > entry.last_transition_time);
    match entry.status {
        RolloutPhase::Waiting if fresh && entry.command.is_empty() => {
            if report.health == Health::Healthy {
                entry.status = RolloutPhase::Healthy;
                entry.message = "Synced and Healthy".into();
            } else {
                entry.status = RolloutPhase::Progressing;
                entry.message = format!("Synced, {}: waiting for it to be Healthy", report.health);
            }
            entry.last_transition_time = now;
        }
        RolloutPhase::Progressing if report.health == Health::Healthy => {
            entry.status = RolloutPhase::Healthy;
            entry.message = "Synced and Healthy".into();
            entry.last_transition_time = now;
        }
        _ => {}
    }
    entry
}

#[cfg(test)]
mod tests;
