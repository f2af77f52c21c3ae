//! The fleet's deployment record: each finished sync or rollback of an app's history, with the revision it replaced, who started it and the trace it ran in; derived by the spoke, bounded in bytes, stored once by the hub.
//!
//! ```text
//!  status.history (entries by id) ──new_deployments(after)──► Deployment { from_revision → to_revision, result, … }
//!       the last Succeeded entry before an entry is what it replaced ┘
//! ```

use time::OffsetDateTime;

use crate::app::{HistoryEntry, OperationPhase, OperationState};

/// `initiated_by` of a sync the spoke started because the app was out of sync.
pub const AUTOMATED: &str = "automated sync";
/// `initiated_by` of a sync the spoke started to undo drift.
pub const SELF_HEAL: &str = "automated sync (self-heal)";

/// Longest message kept (bytes); longer ones are cut at a character boundary with `…`.
pub const MAX_MESSAGE: usize = 1024;
/// Longest revision, user or command id kept (bytes).
pub const MAX_FIELD: usize = 256;
/// Deployments per message on the link.
pub const PER_BATCH: usize = 100;

/// One deployment: a sync or rollback that deployed, or tried to deploy, `to_revision` of an app on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub cluster: String,
    pub project: String,
    pub app: String,
    /// The app's history entry; `(cluster, project, app, history_id, started_at)` is unique.
    pub history_id: i64,
    /// A rollback: the history entry it deployed again.
    pub rollback_of: Option<i64>,
    /// Succeeded, Failed or Error.
    pub result: OperationPhase,
    /// The last successful revision before it in the app's history; empty when none is known.
    pub from_revision: String,
    pub to_revision: String,
    /// A user, [`AUTOMATED`] or [`SELF_HEAL`].
    pub initiated_by: String,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// 32 lower-case hex digits, or empty.
    pub trace_id: String,
    pub message: String,
    /// The command that asked for it; empty for automated syncs.
    pub command_id: String,
}

impl Deployment {
    /// Started by the spoke itself (automated sync or self-heal), not by a person or a command.
    pub fn automated(&self) -> bool {
        is_automated(&self.initiated_by)
    }

    /// The same deployment with every text field within its bound and a trace id that is one or empty: what a
    /// spoke sends is untrusted.
    pub fn bounded(mut self) -> Self {
        for field in [
            &mut self.from_revision,
            &mut self.to_revision,
            &mut self.initiated_by,
            &mut self.command_id,
        ] {
            cut(field, MAX_FIELD);
        }
        cut(&mut self.message, MAX_MESSAGE);
        if !is_trace_id(&self.trace_id) {
            self.trace_id.clear();
        }
        self
    }
}

/// `initiated_by` names the spoke itself.
pub fn is_automated(initiated_by: &str) -> bool {
    initiated_by == AUTOMATED || initiated_by == SELF_HEAL
}

/// 32 lower-case hex digits, not all zero (W3C trace id).
pub fn is_trace_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && id.bytes().any(|b| b != b'0')
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

/// The deployments of `history` (an app's, in any order) with an id above `after` (`None`: all), oldest first.
/// `operation` is the app's last operation: the entry it produced (same start) takes its message and command id.
pub fn new_deployments(
    cluster: &str,
    project: &str,
    app: &str,
    history: &[HistoryEntry],
    operation: Option<&OperationState>,
    after: Option<i64>,
) -> Vec<Deployment> {
    let mut entries: Vec<&HistoryEntry> = history.iter().collect();
    entries.sort_by_key(|h| h.id);
    let mut last_good: Option<&str> = None;
    let mut found = Vec::new();
    for entry in entries {
        if after.is_none_or(|after| entry.id > after) && entry.result.is_finished() {
            let op = operation.filter(|op| op.started_at == entry.started_at);
            found.push(
                Deployment {
                    cluster: cluster.to_owned(),
                    project: project.to_owned(),
                    app: app.to_owned(),
                    history_id: entry.id,
                    rollback_of: entry.rollback_of,
                    result: entry.result,
                    from_revision: last_good.unwrap_or_default().to_owned(),
                    to_revision: entry.revision.clone(),
                    initiated_by: entry.initiated_by.clone(),
                    started_at: entry.started_at,
                    finished_at: entry.deployed_at,
                    trace_id: entry.trace_id.clone(),
                    message: op.map(|op| op.message.clone()).unwrap_or_default(),
                    command_id: op.map(|op| op.command_id.clone()).unwrap_or_default(),
                }
                .bounded(),
            );
        }
        if entry.result == OperationPhase::Succeeded {
            last_good = Some(&entry.revision);
        }
    }
    found
}

