//! Several PostgreSQL hosts in one URL (libpq's multi-host form, `postgres://user@h1:5432,h2:5432/db`): the hub connects to the host that accepts writes and follows the primary when it moves (a standby promoted after a failover) without a restart.
//!
//! ```text
//!  URL ─► split_hosts ─► one PgConnectOptions per host ─► find_primary (connects, `pg_is_in_recovery()`)
//!  watch (every CHECK): the pools' server still a primary? ─ no ─► find_primary ─► set_connect_options
//!      on both pools + `moved_at` ─► before_acquire drops every connection opened before the move
//! ```

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};

use super::StoreError;

/// How often the primary is checked, and how long one probe of a host may take.
const CHECK: Duration = Duration::from_secs(1);

/// Splits a multi-host URL into one single-host URL per host, in order; a single-host URL is returned as is.
/// `target_session_attrs` is dropped: the hub always needs the primary (`read-write`).
pub(crate) fn split_hosts(url: &str) -> Result<Vec<String>, StoreError> {
    let authority_end = url
        .split_once("://")
        .map(|(_, rest)| rest.find(['/', '?']).unwrap_or(rest.len()));
    let several = url
        .split_once("://")
        .zip(authority_end)
        .is_some_and(|((_, rest), end)| {
            let authority = &rest[..end];
            authority[authority.rfind('@').map_or(0, |at| at + 1)..].contains(',')
        });
    if !several {
        // One host (or none, as a Unix-socket URL `postgres:///db?host=/run/postgresql` has): as given.
        return Ok(vec![url.to_owned()]);
    }
    let invalid = |why: &str| StoreError::Invalid {
        reason: format!("malformed PostgreSQL URL: {why}"),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected postgres://…"))?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let tail = drop_param(tail, "target_session_attrs");
    let hosts: Vec<&str> = hosts.split(',').collect();
    if hosts.iter().any(|h| h.trim().is_empty()) {
        return Err(invalid("an empty host in the host list"));
    }
    Ok(hosts
        .into_iter()
        .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
        .collect())
}

/// `tail` (`/db?a=1&b=2`) without query parameter `name`.
fn drop_param(tail: &str, name: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some(name))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Milliseconds since a process-wide origin (for the atomics below).
fn now_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    u64::try_from(ORIGIN.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The hosts and which one is the primary the pools use. (No `Debug`: the connect options hold the password.)
pub(crate) struct Primary {
    hosts: Vec<PgConnectOptions>,
    current: AtomicUsize,
    /// When the pools last moved to another host (`now_ms`; 0: never).
    moved_at: Arc<AtomicU64>,
}

impl Primary {
    /// Probes the hosts until one accepts writes (up to `limit`; then the first host, and the pools' own
    /// retries report the outage).
    pub(crate) async fn find(hosts: Vec<PgConnectOptions>, limit: Duration) -> Self {
        let start = Instant::now();
        let current = loop {
            if let Some(i) = probe(&hosts).await {
                break i;
            }
            if start.elapsed() >= limit {
                tracing::warn!(
                    hosts = hosts.len(),
                    "No PostgreSQL host accepts writes yet; starting with the first."
                );
                break 0;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        Self {
            hosts,
            current: AtomicUsize::new(current),
            moved_at: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn options(&self) -> PgConnectOptions {
        self.hosts[self.current.load(Ordering::SeqCst) % self.hosts.len()].clone()
    }

    /// For `PoolOptions::before_acquire`: whether a connection of `age` was opened after the last move.
    pub(crate) fn fresh_check(&self) -> impl Fn(Duration) -> bool + Send + Sync + 'static {
        let moved_at = Arc::clone(&self.moved_at);
        move |age| {
            let moved = moved_at.load(Ordering::SeqCst);
            let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
            moved == 0 || now_ms().saturating_sub(age) >= moved
        }
    }

    /// Follows the primary: every `CHECK`, asks the pools' server whether it is still one; if not (or it is
    /// gone), finds the host that is and points both pools at it.
    pub(crate) fn watch(self: Arc<Self>, pools: [PgPool; 2]) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if pools[0].is_closed() {
                    return;
                }
                let current = self.current.load(Ordering::SeqCst);
                // Asked through the pool: no new connection while all is well.
                let still = tokio::time::timeout(
                    CHECK,
                    sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
                        .fetch_one(&pools[1]),
                )
                .await;
                if matches!(still, Ok(Ok(false))) {
                    continue;
                }
                let Some(found) = probe(&self.hosts).await else {
                    continue;
                };
                if found == current {
                    continue;
                }
                self.current.store(found, Ordering::SeqCst);
                self.moved_at.store(now_ms().max(1), Ordering::SeqCst);
                let options = self.options();
                for pool in &pools {
                    pool.set_connect_options(options.clone());
                }
                tracing::warn!(
                    from = current,
                    to = found,
                    host = %options.get_host(),
                    port = options.get_port(),
                    "The PostgreSQL primary moved; the hub now uses the new one."
                );
            }
        })
    }
}

/// The first host that accepts writes.
async fn probe(hosts: &[PgConnectOptions]) -> Option<usize> {
    for (i, host) in hosts.iter().enumerate() {
        if writable(host).await == Some(true) {
            return Some(i);
        }
    }
    None
}

/// Whether `host` is up and a primary (`None`: unreachable within `CHECK`).
async fn writable(host: &PgConnectOptions) -> Option<bool> {
    let check = async {
        let mut conn = PgConnection::connect_with(host).await.ok()?;
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let _ = conn.close().await;
        Some(!in_recovery)
    };
    tokio::time::timeout(CHECK, check).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_host_url_is_one_url_per_host_with_the_rest_kept() {
        assert_eq!(
            split_hosts("postgres://hub:pw@db-a:5432,db-b:5433/fleet?sslmode=require&target_session_attrs=read-write")
                .unwrap(),
            vec![
                "postgres://hub:pw@db-a:5432/fleet?sslmode=require",
                "postgres://hub:pw@db-b:5433/fleet?sslmode=require",
            ]
        );
        assert_eq!(
            split_hosts("postgresql://10.0.0.1,10.0.0.2/db").unwrap(),
            vec!["postgresql://10.0.0.1/db", "postgresql://10.0.0.2/db"]
        );
        // One host, or none (a Unix socket): exactly as given.
        assert_eq!(
            split_hosts("postgres://u@h/db?target_session_attrs=any").unwrap(),
            vec!["postgres://u@h/db?target_session_attrs=any"]
        );
        assert_eq!(
            split_hosts("postgres:///edgecd?host=/var/run/postgresql").unwrap(),
            vec!["postgres:///edgecd?host=/var/run/postgresql"]
        );
        assert_eq!(
            split_hosts("postgres://user@/db").unwrap(),
            vec!["postgres://user@/db"]
        );
        // A password may hold '@' and ','; the host list starts after the last '@'.
        assert_eq!(
            split_hosts("postgres://u:p@,x@h1,h2/db").unwrap(),
            vec!["postgres://u:p@,x@h1/db", "postgres://u:p@,x@h2/db"]
        );
        assert!(split_hosts("postgres://u@h1,,h2/db").is_err());
    }
}
