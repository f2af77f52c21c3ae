//! The replica's group commit of status batches: sessions hand their batches to a few writers, and each writer stores whatever queued up while it was busy in one shared transaction ([`Store::ingest_status_group`]).
//!
//! At 10,000 spokes a trickle of 1,000 status changes a second arrives as about 1,000 one-report batches of
//! different clusters, and stored one by one that is 1,000 transactions of five statements each. A writer
//! takes what has queued up (at most [`MAX_GROUP`]) and stores it with five statements in all, so the
//! transactions follow the database's pace instead of the spokes': a busy database makes bigger groups, an
//! idle one stores each batch at once (a batch alone costs one hop more than before, nothing else). Each
//! batch keeps its own fencing, outcome and acknowledgement; a session waits for its batch before it sends
//! anything else, so a stream's order is unchanged.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::store::{IngestOutcome, StatusWrite, Store, StoreError};

/// Batches one shared transaction takes at most.
pub(super) const MAX_GROUP: usize = 256;
/// Reports one shared transaction takes at most (past the first batch, which goes whatever its size): a batch
/// merges up to 16 messages of many reports each.
const MAX_GROUP_REPORTS: usize = 2_000;
/// Groups stored at once: while one is in the database the next one gathers.
const WRITERS: usize = 2;

/// A batch waiting for a writer, and where its outcome goes.
struct Queued {
    write: StatusWrite,
    reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>;

/// The writers of one replica; started by the first batch (and again should they have ended), ended with the
/// last handle.
#[derive(Default)]
pub struct StatusGroups {
    queue: Mutex<Option<mpsc::Sender<Queued>>>,
}

impl std::fmt::Debug for StatusGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("StatusGroups")
            .field("started", &started)
            .finish()
    }
}

impl StatusGroups {
    /// Stores `write` as [`Store::ingest_status_batch`] would, with whatever else is queued when it can share a
    /// transaction ([`StatusWrite::groupable`]; the others are stored at once, as before). Waits for room in the
    /// queue until `deadline`, then gives up with a transient error (as a pool that gives no connection in
    /// time); once queued, waits for its outcome as for any store call.
    pub(super) async fn ingest(
        &self,
        store: &Arc<dyn Store>,
        groups: &prometheus_client::metrics::counter::Counter,
        write: StatusWrite,
        deadline: Instant,
    ) -> Result<IngestOutcome, StoreError> {
        if !write.groupable() {
            return store
                .ingest_status_batch(&write.cluster, &write.at, &write.batch)
                .await;
        }
        let queue = self.queue(store, groups);
        let (reply, answer) = oneshot::channel();
        let queued = tokio::time::timeout_at(deadline.into(), queue.send(Queued { write, reply }));
        match queued.await {
            Ok(Ok(())) => {}
            // The writers are gone (the runtime shutting down): started again by the next batch.
            Ok(Err(_)) | Err(_) => return Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
        answer
            .await
            .unwrap_or(Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)))
    }

    /// The writers' queue, with writers to take from it.
    fn queue(
        &self,
        store: &Arc<dyn Store>,
        groups: &prometheus_client::metrics::counter::Counter,
    ) -> mpsc::Sender<Queued> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = queue.as_ref().filter(|sender| !sender.is_closed()) {
            return sender.clone();
        }
        let (sender, queued) = mpsc::channel(MAX_GROUP * 4);
        let queued: Queue = Arc::new(tokio::sync::Mutex::new(queued));
        for _ in 0..WRITERS {
            tokio::spawn(
                writer(Arc::clone(store), Arc::clone(&queued), groups.clone())
                    // The replica's, not the span of the session whose batch started it.
                    .instrument(tracing::info_span!(parent: None, "status_group_commit")),
            );
        }
        *queue = Some(sender.clone());
        sender
    }
}

