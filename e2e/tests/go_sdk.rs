//! The Go SDK (`sdk/go`) against a live hub: a dev fleet, then `go test ./...` in sdk/go with the hub's URL, CA and admin login in `EDGECD_GO_SDK_*`, so its live test logs in, lists a cluster's apps across pages and watches a sync; it must pass, not skip. Without Go, SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_testkit::realkube;

/// `go test` may download the SDK's modules and compile gRPC on its first run.
const GO_TEST_LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sdk_logs_in_lists_across_pages_and_watches_a_sync_on_a_dev_fleet() {
    if !realkube::go_available() {
        eprintln!("SKIPPED: Go is not installed, so the Go SDK's tests cannot run");
        return;
    }
    // Two clusters of three apps each (cluster-N.nginx and two generated ones): the live test
    // lists one cluster's three apps two a page.
    let fleet = Fleet::start(
        FleetConfig {
            clusters: 2,
            apps_per_cluster: 2,
            poll_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(4),
            ..FleetConfig::default()
        },
        |p| eprintln!("[{}/{}] {}", p.step, p.steps, p.message),
    )
    .await
    .unwrap();
    fleet.wait_synced(Duration::from_secs(180)).await.unwrap();

    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("sdk/go");
    let started = Instant::now();
    let child = tokio::process::Command::new("go")
        .args(["test", "-count=1", "-v", "./..."])
        .current_dir(&sdk)
        .env("EDGECD_GO_SDK_SERVER", fleet.grpc_url())
        .env("EDGECD_GO_SDK_CA_FILE", fleet.ca_file())
        .env("EDGECD_GO_SDK_USERNAME", "admin")
        .env("EDGECD_GO_SDK_PASSWORD", fleet.admin_password())
        // The committed go.mod and go.sum as they are; the local Go, never a downloaded one.
        // Modules already in the module cache are not fetched again, so this runs offline after the first time.
        .env("GOFLAGS", "-mod=readonly")
        .env("GOTOOLCHAIN", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running go test");
    let output = tokio::time::timeout(GO_TEST_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("go test in {} ran over {GO_TEST_LIMIT:?}", sdk.display()))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "go test ./... in {} took {:.1}s:\n{stdout}{stderr}",
        sdk.display(),
        started.elapsed().as_secs_f64()
    );
    fleet.shutdown().await;

    assert!(
        output.status.success(),
        "go test failed ({})",
        output.status
    );
    assert!(
        stdout.contains("--- PASS: TestLiveHub"),
        "the live test did not pass (skipped?)"
    );
    for unit in [
        "TestLoginAndPaginationOverLoopbackPlaintext",
        "TestWatchEvents",
        "TestTLSWithTheHubsCA",
    ] {
        assert!(
            stdout.contains(&format!("--- PASS: {unit}")),
            "{unit} did not pass"
        );
    }
}
