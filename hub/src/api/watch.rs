//! `Watch`: application and cluster changes as they happen on any replica, driven by store notifications, with resume tokens (an update-time watermark) and a RESET when a token is too old.
//!
//! ```text
//!   store.listen(apps, clusters, desired, app-deleted) ─► feed task ─► broadcast<Change>
//!   Watch stream: on Change::Apps(cluster) re-read that cluster's apps updated since the
//!   watermark (keyset list, newest first); on Lagged re-read everything since it
//! ```
//!
//! The watermark is the newest `updated_at` sent; apps updated within
//! `SKEW` before it are re-checked (clocks of replicas differ a little) and
//! de-duplicated by `(project, name, updated_at)`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::project::ProjectRole;
use edgecd_proto::v1;
use futures::{Stream, StreamExt};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Instrument;

use super::apps::{APP_DELETED_CHANNEL, scoped_filter};
use super::convert;
use super::{Call, HubApi, store_error};
use crate::link::{APPS_CHANNEL, CLUSTERS_CHANNEL, DESIRED_CHANNEL};
use crate::store::{AppFilter, AppQuery, AppSort, ListenEvent, SortKey, Store};

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::WatchEvent, Status>> + Send>>;

/// A change announced by some replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Apps of this cluster changed (status, spec, creation).
    Apps(String),
    /// This app was deleted (`project/name`).
    AppDeleted(String),
    /// This cluster's record or connection changed.
    Cluster(String),
    /// Notifications may have been missed.
    Lagged,
}

/// Tokens older than this cannot be resumed (RESET).
const MAX_RESUME_AGE: Duration = Duration::from_secs(3600);
/// Apps updated this long before the watermark are re-checked.
const SKEW: time::Duration = time::Duration::seconds(5);
/// Changes re-read on resume or lag before giving up with RESET.
const MAX_REPLAY: usize = 10_000;
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

