//! Live reads and exec through the app's spoke (`GetLiveManifest`, `ListLiveEvents`, `StreamPodLogs`, `ExecPod`): authorized here (logs need the project's log role, exec its exec role, off by default), opened as a session on the stream this replica holds for the app's cluster, answered from the cluster now and never stored; every exec session is audited when it starts and when it ends.

use std::pin::Pin;
use std::time::Duration;

use edgecd_core::access::Action;
use edgecd_core::app::AppOrigin;
use edgecd_proto::v1::{self, LiveEndCode};
use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::{Call, HubApi, convert, relay};
use crate::link::live::{INPUT_WINDOW, LiveEvent, LiveRequest, LiveStream, input_cost};
use crate::retry::with_retry_after;
use crate::store::{AuditEntry, ConnectionKind};

/// A manifest or an event list larger than this is refused (bytes).
const MAX_ANSWER: u64 = 4 * 1024 * 1024;
/// Bytes of logs one call reads at most (a follow ends with RESOURCE_EXHAUSTED beyond).
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// How long a log follow lasts at most; the client reconnects for more.
const MAX_FOLLOW: Duration = Duration::from_secs(3600);
/// How long a read of the whole log may take.
const MAX_READ: Duration = Duration::from_secs(60);

/// How long an exec session lasts at most.
const MAX_EXEC: Duration = Duration::from_secs(4 * 3600);
/// Output bytes of one exec session at most.
const MAX_EXEC_BYTES: u64 = 64 * 1024 * 1024;
/// How long the client has to send its first request (the start).
const EXEC_START: Duration = Duration::from_secs(10);
/// Stdin bytes in one request at most (clients split larger writes).
pub const MAX_STDIN_CHUNK: usize = 32 * 1024;
/// A command's arguments, in number and in bytes.
const MAX_ARGS: usize = 256;
const MAX_COMMAND_BYTES: usize = 16 * 1024;

pub type LogStream = Pin<Box<dyn Stream<Item = Result<v1::PodLogChunk, Status>> + Send>>;
pub type ExecStream = Pin<Box<dyn Stream<Item = Result<v1::ExecPodResponse, Status>> + Send>>;

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

/// Where a live call is answered: a session on a stream this replica holds, or the replica that holds it.
enum Opened {
    Here(LiveStream, String),
    There(Box<relay::Peer>),
}

/// Opens a session for `app` on its cluster's stream, after checking `action` in its project; when another
/// replica holds the stream, that replica (if the call can be relayed there).
async fn open(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    action: Action,
    request: v1::live_open::Request,
    max_bytes: u64,
    max_duration: Duration,
) -> Result<Opened, Status> {
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
    if let Ok(stream) = registry.open_live(&cluster.name, request) {
        return Ok(Opened::Here(stream, cluster.name));
    }
    let holder = &cluster.connection.hub_replica;
    if let Some(peer) = relay::peer(api, call, holder).await {
        return Ok(Opened::There(Box::new(peer)));
    }
    Err(with_retry_after(
        Status::unavailable(format!(
            "the stream of cluster {} is held by hub replica {holder}, not this one, and the call cannot be relayed \
             there (a relayed call, a replica without a peer address, or credentials that cannot travel); retry, \
             or ask that replica",
            cluster.name,
        )),
        retry,
    ))
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
                Some(LiveEvent::InputCredit(_)) => {}
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

/// One answer (a manifest or events) read here, or the replica to ask.
enum Once {
    Read(Vec<u8>, Vec<v1::Event>, String),
    There(Box<relay::Peer>),
}

/// Reads one answer (a manifest or events) about `app` within the query timeout.
async fn read_once(
    api: &HubApi,
    call: &Call,
    app: Option<&v1::AppRef>,
    request: v1::live_open::Request,
) -> Result<Once, Status> {
    let limit = api.config().query_timeout;
    match open(api, call, app, Action::Read, request, MAX_ANSWER, limit).await? {
        Opened::Here(stream, cluster) => {
            let (data, events) = gather(stream, &cluster, limit).await?;
            Ok(Once::Read(data, events, cluster))
        }
        Opened::There(peer) => Ok(Once::There(peer)),
    }
}

pub(super) async fn manifest(
    api: &HubApi,
    call: &Call,
    req: v1::GetLiveManifestRequest,
) -> Result<v1::LiveManifest, Status> {
    let request = v1::live_open::Request::Manifest(v1::LiveManifestRequest {
        resource: req.resource.clone(),
        managed_fields: req.managed_fields,
    });
    let (data, cluster) = match read_once(api, call, req.app.as_ref(), request).await? {
        Once::Read(data, _, cluster) => (data, cluster),
        Once::There(mut peer) => {
            let request = peer.request(req);
            return Ok(peer.client.get_live_manifest(request).await?.into_inner());
        }
    };
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
        resource: req.resource.clone(),
    });
    match read_once(api, call, req.app.as_ref(), request).await? {
        Once::Read(_, items, _) => Ok(v1::ListLiveEventsResponse { items }),
        Once::There(mut peer) => {
            let request = peer.request(req);
            Ok(peer.client.list_live_events(request).await?.into_inner())
        }
    }
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
    let relayed = req.clone();
    let request = v1::live_open::Request::Logs(v1::LiveLogsRequest {
        resource: req.resource,
        container: req.container,
        since_seconds: req.since_seconds,
        tail_lines: req.tail_lines,
        previous: req.previous,
        follow,
    });
    let limit = if follow { MAX_FOLLOW } else { MAX_READ };
    let (mut stream, cluster) = match open(
        api,
        call,
        req.app.as_ref(),
        Action::ReadLogs,
        request,
        MAX_LOG_BYTES,
        limit,
    )
    .await?
    {
        Opened::Here(stream, cluster) => (stream, cluster),
        Opened::There(mut peer) => {
            // The holder's stream, as it comes; dropping it ends the read there.
            let request = peer.request(relayed);
            let stream = peer.client.stream_pod_logs(request).await?.into_inner();
            return Ok(Box::pin(stream));
        }
    };
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
                Some(LiveEvent::InputCredit(_)) => continue,
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

