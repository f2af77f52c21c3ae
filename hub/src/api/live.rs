//! Live reads through the app's spoke (`GetLiveManifest`, `ListLiveEvents`, `StreamPodLogs`): authorized here (logs need the project's log role), opened as a session on the stream this replica holds for the app's cluster, answered from the cluster now and never stored.

use std::pin::Pin;
use std::time::Duration;

use edgecd_core::access::Action;
use edgecd_core::app::AppOrigin;
use edgecd_proto::v1::{self, LiveEndCode};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Call, HubApi, convert};
use crate::link::live::{LiveEvent, LiveRequest, LiveStream};
use crate::retry::with_retry_after;
use crate::store::ConnectionKind;

/// A manifest or an event list larger than this is refused (bytes).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;
/// Bytes of logs one call reads at most (a follow ends with RESOURCE_EXHAUSTED beyond).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// How long a log follow lasts at most; the client reconnects for more.
const MAX_FOLLOW: Duration = Duration::from_secs(3600);
/// How long a read of the whole log may take.
const MAX_READ: Duration = Duration::from_secs(60);

pub type LogStream = Pin<Box<dyn Stream<Item = Result<v1::PodLogChunk, Status>> + Send>>;

/// The status a session's end maps to (`None`: it ended well).
fn end_status(end: &v1::LiveEnd, cluster: &str) -> Option<Status> {
    let message = format!("cluster {cluster}: {}", end.message);
    match LiveEndCode::try_from(end.code).unwrap_or(LiveEndCode::Unspecified) {
        LiveEndCode::Ok => None,
        LiveEndCode::NotFound => Some(Status::not_found(message)),
        LiveEndCode::Forbidden => Some(Status::permission_denied(message)),
        LiveEndCode::Invalid => Some(Status::invalid_argument(message)),
        LiveEndCode::Limit => Some(Status::resource_exhausted(message)),
        LiveEndCode::Unavailable => Some(Status::unavailable(message)),
        LiveEndCode::Cancelled => Some(Status::cancelled(message)),
        LiveEndCode::Unspecified => Some(Status::failed_precondition(message)),
    }
}

/// Opens a session for `app` on its cluster's stream, after checking `action` in its project.
async fn open(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    action: Action,
    request: v1::live_open::Request,
    max_bytes: u64,
    max_duration: Duration,
) -> Result<(LiveStream, String), Status> {
    let app = convert::app_ref(app)?;
    api.authorize(call, action, app.project.as_str()).await?;
    let (record, cluster) = super::commands::app_and_cluster(api, &app).await?;
    let retry = api.config().retry_after;
    let state = cluster.connection.state;
    if !matches!(state, ConnectionKind::Connected | ConnectionKind::Stale)
        || cluster.revoked_at.is_some()
    {
        let since = cluster
            .connection
            .since
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(|t| format!(" since {t}"))
            .unwrap_or_default();
        let state = if cluster.revoked_at.is_some() {
            "revoked".to_owned()
        } else {
            format!("{state:?}")
        };
        return Err(with_retry_after(
            Status::unavailable(format!(
                "cluster {} is {state}{since}: live reads need its spoke connected",
                cluster.name
            )),
            retry,
        ));
    }
    let registry = api
        .live()
        .ok_or_else(|| Status::unimplemented("live reads are not served by this hub process"))?;
    // The spoke names an app created at the edge without its `@cluster`.
    let local = match record.origin {
        AppOrigin::Managed => app.name.as_str().to_owned(),
        _ => edgecd_core::split_edge_app_name(app.name.as_str())
            .0
            .to_owned(),
    };
    let request = LiveRequest {
        app: v1::AppRef {
            project: app.project.as_str().to_owned(),
            name: local,
        },
        request,
        max_bytes,
        max_duration,
    };
    let stream = registry.open_live(&cluster.name, request).map_err(|_| {
        let holder = &cluster.connection.hub_replica;
        with_retry_after(
            Status::unavailable(format!(
                "the stream of cluster {} is held by hub replica {holder}, not this one; live reads are answered by \
                 the replica holding the stream (ask it directly, or retry)",
                cluster.name,
            )),
            retry,
        )
    })?;
    Ok((stream, cluster.name))
}

/// Reads a session to its end (within `limit`), gathering what it sent.
async fn gather(
    mut stream: LiveStream,
    cluster: &str,
    limit: Duration,
) -> Result<(Vec<u8>, Vec<v1::Event>), Status> {
    let mut data = Vec::new();
    let mut events = Vec::new();
    let read = async {
        loop {
            match stream.next().await {
                Some(LiveEvent::Chunk(chunk)) => {
                    data.extend_from_slice(&chunk.data);
                    events.extend(chunk.events);
                    if data.len() as u64 > MAX_ANSWER {
                        return Err(Status::resource_exhausted(format!(
                            "cluster {cluster}: the answer is larger than {MAX_ANSWER} bytes"
                        )));
                    }
                }
                Some(LiveEvent::End(end)) => {
                    return end_status(&end, cluster).map_or(Ok(()), Err);
                }
                None => {
                    return Err(Status::unavailable(format!(
                        "the stream of cluster {cluster} ended before its spoke answered"
                    )));
                }
            }
        }
    };
    tokio::time::timeout(limit, read).await.map_err(|_| {
        Status::deadline_exceeded(format!(
            "cluster {cluster} did not answer within {}s",
            limit.as_secs()
        ))
    })??;
    Ok((data, events))
}

