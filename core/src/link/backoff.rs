//! Jittered exponential backoff for reconnects and retries, honouring a peer's retry-after hint.

use std::time::Duration;

use rand::Rng;

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
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, factor: u32) -> Self {
        Self {
            base,
            max,
            factor: factor.max(1),
            attempt: 0,
        }
    }

    /// The default for spoke reconnects: 500 ms doubling up to 60 s.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(60), 2)
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
        let jitter_nanos = rng.random_range(0..=half.as_nanos().min(u128::from(u64::MAX)) as u64);
        let delay = half + Duration::from_nanos(jitter_nanos);
        match retry_after {
            // Spread reconnects after a hinted delay by up to 20 % more.
            Some(hint) if hint > delay => {
                let spread = (hint / 5).as_nanos().min(u128::from(u64::MAX)) as u64;
                hint + Duration::from_nanos(rng.random_range(0..=spread))
            }
            _ => delay,
        }
    }
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
}
