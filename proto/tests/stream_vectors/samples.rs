//! The sample stream messages of the test vectors: every field set to a value other than its default.
//!
//! Maps carry one entry (a `HashMap` encodes its entries in no fixed order, so two would make the
//! encoding vary from run to run); repeated fields carry two or more; enums are never UNSPECIFIED.
//! Values are realistic enough that the receivers' conversions accept them.

use std::collections::HashMap;

use edgecd_proto::v1::*;
use prost_types::{Duration, Timestamp};

/// The cluster every sample speaks for.
pub const CLUSTER: &str = "edge-1";
/// A trace id as the spoke reports it: 32 lower-case hex digits.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn s(text: &str) -> String {
    text.to_owned()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|x| (*x).to_owned()).collect()
}

fn map(key: &str, value: &str) -> HashMap<String, String> {
    HashMap::from([(key.to_owned(), value.to_owned())])
}

/// 2026-01-01T00:00:00.25Z plus `offset` seconds.
fn ts(offset: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: 1_767_225_600 + offset,
        nanos: 250_000_000,
    })
}

fn dur(seconds: i64) -> Option<Duration> {
    Some(Duration {
        seconds,
        nanos: 500_000_000,
    })
}

fn app_ref(name: &str) -> AppRef {
    AppRef {
        project: s("team-a"),
        name: s(name),
    }
}

fn key(kind: &str, name: &str) -> ResourceKey {
    ResourceKey {
        group: s("apps"),
        version: s("v1"),
        kind: s(kind),
        namespace: s("guestbook"),
        name: s(name),
    }
}

fn health(status: HealthStatusCode, message: &str) -> HealthStatus {
    HealthStatus {
        status: status as i32,
        message: s(message),
    }
}

fn condition(kind: &str, at: i64) -> Condition {
    Condition {
        r#type: s(kind),
        message: format!("{kind} since the last reconcile"),
        last_transition_time: ts(at),
    }
}

fn resource_result(kind: &str, name: &str, wave: i32) -> ResourceResult {
    ResourceResult {
        key: Some(key(kind, name)),
        status: s("Synced"),
        message: format!("{kind}/{name} configured"),
        sync_wave: wave,
    }
}

