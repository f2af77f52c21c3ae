//! `pods/exec` over WebSocket (subprotocols `v5.channel.k8s.io` and `v4.channel.k8s.io`), answered by the simulated runtime of `exec_runtime`.
//!
//! `GET` (or `POST`) `/api/v1/namespaces/{ns}/pods/{name}/exec?command=…&container=…&stdin=…&stdout=…&stderr=…&tty=…`
//! with a WebSocket upgrade. The request is checked as the real API server and kubelet check it (unknown pod
//! `404`, unknown container, pod without a node, no stream, no command, pod not running: `400` with a `Status`),
//! then answered `101 Switching Protocols` with `v5.channel.k8s.io` when the client offers it, else
//! `v4.channel.k8s.io`. Binary frames start with their channel: 0 stdin, 1 stdout, 2 stderr, 3 error (one
//! `metav1.Status` at the end), 4 resize (`{"Width":…,"Height":…}`), and in v5 255 close (`[255, 0]`: stdin EOF).
//! As the real server does, the session starts with an empty frame on the lowest output channel asked for.
//!
//! Bounds: frames of at most [`MAX_FRAME`] bytes (a larger one ends the session), at most [`STDIN_QUEUE`] stdin
//! frames waiting for the command (then the client is not read: TCP back-pressure), at most [`OUTPUT_QUEUE`]
//! output chunks waiting for the client, a session time limit (`EmulatorConfig::exec_timeout`), and a cap on
//! concurrent sessions ([`ExecLimits`]; `429` beyond it).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::exec_runtime::{Process, Stream, TerminalSize};
use super::resources::ResourceType;
use super::server::Body;
use super::status::{ApiError, ApiResult};
use super::store::Store;

/// The remote-command subprotocol with the close channel (255).
pub const V5: &str = "v5.channel.k8s.io";
/// The remote-command subprotocol with a JSON `Status` on the error channel.
pub const V4: &str = "v4.channel.k8s.io";
/// Largest WebSocket frame or message accepted from the client.
pub const MAX_FRAME: usize = 64 * 1024;
/// Stdin frames received but not yet read by the command.
pub const STDIN_QUEUE: usize = 16;
/// Output chunks (at most `exec_runtime::MAX_CHUNK` bytes each) not yet sent to the client.
pub const OUTPUT_QUEUE: usize = 16;
/// Longest command line accepted (the sum of its arguments' lengths).
pub const MAX_COMMAND: usize = 64 * 1024;
/// How long the status and the close frame may take once the command is over.
const FINISH_WAIT: Duration = Duration::from_secs(5);

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// Limits shared by all exec sessions of an emulator.
#[derive(Debug, Clone)]
pub struct ExecLimits {
    /// The longest an exec session may last; then it gets a failure `Status` and is closed.
    pub session_timeout: Duration,
    /// Permits for concurrent sessions.
    pub sessions: Arc<Semaphore>,
    /// The number of permits, for the `429` message.
    pub max_sessions: usize,
}

impl ExecLimits {
    /// Limits allowing `max_sessions` concurrent sessions of at most `session_timeout` each.
    pub fn new(session_timeout: Duration, max_sessions: usize) -> Self {
        Self {
            session_timeout,
            sessions: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
        }
    }
}

/// The query of an exec request (`PodExecOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// The command and its arguments (repeated `command` parameters).
    pub command: Vec<String>,
    /// The container; the only one when not given.
    pub container: Option<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr.
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

/// Parses the query. Booleans are read as the API server reads query parameters: `false` and `0` (any case)
/// are false, any other value true.
pub fn parse_options(query: Option<&str>) -> ApiResult<ExecOptions> {
    let mut opts = ExecOptions::default();
    let mut length = 0usize;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let flag = || !matches!(value.to_ascii_lowercase().as_str(), "false" | "0");
        match &*key {
            "command" => {
                length = length.saturating_add(value.len() + 1);
                opts.command.push(value.into_owned());
            }
            "container" => opts.container = Some(value.into_owned()).filter(|c| !c.is_empty()),
            "stdin" => opts.stdin = flag(),
            "stdout" => opts.stdout = flag(),
            "stderr" => opts.stderr = flag(),
            "tty" => opts.tty = flag(),
            _ => {}
        }
    }
    if length > MAX_COMMAND {
        return Err(ApiError::bad_request(format!(
            "the command is too long: {length} bytes, the emulator takes at most {MAX_COMMAND}"
        )));
    }
    Ok(opts)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn container_names<'a>(pod: &'a Value, kinds: &[&str]) -> Vec<&'a str> {
    kinds
        .iter()
        .filter_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array))
        .flatten()
        .map(|c| str_at(c, "/name"))
        .collect()
}

