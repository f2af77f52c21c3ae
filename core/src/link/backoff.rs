//! Jittered exponential backoff for reconnects and retries, honouring a peer's retry-after hint and resetting after a healthy session.

use std::time::Duration;

use rand::Rng;

/// How a connection attempt ended, as the reconnect policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// No working session: the connection, TLS or handshake failed, or the peer refused before its
    /// Welcome (a `GoAway` in place of Welcome included). `retry_after` (from the peer) is a floor.
    Failed { retry_after: Option<Duration> },
    /// A session was established (Welcome received) and ended after `lasted` without a hint: the stream
    /// broke or closed. A session that lasted at least the policy's `healthy_after` forgets earlier
    /// failures; a shorter one counts as one more failure (a peer that accepts and drops at once is not
    /// reconnected to in a tight loop).
    Ended { lasted: Duration },
    /// The peer ended an established session on purpose and asked us to come back (`GoAway` draining or
    /// replaced): earlier failures are forgotten and `retry_after`, when given, is the delay (spread by up
    /// to 20 %), otherwise the first step.
    Redirected { retry_after: Option<Duration> },
}

/// Exponential backoff with "equal jitter": each delay is half the capped
/// exponential step plus a random part of up to the other half, so a fleet
/// of spokes that lost the hub at the same moment does not reconnect in
/// lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    factor: u32,
    attempt: u32,
    healthy_after: Duration,
}

impl Backoff {
    /// Sessions count as healthy after [`Self::DEFAULT_HEALTHY_AFTER`]; see [`Self::with_healthy_after`].
    pub fn new(base: Duration, max: Duration, factor: u32) -> Self {
        Self {
            base,
            max,
            factor: factor.max(1),
            attempt: 0,
            healthy_after: Self::DEFAULT_HEALTHY_AFTER,
        }
    }

    /// How long an established session must have run to reset the backoff (one default heartbeat
    /// interval of the hub link).
    pub const DEFAULT_HEALTHY_AFTER: Duration = Duration::from_secs(10);

