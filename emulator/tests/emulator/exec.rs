//! `pods/exec` over WebSocket: every case of testdata/exec/cases.json through kube-rs' `Api::<Pod>::exec`, the
//! real server's errors, the v4 subprotocol and refused upgrades on the wire, and the session bounds.

use std::time::Duration;

use edgecd_kube_emulator::EmulatorConfig;
use edgecd_kube_emulator::exec::MAX_FRAME;
use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Client;
use kube::api::{Api, AttachParams, AttachedProcess, PostParams, TerminalSize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::support::{Env, eventually, quiet, start, start_with};

const CASES: &str = include_str!("../../../testdata/exec/cases.json");

/// Creates a pod in `default` and waits until the simulated kubelet reports it in `phase`.
async fn pod_in_phase(client: &Client, name: &str, labels: Value, phase: &str) -> Api<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually(Duration::from_secs(10), || {
        let pods = pods.clone();
        async move {
            let p = pods.get(name).await.ok()?;
            (p.status?.phase.as_deref() == Some(phase)).then_some(())
        }
    })
    .await;
    pods
}

async fn running_pod(client: &Client, name: &str) -> Api<Pod> {
    pod_in_phase(client, name, json!({}), "Running").await
}

#[derive(Debug)]
struct Outcome {
    stdout: String,
    stderr: String,
    status: Status,
}

impl Outcome {
    fn exit(&self) -> i32 {
        if self.status.status.as_deref() == Some("Success") {
            return 0;
        }
        self.status
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("no exit code in {:?}", self.status))
    }
}

/// Runs a started exec to its end: sends the size and stdin (then EOF), collects stdout, stderr and the status.
async fn finish(
    mut attached: AttachedProcess,
    stdin: Option<&[u8]>,
    size: Option<TerminalSize>,
) -> Outcome {
    let status = attached.take_status().unwrap();
    let mut out = attached.stdout().unwrap();
    let err = attached.stderr();
    let out_task = tokio::spawn(async move {
        let mut b = Vec::new();
        out.read_to_end(&mut b).await.unwrap();
        b
    });
    let err_task = tokio::spawn(async move {
        let mut b = Vec::new();
        if let Some(mut e) = err {
            e.read_to_end(&mut b).await.unwrap();
        }
        b
    });
    if let Some(size) = size {
        let mut sizes = attached.terminal_size().unwrap();
        sizes.send(size).await.unwrap();
    }
    if let Some(input) = stdin {
        let mut w = attached.stdin().unwrap();
        w.write_all(input).await.unwrap();
        w.shutdown().await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(15), status)
        .await
        .expect("status in time");
    let Some(status) = status else {
        let r = attached.join().await;
        panic!("no status; the session ended with {r:?}");
    };
    let stdout = String::from_utf8(out_task.await.unwrap()).unwrap();
    let stderr = String::from_utf8(err_task.await.unwrap()).unwrap();
    attached.join().await.unwrap();
    Outcome {
        stdout,
        stderr,
        status,
    }
}

async fn exec(pods: &Api<Pod>, pod: &str, argv: &[&str], stdin: Option<&[u8]>) -> Outcome {
    let ap = AttachParams {
        stdin: stdin.is_some(),
        ..AttachParams::default()
    };
    let attached = pods.exec(pod, argv.to_vec(), &ap).await.unwrap();
    finish(attached, stdin, None).await
}

async fn exec_err(
    pods: &Api<Pod>,
    pod: &str,
    argv: Vec<&str>,
    ap: &AttachParams,
) -> kube::core::Status {
    match pods.exec(pod, argv, ap).await {
        Err(kube::Error::Api(status)) => *status,
        Err(other) => panic!("expected an API error, got {other}"),
        Ok(_) => panic!("expected an API error, the exec started"),
    }
}