/// Checks an exec request against the pod, in the real server's order; returns the container to run in.
/// With a TTY, stderr is dropped (merged into stdout), as the kubelet does.
pub fn check_pod(pod: &Value, opts: &mut ExecOptions) -> ApiResult<String> {
    let name = str_at(pod, "/metadata/name");
    let container = match opts.container.as_deref() {
        Some(c) => {
            let all = container_names(
                pod,
                &["initContainers", "containers", "ephemeralContainers"],
            );
            if !all.contains(&c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.to_string()
        }
        None => match container_names(pod, &["containers"]).as_slice() {
            [only] => (*only).to_string(),
            [] => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}"
                )));
            }
            _ => {
                let all = container_names(
                    pod,
                    &["initContainers", "containers", "ephemeralContainers"],
                );
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )));
            }
        },
    };
    if str_at(pod, "/spec/nodeName").is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if opts.tty {
        opts.stderr = false;
    }
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if opts.command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    if str_at(pod, "/status/phase") != "Running" {
        return Err(ApiError::bad_request(format!("pod {name} is not running")));
    }
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| {
        pod.pointer(&format!("/status/{k}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| str_at(s, "/name") == container);
    if status.is_some_and(|s| s.pointer("/state/running").is_none()) {
        return Err(ApiError::bad_request(format!(
            "container {container} of pod {name} is not running"
        )));
    }
    Ok(container)
}

fn tokens(headers: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Checks the WebSocket upgrade; returns the subprotocol and the `Sec-WebSocket-Accept` value.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<(&'static str, String)> {
    let upgrade = tokens(headers, header::UPGRADE);
    let is_websocket = upgrade.iter().any(|t| t.eq_ignore_ascii_case("websocket"))
        && tokens(headers, header::CONNECTION)
            .iter()
            .any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !is_websocket {
        return Err(ApiError::bad_request(match upgrade.first() {
            Some(other) => format!(
                "the emulator serves pods/exec over WebSocket only ({V5}, {V4}), not {other}"
            ),
            None => "Upgrade request required".to_string(),
        }));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(ApiError::bad_request(
            "unsupported WebSocket version: Sec-WebSocket-Version 13 is required",
        ));
    }
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| !k.is_empty())
    else {
        return Err(ApiError::bad_request("missing Sec-WebSocket-Key"));
    };
    let offered = tokens(headers, header::SEC_WEBSOCKET_PROTOCOL);
    let protocol = if offered.iter().any(|p| p == V5) {
        V5
    } else if offered.iter().any(|p| p == V4) {
        V4
    } else {
        return Err(ApiError::forbidden(
            format!(
                "requested protocol(s) are not supported: [{}]; supports [{V5} {V4}]",
                offered.join(" ")
            ),
            None,
        ));
    };
    Ok((protocol, derive_accept_key(key.as_bytes())))
}

/// Serves `pods/{name}/exec`: checks the request, answers `101` and runs the session in the background.
pub async fn serve(
    limits: &ExecLimits,
    shutdown: watch::Receiver<bool>,
    store: &Store,
    rt: &ResourceType,
    mut req: Request<Incoming>,
    namespace: &str,
    name: &str,
) -> ApiResult<Response<Body>> {
    let mut opts = parse_options(req.uri().query())?;
    let pod = store.get(rt, namespace, name)?;
    check_pod(&pod, &mut opts)?;
    let (protocol, accept) = negotiate(req.headers())?;
    let permit = limits
        .sessions
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError {
            code: 429,
            reason: "TooManyRequests",
            message: format!(
                "too many exec sessions: the emulator runs at most {} at once",
                limits.max_sessions
            ),
            details: None,
        })?;
    // The pod's name (not `spec.hostname`), as the other back end's runtime answers `hostname`.
    let hostname = name.to_string();
    let session = Session {
        v5: protocol == V5,
        opts,
        hostname,
        timeout: limits.session_timeout,
        shutdown,
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let running = store.exec_session();
    tokio::spawn(async move {
        let _permit = permit;
        let _running = running;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .max_frame_size(Some(MAX_FRAME))
            .max_message_size(Some(MAX_FRAME))
            .max_write_buffer_size(4 * 1024 * 1024);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        session.run(ws).await;
    });
    let mut resp = Response::new(Empty::<Bytes>::new().boxed_unsync());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol),
    );
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(resp)
}

