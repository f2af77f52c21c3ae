//! The console's terminal: `GET /api/v1/apps/P/N/exec?…resource…&container&command` upgraded to a WebSocket and carried to `ExecPod` as the same gRPC call the CLI makes (so it is authorized, bounded and audited alike): binary frames are the terminal's bytes both ways, text frames JSON control (`resize`, `started`, `exit`, `error`).
//!
//! ```text
//!  browser ─ws binary (keys)─► stdin ─┐                        ┌─► ExecPod (gRPC request stream, encoded frames)
//!  browser ─ws text {resize}─► resize ─┴─► ExecPodRequest channel┘
//!  browser ◄─ws binary (output) / text {started, exit, error}─ ExecPodResponse stream
//! ```

use std::convert::Infallible;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use bytes::{BufMut as _, Bytes, BytesMut};
use edgecd_proto::v1::{self, hub_service_server::HubService};
use futures::{SinkExt as _, StreamExt as _};
use hyper_util::rt::TokioIo;
use prost::Message as _;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{ApiError, ApiQuery, Caller, Console, app_ref};

/// Bytes of one WebSocket message from the browser at most (keys, a paste, a resize).
const MAX_MESSAGE: usize = 64 * 1024;
/// The shell the terminal starts when the page names none.
const DEFAULT_SHELL: &str = "sh";

/// Where the terminal runs: a pod (or workload) of the app, a container, a command.
#[derive(Debug, Deserialize)]
pub(super) struct ExecQuery {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
    #[serde(default)]
    container: String,
    /// The command, its words separated by spaces; default `sh`.
    #[serde(default)]
    command: String,
    #[serde(default)]
    cols: u32,
    #[serde(default)]
    rows: u32,
}

/// What the page sends as text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Control {
    Resize { cols: u32, rows: u32 },
    StdinClosed(serde::de::IgnoredAny),
}

/// Whether the page's origin is this console (a WebSocket is not bound by the same-origin policy: another site's
/// page could open one with the user's cookie). No Origin header: not a browser.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let authority = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// `ExecPodRequest`s as the body of a gRPC request: each a length-prefixed frame.
fn grpc_body(
    requests: mpsc::Receiver<v1::ExecPodRequest>,
) -> http_body_util::StreamBody<
    impl futures::Stream<Item = Result<hyper::body::Frame<Bytes>, Infallible>> + Send + 'static,
> {
    let frames = tokio_stream::wrappers::ReceiverStream::new(requests).map(|request| {
        let message = request.encode_to_vec();
        let mut frame = BytesMut::with_capacity(5 + message.len());
        frame.put_u8(0);
        frame.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
        frame.extend_from_slice(&message);
        Ok(hyper::body::Frame::data(frame.freeze()))
    });
    http_body_util::StreamBody::new(frames)
}

/// `GET /api/v1/apps/P/N/exec`: the WebSocket handshake, then the session (refusals come as an `error` message
/// on the socket, which a page can read, unlike a failed handshake).
pub(super) async fn exec<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ExecQuery>,
    mut request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    let upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (true, Some(key)) = (upgrade, key) else {
        return Err(ApiError::bad_request(
            "the terminal is a WebSocket: connect with Upgrade: websocket",
        ));
    };
    if !same_origin(headers) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "permission_denied",
            message: "the terminal opens only from this console's own pages".into(),
        });
    }
    let command: Vec<String> = if q.command.trim().is_empty() {
        vec![DEFAULT_SHELL.to_owned()]
    } else {
        q.command.split_whitespace().map(str::to_owned).collect()
    };
    let start = v1::ExecStart {
        app: app_ref(project, name),
        resource: Some(v1::ResourceKey {
            group: q.group,
            version: q.version,
            kind: q.kind,
            namespace: q.namespace,
            name: q.name,
        }),
        container: q.container,
        command,
        stdin: true,
        tty: true,
        size: (q.cols > 0 && q.rows > 0).then_some(v1::TerminalSize {
            width: q.cols,
            height: q.rows,
        }),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded to a WebSocket",
        ));
    };
    let api = std::sync::Arc::clone(&c.inner.api);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "The terminal's WebSocket upgrade failed.");
                return;
            }
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        session(api.as_ref(), &caller, start, socket).await;
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade".to_owned()),
            (header::UPGRADE, "websocket".to_owned()),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response())
}

/// One terminal: the socket to `ExecPod` and back, until the command exits, the page goes away or either fails.
async fn session<S: HubService>(
    api: &S,
    caller: &Caller,
    start: v1::ExecStart,
    socket: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
) {
    let (mut to_page, mut from_page) = socket.split();
    let (requests, rx) = mpsc::channel(8);
    let _ = requests
        .send(v1::ExecPodRequest {
            request: Some(v1::exec_pod_request::Request::Start(start)),
        })
        .await;
    let decoder = tonic_prost::ProstDecoder::<v1::ExecPodRequest>::new(
        tonic::codec::BufferSettings::default(),
    );
    let input = tonic::Streaming::new_request(decoder, grpc_body(rx), None, Some(MAX_MESSAGE * 2));
    let error = |status: &tonic::Status| {
        let e = ApiError::from(status.clone());
        Message::text(json!({"error": {"code": e.code, "message": e.message}}).to_string())
    };
    let mut output = match api.exec_pod(caller.request(input)).await {
        Ok(output) => Box::pin(output.into_inner()),
        Err(status) => {
            let _ = to_page.send(error(&status)).await;
            let _ = to_page.close().await;
            return;
        }
    };
    loop {
        tokio::select! {
            answer = output.next() => {
                let message = match answer {
                    Some(Ok(v1::ExecPodResponse { response: Some(response) })) => match response {
                        v1::exec_pod_response::Response::Started(started) => Message::text(
                            json!({"started": {"cluster": started.cluster, "pod": started.pod, "container": started.container}}).to_string(),
                        ),
                        v1::exec_pod_response::Response::Stdout(data)
                        | v1::exec_pod_response::Response::Stderr(data) => Message::binary(data),
                        v1::exec_pod_response::Response::Exit(exit) => {
                            let _ = to_page.send(Message::text(json!({"exit": {"code": exit.code}}).to_string())).await;
                            break;
                        }
                    },
                    Some(Ok(v1::ExecPodResponse { response: None })) => continue,
                    Some(Err(status)) => {
                        let _ = to_page.send(error(&status)).await;
                        break;
                    }
                    None => break,
                };
                if to_page.send(message).await.is_err() {
                    break;
                }
            }
            message = from_page.next() => {
                let request = match message {
                    Some(Ok(Message::Binary(data))) => v1::exec_pod_request::Request::Stdin(data.to_vec()),
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(text.as_str()) {
                        Ok(Control::Resize { cols, rows }) => {
                            v1::exec_pod_request::Request::Resize(v1::TerminalSize { width: cols, height: rows })
                        }
                        Ok(Control::StdinClosed(_)) => v1::exec_pod_request::Request::StdinClosed(true),
                        Err(_) => continue,
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    // The page closed the terminal: dropping the call cancels the command at the spoke.
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if requests.send(v1::ExecPodRequest { request: Some(request) }).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_page.close().await;
}
