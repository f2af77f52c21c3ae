//! Heartbeats of all the sessions of a replica, written together: one statement about once a second instead of one per spoke heartbeat.
//!
//! A spoke heartbeat only refreshes its cluster's `last_heartbeat` (what the sweeper of silent clusters and
//! the console read); state changes (the handshake, Stale, back from Stale) are still written by the session
//! at once. At 10,000 spokes on a 10 s interval this turns 1,000 single-row commits a second into one
//! statement, which is what a reconnect storm or a slow database needs the database's time for. A heartbeat
//! reaches the store at most [`HeartbeatBook::period`] late, far inside the staleness threshold. A heartbeat
//! applies only while its stream owns the cluster's connection record, and never goes back in time
//! ([`Store::record_heartbeats`]): one that lands after its stream's disconnect, a newer stream's handshake
//! on any replica, or its own Stale mark changes nothing, so no lock is shared with the sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tracing::Instrument;

use super::LinkConfig;
use crate::store::{Store, StreamBeat};

/// Most clusters written by one statement.
const MAX_PER_STATEMENT: usize = 2_000;

/// Heartbeats waiting to be written, newest per cluster (with the stream it came on).
#[derive(Debug, Default)]
pub struct HeartbeatBook {
    pending: Mutex<HashMap<String, (String, OffsetDateTime)>>,
    writer: AtomicBool,
    /// Streams whose cluster's connection record another stream owns now: their sessions end at their next
    /// heartbeat tick ([`HeartbeatBook::disowned`]), so that their spokes reconnect and claim it again. With
    /// when each was found: one whose session had already ended is dropped after a few heartbeat intervals.
    disowned: Mutex<HashMap<String, Instant>>,
}

impl HeartbeatBook {
    /// How often the book is written: once a second, or twice per heartbeat interval when that is shorter.
    pub fn period(config: &LinkConfig) -> Duration {
        (config.heartbeat_interval / 2)
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10))
    }

    /// Notes that `cluster`'s stream `stream` was heard at `at`; the first note starts the writer (a task
    /// that ends with the book).
    pub(super) fn beat(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        config: &Arc<LinkConfig>,
        cluster: &str,
        stream: &str,
        at: OffsetDateTime,
    ) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match pending.get_mut(cluster) {
                Some(entry) if entry.0 == stream => entry.1 = entry.1.max(at),
                // A newer stream of the cluster on this replica: its heartbeat is the one that can apply.
                _ => {
                    pending.insert(cluster.to_owned(), (stream.to_owned(), at));
                }
            }
        }
        if !self.writer.swap(true, Ordering::AcqRel) {
            let (book, store, config) =
                (Arc::downgrade(self), Arc::clone(store), Arc::clone(config));
            tokio::spawn(
                write_loop(book, store, config)
                    .instrument(tracing::info_span!(parent: None, "heartbeat_writer")),
            );
        }
    }

    /// Takes `stream`'s pending heartbeat, if it has one: its disconnect records it instead.
    pub(super) fn forget(&self, cluster: &str, stream: &str) -> Option<OffsetDateTime> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.get(cluster) {
            Some((owner, _)) if owner == stream => pending.remove(cluster).map(|(_, at)| at),
            _ => None,
        }
    }

    /// Whether `stream` lost its cluster's connection record (told once).
    pub(super) fn disowned(&self, stream: &str) -> bool {
        self.disowned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(stream)
            .is_some()
    }

    /// Takes what is pending.
    fn take(&self) -> Vec<StreamBeat> {
        let mut beats: Vec<StreamBeat> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .map(|(cluster, (stream, at))| StreamBeat {
                    cluster,
                    stream,
                    at,
                })
                .collect();
        // One order for every replica's statements: two that overlap lock their rows in the same order.
        beats.sort_unstable_by(|a, b| a.cluster.cmp(&b.cluster));
        beats
    }

    /// Puts back what could not be written, keeping anything noted meanwhile.
    fn restore(&self, beats: Vec<StreamBeat>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        for beat in beats {
            pending
                .entry(beat.cluster)
                .or_insert((beat.stream, beat.at));
        }
    }

    /// Writes what is pending now, in statements of at most [`MAX_PER_STATEMENT`] clusters; what fails is
    /// kept for the next time. Returns how many clusters were updated.
    pub async fn write(&self, store: &dyn Store, config: &LinkConfig) -> crate::store::Result<u64> {
        let mut beats = self.take();
        let mut written = 0;
        while !beats.is_empty() {
            let rest = beats.split_off(beats.len().min(MAX_PER_STATEMENT));
            match store.record_heartbeats(&beats).await {
                Ok(recorded) => {
                    written += recorded.written;
                    let mut disowned = self.disowned.lock().unwrap_or_else(PoisonError::into_inner);
                    let keep = config.heartbeat_interval.saturating_mul(6);
                    disowned.retain(|_, found| found.elapsed() < keep);
                    if !recorded.disowned.is_empty() {
                        tracing::warn!(
                            streams = recorded.disowned.len(),
                            "Streams whose cluster's connection record a newer stream owns; ending them."
                        );
                        let now = Instant::now();
                        disowned.extend(recorded.disowned.into_iter().map(|stream| (stream, now)));
                    }
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
