//! Review finding 8 end to end: an app of 5,000 objects synced three times from the hub. Each history entry held the full resource list, the Application object outgrew what the API server stores (etcd's 1.5 MiB, which the emulator enforces like a real server), status writes failed every few seconds and the sync commands stayed Running while the hub showed Synced. Now every sync finishes, the hub sees it, and the object stays writable with its whole inventory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;
use kube::api::Api;

const OBJECTS: usize = 5_000;
const DEADLINE: Duration = Duration::from_secs(300);

fn configmaps(round: usize) -> String {
    (0..OBJECTS)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:05}\ndata:\n  round: \"{round}\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

async fn wait_command(fleet: &Fleet, id: &str) -> v1::CommandStatus {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let status = fleet
            .client()
            .get_command(v1::GetCommandRequest {
                command_id: id.to_owned(),
            })
            .await
            .unwrap();
        let finished = [
            v1::CommandOutcome::Succeeded,
            v1::CommandOutcome::Failed,
            v1::CommandOutcome::Expired,
            v1::CommandOutcome::Rejected,
        ]
        .iter()
        .any(|o| *o as i32 == status.outcome);
        if finished {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "command {id} still {:?} after {}s: {}",
            v1::CommandOutcome::try_from(status.outcome),
            DEADLINE.as_secs(),
            status.message
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_of_five_thousand_objects_syncs_three_times_and_stays_writable() {
    let fleet = Fleet::start(
        FleetConfig {
            clusters: 1,
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let url = fleet.repo().url().to_owned();
    fleet.repo().write("big/cms.yaml", &configmaps(1)).unwrap();
    let mut commit = fleet.repo().commit("5,000 ConfigMaps").unwrap();
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: big\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: big\n  destination:\n    name: cluster-1\n    namespace: big\n  syncPolicy:\n    syncOptions:\n    - CreateNamespace=true\n"
    );
    let applied = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        applied.results.iter().all(|r| r.action != "refused"),
        "{:?}",
        applied.results
    );

    for round in 1..=3 {
        if round > 1 {
            fleet
                .repo()
                .write("big/cms.yaml", &configmaps(round))
                .unwrap();
            commit = fleet.repo().commit(&format!("round {round}")).unwrap();
        }
        let issued = fleet
            .client()
            .sync_application(v1::SyncApplicationRequest {
                request_id: String::new(),
                app: Some(v1::AppRef::new("default", "big")),
                sync: Some(v1::SyncCommand {
                    revision: commit.clone(),
                    ..Default::default()
                }),
                ttl: None,
            })
            .await
            .unwrap();
        let done = wait_command(&fleet, &issued.command_id).await;
        assert_eq!(
            done.outcome,
            v1::CommandOutcome::Succeeded as i32,
            "sync {round}: {}",
            done.message
        );
    }

    // The hub shows the third sync's outcome and the whole inventory.
    let app = fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", "big")),
        })
        .await
        .unwrap();
    let status = app.status.unwrap();
    assert_eq!(status.resources.len(), OBJECTS);
    assert_eq!(status.history.len(), 3);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.r#type == "StatusTruncatedWarning"),
        "{:?}",
        status.conditions
    );
    assert!(
        !status
            .conditions
            .iter()
            .any(|c| c.r#type == "StatusWriteError"),
        "{:?}",
        status.conditions
    );

    // The Application object in the cluster is below etcd's limit and carries the third round.
    let client = fleet.emulator().unwrap().clusters()[0]
        .client()
        .await
        .unwrap();
    let apps: Api<edgecd_spoke::crd::Application> =
        Api::namespaced(client.clone(), "edgecd-system");
    let cr = apps
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|a| a.metadata.name.as_deref() == Some("big"))
        .unwrap();
    let size = serde_json::to_vec(&cr).unwrap().len();
    assert!(size < 1_572_864, "the Application object is {size} bytes");
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "big");
    let last = configmaps
        .get(&format!("cm-{:05}", OBJECTS - 1))
        .await
        .unwrap();
    assert_eq!(
        last.data.unwrap().get("round").map(String::as_str),
        Some("3")
    );
    fleet.shutdown().await;
}
