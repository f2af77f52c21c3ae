//! The size budget of an app's status: what the spoke writes into its Application object must stay far below the Kubernetes object limit (etcd's 1.5 MiB), so a large app's lists are shortened, least useful first, and the status says so.
//!
//! ```text
//!  status JSON > budget? ─ no ─► as is
//!        │ yes
//!        ▼
//!  1. history entries: keep the resources that did not simply sync, at most HISTORY_RESOURCES each
//!  2. last operation:  the same, at most OPERATION_RESOURCES
//!  3. history entries: no resource lists
//!  4. last operation:  no resource list
//!  (status.resources is the inventory that pruning relies on: never shortened)
//! ```

use crate::app::{ApplicationStatus, ResourceResult};

/// Largest status (JSON bytes) the spoke writes: 1 MiB, leaving room for the spec and metadata under
/// etcd's 1.5 MiB object limit.
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;
/// Resource results kept per history entry once a status is over its budget.
pub const HISTORY_RESOURCES: usize = 50;
/// Resource results kept in the last operation once a status is over its budget.
pub const OPERATION_RESOURCES: usize = 500;
/// The condition a shortened status carries (a warning: the app itself is fine).
pub const TRUNCATED_CONDITION: &str = "StatusTruncatedWarning";

impl ApplicationStatus {
    /// The status's size as written (JSON bytes).
    pub fn json_size(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |bytes| bytes.len())
    }

    /// Shortens the status's resource lists until its JSON fits in `max_bytes`, least useful first (see the
    /// module's steps); `None` when it fit as it was, otherwise what was left out, for a condition. The
    /// inventory (`resources`) is never shortened, so a status can still be over the budget afterwards.
    pub fn fit_within(&mut self, max_bytes: usize) -> Option<String> {
        if self.json_size() <= max_bytes {
            return None;
        }
        let mut omitted_history = 0;
        let mut omitted_operation = 0;
        for entry in &mut self.history {
            omitted_history += keep_notable(&mut entry.resources, HISTORY_RESOURCES);
        }
        if self.json_size() > max_bytes
            && let Some(operation) = &mut self.operation_state
        {
            omitted_operation += keep_notable(&mut operation.resources, OPERATION_RESOURCES);
        }
        if self.json_size() > max_bytes {
            for entry in &mut self.history {
                omitted_history += entry.resources.len();
                entry.resources.clear();
            }
        }
        if self.json_size() > max_bytes
            && let Some(operation) = &mut self.operation_state
        {
            omitted_operation += operation.resources.len();
            operation.resources.clear();
        }
        let mut parts = Vec::new();
        if omitted_operation > 0 {
            parts.push(format!(
                "{omitted_operation} resource results of the last operation"
            ));
        }
        if omitted_history > 0 {
            parts.push(format!("{omitted_history} resource results of past syncs"));
        }
        Some(format!(
            "the status of {} resources is over {} KiB: {} left out (resources that only synced first; \
             the resource list itself is complete)",
            self.resources.len(),
            max_bytes / 1024,
            if parts.is_empty() {
                "nothing could be".to_owned()
            } else {
                parts.join(" and ")
            }
        ))
    }
}

