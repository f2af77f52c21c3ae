//! Turns for handshakes (`LinkConfig::max_handshakes`), and when to come back for one: a stream refused a turn is told how long the streams already waiting will take at the pace handshakes have been going, so a reconnect storm comes back spread over that time instead of all at once again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shortest and longest `retry-after` given to a stream refused a turn.
const RETRY_AFTER: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(120));
/// What a turn is assumed to take before any was measured.
const FIRST_GUESS: Duration = Duration::from_millis(100);

/// The replica's handshake turns.
#[derive(Debug)]
pub(crate) struct HandshakeTurns {
    semaphore: Arc<Semaphore>,
    turns: usize,
    /// Streams waiting for a turn now.
    waiting: AtomicUsize,
    /// How long a turn is held, in microseconds: an exponentially weighted mean (weight 1/16), 0 before any.
    mean_us: AtomicU64,
}

/// A turn, held until the session has sent Welcome; how long it was held is measured when it is dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _permit: OwnedSemaphorePermit,
    started: Instant,
    turns: Arc<HandshakeTurns>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let took = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // Lost updates between racing drops only weaken the mean's memory a little.
        let mean = self.turns.mean_us.load(Ordering::Relaxed);
        let next = if mean == 0 {
            took
        } else {
            mean - mean / 16 + took / 16
        };
        self.turns.mean_us.store(next.max(1), Ordering::Relaxed);
    }
}

/// One stream waiting for a turn, counted in [`HandshakeTurns::waiting`] until it leaves or is dropped.
struct InLine<'a> {
    waiting: &'a AtomicUsize,
    left: bool,
}

impl<'a> InLine<'a> {
    fn join(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Self {
            waiting,
            left: false,
        }
    }

    /// Leaves the line; how many waited, this one included.
    fn leave(mut self) -> usize {
        self.left = true;
        self.waiting.fetch_sub(1, Ordering::Relaxed)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if !self.left {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl HandshakeTurns {
    pub(crate) fn new(turns: usize) -> Arc<Self> {
        let turns = turns.max(1);
        Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(turns)),
            turns,
            waiting: AtomicUsize::new(0),
            mean_us: AtomicU64::new(0),
        })
    }

    /// Waits up to `patience` for a turn; else, how long the caller should wait before trying again.
    pub(crate) async fn take(self: &Arc<Self>, patience: Duration) -> Result<Turn, Duration> {
        // Counted while waiting, also when the caller gives up (its call dropped): a guard, not a decrement
        // after the wait.
        let in_line = InLine::join(&self.waiting);
        let permit =
            tokio::time::timeout(patience, Arc::clone(&self.semaphore).acquire_owned()).await;
        let waiting = in_line.leave();
        match permit {
            Ok(Ok(permit)) => Ok(Turn {
                _permit: permit,
                started: Instant::now(),
                turns: Arc::clone(self),
            }),
            _ => {
                Err(self.retry_after(waiting, rand::Rng::random_range(&mut rand::rng(), 0.5..1.5)))
            }
        }
    }

    /// When to come back, `waiting` streams waiting: the time they take, `turns` at a time, at the mean
    /// measured pace, scaled by `jitter` (spread, so those refused together do not return together).
    fn retry_after(&self, waiting: usize, jitter: f64) -> Duration {
        let mean = match self.mean_us.load(Ordering::Relaxed) {
            0 => FIRST_GUESS,
            us => Duration::from_micros(us),
        };
        let drain = mean.as_secs_f64() * waiting as f64 / self.turns as f64;
        Duration::from_secs_f64(
            (drain * jitter).clamp(RETRY_AFTER.0.as_secs_f64(), RETRY_AFTER.1.as_secs_f64()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_stream_is_told_when_those_ahead_will_have_had_their_turn() {
        let turns = HandshakeTurns::new(2);
        assert_eq!(
            turns.retry_after(10, 1.0),
            RETRY_AFTER.0,
            "nothing measured: a short guess"
        );
        // Turns that take 400 ms: 1,000 streams ahead, two at a time, take 200 s; capped at 120 s.
        turns.mean_us.store(400_000, Ordering::Relaxed);
        assert_eq!(turns.retry_after(100, 1.0), Duration::from_secs(20));
        assert_eq!(turns.retry_after(100, 0.5), Duration::from_secs(10));
        assert_eq!(turns.retry_after(1_000, 1.0), RETRY_AFTER.1);

        let first = turns.take(Duration::from_millis(10)).await.unwrap();
        let second = turns.take(Duration::from_millis(10)).await.unwrap();
        let refused = turns.take(Duration::from_millis(10)).await.unwrap_err();
        assert!(refused >= RETRY_AFTER.0, "{refused:?}");
        drop((first, second));
        assert!(
            turns.take(Duration::from_millis(10)).await.is_ok(),
            "a turn given back is free"
        );
        assert!(
            turns.mean_us.load(Ordering::Relaxed) < 400_000,
            "short turns bring the mean down"
        );

        // A caller that gives up while waiting (its call dropped) leaves the line.
        let held = [
            turns.take(Duration::from_millis(10)).await.unwrap(),
            turns.take(Duration::from_millis(10)).await.unwrap(),
        ];
        let given_up = tokio::time::timeout(
            Duration::from_millis(20),
            turns.take(Duration::from_secs(60)),
        )
        .await;
        assert!(given_up.is_err());
        assert_eq!(
            turns.waiting.load(Ordering::Relaxed),
            0,
            "nobody is left counted in line"
        );
        drop(held);
    }
}
