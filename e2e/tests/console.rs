//! Browser tests of the web console: headless Chromium against a real hub with spokes on emulated clusters (the dev fleet).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig, repo};
use edgecd_proto::v1;
use edgecd_testkit::browser::Browser;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};

const WAIT: Duration = Duration::from_secs(60);

/// Where screenshots go: `EDGECD_SCREENSHOTS` (the docs use `docs/console`)
/// or a directory under the target dir.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("EDGECD_SCREENSHOTS").map_or_else(
        || std::env::temp_dir().join("edgecd-console-screenshots"),
        PathBuf::from,
    )
}

fn rows_js(expected: usize) -> String {
    format!(
        "return document.querySelectorAll('#apps-table tbody tr').length === {expected} \
         && performance.getEntriesByName('edgecd:apps-rendered').length > 0"
    )
}

/// Dismiss the corner messages (the commands' toasts) before a screenshot of something else.
async fn clear_toasts(browser: &Browser) {
    browser
        .eval("document.querySelectorAll('#toast .toast').forEach(t => t.remove()); return true")
        .await
        .unwrap();
}

/// Fill in and submit the sign-in form; wait until the console shows the user.
async fn sign_in(browser: &Browser, user: &str, password: &str) {
    browser
        .eval(&format!(
            "document.querySelector('input[name=username]').value = {user:?}; \
             document.querySelector('input[name=password]').value = {password:?}; \
             document.querySelector('form button[type=submit]').click(); return true"
        ))
        .await
        .unwrap();
    browser
        .wait_until(
            &format!("return (document.querySelector('#whoami') || {{}}).textContent === {user:?}"),
            WAIT,
        )
        .await
        .unwrap();
}

/// Change a filter control as a user does (set it and fire `change`).
async fn set_filter(browser: &Browser, selector: &str, value: &str) {
    browser
        .eval("performance.clearMarks('edgecd:apps-rendered'); return true")
        .await
        .unwrap();
    browser
        .eval(&format!(
            "const e = document.querySelector({selector:?}); e.value = {value:?}; \
             e.dispatchEvent(new Event('change')); return true"
        ))
        .await
        .unwrap();
}

/// Press Sync and confirm the Sync dialog with its defaults (the whole app, no options).
async fn sync_from_dialog(browser: &Browser) {
    browser.click("#sync-button").await.unwrap();
    browser.wait_for("#sync-dialog[open]", WAIT).await.unwrap();
    browser.click("#sync-dialog-confirm").await.unwrap();
    browser
        .wait_until("return !document.querySelector('#sync-dialog')", WAIT)
        .await
        .unwrap();
}