#[tokio::test]
async fn exec_cases_of_the_shared_fixture() {
    let env = start().await;
    let pods = running_pod(&env.client, "shell-1").await;
    let cases: Value = serde_json::from_str(CASES).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let argv: Vec<String> = serde_json::from_value(case["argv"].clone()).unwrap();
        let stdin = case["stdin"].as_str().map(str::as_bytes);
        let tty = case["tty"].as_bool().unwrap();
        let size = case["size"].as_object().map(|s| TerminalSize {
            width: u16::try_from(s["width"].as_u64().unwrap()).unwrap(),
            height: u16::try_from(s["height"].as_u64().unwrap()).unwrap(),
        });
        let ap = AttachParams {
            stdin: stdin.is_some(),
            stdout: true,
            stderr: !tty,
            tty,
            ..AttachParams::default()
        };
        let attached = pods.exec("shell-1", argv, &ap).await.unwrap();
        let got = finish(attached, stdin, size).await;
        let expect = |k: &str| case[k].as_str().unwrap().replace("{pod}", "shell-1");
        assert_eq!(got.stdout, expect("stdout"), "case {name:?}: stdout");
        assert_eq!(got.stderr, expect("stderr"), "case {name:?}: stderr");
        assert_eq!(
            i64::from(got.exit()),
            case["exit"].as_i64().unwrap(),
            "case {name:?}: exit ({:?})",
            got.status
        );
    }
}

#[tokio::test]
async fn exec_non_zero_exit_status_is_the_real_servers() {
    let env = start().await;
    let pods = running_pod(&env.client, "status-1").await;
    let got = exec(&pods, "status-1", &["sh", "-c", "exit 3"], None).await;
    // (k8s-openapi's Status serializes with apiVersion and kind; the frame has none, see exec_v4_on_the_wire.)
    let mut status = serde_json::to_value(&got.status).unwrap();
    status
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "apiVersion" && k != "kind");
    assert_eq!(
        status,
        json!({
            "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}
        })
    );
    let got = exec(&pods, "status-1", &["true"], None).await;
    let mut status = serde_json::to_value(&got.status).unwrap();
    status
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "apiVersion" && k != "kind");
    assert_eq!(status, json!({"metadata": {}, "status": "Success"}));
}

#[tokio::test]
async fn exec_errors_are_the_real_servers() {
    let env = start().await;
    let pods = running_pod(&env.client, "err-1").await;
    let ap = AttachParams::default();

    let s = exec_err(&pods, "nope", vec!["true"], &ap).await;
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "pods \"nope\" not found");

    let s = exec_err(
        &pods,
        "err-1",
        vec!["true"],
        &AttachParams::default().container("other"),
    )
    .await;
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert_eq!(s.message, "container other is not valid for pod err-1");

    let s = exec_err(&pods, "err-1", vec![], &ap).await;
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert_eq!(s.message, "you must specify at least 1 command");

    // A pod the kubelet never started (fault `stuck`: Pending, ContainerCreating).
    let stuck = pod_in_phase(
        &env.client,
        "stuck-1",
        json!({"emulator.edgecd.io/fault": "stuck"}),
        "Pending",
    )
    .await;
    eventually(Duration::from_secs(10), || {
        let stuck = stuck.clone();
        async move { stuck.get("stuck-1").await.ok()?.spec?.node_name.map(|_| ()) }
    })
    .await;
    let s = exec_err(&stuck, "stuck-1", vec!["true"], &ap).await;
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert_eq!(s.message, "pod stuck-1 is not running");

    // A pod not scheduled yet.
    let unscheduled: Pod = serde_json::from_value(quiet(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "later-1"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]}
    })))
    .unwrap();
    pods.create(&PostParams::default(), &unscheduled)
        .await
        .unwrap();
    let s = exec_err(&pods, "later-1", vec!["true"], &ap).await;
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "pod later-1 does not have a host assigned")
    );
}

/// Sends an upgrade request with the given subprotocols; returns the response.
async fn upgrade_request(
    client: &Client,
    method: &str,
    path: &str,
    upgrade: &str,
    protocols: &str,
) -> http::Response<kube::client::Body> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("connection", "Upgrade")
        .header("upgrade", upgrade)
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", protocols)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    client.send(req).await.unwrap()
}

