//! Capability negotiation, one capability at a time: a spoke that lacks it is sent nothing it governs (the hub records such a command Unsupported instead), while a spoke with every capability is sent all of it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use edgecd_core::app::{ApplicationSource, ApplicationSpec, Destination};
use edgecd_core::link::capabilities::names;
use edgecd_core::link::{Capabilities, ProtocolVersion};
use edgecd_hub::link::{CommandPayload, LinkConfig, SpokeLink, command_payload_kind};
use edgecd_hub::store::appsets::NewAppSet;
use edgecd_hub::store::{CommandOutcome, NewApp, NewCluster, NewCommand, SqliteStore, Store};
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use edgecd_proto::v1::{HubMessage, SpokeMessage, command, hub_message};
use edgecd_spoke::link::{HelloParams, handshake};
use serde_json::json;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};

const CLUSTER: &str = "cluster-1";
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// The capabilities this test exercises from the hub's side: each governs something the hub sends. (`digest.v1`
/// governs the spoke's `Digest`, which this hub answers but never sends; the live capabilities are exercised by
/// the live-session tests, whose hub answers at once for a spoke without them.)
const HUB_SENT: &[&str] = &[
    names::DESIRED_APPS,
    names::PROJECT_POLICIES,
    names::APPLICATION_SETS,
    names::APPSET_ARGO_SPEC,
    names::COMMANDS,
    names::COMMAND_TERMINATE,
    names::COMMAND_QUERIES,
    names::COMMAND_DELETE,
    names::COMMAND_SYNC_OPTIONS,
    names::TRACE_CONTEXT,
    names::MULTI_SOURCE,
];

