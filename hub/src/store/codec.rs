//! Column encodings shared by both backends: timestamps as Unix milliseconds, enums as their names, JSON documents as text.

use edgecd_core::app::{AppOrigin, OperationPhase};
use edgecd_core::{Health, SyncStatus};
use time::OffsetDateTime;

use super::model::{CommandOutcome, ConnectionKind, EventSeverity};
use super::{Result, StoreError};

/// Timestamps are stored as Unix milliseconds (BIGINT / INTEGER) in both
/// backends, so comparisons and sorting are identical.
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    let nanos = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// [`from_ms`] that reports a timestamp out of range as corrupt data.
pub(crate) fn checked_from_ms(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|error| {
        StoreError::Corrupt {
            reason: format!("timestamp {ms}: {error}"),
        }
    })
}

/// [`to_u64`] that reports a negative version as corrupt data.
pub(crate) fn checked_version(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        reason: format!("negative version {v}"),
    })
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> Option<OffsetDateTime> {
    ms.map(from_ms)
}

pub(crate) fn now_ms() -> i64 {
    to_ms(OffsetDateTime::now_utc())
}

/// Versions are u64 in the domain and BIGINT in the database.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn corrupt(what: &str, text: &str) -> StoreError {
    StoreError::Corrupt {
        reason: format!("unknown {what} {text:?}"),
    }
}

pub(crate) fn parse_sync(text: &str) -> Result<SyncStatus> {
    SyncStatus::parse(text).ok_or_else(|| corrupt("sync status", text))
}

pub(crate) fn parse_health(text: &str) -> Result<Health> {
    Health::parse(text).ok_or_else(|| corrupt("health", text))
}

pub(crate) fn parse_origin(text: &str) -> Result<AppOrigin> {
    match text {
        "Managed" => Ok(AppOrigin::Managed),
        "Autonomous" => Ok(AppOrigin::Autonomous),
        _ => Err(corrupt("origin", text)),
    }
}

pub(crate) fn phase_str(phase: OperationPhase) -> &'static str {
    match phase {
        OperationPhase::Running => "Running",
        OperationPhase::Succeeded => "Succeeded",
        OperationPhase::Failed => "Failed",
        OperationPhase::Error => "Error",
        OperationPhase::Terminating => "Terminating",
    }
}

pub(crate) fn parse_phase(text: &str) -> Result<Option<OperationPhase>> {
    Ok(match text {
        "" => None,
        "Running" => Some(OperationPhase::Running),
        "Succeeded" => Some(OperationPhase::Succeeded),
        "Failed" => Some(OperationPhase::Failed),
        "Error" => Some(OperationPhase::Error),
        "Terminating" => Some(OperationPhase::Terminating),
        _ => return Err(corrupt("operation phase", text)),
    })
}

/// `ALL`, `as_str` and `parse` of an enum stored as its variants' names.
macro_rules! stored_by_name {
    ($enum:ident: $($variant:ident),+) => {
        impl $enum {
            pub const ALL: [Self; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == text)
            }
        }
    };
}

stored_by_name!(ConnectionKind: Pending, Connected, Stale, Disconnected, Revoked);
stored_by_name!(CommandOutcome: Pending, Delivered, Running, Succeeded, Failed, Expired, Unsupported, Rejected);
stored_by_name!(EventSeverity: Normal, Warning);

pub(crate) fn parse_connection(text: &str) -> Result<ConnectionKind> {
    ConnectionKind::parse(text).ok_or_else(|| corrupt("connection state", text))
}

pub(crate) fn parse_outcome(text: &str) -> Result<CommandOutcome> {
    CommandOutcome::parse(text).ok_or_else(|| corrupt("command outcome", text))
}

pub(crate) fn parse_severity(text: &str) -> Result<EventSeverity> {
    EventSeverity::parse(text).ok_or_else(|| corrupt("event severity", text))
}

impl CommandOutcome {
    /// Whether the command reached a final outcome.
    pub fn is_finished(self) -> bool {
        self.stage() == 3
    }

    /// Pending < Delivered < Running < finished: an update never moves a
    /// command to a lower stage, and nothing moves a finished one.
    pub fn stage(self) -> u8 {
        match self {
            Self::Pending => 0,
            Self::Delivered => 1,
            Self::Running => 2,
            _ => 3,
        }
    }
}

/// The stored operation phase of a status (empty without an operation).
pub(crate) fn phase_of(status: &edgecd_core::app::ApplicationStatus) -> &'static str {
    status
        .operation_state
        .as_ref()
        .map_or("", |o| phase_str(o.phase))
}

/// Number of conditions of an error type (Argo CD's `*Error` condition types).
pub(crate) fn error_conditions(status: &edgecd_core::app::ApplicationStatus) -> i32 {
    let n = status
        .conditions
        .iter()
        .filter(|c| c.kind.ends_with("Error"))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An app as the set-based status ingest looks it up, by (project, name).
#[derive(Debug, Clone)]
pub(crate) struct ReportedApp {
    pub id: i64,
    pub cluster: String,
    pub origin: AppOrigin,
    pub status_version: u64,
}

/// What to write for a batch's managed-app reports.
#[derive(Debug, Default)]
pub(crate) struct ManagedWrites<'a> {
    /// The newest applicable report per app id, ordered by id.
    pub newest: Vec<(i64, &'a super::model::StatusReport)>,
    /// Apps reported with a stale status (stamped with a snapshot id only).
    pub stale: Vec<i64>,
}

/// Applies the ingest rules to the managed-app reports of a batch, in batch
/// order, as if they were stored one by one: unknown apps, apps of another
/// cluster and autonomous apps are refused; a status version not above the
/// stored (or an earlier report's) one is stale.
pub(crate) fn plan_managed_reports<'a>(
    cluster: &str,
    reports: &[&'a super::model::StatusReport],
    mut known: std::collections::HashMap<(String, String), ReportedApp>,
    outcome: &mut super::model::IngestOutcome,
) -> ManagedWrites<'a> {
    let mut newest = std::collections::BTreeMap::new();
    let mut stale = std::collections::BTreeSet::new();
    for report in reports {
        let key = (report.project.clone(), report.name.clone());
        let Some(app) = known
            .get_mut(&key)
            .filter(|app| app.cluster == cluster && app.origin == AppOrigin::Managed)
        else {
            outcome.rejected += 1;
            continue;
        };
        if report.status.status_version <= app.status_version {
            outcome.stale += 1;
            stale.insert(app.id);
            continue;
        }
        app.status_version = report.status.status_version;
        newest.insert(app.id, *report);
        outcome.applied += 1;
    }
    ManagedWrites {
        stale: stale
            .into_iter()
            .filter(|id| !newest.contains_key(id))
            .collect(),
        newest: newest.into_iter().collect(),
    }
}
