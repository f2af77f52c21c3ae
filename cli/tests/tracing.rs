//! End to end across processes: `edgecd app sync` issued while the spoke is away, the `edgecd-hub` and `edgecd-spoke` binaries exporting to a real OTLP/gRPC receiver, and one trace from the CLI's span through the hub's call and the stored command's delivery to the spoke's git, render and apply spans and the report of the result, with the same id on the history entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Cli;
use edgecd_kube_emulator::{EmulatorConfig, KubeEmulator};
use edgecd_testkit::binaries::workspace_binary;
use edgecd_testkit::otlp::{OtlpReceiver, ReceivedSpan};
use edgecd_testkit::{GitServer, net::free_port};

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `binary` with `args`, exporting spans to `otlp` quickly (the batch exporter's delay cut to 100 ms), its
/// output in `log`.
fn start(binary: &Path, args: &[&str], otlp: &str, log: &Path) -> Process {
    let log = std::fs::File::create(log).unwrap();
    Process(
        Command::new(binary)
            .args(args)
            .args(["--otlp-endpoint", otlp])
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_SERVICE_NAME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The span named `name` of service `service` (exactly one).
fn one<'a>(spans: &'a [ReceivedSpan], service: &str, name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect();
    assert_eq!(found.len(), 1, "{service}:{name} in {spans:#?}");
    found[0]
}

/// Whether `span` descends from `ancestor` through the trace's parent links.
fn descends_from(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor: &ReceivedSpan) -> bool {
    let by_id: HashMap<&str, &ReceivedSpan> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut current = span;
    for _ in 0..spans.len() {
        if current.parent_span_id == ancestor.span_id {
            return true;
        }
        match by_id.get(current.parent_span_id.as_str()) {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_one_trace_from_the_cli_to_the_spokes_apply() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let otlp = receiver.endpoint();
    let (hub_bin, spoke_bin) = tokio::task::spawn_blocking(|| {
        (
            workspace_binary("edgecd-hub", "edgecd-hub").unwrap(),
            workspace_binary("edgecd-spoke", "edgecd-spoke").unwrap(),
        )
    })
    .await
    .unwrap();
    let emulator = KubeEmulator::start(EmulatorConfig {
        clusters: 1,
        stage_delay: Duration::from_millis(50),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = emulator
        .write_kubeconfigs(&dir.path().join("kube"))
        .unwrap()[0]
        .clone();
    let git = GitServer::start().unwrap();
    let repo = git.create_repo("web").unwrap();
    repo.write(
        "deploy/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  greeting: hello\n",
    )
    .unwrap();
    repo.commit("web").unwrap();

    let grpc = format!("127.0.0.1:{}", free_port().unwrap());
    let http = format!("127.0.0.1:{}", free_port().unwrap());
    let hub_data = dir.path().join("hub");
    let _hub = start(
        &hub_bin,
        &[
            "serve",
            "--insecure-disable-auth",
            "--data-dir",
            hub_data.to_str().unwrap(),
            "--grpc-listen",
            &grpc,
            "--http-listen",
            &http,
        ],
        &otlp,
        &dir.path().join("hub.log"),
    );
    let mut cli = Cli::new();
    cli.env.push(("EDGECD_OTLP_ENDPOINT".into(), otlp.clone()));
    let hub_url = format!("http://{grpc}");
    eventually("the hub answers", async || {
        (cli.run(&["login", &hub_url]).await.code == 0).then_some(())
    })
    .await;
    cli.run(&["cluster", "add", "edge-1"]).await.ok();
    cli.run(&[
        "app",
        "create",
        "web",
        "--repo",
        repo.url(),
        "--path",
        "deploy",
        "--dest-cluster",
        "edge-1",
        "--dest-namespace",
        "default",
    ])
    .await
    .ok();

    // The spoke has never connected: the sync waits in the hub's outbox.
    let sync = cli.run(&["app", "sync", "web", "--async"]).await.ok();
    let trace_id = sync
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("trace id: "))
        .unwrap_or_else(|| panic!("no trace id printed: {sync:?}"))
        .trim()
        .to_owned();

    // Now the spoke connects, and the command it is delivered continues the trace.
    let spoke_cache = dir.path().join("spoke-cache");
    let _spoke = start(
        &spoke_bin,
        &[
            "run",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--cluster-name",
            "edge-1",
            "--hub-address",
            &hub_url,
            "--cache-dir",
            spoke_cache.to_str().unwrap(),
            "--admin-addr",
            "127.0.0.1:0",
        ],
        &otlp,
        &dir.path().join("spoke.log"),
    );
    eventually(
        "the sync's history entry names the CLI's trace",
        async || {
            let history = cli.run(&["app", "history", "web", "-o", "json"]).await;
            let entries: serde_json::Value = serde_json::from_str(&history.stdout).ok()?;
            entries
                .as_array()?
                .iter()
                .any(|h| h["traceId"] == trace_id.as_str())
                .then_some(())
        },
    )
    .await;

    let wanted = [
        ("edgecd-cli", "edgecd app sync"),
        ("edgecd-hub", "SyncApplication"),
        ("edgecd-hub", "deliver_command"),
        ("edgecd-spoke", "command"),
        ("edgecd-spoke", "reconcile"),
        ("edgecd-spoke", "refresh"),
        ("edgecd-spoke", "render"),
        ("edgecd-spoke", "wave"),
        ("edgecd-spoke", "apply"),
        ("edgecd-spoke", "report_result"),
    ];
    let spans = receiver
        .wait_for_trace(&trace_id, Duration::from_secs(60), |spans| {
            wanted.iter().all(|(service, name)| {
                spans
                    .iter()
                    .any(|s| s.service == *service && s.name == *name)
            })
        })
        .await
        .unwrap_or_else(|e| {
            let logs = ["hub.log", "spoke.log"]
                .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default());
            panic!("{e}\nhub log:\n{}\nspoke log:\n{}", logs[0], logs[1])
        });

    // The parent links, process to process: the CLI's span is the root.
    let cli_span = one(&spans, "edgecd-cli", "edgecd app sync");
    assert_eq!(cli_span.parent_span_id, "", "{cli_span:?}");
    let rpc = one(&spans, "edgecd-hub", "SyncApplication");
    assert_eq!(rpc.parent_span_id, cli_span.span_id, "{rpc:?}");
    let delivery = one(&spans, "edgecd-hub", "deliver_command");
    assert_eq!(delivery.parent_span_id, rpc.span_id, "{delivery:?}");
    let command = one(&spans, "edgecd-spoke", "command");
    assert_eq!(command.parent_span_id, delivery.span_id, "{command:?}");
    assert_eq!(
        command.attributes.get("kind").map(String::as_str),
        Some("sync")
    );
    // The reconcile that runs the operation continues from the command (through the Application's
    // operation.info), and git, render and the wave's apply happen within it.
    let reconciles: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == "edgecd-spoke" && s.name == "reconcile")
        .collect();
    assert!(
        reconciles
            .iter()
            .all(|r| r.parent_span_id == command.span_id),
        "{reconciles:#?}"
    );
    for name in ["refresh", "render", "wave", "apply"] {
        assert!(
            spans
                .iter()
                .filter(|s| s.service == "edgecd-spoke" && s.name == name)
                .any(|s| reconciles.iter().any(|r| descends_from(&spans, s, r))),
            "no {name} span under the reconcile: {spans:#?}"
        );
    }
    // The way back: the operation's result is reported to the hub in the same trace.
    let report = one(&spans, "edgecd-spoke", "report_result");
    assert_eq!(report.parent_span_id, command.span_id, "{report:?}");
    // Attributes name the app and cluster; nothing secret travels (no token, no password).
    assert_eq!(
        command.attributes.get("cluster").map(String::as_str),
        Some("edge-1")
    );
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !key.contains("token") && !key.contains("password") && !value.contains("Bearer "),
                "{key}={value} in {span:?}"
            );
        }
    }
}
