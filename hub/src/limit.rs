//! Rate limits on unauthenticated attempts (`Login`, `Enroll`): keyed token buckets per peer IP and per name (account or bootstrap-token id), with a clock that tests can drive.
//!
//! ```text
//!   attempt ─► admit(ip, name): take a token from both buckets ─► refused: Limited { retry_after }
//!                  │
//!                  └─► attempt runs ─► success: refund (normal use is never slowed) · failure: the token stays spent
//! ```
//!
//! A bucket holds `burst` tokens and refills one every `period / burst`; a full bucket is forgotten, so the
//! table only holds keys with recent failures.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys remembered before full buckets are dropped.
const PRUNE_AT: usize = 10_000;

/// The time source of the limiters.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
}

/// The monotonic system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    offset: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `burst` attempts at once, refilled at `burst` per `period` (written `BURST/PERIOD`, e.g. `10/1m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period: Duration,
}

/// Why a rate is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {text:?}: expected BURST/PERIOD (e.g. 10/1m, 5/30s) or off")]
pub struct RateError {
    pub text: String,
}

impl Rate {
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }

    /// Parses `BURST/PERIOD` (`PERIOD` in Go duration syntax: `30s`, `1m`, `1h30m`); `off` (or `0`)
    /// is no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, RateError> {
        let text = text.trim();
        if matches!(text, "off" | "0" | "none") {
            return Ok(None);
        }
        let error = || RateError {
            text: text.to_owned(),
        };
        let (burst, period) = text.split_once('/').ok_or_else(error)?;
        let burst: u32 = burst.trim().parse().map_err(|_| error())?;
        let period = edgecd_core::duration::GoDuration::parse(period.trim())
            .map_err(|_| error())?
            .0;
        if burst == 0 || period.is_zero() {
            return Err(error());
        }
        Ok(Some(Self { burst, period }))
    }

    /// Time for one token to come back.
    fn refill(&self) -> Duration {
        self.period / self.burst.max(1)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.burst, self.period.as_secs_f64())
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
#[derive(Debug)]
pub struct KeyedLimiter {
    rate: Rate,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyedLimiter {
    pub fn new(rate: Rate, clock: Arc<dyn Clock>) -> Self {
        Self {
            rate,
            clock,
            buckets: Mutex::default(),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let per_second = f64::from(self.rate.burst) / self.rate.period.as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * per_second).min(f64::from(self.rate.burst)),
            at: now,
        }
    }

    /// Takes a token for `key`, or says how long until one is back.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            let burst = f64::from(self.rate.burst);
            buckets.retain(|_, b| {
                let b = self.refilled(*b, now);
                b.tokens < burst
            });
        }
        let full = Bucket {
            tokens: f64::from(self.rate.burst),
            at: now,
        };
        let bucket = buckets.get(key).map_or(full, |b| self.refilled(*b, now));
        if bucket.tokens >= 1.0 {
            buckets.insert(
                key.to_owned(),
                Bucket {
                    tokens: bucket.tokens - 1.0,
                    at: now,
                },
            );
            Ok(())
        } else {
            buckets.insert(key.to_owned(), bucket);
            let missing = 1.0 - bucket.tokens;
            Err(self.rate.refill().mul_f64(missing.clamp(0.0, 1.0)))
        }
    }

    /// Gives back a token taken for `key` (the attempt succeeded).
    pub fn refund(&self, key: &str) {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get(key).copied() {
            let mut bucket = self.refilled(bucket, now);
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.rate.burst));
            if bucket.tokens >= f64::from(self.rate.burst) {
                buckets.remove(key);
            } else {
                buckets.insert(key.to_owned(), bucket);
            }
        }
    }
}

/// The limits of one kind of attempt: per peer IP and per name.
#[derive(Debug, Clone)]
pub struct AttemptLimits {
    /// Per peer IP address; `None`: unlimited.
    pub per_ip: Option<Rate>,
    /// Per name (account name for `Login`, token id for `Enroll`); `None`: unlimited.
    pub per_name: Option<Rate>,
    pub clock: Arc<dyn Clock>,
}

impl AttemptLimits {
    pub fn new(per_ip: Option<Rate>, per_name: Option<Rate>) -> Self {
        Self {
            per_ip,
            per_name,
            clock: Arc::new(SystemClock),
        }
    }

    /// No limits.
    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    /// `Login`'s defaults: 20 failed attempts per IP, then one every 3 s; 10 per account, then one a minute.
    pub fn login_default() -> Self {
        Self::new(
            Some(Rate::new(20, Duration::from_secs(60))),
            Some(Rate::new(10, Duration::from_secs(600))),
        )
    }

    /// `Enroll`'s defaults: 20 failed attempts per IP, then one every 3 s; 5 per token id, then one every
    /// 2 minutes.
    pub fn enroll_default() -> Self {
        Self::new(
            Some(Rate::new(20, Duration::from_secs(60))),
            Some(Rate::new(5, Duration::from_secs(600))),
        )
    }

