//! `Watch`: application, cluster, command and event changes as they happen on any replica, driven by store notifications, with resume tokens (an update-time watermark plus an event sequence number) and a RESET when a token is too old.
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
//!
//! Commands: every change of a command record is announced with its id in
//! the transaction that made it (`COMMAND_UPDATES_CHANNEL`); the watcher reads
//! each announced command and sends its status if the caller may read its
//! project. Events: stored batches announce their cluster (`EVENTS_CHANNEL`);
//! the watcher sends that cluster's events stored after the last one it sent
//! (a cluster's events are stored by one stream at a time, so their sequence
//! numbers grow in commit order). A resume token carries the newest event
//! sequence number sent; commands are not replayed on resume (re-read them
//! with `ListCommands`). Application sets: a written, deleted or
//! re-evaluated set is announced as `project/name` (`APPSETS_CHANNEL`,
//! `APPSET_STATUS_CHANNEL`); the watcher re-reads it and sends it, or its
//! deletion; after a lag it re-lists the readable sets and sends each, and
//! the deletion of any set it had sent that is gone. Not replayed on resume.

use std::collections::{BTreeSet, HashMap};
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
use crate::appsets::{APPSET_STATUS_CHANNEL, APPSETS_CHANNEL};
use crate::link::{APPS_CHANNEL, CLUSTERS_CHANNEL, DESIRED_CHANNEL};
use crate::store::{
    AppFilter, AppQuery, AppSort, COMMAND_UPDATES_CHANNEL, EVENTS_CHANNEL, EventFilter,
    ListenEvent, SortKey, Store,
};

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
    /// These commands changed (comma-separated ids).
    Commands(String),
    /// Events of this cluster were stored.
    Events(String),
    /// This application set (`project/name`) was written, deleted or
    /// re-evaluated with a new status; `*`: any may have.
    AppSet(String),
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
    const CHANNELS: &[&str] = &[
        APPS_CHANNEL,
        CLUSTERS_CHANNEL,
        DESIRED_CHANNEL,
        APP_DELETED_CHANNEL,
        COMMAND_UPDATES_CHANNEL,
        EVENTS_CHANNEL,
        APPSETS_CHANNEL,
        APPSET_STATUS_CHANNEL,
    ];
    tokio::spawn(
        async move {
            let mut events = crate::store::follow(store, CHANNELS, "watch");
            while let Some(event) = events.next().await {
                let change = match event {
                    ListenEvent::Notification { channel, payload } => match channel.as_str() {
                        APPS_CHANNEL | DESIRED_CHANNEL => Change::Apps(payload),
                        CLUSTERS_CHANNEL => Change::Cluster(payload),
                        APP_DELETED_CHANNEL => Change::AppDeleted(payload),
                        COMMAND_UPDATES_CHANNEL => Change::Commands(payload),
                        EVENTS_CHANNEL => Change::Events(payload),
                        APPSETS_CHANNEL | APPSET_STATUS_CHANNEL => Change::AppSet(payload),
                        _ => continue,
                    },
                    ListenEvent::Lagged => Change::Lagged,
                };
                let _ = changes.send(change);
            }
        }
        .instrument(tracing::info_span!("watch_feed")),
    )
}

/// Events replayed (on resume or lag) before giving up with RESET.
const MAX_EVENT_REPLAY: usize = 10_000;
/// How far below the newest event sent a replay of every cluster looks.
const EVENT_RECHECK: u64 = 1_000;

/// `w1:<app watermark, ns>` or `w1:<app watermark, ns>:e<event seq>`.
fn token(at: OffsetDateTime, event_seq: Option<u64>) -> String {
    match event_seq {
        Some(seq) => format!("w1:{}:e{seq}", at.unix_timestamp_nanos()),
        None => format!("w1:{}", at.unix_timestamp_nanos()),
    }
}

fn parse_token(token: &str) -> Option<(OffsetDateTime, Option<u64>)> {
    let rest = token.strip_prefix("w1:")?;
    let (nanos, event_seq) = match rest.split_once(":e") {
        Some((nanos, seq)) => (nanos, Some(seq.parse().ok()?)),
        None => (rest, None),
    };
    let nanos: i128 = nanos.parse().ok()?;
    Some((
        OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?,
        event_seq,
    ))
}

