//! Fixture builders for the store suite: specs, statuses and a small fleet whose expected query answers are computed in Rust (the oracle).

use std::collections::BTreeMap;

use edgecd_core::app::{
    AppOrigin, ApplicationSource, ApplicationSpec, ApplicationStatus, AutomatedSync, Destination,
    HealthReport, OwnerRef, SyncPolicy, SyncReport,
};
use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::{
    AppFilter, AutonomousApp, ClusterConnection, ConnectionKind, Labels, NewApp, NewCluster,
    SpokeSeq, StatusBatch, StatusReport, Store,
};

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn spec(cluster: &str, path: &str) -> ApplicationSpec {
    ApplicationSpec {
        project: String::new(),
        source: ApplicationSource {
            repo_url: "https://git.example/apps.git".into(),
            target_revision: "main".into(),
            path: path.into(),
            ..ApplicationSource::default()
        },
        destination: Destination {
            cluster: cluster.into(),
            server: String::new(),
            namespace: "web".into(),
        },
        sync_policy: Some(SyncPolicy {
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
                allow_empty: false,
            }),
            ..SyncPolicy::default()
        }),
        ..ApplicationSpec::default()
    }
}

pub fn new_app(project: &str, name: &str, cluster: &str) -> NewApp {
    NewApp {
        project: project.into(),
        name: name.into(),
        spec: spec(cluster, name),
        labels: Labels::new(),
        owner: None,
    }
}

pub fn cluster(name: &str, pairs: &[(&str, &str)]) -> NewCluster {
    NewCluster {
        name: name.into(),
        labels: labels(pairs),
        annotations: Labels::new(),
        server_url: format!("https://{name}.example:6443"),
    }
}

pub fn status(sync: SyncStatus, health: Health, version: u64) -> ApplicationStatus {
    ApplicationStatus {
        sync: SyncReport {
            status: sync,
            revision: format!("rev-{version}"),
        },
        health: HealthReport {
            status: health,
            message: String::new(),
        },
        status_version: version,
        ..ApplicationStatus::default()
    }
}

pub fn report(project: &str, name: &str, status: ApplicationStatus) -> StatusReport {
    StatusReport {
        project: project.into(),
        name: name.into(),
        status,
        autonomous: None,
    }
}

pub fn autonomous_report(
    project: &str,
    name: &str,
    cluster: &str,
    status: ApplicationStatus,
) -> StatusReport {
    StatusReport {
        project: project.into(),
        name: name.into(),
        status,
        autonomous: Some(AutonomousApp {
            spec: spec(cluster, name),
            labels: labels(&[("created-by", "edge")]),
            owner: None,
        }),
    }
}

pub fn at(epoch: &str, seq: u64) -> SpokeSeq {
    SpokeSeq {
        epoch: epoch.into(),
        seq,
        stream: None,
    }
}

/// What the oracle knows about each app of the fleet.
#[derive(Debug, Clone)]
pub struct FleetApp {
    pub project: String,
    pub name: String,
    pub cluster: String,
    pub labels: Labels,
    pub sync: SyncStatus,
    pub health: Health,
    pub origin: AppOrigin,
    pub owner: Option<OwnerRef>,
}

#[derive(Debug)]
pub struct Fleet {
    pub apps: Vec<FleetApp>,
    pub cluster_labels: BTreeMap<String, Labels>,
    pub connection: BTreeMap<String, ConnectionKind>,
}

pub const SYNCS: [SyncStatus; 3] = [
    SyncStatus::Synced,
    SyncStatus::OutOfSync,
    SyncStatus::Unknown,
];

