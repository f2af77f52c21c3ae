//! Round-trip tests of protocol v1 messages, and the compatibility rules: unknown fields, unknown message types and unknown enum values are tolerated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use edgecd_proto::v1::*;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(message: &M) {
    let bytes = message.encode_to_vec();
    let decoded = M::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(&decoded, message);
}

fn app_ref(name: &str) -> AppRef {
    AppRef {
        project: "team-a".into(),
        name: name.into(),
    }
}

fn spec() -> ApplicationSpec {
    ApplicationSpec {
        source: Some(ApplicationSource {
            repo_url: "https://git.example/fleet.git".into(),
            target_revision: "main".into(),
            path: "deploy/overlays/cluster-1".into(),
            render: Some(application_source::Render::Kustomize(KustomizeSource {
                images: vec!["nginx=nginx:1.27".into()],
                ..Default::default()
            })),
            ..Default::default()
        }),
        destination: Some(Destination {
            cluster: "cluster-1".into(),
            namespace: "nginx".into(),
            server: String::new(),
        }),
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            sync_options: vec!["CreateNamespace=true".into()],
            retry: Some(RetryStrategy {
                limit: 5,
                backoff_duration: Some(prost_types::Duration {
                    seconds: 5,
                    nanos: 0,
                }),
                backoff_factor: 2,
                backoff_max_duration: None,
            }),
        }),
        revision_history_limit: 10,
        ignore_differences: vec![],
        ..Default::default()
    }
}

#[test]
fn every_spoke_message_body_round_trips() {
    let bodies = vec![
        spoke_message::Body::Hello(Hello {
            cluster_name: "cluster-1".into(),
            protocol: Some(ProtocolVersion { major: 1, minor: 0 }),
            capabilities: vec!["status-deltas.v1".into()],
            last_hub_seq: 41,
            next_spoke_seq: 7,
            ..Default::default()
        }),
        spoke_message::Body::AppStatus(AppStatusBatch {
            reports: vec![AppStatusReport {
                app: Some(app_ref("nginx")),
                status: Some(ApplicationStatus {
                    sync: Some(SyncStatus {
                        status: SyncStatusCode::Synced as i32,
                        revision: "abc".into(),
                    }),
                    health: Some(HealthStatus {
                        status: HealthStatusCode::Degraded as i32,
                        message: "ProgressDeadlineExceeded".into(),
                    }),
                    status_version: 3,
                    ..Default::default()
                }),
                origin: AppOrigin::Managed as i32,
                meta: None,
                spec: None,
            }],
            full_snapshot: true,
            snapshot_id: "s1".into(),
            snapshot_last: true,
        }),
        spoke_message::Body::ResourceTree(ResourceTree {
            app: Some(app_ref("nginx")),
            nodes: vec![ResourceNode {
                key: Some(ResourceKey {
                    group: "apps".into(),
                    version: "v1".into(),
                    kind: "Deployment".into(),
                    namespace: "nginx".into(),
                    name: "nginx".into(),
                }),
                uid: "u1".into(),
                ..Default::default()
            }],
            status_version: 3,
        }),
        spoke_message::Body::Events(EventBatch {
            events: vec![Event {
                id: "e1".into(),
                reason: "Synced".into(),
                ..Default::default()
            }],
        }),
        spoke_message::Body::CommandStatus(CommandStatusBatch {
            statuses: vec![CommandStatus {
                command_id: "c1".into(),
                outcome: CommandOutcome::Succeeded as i32,
                payload: Some(command_status::Payload::Diff(DiffResult {
                    resources: vec![ResourceDiff {
                        diff: "-a\n+b\n".into(),
                        modified: true,
                        ..Default::default()
                    }],
                })),
                ..Default::default()
            }],
        }),
        spoke_message::Body::Heartbeat(Heartbeat::default()),
        spoke_message::Body::Digest(Digest {
            desired_version: 9,
            desired_hash: "h".into(),
            status_hash: "s".into(),
            app_count: 2,
        }),
        spoke_message::Body::Renew(RenewRequest {
            csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
        }),
        spoke_message::Body::AppRemoved(AppRemoved {
            app: Some(app_ref("old")),
        }),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        round_trip(&SpokeMessage {
            seq: i as u64 + 1,
            ack: 99,
            body: Some(body),
        });
    }
}