/// Checks a start request: a command, bounded; a sane terminal size.
fn check_start(start: &v1::ExecStart) -> Result<(), Status> {
    if start.command.is_empty() || start.command[0].is_empty() {
        return Err(Status::invalid_argument("exec needs a command"));
    }
    let bytes: usize = start.command.iter().map(String::len).sum();
    if start.command.len() > MAX_ARGS || bytes > MAX_COMMAND_BYTES {
        return Err(Status::invalid_argument(format!(
            "the command is too long: at most {MAX_ARGS} arguments and {MAX_COMMAND_BYTES} bytes"
        )));
    }
    if start.container.len() > 253 {
        return Err(Status::invalid_argument(
            "container is longer than 253 bytes",
        ));
    }
    if let Some(size) = &start.size
        && (size.width > 10_000 || size.height > 10_000)
    {
        return Err(Status::invalid_argument(
            "the terminal is larger than 10000 cells a side",
        ));
    }
    if start.tty && !start.stdin {
        return Err(Status::invalid_argument("a TTY needs stdin"));
    }
    Ok(())
}

/// What an exec session's audit entries name.
struct ExecAudit {
    api: HubApi,
    actor: String,
    source: String,
    target: String,
    command: String,
}

impl ExecAudit {
    async fn write(&self, result: &str, message: String) {
        let entry = AuditEntry {
            actor: self.actor.clone(),
            action: "ExecPod".into(),
            target: self.target.clone(),
            source: self.source.clone(),
            result: result.to_owned(),
            message,
            time: time::OffsetDateTime::now_utc(),
        };
        if let Err(error) = self.api.store().append_audit(&entry).await {
            tracing::warn!(%error, target = %self.target, "Cannot write the exec session's audit entry.");
        }
    }
}