/// Reads one answer (a manifest or events) about `app` within the query timeout.
async fn read_once(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    request: v1::live_open::Request,
) -> Result<(Vec<u8>, Vec<v1::Event>, String), Status> {
    let limit = api.config().query_timeout;
    let (stream, cluster) = open(api, call, app, Action::Read, request, MAX_ANSWER, limit).await?;
    let (data, events) = gather(stream, &cluster, limit).await?;
    Ok((data, events, cluster))
}

pub(super) async fn manifest(
    api: &HubApi,
    call: &Call,
    req: v1::GetLiveManifestRequest,
) -> Result<v1::LiveManifest, Status> {
    let request = v1::live_open::Request::Manifest(v1::LiveManifestRequest {
        resource: req.resource,
        managed_fields: req.managed_fields,
    });
    let (data, _, cluster) = read_once(api, call, req.app.as_ref(), request).await?;
    let yaml = String::from_utf8(data).map_err(|_| {
        Status::internal(format!(
            "cluster {cluster} sent a manifest that is not UTF-8"
        ))
    })?;
    Ok(v1::LiveManifest { yaml })
}

pub(super) async fn events(
    api: &HubApi,
    call: &Call,
    req: v1::ListLiveEventsRequest,
) -> Result<v1::ListLiveEventsResponse, Status> {
    let request = v1::live_open::Request::Events(v1::LiveEventsRequest {
        resource: req.resource,
    });
    let (_, items, _) = read_once(api, call, req.app.as_ref(), request).await?;
    Ok(v1::ListLiveEventsResponse { items })
}

pub(super) async fn logs(
    api: &HubApi,
    call: &Call,
    req: v1::StreamPodLogsRequest,
) -> Result<LogStream, Status> {
    if req.since_seconds < 0 || req.tail_lines < 0 {
        return Err(Status::invalid_argument(
            "since_seconds and tail_lines cannot be negative",
        ));
    }
    if req.container.len() > 253 {
        return Err(Status::invalid_argument(
            "container is longer than 253 bytes",
        ));
    }
    let follow = req.follow;
    let request = v1::live_open::Request::Logs(v1::LiveLogsRequest {
        resource: req.resource,
        container: req.container,
        since_seconds: req.since_seconds,
        tail_lines: req.tail_lines,
        previous: req.previous,
        follow,
    });
    let limit = if follow { MAX_FOLLOW } else { MAX_READ };
    let (mut stream, cluster) = open(
        api,
        call,
        req.app.as_ref(),
        Action::ReadLogs,
        request,
        MAX_LOG_BYTES,
        limit,
    )
    .await?;
    // A few chunks ahead of the client at most: the spoke's credit follows what the client takes.
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + limit + Duration::from_secs(5);
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                () = tx.closed() => return,
                () = tokio::time::sleep_until(deadline) => {
                    let _ = tx.send(Err(Status::deadline_exceeded(format!("the log session on cluster {cluster} reached its time limit")))).await;
                    return;
                }
            };
            let item = match event {
                Some(LiveEvent::Chunk(chunk)) => Ok(v1::PodLogChunk {
                    pod: chunk.pod,
                    container: chunk.container,
                    data: chunk.data,
                }),
                Some(LiveEvent::End(end)) => match end_status(&end, &cluster) {
                    None => return,
                    Some(status) => Err(status),
                },
                None => Err(Status::unavailable(format!(
                    "the stream of cluster {cluster} ended during the log session"
                ))),
            };
            let last = item.is_err();
            // The client went away: dropping the session cancels it at the spoke.
            if tx.send(item).await.is_err() || last {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_end_maps_to_a_status_naming_the_cluster() {
        let end = |code: LiveEndCode| v1::LiveEnd {
            session_id: "s".into(),
            code: code as i32,
            message: "pod web-1 does not exist".into(),
        };
        assert!(end_status(&end(LiveEndCode::Ok), "edge-1").is_none());
        for (code, want) in [
            (LiveEndCode::NotFound, tonic::Code::NotFound),
            (LiveEndCode::Forbidden, tonic::Code::PermissionDenied),
            (LiveEndCode::Invalid, tonic::Code::InvalidArgument),
            (LiveEndCode::Limit, tonic::Code::ResourceExhausted),
            (LiveEndCode::Unavailable, tonic::Code::Unavailable),
            (LiveEndCode::Cancelled, tonic::Code::Cancelled),
            (LiveEndCode::Unspecified, tonic::Code::FailedPrecondition),
        ] {
            let status = end_status(&end(code), "edge-1").unwrap();
            assert_eq!(status.code(), want);
            assert_eq!(status.message(), "cluster edge-1: pod web-1 does not exist");
        }
    }
}