/// Takes what has queued up: at most [`MAX_GROUP`] batches and, past the first, [`MAX_GROUP_REPORTS`] reports.
async fn gather(queued: &Queue) -> Option<Vec<Queued>> {
    let mut queued = queued.lock().await;
    let first = queued.recv().await?;
    let mut reports = first.write.batch.reports.len();
    let mut group = vec![first];
    while group.len() < MAX_GROUP && reports < MAX_GROUP_REPORTS {
        match queued.try_recv() {
            Ok(next) => {
                reports += next.write.batch.reports.len();
                group.push(next);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

/// One writer: takes what has queued up, stores it in one shared transaction, answers each batch.
async fn writer(
    store: Arc<dyn Store>,
    queued: Queue,
    groups: prometheus_client::metrics::counter::Counter,
) {
    while let Some(group) = gather(&queued).await {
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
        match store.ingest_status_group(&writes).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            // The database is away: every session waits it out and sends its batch again.
            Err(error) if error.is_transient() => {
                tracing::debug!(%error, batches = writes.len(), "A shared status transaction failed transiently.");
                for reply in replies {
                    let copy = error
                        .transient_copy()
                        .unwrap_or(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
                    let _ = reply.send(Err(copy));
                }
            }
            // One batch the database refuses costs the others nothing: each is stored alone, at once.
            Err(error) => {
                tracing::warn!(%error, batches = writes.len(), "A shared status transaction failed; storing its batches one by one.");
                let alone = writes.iter().zip(replies).map(|(write, reply)| {
                    let store = Arc::clone(&store);
                    async move {
                        if reply.is_closed() {
                            return;
                        }
                        let outcome = store
                            .ingest_status_batch(&write.cluster, &write.at, &write.batch)
                            .await;
                        let _ = reply.send(outcome);
                    }
                });
                futures::future::join_all(alone).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use edgecd_core::app::{ApplicationSource, ApplicationSpec, ApplicationStatus, Destination};

    use super::*;
    use crate::store::{
        AutonomousApp, ClusterConnection, ClusterVersions, ConnectionKind, LinkHello, LinkOpened,
        NewApp, NewCluster, SpokeSeq, SqliteStore, StatusBatch, StatusReport,
    };

    fn report(app: &str, version: u64) -> StatusReport {
        StatusReport {
            project: "default".into(),
            name: app.into(),
            status: ApplicationStatus {
                status_version: version,
                ..ApplicationStatus::default()
            },
            autonomous: None,
        }
    }

    /// Batches of many clusters queued together share transactions, each answered with its own outcome (a
    /// report of another cluster's app refused in its batch only); a batch that cannot share is stored at once,
    /// alone; a session that stopped waiting is not waited for.
    #[tokio::test]
    async fn queued_batches_share_transactions() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("hub.db"))
                .await
                .expect("the store"),
        );
        let clusters: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
        for name in &clusters {
            store
                .create_cluster(&NewCluster {
                    name: name.clone(),
                    labels: Default::default(),
                    annotations: Default::default(),
                    server_url: format!("https://{name}.example:6443"),
                })
                .await
                .expect("a cluster");
            store
                .create_app(&NewApp {
                    project: "default".into(),
                    name: format!("app-{name}"),
                    spec: ApplicationSpec {
                        source: ApplicationSource {
                            repo_url: "https://git.example/apps.git".into(),
                            path: name.clone(),
                            ..ApplicationSource::default()
                        },
                        destination: Destination {
                            cluster: name.clone(),
                            server: String::new(),
                            namespace: "web".into(),
                        },
                        ..ApplicationSpec::default()
                    },
                    labels: Default::default(),
                    owner: None,
                })
                .await
                .expect("an app");
            let hello = LinkHello {
                server_url: String::new(),
                versions: ClusterVersions::default(),
                certificate_not_after: None,
                connection: ClusterConnection {
                    state: ConnectionKind::Connected,
                    since: None,
                    last_heartbeat: None,
                    hub_replica: "r".into(),
                },
            };
            let opened = store
                .open_link(
                    name,
                    &format!("s-{name}"),
                    &hello,
                    time::OffsetDateTime::now_utc(),
                )
                .await
                .expect("the link opened");
            assert!(matches!(opened, LinkOpened::Open(_)));
        }
        let write = |name: &str, reports: Vec<StatusReport>| StatusWrite {
            cluster: name.to_owned(),
            at: SpokeSeq {
                epoch: "e".into(),
                seq: 1,
                stream: Some(format!("s-{name}")),
            },
            batch: StatusBatch {
                reports,
                ..StatusBatch::default()
            },
        };
        let groups = prometheus_client::metrics::counter::Counter::default();
        let statuses = StatusGroups::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        let outcomes = futures::future::join_all(clusters.iter().enumerate().map(|(i, name)| {
            let mut reports = vec![report(&format!("app-{name}"), 5)];
            if i == 0 {
                // Another cluster's app: refused, in this batch only.
                reports.push(report("app-c01", 9));
            }
            statuses.ingest(&store, &groups, write(name, reports), deadline)
        }))
        .await;
        for (i, outcome) in outcomes.iter().enumerate() {
            let outcome = outcome.as_ref().expect("stored");
            assert_eq!(outcome.applied, 1, "batch {i}");
            assert_eq!(outcome.rejected, u32::from(i == 0), "batch {i}");
        }
        assert!(
            outcomes
                .iter()
                .filter(|o| o.as_ref().is_ok_and(|o| o.shared))
                .count()
                > 1,
            "queued together, stored together"
        );
        assert!(groups.get() < 40, "{} groups for 40 batches", groups.get());

        // An edge app's report cannot share: stored at once, on its own.
        let mut edge = report("made-at-the-edge", 1);
        edge.autonomous = Some(AutonomousApp {
            spec: ApplicationSpec::default(),
            labels: Default::default(),
            owner: None,
        });
        let mut alone = write("c02", vec![edge]);
        alone.at.seq = 2;
        let before = groups.get();
        let outcome = statuses
            .ingest(&store, &groups, alone, deadline)
            .await
            .expect("stored");
        assert!(!outcome.shared);
        assert_eq!(groups.get(), before, "not through a writer");
    }
}