/// Polls the live Deployment's image until it ends with `suffix` (deadline: `WAIT`).
async fn wait_for_image<F, Fut>(live_image: &F, suffix: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let image = live_image().await;
        if image.ends_with(suffix) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live Deployment's image is {image}, not *{suffix}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_shows_the_fleet_and_acts_on_it_live() {
    let fleet = Fleet::start(
        FleetConfig {
            stale_after: Duration::from_secs(4),
            trace_url_template: "https://traces.example/trace/{trace_id}".into(),
            ..FleetConfig::default()
        },
        |_| {},
    )
    .await
    .expect("dev fleet");
    fleet.wait_synced(Duration::from_secs(180)).await.unwrap();
    let base = fleet.console_url();
    let shots = screenshot_dir();
    let browser = Browser::start().await.expect("headless Chromium");

    // --- sign in through the form ---
    browser.goto(&format!("{base}/#/overview")).await.unwrap();
    browser
        .wait_for("input[name=username]", WAIT)
        .await
        .unwrap();
    browser.screenshot(&shots, "login").await.unwrap();
    sign_in(&browser, "admin", fleet.admin_password()).await;

    // --- overview ---
    if let Err(e) = browser.wait_for("#counts .card", WAIT).await {
        let body = browser
            .eval("return document.body.innerHTML")
            .await
            .unwrap();
        panic!("{e}: {body}");
    }
    browser
        .wait_until(
            "return document.querySelector('#counts').textContent.includes('Healthy')",
            WAIT,
        )
        .await
        .unwrap();
    browser.screenshot(&shots, "overview").await.unwrap();

    // --- application list, filtered by cluster and by health ---
    browser.goto(&format!("{base}/#/apps")).await.unwrap();
    browser.wait_until(&rows_js(3), WAIT).await.unwrap();
    browser.screenshot(&shots, "applications").await.unwrap();
    set_filter(&browser, "input[name=cluster]", "cluster-2").await;
    browser.wait_until(&rows_js(1), WAIT).await.unwrap();
    let row = browser
        .eval("return document.querySelector('#apps-table tbody tr').dataset.app")
        .await
        .unwrap();
    assert_eq!(row, "default/cluster-2.nginx");
    assert!(
        browser
            .eval("return location.hash")
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .contains("cluster=cluster-2"),
        "filters are kept in the URL"
    );
    set_filter(&browser, "select[name=health]", "Degraded").await;
    browser.wait_until(&rows_js(0), WAIT).await.unwrap();
    set_filter(&browser, "select[name=health]", "Healthy").await;
    browser.wait_until(&rows_js(1), WAIT).await.unwrap();

    // --- application sets: nginx generated one app per cluster, without error ---
    browser.goto(&format!("{base}/#/appsets")).await.unwrap();
    let nginx_row = "#appsets-table tr[data-appset=\"default/nginx\"]";
    browser.wait_for(nginx_row, WAIT).await.unwrap();
    let row = browser
        .eval(&format!(
            "const r = document.querySelector({nginx_row:?}); \
             return [r.dataset.error, r.dataset.scope, r.querySelector('a.generated').textContent, r.textContent]"
        ))
        .await
        .unwrap();
    assert_eq!(row[0], "false", "no error condition: {row}");
    assert_eq!(row[1], "hub", "{row}");
    assert_eq!(row[2], "3", "three generated apps: {row}");
    assert!(row[3].as_str().unwrap().contains("clusters (all)"), "{row}");
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#appsets-table .error-text').length")
            .await
            .unwrap(),
        0
    );
    // The generated count opens the application list filtered to the set.
    browser
        .eval(&format!(
            "performance.clearMarks('edgecd:apps-rendered'); \
             document.querySelector({nginx_row:?}).querySelector('a.generated').click(); return true"
        ))
        .await
        .unwrap();
    browser.wait_until(&rows_js(3), WAIT).await.unwrap();
    let hash = browser.eval("return location.hash").await.unwrap();
    assert!(
        hash.as_str().unwrap().contains("owner=default%2Fnginx"),
        "{hash}"
    );
    browser.wait_for("#owner-filter", WAIT).await.unwrap();
    // The set's own page lists its apps with their sync and health.
    browser.goto(&format!("{base}/#/appsets")).await.unwrap();
    browser.wait_for(nginx_row, WAIT).await.unwrap();
    browser
        .eval(&format!(
            "document.querySelector({nginx_row:?}).querySelector('a[href^=\"#/appsets/\"]').click(); return true"
        ))
        .await
        .unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#generated-table tbody tr[data-sync][data-health]').length === 3",
            WAIT,
        )
        .await
        .unwrap();
    let generated = browser
        .eval(
            "return [...document.querySelectorAll('#generated-table tbody tr')].map(r => r.dataset.app).sort()",
        )
        .await
        .unwrap();
    assert_eq!(
        generated,
        serde_json::json!([
            "default/cluster-1.nginx",
            "default/cluster-2.nginx",
            "default/cluster-3.nginx"
        ])
    );
    browser.screenshot(&shots, "appset").await.unwrap();
    // An app's page names its owner and links back to the set.
    browser
        .eval(
            "document.querySelector('#generated-table tr[data-app=\"default/cluster-2.nginx\"] a').click(); return true",
        )
        .await
        .unwrap();
    browser.wait_for("#owner-link", WAIT).await.unwrap();
    let owner = browser
        .eval("return document.querySelector('#app-owner').textContent")
        .await
        .unwrap();
    assert_eq!(owner, "Generated by ApplicationSet default/nginx (hub)");
    browser
        .eval("document.querySelector('#owner-link').click(); return true")
        .await
        .unwrap();
    browser
        .wait_until(
            "return location.hash === '#/appsets/default/nginx' && !!document.querySelector('#generated-table')",
            WAIT,
        )
        .await
        .unwrap();

    // --- application detail: resource tree and diff of a drifted app ---
    let apps = fleet.emulator().expect("emulated clusters");
    let kube = apps.clusters()[0].client().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(kube, "nginx");
    deployments
        .patch(
            "nginx",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "nginx", "namespace": "nginx"},
                "spec": {"replicas": 9},
            })),
        )
        .await
        .unwrap();
    let app_url = format!("{base}/#/apps/default/cluster-1.nginx");
    browser.goto(&format!("{app_url}/tree")).await.unwrap();
    browser
        .wait_until(
            "return !!document.querySelector('#resource-tree li[data-kind=Deployment]')",
            WAIT,
        )
        .await
        .unwrap();
    browser.screenshot(&shots, "resource-tree").await.unwrap();
    // The spoke notices the drift (manual sync: it stays OutOfSync).
    browser.goto(&app_url).await.unwrap();
    browser
        .wait_until(
            "return (document.querySelector('#app-sync .badge') || {dataset: {}}).dataset.status === 'OutOfSync'",
            WAIT,
        )
        .await
        .unwrap();
    browser.goto(&format!("{app_url}/diff")).await.unwrap();
    browser.wait_for("#diff pre.diff", WAIT).await.unwrap();
    let diff = browser
        .eval("return document.querySelector('#diff').textContent")
        .await
        .unwrap();
    let diff = diff.as_str().unwrap();
    assert!(diff.contains("Deployment"), "{diff}");
    assert!(diff.contains("replicas"), "{diff}");
    browser.screenshot(&shots, "diff").await.unwrap();

    // --- Sync: the status changes live, without reloading the page ---
    browser.goto(&app_url).await.unwrap();
    browser.wait_for("#sync-button", WAIT).await.unwrap();
    browser
        .eval("window.__sameDocument = true; return true")
        .await
        .unwrap();
    sync_from_dialog(&browser).await;
    browser
        .wait_until(
            "return (document.querySelector('#app-sync .badge') || {dataset: {}}).dataset.status === 'Synced' && window.__sameDocument === true",
            WAIT,
        )
        .await
        .unwrap();
    browser.screenshot(&shots, "application").await.unwrap();

    // --- rollback: a git change synced, then rolled back from the history ---
    let old_commit = fleet.repo().head().unwrap();
    let overlay = "deploy/overlays/cluster-1/kustomization.yaml";
    let text = std::fs::read_to_string(fleet.repo().work_path().join(overlay)).unwrap();
    assert!(text.contains("newTag: 1.19.0"), "{text}");
    fleet
        .repo()
        .write(overlay, &text.replace("newTag: 1.19.0", "newTag: 1.20.0"))
        .unwrap();
    let new_commit = fleet.repo().commit("cluster-1: nginx 1.20.0").unwrap();
    let deployments_1 = deployments.clone();
    let live_image = move || {
        let deployments = deployments_1.clone();
        async move {
            let d = deployments.get("nginx").await.unwrap();
            d.spec.unwrap().template.spec.unwrap().containers[0]
                .image
                .clone()
                .unwrap_or_default()
        }
    };
    assert!(live_image().await.ends_with(":1.19.0"));
    // A hard refresh asks git now: the app turns OutOfSync (manual sync).
    browser
        .eval("document.querySelector('#hard-refresh-button').click(); return true")
        .await
        .unwrap();
    browser
        .wait_until(
            "return (document.querySelector('#app-sync .badge') || {dataset: {}}).dataset.status === 'OutOfSync'",
            WAIT,
        )
        .await
        .unwrap();
    sync_from_dialog(&browser).await;
    browser
        .wait_until(
            "return (document.querySelector('#app-sync .badge') || {dataset: {}}).dataset.status === 'Synced'",
            WAIT,
        )
        .await
        .unwrap();
    browser
        .eval("document.querySelector('.tabs a[href$=\"/history\"]').click(); return true")
        .await
        .unwrap();
    browser
        .wait_until(
            &format!(
                "const r = document.querySelector('#history tbody tr'); \
                 return !!r && r.dataset.revision === {new_commit:?}"
            ),
            WAIT,
        )
        .await
        .unwrap();
    wait_for_image(&live_image, ":1.20.0").await;
    // The sync the console started is one trace: its W3C traceparent travelled with the command, and the
    // history entry links it with the hub's --trace-url-template.
    let synced_trace = browser
        .eval(
            "const a = document.querySelector('#history tbody tr a.trace'); return a ? a.href : ''",
        )
        .await
        .unwrap();
    let synced_trace = synced_trace.as_str().unwrap_or_default().to_owned();
    let id = synced_trace
        .strip_prefix("https://traces.example/trace/")
        .unwrap_or_else(|| panic!("no trace link on the console's sync: {synced_trace:?}"));
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{synced_trace}"
    );
    // The current entry offers no rollback.
    assert_eq!(
        browser
            .eval("const r = document.querySelector('#history tbody tr'); return [r.dataset.current, r.querySelectorAll('button.rollback').length]")
            .await
            .unwrap(),
        serde_json::json!(["true", 0])
    );
    // Roll back to the newest entry of the previous commit, after confirming.
    browser
        .eval(&format!(
            "const r = [...document.querySelectorAll('#history tbody tr')] \
                 .find(r => r.dataset.revision === {old_commit:?}); \
             r.querySelector('button.rollback').click(); return true"
        ))
        .await
        .unwrap();
    browser
        .wait_for("#rollback-dialog[open]", WAIT)
        .await
        .unwrap();
    let text = browser.text("#rollback-dialog").await.unwrap().unwrap();
    assert!(
        text.contains(&old_commit[..8]),
        "the dialog names the revision: {text}"
    );
    browser.click("#rollback-dialog-confirm").await.unwrap();
    browser
        .wait_until(
            &format!(
                "const r = document.querySelector('#history tbody tr'); \
                 return !!r && r.dataset.revision === {old_commit:?}"
            ),
            WAIT,
        )
        .await
        .unwrap();
    wait_for_image(&live_image, ":1.19.0").await;
    // The rollback is an action of its own: a trace of its own.
    let rollback_trace = browser
        .eval(
            "const a = document.querySelector('#history tbody tr a.trace'); return a ? a.href : ''",
        )
        .await
        .unwrap();
    assert!(
        rollback_trace
            .as_str()
            .is_some_and(|t| t.starts_with("https://traces.example/trace/") && t != synced_trace),
        "{rollback_trace} after {synced_trace}"
    );
    browser.screenshot(&shots, "history").await.unwrap();

    // --- a spoke stops answering: its cluster turns Stale live ---
    browser.goto(&format!("{base}/#/clusters")).await.unwrap();
    browser
        .wait_until(
            "return document.querySelectorAll('#clusters-table tr[data-connection=Connected]').length === 3",
            WAIT,
        )
        .await
        .unwrap();
    browser
        .eval("window.__sameDocument = true; return true")
        .await
        .unwrap();
    fleet.freeze_spoke("cluster-3").unwrap();
    browser
        .wait_until(
            "return document.querySelector('#clusters-table tr[data-cluster=\"cluster-3\"]').dataset.connection === 'Stale' \
             && window.__sameDocument === true",
            WAIT,
        )
        .await
        .unwrap();
    // App counts per cluster come from ListClusters.
    browser
        .wait_until(
            "return [...document.querySelectorAll('#clusters-table a.app-count')].map(a => a.textContent).join() === '1,1,1'",
            WAIT,
        )
        .await
        .unwrap();
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "clusters").await.unwrap();
    // Its apps are shown with the cluster's state, not as plainly Healthy.
    browser
        .goto(&format!("{base}/#/apps?cluster=cluster-3"))
        .await
        .unwrap();
    browser.wait_until(&rows_js(1), WAIT).await.unwrap();
    let cell = browser
        .eval("return document.querySelector('#apps-table tbody tr').textContent")
        .await
        .unwrap();
    assert!(cell.as_str().unwrap().contains("Stale"), "{cell}");
    // Its health counts as Unknown (invariant 5), the last report beside it:
    // in the list, on the app's page and in the overview's counts.
    assert!(
        cell.as_str().unwrap().contains("Unknown (last: Healthy)"),
        "{cell}"
    );
    let stale_app = browser
        .eval("return document.querySelector('#apps-table tbody tr').dataset.app")
        .await
        .unwrap();
    let stale_app = stale_app.as_str().unwrap().to_owned();
    browser
        .goto(&format!("{base}/#/apps/{stale_app}"))
        .await
        .unwrap();
    browser
        .wait_until(
            "const b = document.querySelector('#app-health .badge'); \
             return !!b && b.dataset.status === 'Unknown' \
             && document.querySelector('#app-health').textContent.includes('last: Healthy')",
            WAIT,
        )
        .await
        .unwrap();
    let counts = fleet
        .client()
        .count_applications(v1::CountApplicationsRequest {
            filter: Some(v1::ApplicationFilter {
                clusters: vec!["cluster-3".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let unknown = counts
        .by_health
        .iter()
        .find(|b| b.key == "Unknown")
        .map_or(0, |b| b.count);
    assert!(counts.total >= 1, "{counts:?}");
    assert_eq!(unknown, counts.total, "{counts:?}");
    // The cluster's page lists its apps (not "[object HTMLTableElement]").
    browser
        .goto(&format!("{base}/#/clusters/cluster-3"))
        .await
        .unwrap();
    browser.wait_for("#cluster-connection", WAIT).await.unwrap();
    browser
        .wait_text("#cluster-apps-status", WAIT, |t| t == "1 application")
        .await
        .unwrap();
    let row = browser
        .text("#cluster-apps tbody tr")
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.contains("default/cluster-3.nginx") && row.contains("Unknown (last: Healthy)"),
        "{row}"
    );
    assert!(
        !browser
            .text("#main")
            .await
            .unwrap()
            .unwrap()
            .contains("[object")
    );
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "cluster").await.unwrap();
    fleet.thaw_spoke("cluster-3").unwrap();

    // --- a forged request (no CSRF header, as a cross-site form would send) is refused ---
    let forged = "const r = new XMLHttpRequest(); \
        r.open('POST', '/api/v1/apps/default/cluster-1.nginx/sync', false); \
        r.setRequestHeader('Content-Type', 'application/json'); r.send('{}'); return r.status";
    assert_eq!(browser.eval(forged).await.unwrap(), 403);

    // --- a set evaluated at cluster-3's spoke: its apps are created at the edge, read-only here ---
    // The application sets page is open while the set is applied: its row and
    // its generated count arrive live, without a reload.
    browser.goto(&format!("{base}/#/appsets")).await.unwrap();
    browser
        .wait_for("#appsets-table tr[data-appset=\"default/nginx\"]", WAIT)
        .await
        .unwrap();
    browser
        .eval("document.querySelector('#appsets-table').dataset.loaded = 'before'; return true")
        .await
        .unwrap();
    let yaml = repo::fixture_files()
        .into_iter()
        .find(|(path, _)| path == "appsets/cluster-addons.yaml")
        .map(|(_, bytes)| {
            String::from_utf8_lossy(bytes).replace(repo::PLACEHOLDER_REPO_URL, fleet.repo().url())
        })
        .unwrap();
    fleet
        .client()
        .apply_manifests(v1::ApplyManifestsRequest {
            yaml,
            // One set for two clusters: each spoke generates its own three apps.
            scope: "clusters:cluster-2,cluster-3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    fleet
        .wait_apps_exist(
            &[
                "guestbook@cluster-2".to_owned(),
                "minecraft@cluster-2".to_owned(),
                "nginx@cluster-2".to_owned(),
                "guestbook@cluster-3".to_owned(),
                "minecraft@cluster-3".to_owned(),
                "nginx@cluster-3".to_owned(),
            ],
            WAIT,
        )
        .await
        .unwrap();
    let addons_row = "#appsets-table tr[data-appset=\"default/cluster-addons\"]";
    browser.wait_for(addons_row, WAIT).await.unwrap();
    browser
        .wait_until(
            &format!(
                "return document.querySelector({addons_row:?}).querySelector('a.generated').textContent === '6'"
            ),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("return document.querySelector('#appsets-table').dataset.loaded")
            .await
            .unwrap(),
        "before",
        "the new set's row arrived in the page that was open (no reload)"
    );
    let row = browser
        .eval(&format!(
            "const r = document.querySelector({addons_row:?}); \
             return [r.dataset.scope, r.textContent, r.querySelector('a.generated').textContent]"
        ))
        .await
        .unwrap();
    assert_eq!(row[0], "clusters:cluster-2,cluster-3", "{row}");
    assert_eq!(row[2], "6", "the apps both spokes reported: {row}");
    let text = row[1].as_str().unwrap();
    assert!(
        text.contains("the spokes of cluster-2, cluster-3"),
        "{text}"
    );
    assert!(
        text.contains("git directories deploy/clusters/cluster-3/*"),
        "{text}"
    );
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "appsets").await.unwrap();
    // The set's page counts its apps per cluster and lists every cluster's.
    browser
        .goto(&format!("{base}/#/appsets/default/cluster-addons"))
        .await
        .unwrap();
    browser
        .wait_until(
            "const p = document.querySelector('#appset-per-cluster'); \
             return !!p && p.textContent === 'cluster-2: 3, cluster-3: 3' \
               && document.querySelectorAll('#generated-table tbody tr').length === 6",
            WAIT,
        )
        .await
        .unwrap();
    browser
        .goto(&format!("{base}/#/apps/default/guestbook@cluster-3"))
        .await
        .unwrap();
    browser.wait_for("#owner-link", WAIT).await.unwrap();
    let owner = browser
        .eval("return document.querySelector('#app-owner').textContent")
        .await
        .unwrap();
    assert_eq!(
        owner,
        "Created at the edge by ApplicationSet default/cluster-addons (cluster-3's spoke)"
    );
    browser.wait_for("#app-readonly", WAIT).await.unwrap();
    // Its cluster is the set's: the spoke's own cluster.
    browser
        .wait_for("#tab-content a[href=\"#/clusters/cluster-3\"]", WAIT)
        .await
        .unwrap();
    // Commands are still offered: the API allows them for autonomous apps.
    browser.wait_for("#sync-button", WAIT).await.unwrap();
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "autonomous").await.unwrap();

    // --- a viewer sees no Sync button, and the hub refuses the call anyway ---
    fleet
        .client()
        .create_user(v1::CreateUserRequest {
            name: "vic".into(),
            password: "viewer-password-1".into(),
            admin: false,
            roles: vec![v1::ProjectRole {
                project: "default".into(),
                role: v1::ProjectRoleKind::Viewer as i32,
            }],
        })
        .await
        .unwrap();
    browser
        .eval("document.querySelector('#sign-out').click(); return true")
        .await
        .unwrap();
    browser
        .wait_for("input[name=username]", WAIT)
        .await
        .unwrap();
    sign_in(&browser, "vic", "viewer-password-1").await;
    browser.goto(&app_url).await.unwrap();
    browser.wait_for("#app-sync .badge", WAIT).await.unwrap();
    let buttons = browser
        .eval("return document.querySelectorAll('#sync-button, #refresh-button, #delete-button').length")
        .await
        .unwrap();
    assert_eq!(buttons, 0, "a viewer is offered no Sync, Refresh or Delete");
    let sync = "const r = new XMLHttpRequest(); \
        r.open('POST', '/api/v1/apps/default/cluster-1.nginx/sync', false); \
        r.setRequestHeader('Content-Type', 'application/json'); \
        r.setRequestHeader('X-Edgecd-Csrf', '1'); r.send('{}'); \
        return [r.status, JSON.parse(r.responseText).code]";
    assert_eq!(
        browser.eval(sync).await.unwrap(),
        serde_json::json!([403, "permission_denied"])
    );
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "viewer").await.unwrap();

    browser.close().await.unwrap();
    fleet.shutdown().await;
}