/// The `Status` sent on the error channel when the command ended with `code`.
pub fn exit_status(code: i32, command: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

fn internal_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// A terminal size from a resize frame; field names in any case, as Go's JSON decoder takes them.
fn parse_size(payload: &[u8]) -> Option<TerminalSize> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let field = |name: &str| {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_u64())
            .and_then(|n| u16::try_from(n).ok())
    };
    Some(TerminalSize {
        width: field("width")?,
        height: field("height")?,
    })
}

enum End {
    Exited(i32),
    Timeout,
    Gone,
}

struct Session {
    v5: bool,
    opts: ExecOptions,
    hostname: String,
    timeout: Duration,
    shutdown: watch::Receiver<bool>,
}

impl Session {
    async fn run(self, ws: Ws) {
        let Session {
            v5,
            opts,
            hostname,
            timeout,
            mut shutdown,
        } = self;
        let deadline = Instant::now() + timeout;
        let (mut sink, stream) = ws.split();
        let first = if opts.stdout {
            STDOUT
        } else if opts.stderr {
            STDERR
        } else {
            ERROR
        };
        if !send(&mut sink, vec![first], deadline).await {
            return;
        }
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        let (size_tx, size_rx) = watch::channel(None);
        let (out_tx, mut out_rx) = mpsc::channel(OUTPUT_QUEUE);
        let mut reader = tokio::spawn(read_client(
            stream,
            opts.stdin.then_some(stdin_tx),
            size_tx,
            v5,
        ));
        let mut process = Process::new(
            hostname,
            opts.stdin.then_some(stdin_rx),
            out_tx,
            opts.tty.then_some(size_rx),
        );
        let mut reader_done = false;
        let end = {
            let run = process.exec(&opts.command);
            tokio::pin!(run);
            let timer = tokio::time::sleep_until(deadline);
            tokio::pin!(timer);
            loop {
                tokio::select! {
                    Some((stream, data)) = out_rx.recv() => {
                        if !forward(&mut sink, &opts, stream, data, deadline).await {
                            break End::Gone;
                        }
                    }
                    code = &mut run => break code.map_or(End::Gone, End::Exited),
                    _ = &mut reader => {
                        reader_done = true;
                        break End::Gone;
                    }
                    () = &mut timer => break End::Timeout,
                    _ = shutdown.changed() => break End::Gone,
                }
            }
        };
        drop(process);
        let finish = Instant::now() + FINISH_WAIT;
        match end {
            End::Exited(code) => {
                let mut sent = true;
                while let (true, Ok((stream, data))) = (sent, out_rx.try_recv()) {
                    sent = forward(&mut sink, &opts, stream, data, deadline.max(finish)).await;
                }
                let mut frame = vec![ERROR];
                frame.extend(exit_status(code, &opts.command).to_string().into_bytes());
                if sent && send(&mut sink, frame, finish).await {
                    close(&mut sink, finish).await;
                }
            }
            End::Timeout => {
                let message = format!(
                    "the exec session reached the emulator's time limit ({}s)",
                    timeout.as_secs()
                );
                let mut frame = vec![ERROR];
                frame.extend(internal_status(&message).to_string().into_bytes());
                if send(&mut sink, frame, finish).await {
                    close(&mut sink, finish).await;
                }
            }
            End::Gone => close(&mut sink, finish).await,
        }
        // Keep reading (and dropping) what the client still sends until it closes too: a socket closed with
        // unread data in it is reset, and the reset can overtake the status on its way to the client.
        if !reader_done && tokio::time::timeout_at(finish, &mut reader).await.is_err() {
            reader.abort();
        }
    }
}

/// Sends one binary frame unless the deadline passes first; false when it could not be sent.
async fn send(sink: &mut SplitSink<Ws, Message>, frame: Vec<u8>, deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, sink.send(Message::binary(frame))).await,
        Ok(Ok(()))
    )
}

/// Closes the connection with code 1000: client-go reads a close without a code (1005) as an error
/// (`error reading from error stream: … close 1005 (no status)`), a normal closure as the end of the streams.
async fn close(sink: &mut SplitSink<Ws, Message>, deadline: Instant) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = tokio::time::timeout_at(deadline, async {
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            let _ = sink.close().await;
        }
    })
    .await;
}

/// Sends output on its channel when the client asked for that stream (with a TTY everything is stdout).
async fn forward(
    sink: &mut SplitSink<Ws, Message>,
    opts: &ExecOptions,
    stream: Stream,
    data: Bytes,
    deadline: Instant,
) -> bool {
    let (channel, wanted) = match stream {
        Stream::Stdout => (STDOUT, opts.stdout),
        Stream::Stderr => (STDERR, opts.stderr),
    };
    if !wanted {
        return true;
    }
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(&data);
    send(sink, frame, deadline).await
}