/// Keeps at most `limit` results, those that did not simply sync first (failures, prunes), in their
/// order; returns how many were dropped.
fn keep_notable(results: &mut Vec<ResourceResult>, limit: usize) -> usize {
    if results.len() <= limit {
        return 0;
    }
    let before = results.len();
    let routine = |r: &ResourceResult| matches!(r.status.as_str(), "Synced" | "Unchanged");
    let notable = results.iter().filter(|r| !routine(r)).count();
    let mut routine_room = limit.saturating_sub(notable);
    let mut notable_room = limit;
    results.retain(|r| {
        if routine(r) {
            if routine_room > 0 && notable_room > 0 {
                routine_room -= 1;
                notable_room -= 1;
                return true;
            }
            false
        } else if notable_room > 0 {
            notable_room -= 1;
            true
        } else {
            false
        }
    });
    before - results.len()
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::app::{HistoryEntry, OperationPhase, OperationState, ResourceKey, ResourceStatus};

    fn key(i: usize) -> ResourceKey {
        ResourceKey {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: "big".into(),
            name: format!("cm-{i:05}"),
        }
    }

    fn result(i: usize, status: &str) -> ResourceResult {
        ResourceResult {
            key: key(i),
            status: status.into(),
            message: format!("configmap/cm-{i:05} serverside-applied"),
            sync_wave: 0,
        }
    }

    /// An app of `n` ConfigMaps after three syncs, one failure among them.
    fn big_status(n: usize) -> ApplicationStatus {
        let results: Vec<ResourceResult> = (0..n)
            .map(|i| result(i, if i == 7 { "SyncFailed" } else { "Synced" }))
            .collect();
        let now = OffsetDateTime::UNIX_EPOCH;
        let entry = |id| HistoryEntry {
            id,
            revision: "a".repeat(40),
            source: Default::default(),
            sources: vec![],
            revisions: vec![],
            started_at: now,
            deployed_at: now,
            result: OperationPhase::Succeeded,
            initiated_by: String::new(),
            resources: results.clone(),
            trace_id: String::new(),
            rollback_of: None,
        };
        ApplicationStatus {
            resources: (0..n)
                .map(|i| ResourceStatus {
                    key: key(i),
                    status: crate::SyncStatus::Synced,
                    health: None,
                    requires_pruning: false,
                    sync_wave: 0,
                })
                .collect(),
            operation_state: Some(OperationState {
                command_id: "c3".into(),
                phase: OperationPhase::Succeeded,
                message: "successfully synced".into(),
                started_at: now,
                finished_at: Some(now),
                revision: "a".repeat(40),
                resources: results.clone(),
                retry_count: 0,
                initiated_by: String::new(),
                trace_id: String::new(),
            }),
            history: vec![entry(0), entry(1), entry(2)],
            ..Default::default()
        }
    }

    /// The review's app: 5,000 objects through three syncs wrote a 2.2 MB status and wedged.
    #[test]
    fn a_five_thousand_object_status_fits_and_keeps_its_inventory_and_failures() {
        let mut status = big_status(5_000);
        assert!(
            status.json_size() > 2 * MAX_STATUS_BYTES,
            "{}",
            status.json_size()
        );
        let said = status.fit_within(MAX_STATUS_BYTES).unwrap();
        assert!(
            status.json_size() <= MAX_STATUS_BYTES,
            "{}",
            status.json_size()
        );
        assert_eq!(status.resources.len(), 5_000, "the inventory is kept whole");
        let operation = status.operation_state.as_ref().unwrap();
        assert_eq!(operation.resources.len(), OPERATION_RESOURCES);
        assert!(
            operation.resources.iter().any(|r| r.status == "SyncFailed"),
            "failures are kept"
        );
        for entry in &status.history {
            assert_eq!(entry.resources.len(), HISTORY_RESOURCES);
            assert!(entry.resources.iter().any(|r| r.status == "SyncFailed"));
        }
        assert!(said.contains("5000 resources"), "{said}");
        assert!(
            said.contains("4500 resource results of the last operation"),
            "{said}"
        );
        // Idempotent: a second pass finds nothing to do.
        assert_eq!(status.fit_within(MAX_STATUS_BYTES), None);
    }

    #[test]
    fn a_small_status_is_left_alone() {
        let mut status = big_status(100);
        let before = status.clone();
        assert_eq!(status.fit_within(MAX_STATUS_BYTES), None);
        assert_eq!(status, before);
    }

    #[test]
    fn an_inventory_over_the_budget_empties_every_other_list() {
        let mut status = big_status(2_000);
        let said = status.fit_within(1024).unwrap();
        assert_eq!(status.resources.len(), 2_000);
        assert!(status.operation_state.unwrap().resources.is_empty());
        assert!(status.history.iter().all(|h| h.resources.is_empty()));
        assert!(
            said.contains("2000 resource results of the last operation"),
            "{said}"
        );
    }
}