    /// The default for spoke reconnects: 500 ms doubling up to 60 s; a session of 10 s or more resets it.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60), 2)
    }

    /// Sets how long an established session must have lasted to forget earlier failures.
    pub fn with_healthy_after(mut self, healthy_after: Duration) -> Self {
        self.healthy_after = healthy_after;
        self
    }

    /// Forget failures (after a connection that worked).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The capped exponential step of the current attempt, without jitter.
    fn step(&self) -> Duration {
        let multiplier = self.factor.saturating_pow(self.attempt);
        self.base.saturating_mul(multiplier).min(self.max)
    }

    /// The next delay; `retry_after` (from the peer) is a floor.
    pub fn next_delay(&mut self, rng: &mut impl Rng, retry_after: Option<Duration>) -> Duration {
        let step = self.step();
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter_nanos = rng.random_range(0..=nanos(half));
        let delay = half + Duration::from_nanos(jitter_nanos);
        match retry_after {
            // Spread reconnects after a hinted delay by up to 20 % more.
            Some(hint) if hint > delay => spread(rng, hint),
            _ => delay,
        }
    }

    /// The delay before reconnecting after `outcome` (see [`SessionOutcome`]).
    pub fn delay_after(&mut self, rng: &mut impl Rng, outcome: SessionOutcome) -> Duration {
        match outcome {
            SessionOutcome::Failed { retry_after } => self.next_delay(rng, retry_after),
            SessionOutcome::Ended { lasted } => {
                if lasted >= self.healthy_after {
                    self.reset();
                }
                self.next_delay(rng, None)
            }
            SessionOutcome::Redirected { retry_after } => {
                self.reset();
                match retry_after {
                    // The peer's hint is the delay, not a floor over a grown backoff.
                    Some(hint) if !hint.is_zero() => spread(rng, hint),
                    _ => self.next_delay(rng, None),
                }
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// `hint` plus up to 20 % more, so that spokes told to come back after the same delay do not all return at once.
fn spread(rng: &mut impl Rng, hint: Duration) -> Duration {
    hint + Duration::from_nanos(rng.random_range(0..=nanos(hint / 5)))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 2);
        let mut last_step = Duration::ZERO;
        for attempt in 0..10u32 {
            let step = Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(1));
            let d = b.next_delay(&mut rng, None);
            assert!(
                d >= step / 2 && d <= step,
                "attempt {attempt}: {d:?} vs {step:?}"
            );
            assert!(step >= last_step);
            last_step = step;
        }
        b.reset();
        assert!(b.next_delay(&mut rng, None) <= Duration::from_millis(100));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::reconnect();
        let hint = Duration::from_secs(30);
        let d = b.next_delay(&mut rng, Some(hint));
        assert!(d >= hint && d <= hint + hint / 5, "{d:?}");
    }

    #[test]
    fn delays_differ_across_spokes() {
        let delays: Vec<_> = (0..20)
            .map(|seed| Backoff::reconnect().next_delay(&mut StdRng::seed_from_u64(seed), None))
            .collect();
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10);
    }

    /// Regression (issue 17, finding 7): a hub drained again and again must not push its spokes' reconnect
    /// delay towards the cap; the hinted delay is honoured as the delay, whatever failed before.
    #[test]
    fn repeated_drains_keep_the_delay_at_the_hint() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut b = Backoff::reconnect();
        // The hub was unreachable for a while: the backoff grew.
        for _ in 0..8 {
            b.delay_after(&mut rng, SessionOutcome::Failed { retry_after: None });
        }
        assert!(b.step() >= Duration::from_secs(60));
        let hint = Duration::from_secs(2);
        for drain in 0..10 {
            let d = b.delay_after(
                &mut rng,
                SessionOutcome::Redirected {
                    retry_after: Some(hint),
                },
            );
            assert!(d >= hint && d <= hint + hint / 5, "drain {drain}: {d:?}");
            assert_eq!(b.attempt(), 0);
        }
        // Without a hint (or "retry at once"): the first step, never a grown one.
        for drain in 0..10 {
            let retry_after = (drain % 2 == 0).then_some(Duration::ZERO);
            let d = b.delay_after(&mut rng, SessionOutcome::Redirected { retry_after });
            assert!(d <= Duration::from_millis(500), "drain {drain}: {d:?}");
        }
    }

    #[test]
    fn a_healthy_session_forgets_failures_and_a_short_one_does_not() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut b = Backoff::reconnect().with_healthy_after(Duration::from_secs(10));
        for _ in 0..6 {
            b.delay_after(&mut rng, SessionOutcome::Failed { retry_after: None });
        }
        // Welcome, then the stream broke after a second: still failing, the delay keeps growing.
        let d = b.delay_after(
            &mut rng,
            SessionOutcome::Ended {
                lasted: Duration::from_secs(1),
            },
        );
        assert!(d >= Duration::from_secs(16), "{d:?}");
        assert_eq!(b.attempt(), 7);
        // A session that ran for a while: back to the first step.
        let d = b.delay_after(
            &mut rng,
            SessionOutcome::Ended {
                lasted: Duration::from_secs(10),
            },
        );
        assert!(d <= Duration::from_millis(500), "{d:?}");
        assert_eq!(b.attempt(), 1);
        // Many healthy sessions in a row never grow it.
        for _ in 0..20 {
            let d = b.delay_after(
                &mut rng,
                SessionOutcome::Ended {
                    lasted: Duration::from_secs(3600),
                },
            );
            assert!(d <= Duration::from_millis(500), "{d:?}");
        }
    }

    #[test]
    fn a_refusal_before_welcome_grows_and_keeps_the_hint_as_a_floor() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut b = Backoff::reconnect();
        let hint = Duration::from_secs(5);
        for _ in 0..3 {
            let d = b.delay_after(
                &mut rng,
                SessionOutcome::Failed {
                    retry_after: Some(hint),
                },
            );
            assert!(d >= hint, "{d:?}");
        }
        assert_eq!(b.attempt(), 3);
        for _ in 0..5 {
            b.delay_after(
                &mut rng,
                SessionOutcome::Failed {
                    retry_after: Some(Duration::ZERO),
                },
            );
        }
        assert!(
            b.delay_after(&mut rng, SessionOutcome::Failed { retry_after: None })
                >= Duration::from_secs(30)
        );
    }
}