fn operation_state() -> OperationState {
    OperationState {
        command_id: s("0b6e1c52-7d1f-4a59-9d2a-3c7e8f1a2b3c"),
        phase: OperationPhase::Succeeded as i32,
        message: s("successfully synced (all tasks run)"),
        started_at: ts(60),
        finished_at: ts(75),
        revision: s("3f2c9d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
        resources: vec![
            resource_result("Deployment", "guestbook-ui", -1),
            resource_result("Service", "guestbook-ui", 2),
        ],
        retry_count: 2,
        initiated_by: s("alice"),
        trace_id: s(TRACE_ID),
    }
}

fn group_kind(group: &str, kind: &str, name: &str) -> GroupKind {
    GroupKind {
        group: s(group),
        kind: s(kind),
        name: s(name),
    }
}

fn label_selector() -> LabelSelector {
    LabelSelector {
        match_labels: map("tier", "edge"),
        match_expressions: vec![
            LabelSelectorRequirement {
                key: s("region"),
                operator: s("In"),
                values: strings(&["eu-west", "eu-north"]),
            },
            LabelSelectorRequirement {
                key: s("stage"),
                operator: s("NotIn"),
                values: strings(&["test", "dev"]),
            },
        ],
    }
}

fn jsonnet_var(name: &str, code: bool) -> JsonnetVar {
    JsonnetVar {
        name: s(name),
        value: s(if code { "1 + 1" } else { "edge" }),
        code,
    }
}

/// A source rendered as a Kustomize overlay or as a directory (with Jsonnet), with Helm options beside.
fn source(kustomize: bool) -> ApplicationSource {
    let render = if kustomize {
        application_source::Render::Kustomize(KustomizeSource {
            name_prefix: s("edge-"),
            name_suffix: s("-v2"),
            common_labels: map("team", "a"),
            common_annotations: map("owner", "$ARGOCD_APP_NAME"),
            images: strings(&["nginx=nginx:1.27", "redis=redis:7.4@sha256:0123abcd"]),
            namespace: s("guestbook"),
            replicas: vec![
                KustomizeReplica {
                    name: s("guestbook-ui"),
                    count: 3,
                },
                KustomizeReplica {
                    name: s("redis"),
                    count: 1,
                },
            ],
            patches: strings(&[
                r#"{"patch":"- op: replace\n  path: /spec/replicas\n  value: 2","target":{"kind":"Deployment"}}"#,
                r#"{"path":"patches/service.yaml"}"#,
            ]),
            components: strings(&["../components/monitoring", "../components/tls"]),
            ignore_missing_components: true,
            common_annotations_envsubst: true,
            label_without_selector: true,
            label_include_templates: true,
            force_common_labels: true,
            force_common_annotations: true,
            version: s("v5.4.3"),
        })
    } else {
        application_source::Render::Directory(DirectorySource {
            recurse: true,
            include: s("{*.yaml,*.jsonnet}"),
            exclude: s("test-*.yaml"),
            jsonnet: Some(JsonnetSource {
                ext_vars: vec![jsonnet_var("cluster", false), jsonnet_var("replicas", true)],
                tlas: vec![jsonnet_var("zone", false), jsonnet_var("shards", true)],
                libs: strings(&["vendor", "lib"]),
            }),
        })
    };
    ApplicationSource {
        repo_url: s("https://git.example/fleet.git"),
        target_revision: s("main"),
        path: s("apps/guestbook"),
        render: Some(render),
        helm: Some(HelmSource {
            release_name: s("guestbook"),
            value_files: strings(&["values.yaml", "values-edge.yaml"]),
            values: s("replicaCount: 2\n"),
            values_object: s(r#"{"image":{"tag":"1.27"}}"#),
            parameters: vec![
                HelmParameter {
                    name: s("service.type"),
                    value: s("ClusterIP"),
                    force_string: false,
                },
                HelmParameter {
                    name: s("image.tag"),
                    value: s("1.27"),
                    force_string: true,
                },
            ],
            file_parameters: vec![
                HelmFileParameter {
                    name: s("config"),
                    path: s("files/config.json"),
                },
                HelmFileParameter {
                    name: s("motd"),
                    path: s("files/motd.txt"),
                },
            ],
            skip_crds: true,
            skip_schema_validation: true,
            skip_tests: true,
            namespace: s("guestbook"),
            kube_version: s("1.33.0"),
            api_versions: strings(&["monitoring.coreos.com/v1", "networking.k8s.io/v1"]),
            pass_credentials: true,
            ignore_missing_value_files: true,
            version: s("v3"),
        }),
        chart: s("guestbook"),
        r#ref: s("values"),
        name: s("guestbook"),
    }
}

fn ignore_difference(kind: &str) -> IgnoreDifference {
    IgnoreDifference {
        group: s("apps"),
        kind: s(kind),
        name: s("guestbook-ui"),
        namespace: s("guestbook"),
        json_pointers: strings(&["/spec/replicas", "/metadata/labels/tier"]),
        managed_fields_managers: strings(&["kube-controller-manager", "hpa"]),
        jq_path_expressions: strings(&[".spec.template.spec.containers[0].image", ".status"]),
    }
}

pub fn application_spec(kustomize: bool) -> ApplicationSpec {
    ApplicationSpec {
        source: Some(source(kustomize)),
        sources: vec![source(!kustomize), source(kustomize)],
        destination: Some(Destination {
            cluster: s(CLUSTER),
            namespace: s("guestbook"),
            server: s("https://kubernetes.default.svc"),
        }),
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: true,
            }),
            sync_options: strings(&["CreateNamespace=true", "ServerSideApply=true"]),
            retry: Some(RetryStrategy {
                limit: 5,
                backoff_duration: dur(5),
                backoff_factor: 2,
                backoff_max_duration: dur(180),
            }),
        }),
        revision_history_limit: 7,
        ignore_differences: vec![
            ignore_difference("Deployment"),
            ignore_difference("StatefulSet"),
        ],
        managed_namespace_metadata: Some(ManagedNamespaceMetadata {
            labels: map("istio-injection", "enabled"),
            annotations: map("owner", "team-a"),
        }),
        info: vec![
            InfoItem {
                name: s("Docs"),
                value: s("https://docs.example/guestbook"),
            },
            InfoItem {
                name: s("Owner"),
                value: s("team-a"),
            },
        ],
    }
}

