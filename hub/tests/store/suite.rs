//! The backend-independent store tests: each function takes `&dyn Store` and is run on SQLite and on PostgreSQL by `main.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use edgecd_core::app::{AppOrigin, Condition, OperationPhase, OwnerRef};
use edgecd_core::deployment::Deployment;
use edgecd_core::project::ProjectSpec;
use edgecd_core::selector::LabelSelector;
use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::*;
use futures::StreamExt as _;
use time::OffsetDateTime;

use crate::fixtures::*;
pub use crate::names::names_select_the_hub_app_and_every_edge_app;

pub async fn projects_crud(store: &dyn Store) {
    let default = store.get_project("default").await.unwrap();
    assert_eq!(default.spec, ProjectSpec::permissive());
    let created = store
        .create_project("team-a", &ProjectSpec::default())
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert!(matches!(
        store
            .create_project("team-a", &ProjectSpec::default())
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store
            .create_project("Team_A", &ProjectSpec::default())
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let updated = store
        .update_project("team-a", 1, &ProjectSpec::permissive())
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.spec, ProjectSpec::permissive());
    match store
        .update_project("team-a", 1, &ProjectSpec::default())
        .await
    {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let names: Vec<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["default", "team-a"]);
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    store
        .create_app(&new_app("team-a", "web", "c1"))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_project("team-a").await,
        Err(StoreError::InUse { .. })
    ));
    store.delete_app("team-a", "web", None).await.unwrap();
    store.delete_project("team-a").await.unwrap();
    assert!(matches!(
        store.get_project("team-a").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn clusters_crud_and_connection(store: &dyn Store) {
    let created = store
        .create_cluster(&cluster("edge-1", &[("region", "eu"), ("tier", "edge")]))
        .await
        .unwrap();
    assert_eq!(created.connection.state, ConnectionKind::Pending);
    assert_eq!(created.version, 1);
    store
        .create_cluster(&cluster("edge-2", &[("region", "us")]))
        .await
        .unwrap();
    assert!(matches!(
        store.create_cluster(&cluster("edge-1", &[])).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let eu: Vec<String> = store
        .list_clusters(&LabelSelector::parse("region=eu").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(eu, ["edge-1"]);
    let no_tier: Vec<String> = store
        .list_clusters(&LabelSelector::parse("!tier").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(no_tier, ["edge-2"]);

    let new_labels = labels(&[("region", "us"), ("tier", "core")]);
    let updated = store
        .update_cluster_labels("edge-1", 1, &new_labels, &labels(&[("owner", "ops")]))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.labels, new_labels);
    assert!(matches!(
        store
            .update_cluster_labels("edge-1", 1, &new_labels, &Labels::new())
            .await,
        Err(StoreError::Conflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    let us: Vec<String> = store
        .list_clusters(&LabelSelector::parse("region in (us)").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(us, ["edge-1", "edge-2"], "the label index follows updates");

    let versions = ClusterVersions {
        spoke_version: "1.2.0".into(),
        kubernetes_version: "v1.33.1".into(),
        protocol_major: 1,
        protocol_minor: 2,
        capabilities: vec!["status-deltas.v1".into()],
    };
    let not_after = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
    let since = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let connected = ClusterConnection {
        state: ConnectionKind::Connected,
        since: Some(since),
        last_heartbeat: Some(since),
        hub_replica: "replica-b".into(),
    };
    let handshake = |server_url: &str, not_after| LinkHello {
        server_url: server_url.into(),
        versions: versions.clone(),
        certificate_not_after: not_after,
        connection: connected.clone(),
    };
    let opened = open_link(
        store,
        "edge-1",
        "stream-1",
        &handshake("https://10.0.0.1:6443", Some(not_after)),
    )
    .await;
    // The handshake's record comes back from the one transaction.
    assert_eq!(opened.cluster, store.get_cluster("edge-1").await.unwrap());
    assert!(!opened.commands_open);
    let got = store.get_cluster("edge-1").await.unwrap();
    assert_eq!(got.versions, versions);
    // The URL the cluster was added with is kept over the one the spoke reports.
    assert_eq!(got.server_url, "https://edge-1.example:6443");
    // A cluster without a URL takes the one its spoke reports, unless another cluster has it: a URL names
    // one cluster, or `destination.server` would be ambiguous.
    store.set_cluster_server_url("edge-2", "").await.unwrap();
    let hello_1 = handshake("https://edge-1.example:6443", None);
    open_link(store, "edge-2", "stream-1", &hello_1).await;
    assert_eq!(store.get_cluster("edge-2").await.unwrap().server_url, "");
    let hello_2 = handshake("https://edge-2.example:6443", None);
    open_link(store, "edge-2", "stream-2", &hello_2).await;
    assert_eq!(
        store.get_cluster("edge-2").await.unwrap().server_url,
        "https://edge-2.example:6443"
    );
    assert_eq!(got.certificate_not_after, Some(not_after));
    assert_eq!(got.connection.state, ConnectionKind::Connected);
    assert_eq!(got.connection.since, Some(since));
    assert_eq!(got.connection.hub_replica, "replica-b");
    assert_eq!(got.annotations, labels(&[("owner", "ops")]));

    store.revoke_cluster("edge-1", since).await.unwrap();
    store
        .set_cluster_connection(
            "edge-1",
            &ClusterConnection {
                state: ConnectionKind::Connected,
                since: Some(since),
                last_heartbeat: None,
                hub_replica: "replica-a".into(),
            },
        )
        .await
        .unwrap();
    let revoked = store.get_cluster("edge-1").await.unwrap();
    assert_eq!(
        revoked.connection.state,
        ConnectionKind::Revoked,
        "revocation sticks"
    );
    assert_eq!(revoked.revoked_at, Some(since));
    // A handshake after the revocation (a stream that raced it) is refused and writes nothing: the
    // connection record stays Revoked and the link is not taken.
    let link_before = store.get_link_state("edge-1").await.unwrap();
    let refused = store
        .open_link(
            "edge-1",
            "stream-3",
            &handshake("https://10.0.0.9:6443", None),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(refused, LinkOpened::Revoked);
    assert_eq!(store.get_cluster("edge-1").await.unwrap(), revoked);
    assert_eq!(store.get_link_state("edge-1").await.unwrap(), link_before);
    // An unknown cluster is not found, and leaves no link behind.
    let unknown = store
        .open_link(
            "nowhere",
            "stream-4",
            &handshake("", None),
            OffsetDateTime::now_utc(),
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    assert_eq!(
        store.get_link_state("nowhere").await.unwrap(),
        LinkState::default()
    );

    store
        .create_app(&new_app("default", "web", "edge-2"))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_cluster("edge-2").await,
        Err(StoreError::InUse { .. })
    ));
    store.delete_cluster("edge-1").await.unwrap();
    assert!(matches!(
        store.get_cluster("edge-1").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_cluster("nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Review finding 6: clusters left Connected or Stale by a replica that died
/// are marked Disconnected (since their last heartbeat) once silent long
/// enough; fresh, pending, disconnected and revoked ones are left alone.
pub async fn silent_clusters_are_disconnected(store: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    let old = now - time::Duration::minutes(10);
    let states = [
        ("crashed-connected", ConnectionKind::Connected, Some(old)),
        ("crashed-stale", ConnectionKind::Stale, Some(old)),
        ("live", ConnectionKind::Connected, Some(now)),
        ("gone", ConnectionKind::Disconnected, Some(old)),
        ("new", ConnectionKind::Pending, None),
    ];
    for (name, state, heartbeat) in states {
        store
            .create_cluster(&NewCluster {
                name: name.into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
        if state != ConnectionKind::Pending {
            store
                .set_cluster_connection(
                    name,
                    &ClusterConnection {
                        state,
                        since: heartbeat,
                        last_heartbeat: heartbeat,
                        hub_replica: "replica-a".into(),
                    },
                )
                .await
                .unwrap();
        }
    }
    store
        .create_cluster(&NewCluster {
            name: "revoked".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    store.revoke_cluster("revoked", old).await.unwrap();

    let mut swept = store
        .disconnect_silent_clusters(now - time::Duration::minutes(1))
        .await
        .unwrap();
    swept.sort();
    assert_eq!(swept, ["crashed-connected", "crashed-stale"]);
    for name in ["crashed-connected", "crashed-stale"] {
        let cluster = store.get_cluster(name).await.unwrap();
        assert_eq!(cluster.connection.state, ConnectionKind::Disconnected);
        assert_eq!(
            cluster.connection.since.map(|t| t.unix_timestamp()),
            Some(old.unix_timestamp())
        );
    }
    for (name, state) in [
        ("live", ConnectionKind::Connected),
        ("gone", ConnectionKind::Disconnected),
        ("new", ConnectionKind::Pending),
        ("revoked", ConnectionKind::Revoked),
    ] {
        assert_eq!(
            store.get_cluster(name).await.unwrap().connection.state,
            state,
            "{name}"
        );
    }
    // Nothing left to sweep.
    assert!(
        store
            .disconnect_silent_clusters(now - time::Duration::minutes(1))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A handshake that reports nothing but being Connected, on `replica-a`.
fn plain_hello() -> LinkHello {
    LinkHello {
        server_url: String::new(),
        versions: ClusterVersions::default(),
        certificate_not_after: None,
        connection: ClusterConnection {
            state: ConnectionKind::Connected,
            since: None,
            last_heartbeat: None,
            hub_replica: "replica-a".into(),
        },
    }
}

/// Opens `cluster`'s link for `stream` ([`Store::open_link`]), which must succeed.
async fn open_link(store: &dyn Store, cluster: &str, stream: &str, hello: &LinkHello) -> OpenLink {
    match store
        .open_link(cluster, stream, hello, OffsetDateTime::now_utc())
        .await
        .unwrap()
    {
        LinkOpened::Open(link) => *link,
        LinkOpened::Revoked => panic!("cluster {cluster} is revoked"),
    }
}

/// A stream owns its cluster's connection record from its handshake on: heartbeats written together and
/// the stream's later states apply only while it still does. A heartbeat never goes back in time; a
/// cluster Connected already keeps since when; a revoked one stays Revoked; a disconnect gives the record up.
pub async fn streams_own_their_connection_record(store: &dyn Store) {
    let now = OffsetDateTime::now_utc().replace_millisecond(0).unwrap();
    let (older, before, beat, after) = (
        now - time::Duration::seconds(60),
        now - time::Duration::seconds(20),
        now - time::Duration::seconds(10),
        now,
    );
    let versions = ClusterVersions::default();
    let hello = |stream: &'static str, at: OffsetDateTime| {
        let hello = LinkHello {
            server_url: String::new(),
            versions: versions.clone(),
            certificate_not_after: None,
            connection: ClusterConnection {
                state: ConnectionKind::Connected,
                since: Some(at),
                last_heartbeat: Some(at),
                hub_replica: "replica-a".into(),
            },
        };
        async move {
            open_link(store, &format!("hb-{stream}"), stream, &hello).await;
        }
    };
    for name in [
        "hb-live",
        "hb-stale",
        "hb-swept",
        "hb-ended",
        "hb-superseded",
        "hb-newer",
        "hb-revoked",
    ] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    for (stream, at) in [
        ("live", before),
        ("stale", before),
        ("swept", older),
        ("ended", before),
        ("superseded", before),
        ("newer", after),
        ("revoked", before),
    ] {
        hello(stream, at).await;
    }
    let state = |state, since, heartbeat: OffsetDateTime| ClusterConnection {
        state,
        since: Some(since),
        last_heartbeat: Some(heartbeat),
        hub_replica: "replica-a".into(),
    };
    // Its own Stale mark, as of its last message.
    assert!(
        store
            .set_stream_connection(
                "hb-stale",
                "stale",
                &state(ConnectionKind::Stale, beat, beat)
            )
            .await
            .unwrap()
    );
    // The sweeper, while the stream's heartbeats were late.
    store
        .disconnect_silent_clusters(now - time::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_cluster("hb-swept")
            .await
            .unwrap()
            .connection
            .state,
        ConnectionKind::Disconnected
    );
    // The stream ended: the record is given up.
    assert!(
        store
            .set_stream_connection(
                "hb-ended",
                "ended",
                &ClusterConnection {
                    state: ConnectionKind::Disconnected,
                    since: Some(before),
                    last_heartbeat: None,
                    hub_replica: String::new(),
                },
            )
            .await
            .unwrap()
    );
    // Another stream's handshake (on another replica) took the record.
    let successor = LinkHello {
        server_url: String::new(),
        versions: versions.clone(),
        certificate_not_after: None,
        connection: ClusterConnection {
            hub_replica: "replica-b".into(),
            ..state(ConnectionKind::Connected, before, before)
        },
    };
    open_link(store, "hb-superseded", "successor", &successor).await;
    store.revoke_cluster("hb-revoked", before).await.unwrap();

    let beats: Vec<StreamBeat> = [
        ("hb-ended", "ended"),
        ("hb-live", "live"),
        ("hb-newer", "newer"),
        ("hb-revoked", "revoked"),
        ("hb-stale", "stale"),
        ("hb-superseded", "superseded"),
        ("hb-swept", "swept"),
        ("hb-unknown", "unknown"),
    ]
    .into_iter()
    .map(|(cluster, stream)| StreamBeat {
        cluster: cluster.into(),
        stream: stream.into(),
        at: beat,
    })
    .collect();
    let recorded = store.record_heartbeats(&beats).await.unwrap();
    assert_eq!(recorded.written, 3, "hb-live, hb-swept and hb-revoked");
    // Their sessions are to end: the record is another stream's, or given up.
    assert_eq!(recorded.disowned, ["ended", "superseded"]);

    let seconds = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
    let expected = [
        // name, state, since, last heartbeat, replica
        (
            "hb-live",
            ConnectionKind::Connected,
            Some(before),
            beat,
            "replica-a",
        ),
        (
            "hb-stale",
            ConnectionKind::Stale,
            Some(beat),
            beat,
            "replica-a",
        ),
        (
            "hb-swept",
            ConnectionKind::Connected,
            Some(beat),
            beat,
            "replica-a",
        ),
        (
            "hb-ended",
            ConnectionKind::Disconnected,
            Some(before),
            before,
            "",
        ),
        (
            "hb-superseded",
            ConnectionKind::Connected,
            Some(before),
            before,
            "replica-b",
        ),
        (
            "hb-newer",
            ConnectionKind::Connected,
            Some(after),
            after,
            "replica-a",
        ),
        (
            "hb-revoked",
            ConnectionKind::Revoked,
            Some(before),
            beat,
            "replica-a",
        ),
    ];
    for (name, state, since, heartbeat, replica) in expected {
        let connection = store.get_cluster(name).await.unwrap().connection;
        assert_eq!(connection.state, state, "{name}");
        assert_eq!(seconds(connection.since), seconds(since), "{name}");
        assert_eq!(
            seconds(connection.last_heartbeat),
            seconds(Some(heartbeat)),
            "{name}"
        );
        assert_eq!(connection.hub_replica, replica, "{name}");
    }
    // The same heartbeats again change nothing; nothing to write is no statement.
    assert_eq!(store.record_heartbeats(&beats).await.unwrap().written, 0);
    assert_eq!(
        store.record_heartbeats(&[]).await.unwrap(),
        HeartbeatsRecorded::default()
    );
    // Later states of a stream that gave the record up, or lost it, change nothing either.
    for (name, stream) in [("hb-ended", "ended"), ("hb-superseded", "superseded")] {
        assert!(
            !store
                .set_stream_connection(name, stream, &state(ConnectionKind::Stale, after, after))
                .await
                .unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        store
            .get_cluster("hb-superseded")
            .await
            .unwrap()
            .connection
            .hub_replica,
        "replica-b"
    );
    // A heartbeat never goes back in time.
    assert!(
        store
            .set_stream_connection(
                "hb-newer",
                "newer",
                &state(ConnectionKind::Stale, before, before)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        seconds(
            store
                .get_cluster("hb-newer")
                .await
                .unwrap()
                .connection
                .last_heartbeat
        ),
        seconds(Some(after))
    );
}

/// Invariant 5 in numbers: an app whose cluster is not connected is counted
/// and filtered as Unknown, whatever it last reported (which the summary
/// keeps beside the connection state); apps of a connected cluster and of
/// no registered cluster count as reported.
pub async fn unreachable_clusters_count_their_apps_as_unknown(store: &dyn Store) {
    let states = [
        ("c-up", ConnectionKind::Connected),
        ("c-stale", ConnectionKind::Stale),
        ("c-gone", ConnectionKind::Disconnected),
    ];
    for (name, state) in states {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
        store
            .create_app(&new_app("default", &format!("web-{name}"), name))
            .await
            .unwrap();
        let batch = StatusBatch {
            reports: vec![report(
                "default",
                &format!("web-{name}"),
                status(SyncStatus::Synced, Health::Healthy, 1),
            )],
            ..StatusBatch::default()
        };
        store
            .ingest_status_batch(name, &at("e", 1), &batch)
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        store
            .set_cluster_connection(
                name,
                &ClusterConnection {
                    state,
                    since: Some(now),
                    last_heartbeat: Some(now),
                    hub_replica: "r".into(),
                },
            )
            .await
            .unwrap();
    }
    let names = |page: Page<AppSummary>| -> Vec<String> {
        let mut names: Vec<String> = page.items.into_iter().map(|a| a.name).collect();
        names.sort();
        names
    };
    for key in [SortKey::Name, SortKey::Health] {
        let healthy = store
            .list_apps(&query(
                AppFilter {
                    health: vec![Health::Healthy],
                    ..AppFilter::default()
                },
                key,
                false,
                100,
            ))
            .await
            .unwrap();
        assert_eq!(healthy.total, Some(1));
        assert_eq!(names(healthy), ["web-c-up"], "{key:?}");
        let unknown = store
            .list_apps(&query(
                AppFilter {
                    health: vec![Health::Unknown, Health::Degraded],
                    ..AppFilter::default()
                },
                key,
                false,
                100,
            ))
            .await
            .unwrap();
        assert_eq!(names(unknown), ["web-c-gone", "web-c-stale"], "{key:?}");
    }
    // The summary keeps the last report beside the connection.
    let all = store
        .list_apps(&query(AppFilter::default(), SortKey::Name, false, 100))
        .await
        .unwrap();
    let stale = all.items.iter().find(|a| a.name == "web-c-stale").unwrap();
    assert_eq!(
        (stale.health, stale.health_shown(), stale.cluster_connection),
        (
            Health::Healthy,
            Health::Unknown,
            Some(ConnectionKind::Stale)
        )
    );
    // Counts: whole fleet (served by the counts table), a filter that is not,
    // and per cluster.
    for filter in [
        AppFilter::default(),
        AppFilter {
            projects: vec!["default".into()],
            ..AppFilter::default()
        },
    ] {
        let counts = store.count_apps(&filter).await.unwrap();
        assert_eq!(counts.by_health.get("Healthy"), Some(&1), "{filter:?}");
        assert_eq!(counts.by_health.get("Unknown"), Some(&2), "{filter:?}");
        let per_cluster = store.count_apps_by_cluster(&filter).await.unwrap();
        assert_eq!(per_cluster["c-up"].by_health.get("Healthy"), Some(&1));
        assert_eq!(per_cluster["c-stale"].by_health.get("Unknown"), Some(&1));
        assert_eq!(per_cluster["c-stale"].by_health.get("Healthy"), None);
    }
    // Reconnected: counted as reported again.
    store
        .set_cluster_connection(
            "c-stale",
            &ClusterConnection {
                state: ConnectionKind::Connected,
                since: None,
                last_heartbeat: Some(OffsetDateTime::now_utc()),
                hub_replica: "r".into(),
            },
        )
        .await
        .unwrap();
    let counts = store.count_apps(&AppFilter::default()).await.unwrap();
    assert_eq!(counts.by_health.get("Healthy"), Some(&2));
}

pub async fn apps_crud_and_optimistic_concurrency(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    let mut app = new_app("default", "web", "c1");
    app.labels = labels(&[("team", "web")]);
    app.owner = Some(OwnerRef {
        kind: "ApplicationSet".into(),
        project: "default".into(),
        name: "set".into(),
        scope: "hub".into(),
    });
    let created = store.create_app(&app).await.unwrap();
    assert_eq!(created.spec_version, 1);
    assert_eq!(created.origin, AppOrigin::Managed);
    assert_eq!(created.cluster, "c1");
    assert_eq!(created.namespace, "web");
    assert_eq!(created.spec.project, "default");
    assert_eq!(created.owner, app.owner);
    assert_eq!(created.status, None);
    assert!(!created.uid.is_empty());
    assert_eq!(store.get_app("default", "web").await.unwrap(), created);

    assert!(matches!(
        store.create_app(&app).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.create_app(&new_app("nope", "web", "c1")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .create_app(&new_app("default", "Bad_Name", "c1"))
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let mut by_server = new_app("default", "by-server", "");
    by_server.spec.destination.server = "https://c1.example:6443".into();
    assert_eq!(store.create_app(&by_server).await.unwrap().cluster, "c1");
    let mut nowhere = new_app("default", "nowhere", "");
    nowhere.spec.destination.server = "https://unknown:6443".into();
    assert!(matches!(
        store.create_app(&nowhere).await,
        Err(StoreError::Invalid { .. })
    ));

    let mut spec = app.spec.clone();
    spec.source.target_revision = "v2".into();
    let updated = store
        .update_app("default", "web", 1, &spec, &labels(&[("team", "platform")]))
        .await
        .unwrap();
    assert_eq!(updated.spec_version, 2);
    assert_eq!(updated.spec.source.target_revision, "v2");
    assert_eq!(updated.labels, labels(&[("team", "platform")]));
    assert_eq!(updated.uid, created.uid);
    // A writer that read version 1 loses.
    match store
        .update_app("default", "web", 1, &app.spec, &Labels::new())
        .await
    {
        Err(StoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (1, 2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        store.delete_app("default", "web", Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .update_app("default", "missing", 1, &spec, &Labels::new())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    store.delete_app("default", "web", Some(2)).await.unwrap();
    assert!(matches!(
        store.get_app("default", "web").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_app("default", "web", None).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn change_names(changes: &DesiredChanges) -> Vec<(String, u64, bool)> {
    changes
        .changes
        .iter()
        .map(|c| match c {
            DesiredChange::Upsert(app) => (app.name.clone(), app.desired_version, true),
            DesiredChange::Delete {
                name,
                desired_version,
                ..
            } => (name.clone(), *desired_version, false),
        })
        .collect()
}

pub async fn desired_changes_with_tombstones(store: &dyn Store) {
    store
        .create_app(&new_app("default", "a1", "c1"))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "a2", "c1"))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "b1", "c2"))
        .await
        .unwrap();
    let full = store.desired_changes("c1", 0).await.unwrap();
    assert_eq!(full.version, 2);
    assert_eq!(
        change_names(&full),
        [("a1".into(), 1, true), ("a2".into(), 2, true)]
    );
    let DesiredChange::Upsert(first) = &full.changes[0] else {
        panic!("upsert expected");
    };
    assert_eq!(first.spec.source.path, "a1");
    assert_eq!(first.spec_version, 1);

    let a1 = store.get_app("default", "a1").await.unwrap();
    let mut spec = a1.spec.clone();
    spec.source.path = "a1-v2".into();
    store
        .update_app("default", "a1", 1, &spec, &Labels::new())
        .await
        .unwrap();
    store.delete_app("default", "a2", None).await.unwrap();
    let since2 = store.desired_changes("c1", 2).await.unwrap();
    assert_eq!(since2.version, 4);
    assert_eq!(
        change_names(&since2),
        [("a1".into(), 3, true), ("a2".into(), 4, false)]
    );
    // The full set never carries tombstones.
    assert_eq!(
        change_names(&store.desired_changes("c1", 0).await.unwrap()),
        [("a1".into(), 3, true)]
    );
    assert!(
        store
            .desired_changes("c1", 4)
            .await
            .unwrap()
            .changes
            .is_empty()
    );

    // Moving a1 to c2: a tombstone on c1, an upsert on c2.
    spec.destination.cluster = "c2".into();
    store
        .update_app("default", "a1", 2, &spec, &Labels::new())
        .await
        .unwrap();
    assert_eq!(
        change_names(&store.desired_changes("c1", 4).await.unwrap()),
        [("a1".into(), 5, false)]
    );
    let c2 = store.desired_changes("c2", 1).await.unwrap();
    assert_eq!(c2.version, 2);
    assert_eq!(change_names(&c2), [("a1".into(), 2, true)]);
    assert_eq!(store.get_link_state("c2").await.unwrap().desired_version, 2);

    // Re-creating a deleted app clears its tombstone.
    store
        .create_app(&new_app("default", "a2", "c1"))
        .await
        .unwrap();
    assert_eq!(
        change_names(&store.desired_changes("c1", 3).await.unwrap()),
        [("a1".into(), 5, false), ("a2".into(), 6, true)]
    );
    // Autonomous apps are not part of the desired set.
    store
        .ingest_status_batch(
            "c1",
            &at("e", 1),
            &StatusBatch {
                reports: vec![autonomous_report(
                    "default",
                    "edge-made@c1",
                    "c1",
                    status(SyncStatus::Synced, Health::Healthy, 1),
                )],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.desired_changes("c1", 0).await.unwrap().version, 6);
    assert_eq!(store.desired_changes("c1", 6).await.unwrap().changes, []);
}

async fn summary(store: &dyn Store, name: &str) -> AppSummary {
    let page = store
        .list_apps(&AppQuery {
            filter: AppFilter {
                search: name.into(),
                ..AppFilter::default()
            },
            sort: AppSort::default(),
            page_size: 100,
            cursor: None,
        })
        .await
        .unwrap();
    page.items
        .into_iter()
        .find(|s| s.name == name)
        .expect("listed")
}

/// Once a newer stream of a cluster claimed its link, an older stream's status message is refused, never
/// stored, wherever in the older stream it comes; the resume point the claim returned is final, so the spoke
/// may renumber what it sends after it. A duplicate of the owner's is still a duplicate.
pub async fn an_older_stream_stores_nothing_once_a_newer_one_claimed_the_link(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "web", "c1"))
        .await
        .unwrap();
    let on = |stream: &str, seq: u64, version: u64| {
        (
            SpokeSeq {
                stream: Some(stream.to_owned()),
                ..at("epoch-1", seq)
            },
            StatusBatch {
                reports: vec![report(
                    "default",
                    "web",
                    status(SyncStatus::Synced, Health::Healthy, version),
                )],
                ..StatusBatch::default()
            },
        )
    };
    let hello = plain_hello();
    let first = open_link(store, "c1", "first", &hello).await;
    assert_eq!(first.state.spoke_seq, 0);
    let (seq, batch) = on("first", 1, 1);
    let stored = store.ingest_status_batch("c1", &seq, &batch).await.unwrap();
    assert_eq!((stored.applied, stored.duplicate), (1, false));

    let resume = open_link(store, "c1", "second", &hello).await.state;
    assert_eq!(
        (resume.spoke_epoch.as_str(), resume.spoke_seq),
        ("epoch-1", 1)
    );
    // The older stream cannot write the connection record either; the newer one can.
    let disconnected = ClusterConnection {
        state: ConnectionKind::Disconnected,
        ..hello.connection.clone()
    };
    assert!(
        !store
            .set_stream_connection("c1", "first", &disconnected)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_stream_connection("c1", "second", &hello.connection)
            .await
            .unwrap()
    );
    // The older stream's next message, and a retransmission of one it had stored: both refused.
    for (seq, version) in [(2, 2), (1, 1)] {
        let (seq, batch) = on("first", seq, version);
        let refused = store.ingest_status_batch("c1", &seq, &batch).await;
        assert!(
            matches!(refused, Err(StoreError::Superseded { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(store.get_link_state("c1").await.unwrap().spoke_seq, 1);
    // The new owner goes on from the resume point, with what it has now.
    let (seq, batch) = on("second", 2, 7);
    let stored = store.ingest_status_batch("c1", &seq, &batch).await.unwrap();
    assert_eq!((stored.applied, stored.duplicate), (1, false));
    let again = store.ingest_status_batch("c1", &seq, &batch).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(summary(store, "web").await.status_version, 7);
    // A message not tied to a stream (no fencing asked) is stored whoever owns the link.
    let stored = store
        .ingest_status_batch("c1", &at("epoch-1", 3), &on("any", 3, 8).1)
        .await
        .unwrap();
    assert_eq!(stored.applied, 1);
}

pub async fn status_ingest_is_idempotent_and_ordered(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "web", "c1"))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "db", "c1"))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "other", "c2"))
        .await
        .unwrap();
    let mut healthy = status(SyncStatus::Synced, Health::Healthy, 5);
    healthy.conditions = vec![Condition {
        kind: "SyncError".into(),
        message: "boom".into(),
        last_transition_time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }];
    let batch = StatusBatch {
        reports: vec![
            report("default", "web", healthy.clone()),
            report(
                "default",
                "db",
                status(SyncStatus::OutOfSync, Health::Progressing, 1),
            ),
            // Not this cluster's app, and an unknown app: refused, not fatal.
            report(
                "default",
                "other",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            report(
                "default",
                "ghost",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
        ],
        ..StatusBatch::default()
    };
    let first = store
        .ingest_status_batch("c1", &at("epoch-1", 1), &batch)
        .await
        .unwrap();
    assert_eq!(
        (first.applied, first.rejected, first.duplicate),
        (2, 2, false)
    );
    let link = store.get_link_state("c1").await.unwrap();
    assert_eq!((link.spoke_epoch.as_str(), link.spoke_seq), ("epoch-1", 1));
    let web = store.get_app("default", "web").await.unwrap();
    assert_eq!(web.status.as_ref(), Some(&healthy));
    let web_row = summary(store, "web").await;
    assert_eq!(web_row.sync, SyncStatus::Synced);
    assert_eq!(web_row.health, Health::Healthy);
    assert_eq!(web_row.revision, "rev-5");
    assert_eq!(web_row.error_conditions, 1);
    assert_eq!(web_row.status_version, 5);

    // A replay of the same (epoch, seq) writes nothing.
    let replay = StatusBatch {
        reports: vec![report(
            "default",
            "web",
            status(SyncStatus::OutOfSync, Health::Degraded, 9),
        )],
        ..StatusBatch::default()
    };
    let dup = store
        .ingest_status_batch("c1", &at("epoch-1", 1), &replay)
        .await
        .unwrap();
    assert!(dup.duplicate);
    assert_eq!(summary(store, "web").await.health, Health::Healthy);

    // An older status version is ignored, a newer one applied.
    let older = StatusBatch {
        reports: vec![report(
            "default",
            "web",
            status(SyncStatus::OutOfSync, Health::Degraded, 4),
        )],
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("epoch-1", 2), &older)
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.stale), (0, 1));
    assert_eq!(summary(store, "web").await.health, Health::Healthy);
    let same = store
        .ingest_status_batch("c1", &at("epoch-1", 3), &batch)
        .await
        .unwrap();
    assert_eq!(
        (same.applied, same.stale),
        (0, 2),
        "equal versions are not newer"
    );
    let outcome = store
        .ingest_status_batch("c1", &at("epoch-1", 4), &replay)
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    let web_row = summary(store, "web").await;
    assert_eq!(
        (web_row.sync, web_row.health),
        (SyncStatus::OutOfSync, Health::Degraded)
    );
    assert_eq!(store.get_link_state("c1").await.unwrap().spoke_seq, 4);

    // A new spoke epoch starts its sequence again.
    let restarted = store
        .ingest_status_batch(
            "c1",
            &at("epoch-2", 1),
            &StatusBatch {
                reports: vec![report(
                    "default",
                    "db",
                    status(SyncStatus::Synced, Health::Healthy, 2),
                )],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((restarted.duplicate, restarted.applied), (false, 1));
    let link = store.get_link_state("c1").await.unwrap();
    assert_eq!((link.spoke_epoch.as_str(), link.spoke_seq), ("epoch-2", 1));
}

/// Deleting edge-created apps' records: one by name, or every one of a
/// cluster (revocation); managed apps and other clusters' apps stay.
pub async fn edge_apps_are_deleted_by_cluster(store: &dyn Store) {
    for name in ["c1", "c2"] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    store
        .create_app(&new_app("default", "managed", "c1"))
        .await
        .unwrap();
    for (cluster, apps) in [
        ("c1", ["edge-a@c1", "edge-b@c1"]),
        ("c2", ["edge-c@c2", "edge-d@c2"]),
    ] {
        let batch = StatusBatch {
            reports: apps
                .iter()
                .map(|app| {
                    autonomous_report(
                        "default",
                        app,
                        cluster,
                        status(SyncStatus::Synced, Health::Healthy, 1),
                    )
                })
                .collect(),
            ..StatusBatch::default()
        };
        store
            .ingest_status_batch(cluster, &at("e", 1), &batch)
            .await
            .unwrap();
    }
    let exists = async |name: &str| store.get_app("default", name).await.is_ok();
    // Named on the wrong cluster: nothing; a managed app: never.
    assert_eq!(
        store
            .delete_edge_apps("c2", Some(("default", "edge-a@c1")))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_edge_apps("c1", Some(("default", "managed")))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_edge_apps("c1", Some(("default", "edge-a@c1")))
            .await
            .unwrap(),
        1
    );
    assert!(!exists("edge-a@c1").await && exists("edge-b@c1").await);
    assert_eq!(store.delete_edge_apps("c1", None).await.unwrap(), 1);
    assert!(!exists("edge-b@c1").await);
    assert!(exists("managed").await && exists("edge-c@c2").await && exists("edge-d@c2").await);
}

pub async fn autonomous_apps_and_full_snapshots(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "managed-a", "c1"))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "managed-b", "c1"))
        .await
        .unwrap();
    let first = StatusBatch {
        reports: vec![
            autonomous_report(
                "default",
                "edge-a@c1",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            autonomous_report(
                "default",
                "edge-b@c1",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            autonomous_report(
                "no-such-project",
                "edge-c@c1",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            // An edge app may not take over a managed app's name.
            autonomous_report(
                "default",
                "managed-a",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            report(
                "default",
                "managed-a",
                status(SyncStatus::Synced, Health::Healthy, 3),
            ),
            report(
                "default",
                "managed-b",
                status(SyncStatus::Synced, Health::Healthy, 3),
            ),
        ],
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 1), &first)
        .await
        .unwrap();
    assert_eq!(
        (outcome.created, outcome.applied, outcome.rejected),
        (2, 2, 2),
        "{outcome:?}"
    );
    let edge_a = store.get_app("default", "edge-a@c1").await.unwrap();
    assert_eq!(edge_a.origin, AppOrigin::Autonomous);
    assert_eq!(edge_a.cluster, "c1");
    assert_eq!(edge_a.desired_version, 0);
    assert_eq!(edge_a.labels, labels(&[("created-by", "edge")]));
    assert!(matches!(
        store
            .update_app("default", "edge-a@c1", 1, &edge_a.spec, &Labels::new())
            .await,
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(matches!(
        store.delete_app("default", "edge-a@c1", None).await,
        Err(StoreError::ReadOnly { .. })
    ));
    // The same name reported by another cluster is refused.
    let other = store
        .ingest_status_batch(
            "c2",
            &at("e", 1),
            &StatusBatch {
                reports: vec![autonomous_report(
                    "default",
                    "edge-a@c1",
                    "c2",
                    status(SyncStatus::Synced, Health::Healthy, 9),
                )],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(other.rejected, 1);

    // A spec change at the edge bumps the spec version.
    let mut changed = autonomous_report(
        "default",
        "edge-a@c1",
        "c1",
        status(SyncStatus::OutOfSync, Health::Healthy, 2),
    );
    if let Some(auto) = changed.autonomous.as_mut() {
        auto.spec.source.target_revision = "v2".into();
    }
    let unchanged = autonomous_report(
        "default",
        "edge-b@c1",
        "c1",
        status(SyncStatus::Synced, Health::Healthy, 2),
    );
    store
        .ingest_status_batch(
            "c1",
            &at("e", 2),
            &StatusBatch {
                reports: vec![changed, unchanged],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    let edge_a = store.get_app("default", "edge-a@c1").await.unwrap();
    assert_eq!(edge_a.spec_version, 2);
    assert_eq!(edge_a.spec.source.target_revision, "v2");
    assert_eq!(
        store
            .get_app("default", "edge-b@c1")
            .await
            .unwrap()
            .spec_version,
        1
    );

    // AppRemoved for an autonomous app deletes it.
    let removed = store
        .ingest_status_batch(
            "c1",
            &at("e", 3),
            &StatusBatch {
                removed: vec![("default".into(), "edge-b@c1".into())],
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(removed.deleted, 1);
    assert!(matches!(
        store.get_app("default", "edge-b@c1").await,
        Err(StoreError::NotFound { .. })
    ));

    // A full snapshot in two parts that lacks edge-a and managed-b: after
    // the last part, edge-a is deleted and managed-b's status is reset.
    store
        .ingest_status_batch(
            "c1",
            &at("e", 4),
            &StatusBatch {
                reports: vec![autonomous_report(
                    "default",
                    "edge-new@c1",
                    "c1",
                    status(SyncStatus::Synced, Health::Healthy, 1),
                )],
                snapshot: Some(SnapshotPart {
                    snapshot_id: "snap-1".into(),
                    last: false,
                }),
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store.get_app("default", "edge-a@c1").await.is_ok(),
        "not before the last part"
    );
    let last = store
        .ingest_status_batch(
            "c1",
            &at("e", 5),
            &StatusBatch {
                // A stale report still counts as "present in the snapshot".
                reports: vec![report(
                    "default",
                    "managed-a",
                    status(SyncStatus::Synced, Health::Healthy, 3),
                )],
                snapshot: Some(SnapshotPart {
                    snapshot_id: "snap-1".into(),
                    last: true,
                }),
                ..StatusBatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (last.stale, last.deleted, last.reset),
        (1, 1, 1),
        "{last:?}"
    );
    assert!(matches!(
        store.get_app("default", "edge-a@c1").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.get_app("default", "edge-new@c1").await.is_ok());
    let managed_b = store.get_app("default", "managed-b").await.unwrap();
    assert_eq!(managed_b.status, None);
    let row = summary(store, "managed-b").await;
    assert_eq!(
        (row.sync, row.health, row.status_version),
        (SyncStatus::Unknown, Health::Unknown, 0)
    );
    let managed_a = summary(store, "managed-a").await;
    assert_eq!(managed_a.health, Health::Healthy);
}

fn query(filter: AppFilter, key: SortKey, descending: bool, page_size: u32) -> AppQuery {
    AppQuery {
        filter,
        sort: AppSort { key, descending },
        page_size,
        cursor: None,
    }
}

/// Walks every page, checking that the total comes with the first page only.
async fn walk(store: &dyn Store, mut query: AppQuery) -> Vec<AppSummary> {
    let mut rows = Vec::new();
    let mut total = None;
    loop {
        let page = store.list_apps(&query).await.unwrap();
        assert!(page.items.len() <= query.page_size as usize);
        if query.cursor.is_none() {
            total = page.total;
        }
        assert_eq!(
            page.total.is_some(),
            query.cursor.is_none(),
            "the total comes with the first page only"
        );
        rows.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        assert!(rows.len() < 10_000, "pagination does not end");
    }
    assert_eq!(total, Some(rows.len() as u64));
    rows
}

fn key_set<'a>(names: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeSet<(String, String)> {
    names
        .into_iter()
        .map(|(p, n)| (p.to_owned(), n.to_owned()))
        .collect()
}

pub async fn every_list_filter_matches_the_oracle(store: &dyn Store) {
    let fleet = build_fleet(store).await;
    let owner = OwnerRef {
        kind: "ApplicationSet".into(),
        project: "beta".into(),
        name: "fleet-set".into(),
        scope: "hub".into(),
    };
    let selector = |text: &str| LabelSelector::parse(text).unwrap();
    let filters: Vec<(&str, AppFilter)> = vec![
        ("all", AppFilter::default()),
        (
            "projects",
            AppFilter {
                projects: vec!["alpha".into(), "gamma".into()],
                ..Default::default()
            },
        ),
        (
            "clusters",
            AppFilter {
                clusters: vec!["edge-2".into(), "edge-6".into()],
                ..Default::default()
            },
        ),
        (
            "cluster matchLabels",
            AppFilter {
                cluster_selector: selector("region=eu"),
                ..Default::default()
            },
        ),
        (
            "cluster In",
            AppFilter {
                cluster_selector: selector("region in (us, ap)"),
                ..Default::default()
            },
        ),
        (
            "cluster NotIn",
            AppFilter {
                cluster_selector: selector("tier notin (edge)"),
                ..Default::default()
            },
        ),
        (
            "cluster Exists",
            AppFilter {
                cluster_selector: selector("gpu"),
                ..Default::default()
            },
        ),
        (
            "cluster DoesNotExist",
            AppFilter {
                cluster_selector: selector("!tier"),
                ..Default::default()
            },
        ),
        (
            "cluster combined",
            AppFilter {
                cluster_selector: selector("region in (eu,us),tier=edge,!legacy"),
                ..Default::default()
            },
        ),
        (
            "app matchLabels",
            AppFilter {
                app_selector: selector("team=db"),
                ..Default::default()
            },
        ),
        (
            "app In",
            AppFilter {
                app_selector: selector("team in (web,cache)"),
                ..Default::default()
            },
        ),
        (
            "app NotIn",
            AppFilter {
                app_selector: selector("tier!=gold"),
                ..Default::default()
            },
        ),
        (
            "app Exists",
            AppFilter {
                app_selector: selector("tier"),
                ..Default::default()
            },
        ),
        (
            "app DoesNotExist",
            AppFilter {
                app_selector: selector("!tier"),
                ..Default::default()
            },
        ),
        (
            "sync",
            AppFilter {
                sync: vec![SyncStatus::OutOfSync],
                ..Default::default()
            },
        ),
        (
            "health",
            AppFilter {
                health: vec![Health::Degraded, Health::Missing],
                ..Default::default()
            },
        ),
        (
            "origin managed",
            AppFilter {
                origin: Some(AppOrigin::Managed),
                ..Default::default()
            },
        ),
        (
            "origin autonomous",
            AppFilter {
                origin: Some(AppOrigin::Autonomous),
                ..Default::default()
            },
        ),
        (
            "owner",
            AppFilter {
                owner: Some(owner),
                ..Default::default()
            },
        ),
        (
            "connection",
            AppFilter {
                connection: vec![ConnectionKind::Stale, ConnectionKind::Disconnected],
                ..Default::default()
            },
        ),
        (
            "connection pending",
            AppFilter {
                connection: vec![ConnectionKind::Pending],
                ..Default::default()
            },
        ),
        (
            "search",
            AppFilter {
                search: "APP-1".into(),
                ..Default::default()
            },
        ),
        (
            "search like metachars",
            AppFilter {
                search: "_".into(),
                ..Default::default()
            },
        ),
        (
            "names: a hub app and an edge app",
            AppFilter {
                names: vec!["edge-made-1".into(), "web-app-03".into()],
                ..Default::default()
            },
        ),
        (
            "project + search + health",
            AppFilter {
                projects: vec!["beta".into()],
                search: "DB-app-1".into(),
                health: vec![Health::Healthy, Health::Missing],
                ..Default::default()
            },
        ),
        (
            "cluster labels + sync + app labels",
            AppFilter {
                cluster_selector: selector("region=us"),
                app_selector: selector("team=web"),
                sync: vec![SyncStatus::Synced, SyncStatus::Unknown],
                ..Default::default()
            },
        ),
    ];
    for (what, filter) in filters {
        let expected = fleet.select(&filter);
        let rows = walk(store, query(filter.clone(), SortKey::Name, false, 10)).await;
        let got = key_set(rows.iter().map(|r| (r.project.as_str(), r.name.as_str())));
        let want = key_set(
            expected
                .iter()
                .map(|a| (a.project.as_str(), a.name.as_str())),
        );
        assert_eq!(got, want, "filter {what}");
        if what != "all" && what != "search like metachars" {
            assert!(
                !want.is_empty() && want.len() < fleet.apps.len(),
                "filter {what} should select a proper subset, selects {}",
                want.len()
            );
        }
        // Every row's denormalised fields agree with the oracle.
        for row in &rows {
            let app = expected
                .iter()
                .find(|a| a.project == row.project && a.name == row.name)
                .unwrap();
            assert_eq!(
                (row.sync, row.health, row.origin),
                (app.sync, app.health, app.origin),
                "{what}"
            );
            assert_eq!(
                row.cluster_connection,
                fleet.connection.get(&app.cluster).copied()
            );
            assert_eq!(row.labels, app.labels);
        }
    }
}

fn oracle_order(
    fleet: &Fleet,
    key: SortKey,
    descending: bool,
    store_rows: &[AppSummary],
) -> Vec<(String, String)> {
    // Updated-at values come from the store; everything else from the oracle.
    let updated = |a: &FleetApp| {
        store_rows
            .iter()
            .find(|r| r.project == a.project && r.name == a.name)
            .map(|r| r.updated_at)
            .unwrap()
    };
    let mut apps: Vec<&FleetApp> = fleet.apps.iter().collect();
    apps.sort_by(|a, b| {
        let primary = match key {
            SortKey::Name => a.name.cmp(&b.name).then(a.project.cmp(&b.project)),
            SortKey::Project => a.project.cmp(&b.project),
            SortKey::Cluster => a.cluster.cmp(&b.cluster),
            SortKey::Sync => a.sync.as_str().cmp(b.sync.as_str()),
            SortKey::Health => a.health.as_str().cmp(b.health.as_str()),
            SortKey::UpdatedAt => updated(a).cmp(&updated(b)),
        };
        primary
            .then(a.project.cmp(&b.project))
            .then(a.name.cmp(&b.name))
    });
    if descending {
        apps.reverse();
    }
    apps.into_iter()
        .map(|a| (a.project.clone(), a.name.clone()))
        .collect()
}

pub async fn every_sort_walks_all_pages(store: &dyn Store) {
    let fleet = build_fleet(store).await;
    let all = walk(
        store,
        query(AppFilter::default(), SortKey::Name, false, 1000),
    )
    .await;
    assert_eq!(all.len(), fleet.apps.len());
    for key in [
        SortKey::Name,
        SortKey::Project,
        SortKey::Cluster,
        SortKey::Sync,
        SortKey::Health,
        SortKey::UpdatedAt,
    ] {
        for descending in [false, true] {
            let rows = walk(store, query(AppFilter::default(), key, descending, 7)).await;
            let got: Vec<(String, String)> = rows
                .iter()
                .map(|r| (r.project.clone(), r.name.clone()))
                .collect();
            let unique: BTreeSet<&(String, String)> = got.iter().collect();
            assert_eq!(
                unique.len(),
                got.len(),
                "{key:?} desc={descending}: duplicates"
            );
            assert_eq!(
                got,
                oracle_order(&fleet, key, descending, &all),
                "{key:?} desc={descending}"
            );
            // A filtered walk with a sort stays complete too.
            let filter = AppFilter {
                health: vec![Health::Healthy, Health::Unknown],
                ..AppFilter::default()
            };
            let filtered = walk(store, query(filter.clone(), key, descending, 5)).await;
            assert_eq!(
                filtered.len(),
                fleet.select(&filter).len(),
                "{key:?} filtered"
            );
            // One sync status (sorted by cluster, the sync column joins the
            // keyset), and a list of clusters (sorted by cluster, those before
            // the cursor are left out): complete and in order.
            for filter in [
                AppFilter {
                    sync: vec![SyncStatus::OutOfSync],
                    ..AppFilter::default()
                },
                AppFilter {
                    sync: vec![SyncStatus::Synced],
                    clusters: vec!["edge-1".into(), "edge-3".into(), "edge-6".into()],
                    ..AppFilter::default()
                },
            ] {
                let selected = key_set(
                    fleet
                        .select(&filter)
                        .iter()
                        .map(|a| (a.project.as_str(), a.name.as_str())),
                );
                let want: Vec<(String, String)> = oracle_order(&fleet, key, descending, &all)
                    .into_iter()
                    .filter(|pair| selected.contains(pair))
                    .collect();
                let got: Vec<(String, String)> =
                    walk(store, query(filter.clone(), key, descending, 3))
                        .await
                        .into_iter()
                        .map(|r| (r.project, r.name))
                        .collect();
                assert_eq!(got, want, "{key:?} desc={descending} {filter:?}");
            }
        }
    }
}

pub async fn cursors_are_bound_to_filter_and_sort(store: &dyn Store) {
    build_fleet(store).await;
    let filter = AppFilter {
        projects: vec!["alpha".into()],
        ..AppFilter::default()
    };
    let first = store
        .list_apps(&query(filter.clone(), SortKey::Health, false, 5))
        .await
        .unwrap();
    let cursor = first.next_cursor.clone().expect("more pages");
    let mut other_filter = query(AppFilter::default(), SortKey::Health, false, 5);
    other_filter.cursor = Some(cursor.clone());
    assert!(matches!(
        store.list_apps(&other_filter).await,
        Err(StoreError::InvalidCursor)
    ));
    let mut other_sort = query(filter.clone(), SortKey::Health, true, 5);
    other_sort.cursor = Some(cursor.clone());
    assert!(matches!(
        store.list_apps(&other_sort).await,
        Err(StoreError::InvalidCursor)
    ));
    let mut garbage = query(filter.clone(), SortKey::Health, false, 5);
    garbage.cursor = Some("eyJ2IjoxfQ".into());
    assert!(matches!(
        store.list_apps(&garbage).await,
        Err(StoreError::InvalidCursor)
    ));
    garbage.cursor = Some("%%%".into());
    assert!(matches!(
        store.list_apps(&garbage).await,
        Err(StoreError::InvalidCursor)
    ));
    // The same filter and sort continue, even with another page size.
    let mut next = query(filter, SortKey::Health, false, 3);
    next.cursor = Some(cursor);
    let page = store.list_apps(&next).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.items.iter().all(|r| !first.items.contains(r)));
}

pub async fn counts_match_the_oracle(store: &dyn Store) {
    let fleet = build_fleet(store).await;
    for filter in [
        AppFilter::default(),
        AppFilter {
            cluster_selector: LabelSelector::parse("region=eu").unwrap(),
            ..AppFilter::default()
        },
        AppFilter {
            projects: vec!["beta".into()],
            sync: vec![SyncStatus::Synced],
            ..AppFilter::default()
        },
    ] {
        let counts = store.count_apps(&filter).await.unwrap();
        let apps = fleet.select(&filter);
        assert_eq!(counts.total, apps.len() as u64);
        let mut by_health = std::collections::BTreeMap::new();
        let mut by_sync = std::collections::BTreeMap::new();
        let mut by_project = std::collections::BTreeMap::new();
        let mut by_connection = std::collections::BTreeMap::new();
        for app in &apps {
            *by_health
                .entry(fleet.health_shown(app).as_str().to_owned())
                .or_insert(0u64) += 1;
            *by_sync.entry(app.sync.as_str().to_owned()).or_insert(0u64) += 1;
            *by_project.entry(app.project.clone()).or_insert(0u64) += 1;
            let conn = fleet
                .connection
                .get(&app.cluster)
                .map_or("Unregistered", |c| c.as_str());
            *by_connection.entry(conn.to_owned()).or_insert(0u64) += 1;
        }
        assert_eq!(counts.by_health, by_health);
        assert_eq!(counts.by_sync, by_sync);
        assert_eq!(counts.by_project, by_project);
        assert_eq!(counts.by_connection, by_connection);
    }
}

fn command(app: &str, cluster: &str, deadline: OffsetDateTime) -> NewCommand {
    NewCommand {
        id: None,
        project: "default".into(),
        app: app.into(),
        cluster: cluster.into(),
        kind: "sync".into(),
        payload: serde_json::json!({"prune": true}),
        issued_by: "alice".into(),
        deadline,
        trace: None,
    }
}

fn update(id: &str, outcome: CommandOutcome) -> CommandUpdate {
    CommandUpdate {
        id: id.into(),
        outcome,
        message: outcome.as_str().to_lowercase(),
        result: None,
    }
}

/// A command stores the W3C trace context of the action that issued it, singly and in bulk, and reads it back.
pub async fn commands_keep_their_trace_context(store: &dyn Store) {
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let trace = edgecd_telemetry::TraceContext::parse(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "vendor=1",
    );
    assert!(trace.is_some());
    let traced = NewCommand {
        trace: trace.clone(),
        ..command("web", "traced", later)
    };
    let one = store.enqueue_command(&traced).await.unwrap();
    let bulk = store
        .enqueue_commands(&[traced.clone(), command("db", "traced", later)])
        .await
        .unwrap();
    assert_eq!(one.trace, trace);
    assert_eq!(bulk[0].trace, trace);
    assert_eq!(bulk[1].trace, None);
    let listed = store
        .list_deliverable_commands("traced", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let traces: Vec<_> = listed.into_iter().map(|c| c.trace).collect();
    assert_eq!(traces, [trace.clone(), trace, None]);
}

pub async fn command_outbox_lifecycle(store: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::minutes(10);
    let c1 = store
        .enqueue_command(&command("web", "c1", later))
        .await
        .unwrap();
    let c2 = store
        .enqueue_command(&command("db", "c1", later))
        .await
        .unwrap();
    let c3 = store
        .enqueue_command(&command("web", "c1", later))
        .await
        .unwrap();
    let overdue = store
        .enqueue_command(&command("web", "c1", now - time::Duration::seconds(1)))
        .await
        .unwrap();
    let elsewhere = store
        .enqueue_command(&command("api", "c2", later))
        .await
        .unwrap();
    assert_eq!(c1.outcome, CommandOutcome::Pending);
    assert_eq!(c1.payload, serde_json::json!({"prune": true}));
    assert!(c1.seq < c2.seq && c2.seq < c3.seq);
    let ids = |list: Vec<CommandRecord>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_deliverable_commands("c1", now).await.unwrap()),
        [c1.id.clone(), c2.id.clone(), c3.id.clone()],
        "issue order, overdue left out"
    );

    let delivered = store
        .mark_commands_delivered(&[c1.id.clone(), c2.id.clone()], now)
        .await
        .unwrap();
    assert_eq!(delivered, 2);
    assert_eq!(
        store.get_command(&c1.id).await.unwrap().outcome,
        CommandOutcome::Delivered
    );
    // Delivered without a result: redelivered after a reconnect.
    assert_eq!(
        ids(store.list_deliverable_commands("c1", now).await.unwrap()),
        [c1.id.clone(), c2.id.clone(), c3.id.clone()]
    );
    assert!(
        store
            .record_command_status(&update(&c1.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    assert_eq!(
        ids(store.list_deliverable_commands("c1", now).await.unwrap()),
        [c2.id.clone(), c3.id.clone()]
    );
    let mut done = update(&c1.id, CommandOutcome::Succeeded);
    done.result = Some(serde_json::json!({"revision": "abc"}));
    assert!(store.record_command_status(&done).await.unwrap());
    // Replays and late progress never regress a finished command.
    assert!(!store.record_command_status(&done).await.unwrap());
    assert!(
        !store
            .record_command_status(&update(&c1.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_command_status(&update(&c1.id, CommandOutcome::Failed))
            .await
            .unwrap()
    );
    let finished = store.get_command(&c1.id).await.unwrap();
    assert_eq!(finished.outcome, CommandOutcome::Succeeded);
    assert_eq!(
        finished.result,
        Some(serde_json::json!({"revision": "abc"}))
    );
    assert!(finished.delivered_at.is_some());
    // Running never goes back to Delivered.
    assert!(
        store
            .record_command_status(&update(&c2.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_command_status(&update(&c2.id, CommandOutcome::Delivered))
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .record_command_status(&update("no-such-id", CommandOutcome::Running))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // The spoke reports through the ingest path, for its own commands only.
    let outcome = store
        .ingest_command_statuses(
            "c1",
            &at("e", 1),
            &[
                update(&c2.id, CommandOutcome::Failed),
                update(&elsewhere.id, CommandOutcome::Running),
            ],
        )
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.rejected), (1, 1));
    assert_eq!(
        store.get_command(&elsewhere.id).await.unwrap().outcome,
        CommandOutcome::Pending
    );

    // Expiry: only pending/delivered commands past their deadline.
    assert_eq!(store.expire_commands(now).await.unwrap(), 1);
    let expired = store.get_command(&overdue.id).await.unwrap();
    assert_eq!(expired.outcome, CommandOutcome::Expired);
    assert!(
        !store
            .record_command_status(&update(&overdue.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    assert_eq!(store.expire_commands(now).await.unwrap(), 0);
    assert_eq!(
        store
            .expire_commands(later + time::Duration::seconds(1))
            .await
            .unwrap(),
        2,
        "c3 and elsewhere"
    );

    // Paginated listings, newest first.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_commands(&CommandScope::Cluster("c1".into()), 3, cursor.as_deref())
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|c| c.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            overdue.id.clone(),
            c3.id.clone(),
            c2.id.clone(),
            c1.id.clone()
        ]
    );
    let web = store
        .list_commands(
            &CommandScope::App {
                project: "default".into(),
                name: "web".into(),
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(web.items), [overdue.id, c3.id, c1.id]);
    assert!(matches!(
        store
            .list_commands(&CommandScope::Cluster("c1".into()), 3, Some("bogus"))
            .await,
        Err(StoreError::InvalidCursor)
    ));
}

fn event(id: &str, app: &str) -> EventRecord {
    EventRecord {
        id: id.into(),
        seq: 0,
        cluster: "ignored-the-stream-names-the-cluster".into(),
        project: "default".into(),
        app: app.into(),
        resource: "Deployment web/web".into(),
        severity: EventSeverity::Warning,
        reason: "BackOff".into(),
        message: format!("event {id}"),
        time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }
}

/// A cluster's own event, about no app.
fn cluster_event(id: &str) -> EventRecord {
    EventRecord {
        project: String::new(),
        app: String::new(),
        ..event(id, "")
    }
}

pub async fn events_are_deduplicated(store: &dyn Store) {
    for name in ["c1", "c2"] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    for (app, on) in [("web", "c1"), ("db", "c1"), ("cache", "c2")] {
        store
            .create_app(&new_app("default", app, on))
            .await
            .unwrap();
    }
    let first = store
        .ingest_events(
            "c1",
            &at("e", 1),
            &[event("1", "web"), event("2", "web"), event("3", "db")],
        )
        .await
        .unwrap();
    assert_eq!(first.applied, 3);
    // Replayed under a new seq (e.g. after a spoke restart): ids dedupe.
    let second = store
        .ingest_events(
            "c1",
            &at("e2", 1),
            &[event("2", "web"), event("3", "db"), event("4", "web")],
        )
        .await
        .unwrap();
    assert_eq!((second.applied, second.stale), (1, 2));
    // The same id on another cluster is another event; an event naming an
    // app of another cluster (or none) is dropped, a cluster's own is kept.
    let other = store
        .ingest_events(
            "c2",
            &at("e", 1),
            &[
                event("1", "cache"),
                event("5", "web"),
                event("6", "nope"),
                cluster_event("7"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((other.applied, other.stale), (2, 2));
    let c1 = EventFilter {
        cluster: Some("c1".into()),
        app: None,
    };
    let page1 = store.list_events(&c1, 3, None).await.unwrap();
    let ids: Vec<&str> = page1.items.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["4", "3", "2"]);
    assert_eq!(page1.items[0].cluster, "c1");
    let page2 = store
        .list_events(&c1, 3, page1.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(
        page2
            .items
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["1"]
    );
    assert_eq!(page2.next_cursor, None);
    let web = EventFilter {
        cluster: Some("c1".into()),
        app: Some(("default".into(), "web".into())),
    };
    assert_eq!(
        store.list_events(&web, 10, None).await.unwrap().items.len(),
        3
    );
    assert_eq!(
        store
            .list_events(&EventFilter::default(), 10, None)
            .await
            .unwrap()
            .items
            .len(),
        6
    );
}

pub async fn audit_log_pages(store: &dyn Store) {
    for i in 0..5 {
        store
            .append_audit(&AuditEntry {
                actor: "alice".into(),
                action: "app.update".into(),
                target: format!("default/app-{i}"),
                source: "10.0.0.1".into(),
                result: "ok".into(),
                message: String::new(),
                time: OffsetDateTime::from_unix_timestamp(1_700_000_000 + i).unwrap(),
            })
            .await
            .unwrap();
    }
    let first = store.list_audit(2, None).await.unwrap();
    let second = store
        .list_audit(2, first.next_cursor.as_deref())
        .await
        .unwrap();
    let third = store
        .list_audit(2, second.next_cursor.as_deref())
        .await
        .unwrap();
    let targets: Vec<String> = [first.items, second.items, third.items.clone()]
        .into_iter()
        .flatten()
        .map(|e| e.target)
        .collect();
    assert_eq!(
        targets,
        [
            "default/app-4",
            "default/app-3",
            "default/app-2",
            "default/app-1",
            "default/app-0"
        ]
    );
    assert_eq!(third.next_cursor, None);
    assert_eq!(
        third.items[0].time,
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    );
}

pub async fn users_and_tokens(store: &dyn Store) {
    let created_at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let user = UserRecord {
        name: "alice".into(),
        password_hash: Some(Redacted(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        )),
        admin: true,
        roles: vec!["fleet-admin".into()],
        created_at,
        version: 1,
    };
    assert_eq!(store.create_user(&user).await.unwrap(), user);
    assert!(
        !format!("{user:?}").contains("argon2"),
        "hashes never print"
    );
    assert!(matches!(
        store.create_user(&user).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let token = TokenRecord {
        id: "tok-1".into(),
        owner: "alice".into(),
        description: "ci".into(),
        token_hash: Redacted("sha256:abcd".into()),
        roles: vec!["deployer".into()],
        created_at,
        expires_at: Some(created_at + time::Duration::days(30)),
        revoked_at: None,
    };
    assert_eq!(store.create_token(&token).await.unwrap(), token);
    assert_eq!(
        store.find_token_by_hash("sha256:abcd").await.unwrap().id,
        "tok-1"
    );
    assert!(matches!(
        store.find_token_by_hash("sha256:other").await,
        Err(StoreError::NotFound { .. })
    ));
    store.revoke_token("tok-1", created_at).await.unwrap();
    assert_eq!(
        store.list_tokens("alice").await.unwrap()[0].revoked_at,
        Some(created_at)
    );
    let mut orphan = token.clone();
    orphan.id = "tok-2".into();
    orphan.owner = "nobody".into();
    orphan.token_hash = Redacted("sha256:ef".into());
    assert!(
        store.create_token(&orphan).await.is_err(),
        "tokens need an owner"
    );
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    store.delete_user("alice").await.unwrap();
    assert!(matches!(
        store.get_user("alice").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store.list_tokens("alice").await.unwrap().is_empty(),
        "tokens go with their owner"
    );
}

pub async fn resource_trees(store: &dyn Store) {
    store
        .create_app(&new_app("default", "web", "c1"))
        .await
        .unwrap();
    assert_eq!(
        store.get_resource_tree("default", "web").await.unwrap(),
        None
    );
    let tree = serde_json::json!({"nodes": [{"kind": "Deployment", "name": "web"}]});
    let outcome = store
        .ingest_resource_tree("c1", &at("e", 1), "default", "web", &tree)
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    assert_eq!(
        store.get_resource_tree("default", "web").await.unwrap(),
        Some(tree.clone())
    );
    let other = store
        .ingest_resource_tree("c2", &at("e", 1), "default", "web", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        other.rejected, 1,
        "another cluster cannot write this app's tree"
    );
    assert_eq!(
        store.get_resource_tree("default", "web").await.unwrap(),
        Some(tree)
    );
    assert!(matches!(
        store.get_resource_tree("default", "nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn notifications_reach_listeners(store: &dyn Store) {
    let mut stream = store
        .listen(&[COMMANDS_CHANNEL, "edgecd_test"])
        .await
        .unwrap();
    store.notify("edgecd_test", "hello").await.unwrap();
    store.notify("edgecd_unrelated", "skip me").await.unwrap();
    let command = store
        .enqueue_command(&command(
            "web",
            "edge-7",
            OffsetDateTime::now_utc() + time::Duration::minutes(1),
        ))
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(1), stream.next())
            .await
            .expect("a notification within a second")
            .expect("stream open");
        received.push(event);
    }
    assert_eq!(
        received,
        [
            ListenEvent::Notification {
                channel: "edgecd_test".into(),
                payload: "hello".into()
            },
            ListenEvent::Notification {
                channel: COMMANDS_CHANNEL.into(),
                payload: command.cluster
            },
        ]
    );
}

/// Every change of a command record is announced with its id, and stored
/// events with their cluster, in the transaction that made them (what
/// `Watch` of commands and events follows).
fn deployment(app: &str, id: i64, minute: i64, result: OperationPhase, by: &str) -> Deployment {
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
        + time::Duration::minutes(minute);
    Deployment {
        cluster: "forged".into(),
        project: "default".into(),
        app: app.into(),
        history_id: id,
        rollback_of: None,
        result,
        from_revision: format!("r{}", id - 1),
        to_revision: format!("r{id}"),
        initiated_by: by.into(),
        started_at: at,
        finished_at: at + time::Duration::seconds(20),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        message: String::new(),
        command_id: String::new(),
    }
}

/// `(cluster, app, history id)` of every deployment `filter` lists, a page of `size` at a time.
async fn all_deployments(
    store: &dyn Store,
    filter: &DeploymentFilter,
    size: u32,
) -> Vec<(String, String, i64)> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .list_deployments(filter, size, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= size as usize);
        found.extend(
            page.items
                .iter()
                .map(|d| (d.cluster.clone(), d.app.clone(), d.history_id)),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return found,
        }
    }
}

pub async fn deployments_are_stored_once_and_listed_newest_first(store: &dyn Store) {
    for name in ["c1", "c2"] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    for (app, on) in [("web", "c1"), ("db", "c1"), ("cache", "c2")] {
        store
            .create_app(&new_app("default", app, on))
            .await
            .unwrap();
    }
    use OperationPhase::{Failed, Succeeded};
    let mut rollback = deployment("web", 3, 30, Succeeded, "alice");
    rollback.rollback_of = Some(1);
    rollback.message = "successfully synced".into();
    let first = store
        .ingest_deployments(
            "c1",
            &at("e", 1),
            &[
                deployment("web", 1, 10, Succeeded, "alice"),
                deployment("web", 2, 20, Failed, edgecd_core::deployment::AUTOMATED),
                rollback.clone(),
                deployment("db", 0, 25, Succeeded, "bob"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((first.applied, first.stale), (4, 0));
    // A replay (a restarted spoke sends its apps' history again) stores nothing new.
    let replay = store
        .ingest_deployments(
            "c1",
            &at("e2", 1),
            &[
                deployment("web", 2, 20, Failed, edgecd_core::deployment::AUTOMATED),
                deployment("web", 4, 40, Succeeded, "alice"),
            ],
        )
        .await
        .unwrap();
    assert_eq!((replay.applied, replay.stale), (1, 1));
    // A spoke speaks only for its own apps: c2 cannot record a deployment of c1's web, nor of an unknown app.
    let forged = store
        .ingest_deployments(
            "c2",
            &at("e", 1),
            &[
                deployment("web", 9, 50, Succeeded, "mallory"),
                deployment("nope", 0, 50, Succeeded, "mallory"),
                deployment("cache", 0, 5, Succeeded, "carol"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(forged.applied, 1);

    let everything = DeploymentFilter::default();
    let newest_first = [
        ("c1", "web", 4),
        ("c1", "web", 3),
        ("c1", "db", 0),
        ("c1", "web", 2),
        ("c1", "web", 1),
        ("c2", "cache", 0),
    ];
    let want: Vec<(String, String, i64)> = newest_first
        .iter()
        .map(|(c, a, i)| (c.to_string(), a.to_string(), *i))
        .collect();
    for size in [1, 2, 4, 100] {
        assert_eq!(
            all_deployments(store, &everything, size).await,
            want,
            "pages of {size}"
        );
    }
    // What was stored is what was sent, under the stream's cluster (never the message's).
    let page = store.list_deployments(&everything, 10, None).await.unwrap();
    let stored = page.items.iter().find(|d| d.history_id == 3).unwrap();
    assert_eq!(
        stored,
        &Deployment {
            cluster: "c1".into(),
            ..rollback
        }
    );
    assert!(
        page.items
            .iter()
            .all(|d| d.app != "nope" && d.initiated_by != "mallory")
    );

    let only = |f: DeploymentFilter| async move { all_deployments(store, &f, 2).await };
    let ids = |found: Vec<(String, String, i64)>| -> Vec<(String, i64)> {
        found.into_iter().map(|(_, a, i)| (a, i)).collect()
    };
    let c2 = only(DeploymentFilter {
        cluster: Some("c2".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(c2), [("cache".to_owned(), 0)]);
    let web = only(DeploymentFilter {
        projects: vec!["default".into()],
        app: Some("web".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(web.len(), 4);
    let failed = only(DeploymentFilter {
        results: vec![Failed],
        ..Default::default()
    })
    .await;
    assert_eq!(ids(failed), [("web".to_owned(), 2)]);
    let automated = only(DeploymentFilter {
        initiated_by: Some(edgecd_core::deployment::AUTOMATED.into()),
        ..Default::default()
    })
    .await;
    assert_eq!(ids(automated), [("web".to_owned(), 2)]);
    let base = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let window = only(DeploymentFilter {
        since: Some(base + time::Duration::minutes(20)),
        until: Some(base + time::Duration::minutes(30)),
        ..Default::default()
    })
    .await;
    // Finished at minute 20:20 and 25:20 (a finish at 30:20 is after `until`).
    assert_eq!(ids(window), [("db".to_owned(), 0), ("web".to_owned(), 2)]);
    let nobody = only(DeploymentFilter {
        projects: vec!["other".into()],
        ..Default::default()
    })
    .await;
    assert!(nobody.is_empty());
    assert!(matches!(
        store
            .list_deployments(&everything, 10, Some("garbage"))
            .await,
        Err(StoreError::InvalidCursor)
    ));
}

pub async fn command_and_event_changes_are_announced(store: &dyn Store) {
    let mut stream = store
        .listen(&[COMMAND_UPDATES_CHANNEL, EVENTS_CHANNEL])
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::minutes(10);
    let c1 = store
        .enqueue_command(&command("web", "c1", later))
        .await
        .unwrap();
    store
        .mark_commands_delivered(std::slice::from_ref(&c1.id), now)
        .await
        .unwrap();
    assert!(
        store
            .record_command_status(&update(&c1.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    store
        .ingest_command_statuses(
            "c1",
            &at("e", 1),
            &[update(&c1.id, CommandOutcome::Succeeded)],
        )
        .await
        .unwrap();
    // A regression is ignored and not announced.
    assert!(
        !store
            .record_command_status(&update(&c1.id, CommandOutcome::Running))
            .await
            .unwrap()
    );
    let overdue = store
        .enqueue_command(&command("web", "c1", now - time::Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(store.expire_commands(now).await.unwrap(), 1);
    let bulk = store
        .enqueue_commands(&[command("web", "c1", later), command("db", "c2", later)])
        .await
        .unwrap();
    store
        .ingest_events("c2", &at("e", 1), &[cluster_event("1")])
        .await
        .unwrap();
    // A replayed event stores nothing and announces nothing.
    store
        .ingest_events("c2", &at("e", 2), &[cluster_event("1")])
        .await
        .unwrap();
    let want = [
        (COMMAND_UPDATES_CHANNEL, c1.id.clone()),
        (COMMAND_UPDATES_CHANNEL, c1.id.clone()),
        (COMMAND_UPDATES_CHANNEL, c1.id.clone()),
        (COMMAND_UPDATES_CHANNEL, c1.id.clone()),
        (COMMAND_UPDATES_CHANNEL, overdue.id.clone()),
        (COMMAND_UPDATES_CHANNEL, overdue.id.clone()),
        (
            COMMAND_UPDATES_CHANNEL,
            format!("{},{}", bulk[0].id, bulk[1].id),
        ),
        (EVENTS_CHANNEL, "c2".to_owned()),
    ];
    let mut received = Vec::new();
    while received.len() < want.len() {
        let event = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("a notification within two seconds")
            .expect("stream open");
        match event {
            ListenEvent::Notification { channel, payload } => received.push((channel, payload)),
            ListenEvent::Lagged => panic!("lagged"),
        }
    }
    let received: Vec<(&str, String)> = received
        .iter()
        .map(|(c, p)| (c.as_str(), p.clone()))
        .collect();
    assert_eq!(received, want);
    // Nothing else was announced.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err()
    );
    // Long lists are split to fit PostgreSQL's payload limit.
    let ids: Vec<String> = (0..IDS_PER_NOTIFICATION + 1)
        .map(|i| format!("id-{i}"))
        .collect();
    let payloads = command_update_payloads(&ids);
    assert_eq!(payloads.len(), 2);
    assert_eq!(payloads[1], format!("id-{IDS_PER_NOTIFICATION}"));
}

pub async fn bulk_import(store: &dyn Store) {
    store
        .create_cluster(&cluster("c1", &[("region", "eu")]))
        .await
        .unwrap();
    store
        .create_app(&new_app("default", "existing", "c1"))
        .await
        .unwrap();
    let apps: Vec<ImportedApp> = (0..1200)
        .map(|i| {
            let mut app = new_app(
                "default",
                &format!("bulk-{i:04}"),
                ["c1", "c2", "c3"][i % 3],
            );
            app.labels = labels(&[("shard", if i % 2 == 0 { "even" } else { "odd" })]);
            ImportedApp {
                app,
                status: (i % 4 != 0).then(|| status(SyncStatus::Synced, Health::Degraded, 2)),
            }
        })
        .collect();
    assert_eq!(store.import_apps(&apps).await.unwrap(), 1200);
    // c1 is connected (a pending cluster's apps count as Unknown); c2 and
    // c3 are not registered, so their imported health counts as it is.
    store
        .set_cluster_connection(
            "c1",
            &ClusterConnection {
                state: ConnectionKind::Connected,
                since: None,
                last_heartbeat: Some(OffsetDateTime::now_utc()),
                hub_replica: "r".into(),
            },
        )
        .await
        .unwrap();
    let counts = store.count_apps(&AppFilter::default()).await.unwrap();
    assert_eq!(counts.total, 1201);
    assert_eq!(counts.by_health.get("Degraded"), Some(&900));
    let even = AppFilter {
        app_selector: LabelSelector::parse("shard=even").unwrap(),
        cluster_selector: LabelSelector::parse("region=eu").unwrap(),
        ..AppFilter::default()
    };
    assert_eq!(store.count_apps(&even).await.unwrap().total, 200);
    let app = store.get_app("default", "bulk-0001").await.unwrap();
    assert_eq!(app.status.map(|s| s.status_version), Some(2));
    assert_eq!(app.cluster, "c2");
    // One desired-version bump per cluster for the whole import.
    let c1 = store.desired_changes("c1", 1).await.unwrap();
    assert_eq!((c1.version, c1.changes.len()), (2, 400));
    assert!(matches!(
        store.import_apps(&apps[..1]).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(
        store.get_app("default", "bulk-1199").await.is_ok(),
        "a failed import rolls back alone"
    );
}

/// Set-based ingest keeps the report-by-report rules: the same app twice in a
/// batch (newer then older, older then newer), refused reports, snapshot
/// stamps on stale reports, and autonomous reports mixed in.
pub async fn batch_ingest_keeps_the_per_report_rules(store: &dyn Store) {
    store.create_cluster(&cluster("c1", &[])).await.unwrap();
    for name in ["a", "b", "c"] {
        store
            .create_app(&new_app("default", name, "c1"))
            .await
            .unwrap();
    }
    store
        .create_app(&new_app("default", "x", "c2"))
        .await
        .unwrap();
    let batch = StatusBatch {
        reports: vec![
            report(
                "default",
                "a",
                status(SyncStatus::OutOfSync, Health::Progressing, 2),
            ),
            report(
                "default",
                "a",
                status(SyncStatus::Synced, Health::Healthy, 3),
            ),
            report(
                "default",
                "b",
                status(SyncStatus::Synced, Health::Degraded, 5),
            ),
            report(
                "default",
                "b",
                status(SyncStatus::OutOfSync, Health::Missing, 4),
            ),
            report(
                "default",
                "x",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            report(
                "default",
                "ghost",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
            autonomous_report(
                "default",
                "edge-made@c1",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 1),
            ),
        ],
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 1), &batch)
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.applied,
            outcome.stale,
            outcome.rejected,
            outcome.created
        ),
        (3, 1, 2, 1)
    );
    let a = store.get_app("default", "a").await.unwrap();
    assert_eq!(
        a.status
            .as_ref()
            .map(|s| (s.status_version, s.health.status)),
        Some((3, Health::Healthy))
    );
    let b = summary(store, "b").await;
    assert_eq!((b.status_version, b.health), (5, Health::Degraded));
    assert_eq!(
        store
            .get_app("default", "b")
            .await
            .unwrap()
            .status
            .map(|s| s.status_version),
        Some(5)
    );
    assert_eq!(
        summary(store, "x").await.status_version,
        0,
        "another cluster's app"
    );

    // A full snapshot in one part: a stale report still marks its app as
    // present, and c, never reported, is left alone.
    let snapshot = StatusBatch {
        reports: vec![
            report(
                "default",
                "a",
                status(SyncStatus::Synced, Health::Healthy, 3),
            ),
            report(
                "default",
                "b",
                status(SyncStatus::Synced, Health::Healthy, 6),
            ),
            autonomous_report(
                "default",
                "edge-made@c1",
                "c1",
                status(SyncStatus::Synced, Health::Healthy, 2),
            ),
        ],
        snapshot: Some(SnapshotPart {
            snapshot_id: "snap-1".into(),
            last: true,
        }),
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 2), &snapshot)
        .await
        .unwrap();
    assert_eq!(
        (
            outcome.applied,
            outcome.stale,
            outcome.reset,
            outcome.deleted
        ),
        (2, 1, 0, 0)
    );
    assert_eq!(summary(store, "a").await.status_version, 3, "not reset");
    assert_eq!(summary(store, "b").await.health, Health::Healthy);
    store.get_app("default", "edge-made@c1").await.unwrap();

    // The next snapshot lacks b: its status is reset, a's is kept.
    let next = StatusBatch {
        reports: vec![report(
            "default",
            "a",
            status(SyncStatus::Synced, Health::Healthy, 3),
        )],
        snapshot: Some(SnapshotPart {
            snapshot_id: "snap-2".into(),
            last: true,
        }),
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("c1", &at("e", 3), &next)
        .await
        .unwrap();
    assert_eq!((outcome.stale, outcome.reset, outcome.deleted), (1, 1, 1));
    assert_eq!(summary(store, "a").await.status_version, 3);
    assert_eq!(summary(store, "b").await.status_version, 0);
    // A replayed (epoch, seq) is a duplicate.
    let dup = store
        .ingest_status_batch("c1", &at("e", 3), &next)
        .await
        .unwrap();
    assert!(dup.duplicate);
}

/// Many commands in one call: records in input order with increasing seqs,
/// deliverable per cluster, and one notification per cluster.
pub async fn bulk_enqueue_commands(store: &dyn Store) {
    assert!(store.enqueue_commands(&[]).await.unwrap().is_empty());
    let mut stream = store.listen(&[COMMANDS_CHANNEL]).await.unwrap();
    let later = OffsetDateTime::now_utc() + time::Duration::minutes(10);
    let commands = [
        command("web", "c1", later),
        command("db", "c2", later),
        command("api", "c1", later),
    ];
    let records = store.enqueue_commands(&commands).await.unwrap();
    assert_eq!(records.len(), 3);
    for (record, command) in records.iter().zip(&commands) {
        assert_eq!(
            (record.app.as_str(), record.cluster.as_str()),
            (command.app.as_str(), command.cluster.as_str())
        );
        assert_eq!(record.outcome, CommandOutcome::Pending);
        assert_eq!(record.payload, command.payload);
        assert_eq!(store.get_command(&record.id).await.unwrap(), *record);
    }
    assert!(records[0].seq < records[1].seq && records[1].seq < records[2].seq);
    // A bulk read: issue order whatever the order asked, unknown ids skipped.
    let asked = [
        records[2].id.clone(),
        "no-such-command".to_owned(),
        records[0].id.clone(),
    ];
    assert_eq!(
        store.get_commands(&asked).await.unwrap(),
        [records[0].clone(), records[2].clone()]
    );
    assert!(store.get_commands(&[]).await.unwrap().is_empty());
    let ids: Vec<String> = store
        .list_deliverable_commands("c1", OffsetDateTime::now_utc())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [records[0].id.clone(), records[2].id.clone()]);
    let mut clusters = BTreeSet::new();
    while clusters.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("a notification")
            .expect("stream open");
        if let ListenEvent::Notification { channel, payload } = event {
            assert_eq!(channel, COMMANDS_CHANNEL);
            clusters.insert(payload);
        }
    }
    assert_eq!(clusters, BTreeSet::from(["c1".to_owned(), "c2".to_owned()]));
    // No third notification: one per cluster.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err()
    );
}

/// Per-cluster counts of a page of clusters match the oracle.
pub async fn app_counts_per_cluster(store: &dyn Store) {
    let fleet = build_fleet(store).await;
    let clusters: BTreeSet<String> = fleet.apps.iter().map(|a| a.cluster.clone()).collect();
    for projects in [vec![], vec!["beta".to_owned()]] {
        let filter = AppFilter {
            clusters: clusters.iter().cloned().collect(),
            projects: projects.clone(),
            ..AppFilter::default()
        };
        let counts = store.count_apps_by_cluster(&filter).await.unwrap();
        for cluster in &clusters {
            let apps = fleet.select(&AppFilter {
                clusters: vec![cluster.clone()],
                projects: projects.clone(),
                ..AppFilter::default()
            });
            let got = counts.get(cluster).cloned().unwrap_or_default();
            assert_eq!(got.total, apps.len() as u64, "{cluster}");
            let mut by_health = std::collections::BTreeMap::new();
            let mut by_sync = std::collections::BTreeMap::new();
            for app in &apps {
                *by_health
                    .entry(fleet.health_shown(app).as_str().to_owned())
                    .or_insert(0u64) += 1;
                *by_sync.entry(app.sync.as_str().to_owned()).or_insert(0u64) += 1;
            }
            assert_eq!(got.by_health, by_health, "{cluster}");
            assert_eq!(got.by_sync, by_sync, "{cluster}");
        }
    }
}

/// Every total and count the store answers from its counts table (filters
/// over clusters, cluster labels, connection, sync and health) matches the
/// rows themselves, after status batches, a full snapshot that resets and
/// deletes, a move to another cluster, a delete and a bulk import.
pub async fn counts_stay_exact_through_changes(store: &dyn Store) {
    let fleet = build_fleet(store).await;
    let on = |cluster: &str| -> Vec<&FleetApp> {
        fleet
            .apps
            .iter()
            .filter(|a| a.cluster == cluster && a.origin == AppOrigin::Managed)
            .collect()
    };
    // A batch of several reports (the set-based path on PostgreSQL).
    let batch = StatusBatch {
        reports: on("edge-1")
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let health = if i % 2 == 0 {
                    Health::Degraded
                } else {
                    Health::Healthy
                };
                report(
                    &a.project,
                    &a.name,
                    status(SyncStatus::OutOfSync, health, 5),
                )
            })
            .collect(),
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch("edge-1", &at("e2", 1), &batch)
        .await
        .unwrap();
    assert!(outcome.applied > 1, "{outcome:?}");
    // A full snapshot of edge-3 naming one app: the other managed apps are
    // reset to Unknown, its autonomous apps deleted.
    let kept = on("edge-3")[0];
    let snapshot = StatusBatch {
        reports: vec![report(
            &kept.project,
            &kept.name,
            status(SyncStatus::Synced, Health::Missing, 9),
        )],
        snapshot: Some(SnapshotPart {
            snapshot_id: "s1".into(),
            last: true,
        }),
        ..StatusBatch::default()
    };
    store
        .ingest_status_batch("edge-3", &at("e2", 1), &snapshot)
        .await
        .unwrap();
    // A move to another cluster and a delete.
    let moved = on("edge-2")[0];
    let record = store.get_app(&moved.project, &moved.name).await.unwrap();
    store
        .update_app(
            &moved.project,
            &moved.name,
            record.spec_version,
            &spec("edge-5", "moved"),
            &record.labels,
        )
        .await
        .unwrap();
    let gone = on("edge-4")[0];
    store
        .delete_app(&gone.project, &gone.name, None)
        .await
        .unwrap();
    let imported: Vec<ImportedApp> = (0..7)
        .map(|i| ImportedApp {
            app: new_app(
                "alpha",
                &format!("imported-{i}"),
                ["edge-1", "edge-4"][i % 2],
            ),
            status: (i % 3 != 0).then(|| status(SyncStatus::Synced, Health::Progressing, 1)),
        })
        .collect();
    store.import_apps(&imported).await.unwrap();

    // The oracle: every row, walked by name (its total is itself a sum
    // over the counts table, checked by `walk`).
    let all = walk(store, query(AppFilter::default(), SortKey::Name, false, 50)).await;
    let edge_made_on_edge_3 = fleet
        .apps
        .iter()
        .filter(|a| a.cluster == "edge-3" && a.origin == AppOrigin::Autonomous)
        .count();
    assert_eq!(all.len(), fleet.apps.len() - edge_made_on_edge_3 - 1 + 7);
    let filters = [
        AppFilter::default(),
        AppFilter {
            health: vec![Health::Degraded, Health::Unknown],
            ..AppFilter::default()
        },
        AppFilter {
            sync: vec![SyncStatus::OutOfSync],
            clusters: vec!["edge-1".into(), "edge-6".into()],
            ..AppFilter::default()
        },
        AppFilter {
            cluster_selector: LabelSelector::parse("region=eu").unwrap(),
            health: vec![Health::Healthy, Health::Degraded],
            ..AppFilter::default()
        },
        AppFilter {
            connection: vec![ConnectionKind::Connected, ConnectionKind::Stale],
            ..AppFilter::default()
        },
        // The moved app's labels moved with it (label rows carry the cluster).
        AppFilter {
            cluster_selector: LabelSelector::parse("region=ap").unwrap(),
            app_selector: LabelSelector::parse("team").unwrap(),
            ..AppFilter::default()
        },
    ];
    for filter in filters {
        let matching: Vec<&AppSummary> = all
            .iter()
            .filter(|a| {
                (filter.health.is_empty() || filter.health.contains(&a.health_shown()))
                    && (filter.sync.is_empty() || filter.sync.contains(&a.sync))
                    && (filter.clusters.is_empty() || filter.clusters.contains(&a.cluster))
                    && (filter.cluster_selector.is_empty()
                        || fleet
                            .cluster_labels
                            .get(&a.cluster)
                            .is_some_and(|l| filter.cluster_selector.matches(l)))
                    && (filter.connection.is_empty()
                        || a.cluster_connection
                            .is_some_and(|c| filter.connection.contains(&c)))
                    && (filter.app_selector.is_empty() || filter.app_selector.matches(&a.labels))
            })
            .collect();
        if !filter.app_selector.is_empty() {
            assert!(
                matching
                    .iter()
                    .any(|a| a.project == moved.project && a.name == moved.name),
                "the moved app is found by its labels on its new cluster"
            );
        }
        let page = store
            .list_apps(&query(filter.clone(), SortKey::Health, true, 5))
            .await
            .unwrap();
        assert_eq!(page.total, Some(matching.len() as u64), "{filter:?}");
        // Every page walk finds the same apps, whether it is driven by the
        // status table's copies of project, name and cluster (health and
        // update-time sorts, a cluster sort with one sync status) or by
        // `applications` (name): the moved app's status row moved too.
        let mut want: Vec<(&str, &str)> = matching
            .iter()
            .map(|a| (a.project.as_str(), a.name.as_str()))
            .collect();
        want.sort_unstable();
        for key in [SortKey::Health, SortKey::UpdatedAt, SortKey::Cluster] {
            let walked = walk(store, query(filter.clone(), key, false, 4)).await;
            let mut got: Vec<(&str, &str)> = walked
                .iter()
                .map(|a| (a.project.as_str(), a.name.as_str()))
                .collect();
            got.sort_unstable();
            assert_eq!(got, want, "{filter:?} sorted by {key:?}");
        }
        let counts = store.count_apps(&filter).await.unwrap();
        assert_eq!(counts.total, matching.len() as u64, "{filter:?}");
        let mut by_health = std::collections::BTreeMap::new();
        let mut by_sync = std::collections::BTreeMap::new();
        let mut by_connection = std::collections::BTreeMap::new();
        let mut by_cluster: std::collections::BTreeMap<String, AppCounts> =
            std::collections::BTreeMap::new();
        for a in &matching {
            *by_health
                .entry(a.health_shown().as_str().to_owned())
                .or_insert(0u64) += 1;
            *by_sync.entry(a.sync.as_str().to_owned()).or_insert(0u64) += 1;
            let conn = a.cluster_connection.map_or("Unregistered", |c| c.as_str());
            *by_connection.entry(conn.to_owned()).or_insert(0u64) += 1;
            let entry = by_cluster.entry(a.cluster.clone()).or_default();
            entry.total += 1;
            *entry.by_sync.entry(a.sync.as_str().to_owned()).or_default() += 1;
            *entry
                .by_health
                .entry(a.health_shown().as_str().to_owned())
                .or_default() += 1;
        }
        assert_eq!(counts.by_health, by_health, "{filter:?}");
        assert_eq!(counts.by_sync, by_sync, "{filter:?}");
        assert_eq!(counts.by_connection, by_connection, "{filter:?}");
        let per_cluster = store.count_apps_by_cluster(&filter).await.unwrap();
        assert_eq!(per_cluster, by_cluster, "{filter:?}");
    }
}

pub async fn replicas_register_their_peer_addresses(store: &dyn Store) {
    assert_eq!(store.replica_address("hub-a").await.unwrap(), None);
    store
        .register_replica("hub-a", "https://10.0.0.5:8443")
        .await
        .unwrap();
    store
        .register_replica("hub-b", "https://10.0.0.6:8443")
        .await
        .unwrap();
    // A replica restarted elsewhere registers again: its new address replaces the old.
    store
        .register_replica("hub-a", "https://10.0.0.9:8443")
        .await
        .unwrap();
    assert_eq!(
        store.replica_address("hub-a").await.unwrap().as_deref(),
        Some("https://10.0.0.9:8443")
    );
    assert_eq!(
        store.replica_address("hub-b").await.unwrap().as_deref(),
        Some("https://10.0.0.6:8443")
    );
}

/// What a hub replica watches for its sessions: clusters with commands to deliver (not overdue ones), a mark
/// that moves with every project or application-set edit, and each cluster's version, which relabelling bumps.
pub async fn the_link_watch_sees_commands_edits_and_relabelling(store: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::minutes(10);
    for name in ["w1", "w2"] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    let version = |watch: &LinkWatch, name: &str| {
        watch
            .cluster_versions
            .iter()
            .find(|(cluster, _)| cluster == name)
            .map(|(_, version)| *version)
    };
    let quiet = store.link_watch(now).await.unwrap();
    assert!(quiet.clusters_with_commands.is_empty());
    assert!(version(&quiet, "w1").is_some() && version(&quiet, "w2").is_some());

    store
        .enqueue_command(&command("web", "w1", later))
        .await
        .unwrap();
    store
        .enqueue_command(&command("web", "w2", now - time::Duration::seconds(1)))
        .await
        .unwrap();
    let commands = store.link_watch(now).await.unwrap();
    assert_eq!(
        commands.clusters_with_commands,
        ["w1"],
        "overdue ones left out"
    );
    assert_eq!(commands.settings, quiet.settings);

    let mut marks = vec![commands.settings];
    let default = store.get_project("default").await.unwrap();
    store
        .update_project("default", default.version, &default.spec)
        .await
        .unwrap();
    marks.push(store.link_watch(now).await.unwrap().settings);
    store
        .create_project("team-w", &ProjectSpec::default())
        .await
        .unwrap();
    marks.push(store.link_watch(now).await.unwrap().settings);
    store.delete_project("team-w").await.unwrap();
    marks.push(store.link_watch(now).await.unwrap().settings);
    let set = NewAppSet {
        project: "default".into(),
        name: "watched".into(),
        scope: "w1".into(),
        spec: serde_json::json!({
            "generators": [{"clusters": {}}],
            "template": {"metadata": {"name": "{{name}}.web"},
                         "spec": {"source": {"repoURL": "https://git.example/web"}, "destination": {"server": "{{server}}"}}}
        }),
        owner: None,
    };
    store.appsets().create_appset(&set).await.unwrap();
    marks.push(store.link_watch(now).await.unwrap().settings);
    store
        .appsets()
        .delete_appset("default", "watched")
        .await
        .unwrap();
    let relabelled = {
        let w2 = store.get_cluster("w2").await.unwrap();
        store
            .update_cluster_labels(
                "w2",
                w2.version,
                &labels(&[("env", "prod")]),
                &Labels::new(),
            )
            .await
            .unwrap();
        store.link_watch(now).await.unwrap()
    };
    marks.push(relabelled.settings);
    for pair in marks.windows(2) {
        assert_ne!(pair[0], pair[1], "every project or set edit moves the mark");
    }
    assert_eq!(version(&relabelled, "w1"), version(&quiet, "w1"));
    assert!(version(&relabelled, "w2") > version(&quiet, "w2"));
}

/// A handshake's store work is one transaction that returns what the session needs to skip its own reads: the
/// desired set's version (as the desired read would give it), whether commands wait (pending or delivered
/// and unanswered, not overdue, not done), the cluster's record as written, and an announcement of the
/// cluster to watchers.
pub async fn a_link_opens_with_what_its_session_needs(store: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    store.create_cluster(&cluster("o1", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "web", "o1"))
        .await
        .unwrap();
    let mut clusters = store.listen(&[CLUSTERS_CHANNEL]).await.unwrap();
    let hello = LinkHello {
        server_url: "https://o1.example:6443".into(),
        versions: ClusterVersions {
            spoke_version: "1.4.0".into(),
            ..ClusterVersions::default()
        },
        certificate_not_after: None,
        connection: ClusterConnection {
            state: ConnectionKind::Connected,
            since: Some(now.replace_millisecond(0).unwrap()),
            last_heartbeat: Some(now.replace_millisecond(0).unwrap()),
            hub_replica: "replica-a".into(),
        },
    };
    let open = |stream: &'static str, at: OffsetDateTime| {
        let hello = hello.clone();
        async move {
            match store.open_link("o1", stream, &hello, at).await.unwrap() {
                LinkOpened::Open(link) => *link,
                LinkOpened::Revoked => panic!("o1 is not revoked"),
            }
        }
    };
    let quiet = open("s1", now).await;
    assert!(!quiet.commands_open);
    let desired = store.desired_changes("o1", 0).await.unwrap();
    assert!(desired.version > 0);
    assert_eq!(quiet.state.desired_version, desired.version);
    assert_eq!(quiet.cluster.versions.spoke_version, "1.4.0");
    assert_eq!(quiet.cluster.connection, hello.connection);
    let announced = tokio::time::timeout(Duration::from_secs(5), clusters.next())
        .await
        .expect("the cluster announced within 5 s")
        .expect("stream open");
    assert_eq!(
        announced,
        ListenEvent::Notification {
            channel: CLUSTERS_CHANNEL.into(),
            payload: "o1".into()
        }
    );

    // A command to deliver: the next opening knows, until its deadline passes or it is answered.
    let deadline = now + time::Duration::minutes(10);
    let issued = store
        .enqueue_command(&command("web", "o1", deadline))
        .await
        .unwrap();
    assert!(open("s2", now).await.commands_open);
    // Another cluster's opening knows of none: the command is o1's.
    store.create_cluster(&cluster("o2", &[])).await.unwrap();
    let other = store.open_link("o2", "t1", &hello, now).await.unwrap();
    assert!(matches!(other, LinkOpened::Open(link) if !link.commands_open));
    store
        .mark_commands_delivered(std::slice::from_ref(&issued.id), now)
        .await
        .unwrap();
    assert!(
        open("s3", now).await.commands_open,
        "delivered on an older stream and unanswered: delivered again"
    );
    assert!(
        !open("s4", deadline + time::Duration::seconds(1))
            .await
            .commands_open,
        "overdue"
    );
    store
        .record_command_status(&CommandUpdate {
            id: issued.id.clone(),
            outcome: CommandOutcome::Succeeded,
            message: String::new(),
            result: None,
        })
        .await
        .unwrap();
    assert!(!open("s5", now).await.commands_open, "answered");
    // Another app changes the desired set: the next opening sees the new version.
    store
        .create_app(&new_app("default", "db", "o1"))
        .await
        .unwrap();
    assert!(open("s6", now).await.state.desired_version > quiet.state.desired_version);
}

/// A group of status batches of many clusters, stored together, gives each batch what storing it alone gives:
/// fenced by its stream (a taken-over one is refused, a duplicate is a duplicate), reports of another
/// cluster's app refused, older versions stale, a second batch of one cluster stored after the first, and
/// every cluster that changed announced.
pub async fn a_status_group_stores_each_batch_as_alone(store: &dyn Store) {
    for (name, app) in [("g1", "ga"), ("g2", "gb"), ("g3", "gc")] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
        store
            .create_app(&new_app("default", app, name))
            .await
            .unwrap();
    }
    let hello = plain_hello();
    for cluster in ["g1", "g2", "g3"] {
        open_link(store, cluster, &format!("s-{cluster}"), &hello).await;
    }
    let mut apps = store.listen(&[APPS_CHANNEL]).await.unwrap();
    let write = |cluster: &str, stream: &str, seq: u64, reports: Vec<(&str, u64)>| StatusWrite {
        cluster: cluster.into(),
        at: SpokeSeq {
            stream: Some(stream.into()),
            ..at("epoch-1", seq)
        },
        batch: StatusBatch {
            reports: reports
                .into_iter()
                .map(|(app, version)| {
                    report(
                        "default",
                        app,
                        status(SyncStatus::Synced, Health::Healthy, version),
                    )
                })
                .collect(),
            ..StatusBatch::default()
        },
    };
    let group = vec![
        write("g2", "s-g2", 1, vec![("gb", 3), ("ga", 9)]),
        write("g1", "s-g1", 1, vec![("ga", 2)]),
        write("g3", "taken-over", 1, vec![("gc", 5)]),
        write("g1", "s-g1", 2, vec![("ga", 4)]),
    ];
    assert!(group.iter().all(StatusWrite::groupable));
    let results = store.ingest_status_group(&group).await.unwrap();
    assert_eq!(results.len(), 4);
    let outcome = |i: usize| results[i].as_ref().unwrap().clone();
    assert!(
        outcome(0).shared && outcome(1).shared,
        "the first batch of each cluster shares one transaction"
    );
    assert!(
        !outcome(3).shared,
        "a second batch of a cluster is stored alone"
    );
    assert_eq!(
        (outcome(0).applied, outcome(0).rejected),
        (1, 1),
        "another cluster's app is refused"
    );
    assert_eq!(outcome(1).applied, 1);
    assert!(
        matches!(results[2], Err(StoreError::Superseded { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(
        outcome(3).applied,
        1,
        "the second batch of g1 after the first"
    );
    let gb = summary(store, "gb").await;
    assert_eq!(
        (gb.status_version, gb.sync, gb.health, gb.revision.as_str()),
        (3, SyncStatus::Synced, Health::Healthy, "rev-3")
    );
    assert_eq!(summary(store, "ga").await.status_version, 4);
    assert_eq!(summary(store, "gc").await.status_version, 0);
    assert_eq!(store.get_link_state("g1").await.unwrap().spoke_seq, 2);
    assert_eq!(store.get_link_state("g3").await.unwrap().spoke_seq, 0);
    let mut announced = BTreeSet::new();
    while announced.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), apps.next())
            .await
            .expect("an announcement within 5 s")
            .expect("stream open");
        if let ListenEvent::Notification { payload, .. } = event {
            announced.insert(payload);
        }
    }
    // g1 again (its second batch, stored alone); g3 changed nothing: never announced.
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(300), apps.next()).await
    {
        if let ListenEvent::Notification { payload, .. } = event {
            announced.insert(payload);
        }
    }
    assert_eq!(announced, BTreeSet::from(["g1".into(), "g2".into()]));

    // Again: duplicates; and a newer sequence with an older version is stale.
    let again = store.ingest_status_group(&group[..2]).await.unwrap();
    assert!(
        again
            .iter()
            .all(|r| r.as_ref().is_ok_and(|o| o.duplicate && o.shared))
    );
    let stale = store
        .ingest_status_group(&[
            write("g1", "s-g1", 3, vec![("ga", 1)]),
            write("g2", "s-g2", 2, vec![("gb", 7)]),
        ])
        .await
        .unwrap();
    let stale: Vec<IngestOutcome> = stale.into_iter().map(Result::unwrap).collect();
    assert!(stale[0].shared && stale[1].shared);
    assert_eq!((stale[0].applied, stale[0].stale), (0, 1));
    assert_eq!(stale[1].applied, 1);
    assert_eq!(summary(store, "ga").await.status_version, 4);
    assert_eq!(summary(store, "gb").await.status_version, 7);
    // A new epoch (the spoke restarted) starts its numbering again; a stream that never opened its cluster's
    // link is refused, as alone.
    store.create_cluster(&cluster("g4", &[])).await.unwrap();
    store
        .create_app(&new_app("default", "gd", "g4"))
        .await
        .unwrap();
    let mut restarted = write("g2", "s-g2", 1, vec![("gb", 8)]);
    restarted.at.epoch = "epoch-2".into();
    let unopened = write("g4", "s-g4", 1, vec![("gd", 2)]);
    let fresh = store
        .ingest_status_group(&[restarted, unopened.clone()])
        .await
        .unwrap();
    assert!(
        fresh[0].as_ref().is_ok_and(|o| o.shared && o.applied == 1),
        "{fresh:?}"
    );
    assert!(
        matches!(fresh[1], Err(StoreError::Superseded { .. })),
        "{fresh:?}"
    );
    let alone = store
        .ingest_status_batch(&unopened.cluster, &unopened.at, &unopened.batch)
        .await;
    assert!(
        matches!(alone, Err(StoreError::Superseded { .. })),
        "{alone:?}"
    );
    assert_eq!(
        store.get_link_state("g2").await.unwrap().spoke_epoch,
        "epoch-2"
    );
    assert_eq!(summary(store, "gd").await.status_version, 0);
}
