//! Counters of the git layer (plain atomics), read as a snapshot by whoever exports metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters; cheap to update from any thread.
#[derive(Debug, Default)]
pub struct GitMetrics {
    fetches: AtomicU64,
    fetch_failures: AtomicU64,
    shallow_fallbacks: AtomicU64,
    unshallow_fetches: AtomicU64,
    fetch_dedup_hits: AtomicU64,
    received_bytes: AtomicU64,
    ls_remotes: AtomicU64,
    ls_remote_dedup_hits: AtomicU64,
    ls_remote_cache_hits: AtomicU64,
    checkouts_written: AtomicU64,
    checkouts_reused: AtomicU64,
    checkout_bytes: AtomicU64,
    cache_resets: AtomicU64,
}

/// A point-in-time copy of [`GitMetrics`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GitMetricsSnapshot {
    /// Fetches that went to the network (including failed ones).
    pub fetches: u64,
    pub fetch_failures: u64,
    /// Shallow fetches that failed and were redone as full fetches.
    pub shallow_fallbacks: u64,
    /// Fetches that completed a shallow repository because a revision was not among the fetched tips.
    pub unshallow_fetches: u64,
    /// Requests that joined a fetch already in flight instead of starting one.
    pub fetch_dedup_hits: u64,
    pub received_bytes: u64,
    /// `ls-remote` connections made.
    pub ls_remotes: u64,
    pub ls_remote_dedup_hits: u64,
    /// Polls answered from the short-lived advertised-refs cache.
    pub ls_remote_cache_hits: u64,
    pub checkouts_written: u64,
    pub checkouts_reused: u64,
    /// Bytes of files written into checkouts.
    pub checkout_bytes: u64,
    /// Cache repositories found corrupt and fetched again from scratch.
    pub cache_resets: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Fetches,
    FetchFailures,
    ShallowFallbacks,
    UnshallowFetches,
    FetchDedupHits,
    ReceivedBytes,
    LsRemotes,
    LsRemoteDedupHits,
    LsRemoteCacheHits,
    CheckoutsWritten,
    CheckoutsReused,
    CheckoutBytes,
    CacheResets,
}

impl GitMetrics {
    pub(crate) fn add(&self, counter: Counter, value: u64) {
        let cell = match counter {
            Counter::Fetches => &self.fetches,
            Counter::FetchFailures => &self.fetch_failures,
            Counter::ShallowFallbacks => &self.shallow_fallbacks,
            Counter::UnshallowFetches => &self.unshallow_fetches,
            Counter::FetchDedupHits => &self.fetch_dedup_hits,
            Counter::ReceivedBytes => &self.received_bytes,
            Counter::LsRemotes => &self.ls_remotes,
            Counter::LsRemoteDedupHits => &self.ls_remote_dedup_hits,
            Counter::LsRemoteCacheHits => &self.ls_remote_cache_hits,
            Counter::CheckoutsWritten => &self.checkouts_written,
            Counter::CheckoutsReused => &self.checkouts_reused,
            Counter::CheckoutBytes => &self.checkout_bytes,
            Counter::CacheResets => &self.cache_resets,
        };
        cell.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn inc(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn snapshot(&self) -> GitMetricsSnapshot {
        let get = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        GitMetricsSnapshot {
            fetches: get(&self.fetches),
            fetch_failures: get(&self.fetch_failures),
            shallow_fallbacks: get(&self.shallow_fallbacks),
            unshallow_fetches: get(&self.unshallow_fetches),
            fetch_dedup_hits: get(&self.fetch_dedup_hits),
            received_bytes: get(&self.received_bytes),
            ls_remotes: get(&self.ls_remotes),
            ls_remote_dedup_hits: get(&self.ls_remote_dedup_hits),
            ls_remote_cache_hits: get(&self.ls_remote_cache_hits),
            checkouts_written: get(&self.checkouts_written),
            checkouts_reused: get(&self.checkouts_reused),
            checkout_bytes: get(&self.checkout_bytes),
            cache_resets: get(&self.cache_resets),
        }
    }
}