/// Three projects, six clusters (one unregistered destination), 72 managed
/// apps plus 6 autonomous ones, with statuses, labels and owners spread so
/// that every filter selects a proper, non-empty subset.
pub async fn build_fleet(store: &dyn Store) -> Fleet {
    let projects = ["alpha", "beta", "gamma"];
    for project in projects {
        store
            .create_project(project, &edgecd_core::project::ProjectSpec::permissive())
            .await
            .unwrap();
    }
    let clusters: [(&str, &[(&str, &str)]); 5] = [
        ("edge-1", &[("region", "eu"), ("tier", "edge")]),
        (
            "edge-2",
            &[("region", "eu"), ("tier", "core"), ("gpu", "yes")],
        ),
        ("edge-3", &[("region", "us"), ("tier", "edge")]),
        ("edge-4", &[("region", "us")]),
        (
            "edge-5",
            &[("region", "ap"), ("tier", "edge"), ("legacy", "true")],
        ),
    ];
    let states = [
        ConnectionKind::Connected,
        ConnectionKind::Stale,
        ConnectionKind::Connected,
        ConnectionKind::Disconnected,
        ConnectionKind::Pending,
    ];
    let mut fleet = Fleet {
        apps: Vec::new(),
        cluster_labels: BTreeMap::new(),
        connection: BTreeMap::new(),
    };
    for ((name, pairs), state) in clusters.iter().zip(states) {
        store.create_cluster(&cluster(name, pairs)).await.unwrap();
        if state != ConnectionKind::Pending {
            store
                .set_cluster_connection(
                    name,
                    &ClusterConnection {
                        state,
                        since: Some(time::OffsetDateTime::now_utc()),
                        last_heartbeat: None,
                        hub_replica: "replica-a".into(),
                    },
                )
                .await
                .unwrap();
        }
        fleet.cluster_labels.insert((*name).into(), labels(pairs));
        fleet.connection.insert((*name).into(), state);
    }
    // "edge-6" is a destination that was never registered.
    let destinations = ["edge-1", "edge-2", "edge-3", "edge-4", "edge-5", "edge-6"];
    let teams = ["web", "db", "cache"];
    let mut seqs: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..72usize {
        let project = projects[i % 3];
        let cluster = destinations[(i / 3) % 6];
        let name = format!("{}-app-{i:02}", teams[i % 3]);
        let mut app = new_app(project, &name, cluster);
        app.labels = labels(&[
            ("team", teams[(i / 2) % 3]),
            ("tier", if i % 4 == 0 { "gold" } else { "silver" }),
        ]);
        if i % 5 == 0 {
            app.labels.remove("tier");
        }
        if i % 6 == 1 {
            app.owner = Some(OwnerRef {
                kind: "ApplicationSet".into(),
                project: project.into(),
                name: "fleet-set".into(),
                scope: "hub".into(),
            });
        }
        store.create_app(&app).await.unwrap();
        let sync = SYNCS[i % 3];
        let health = Health::ALL[(i / 3) % Health::ALL.len()];
        let mut reported = false;
        if i % 7 != 0 {
            let seq = seqs.entry(cluster).or_insert(0);
            *seq += 1;
            let batch = StatusBatch {
                reports: vec![report(project, &name, status(sync, health, 1))],
                ..StatusBatch::default()
            };
            let outcome = store
                .ingest_status_batch(cluster, &at("e1", *seq), &batch)
                .await
                .unwrap();
            assert_eq!(outcome.applied, 1, "{outcome:?}");
            reported = true;
        }
        fleet.apps.push(FleetApp {
            project: project.into(),
            name,
            cluster: cluster.into(),
            labels: app.labels.clone(),
            sync: if reported { sync } else { SyncStatus::Unknown },
            health: if reported { health } else { Health::Unknown },
            origin: AppOrigin::Managed,
            owner: app.owner.clone(),
        });
    }
    for i in 0..6usize {
        let cluster = destinations[i % 5];
        let project = projects[i % 3];
        let name = format!("edge-made-{i}@{cluster}");
        let seq = seqs.entry(cluster).or_insert(0);
        *seq += 1;
        let batch = StatusBatch {
            reports: vec![autonomous_report(
                project,
                &name,
                cluster,
                status(SyncStatus::Synced, Health::Healthy, 1),
            )],
            ..StatusBatch::default()
        };
        let outcome = store
            .ingest_status_batch(cluster, &at("e1", *seq), &batch)
            .await
            .unwrap();
        assert_eq!(outcome.created, 1, "{outcome:?}");
        fleet.apps.push(FleetApp {
            project: project.into(),
            name,
            cluster: cluster.into(),
            labels: labels(&[("created-by", "edge")]),
            sync: SyncStatus::Synced,
            health: Health::Healthy,
            origin: AppOrigin::Autonomous,
            owner: None,
        });
    }
    fleet
}

impl Fleet {
    /// The health the hub counts and filters `app` by: Unknown while its
    /// cluster is registered and not connected (`AppSummary::health_shown`).
    pub fn health_shown(&self, app: &FleetApp) -> Health {
        match self.connection.get(&app.cluster) {
            Some(connection) if !connection.reachable() => Health::Unknown,
            _ => app.health,
        }
    }

    /// The oracle: which apps a filter selects.
    pub fn select(&self, filter: &AppFilter) -> Vec<&FleetApp> {
        self.apps
            .iter()
            .filter(|app| {
                let cluster_labels = self
                    .cluster_labels
                    .get(&app.cluster)
                    .cloned()
                    .unwrap_or_default();
                (filter.projects.is_empty() || filter.projects.contains(&app.project))
                    && (filter.clusters.is_empty() || filter.clusters.contains(&app.cluster))
                    && filter.cluster_selector.matches(&cluster_labels)
                    && filter.app_selector.matches(&app.labels)
                    && (filter.sync.is_empty() || filter.sync.contains(&app.sync))
                    && (filter.health.is_empty() || filter.health.contains(&self.health_shown(app)))
                    && filter.origin.is_none_or(|o| o == app.origin)
                    && filter
                        .owner
                        .as_ref()
                        .is_none_or(|o| app.owner.as_ref() == Some(o))
                    && (filter.connection.is_empty()
                        || self
                            .connection
                            .get(&app.cluster)
                            .is_some_and(|c| filter.connection.contains(c)))
                    && app.name.contains(&filter.search.to_lowercase())
                    && (filter.names.is_empty()
                        || filter.names.iter().any(|n| {
                            app.name == *n
                                || app
                                    .name
                                    .strip_prefix(n.as_str())
                                    .is_some_and(|rest| rest.starts_with('@'))
                        }))
            })
            .collect()
    }
}