async fn status_body(resp: http::Response<kube::client::Body>) -> Value {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A raw WebSocket client on an upgraded response.
async fn raw_socket(
    resp: http::Response<kube::client::Body>,
) -> WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    assert_eq!(resp.status(), 101);
    assert_eq!(
        resp.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let upgraded = hyper::upgrade::on(resp).await.unwrap();
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

async fn next_binary(
    ws: &mut WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("frame in time")
        {
            Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn exec_v4_on_the_wire() {
    let env = start().await;
    running_pod(&env.client, "wire-1").await;
    let path = "/api/v1/namespaces/default/pods/wire-1/exec?command=sh&command=-c&command=echo%20x%3B%20echo%20y%20%3E%262%3B%20exit%202&stdout=true&stderr=true";
    // Only v4 offered (with an older protocol first): v4 is chosen.
    let resp = upgrade_request(
        &env.client,
        "GET",
        path,
        "websocket",
        "channel.k8s.io, v4.channel.k8s.io",
    )
    .await;
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v4.channel.k8s.io"
    );
    let mut ws = raw_socket(resp).await;
    // The empty frame on the lowest output channel, then stdout and stderr, then the status, then the close.
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![1]);
    let mut frames = Vec::new();
    while let Some(frame) = next_binary(&mut ws).await {
        frames.push(frame);
    }
    let status = frames.pop().unwrap();
    assert_eq!(status[0], 3);
    let status: Value = serde_json::from_slice(&status[1..]).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "2");
    let mut out = Vec::new();
    let mut err = Vec::new();
    for f in frames {
        match f[0] {
            1 => out.extend_from_slice(&f[1..]),
            2 => err.extend_from_slice(&f[1..]),
            other => panic!("unexpected channel {other}"),
        }
    }
    assert_eq!((out.as_slice(), err.as_slice()), (&b"x\n"[..], &b"y\n"[..]));

    // v5 preferred when offered anywhere; stdin only, so the first frame is on the error channel; `[255, 0]`
    // ends stdin.
    let path = "/api/v1/namespaces/default/pods/wire-1/exec?command=cat&stdin=true";
    let resp = upgrade_request(
        &env.client,
        "POST",
        path,
        "websocket",
        "v4.channel.k8s.io,v5.channel.k8s.io",
    )
    .await;
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    let mut ws = raw_socket(resp).await;
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![3]);
    ws.send(Message::binary(b"\x00abc".to_vec())).await.unwrap();
    ws.send(Message::binary(vec![255, 0])).await.unwrap();
    let status = next_binary(&mut ws).await.unwrap();
    assert_eq!(
        status,
        b"\x03{\"metadata\":{},\"status\":\"Success\"}".to_vec()
    );
    assert!(next_binary(&mut ws).await.is_none());
}

#[tokio::test]
async fn exec_refused_upgrades() {
    let env = start().await;
    running_pod(&env.client, "refuse-1").await;
    let path = "/api/v1/namespaces/default/pods/refuse-1/exec?command=true&stdout=true";
    let resp = upgrade_request(
        &env.client,
        "GET",
        path,
        "websocket",
        "channel.k8s.io, base64.channel.k8s.io",
    )
    .await;
    assert_eq!(resp.status(), 403);
    let body = status_body(resp).await;
    assert_eq!(body["kind"], "Status");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("requested protocol(s) are not supported")
    );
    // kubectl's fallback after a failed WebSocket upgrade.
    let resp = upgrade_request(&env.client, "POST", path, "SPDY/3.1", "").await;
    assert_eq!(resp.status(), 400);
    let body = status_body(resp).await;
    assert!(
        body["message"].as_str().unwrap().contains("not SPDY/3.1"),
        "{body}"
    );
    // No upgrade at all.
    let req = http::Request::builder()
        .uri(path)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let resp = env.client.send(req).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        status_body(resp).await["message"],
        "Upgrade request required"
    );
    // Other methods.
    let req = http::Request::builder()
        .method("DELETE")
        .uri(path)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    assert_eq!(env.client.send(req).await.unwrap().status(), 405);
}

