//! Pure decisions of the reconcile loop: whether to auto-sync, retry backoff, history trimming, and condition bookkeeping.

use std::time::Duration;

use edgecd_core::SyncStatus;
use edgecd_core::app::{ApplicationSpec, Condition, HistoryEntry, OperationPhase, OperationState};
use time::OffsetDateTime;

/// Why (or why not) the engine syncs on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoSync {
    /// A new revision (or a first sync, or a retry of a failed one).
    Sync,
    /// Live objects drifted from the revision last synced, and `selfHeal` is on: sync them back.
    Heal,
    /// Nothing to do, or not allowed; the reason is for logs.
    Skip(&'static str),
    /// A previous attempt failed; try again after this delay.
    RetryAfter(Duration),
}

/// What the reconcile loop knows when deciding.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub spec: &'a ApplicationSpec,
    pub sync: SyncStatus,
    /// Revision the app would sync to now.
    pub revision: &'a str,
    /// Number of rendered objects.
    pub rendered: usize,
    pub last_operation: Option<&'a OperationState>,
    pub now: OffsetDateTime,
}

/// Decides on automated sync, Argo CD style: only with `automated`; only
/// when OutOfSync; a new revision is synced at once, drift on an already
/// synced revision only with `selfHeal`; never an empty render unless
/// `allowEmpty`; failed attempts for the same revision are retried with
/// backoff up to the retry limit.
pub fn auto_sync(facts: &Facts<'_>) -> AutoSync {
    let Some(automated) = facts.spec.automated() else {
        return AutoSync::Skip("automated sync is off");
    };
    if facts.sync != SyncStatus::OutOfSync {
        return AutoSync::Skip("in sync");
    }
    if facts.rendered == 0 && !automated.allow_empty {
        return AutoSync::Skip("the render is empty and allowEmpty is off");
    }
    let Some(last) = facts.last_operation else {
        return AutoSync::Sync;
    };
    if last.phase == OperationPhase::Running {
        return AutoSync::Skip("an operation is running");
    }
    let same_revision = last.revision == facts.revision;
    if same_revision && last.phase.is_finished() && last.phase != OperationPhase::Succeeded {
        let retry = facts
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.retry.as_ref());
        let limit = retry.map_or(0, |r| r.limit);
        if limit >= 0 && i64::from(last.retry_count) >= limit {
            return AutoSync::Skip("retry limit reached for this revision");
        }
        let delay = retry_delay(facts.spec, last.retry_count);
        let due = last.finished_at.unwrap_or(last.started_at) + delay;
        if facts.now < due {
            let wait = (due - facts.now).unsigned_abs();
            return AutoSync::RetryAfter(wait);
        }
        return AutoSync::Sync;
    }
    if same_revision {
        if !automated.self_heal {
            return AutoSync::Skip("drift on the synced revision and selfHeal is off");
        }
        return AutoSync::Heal;
    }
    AutoSync::Sync
}

/// Who started an automated sync (`initiatedBy`), and a self-heal sync (only these report `DriftHealed`).
pub use edgecd_core::deployment::{AUTOMATED, SELF_HEAL};

/// Backoff before retry `attempt` (0-based): duration × factor^attempt,
/// capped (defaults as Argo CD: 5 s, factor 2, 3 min).
pub fn retry_delay(spec: &ApplicationSpec, attempt: u32) -> Duration {
    let backoff = spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.retry.as_ref())
        .and_then(|r| r.backoff.as_ref());
    let base = backoff
        .and_then(|b| b.duration)
        .map_or(Duration::from_secs(5), |d| d.0);
    let factor = backoff.and_then(|b| b.factor).unwrap_or(2).max(1);
    let cap = backoff
        .and_then(|b| b.max_duration)
        .map_or(Duration::from_secs(180), |d| d.0);
    base.saturating_mul(factor.saturating_pow(attempt)).min(cap)
}

/// Appends a history entry, keeping the newest `limit`.
pub fn push_history(history: &mut Vec<HistoryEntry>, entry: HistoryEntry, limit: usize) {
    history.push(entry);
    let excess = history.len().saturating_sub(limit.max(1));
    history.drain(..excess);
}

/// The next history id.
pub fn next_history_id(history: &[HistoryEntry]) -> i64 {
    history.iter().map(|h| h.id).max().unwrap_or(-1) + 1
}

