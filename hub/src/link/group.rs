//! The replica's group commit of status batches: sessions hand their batches to a few writers, and each writer stores whatever queued up while it was busy in one shared transaction ([`Store::ingest_status_group`]).
//!
//! At 10,000 spokes a trickle of 1,000 status changes a second arrives as about 1,000 one-report batches of
//! different clusters, and stored one by one that is 1,000 transactions of five statements each. A writer
//! takes what has queued up (at most [`MAX_GROUP`]) and stores it with five statements in all, so the
//! transactions follow the database's pace instead of the spokes': a busy database makes bigger groups, an
//! idle one stores each batch at once (a batch alone costs one hop more than before, nothing else). Each
//! batch keeps its own fencing, outcome and acknowledgement; a session waits for its batch before it sends
//! anything else, so a stream's order is unchanged.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument as _;

use crate::store::{IngestOutcome, StatusWrite, Store, StoreError};

/// Batches one shared transaction takes at most.
pub(super) const MAX_GROUP: usize = 256;
/// Groups stored at once: while one is in the database the next one gathers.
const WRITERS: usize = 2;

/// A batch waiting for a writer, and where its outcome goes.
struct Queued {
    write: StatusWrite,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// The writers of one replica; started by the first batch, ended with the last handle.
#[derive(Default)]
pub struct StatusGroups {
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl std::fmt::Debug for StatusGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusGroups")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl StatusGroups {
    /// Stores `write` with whatever else is queued, and answers its own outcome: as
    /// [`Store::ingest_status_batch`] would. Waits for a writer until `deadline`, then gives up with a
    /// transient error (the database did not answer in time; a batch still queued is stored later or found
    /// superseded, as a retransmission of it would be).
    pub(super) async fn ingest(
        &self,
        store: &Arc<dyn Store>,
        groups: &prometheus_client::metrics::counter::Counter,
        write: StatusWrite,
        deadline: Instant,
    ) -> Result<IngestOutcome, StoreError> {
        let queue = self.queue.get_or_init(|| {
            let (queue, queued) = mpsc::channel(MAX_GROUP * 4);
            let queued = Arc::new(Mutex::new(queued));
            for _ in 0..WRITERS {
                tokio::spawn(
                    writer(Arc::clone(store), Arc::clone(&queued), groups.clone())
                        .instrument(tracing::info_span!("status_group_commit")),
                );
            }
            queue
        });
        let (reply, answer) = oneshot::channel();
        let wait = async {
            queue.send(Queued { write, reply }).await.map_err(|_| ())?;
            answer.await.map_err(|_| ())
        };
        match tokio::time::timeout_at(deadline.into(), wait).await {
            Ok(Ok(outcome)) => outcome,
            // A writer gone (the runtime shutting down), or no answer in time: as a pool that gave no
            // connection in time.
            Ok(Err(())) | Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// One writer: takes what has queued up, stores it in one shared transaction, answers each batch.
async fn writer(
    store: Arc<dyn Store>,
    queued: Arc<Mutex<mpsc::Receiver<Queued>>>,
    groups: prometheus_client::metrics::counter::Counter,
) {
    loop {
        let group = {
            let mut queued = queued.lock().await;
            let Some(first) = queued.recv().await else {
                return;
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queued.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            group
        };
        // A session that gave up waiting is not waited for.
        let (writes, replies): (Vec<StatusWrite>, Vec<_>) = group
            .into_iter()
            .filter(|queued| !queued.reply.is_closed())
            .map(|queued| (queued.write, queued.reply))
            .unzip();
        if writes.is_empty() {
            continue;
        }
        groups.inc();
        let outcomes = match store.ingest_status_group(&writes).await {
            Ok(outcomes) => outcomes,
            // Not expected (the store answers each batch): store them one by one.
            Err(error) => {
                tracing::debug!(%error, "A status group failed as a whole; storing its batches one by one.");
                let mut outcomes = Vec::with_capacity(writes.len());
                for write in &writes {
                    outcomes.push(
                        store
                            .ingest_status_batch(&write.cluster, &write.at, &write.batch)
                            .await,
                    );
                }
                outcomes
            }
        };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
}