/// A hub on a fresh SQLite store holding, for `cluster-1`, something that every capability of [`HUB_SENT`]
/// governs: an app and a multi-source app, their project, two application sets (one needing the whole Argo CD spec), and one pending
/// command of each kind (one carrying a trace context). Returns the store, the hub's address and the commands
/// by the capability each needs.
async fn hub_with_one_of_everything() -> (
    tempfile::TempDir,
    Arc<dyn Store>,
    SocketAddr,
    Vec<(&'static str, String)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    store
        .create_cluster(&NewCluster {
            name: CLUSTER.into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    store
        .create_app(&NewApp {
            project: "default".into(),
            name: "demo".into(),
            spec: ApplicationSpec {
                project: "default".into(),
                source: ApplicationSource {
                    repo_url: "https://git.example/demo".into(),
                    target_revision: "HEAD".into(),
                    path: "deploy".into(),
                    ..ApplicationSource::default()
                },
                destination: Destination {
                    cluster: CLUSTER.into(),
                    namespace: "demo".into(),
                    ..Destination::default()
                },
                ..ApplicationSpec::default()
            },
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    // A multi-source app: chart from one repository, values from another.
    let multi = ApplicationSource {
        repo_url: "https://git.example/charts".into(),
        path: "web".into(),
        helm: Some(edgecd_core::app::HelmSource {
            value_files: vec!["$values/web/values.yaml".into()],
            ..Default::default()
        }),
        ..ApplicationSource::default()
    };
    let values = ApplicationSource {
        repo_url: "https://git.example/values".into(),
        ref_name: "values".into(),
        ..ApplicationSource::default()
    };
    store
        .create_app(&NewApp {
            project: "default".into(),
            name: "multi".into(),
            spec: ApplicationSpec {
                project: "default".into(),
                sources: vec![multi, values],
                destination: Destination {
                    cluster: CLUSTER.into(),
                    namespace: "web".into(),
                    ..Destination::default()
                },
                ..ApplicationSpec::default()
            },
            labels: Default::default(),
            owner: None,
        })
        .await
        .unwrap();
    let set = |name: &str, go_template: bool| NewAppSet {
        project: "default".into(),
        name: name.into(),
        scope: CLUSTER.into(),
        spec: json!({
            "goTemplate": go_template,
            "generators": [{"list": {"elements": [{"app": "web"}]}}],
            "template": {"metadata": {"name": if go_template { "{{.app}}-go" } else { "{{app}}" }},
                         "spec": {"source": {"repoURL": "https://git.example/web", "path": "web"},
                                  "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"}}}
        }),
        owner: None,
    };
    for (name, go) in [("plain", false), ("go", true)] {
        store.appsets().create_appset(&set(name, go)).await.unwrap();
    }
    let mut commands = Vec::new();
    let sync = |force: bool| CommandPayload::Sync {
        revision: String::new(),
        prune: false,
        dry_run: false,
        force,
        resources: vec![],
        apply_out_of_sync_only: false,
    };
    for (capability, payload, traced) in [
        (names::COMMANDS, sync(false), false),
        (names::COMMAND_SYNC_OPTIONS, sync(true), false),
        (names::COMMAND_TERMINATE, CommandPayload::Terminate, false),
        (names::COMMAND_QUERIES, CommandPayload::Diff, false),
        (
            names::COMMAND_DELETE,
            CommandPayload::Delete { cascade: false },
            false,
        ),
        (
            names::TRACE_CONTEXT,
            CommandPayload::Refresh { hard: false },
            true,
        ),
    ] {
        let record = store
            .enqueue_command(&NewCommand {
                id: None,
                project: "default".into(),
                app: "demo".into(),
                cluster: CLUSTER.into(),
                kind: command_payload_kind(&payload).into(),
                payload: serde_json::to_value(&payload).unwrap(),
                issued_by: "alice".into(),
                deadline: OffsetDateTime::now_utc() + time::Duration::hours(1),
                trace: traced.then(|| edgecd_telemetry::TraceContext {
                    traceparent: TRACEPARENT.into(),
                    tracestate: String::new(),
                }),
            })
            .await
            .unwrap();
        commands.push((capability, record.id));
    }

    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(200),
        digest_interval: Duration::from_millis(300),
        ..LinkConfig::default()
    };
    let link = SpokeLink::new(config, Arc::clone(&store));
    link.spawn_router();
    link.spawn_watch();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        Server::builder()
            .add_service(SpokeServiceServer::new(link))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (dir, store, addr, commands)
}

/// The capabilities that govern one message from the hub (several for a command: its kind's, and the trace
/// context's when it carries one).
fn governing(message: &HubMessage) -> Vec<&'static str> {
    use hub_message::Body;
    match &message.body {
        Some(Body::DesiredApps(desired)) => {
            let mut found = vec![names::DESIRED_APPS];
            if desired
                .upserts
                .iter()
                .any(|a| a.spec.as_ref().is_some_and(|s| !s.sources.is_empty()))
            {
                found.push(names::MULTI_SOURCE);
            }
            found
        }
        Some(Body::ProjectPolicies(_)) => vec![names::PROJECT_POLICIES],
        Some(Body::ApplicationSets(sets)) => {
            let mut found = vec![names::APPLICATION_SETS];
            // The Go-template set is sent only to a spoke that reads the whole Argo CD spec.
            if sets.sets.iter().any(|s| s.name == "go") {
                found.push(names::APPSET_ARGO_SPEC);
            }
            found
        }
        Some(Body::Command(c)) => {
            let mut found = vec![match &c.kind {
                Some(command::Kind::Sync(s)) if s.force => names::COMMAND_SYNC_OPTIONS,
                Some(command::Kind::Terminate(_)) => names::COMMAND_TERMINATE,
                Some(command::Kind::Diff(_) | command::Kind::Manifests(_)) => {
                    names::COMMAND_QUERIES
                }
                Some(command::Kind::Delete(_)) => names::COMMAND_DELETE,
                _ => names::COMMANDS,
            }];
            if !c.traceparent.is_empty() {
                found.push(names::TRACE_CONTEXT);
            }
            found
        }
        Some(Body::RepositoryCredentials(_)) => vec![names::REPO_CREDENTIALS],
        Some(Body::LiveOpen(_) | Body::LiveCredit(_) | Body::LiveCancel(_)) => {
            vec![names::LIVE_SESSIONS]
        }
        Some(Body::LiveInput(_)) => vec![names::LIVE_EXEC],
        _ => vec![],
    }
}

/// Connects as a spoke announcing `capabilities`, acknowledges everything the hub sends for `listen`, and
/// returns the capabilities that governed what arrived.
async fn what_arrives(
    addr: SocketAddr,
    capabilities: Capabilities,
    listen: Duration,
) -> BTreeSet<&'static str> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let hello = HelloParams {
        cluster_name: CLUSTER.into(),
        spoke_version: "0.1.0".into(),
        protocol: ProtocolVersion { major: 1, minor: 0 },
        capabilities,
        kubernetes_version: "v1.33.0".into(),
        server_url: "https://10.0.0.1:6443".into(),
        epoch: "epoch-1".into(),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    };
    let mut session = handshake(channel, &hello).await.unwrap();
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + listen;
    while let Ok(message) = tokio::time::timeout_at(deadline, session.inbound.message()).await {
        let Some(message) = message.unwrap() else {
            break;
        };
        seen.extend(governing(&message));
        if message.seq > 0 {
            // Acknowledged, so the hub's window never stalls what it would send next.
            session
                .outbound
                .send(SpokeMessage {
                    seq: 0,
                    ack: message.seq,
                    body: None,
                })
                .await
                .unwrap();
        }
    }
    seen
}