#[test]
fn every_hub_message_body_round_trips() {
    let bodies = vec![
        hub_message::Body::Welcome(Welcome {
            cluster_name: "cluster-1".into(),
            capabilities: vec!["commands.v1".into()],
            resume_spoke_seq: 6,
            resume_hub_seq: 41,
            window: 256,
            full_status_resync: true,
            ..Default::default()
        }),
        hub_message::Body::DesiredApps(DesiredApps {
            version: 12,
            base_version: 11,
            full_snapshot: false,
            upserts: vec![DesiredApp {
                meta: Some(ApplicationMeta {
                    project: "team-a".into(),
                    name: "nginx".into(),
                    spec_version: 4,
                    ..Default::default()
                }),
                spec: Some(spec()),
                cascade_delete: true,
            }],
            deletes: vec![app_ref("gone"), app_ref("kept")],
            keep_resources: vec![app_ref("kept")],
        }),
        hub_message::Body::Command(Command {
            id: "c1".into(),
            app: Some(app_ref("nginx")),
            deadline: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            kind: Some(command::Kind::Rollback(RollbackCommand {
                history_id: 3,
                prune: true,
                dry_run: false,
            })),
            ..Default::default()
        }),
        hub_message::Body::Resync(ResyncRequest {
            scope: resync_request::Scope::All as i32,
            reason: "digest mismatch".into(),
            apps: vec![],
        }),
        hub_message::Body::Heartbeat(Heartbeat::default()),
        hub_message::Body::Digest(Digest::default()),
        hub_message::Body::Renew(RenewResponse::default()),
        hub_message::Body::RepositoryCredentials(RepositoryCredentials {
            credentials: vec![RepositoryCredential {
                url_prefix: "https://git.example/".into(),
                username: "u".into(),
                password: "p".into(),
                ..Default::default()
            }],
            full_snapshot: true,
        }),
        hub_message::Body::GoAway(GoAway {
            reason: go_away::Reason::Draining as i32,
            message: "replica shutting down".into(),
            retry_after: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
        }),
        hub_message::Body::ProjectPolicies(ProjectPolicies {
            projects: vec![Project {
                name: "team-a".into(),
                source_repos: vec!["https://git.example/*".into()],
                ..Default::default()
            }],
            full_snapshot: true,
        }),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        round_trip(&HubMessage {
            seq: i as u64 + 1,
            ack: 5,
            body: Some(body),
        });
    }
}

#[test]
fn client_api_messages_round_trip() {
    round_trip(&ListApplicationsRequest {
        filter: Some(ApplicationFilter {
            projects: vec!["team-a".into()],
            clusters: vec!["cluster-1".into()],
            cluster_selector: Some(LabelSelector {
                match_labels: [("region".to_owned(), "eu".to_owned())].into(),
                match_expressions: vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: vec!["edge".into()],
                }],
            }),
            health: vec![HealthStatusCode::Degraded as i32],
            search: "ngi".into(),
            ..Default::default()
        }),
        sort: Some(ApplicationSort {
            field: ApplicationSortField::UpdatedAt as i32,
            descending: true,
        }),
        page_size: 100,
        page_token: "opaque".into(),
    });
    round_trip(&Application {
        meta: Some(ApplicationMeta {
            project: "team-a".into(),
            name: "nginx".into(),
            owner: Some(OwnerRef {
                kind: "ApplicationSet".into(),
                project: "team-a".into(),
                name: "nginx-per-cluster".into(),
                scope: "hub".into(),
            }),
            ..Default::default()
        }),
        spec: Some(spec()),
        status: Some(ApplicationStatus::default()),
        cluster_connection: Some(ConnectionState {
            state: ConnectionStateCode::Stale as i32,
            ..Default::default()
        }),
    });
    round_trip(&ApplicationSet {
        name: "nginx-per-cluster".into(),
        generators: vec![ApplicationSetGenerator {
            generator: Some(application_set_generator::Generator::Matrix(
                MatrixGenerator {
                    generators: vec![
                        ApplicationSetGenerator {
                            generator: Some(application_set_generator::Generator::Clusters(
                                ClustersGenerator::default(),
                            )),
                        },
                        ApplicationSetGenerator {
                            generator: Some(application_set_generator::Generator::Git(
                                GitGenerator {
                                    repo_url: "https://git.example/fleet.git".into(),
                                    directories: vec![GitDirectory {
                                        path: "apps/*".into(),
                                        exclude: false,
                                    }],
                                    ..Default::default()
                                },
                            )),
                        },
                    ],
                },
            )),
        }],
        template: Some(ApplicationTemplate {
            name: "{{name}}.nginx".into(),
            spec: Some(spec()),
            ..Default::default()
        }),
        policy: ApplicationSetPolicy::Sync as i32,
        ..Default::default()
    });
    round_trip(&WatchEvent {
        r#type: WatchEventType::Upserted as i32,
        resume_token: "t".into(),
        object: Some(watch_event::Object::Cluster(Cluster {
            name: "cluster-1".into(),
            ..Default::default()
        })),
    });
}

/// A newer peer may add fields and message types. Encode a HubMessage with
/// an extra field (number 99, as a future `body` case would be) and an
/// unknown enum value: an older decoder keeps what it knows and ignores the
/// rest.
#[test]
fn unknown_fields_message_types_and_enum_values_are_ignored() {
    let mut bytes = HubMessage {
        seq: 7,
        ack: 3,
        body: None,
    }
    .encode_to_vec();
    // Field 99, wire type 2 (length-delimited), 3 bytes of payload.
    prost::encoding::encode_key(99, prost::encoding::WireType::LengthDelimited, &mut bytes);
    prost::encoding::encode_varint(3, &mut bytes);
    bytes.extend_from_slice(&[0x08, 0x01, 0x10]);
    let decoded = HubMessage::decode(bytes.as_slice()).expect("unknown field is skipped");
    assert_eq!(decoded.seq, 7);
    assert_eq!(decoded.ack, 3);
    assert!(decoded.body.is_none());

    let status = HealthStatus {
        status: 42,
        message: String::new(),
    };
    let decoded = HealthStatus::decode(status.encode_to_vec().as_slice()).unwrap();
    // An unknown enum value decodes and reads as the UNSPECIFIED default.
    assert_eq!(decoded.status(), HealthStatusCode::Unspecified);
}
