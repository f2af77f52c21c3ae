//! Review finding 1 end to end: a 1.1 MB YAML file whose aliases would expand to about 20 GiB, through every entry point (the hub's `ApplyManifests`, even as a dry run; an app-of-apps parent rendered at the hub from git; an app rendered at its spoke from git), in a process whose address space is capped, on the dev fleet (real hub, spoke, git daemon, gRPC over TLS). Each is refused with an error naming the cause; the hub and the spoke keep serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;

const DEADLINE: Duration = Duration::from_secs(120);
/// Far above what the fleet needs, far below what the file would expand to.
const ADDRESS_SPACE: u64 = 12 << 30;

/// `x: &a "<1 MiB>"` and `y: [*a, …]` with 20,000 aliases: 1.1 MB of text.
fn amplifying_file() -> String {
    let refs = vec!["*a"; 20_000].join(", ");
    format!("x: &a \"{}\"\ny: [{refs}]\n", "v".repeat(1 << 20))
}

async fn app(fleet: &Fleet, name: &str) -> Option<v1::Application> {
    fleet
        .client()
        .get_application(v1::GetApplicationRequest {
            app: Some(v1::AppRef::new("default", name)),
        })
        .await
        .ok()
}

/// Waits for a condition of `name` whose message mentions the alias limit; returns it.
async fn alias_condition(fleet: &Fleet, name: &str) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let conditions = app(fleet, name)
            .await
            .and_then(|a| a.status)
            .map(|s| s.conditions)
            .unwrap_or_default();
        if let Some(condition) = conditions.iter().find(|c| c.message.contains("alias")) {
            return condition.message.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} shows no alias error after {}s: {conditions:?}",
            DEADLINE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn application(name: &str, url: &str, path: &str, destination: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: default\n  source:\n    repoURL: {url}\n    targetRevision: HEAD\n    path: {path}\n  destination:\n    {destination}\n    namespace: bombs\n  syncPolicy:\n    automated: {{}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_amplification_file_is_refused_at_every_entry_point() {
    edgecd_testkit::limit_address_space(ADDRESS_SPACE).unwrap();
    let fleet = Fleet::start(
        FleetConfig {
            clusters: 1,
            poll_interval: Duration::from_secs(5),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let bomb = amplifying_file();
    assert!(bomb.len() < 1_200_000);

    // 1. ApplyManifests, as a dry run.
    let err = fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml: bomb.clone(),
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("aliases expand to more than"),
        "{err}"
    );
    fleet.client().get_server_info().await.unwrap();

    // 2 and 3. From git: rendered at the spoke (an app on cluster-1) and at the
    // hub (an app-of-apps parent, destination in-cluster).
    fleet.repo().write("bombs/bomb.yaml", &bomb).unwrap();
    fleet.repo().commit("an alias amplification file").unwrap();
    let url = fleet.repo().url().to_owned();
    let yaml = [
        application("spoke-bomb", &url, "bombs", "name: cluster-1"),
        application(
            "hub-bomb",
            &url,
            "bombs",
            "server: https://kubernetes.default.svc",
        ),
    ]
    .join("---\n");
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
    for name in ["spoke-bomb", "hub-bomb"] {
        let message = alias_condition(&fleet, name).await;
        assert!(message.contains("bomb.yaml"), "{name}: {message}");
        assert!(
            message.contains("aliases expand to more than"),
            "{name}: {message}"
        );
    }

    // Both keep serving: cluster-1's other app is Synced and Healthy on a connected cluster.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let apps = fleet
            .client()
            .list_applications(v1::ListApplicationsRequest {
                page_size: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
        let others: Vec<_> = apps.iter().filter(|a| !a.name.ends_with("-bomb")).collect();
        let waiting: Vec<String> = others
            .iter()
            .filter_map(|a| edgecd_e2e::dev::not_ready(a).map(|why| format!("{}: {why}", a.name)))
            .collect();
        if !others.is_empty() && waiting.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fleet stopped serving: {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    fleet.shutdown().await;
}