fn owner() -> OwnerRef {
    OwnerRef {
        kind: s("ApplicationSet"),
        project: s("team-a"),
        name: s("guestbooks"),
        scope: s(CLUSTER),
    }
}

pub fn application_meta(name: &str, origin: AppOrigin) -> ApplicationMeta {
    ApplicationMeta {
        project: s("team-a"),
        name: s(name),
        labels: map("app.kubernetes.io/part-of", "guestbook"),
        annotations: map("notes", "canary"),
        uid: s("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        spec_version: 12,
        created_at: ts(1),
        updated_at: ts(2),
        origin: origin as i32,
        owner: Some(owner()),
        deletion_requested_at: ts(3),
    }
}

fn history_entry(id: i64, rollback_of: i64) -> HistoryEntry {
    HistoryEntry {
        id,
        revision: format!("{id:040x}"),
        source: Some(source(id % 2 == 0)),
        sources: vec![source(true), source(false)],
        revisions: vec![format!("{id:040x}"), s("1.2.5")],
        started_at: ts(10 * id),
        deployed_at: ts(10 * id + 5),
        result: OperationPhase::Succeeded as i32,
        initiated_by: s("automated sync"),
        resources: vec![
            resource_result("Deployment", "guestbook-ui", 0),
            resource_result("ConfigMap", "guestbook-config", 1),
        ],
        trace_id: s(TRACE_ID),
        rollback: true,
        rollback_of,
    }
}

fn resource_status(kind: &str, name: &str) -> ResourceStatus {
    ResourceStatus {
        key: Some(key(kind, name)),
        sync: SyncStatusCode::OutOfSync as i32,
        health: Some(health(
            HealthStatusCode::Progressing,
            "1 of 2 replicas ready",
        )),
        requires_pruning: true,
        sync_wave: 3,
        message: s("the live object differs"),
    }
}

pub fn application_status() -> ApplicationStatus {
    ApplicationStatus {
        sync: Some(SyncStatus {
            status: SyncStatusCode::Synced as i32,
            revision: s("3f2c9d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
        }),
        health: Some(health(
            HealthStatusCode::Degraded,
            "Deployment has 0 ready pods",
        )),
        resources: vec![
            resource_status("Deployment", "guestbook-ui"),
            resource_status("StatefulSet", "redis"),
        ],
        conditions: vec![
            condition("SyncError", 20),
            condition("OrphanedResourceWarning", 21),
        ],
        operation_state: Some(operation_state()),
        history: vec![history_entry(3, 1), history_entry(4, 2)],
        reconciled_at: ts(90),
        observed_spec_version: 12,
        status_version: 34,
    }
}

fn event(id: &str, severity: EventSeverity) -> Event {
    Event {
        id: s(id),
        cluster: s(CLUSTER),
        app: Some(app_ref("guestbook")),
        resource: Some(key("Deployment", "guestbook-ui")),
        severity: severity as i32,
        reason: s("ScalingReplicaSet"),
        message: s("Scaled up replica set guestbook-ui-5d8f7 to 2"),
        time: ts(30),
    }
}

fn deployment(history_id: i64, rollback_of: i64) -> Deployment {
    let rollback = rollback_of > 0;
    Deployment {
        cluster: s(CLUSTER),
        app: Some(app_ref("guestbook")),
        history_id,
        kind: if rollback {
            DeploymentKind::Rollback
        } else {
            DeploymentKind::Sync
        } as i32,
        result: OperationPhase::Failed as i32,
        from_revision: s("1111111111111111111111111111111111111111"),
        to_revision: s("2222222222222222222222222222222222222222"),
        initiated_by: s("automated sync"),
        automated: true,
        started_at: ts(100),
        finished_at: ts(110),
        trace_id: s(TRACE_ID),
        message: s("one or more objects failed to apply"),
        command_id: s("0b6e1c52-7d1f-4a59-9d2a-3c7e8f1a2b3c"),
        rollback_of,
    }
}

fn digest() -> Digest {
    Digest {
        desired_version: 9,
        desired_hash: s("sha256:9f86d081884c7d659a2feaa0c55ad015"),
        status_hash: s("sha256:60303ae22b998861bce3b28f33eec1be"),
        app_count: 2,
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        sent_at: ts(200),
        in_flight: 3,
        buffered: 17,
    }
}

fn protocol() -> ProtocolVersion {
    ProtocolVersion {
        major: edgecd_proto::PROTOCOL_MAJOR,
        minor: 7,
    }
}

// === spoke -> hub ===

fn spoke(seq: u64, body: spoke_message::Body) -> SpokeMessage {
    SpokeMessage {
        seq,
        ack: 41,
        body: Some(body),
    }
}

fn app_status_report(name: &str, origin: AppOrigin, kustomize: bool) -> AppStatusReport {
    AppStatusReport {
        app: Some(app_ref(name)),
        status: Some(application_status()),
        origin: origin as i32,
        meta: Some(application_meta(name, origin)),
        spec: Some(application_spec(kustomize)),
    }
}

fn command_status(id: &str, payload: command_status::Payload) -> CommandStatus {
    CommandStatus {
        command_id: s(id),
        outcome: CommandOutcome::Succeeded as i32,
        message: s("done"),
        updated_at: ts(120),
        notice: s("the cluster is not connected; the command runs when it reconnects"),
        app: Some(app_ref("guestbook")),
        payload: Some(payload),
    }
}

fn resource_diff(kind: &str) -> ResourceDiff {
    ResourceDiff {
        key: Some(key(kind, "guestbook-ui")),
        live_yaml: s("spec:\n  replicas: 1\n"),
        desired_yaml: s("spec:\n  replicas: 2\n"),
        diff: s("-  replicas: 1\n+  replicas: 2\n"),
        modified: true,
    }
}

/// One sample of every spoke -> hub message body.
pub fn spoke_messages() -> Vec<SpokeMessage> {
    use spoke_message::Body;
    vec![
        spoke(
            1,
            Body::Hello(Hello {
                cluster_name: s(CLUSTER),
                spoke_version: s("0.1.0"),
                protocol: Some(protocol()),
                capabilities: strings(&["status-deltas.v1", "deployments.v1"]),
                kubernetes_version: s("v1.33.1"),
                server_url: s("https://10.0.0.1:6443"),
                spoke_epoch: s("3c1d6f0a9b8e7d6c"),
                last_hub_seq: 40,
                desired_version: 9,
                inventory: Some(digest()),
                next_spoke_seq: 12,
            }),
        ),
        spoke(
            2,
            Body::AppStatus(AppStatusBatch {
                reports: vec![
                    app_status_report("guestbook", AppOrigin::Managed, true),
                    app_status_report("local-tools", AppOrigin::Autonomous, false),
                ],
                full_snapshot: true,
                snapshot_id: s("snap-7"),
                snapshot_last: true,
            }),
        ),
        spoke(
            3,
            Body::ResourceTree(ResourceTree {
                app: Some(app_ref("guestbook")),
                nodes: vec![
                    ResourceNode {
                        key: Some(key("Deployment", "guestbook-ui")),
                        uid: s("uid-deployment"),
                        parent_uids: strings(&["uid-app", "uid-owner"]),
                        health: Some(health(HealthStatusCode::Healthy, "available")),
                        info: map("images", "nginx:1.27"),
                        created_at: ts(4),
                    },
                    ResourceNode {
                        key: Some(key("ReplicaSet", "guestbook-ui-5d8f7")),
                        uid: s("uid-replicaset"),
                        parent_uids: strings(&["uid-deployment", "uid-other"]),
                        health: Some(health(HealthStatusCode::Suspended, "paused")),
                        info: map("replicas", "2/2"),
                        created_at: ts(5),
                    },
                ],
                status_version: 34,
            }),
        ),
        spoke(
            4,
            Body::Events(EventBatch {
                events: vec![
                    event("event-1", EventSeverity::Normal),
                    event("event-2", EventSeverity::Warning),
                ],
            }),
        ),
        spoke(
            5,
            Body::CommandStatus(CommandStatusBatch {
                statuses: vec![
                    command_status(
                        "cmd-sync",
                        command_status::Payload::Operation(operation_state()),
                    ),
                    command_status(
                        "cmd-diff",
                        command_status::Payload::Diff(DiffResult {
                            resources: vec![resource_diff("Deployment"), resource_diff("Service")],
                        }),
                    ),
                    command_status(
                        "cmd-manifests",
                        command_status::Payload::Manifests(ManifestsResult {
                            revision: s("3f2c9d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
                            manifests_yaml: strings(&["kind: Service\n", "kind: Deployment\n"]),
                        }),
                    ),
                ],
            }),
        ),
        spoke(6, Body::Heartbeat(heartbeat())),
        spoke(7, Body::Digest(digest())),
        spoke(
            8,
            Body::Renew(RenewRequest {
                csr_pem: s(
                    "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
                ),
            }),
        ),
        spoke(
            9,
            Body::AppRemoved(AppRemoved {
                app: Some(app_ref("local-tools")),
            }),
        ),
        spoke(
            10,
            Body::Deployments(DeploymentBatch {
                deployments: vec![deployment(3, 0), deployment(4, 2)],
            }),
        ),
        spoke(
            11,
            Body::LiveChunk(LiveChunk {
                session_id: s("live-1"),
                data: b"2026-01-01T00:00:00Z listening on :8080\n".to_vec(),
                pod: s("guestbook-ui-5d8f7-x2x9k"),
                container: s("ui"),
                events: vec![
                    event("event-3", EventSeverity::Normal),
                    event("event-4", EventSeverity::Warning),
                ],
                channel: LiveChannel::Stderr as i32,
            }),
        ),
        spoke(
            12,
            Body::LiveEnd(LiveEnd {
                session_id: s("live-1"),
                code: LiveEndCode::Limit as i32,
                message: s("the session's bytes ran out"),
                exit_code: Some(3),
            }),
        ),
        spoke(
            13,
            Body::LiveCredit(LiveCredit {
                session_id: s("live-1"),
                bytes: 32_768,
            }),
        ),
    ]
}

// === hub -> spoke ===

fn hub(seq: u64, body: hub_message::Body) -> HubMessage {
    HubMessage {
        seq,
        ack: 11,
        body: Some(body),
    }
}

/// A command; `n` tells the commands' ids apart.
fn command(n: u8, kind: command::Kind) -> hub_message::Body {
    hub_message::Body::Command(Command {
        id: format!("0b6e1c52-7d1f-4a59-9d2a-3c7e8f1a2b{n:02x}"),
        app: Some(app_ref("guestbook")),
        deadline: ts(300),
        issued_by: s("alice"),
        issued_at: ts(240),
        kind: Some(kind),
        traceparent: format!("00-{TRACE_ID}-00f067aa0ba902b7-01"),
        tracestate: s("vendor=opaque"),
    })
}

/// A live session; `id` names it on the stream.
fn live_open(id: &str, request: live_open::Request) -> hub_message::Body {
    hub_message::Body::LiveOpen(LiveOpen {
        session_id: s(id),
        app: Some(app_ref("guestbook")),
        window: 65_536,
        max_bytes: 1_048_576,
        max_duration: dur(600),
        request: Some(request),
    })
}

fn live_input(input: live_input::Input) -> hub_message::Body {
    hub_message::Body::LiveInput(LiveInput {
        session_id: s("live-exec"),
        input: Some(input),
    })
}

fn desired_app(name: &str, kustomize: bool) -> DesiredApp {
    DesiredApp {
        meta: Some(application_meta(name, AppOrigin::Managed)),
        spec: Some(application_spec(kustomize)),
        cascade_delete: true,
    }
}

fn credential(prefix: &str) -> RepositoryCredential {
    RepositoryCredential {
        url_prefix: s(prefix),
        username: s("git"),
        password: s("hunter2"),
        ssh_private_key: s(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
        ssh_known_hosts: s(
            "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        ),
    }
}

fn project_destination(namespace: &str) -> ProjectDestination {
    ProjectDestination {
        cluster_selector: Some(label_selector()),
        cluster_names: strings(&[CLUSTER, "edge-2"]),
        all_clusters: true,
        namespace: s(namespace),
    }
}

fn role(kind: ProjectRoleKind, who: &str) -> ProjectRoleBinding {
    ProjectRoleBinding {
        role: kind as i32,
        users: vec![format!("{who}-1"), format!("{who}-2")],
        groups: vec![format!("{who}-group-1"), format!("{who}-group-2")],
    }
}

fn project(name: &str) -> Project {
    Project {
        name: s(name),
        description: s("the guestbook team"),
        source_repos: strings(&["https://git.example/*", "https://charts.example/*"]),
        destinations: vec![
            project_destination("guestbook"),
            project_destination("team-a-*"),
        ],
        cluster_resource_allow: vec![
            group_kind("", "Namespace", ""),
            group_kind("rbac.authorization.k8s.io", "ClusterRole", "team-a-*"),
        ],
        cluster_resource_deny: vec![
            group_kind("", "Node", ""),
            group_kind("storage.k8s.io", "*", ""),
        ],
        namespace_resource_deny: vec![
            group_kind("", "ResourceQuota", ""),
            group_kind("", "LimitRange", ""),
        ],
        roles: vec![
            role(ProjectRoleKind::Owner, "owner"),
            role(ProjectRoleKind::Viewer, "viewer"),
        ],
        version: 5,
        created_at: ts(6),
        namespace_resource_allow: vec![
            group_kind("apps", "Deployment", ""),
            group_kind("", "Service", ""),
        ],
        namespace_resource_allow_listed: true,
        orphaned_resources: Some(OrphanedResources {
            warn: Some(false),
            ignore: vec![
                group_kind("", "ConfigMap", "kube-root-ca.crt"),
                group_kind("", "Secret", "default-token-*"),
            ],
        }),
        sync_windows_json: s(
            r#"[{"kind":"allow","schedule":"0 22 * * *","duration":"1h","applications":["*"]}]"#,
        ),
        logs_role: ProjectRoleKind::Viewer as i32,
        exec_role: ProjectRoleKind::Owner as i32,
    }
}

fn generator(inner: application_set_generator::Generator) -> ApplicationSetGenerator {
    ApplicationSetGenerator {
        generator: Some(inner),
    }
}

fn list_generator() -> ApplicationSetGenerator {
    generator(application_set_generator::Generator::List(ListGenerator {
        elements_json: strings(&[
            r#"{"cluster":"edge-1","zone":"a"}"#,
            r#"{"cluster":"edge-2","zone":"b"}"#,
        ]),
    }))
}

fn clusters_generator() -> ApplicationSetGenerator {
    generator(application_set_generator::Generator::Clusters(
        ClustersGenerator {
            selector: Some(label_selector()),
            values: map("zone", "a"),
        },
    ))
}

fn git_generator() -> ApplicationSetGenerator {
    generator(application_set_generator::Generator::Git(GitGenerator {
        repo_url: s("https://git.example/fleet.git"),
        revision: s("main"),
        directories: vec![
            GitDirectory {
                path: s("apps/*"),
                exclude: false,
            },
            GitDirectory {
                path: s("apps/experimental"),
                exclude: true,
            },
        ],
        files: vec![
            GitFile {
                path: s("clusters/*.json"),
                exclude: false,
            },
            GitFile {
                path: s("clusters/old.json"),
                exclude: true,
            },
        ],
        path_param_prefix: s("src"),
        values: map("ring", "1"),
    }))
}

/// The Argo CD spec of [`application_set`], `spec_json`.
const APPSET_SPEC_JSON: &str = r#"{"generators":[{"list":{"elements":[{"cluster":"edge-1","zone":"a"}]}}],"template":{"metadata":{"name":"{{cluster}}-guestbook"},"spec":{"project":"team-a","source":{"repoURL":"https://git.example/fleet.git","targetRevision":"main","path":"apps/guestbook"},"destination":{"server":"https://kubernetes.default.svc","namespace":"guestbook"}}}}"#;

fn application_set(name: &str, first: ApplicationSetGenerator) -> ApplicationSet {
    ApplicationSet {
        project: s("team-a"),
        name: s(name),
        generators: vec![
            first,
            generator(application_set_generator::Generator::Matrix(
                MatrixGenerator {
                    generators: vec![git_generator(), list_generator()],
                },
            )),
            generator(application_set_generator::Generator::Merge(
                MergeGenerator {
                    merge_keys: strings(&["cluster", "zone"]),
                    generators: vec![clusters_generator(), list_generator()],
                },
            )),
        ],
        template: Some(ApplicationTemplate {
            name: s("{{cluster}}-guestbook"),
            project: s("team-a"),
            labels: map("zone", "{{zone}}"),
            annotations: map("generated-by", "guestbooks"),
            spec: Some(application_spec(true)),
        }),
        policy: ApplicationSetPolicy::CreateUpdate as i32,
        preserve_resources_on_deletion: true,
        go_template: true,
        scope: s(CLUSTER),
        version: 3,
        generated: vec![app_ref("edge-1-guestbook"), app_ref("edge-2-guestbook")],
        conditions: vec![
            condition("ResourcesUpToDate", 7),
            condition("ParametersGenerated", 8),
        ],
        created_at: ts(9),
        spec_json: s(APPSET_SPEC_JSON),
        rollout: vec![
            RolloutApplication {
                app: Some(app_ref("edge-1-guestbook")),
                status: s("Healthy"),
                step: 1,
                message: s("Synced and Healthy"),
                last_transition_time: ts(10),
                command_id: s("c-1"),
            },
            RolloutApplication {
                app: Some(app_ref("edge-2-guestbook")),
                status: s("Pending"),
                step: 2,
                message: s("step 2 is rolling out: sync asked"),
                last_transition_time: ts(11),
                command_id: s("c-2"),
            },
        ],
    }
}

/// One sample of every hub -> spoke message body, and of every kind of the nested oneofs that
/// select what the spoke does (command kinds, live requests, live input).
pub fn hub_messages() -> Vec<HubMessage> {
    use hub_message::Body;
    vec![
        hub(
            1,
            Body::Welcome(Welcome {
                cluster_name: s(CLUSTER),
                protocol: Some(protocol()),
                capabilities: strings(&["status-deltas.v1", "deployments.v1"]),
                resume_spoke_seq: 10,
                resume_hub_seq: 40,
                heartbeat_interval: dur(10),
                window: 256,
                hub_replica: s("hub-0"),
                hub_version: s("0.1.0"),
                full_status_resync: true,
                digest_interval: dur(300),
            }),
        ),
        hub(
            2,
            Body::DesiredApps(DesiredApps {
                version: 9,
                base_version: 8,
                full_snapshot: true,
                upserts: vec![desired_app("guestbook", true), desired_app("redis", false)],
                deletes: vec![app_ref("old-1"), app_ref("old-2")],
                keep_resources: vec![app_ref("old-1"), app_ref("old-2")],
            }),
        ),
        hub(
            3,
            command(
                1,
                command::Kind::Sync(SyncCommand {
                    revision: s("3f2c9d1e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
                    prune: true,
                    dry_run: true,
                    resources: vec![
                        key("Deployment", "guestbook-ui"),
                        key("Service", "guestbook-ui"),
                    ],
                    force: true,
                    apply_out_of_sync_only: true,
                }),
            ),
        ),
        hub(
            4,
            command(2, command::Kind::Refresh(RefreshCommand { hard: true })),
        ),
        hub(
            5,
            command(
                3,
                command::Kind::Rollback(RollbackCommand {
                    history_id: 3,
                    prune: true,
                    dry_run: true,
                }),
            ),
        ),
        hub(6, command(4, command::Kind::Terminate(TerminateCommand {}))),
        hub(
            7,
            command(
                5,
                command::Kind::Diff(DiffCommand {
                    resources: vec![
                        key("Deployment", "guestbook-ui"),
                        key("Service", "guestbook-ui"),
                    ],
                }),
            ),
        ),
        hub(
            8,
            command(
                6,
                command::Kind::Manifests(ManifestsCommand {
                    revision: s("v1.2.3"),
                }),
            ),
        ),
        hub(
            9,
            command(7, command::Kind::Delete(DeleteCommand { cascade: true })),
        ),
        hub(
            10,
            Body::Resync(ResyncRequest {
                scope: resync_request::Scope::All as i32,
                reason: s("a new spoke epoch"),
                apps: vec![app_ref("guestbook"), app_ref("redis")],
            }),
        ),
        hub(11, Body::Heartbeat(heartbeat())),
        hub(12, Body::Digest(digest())),
        hub(
            13,
            Body::Renew(RenewResponse {
                certificate_pem: s(
                    "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
                ),
                ca_bundle_pem: s("-----BEGIN CERTIFICATE-----\nMIID\n-----END CERTIFICATE-----\n"),
                not_after: ts(86_400),
                error: s("the CSR's key is not the certificate's"),
            }),
        ),
        hub(
            14,
            Body::RepositoryCredentials(RepositoryCredentials {
                credentials: vec![
                    credential("https://git.example/"),
                    credential("ssh://git@git.example/"),
                ],
                full_snapshot: true,
            }),
        ),
        hub(
            15,
            Body::GoAway(GoAway {
                reason: go_away::Reason::Draining as i32,
                message: s("hub-0 is shutting down"),
                retry_after: dur(2),
            }),
        ),
        hub(
            16,
            Body::ProjectPolicies(ProjectPolicies {
                projects: vec![project("team-a"), project("team-b")],
                full_snapshot: true,
            }),
        ),
        hub(
            17,
            Body::ApplicationSets(SpokeApplicationSets {
                sets: vec![
                    application_set("guestbooks", list_generator()),
                    application_set("per-cluster", clusters_generator()),
                ],
                cluster_labels: map("tier", "edge"),
                cluster_annotations: map("contact", "ops@example.com"),
                cluster_server_url: s("https://10.0.0.1:6443"),
            }),
        ),
        hub(
            18,
            live_open(
                "live-manifest",
                live_open::Request::Manifest(LiveManifestRequest {
                    resource: Some(key("Deployment", "guestbook-ui")),
                    managed_fields: true,
                }),
            ),
        ),
        hub(
            19,
            live_open(
                "live-events",
                live_open::Request::Events(LiveEventsRequest {
                    resource: Some(key("Deployment", "guestbook-ui")),
                }),
            ),
        ),
        hub(
            20,
            live_open(
                "live-logs",
                live_open::Request::Logs(LiveLogsRequest {
                    resource: Some(key("Deployment", "guestbook-ui")),
                    container: s("ui"),
                    since_seconds: 3600,
                    tail_lines: 100,
                    previous: true,
                    follow: true,
                }),
            ),
        ),
        hub(
            21,
            live_open(
                "live-exec",
                live_open::Request::Exec(LiveExecRequest {
                    resource: Some(key("Deployment", "guestbook-ui")),
                    container: s("ui"),
                    command: strings(&["/bin/sh", "-l"]),
                    stdin: true,
                    tty: true,
                    size: Some(TerminalSize {
                        width: 120,
                        height: 40,
                    }),
                }),
            ),
        ),
        hub(
            22,
            Body::LiveCredit(LiveCredit {
                session_id: s("live-exec"),
                bytes: 32_768,
            }),
        ),
        hub(
            23,
            Body::LiveCancel(LiveCancel {
                session_id: s("live-exec"),
            }),
        ),
        hub(
            24,
            live_input(live_input::Input::Stdin(b"ls -l\n".to_vec())),
        ),
        hub(
            25,
            live_input(live_input::Input::Resize(TerminalSize {
                width: 200,
                height: 50,
            })),
        ),
        hub(26, live_input(live_input::Input::StdinClosed(true))),
    ]
}