#[tokio::test]
async fn exec_oversized_frame_ends_the_session() {
    let env = start().await;
    let pods = running_pod(&env.client, "big-1").await;
    let path = "/api/v1/namespaces/default/pods/big-1/exec?command=cat&stdin=true&stdout=true";
    let resp = upgrade_request(&env.client, "GET", path, "websocket", "v5.channel.k8s.io").await;
    let mut ws = raw_socket(resp).await;
    assert_eq!(next_binary(&mut ws).await.unwrap(), vec![1]);
    let mut frame = vec![0u8];
    frame.extend(std::iter::repeat_n(b'x', MAX_FRAME));
    // The send may fail or succeed depending on timing; either way no status comes and the socket ends.
    let _ = ws.send(Message::binary(frame)).await;
    let got = next_binary(&mut ws).await;
    assert!(got.is_none(), "{:?}", got.map(|f| f.len()));
    // The emulator goes on serving.
    let got = exec(&pods, "big-1", &["cat"], Some(b"fine\n")).await;
    assert_eq!(got.stdout, "fine\n");
}

#[tokio::test]
async fn exec_session_limits() {
    let env: Env = start_with(EmulatorConfig {
        stage_delay: Duration::from_millis(20),
        exec_timeout: Duration::from_millis(500),
        exec_sessions: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let pods = running_pod(&env.client, "slow-1").await;
    let started = std::time::Instant::now();
    let first = pods
        .exec("slow-1", vec!["sleep", "30"], &AttachParams::default())
        .await
        .unwrap();
    // One session at a time: the next is answered 429 (seen without kube-rs' retries, which would wait).
    let mut config = env
        .emu
        .clusters()
        .last()
        .unwrap()
        .kube_config()
        .await
        .unwrap();
    config.default_retry = false;
    let no_retry: Api<Pod> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let s = exec_err(&no_retry, "slow-1", vec!["true"], &AttachParams::default()).await;
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
    assert_eq!(
        s.message,
        "too many exec sessions: the emulator runs at most 1 at once"
    );
    // With retries, kube-rs waits for the first session to end.
    let second = tokio::spawn({
        let pods = pods.clone();
        async move {
            let attached = pods
                .exec("slow-1", vec!["echo", "second"], &AttachParams::default())
                .await
                .unwrap();
            let at = started.elapsed();
            (at, finish(attached, None, None).await)
        }
    });
    // The running one ends at the time limit with a failure status.
    let got = finish(first, None, None).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        got.status.reason.as_deref(),
        Some("InternalError"),
        "{:?}",
        got.status
    );
    assert!(
        got.status
            .message
            .as_deref()
            .unwrap()
            .contains("time limit")
    );
    // Its permit is back.
    let (at, got) = second.await.unwrap();
    assert!(
        at >= Duration::from_millis(450),
        "second session started after {at:?}"
    );
    assert_eq!((got.stdout.as_str(), got.exit()), ("second\n", 0));
}

/// `kubectl exec` against the emulator, when `EDGECD_KUBECTL_BIN` names a kubectl (scripts/test exports the one
/// built beside realkube).
#[tokio::test]
async fn exec_with_kubectl() {
    let Some(kubectl) = std::env::var_os("EDGECD_KUBECTL_BIN").filter(|k| !k.is_empty()) else {
        eprintln!("SKIPPED: EDGECD_KUBECTL_BIN is not set");
        return;
    };
    let env = start().await;
    running_pod(&env.client, "kubectl-1").await;
    let dir = tempfile::tempdir().unwrap();
    let cluster = env.emu.clusters().last().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.kubeconfig_yaml()).unwrap();
    let run = move |args: &[&str], stdin: &[u8]| {
        let mut child = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };
    let out = tokio::task::spawn_blocking(move || {
        let a = run(
            &[
                "exec",
                "kubectl-1",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 3",
            ],
            b"",
        );
        let b = run(
            &["exec", "-i", "kubectl-1", "-c", "app", "--", "cat"],
            b"one\ntwo\n",
        );
        let c = run(&["exec", "nope", "--", "true"], b"");
        (a, b, c)
    })
    .await
    .unwrap();
    let (a, b, c) = out;
    assert_eq!(String::from_utf8_lossy(&a.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&a.stderr).starts_with("err\n"),
        "{:?}",
        a
    );
    assert_eq!(a.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&b.stdout), "one\ntwo\n", "{b:?}");
    assert_eq!(b.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&c.stderr).contains("pods \"nope\" not found"),
        "{c:?}"
    );
    assert_eq!(c.status.code(), Some(1));
}