/// The highest history id of `history` (`None` when it is empty).
pub fn last_history_id(history: &[HistoryEntry]) -> Option<i64> {
    history.iter().map(|h| h.id).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, revision: &str, result: OperationPhase, minute: i64) -> HistoryEntry {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute);
        HistoryEntry {
            id,
            revision: revision.into(),
            source: Default::default(),
            sources: vec![],
            revisions: vec![],
            started_at: at,
            deployed_at: at + time::Duration::seconds(30),
            result,
            initiated_by: "alice".into(),
            resources: vec![],
            trace_id: String::new(),
            rollback_of: None,
        }
    }

    #[test]
    fn each_deployment_names_the_last_good_revision_before_it() {
        let history = vec![
            entry(3, "c3", OperationPhase::Succeeded, 3),
            entry(1, "a1", OperationPhase::Succeeded, 1),
            entry(2, "b2", OperationPhase::Failed, 2),
            entry(4, "d4", OperationPhase::Error, 4),
        ];
        let all = new_deployments("edge-1", "p", "web", &history, None, None);
        let pairs: Vec<(i64, &str, &str)> = all
            .iter()
            .map(|d| {
                (
                    d.history_id,
                    d.from_revision.as_str(),
                    d.to_revision.as_str(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [
                (1, "", "a1"),
                (2, "a1", "b2"),
                (3, "a1", "c3"),
                (4, "c3", "d4")
            ]
        );
        assert!(all.iter().all(|d| d.cluster == "edge-1" && d.app == "web"));
        assert_eq!(
            all[1].finished_at - all[1].started_at,
            time::Duration::seconds(30)
        );

        let newer = new_deployments("edge-1", "p", "web", &history, None, Some(2));
        assert_eq!(newer.len(), 2);
        assert_eq!(newer[0].history_id, 3);
        assert!(new_deployments("edge-1", "p", "web", &history, None, Some(4)).is_empty());
    }

    #[test]
    fn the_operation_that_made_an_entry_lends_it_message_and_command() {
        let history = vec![entry(0, "a", OperationPhase::Failed, 0)];
        let mut op = OperationState {
            command_id: "cmd-1".into(),
            phase: OperationPhase::Failed,
            message: "one or more objects failed to apply".into(),
            started_at: history[0].started_at,
            finished_at: Some(history[0].deployed_at),
            revision: "a".into(),
            resources: vec![],
            retry_count: 0,
            initiated_by: "alice".into(),
            trace_id: String::new(),
        };
        let found = new_deployments("c", "p", "a", &history, Some(&op), None);
        assert_eq!(found[0].command_id, "cmd-1");
        assert_eq!(found[0].message, "one or more objects failed to apply");
        // A later operation (another start) says nothing about this entry.
        op.started_at += time::Duration::minutes(5);
        let found = new_deployments("c", "p", "a", &history, Some(&op), None);
        assert!(found[0].command_id.is_empty() && found[0].message.is_empty());
    }

    #[test]
    fn untrusted_fields_are_bounded() {
        let mut long = entry(0, &"r".repeat(10_000), OperationPhase::Succeeded, 0);
        long.initiated_by = "é".repeat(1000);
        long.trace_id = "<script>".into();
        let d = &new_deployments("c", "p", "a", &[long], None, None)[0];
        assert!(d.to_revision.len() <= MAX_FIELD && d.to_revision.ends_with('…'));
        assert!(d.initiated_by.len() <= MAX_FIELD);
        assert!(d.trace_id.is_empty());
        let zero = Deployment {
            trace_id: "0".repeat(32),
            ..d.clone()
        };
        assert!(zero.bounded().trace_id.is_empty());
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn automated_syncs_are_told_apart() {
        let mut d = new_deployments(
            "c",
            "p",
            "a",
            &[entry(0, "a", OperationPhase::Succeeded, 0)],
            None,
            None,
        )
        .remove(0);
        assert!(!d.automated());
        d.initiated_by = SELF_HEAL.into();
        assert!(d.automated());
    }
}