    /// The same limits on `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// An attempt refused by a limit. The message names the IP or the name, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many failed {what} attempts {from}; retry in {secs}s", secs = retry_after.as_secs().max(1))]
pub struct Limited {
    pub what: &'static str,
    /// `from 10.0.0.1` or `for account alice`.
    pub from: String,
    pub retry_after: Duration,
}

/// The limiters of one kind of attempt.
#[derive(Debug)]
pub struct AttemptLimiter {
    what: &'static str,
    name_kind: &'static str,
    per_ip: Option<KeyedLimiter>,
    per_name: Option<KeyedLimiter>,
}

impl AttemptLimiter {
    /// `what` names the attempt (`login`), `name_kind` its name (`account`).
    pub fn new(what: &'static str, name_kind: &'static str, limits: &AttemptLimits) -> Self {
        let limiter =
            |rate: Option<Rate>| rate.map(|r| KeyedLimiter::new(r, Arc::clone(&limits.clock)));
        Self {
            what,
            name_kind,
            per_ip: limiter(limits.per_ip),
            per_name: limiter(limits.per_name),
        }
    }

    /// Admits an attempt from `ip` for `name`, taking a token from each bucket; refused when either is empty.
    pub fn admit(&self, ip: Option<IpAddr>, name: &str) -> Result<(), Limited> {
        let ip_key = ip.map(|ip| ip.to_string());
        if let (Some(limiter), Some(key)) = (&self.per_ip, &ip_key)
            && let Err(retry_after) = limiter.take(key)
        {
            return Err(Limited {
                what: self.what,
                from: format!("from {key}"),
                retry_after,
            });
        }
        if let Some(limiter) = &self.per_name
            && !name.is_empty()
            && let Err(retry_after) = limiter.take(name)
        {
            // The IP's token is given back: only one bucket is charged for a refused attempt.
            if let (Some(ip_limiter), Some(key)) = (&self.per_ip, &ip_key) {
                ip_limiter.refund(key);
            }
            return Err(Limited {
                what: self.what,
                from: format!("for {} {name}", self.name_kind),
                retry_after,
            });
        }
        Ok(())
    }

    /// The attempt admitted for `ip` and `name` succeeded: its tokens come back.
    pub fn succeeded(&self, ip: Option<IpAddr>, name: &str) {
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            limiter.refund(&ip.to_string());
        }
        if let Some(limiter) = &self.per_name
            && !name.is_empty()
        {
            limiter.refund(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(clock: &Arc<ManualClock>) -> AttemptLimiter {
        let limits = AttemptLimits::new(
            Some(Rate::new(5, Duration::from_secs(50))),
            Some(Rate::new(3, Duration::from_secs(30))),
        )
        .with_clock(Arc::clone(clock) as Arc<dyn Clock>);
        AttemptLimiter::new("login", "account", &limits)
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("10/1m").unwrap(),
            Some(Rate::new(10, Duration::from_secs(60)))
        );
        assert_eq!(Rate::parse("off").unwrap(), None);
        assert!(Rate::parse("10").is_err());
        assert!(Rate::parse("0/1m").is_err());
        assert!(Rate::parse("5/0s").is_err());
        assert!(Rate::parse("x/1m").is_err());
    }

    #[test]
    fn failures_exhaust_the_account_and_refill_over_time() {
        let clock = Arc::new(ManualClock::default());
        let limiter = limiter(&clock);
        for _ in 0..3 {
            limiter.admit(ip(1), "alice").unwrap();
        }
        let refused = limiter.admit(ip(1), "alice").unwrap_err();
        assert_eq!(refused.from, "for account alice");
        assert_eq!(refused.retry_after, Duration::from_secs(10));
        assert_eq!(
            refused.to_string(),
            "too many failed login attempts for account alice; retry in 10s"
        );
        // Another account from another IP is unaffected; the same account from another IP is not.
        limiter.admit(ip(2), "bob").unwrap();
        assert!(limiter.admit(ip(2), "alice").is_err());
        clock.advance(Duration::from_secs(10));
        limiter.admit(ip(1), "alice").unwrap();
        assert!(limiter.admit(ip(1), "alice").is_err());
    }

    #[test]
    fn failures_exhaust_the_ip_for_every_account() {
        let clock = Arc::new(ManualClock::default());
        let limiter = limiter(&clock);
        for name in ["a", "b", "c", "d", "e"] {
            limiter.admit(ip(1), name).unwrap();
        }
        let refused = limiter.admit(ip(1), "f").unwrap_err();
        assert_eq!(refused.from, "from 10.0.0.1");
        limiter.admit(ip(2), "f").unwrap();
    }

    #[test]
    fn successes_are_refunded_so_normal_use_is_never_limited() {
        let clock = Arc::new(ManualClock::default());
        let limiter = limiter(&clock);
        for _ in 0..100 {
            limiter.admit(ip(1), "alice").unwrap();
            limiter.succeeded(ip(1), "alice");
        }
        // A name refused does not charge the IP.
        for _ in 0..3 {
            limiter.admit(ip(3), "carol").unwrap();
        }
        for _ in 0..10 {
            assert!(limiter.admit(ip(3), "carol").is_err());
        }
        limiter.admit(ip(3), "dave").unwrap();
    }
}
