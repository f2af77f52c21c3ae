//! Heartbeats of all the sessions of a replica, written together: one statement about once a second instead of one per spoke heartbeat.
//!
//! A spoke heartbeat only refreshes its cluster's `last_heartbeat` (what the sweeper of silent clusters and
//! the console read); state changes (the handshake, Stale, back from Stale) are still written by the session
//! at once. At 10,000 spokes on a 10 s interval this turns 1,000 single-row commits a second into one
//! statement, which is what a reconnect storm or a slow database needs the database's time for. A heartbeat
//! reaches the store at most [`HeartbeatBook::period`] late, far inside the staleness threshold; a write that
//! arrives after a newer one (a Stale mark, another replica's handshake) changes nothing
//! ([`Store::record_heartbeats`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use time::OffsetDateTime;
use tracing::Instrument;

use super::LinkConfig;
use crate::store::Store;

/// Most clusters written by one statement.
const MAX_PER_STATEMENT: usize = 2_000;

/// Heartbeats waiting to be written, newest per cluster.
#[derive(Debug, Default)]
pub struct HeartbeatBook {
    pending: Mutex<HashMap<String, OffsetDateTime>>,
    writer: AtomicBool,
    /// Held while heartbeats are written, and by a session recording its disconnect
    /// ([`HeartbeatBook::forget`]), so that no heartbeat taken before a disconnect lands after it.
    writing: tokio::sync::Mutex<()>,
}

impl HeartbeatBook {
    /// How often the book is written: once a second, or twice per heartbeat interval when that is shorter.
    pub fn period(config: &LinkConfig) -> Duration {
        (config.heartbeat_interval / 2)
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10))
    }

    /// Notes that `cluster`'s stream was heard at `at`; the first note starts the writer (a task that ends
    /// with the book).
    pub(super) fn beat(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        config: &Arc<LinkConfig>,
        cluster: &str,
        at: OffsetDateTime,
    ) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = pending.entry(cluster.to_owned()).or_insert(at);
            *entry = (*entry).max(at);
        }
        if !self.writer.swap(true, Ordering::AcqRel) {
            let (book, store, config) =
                (Arc::downgrade(self), Arc::clone(store), Arc::clone(config));
            tokio::spawn(
                write_loop(book, store, config).instrument(tracing::info_span!("heartbeat_writer")),
            );
        }
    }

    /// Removes `cluster`'s pending heartbeat, once no write is in flight, and returns it with a guard that
    /// holds writes off: the caller records the cluster's disconnect under it. No heartbeat of the ended
    /// stream is written after that.
    pub(super) async fn forget(
        &self,
        cluster: &str,
    ) -> (Option<OffsetDateTime>, tokio::sync::MutexGuard<'_, ()>) {
        let guard = self.writing.lock().await;
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cluster);
        (pending, guard)
    }

    /// Takes what is pending.
    fn take(&self) -> Vec<(String, OffsetDateTime)> {
        let mut beats: Vec<(String, OffsetDateTime)> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        // One order for every replica's statements: two that overlap lock their rows in the same order.
        beats.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        beats
    }

    /// Puts back what could not be written, keeping anything newer noted meanwhile.
    fn restore(&self, beats: Vec<(String, OffsetDateTime)>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for (cluster, at) in beats {
            let entry = pending.entry(cluster).or_insert(at);
            *entry = (*entry).max(at);
        }
    }

    /// Writes what is pending now, in statements of at most [`MAX_PER_STATEMENT`] clusters; what fails is
    /// kept for the next time. Returns how many clusters were updated.
    pub async fn write(&self, store: &dyn Store, config: &LinkConfig) -> crate::store::Result<u64> {
        let _writing = self.writing.lock().await;
        let mut beats = self.take();
        let mut written = 0;
        while !beats.is_empty() {
            let rest = beats.split_off(beats.len().min(MAX_PER_STATEMENT));
            match store.record_heartbeats(&config.replica, &beats).await {
                Ok(n) => {
                    written += n;
                    config.counters.heartbeat_writes.inc();
                    beats = rest;
                }
                Err(error) => {
                    beats.extend(rest);
                    self.restore(beats);
                    return Err(error);
                }
            }
        }
        Ok(written)
    }
}

async fn write_loop(book: Weak<HeartbeatBook>, store: Arc<dyn Store>, config: Arc<LinkConfig>) {
    let mut tick = tokio::time::interval(HeartbeatBook::period(&config));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(book) = book.upgrade() else { return };
        if let Err(error) = book.write(store.as_ref(), &config).await {
            // Kept, and tried again on the next tick.
            tracing::warn!(%error, "Cannot record heartbeats; retrying.");
        }
    }
}
