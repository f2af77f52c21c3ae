//! What the simulated fleet saw, written as it happens: the newest status version of each app the hub acknowledged, the cluster's own current version, every command executed (and redelivered), and each stream's losses and resyncs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shared by every simulated spoke and read by the checker.
#[derive(Debug)]
pub struct Journal {
    /// Per app (global index): the newest version the hub acknowledged.
    acked: Vec<AtomicU64>,
    /// Per app: the version the cluster shows now.
    current: Vec<AtomicU64>,
    /// Per cluster index: changes not yet acknowledged.
    pending: Vec<AtomicBool>,
    /// Command id → times delivered (1: executed once; more: redelivered and deduplicated).
    commands: Mutex<BTreeMap<String, u32>>,
    /// Clusters whose stream is up and caught up since their last loss.
    resynced: Mutex<BTreeSet<String>>,
    /// Time from a stream's loss to its resync (stream up, everything since acknowledged), one entry per loss.
    recoveries: Mutex<Vec<Duration>>,
    /// Time from a stream's loss to the hub's `Welcome` on a new stream, one entry per loss.
    reconnects: Mutex<Vec<Duration>>,
    /// Every `Welcome`: (cluster, when).
    welcomes: Mutex<Vec<(String, Instant)>>,
    losses: AtomicU64,
    /// Why streams were lost (a short form of the error), and how often.
    loss_causes: Mutex<BTreeMap<String, u64>>,
}

impl Journal {
    pub fn new(apps: usize, clusters: usize) -> Self {
        Self {
            acked: (0..apps).map(|_| AtomicU64::new(0)).collect(),
            current: (0..apps).map(|_| AtomicU64::new(1)).collect(),
            pending: (0..clusters).map(|_| AtomicBool::new(true)).collect(),
            commands: Mutex::default(),
            resynced: Mutex::default(),
            recoveries: Mutex::default(),
            reconnects: Mutex::default(),
            welcomes: Mutex::default(),
            losses: AtomicU64::new(0),
            loss_causes: Mutex::default(),
        }
    }

    pub fn acknowledged(&self, app: usize, version: u64) {
        if let Some(slot) = self.acked.get(app) {
            slot.fetch_max(version, Ordering::SeqCst);
        }
    }

    pub fn changed(&self, app: usize, version: u64) {
        if let Some(slot) = self.current.get(app) {
            slot.fetch_max(version, Ordering::SeqCst);
        }
    }

    pub fn set_pending(&self, cluster: usize, pending: bool) {
        if let Some(slot) = self.pending.get(cluster) {
            slot.store(pending, Ordering::SeqCst);
        }
    }

    /// Whether every cluster's changes are acknowledged.
    pub fn drained(&self) -> bool {
        self.pending.iter().all(|p| !p.load(Ordering::SeqCst))
    }

    pub fn acked_version(&self, app: usize) -> u64 {
        self.acked.get(app).map_or(0, |v| v.load(Ordering::SeqCst))
    }

    pub fn current_version(&self, app: usize) -> u64 {
        self.current
            .get(app)
            .map_or(0, |v| v.load(Ordering::SeqCst))
    }

    pub fn executed(&self, id: &str) {
        *lock(&self.commands).entry(id.to_owned()).or_default() += 1;
    }

    pub fn redelivered(&self, id: &str) {
        self.executed(id);
    }

    /// Command id → deliveries.
    pub fn commands(&self) -> BTreeMap<String, u32> {
        lock(&self.commands).clone()
    }

    pub fn disconnected(&self, cluster: &str, cause: String) {
        self.losses.fetch_add(1, Ordering::SeqCst);
        *lock(&self.loss_causes).entry(cause).or_default() += 1;
        lock(&self.resynced).remove(cluster);
    }

    /// The stream of `cluster` is up with nothing left to send; `lost_at` is when it was lost, if it was.
    pub fn resynced(&self, cluster: &str, lost_at: Option<Instant>) {
        lock(&self.resynced).insert(cluster.to_owned());
        if let Some(at) = lost_at {
            lock(&self.recoveries).push(at.elapsed());
        }
    }

    /// A lost stream is back: `after` since the loss.
    pub fn reconnected(&self, after: Duration) {
        lock(&self.reconnects).push(after);
    }

    /// The hub welcomed `cluster` on a stream (its first, or a reconnect).
    pub fn welcomed(&self, cluster: &str) {
        lock(&self.welcomes).push((cluster.to_owned(), Instant::now()));
    }

    /// When `cluster` was first welcomed at or after `since`.
    pub fn welcomed_after(&self, cluster: &str, since: Instant) -> Option<Instant> {
        lock(&self.welcomes)
            .iter()
            .find(|(c, at)| c == cluster && *at >= since)
            .map(|(_, at)| *at)
    }

    /// Loss-to-Welcome times so far.
    pub fn reconnects(&self) -> Vec<Duration> {
        lock(&self.reconnects).clone()
    }

    pub fn resynced_count(&self) -> usize {
        lock(&self.resynced).len()
    }

    /// Why streams were lost, and how often.
    pub fn loss_causes(&self) -> BTreeMap<String, u64> {
        lock(&self.loss_causes).clone()
    }

    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::SeqCst)
    }

    /// Loss-to-resync times so far.
    pub fn recoveries(&self) -> Vec<Duration> {
        lock(&self.recoveries).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