pub(super) async fn watch(
    api: &HubApi,
    call: &Call,
    req: v1::WatchRequest,
) -> Result<WatchStream, Status> {
    let mut apps = false;
    let mut clusters = false;
    let mut commands = false;
    let mut events = false;
    let mut appsets = false;
    for kind in &req.kinds {
        match v1::WatchKind::try_from(*kind) {
            Ok(v1::WatchKind::Applications) => apps = true,
            Ok(v1::WatchKind::Clusters) => clusters = true,
            Ok(v1::WatchKind::Commands) => commands = true,
            Ok(v1::WatchKind::Events) => events = true,
            Ok(v1::WatchKind::ApplicationSets) => appsets = true,
            Ok(v1::WatchKind::Unspecified) => {}
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown watch kind {kind}"
                )));
            }
        }
    }
    if req.kinds.is_empty() {
        apps = true;
        clusters = true;
    }
    let filter = scoped_filter(api, call, req.app_filter.as_ref(), ProjectRole::Viewer).await?;
    let now = OffsetDateTime::now_utc();
    let (resume, resume_events) = if req.resume_token.is_empty() {
        (None, None)
    } else {
        let (at, event_seq) = parse_token(&req.resume_token)
            .ok_or_else(|| Status::invalid_argument("invalid resume token"))?;
        (Some(at), event_seq)
    };
    let (tx, rx) = mpsc::channel(256);
    let mut watcher = Watcher {
        api: api.clone(),
        filter,
        apps,
        clusters,
        commands,
        events,
        appsets,
        sets_sent: BTreeSet::new(),
        watermark: resume.unwrap_or(now),
        sent: HashMap::new(),
        event_seq: None,
        event_start: 0,
        event_seq_by_cluster: HashMap::new(),
        tx,
    };
    let changes = api.inner.changes.subscribe();
    let closing = api.inner.closing.subscribe();
    let span = tracing::info_span!("watch", subject = %call.principal.subject);
    tokio::spawn(
        async move {
            let start = match watcher.start_events(resume_events).await {
                Err(gone) => Err(gone),
                Ok(()) => match resume {
                    Some(at) if now - at > MAX_RESUME_AGE => watcher.reset().await,
                    Some(_) => watcher.replay(None).await,
                    None => watcher.bookmark().await,
                },
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
    commands: bool,
    events: bool,
    appsets: bool,
    /// Application sets sent as existing (to announce their deletion after a lag).
    sets_sent: BTreeSet<(String, String)>,
    watermark: OffsetDateTime,
    /// Newest event sequence number sent (or the store's newest when the
    /// watch started, or the resumed one); `None` unless events are watched.
    event_seq: Option<u64>,
    /// The event sequence number the watch started after.
    event_start: u64,
    /// Per cluster, the newest event sequence number sent (default `event_start`).
    event_seq_by_cluster: HashMap<String, u64>,
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

    fn token(&self) -> String {
        token(self.watermark, self.event_seq)
    }

    async fn bookmark(&self) -> Result<(), Gone> {
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Bookmark as i32,
            resume_token: self.token(),
            object: None,
        })
        .await
    }

    async fn reset(&mut self) -> Result<(), Gone> {
        self.watermark = OffsetDateTime::now_utc();
        self.sent.clear();
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Reset as i32,
            resume_token: self.token(),
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
                    Ok(Change::Commands(ids)) => self.commands(&ids).await?,
                    Ok(Change::Events(cluster)) => self.events(Some(&cluster)).await?,
                    Ok(Change::AppSet(set)) => self.appset(&set).await?,
                    Ok(Change::Lagged) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.replay(None).await?;
                        self.events(None).await?;
                        self.appset("*").await?;
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
                resume_token: self.token(),
                object: Some(v1::watch_event::Object::Application(convert::summary(&app))),
            };
            self.send(event).await?;
        }
        let horizon = self.watermark - SKEW;
        self.sent.retain(|_, at| *at >= horizon);
        Ok(())
    }

    async fn deleted(&mut self, app: &str) -> Result<(), Gone> {
        let Some((project, name)) = app.split_once('/') else {
            return Ok(());
        };
        if !self.apps || !self.project_readable(project) {
            return Ok(());
        }
        self.sent.remove(&(project.to_owned(), name.to_owned()));
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Deleted as i32,
            resume_token: self.token(),
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

    /// Sets the event watermark: the resumed one (replaying what came after
    /// it), or the newest stored event.
    async fn start_events(&mut self, resumed: Option<u64>) -> Result<(), Gone> {
        if !self.events {
            return Ok(());
        }
        match resumed {
            Some(seq) => {
                self.event_seq = Some(seq);
                self.event_start = seq;
                self.events(None).await
            }
            None => {
                let newest = match self
                    .api
                    .store()
                    .list_events(&EventFilter::default(), 1, None)
                    .await
                {
                    Ok(page) => page.items.first().map_or(0, |e| e.seq),
                    Err(error) => {
                        let _ = self.tx.send(Err(store_error(error, "events"))).await;
                        return Err(Gone);
                    }
                };
                self.event_seq = Some(newest);
                self.event_start = newest;
                Ok(())
            }
        }
    }

    /// May the caller see this project's (or, for `""`, a cluster's) records?
    fn readable(&self, project: &str, cluster: &str) -> bool {
        self.project_readable(project)
            && self
                .filter
                .as_ref()
                .is_some_and(|f| f.clusters.is_empty() || f.clusters.iter().any(|c| c == cluster))
    }

    /// May the caller see this project's records (the watch's project
    /// filter applies, its cluster filter does not)? `""` (no project) only
    /// when every project is readable.
    fn project_readable(&self, project: &str) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|f| f.projects.is_empty() || f.projects.iter().any(|p| p == project))
    }

    /// Sends an announced application set (`project/name`) as it is now, or
    /// its deletion; `*` re-lists every readable set.
    async fn appset(&mut self, payload: &str) -> Result<(), Gone> {
        if !self.appsets || payload == crate::appsets::DECISIONS_CHANGED {
            return Ok(());
        }
        let Some((project, name)) = payload.split_once('/') else {
            return self.all_appsets().await;
        };
        if !self.project_readable(project) {
            return Ok(());
        }
        match self.api.store().appsets().get_appset(project, name).await {
            Ok(record) => self.send_appset(&record).await,
            Err(crate::store::StoreError::NotFound { .. }) => {
                self.send_appset_deleted(project.to_owned(), name.to_owned())
                    .await
            }
            Err(error) => {
                tracing::warn!(%error, project, set = name, "Cannot read a changed application set.");
                Ok(())
            }
        }
    }

    /// Sends every readable set, and the deletion of sets sent before that
    /// are gone.
    async fn all_appsets(&mut self) -> Result<(), Gone> {
        let projects = match &self.filter {
            Some(filter) => filter.projects.clone(),
            None => return Ok(()),
        };
        let sets = match self
            .api
            .store()
            .appsets()
            .list_appsets(&projects, None)
            .await
        {
            Ok(sets) => sets,
            Err(error) => {
                tracing::warn!(%error, "Cannot list application sets for a watch.");
                return Ok(());
            }
        };
        let existing: BTreeSet<(String, String)> = sets
            .iter()
            .map(|s| (s.project.clone(), s.name.clone()))
            .collect();
        let gone: Vec<(String, String)> = self.sets_sent.difference(&existing).cloned().collect();
        for set in &sets {
            self.send_appset(set).await?;
        }
        for (project, name) in gone {
            self.send_appset_deleted(project, name).await?;
        }
        Ok(())
    }

    async fn send_appset(&mut self, record: &crate::store::AppSetRecord) -> Result<(), Gone> {
        // A set evaluated at spokes lists the apps they reported (`name@cluster`).
        let set = match super::appsets::with_edge_apps(&self.api, record).await {
            Ok(set) => set,
            Err(status) => {
                tracing::warn!(project = %record.project, set = %record.name, message = status.message(), "Cannot convert an application set for a watch.");
                return Ok(());
            }
        };
        self.sets_sent
            .insert((record.project.clone(), record.name.clone()));
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Upserted as i32,
            resume_token: self.token(),
            object: Some(v1::watch_event::Object::ApplicationSet(set)),
        })
        .await
    }

    async fn send_appset_deleted(&mut self, project: String, name: String) -> Result<(), Gone> {
        self.sets_sent.remove(&(project.clone(), name.clone()));
        self.send(v1::WatchEvent {
            r#type: v1::WatchEventType::Deleted as i32,
            resume_token: self.token(),
            object: Some(v1::watch_event::Object::ApplicationSet(
                v1::ApplicationSet {
                    project,
                    name,
                    ..v1::ApplicationSet::default()
                },
            )),
        })
        .await
    }

    /// Sends the status of each announced command the caller may read.
    async fn commands(&mut self, ids: &str) -> Result<(), Gone> {
        if !self.commands {
            return Ok(());
        }
        let ids: Vec<String> = ids
            .split(',')
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        // One read per notification (up to 150 ids).
        let records = match self.api.store().get_commands(&ids).await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, commands = ids.len(), "Cannot read changed commands.");
                return Ok(());
            }
        };
        for record in records {
            if !self.readable(&record.project, &record.cluster) {
                continue;
            }
            self.send(v1::WatchEvent {
                r#type: v1::WatchEventType::Upserted as i32,
                resume_token: self.token(),
                object: Some(v1::watch_event::Object::Command(convert::command_status(
                    &record,
                ))),
            })
            .await?;
        }
        Ok(())
    }

    /// Sends events (of `cluster`, or of every cluster) stored after the
    /// newest one sent of their cluster, oldest first. Across clusters the
    /// sequence numbers do not follow commit order, so a replay of every
    /// cluster (after a lag) looks `EVENT_RECHECK` numbers further back and
    /// skips what was sent.
    async fn events(&mut self, cluster: Option<&str>) -> Result<(), Gone> {
        let Some(newest) = self.event_seq.filter(|_| self.events) else {
            return Ok(());
        };
        let since = match cluster {
            Some(c) => self
                .event_seq_by_cluster
                .get(c)
                .copied()
                .unwrap_or(self.event_start),
            None => newest.saturating_sub(EVENT_RECHECK).max(self.event_start),
        };
        let filter = EventFilter {
            cluster: cluster.map(str::to_owned),
            app: None,
        };
        let mut newer = Vec::new();
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page = match self
                .api
                .store()
                .list_events(&filter, 500, cursor.as_deref())
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    let _ = self.tx.send(Err(store_error(error, "events"))).await;
                    return Err(Gone);
                }
            };
            for event in page.items {
                if event.seq <= since {
                    break 'pages;
                }
                newer.push(event);
                if newer.len() > MAX_EVENT_REPLAY {
                    let latest = newer.first().map_or(newest, |e| e.seq.max(newest));
                    self.event_seq = Some(latest);
                    self.event_start = latest;
                    self.event_seq_by_cluster.clear();
                    return self.reset().await;
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        for event in newer.into_iter().rev() {
            let seen = self
                .event_seq_by_cluster
                .entry(event.cluster.clone())
                .or_insert(self.event_start);
            if event.seq <= *seen {
                continue;
            }
            *seen = event.seq;
            self.event_seq = Some(newest.max(event.seq).max(self.event_seq.unwrap_or(0)));
            if !self.readable(&event.project, &event.cluster) {
                continue;
            }
            self.send(v1::WatchEvent {
                r#type: v1::WatchEventType::Upserted as i32,
                resume_token: self.token(),
                object: Some(v1::watch_event::Object::Event(convert::event(&event))),
            })
            .await?;
        }
        Ok(())
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
            resume_token: self.token(),
            object: Some(v1::watch_event::Object::Cluster(cluster)),
        })
        .await
    }
}