/// `ExecPod`: the first request names the command; the session then carries stdin and resizes one way (within the
/// spoke's input credit, so a fast paste waits for the command rather than piling up at the spoke) and the
/// command's output the other (within the client's pace), until the command exits, a limit is reached, or the
/// client goes away (which cancels it at the spoke).
pub(super) async fn exec(
    api: &HubApi,
    call: &Call,
    mut input: tonic::Streaming<v1::ExecPodRequest>,
) -> Result<ExecStream, Status> {
    let first = tokio::time::timeout(EXEC_START, input.message())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!("no start request within {}s", EXEC_START.as_secs()))
        })??;
    let Some(v1::ExecPodRequest {
        request: Some(v1::exec_pod_request::Request::Start(start)),
    }) = first
    else {
        return Err(Status::invalid_argument(
            "the first request of an exec session must be its start",
        ));
    };
    check_start(&start)?;
    let relayed = start.clone();
    let app = start.app.clone().unwrap_or_default();
    let resource = start
        .resource
        .as_ref()
        .map(|r| format!("{}/{}", r.kind, r.name))
        .unwrap_or_default();
    let command = start.command.join(" ");
    let stdin = start.stdin;
    let request = v1::live_open::Request::Exec(v1::LiveExecRequest {
        resource: start.resource,
        container: start.container,
        command: start.command,
        stdin: start.stdin,
        tty: start.tty,
        size: start.size,
    });
    let opened = open(
        api,
        call,
        start.app.as_ref(),
        Action::Exec,
        request,
        MAX_EXEC_BYTES,
        MAX_EXEC,
    )
    .await;
    let audit = ExecAudit {
        api: api.clone(),
        actor: call.principal.subject.clone(),
        source: call.peer.clone(),
        target: format!(
            "{}/{} {resource} on cluster {}",
            app.project,
            app.name,
            match &opened {
                Ok(Opened::Here(_, cluster)) => cluster.as_str(),
                Ok(Opened::There(peer)) => peer.replica.as_str(),
                Err(_) => "?",
            }
        ),
        command,
    };
    let (mut stream, cluster) = match opened {
        Ok(Opened::Here(stream, cluster)) => (stream, cluster),
        Ok(Opened::There(mut peer)) => {
            // The holder runs (and audits) the session: the start, then the client's requests as they come.
            let first = v1::ExecPodRequest {
                request: Some(v1::exec_pod_request::Request::Start(relayed)),
            };
            let rest = futures::stream::unfold(input, |mut input| async move {
                match input.message().await {
                    Ok(Some(message)) => Some((message, input)),
                    _ => None,
                }
            });
            let request = peer.request(futures::stream::once(async { first }).chain(rest));
            let stream = peer.client.exec_pod(request).await?.into_inner();
            return Ok(Box::pin(stream));
        }
        Err(status) => {
            audit
                .write(
                    crate::metrics::code_name(status.code()),
                    format!("refused `{}`: {}", audit.command, status.message()),
                )
                .await;
            return Err(status);
        }
    };
    audit.write("started", format!("`{}`", audit.command)).await;
    tracing::info!(actor = %audit.actor, target = %audit.target, "Exec session started.");
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let deadline = started + MAX_EXEC + Duration::from_secs(5);
        let mut outstanding = 0usize;
        let mut input_open = true;
        let (mut bytes_in, mut bytes_out) = (0u64, 0u64);
        let mut place = String::new();
        let ending: Result<i32, Status> = loop {
            tokio::select! {
                event = stream.next() => {
                    let response = match event {
                        Some(LiveEvent::Chunk(chunk)) => {
                            bytes_out += chunk.data.len() as u64;
                            match v1::LiveChannel::try_from(chunk.channel).unwrap_or_default() {
                                v1::LiveChannel::Unspecified => {
                                    place = format!("pod {} container {}", chunk.pod, chunk.container);
                                    v1::exec_pod_response::Response::Started(v1::ExecStarted {
                                        cluster: cluster.clone(),
                                        pod: chunk.pod,
                                        container: chunk.container,
                                    })
                                }
                                v1::LiveChannel::Stdout => v1::exec_pod_response::Response::Stdout(chunk.data),
                                v1::LiveChannel::Stderr => v1::exec_pod_response::Response::Stderr(chunk.data),
                            }
                        }
                        Some(LiveEvent::InputCredit(bytes)) => {
                            outstanding = outstanding.saturating_sub(bytes as usize);
                            continue;
                        }
                        Some(LiveEvent::End(end)) => match (end_status(&end, &cluster), end.exit_code) {
                            (None, Some(code)) => break Ok(code),
                            (None, None) => break Err(Status::internal(format!("cluster {cluster}: the command ended without an exit code"))),
                            (Some(status), _) => break Err(status),
                        },
                        None => break Err(Status::unavailable(format!("the stream of cluster {cluster} ended during the exec session"))),
                    };
                    if tx.send(Ok(v1::ExecPodResponse { response: Some(response) })).await.is_err() {
                        break Err(Status::cancelled("the client went away"));
                    }
                }
                message = input.message(), if input_open && outstanding < INPUT_WINDOW => {
                    use v1::exec_pod_request::Request;
                    let piece = match message {
                        Ok(Some(v1::ExecPodRequest { request: Some(Request::Stdin(data)) })) if stdin => {
                            if data.len() > MAX_STDIN_CHUNK {
                                break Err(Status::invalid_argument(format!("a stdin request carries at most {MAX_STDIN_CHUNK} bytes")));
                            }
                            bytes_in += data.len() as u64;
                            v1::live_input::Input::Stdin(data)
                        }
                        Ok(Some(v1::ExecPodRequest { request: Some(Request::Resize(size)) })) => {
                            if size.width > 10_000 || size.height > 10_000 {
                                continue;
                            }
                            v1::live_input::Input::Resize(size)
                        }
                        Ok(Some(v1::ExecPodRequest { request: Some(Request::StdinClosed(_)) })) | Ok(None) => {
                            // The client closed stdin (or its side of the call): the command reads EOF, its output
                            // still comes.
                            input_open = false;
                            if !stdin {
                                continue;
                            }
                            v1::live_input::Input::StdinClosed(true)
                        }
                        Ok(Some(v1::ExecPodRequest { request: Some(Request::Stdin(_)) })) => {
                            break Err(Status::invalid_argument("stdin was not asked for in the start request"));
                        }
                        Ok(Some(v1::ExecPodRequest { request: Some(Request::Start(_)) })) => {
                            break Err(Status::invalid_argument("an exec session has one start request"));
                        }
                        Ok(Some(v1::ExecPodRequest { request: None })) => continue,
                        Err(status) => break Err(Status::cancelled(format!("the client's requests failed: {}", status.message()))),
                    };
                    outstanding += input_cost(&piece);
                    if !stream.input(piece).await {
                        break Err(Status::unavailable(format!("the stream of cluster {cluster} ended during the exec session")));
                    }
                }
                () = tx.closed() => break Err(Status::cancelled("the client went away")),
                () = tokio::time::sleep_until(deadline) => {
                    break Err(Status::deadline_exceeded(format!("the exec session on cluster {cluster} reached its time limit")));
                }
            }
        };
        // Dropping the session (below) cancels it at the spoke unless it ended there.
        drop(stream);
        let took = started.elapsed().as_secs_f64();
        let summary = format!(
            "`{}` in {place}: {took:.1}s, {bytes_in} bytes in, {bytes_out} bytes out",
            audit.command
        );
        match ending {
            Ok(code) => {
                audit
                    .write("ok", format!("{summary}, exit code {code}"))
                    .await;
                let _ = tx
                    .send(Ok(v1::ExecPodResponse {
                        response: Some(v1::exec_pod_response::Response::Exit(v1::ExecExit {
                            code,
                        })),
                    }))
                    .await;
            }
            Err(status) => {
                audit
                    .write(
                        crate::metrics::code_name(status.code()),
                        format!("{summary}: {}", status.message()),
                    )
                    .await;
                let _ = tx.send(Err(status)).await;
            }
        }
        tracing::info!(target = %audit.target, seconds = took, "Exec session ended.");
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_bounded_and_names_a_command() {
        let start = |command: Vec<String>| v1::ExecStart {
            command,
            stdin: true,
            tty: true,
            ..Default::default()
        };
        assert!(check_start(&start(vec!["sh".into()])).is_ok());
        for (bad, why) in [
            (start(vec![]), "needs a command"),
            (start(vec![String::new()]), "needs a command"),
            (start(vec!["x".into(); MAX_ARGS + 1]), "too long"),
            (start(vec!["x".repeat(MAX_COMMAND_BYTES + 1)]), "too long"),
            (
                v1::ExecStart {
                    stdin: false,
                    ..start(vec!["sh".into()])
                },
                "a TTY needs stdin",
            ),
            (
                v1::ExecStart {
                    size: Some(v1::TerminalSize {
                        width: 100_000,
                        height: 10,
                    }),
                    ..start(vec!["sh".into()])
                },
                "larger than",
            ),
        ] {
            let status = check_start(&bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains(why), "{}", status.message());
        }
    }

    #[test]
    fn every_end_maps_to_a_status_naming_the_cluster() {
        let end = |code: LiveEndCode| v1::LiveEnd {
            session_id: "s".into(),
            code: code as i32,
            message: "pod web-1 does not exist".into(),
            exit_code: None,
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