/// Sets (or clears, with `None`) the condition of `kind`, keeping its
/// transition time when the message is unchanged.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    message: Option<String>,
    now: OffsetDateTime,
) {
    match message {
        None => conditions.retain(|c| c.kind != kind),
        Some(message) => {
            if let Some(existing) = conditions.iter_mut().find(|c| c.kind == kind) {
                if existing.message != message {
                    existing.message = message;
                    existing.last_transition_time = now;
                }
            } else {
                conditions.push(Condition {
                    kind: kind.to_owned(),
                    message,
                    last_transition_time: now,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use edgecd_core::app::{AutomatedSync, RetryBackoff, RetryStrategy, SyncPolicy};
    use edgecd_core::duration::GoDuration;

    use super::*;

    fn spec(self_heal: bool, allow_empty: bool, limit: i64) -> ApplicationSpec {
        ApplicationSpec {
            sync_policy: Some(SyncPolicy {
                automated: Some(AutomatedSync {
                    prune: true,
                    self_heal,
                    allow_empty,
                }),
                sync_options: vec![],
                retry: Some(RetryStrategy {
                    limit,
                    backoff: Some(RetryBackoff {
                        duration: Some(GoDuration(Duration::from_secs(5))),
                        factor: Some(2),
                        max_duration: Some(GoDuration(Duration::from_secs(60))),
                    }),
                }),
            }),
            ..ApplicationSpec::default()
        }
    }

    fn op(
        revision: &str,
        phase: OperationPhase,
        retry_count: u32,
        finished: OffsetDateTime,
    ) -> OperationState {
        OperationState {
            command_id: String::new(),
            phase,
            message: String::new(),
            started_at: finished,
            finished_at: Some(finished),
            revision: revision.into(),
            resources: vec![],
            retry_count,
            initiated_by: String::new(),
            trace_id: String::new(),
        }
    }

    fn facts<'a>(
        spec: &'a ApplicationSpec,
        last: Option<&'a OperationState>,
        now: OffsetDateTime,
    ) -> Facts<'a> {
        Facts {
            spec,
            sync: SyncStatus::OutOfSync,
            revision: "b",
            rendered: 2,
            last_operation: last,
            now,
        }
    }

    #[test]
    fn new_revision_syncs_drift_needs_self_heal() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let no_heal = spec(false, false, 5);
        assert_eq!(auto_sync(&facts(&no_heal, None, now)), AutoSync::Sync);
        let done_a = op("a", OperationPhase::Succeeded, 0, now);
        assert_eq!(
            auto_sync(&facts(&no_heal, Some(&done_a), now)),
            AutoSync::Sync
        );
        let done_b = op("b", OperationPhase::Succeeded, 0, now);
        assert!(matches!(
            auto_sync(&facts(&no_heal, Some(&done_b), now)),
            AutoSync::Skip(_)
        ));
        let heal = spec(true, false, 5);
        assert_eq!(auto_sync(&facts(&heal, Some(&done_b), now)), AutoSync::Heal);
        // A retry of a failed sync of the synced revision is not a heal, with or without selfHeal.
        let failed_b = op(
            "b",
            OperationPhase::Failed,
            0,
            now - time::Duration::minutes(10),
        );
        assert_eq!(
            auto_sync(&facts(&no_heal, Some(&failed_b), now)),
            AutoSync::Sync
        );
        assert_eq!(
            auto_sync(&facts(&heal, Some(&failed_b), now)),
            AutoSync::Sync
        );
        let manual = ApplicationSpec::default();
        assert!(matches!(
            auto_sync(&facts(&manual, None, now)),
            AutoSync::Skip(_)
        ));
    }

    #[test]
    fn never_syncs_an_empty_render_without_allow_empty() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let s = spec(true, false, 5);
        let mut f = facts(&s, None, now);
        f.rendered = 0;
        assert!(matches!(auto_sync(&f), AutoSync::Skip(_)));
        let allow = spec(true, true, 5);
        let mut f = facts(&allow, None, now);
        f.rendered = 0;
        assert_eq!(auto_sync(&f), AutoSync::Sync);
    }

    #[test]
    fn failures_retry_with_backoff_up_to_the_limit() {
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let s = spec(false, false, 3);
        let failed = op("b", OperationPhase::Failed, 1, t0);
        // Attempt 1 failed: wait 5 s × 2 = 10 s.
        assert_eq!(
            auto_sync(&facts(&s, Some(&failed), t0 + time::Duration::seconds(4))),
            AutoSync::RetryAfter(Duration::from_secs(6))
        );
        assert_eq!(
            auto_sync(&facts(&s, Some(&failed), t0 + time::Duration::seconds(10))),
            AutoSync::Sync
        );
        let exhausted = op("b", OperationPhase::Failed, 3, t0);
        assert!(matches!(
            auto_sync(&facts(&s, Some(&exhausted), t0 + time::Duration::hours(1))),
            AutoSync::Skip(_)
        ));
        assert_eq!(retry_delay(&s, 10), Duration::from_secs(60));
    }

    #[test]
    fn history_and_conditions() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let mut history = Vec::new();
        for i in 0..12 {
            let entry = HistoryEntry {
                id: next_history_id(&history),
                revision: format!("r{i}"),
                source: Default::default(),
                sources: vec![],
                revisions: vec![],
                started_at: t,
                deployed_at: t,
                result: OperationPhase::Succeeded,
                initiated_by: String::new(),
                resources: vec![],
                trace_id: String::new(),
                rollback_of: None,
            };
            push_history(&mut history, entry, 10);
        }
        assert_eq!(history.len(), 10);
        assert_eq!(history[0].revision, "r2");
        assert_eq!(history[9].id, 11);

        let mut conditions = Vec::new();
        set_condition(&mut conditions, "ComparisonError", Some("boom".into()), t);
        set_condition(
            &mut conditions,
            "ComparisonError",
            Some("boom".into()),
            t + time::Duration::seconds(5),
        );
        assert_eq!(conditions[0].last_transition_time, t);
        set_condition(&mut conditions, "ComparisonError", None, t);
        assert!(conditions.is_empty());
    }
}