/// The control: with every capability, something governed by each of [`HUB_SENT`] arrives, so the absences
/// below are the negotiation's doing.
#[tokio::test]
async fn a_spoke_with_every_capability_is_sent_what_each_governs() {
    let (_dir, store, addr, commands) = hub_with_one_of_everything().await;
    let seen = what_arrives(addr, Capabilities::all_v1(), Duration::from_secs(3)).await;
    for capability in HUB_SENT {
        assert!(
            seen.contains(capability),
            "nothing governed by {capability} arrived: {seen:?}"
        );
    }
    for (capability, id) in commands {
        let record = store.get_command(&id).await.unwrap();
        assert_ne!(
            record.outcome,
            CommandOutcome::Unsupported,
            "{capability}: {record:?}"
        );
    }
}

/// Each capability of [`HUB_SENT`] in turn is missing from the spoke's Hello: the session works, nothing it
/// governs arrives, and a command that needs it is recorded Unsupported rather than sent (or, for the trace
/// context, sent without it).
#[tokio::test]
async fn a_spoke_lacking_a_capability_is_sent_nothing_it_governs() {
    for &missing in HUB_SENT {
        let (_dir, store, addr, commands) = hub_with_one_of_everything().await;
        let seen = what_arrives(
            addr,
            Capabilities::all_v1().without(missing),
            Duration::from_secs(2),
        )
        .await;
        assert!(
            !seen.contains(missing),
            "a spoke without {missing} was sent what it governs: {seen:?}"
        );
        // The rest still flows (the session was not refused): the desired set, or commands without it.
        let other = if missing == names::DESIRED_APPS {
            names::COMMANDS
        } else {
            names::DESIRED_APPS
        };
        assert!(
            seen.contains(other),
            "without {missing}, {other} stopped too: {seen:?}"
        );
        for (capability, id) in &commands {
            let record = store.get_command(id).await.unwrap();
            let unsupported = record.outcome == CommandOutcome::Unsupported;
            // A plain command needs commands.v1; one with sync options or of another kind needs its own.
            let needs = *capability == missing
                || (missing == names::COMMANDS && *capability == names::TRACE_CONTEXT);
            if needs && missing != names::TRACE_CONTEXT {
                assert!(
                    unsupported,
                    "without {missing}, command {capability} is {:?}",
                    record.outcome
                );
            } else {
                assert!(
                    !unsupported,
                    "without {missing}, command {capability} was refused: {}",
                    record.message
                );
            }
        }
    }
}

/// A multi-source app is, for a spoke without `multi-source.v1`, a delete that keeps its resources: the spoke
/// stops managing it and prunes nothing (an app that was single-source there and became multi-source is not
/// torn down), and the hub's digest leaves it out as the spoke's does.
#[tokio::test]
async fn a_spoke_without_multi_source_is_told_to_let_go_of_such_apps_keeping_their_resources() {
    let (_dir, _store, addr, _) = hub_with_one_of_everything().await;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let hello = HelloParams {
        cluster_name: CLUSTER.into(),
        spoke_version: "0.1.0".into(),
        protocol: ProtocolVersion { major: 1, minor: 0 },
        capabilities: Capabilities::all_v1().without(names::MULTI_SOURCE),
        kubernetes_version: "v1.33.0".into(),
        server_url: "https://10.0.0.1:6443".into(),
        epoch: "epoch-1".into(),
        last_hub_seq: 0,
        desired_version: 0,
        next_spoke_seq: 1,
    };
    let mut session = handshake(channel, &hello).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut desired = Vec::new();
    while let Ok(message) = tokio::time::timeout_at(deadline, session.inbound.message()).await {
        let Some(message) = message.unwrap() else {
            break;
        };
        if let Some(hub_message::Body::DesiredApps(apps)) = &message.body {
            desired.push(apps.clone());
        }
        if message.seq > 0 {
            session
                .outbound
                .send(SpokeMessage {
                    seq: 0,
                    ack: message.seq,
                    body: None,
                })
                .await
                .unwrap();
        }
    }
    let named = |refs: &[edgecd_proto::v1::AppRef]| refs.iter().any(|r| r.name == "multi");
    assert!(!desired.is_empty(), "no desired set arrived");
    assert!(
        desired.iter().all(|d| !d
            .upserts
            .iter()
            .any(|u| u.meta.as_ref().is_some_and(|m| m.name == "multi"))),
        "the multi-source app was sent: {desired:?}"
    );
    assert!(
        desired
            .iter()
            .any(|d| named(&d.deletes) && named(&d.keep_resources)),
        "the multi-source app is not a delete keeping its resources: {desired:?}"
    );
    // The single-source app still arrives.
    assert!(
        desired.iter().any(|d| d
            .upserts
            .iter()
            .any(|u| u.meta.as_ref().is_some_and(|m| m.name == "demo"))),
        "{desired:?}"
    );
}
