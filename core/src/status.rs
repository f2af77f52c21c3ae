//! Sync status, health (with Argo CD's roll-up order) and cluster connection states.

use std::fmt;
use std::time::{Duration, SystemTime};

/// Whether live state matches git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    Unknown,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::OutOfSync => "OutOfSync",
            Self::Unknown => "Unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Synced, Self::OutOfSync, Self::Unknown]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health of a resource or an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Health {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

impl Health {
    pub const ALL: [Self; 6] = [
        Self::Healthy,
        Self::Progressing,
        Self::Degraded,
        Self::Suspended,
        Self::Missing,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Suspended => "Suspended",
            Self::Missing => "Missing",
            Self::Unknown => "Unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
    }

    /// Severity used to roll resource health up to the app, as Argo CD does:
    /// the worst resource wins (Healthy < Suspended < Progressing < Missing <
    /// Degraded < Unknown).
    pub fn severity(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Suspended => 1,
            Self::Progressing => 2,
            Self::Missing => 3,
            Self::Degraded => 4,
            Self::Unknown => 5,
        }
    }

    /// Rolls resource health up to an application; an app with no
    /// resources is Healthy.
    pub fn roll_up(resources: impl IntoIterator<Item = Health>) -> Health {
        resources
            .into_iter()
            .max_by_key(|h| h.severity())
            .unwrap_or(Health::Healthy)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cluster's link to the hub, as the hub sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Registered, never connected.
    Pending,
    Connected {
        since: SystemTime,
    },
    /// The stream looks open but heartbeats stopped at `since`. Reported app
    /// health is no longer trusted.
    Stale {
        since: SystemTime,
    },
    Disconnected {
        since: SystemTime,
    },
    Revoked {
        since: SystemTime,
    },
}

impl ConnectionState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Connected { .. } => "Connected",
            Self::Stale { .. } => "Stale",
            Self::Disconnected { .. } => "Disconnected",
            Self::Revoked { .. } => "Revoked",
        }
    }

    /// Whether the apps' last reported health can be shown as current.
    pub fn is_trustworthy(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }
}

/// Derives the connection state of a cluster from the facts the hub keeps:
/// whether a stream is open and when the last message arrived.
#[derive(Debug, Clone, Copy)]
pub struct StalenessPolicy {
    /// A connected cluster whose last message is older than this is Stale.
    pub stale_after: Duration,
}

impl Default for StalenessPolicy {
    fn default() -> Self {
        // Three missed heartbeats at the default 10 s interval.
        Self {
            stale_after: Duration::from_secs(30),
        }
    }
}

impl StalenessPolicy {
    /// `last_seen` is when the stream last carried a message.
    pub fn state(
        &self,
        stream_open_since: Option<SystemTime>,
        last_seen: SystemTime,
        now: SystemTime,
    ) -> ConnectionState {
        match stream_open_since {
            None => ConnectionState::Disconnected { since: last_seen },
            Some(since) => {
                let silent = now.duration_since(last_seen).unwrap_or(Duration::ZERO);
                if silent > self.stale_after {
                    ConnectionState::Stale { since: last_seen }
                } else {
                    ConnectionState::Connected { since }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_health_wins() {
        use Health::*;
        assert_eq!(
            Health::roll_up([Healthy, Progressing, Healthy]),
            Progressing
        );
        assert_eq!(Health::roll_up([Healthy, Degraded, Missing]), Degraded);
        assert_eq!(Health::roll_up([Suspended, Healthy]), Suspended);
        assert_eq!(Health::roll_up([]), Healthy);
        assert_eq!(Health::roll_up([Degraded, Unknown]), Unknown);
    }

    #[test]
    fn parse_round_trips() {
        for h in Health::ALL {
            assert_eq!(Health::parse(h.as_str()), Some(h));
        }
        assert_eq!(SyncStatus::parse("outofsync"), Some(SyncStatus::OutOfSync));
        assert_eq!(SyncStatus::parse("nope"), None);
    }

    #[test]
    fn silence_makes_a_cluster_stale_not_healthy() {
        let policy = StalenessPolicy::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let connected = policy.state(
            Some(t0),
            t0 + Duration::from_secs(5),
            t0 + Duration::from_secs(20),
        );
        assert_eq!(connected, ConnectionState::Connected { since: t0 });
        assert!(connected.is_trustworthy());
        let last = t0 + Duration::from_secs(5);
        let stale = policy.state(Some(t0), last, t0 + Duration::from_secs(60));
        assert_eq!(stale, ConnectionState::Stale { since: last });
        assert!(!stale.is_trustworthy());
        let gone = policy.state(None, last, t0 + Duration::from_secs(60));
        assert_eq!(gone, ConnectionState::Disconnected { since: last });
    }
}