/// Reads the client's frames until it closes: stdin into the command's queue, sizes into the terminal.
///
/// Returns the stdin sender, if still open, rather than dropping it: a client that went away (or broke the
/// protocol) must end the session, not look like the end of stdin to the command.
async fn read_client(
    mut stream: SplitStream<Ws>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    sizes: watch::Sender<Option<TerminalSize>>,
    v5: bool,
) -> Option<mpsc::Sender<Bytes>> {
    while let Some(Ok(message)) = stream.next().await {
        let data = match message {
            Message::Binary(data) => data,
            Message::Close(_) => break,
            _ => continue,
        };
        match data.first().copied() {
            Some(STDIN) if data.len() > 1 => {
                if let Some(tx) = stdin.as_ref()
                    && tx.send(data.slice(1..)).await.is_err()
                {
                    stdin = None;
                }
            }
            Some(RESIZE) => {
                if let Some(size) = parse_size(&data[1..]) {
                    sizes.send_replace(Some(size));
                }
            }
            Some(CLOSE) if v5 && data.get(1) == Some(&STDIN) => stdin = None,
            _ => {}
        }
    }
    stdin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_the_query() {
        let o = parse_options(Some(
            "&stdout=true&stderr=true&container=app&command=sh&command=-c&command=echo%20a",
        ))
        .unwrap();
        assert_eq!(o.command, vec!["sh", "-c", "echo a"]);
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let o = parse_options(Some("stdin=1&tty=FALSE&stdout=0&stderr=")).unwrap();
        assert!(o.stdin && !o.tty && !o.stdout && o.stderr);
        let long = format!("command={}", "x".repeat(MAX_COMMAND + 1));
        assert_eq!(parse_options(Some(&long)).unwrap_err().code, 400);
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n", "containers": [{"name": "app"}], "initContainers": [{"name": "init"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "state": {"running": {}}}]}
        })
    }

    fn check(pod: &Value, query: &str) -> ApiResult<String> {
        check_pod(pod, &mut parse_options(Some(query)).unwrap())
    }

    #[test]
    fn pod_checks() {
        let p = pod();
        assert_eq!(check(&p, "command=true&stdout=1").unwrap(), "app");
        let e = check(&p, "command=true&stdout=1&container=x").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container x is not valid for pod p")
        );
        let e = check(&p, "stdout=1").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "you must specify at least 1 command")
        );
        let e = check(&p, "command=true&stderr=1&tty=1").unwrap_err();
        assert_eq!(
            e.message,
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        let mut two = pod();
        two["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}]);
        let e = check(&two, "command=true&stdout=1").unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        let mut pending = pod();
        pending["status"]["phase"] = json!("Pending");
        let e = check(&pending, "command=true&stdout=1").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (400, "pod p is not running"));
        let mut waiting = pod();
        waiting["status"]["containerStatuses"][0]["state"] = json!({"waiting": {}});
        let e = check(&waiting, "command=true&stdout=1").unwrap_err();
        assert_eq!(e.message, "container app of pod p is not running");
        let mut unscheduled = pod();
        unscheduled["spec"]["nodeName"] = Value::Null;
        let e = check(&unscheduled, "command=true&stdout=1").unwrap_err();
        assert_eq!(e.message, "pod p does not have a host assigned");
    }

    #[test]
    fn protocol_negotiation() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io, v5.channel.k8s.io"),
        );
        let (protocol, accept) = negotiate(&h).unwrap();
        assert_eq!(protocol, V5);
        // RFC 6455's example key and answer.
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        assert_eq!(negotiate(&h).unwrap().0, V4);
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("channel.k8s.io, base64.channel.k8s.io"),
        );
        let e = negotiate(&h).unwrap_err();
        assert_eq!(e.code, 403);
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        let e = negotiate(&h).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(e.message.contains("not SPDY/3.1"), "{}", e.message);
    }

    #[test]
    fn statuses_and_sizes() {
        assert_eq!(
            exit_status(0, &[]).to_string(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let argv = ["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        assert_eq!(
            exit_status(3, &argv).to_string(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        assert_eq!(
            parse_size(br#"{"Width":120,"Height":40}"#),
            Some(TerminalSize {
                width: 120,
                height: 40
            })
        );
        assert_eq!(
            parse_size(br#"{"width":1,"height":2}"#),
            Some(TerminalSize {
                width: 1,
                height: 2
            })
        );
        assert_eq!(parse_size(br#"{"Width":70000,"Height":40}"#), None);
        assert_eq!(parse_size(b"nope"), None);
    }
}