pub(super) fn spawn_feed(
    store: Arc<dyn Store>,
    changes: broadcast::Sender<Change>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        async move {
            loop {
                match store
                    .listen(&[
                        APPS_CHANNEL,
                        CLUSTERS_CHANNEL,
                        DESIRED_CHANNEL,
                        APP_DELETED_CHANNEL,
                    ])
                    .await
                {
                    Ok(mut events) => {
                        while let Some(event) = events.next().await {
                            let change = match event {
                                ListenEvent::Notification { channel, payload } => {
                                    match channel.as_str() {
                                        APPS_CHANNEL | DESIRED_CHANNEL => Change::Apps(payload),
                                        CLUSTERS_CHANNEL => Change::Cluster(payload),
                                        APP_DELETED_CHANNEL => Change::AppDeleted(payload),
                                        _ => continue,
                                    }
                                }
                                ListenEvent::Lagged => Change::Lagged,
                            };
                            let _ = changes.send(change);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "Cannot listen for changes; retrying."),
                }
                let _ = changes.send(Change::Lagged);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        .instrument(tracing::info_span!("watch_feed")),
    )
}

fn token(at: OffsetDateTime) -> String {
    format!("w1:{}", at.unix_timestamp_nanos())
}

fn parse_token(token: &str) -> Option<OffsetDateTime> {
    let nanos: i128 = token.strip_prefix("w1:")?.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

pub(super) async fn watch(
    api: &HubApi,
    call: &Call,
    req: v1::WatchRequest,
) -> Result<WatchStream, Status> {
    let mut apps = false;
    let mut clusters = false;
    for kind in &req.kinds {
        match v1::WatchKind::try_from(*kind) {
            Ok(v1::WatchKind::Applications) => apps = true,
            Ok(v1::WatchKind::Clusters) => clusters = true,
            Ok(v1::WatchKind::Commands | v1::WatchKind::Events) => {
                return Err(Status::unimplemented(
                    "watching commands and events is not implemented yet; poll GetCommand and ListEvents",
                ));
            }
            _ => {}
        }
    }
    if req.kinds.is_empty() {
        apps = true;
        clusters = true;
    }
    let filter = scoped_filter(api, call, req.app_filter.as_ref(), ProjectRole::Viewer).await?;
    let now = OffsetDateTime::now_utc();
    let resume = if req.resume_token.is_empty() {
        None
    } else {
        Some(
            parse_token(&req.resume_token)
                .ok_or_else(|| Status::invalid_argument("invalid resume token"))?,
        )
    };
    let (tx, rx) = mpsc::channel(256);
    let mut watcher = Watcher {
        api: api.clone(),
        filter,
        apps,
        clusters,
        watermark: resume.unwrap_or(now),
        sent: HashMap::new(),
        tx,
    };
    let changes = api.inner.changes.subscribe();
    let closing = api.inner.closing.subscribe();
    let span = tracing::info_span!("watch", subject = %call.principal.subject);
    tokio::spawn(
        async move {
            let start = match resume {
                Some(at) if now - at > MAX_RESUME_AGE => watcher.reset().await,
                Some(_) => watcher.replay(None).await,
                None => watcher.bookmark().await,
            };
            if start.is_ok() {
                let _ = watcher.run(changes, closing).await;
            }
            tracing::debug!("Watch ended.");
        }
        .instrument(span),
    );
    Ok(Box::pin(ReceiverStream::new(rx)))
}

struct Watcher {
    api: HubApi,
    /// `None`: the caller may read no project (only clusters are sent).
    filter: Option<AppFilter>,
    apps: bool,
    clusters: bool,
    watermark: OffsetDateTime,
    /// Apps sent at or after `watermark - SKEW`, with the update time sent.
    sent: HashMap<(String, String), OffsetDateTime>,
    tx: mpsc::Sender<Result<v1::WatchEvent, Status>>,
}

/// The client went away.
struct Gone;

impl Watcher {
    async fn send(&self, event: v1::WatchEvent) -> Result<(), Gone> {
        self.tx.send(Ok(event)).await.map_err(|_| Gone)
    }

    async fn bookmark(&self) -> Result<(), Gone> {
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Bookmark as i32,
            resume_token: token(self.watermark),
            object: None,
        })
        .await
    }

    async fn reset(&mut self) -> Result<(), Gone> {
        self.watermark = OffsetDateTime::now_utc();
        self.sent.clear();
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Reset as i32,
            resume_token: token(self.watermark),
            object: None,
        })
        .await
    }

    async fn run(
        &mut self,
        mut changes: broadcast::Receiver<Change>,
        mut closing: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), Gone> {
        let mut bookmarks = tokio::time::interval(BOOKMARK_EVERY);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(Change::Apps(cluster)) => self.replay(Some(cluster)).await?,
                    Ok(Change::AppDeleted(app)) => self.deleted(&app).await?,
                    Ok(Change::Cluster(name)) => self.cluster(&name).await?,
                    Ok(Change::Lagged) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.replay(None).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = bookmarks.tick() => self.bookmark().await?,
                () = self.tx.closed() => return Err(Gone),
                () = async { let _ = closing.wait_for(|c| *c).await; } => {
                    let _ = self.tx.send(Err(super::with_retry_after(
                        Status::unavailable("this hub replica is shutting down; resume the watch elsewhere"),
                        Duration::from_secs(1),
                    ))).await;
                    return Ok(());
                }
            }
        }
    }

    /// Sends apps (of `cluster`, or all) updated since the watermark.
    async fn replay(&mut self, cluster: Option<String>) -> Result<(), Gone> {
        if !self.apps {
            return Ok(());
        }
        let Some(mut filter) = self.filter.clone() else {
            return Ok(());
        };
        if let Some(cluster) = cluster {
            if !filter.clusters.is_empty() && !filter.clusters.contains(&cluster) {
                return Ok(());
            }
            filter.clusters = vec![cluster];
        }
        let since = self.watermark - SKEW;
        let mut query = AppQuery {
            filter,
            sort: AppSort {
                key: SortKey::UpdatedAt,
                descending: true,
            },
            page_size: 500,
            cursor: None,
        };
        let mut changed = Vec::new();
        'pages: loop {
            let page = match self.api.store().list_apps(&query).await {
                Ok(page) => page,
                Err(error) => {
                    let status = store_error(error, "applications");
                    let _ = self.tx.send(Err(status)).await;
                    return Err(Gone);
                }
            };
            for app in page.items {
                if app.updated_at < since {
                    break 'pages;
                }
                let key = (app.project.clone(), app.name.clone());
                if self.sent.get(&key) != Some(&app.updated_at) {
                    changed.push(app);
                }
                if changed.len() > MAX_REPLAY {
                    return self.reset().await;
                }
            }
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        // Oldest first, so that a resume token always covers what came before.
        for app in changed.into_iter().rev() {
            self.watermark = self.watermark.max(app.updated_at);
            self.sent
                .insert((app.project.clone(), app.name.clone()), app.updated_at);
            let event = v1::WatchEvent {
                r#type: v1::WatchEventType::Upserted as i32,
                resume_token: token(self.watermark),
                object: Some(v1::watch_event::Object::Application(convert::summary(&app))),
            };
            self.send(event).await?;
        }
        let horizon = self.watermark - SKEW;
        self.sent.retain(|_, at| *at >= horizon);
        Ok(())
    }

    async fn deleted(&mut self, app: &str) -> Result<(), Gone> {
        let Some(filter) = &self.filter else {
            return Ok(());
        };
        let Some((project, name)) = app.split_once('/') else {
            return Ok(());
        };
        if !self.apps
            || !(filter.projects.is_empty() || filter.projects.iter().any(|p| p == project))
        {
            return Ok(());
        }
        self.sent.remove(&(project.to_owned(), name.to_owned()));
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Deleted as i32,
            resume_token: token(self.watermark),
            object: Some(v1::watch_event::Object::Application(
                v1::ApplicationSummary {
                    project: project.to_owned(),
                    name: name.to_owned(),
                    ..v1::ApplicationSummary::default()
                },
            )),
        })
        .await
    }

    async fn cluster(&mut self, name: &str) -> Result<(), Gone> {
        if !self.clusters {
            return Ok(());
        }
        let (kind, cluster) = match self.api.store().get_cluster(name).await {
            Ok(record) => (
                v1::WatchEventType::Upserted,
                convert::cluster(&record, None),
            ),
            Err(crate::store::StoreError::NotFound { .. }) => (
                v1::WatchEventType::Deleted,
                v1::Cluster {
                    name: name.to_owned(),
                    ..v1::Cluster::default()
                },
            ),
            Err(error) => {
                tracing::debug!(%error, "Cannot read a changed cluster.");
                return Ok(());
            }
        };
        self.send(v1::WatchEvent {
            r#type: kind as i32,
            resume_token: token(self.watermark),
            object: Some(v1::watch_event::Object::Cluster(cluster)),
        })
        .await
    }
}
