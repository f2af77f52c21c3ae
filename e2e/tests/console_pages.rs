//! Browser tests that read what every console page shows (numbers, names, rows), against a dev fleet of 3 clusters and 9 apps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use edgecd_e2e::dev::{Fleet, FleetConfig};
use edgecd_proto::v1;
use edgecd_testkit::browser::Browser;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Where screenshots go: `EDGECD_SCREENSHOTS` (the docs use `docs/console`)
/// or a directory under the temp dir.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("EDGECD_SCREENSHOTS").map_or_else(
        || std::env::temp_dir().join("edgecd-console-screenshots"),
        PathBuf::from,
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
        .wait_for("input[name=username]", WAIT)
        .await
        .unwrap();
    browser
        .eval(&format!(
            "document.querySelector('input[name=username]').value = {user:?}; \
             document.querySelector('input[name=password]').value = {password:?}; \
             document.querySelector('form button[type=submit]').click(); return true"
        ))
        .await
        .unwrap();
    browser
        .wait_text("#whoami", WAIT, |t| t == user)
        .await
        .unwrap();
}

/// Wait until `js` returns true; on a timeout, fail showing what the page says.
async fn wait(browser: &Browser, js: &str) {
    if let Err(e) = browser.wait_until(js, WAIT).await {
        let page = browser
            .eval("return document.querySelector('#main') ? document.querySelector('#main').innerText : document.body.innerText")
            .await
            .unwrap_or_default();
        let errors = browser
            .eval("return window.__errors || []")
            .await
            .unwrap_or_default();
        panic!(
            "{e}\n--- the page shows ---\n{}\n--- script errors ---\n{errors}",
            page.as_str().unwrap_or_default()
        );
    }
}

/// The apps table's status line once the page for `hash` is drawn.
async fn apps_status(browser: &Browser, expected: &str) {
    browser
        .wait_text("#apps-status", WAIT, |t| t == expected)
        .await
        .unwrap();
}

/// Row keys (`project/name`) of the apps table.
async fn app_rows(browser: &Browser) -> Vec<String> {
    let rows = browser
        .eval(
            "return [...document.querySelectorAll('#apps-table tbody tr')].map(r => r.dataset.app)",
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

async fn hash(browser: &Browser) -> String {
    browser
        .eval("return location.hash")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_console_page_shows_the_fleet() {
    let fleet = Fleet::start(
        FleetConfig {
            // 3 nginx apps (manual sync) and 2 generated apps per cluster (automated).
            apps_per_cluster: 2,
            stale_after: Duration::from_secs(4),
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
    browser.goto(&format!("{base}/#/overview")).await.unwrap();
    sign_in(&browser, "admin", fleet.admin_password()).await;
    // Script errors are kept for the failure messages (the console stays one document: hash routes).
    browser
        .eval(
            "window.__errors = []; \
             window.addEventListener('error', e => window.__errors.push(String(e.message))); \
             window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason && e.reason.stack || e.reason))); \
             return true",
        )
        .await
        .unwrap();

    // --- overview: 9 apps, all Healthy and Synced; 3 clusters, all Connected ---
    wait(
        &browser,
        "const c = document.querySelector('#counts .card[data-health=Healthy] .n'); return !!c && c.textContent === '9'",
    )
    .await;
    assert_eq!(
        browser.text("#counts .card .n").await.unwrap().as_deref(),
        Some("9"),
        "the Applications card counts every app"
    );
    assert_eq!(
        browser
            .text("#counts .card[data-sync=Synced] .n")
            .await
            .unwrap()
            .as_deref(),
        Some("9")
    );
    assert_eq!(
        browser
            .text("#cluster-counts .card .n")
            .await
            .unwrap()
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        browser
            .text("#cluster-counts .card[data-connection=Connected] .n")
            .await
            .unwrap()
            .as_deref(),
        Some("3")
    );

    // --- applications: pages of 4 say where they are, on Next, Back, Previous and a copied link ---
    browser
        .goto(&format!("{base}/#/apps?limit=4"))
        .await
        .unwrap();
    apps_status(&browser, "9 applications, showing 1–4").await;
    assert_eq!(
        app_rows(&browser).await,
        [
            "default/cluster-1.gen-1",
            "default/cluster-1.gen-2",
            "default/cluster-1.nginx",
            "default/cluster-2.gen-1"
        ]
    );
    browser.click("#next-page").await.unwrap();
    apps_status(&browser, "9 applications, showing 5–8").await;
    assert!(hash(&browser).await.contains("page=2"));
    assert_eq!(app_rows(&browser).await[0], "default/cluster-2.gen-2");
    browser.click("#next-page").await.unwrap();
    apps_status(&browser, "9 applications, showing 9–9").await;
    assert_eq!(app_rows(&browser).await, ["default/cluster-3.nginx"]);
    let page_3 = hash(&browser).await;
    assert!(page_3.contains("page=3"), "{page_3}");
    // Back: the page before, with its own range.
    browser.back().await.unwrap();
    apps_status(&browser, "9 applications, showing 5–8").await;
    // Previous from page 2: the first page.
    browser.click("#prev-page").await.unwrap();
    apps_status(&browser, "9 applications, showing 1–4").await;
    // A copied link to page 3, opened in a fresh tab (nothing remembered): the right range
    // and total; its previous page is unknown here, the first page is offered.
    browser
        .eval("sessionStorage.clear(); return true")
        .await
        .unwrap();
    browser.goto(&format!("{base}/{page_3}")).await.unwrap();
    browser.reload().await.unwrap();
    apps_status(&browser, "9 applications, showing 9–9").await;
    assert_eq!(
        browser
            .eval("return [document.querySelector('#prev-page').disabled, document.querySelector('#first-page').disabled]")
            .await
            .unwrap(),
        json!([true, false])
    );
    browser.click("#first-page").await.unwrap();
    apps_status(&browser, "9 applications, showing 1–4").await;
    // One match is "1 application".
    browser
        .goto(&format!("{base}/#/apps?cluster=cluster-2&search=nginx"))
        .await
        .unwrap();
    apps_status(&browser, "1 application, showing 1–1").await;

    // --- multi-select: Refresh two apps, then Sync every app of the page, each after a confirmation with the count ---
    browser.goto(&format!("{base}/#/apps")).await.unwrap();
    apps_status(&browser, "9 applications, showing 1–9").await;
    browser
        .click("#apps-table tr[data-app=\"default/cluster-1.gen-1\"] input.select")
        .await
        .unwrap();
    browser
        .click("#apps-table tr[data-app=\"default/cluster-2.gen-2\"] input.select")
        .await
        .unwrap();
    browser
        .wait_text("#bulk-count", WAIT, |t| t == "2 applications selected")
        .await
        .unwrap();
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "bulk").await.unwrap();
    browser.click("#bulk-refresh").await.unwrap();
    browser
        .wait_text("#bulk-confirm-count", WAIT, |t| {
            t == "Refresh 2 applications?"
        })
        .await
        .unwrap();
    assert_eq!(
        browser.texts("#bulk-dialog .bulk-list li").await.unwrap(),
        ["default/cluster-1.gen-1", "default/cluster-2.gen-2"]
    );
    browser.click("#bulk-dialog-confirm").await.unwrap();
    browser
        .wait_text("#bulk-result .toast-text", WAIT, |t| {
            t == "Refresh queued for 2 applications"
        })
        .await
        .unwrap();
    // The hub queued one refresh for each of the two, and none for the others.
    for (name, expected) in [
        ("cluster-1.gen-1", true),
        ("cluster-2.gen-2", true),
        ("cluster-1.gen-2", false),
    ] {
        let commands = fleet
            .client()
            .list_commands(v1::ListCommandsRequest {
                app: Some(v1::AppRef {
                    project: "default".into(),
                    name: name.into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        let refreshed = commands.items.iter().any(|c| {
            matches!(
                c.command.as_ref().and_then(|c| c.kind.as_ref()),
                Some(v1::command::Kind::Refresh(_))
            )
        });
        assert_eq!(refreshed, expected, "{name}: {commands:?}");
    }
    assert_eq!(
        browser
            .eval("return document.querySelector('#bulk-bar').hidden")
            .await
            .unwrap(),
        true,
        "the selection is cleared once the command is queued"
    );
    browser.click("#select-all").await.unwrap();
    browser
        .wait_text("#bulk-count", WAIT, |t| t == "9 applications selected")
        .await
        .unwrap();
    browser.click("#bulk-sync").await.unwrap();
    browser
        .wait_text("#bulk-confirm-count", WAIT, |t| t == "Sync 9 applications?")
        .await
        .unwrap();
    // Sync's options are offered for the bulk sync too.
    browser
        .wait_for("#bulk-dialog input[name=prune]", WAIT)
        .await
        .unwrap();
    browser.click("#bulk-dialog-confirm").await.unwrap();
    browser
        .wait_text("#bulk-result .toast-text", WAIT, |t| {
            t == "Sync queued for 9 applications"
        })
        .await
        .unwrap();

    // --- the app page: a resource tree with each node's own health, sync and images ---
    let app_url = format!("{base}/#/apps/default/cluster-1.nginx");
    browser.goto(&format!("{app_url}/tree")).await.unwrap();
    let deployment = "#resource-tree li[data-kind=Deployment]";
    wait(
        &browser,
        &format!(
            "const d = document.querySelector({deployment:?}); \
                 return !!d && d.dataset.health === 'Healthy' && d.dataset.sync === 'Synced'"
        ),
    )
    .await;
    let node = browser
        .text(&format!("{deployment} > button.node"))
        .await
        .unwrap()
        .unwrap();
    assert!(node.contains("nginx/nginx"), "{node}");
    assert!(
        node.contains("Healthy") && node.contains("Synced"),
        "{node}"
    );
    assert!(node.contains("nginx:1.19.0"), "the node's images: {node}");
    let kinds = browser
        .eval("return [...document.querySelectorAll('#resource-tree li')].map(l => l.dataset.kind)")
        .await
        .unwrap();
    let kinds: Vec<String> = serde_json::from_value(kinds).unwrap();
    // The Service beside it; the Deployment's ReplicaSet (replicas 3/3) and its Pods (Running) under it.
    assert!(
        kinds.contains(&"Service".to_owned())
            && kinds.contains(&"ReplicaSet".to_owned())
            && kinds.iter().filter(|k| *k == "Pod").count() == 3,
        "{kinds:?}"
    );
    let replica_set = browser
        .text("#resource-tree li[data-kind=ReplicaSet] > button.node")
        .await
        .unwrap()
        .unwrap();
    assert!(replica_set.contains("replicas 3/3"), "{replica_set}");
    let pod = browser
        .text("#resource-tree li[data-kind=Pod] > button.node")
        .await
        .unwrap()
        .unwrap();
    assert!(pod.contains("Running") && pod.contains("Healthy"), "{pod}");
    assert_eq!(
        browser
            .text("#tree-summary")
            .await
            .unwrap()
            .unwrap()
            .split(':')
            .next()
            .map(str::to_owned),
        Some(format!("{} resources", kinds.len()))
    );
    // Click the Deployment: its diff (none: synced), its desired manifest and its events.
    browser
        .click(&format!("{deployment} > button.node"))
        .await
        .unwrap();
    browser
        .wait_text("#details-title", WAIT, |t| t == "Deployment nginx/nginx")
        .await
        .unwrap();
    browser
        .wait_text("#details-body", WAIT, |t| {
            t.contains("No difference: the live object matches git.")
        })
        .await
        .unwrap();
    let live = browser
        .text("#details-live-managed")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(live.contains("nginx:1.19.0"), "{live}");
    let url = hash(&browser).await;
    assert!(
        url.contains("resource=apps%2FDeployment%2Fnginx%2Fnginx"),
        "the selected resource is in the URL: {url}"
    );
    clear_toasts(&browser).await;
    browser
        .screenshot(&shots, "resource-details")
        .await
        .unwrap();
    browser.click("#details-tab-desired").await.unwrap();
    let desired = browser
        .wait_text("#details-body", WAIT, |t| t.contains("kind: Deployment"))
        .await
        .unwrap();
    assert!(desired.contains("name: nginx"), "{desired}");
    assert!(
        !desired.contains("kind: Service"),
        "only the Deployment: {desired}"
    );
    browser.click("#details-tab-events").await.unwrap();
    browser
        .wait_for("#details-events, #details-no-events", WAIT)
        .await
        .unwrap();
    // Read from the cluster now, through the spoke: the live manifest, and the logs of the Deployment's pods.
    browser.click("#details-tab-live").await.unwrap();
    let live = browser
        .wait_text("#details-body", WAIT, |t| t.contains("kind: Deployment"))
        .await
        .unwrap();
    assert!(live.contains("Read from the cluster just now"), "{live}");
    assert!(!live.contains("managedFields"), "{live}");
    browser.click("#details-tab-logs").await.unwrap();
    wait(
        &browser,
        "const pre = document.querySelector('#details-logs'); \
         return !!pre && pre.textContent.includes('started') && pre.textContent.includes('[nginx-')",
    )
    .await;
    // Follow: new lines arrive in the open page; the search keeps only matching lines.
    browser
        .eval("document.querySelector('#logs-follow').click(); return true")
        .await
        .unwrap();
    wait(
        &browser,
        "const pre = document.querySelector('#details-logs'); return !!pre && pre.textContent.includes(' tick ')",
    )
    .await;
    browser
        .eval("const s = document.querySelector('#logs-search'); s.value = 'tick'; s.dispatchEvent(new Event('input')); return true")
        .await
        .unwrap();
    wait(
        &browser,
        "const spans = [...document.querySelectorAll('#details-logs span')]; \
         return spans.length > 0 && spans.every(s => s.textContent.includes('tick'))",
    )
    .await;
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "logs").await.unwrap();
    // Leaving the tab closes the follow, down to the spoke's request to its API server.
    let cluster1 = fleet.emulator().unwrap().clusters()[0].store().clone();
    // One follow per pod of the Deployment.
    assert!(cluster1.open_log_follows() >= 1);
    browser.click("#details-tab-events").await.unwrap();
    browser
        .wait_for("#details-events, #details-no-events", WAIT)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while cluster1.open_log_follows() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the console's follow was not closed at the spoke"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The terminal: a shell in the Deployment's first running pod, through the console's WebSocket to ExecPod
    // (exec opened to the project's deployers first: it is off by default).
    let client = fleet.client();
    let mut project = client
        .get_project(v1::GetProjectRequest {
            name: "default".into(),
        })
        .await
        .unwrap();
    project.exec_role = v1::ProjectRoleKind::Deployer as i32;
    client
        .update_project(v1::UpdateProjectRequest {
            project: Some(project),
            expected_version: 0,
        })
        .await
        .unwrap();
    browser.click("#details-tab-terminal").await.unwrap();
    browser
        .wait_text("#terminal-status", WAIT, |t| {
            t.starts_with("Connected: nginx-")
        })
        .await
        .unwrap();
    wait(
        &browser,
        "const rows = document.querySelector('#details-terminal .xterm-rows'); return !!rows && rows.textContent.includes('$')",
    )
    .await;
    for key in "echo hi-from-the-browser".chars() {
        browser.press_key(key).await.unwrap();
    }
    browser.press_key('\u{E007}').await.unwrap();
    // The shell echoes the line as typed, then its output: the marker twice.
    wait(
        &browser,
        "const rows = document.querySelector('#details-terminal .xterm-rows'); \
         return !!rows && rows.textContent.split('hi-from-the-browser').length >= 3",
    )
    .await;
    assert_eq!(cluster1.open_execs(), 1);
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "terminal").await.unwrap();
    // Leaving the tab closes the terminal, down to the command at the spoke.
    browser.click("#details-tab-events").await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while cluster1.open_execs() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the console's terminal was not closed at the spoke"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The graph view: the application, its resources, their children; clicking a box selects it.
    browser.click("#view-graph").await.unwrap();
    wait(
        &browser,
        "const g = document.querySelector('#resource-graph g[data-kind=Deployment]'); \
             return !!g && g.dataset.health === 'Healthy' && g.classList.contains('selected') \
               && !!document.querySelector('#resource-graph g[data-root]') \
               && document.querySelectorAll('#resource-graph path.edge').length >= 3",
    )
    .await;
    assert!(hash(&browser).await.contains("view=graph"));
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "resource-graph").await.unwrap();
    browser
        .eval("document.querySelector('#resource-graph g[data-kind=Service]').dispatchEvent(new MouseEvent('click', {bubbles: true})); return true")
        .await
        .unwrap();
    browser
        .wait_text("#details-title", WAIT, |t| t == "Service nginx/nginx")
        .await
        .unwrap();

    // --- Sync opens a dialog with Argo CD's options and the app's resources ---
    browser.goto(&app_url).await.unwrap();
    browser.wait_for("#sync-button", WAIT).await.unwrap();
    browser.click("#sync-button").await.unwrap();
    browser.wait_for("#sync-dialog[open]", WAIT).await.unwrap();
    let options = browser
        .eval("return [...document.querySelectorAll('#sync-dialog input[type=checkbox]:not([name=resource])')].map(i => i.name)")
        .await
        .unwrap();
    assert_eq!(
        options,
        json!(["prune", "dryRun", "force", "applyOutOfSyncOnly"])
    );
    let picks = browser
        .texts("#sync-resources label.resource-pick")
        .await
        .unwrap();
    assert!(
        picks.iter().any(|p| p.contains("Deployment nginx/nginx"))
            && picks.iter().any(|p| p.contains("Service nginx/nginx")),
        "{picks:?}"
    );
    browser.screenshot(&shots, "sync-dialog").await.unwrap();
    // Cancel issues nothing.
    browser.click("#sync-dialog-cancel").await.unwrap();
    wait(&browser, "return !document.querySelector('#sync-dialog')").await;
    // A dry run of the whole app: the toast follows the command to its end (never stuck on Pending).
    browser.click("#sync-button").await.unwrap();
    browser.wait_for("#sync-dialog[open]", WAIT).await.unwrap();
    browser
        .click("#sync-dialog input[name=dryRun]")
        .await
        .unwrap();
    browser.click("#sync-dialog-confirm").await.unwrap();
    wait(&browser, "const t = [...document.querySelectorAll('#toast .toast')].find(t => t.textContent.startsWith('Sync of default/cluster-1.nginx')); \
             return !!t && ['Succeeded', 'Failed'].includes(t.dataset.state)").await;

    // Only the picked resource, forced and out-of-sync only: the command carries exactly that.
    browser.click("#sync-button").await.unwrap();
    browser.wait_for("#sync-dialog[open]", WAIT).await.unwrap();
    browser
        .click("#sync-resources input[data-kind=Deployment]")
        .await
        .unwrap();
    browser
        .click("#sync-dialog input[name=force]")
        .await
        .unwrap();
    browser
        .click("#sync-dialog input[name=applyOutOfSyncOnly]")
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("return document.querySelector('#sync-dialog input[name=which][value=some]').checked")
            .await
            .unwrap(),
        true,
        "picking a resource selects 'Only the selected ones'"
    );
    browser.click("#sync-dialog-confirm").await.unwrap();
    wait(&browser, "return !document.querySelector('#sync-dialog')").await;
    let commands = fleet
        .client()
        .list_commands(v1::ListCommandsRequest {
            app: Some(v1::AppRef {
                project: "default".into(),
                name: "cluster-1.nginx".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let selective = commands
        .items
        .iter()
        .filter_map(|c| match c.command.as_ref().and_then(|c| c.kind.as_ref()) {
            Some(v1::command::Kind::Sync(sync)) if !sync.resources.is_empty() => Some(sync.clone()),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(selective.len(), 1, "{commands:?}");
    let sync = &selective[0];
    assert_eq!(
        sync.resources
            .iter()
            .map(|r| format!("{}/{} {}/{}", r.group, r.kind, r.namespace, r.name))
            .collect::<Vec<_>>(),
        ["apps/Deployment nginx/nginx"]
    );
    assert!(sync.force && sync.apply_out_of_sync_only && !sync.prune && !sync.dry_run);

    // --- history: the current entry offers no rollback ---
    browser.goto(&format!("{app_url}/history")).await.unwrap();
    browser
        .wait_for("#history tbody tr[data-current=true]", WAIT)
        .await
        .unwrap();
    let current = browser
        .eval("const r = document.querySelector('#history tbody tr[data-current=true]'); return [r.querySelectorAll('button.rollback').length, r.textContent.includes('current')]")
        .await
        .unwrap();
    assert_eq!(current, json!([0, true]));

    // --- a command for an app of a Stale cluster says so when it is queued ---
    fleet.freeze_spoke("cluster-3").unwrap();
    browser
        .goto(&format!("{base}/#/apps/default/cluster-3.nginx"))
        .await
        .unwrap();
    browser
        .wait_for("#app-stale", Duration::from_secs(90))
        .await
        .unwrap();
    browser.click("#refresh-button").await.unwrap();
    wait(&browser, "return [...document.querySelectorAll('#toast .toast')].some(t => t.textContent.startsWith('Refresh of default/cluster-3.nginx') && t.textContent.includes('cluster cluster-3 is Stale'))").await;
    fleet.thaw_spoke("cluster-3").unwrap();

    // --- cluster detail: its apps, by name, with sync and health ---
    browser
        .goto(&format!("{base}/#/clusters/cluster-1"))
        .await
        .unwrap();
    browser
        .wait_text("#cluster-apps-status", WAIT, |t| t == "3 applications")
        .await
        .unwrap();
    let apps = browser
        .eval("return [...document.querySelectorAll('#cluster-apps tbody tr')].map(r => r.dataset.app)")
        .await
        .unwrap();
    assert_eq!(
        apps,
        json!([
            "default/cluster-1.gen-1",
            "default/cluster-1.gen-2",
            "default/cluster-1.nginx"
        ])
    );
    let page = browser.text("#main").await.unwrap().unwrap();
    assert!(!page.contains("[object"), "{page}");

    // --- clusters: natural order, connection and app counts ---
    browser.goto(&format!("{base}/#/clusters")).await.unwrap();
    wait(&browser, "return [...document.querySelectorAll('#clusters-table tbody tr')].map(r => r.dataset.cluster + ':' + r.dataset.connection).join() === 'cluster-1:Connected,cluster-2:Connected,cluster-3:Connected'").await;
    assert_eq!(
        browser.texts("#clusters-table a.app-count").await.unwrap(),
        ["3", "3", "3"]
    );

    // A label selector (as a fleet-scoped set links it): only the matching clusters.
    browser
        .goto(&format!("{base}/#/clusters?selector=region%3Deu"))
        .await
        .unwrap();
    wait(
        &browser,
        "return [...document.querySelectorAll('#clusters-table tbody tr')].map(r => r.dataset.cluster).join() === 'cluster-1,cluster-3'",
    )
    .await;
    assert_eq!(
        browser
            .text("#cluster-selector code")
            .await
            .unwrap()
            .as_deref(),
        Some("region=eu")
    );

    // --- projects: destinations in words, real app counts ---
    browser.goto(&format!("{base}/#/projects")).await.unwrap();
    browser
        .wait_for("#projects-table tr[data-project=default]", WAIT)
        .await
        .unwrap();
    let row = "#projects-table tr[data-project=default]";
    let destinations = browser
        .texts(&format!("{row} td.destinations .destination"))
        .await
        .unwrap();
    assert!(!destinations.is_empty(), "default has destinations");
    for d in &destinations {
        assert!(!d.contains('{') && d.contains("namespace"), "{d}");
    }
    assert_eq!(
        browser
            .text(&format!("{row} td.app-count"))
            .await
            .unwrap()
            .as_deref(),
        Some("9")
    );
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "projects").await.unwrap();

    // --- application sets: nginx generated 3 apps ---
    browser.goto(&format!("{base}/#/appsets")).await.unwrap();
    browser
        .wait_text(
            "#appsets-table tr[data-appset=\"default/nginx\"] a.generated",
            WAIT,
            |t| t == "3",
        )
        .await
        .unwrap();

    // --- events: every row names its object ---
    browser.goto(&format!("{base}/#/events")).await.unwrap();
    wait(
        &browser,
        "return document.querySelectorAll('#events-table tbody tr').length > 0",
    )
    .await;
    let objects = browser
        .texts("#events-table tbody td.object")
        .await
        .unwrap();
    assert!(objects.iter().all(|o| !o.trim().is_empty()), "{objects:?}");
    assert!(
        objects.iter().any(|o| o.starts_with("Application ")),
        "{objects:?}"
    );
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "events").await.unwrap();
    // The app's own Events tab names the object too.
    browser.goto(&format!("{app_url}/events")).await.unwrap();
    browser.wait_for("#events tbody tr", WAIT).await.unwrap();
    let objects = browser.texts("#events tbody td.object").await.unwrap();
    assert!(objects.iter().all(|o| !o.trim().is_empty()), "{objects:?}");

    // --- deployments: the fleet's record (the sets' apps were deployed by automated sync), filtered in the URL ---
    browser
        .goto(&format!("{base}/#/deployments"))
        .await
        .unwrap();
    wait(
        &browser,
        "return document.querySelectorAll('#deployments-table tbody tr[data-result=Succeeded]').length > 0",
    )
    .await;
    let clusters = browser
        .eval("return [...document.querySelectorAll('#deployments-table tbody tr')].map(r => r.dataset.cluster)")
        .await
        .unwrap();
    assert!(
        clusters.as_array().is_some_and(|c| c.len() >= 3),
        "{clusters}"
    );
    let by = browser
        .texts("#deployments-table tbody tr td:nth-child(7)")
        .await
        .unwrap();
    assert!(by.iter().any(|b| b == "automated sync"), "{by:?}");
    let revisions = browser
        .texts("#deployments-table tbody td .revs")
        .await
        .unwrap();
    assert!(revisions.iter().all(|r| r.contains(" → ")), "{revisions:?}");
    clear_toasts(&browser).await;
    browser.screenshot(&shots, "deployments").await.unwrap();
    browser
        .goto(&format!("{base}/#/deployments?cluster=cluster-2"))
        .await
        .unwrap();
    wait(
        &browser,
        "const rows = [...document.querySelectorAll('#deployments-table tbody tr')]; \
         return rows.length > 0 && rows.every(r => r.dataset.cluster === 'cluster-2')",
    )
    .await;
    browser
        .goto(&format!(
            "{base}/#/deployments?result=Failed&cluster=cluster-2"
        ))
        .await
        .unwrap();
    browser
        .wait_text("#deployments-status", WAIT, |t| {
            t == "No deployments match."
        })
        .await
        .unwrap();

    // --- an unknown URL keeps the navigation ---
    browser
        .goto(&format!("{base}/#/no/such/page"))
        .await
        .unwrap();
    browser
        .wait_text("#not-found-path", WAIT, |t| t == "#/no/such/page")
        .await
        .unwrap();
    assert!(
        browser
            .eval("return !!document.querySelector('nav.nav a[href=\"#/apps\"]') && !!document.querySelector('#live')")
            .await
            .unwrap()
            == json!(true)
    );

    // --- "/" focuses the search box; typed in it, it is a "/" ---
    browser.goto(&format!("{base}/#/apps")).await.unwrap();
    apps_status(&browser, "9 applications, showing 1–9").await;
    browser
        .eval("document.activeElement.blur(); document.body.focus(); return true")
        .await
        .unwrap();
    browser.press_key('/').await.unwrap();
    assert_eq!(
        browser
            .eval("return [document.activeElement.name, document.activeElement.value]")
            .await
            .unwrap(),
        json!(["search", ""])
    );
    browser.press_key('/').await.unwrap();
    wait(
        &browser,
        "return document.activeElement.name === 'search' && document.activeElement.value === '/'",
    )
    .await;
    // A page without its own search box: "/" focuses the sidebar's.
    browser.goto(&format!("{base}/#/clusters")).await.unwrap();
    browser
        .wait_for("#clusters-table tbody tr", WAIT)
        .await
        .unwrap();
    browser
        .eval("document.activeElement.blur(); return true")
        .await
        .unwrap();
    browser.press_key('/').await.unwrap();
    assert_eq!(
        browser
            .eval("return document.activeElement.id")
            .await
            .unwrap(),
        "nav-search"
    );

    // --- the sidebar's controls and live indicator stay in view on a long page ---
    let visible = browser
        .eval(
            "const m = document.querySelector('#main'); for (let i = 0; i < 200; i++) { const p = document.createElement('p'); p.textContent = 'row ' + i; m.append(p); } \
             window.scrollTo(0, document.body.scrollHeight); \
             const r = document.querySelector('#nav-controls').getBoundingClientRect(); \
             const l = document.querySelector('#live').getBoundingClientRect(); \
             return [window.scrollY > 0, r.top >= 0 && r.bottom <= window.innerHeight, l.top >= 0 && l.bottom <= window.innerHeight]",
        )
        .await
        .unwrap();
    assert_eq!(visible, json!([true, true, true]));

    // --- natural order where the console sorts ---
    let sorted = browser
        .eval("return import('/js/ui.js').then(m => ['gen-10', 'gen-2', 'gen-1'].sort(m.natural))")
        .await
        .unwrap();
    assert_eq!(sorted, json!(["gen-1", "gen-2", "gen-10"]));

    // --- the JSON API's errors are JSON, naming what is wrong ---
    let errors = browser
        .eval(
            "const call = (method, url, body) => { const r = new XMLHttpRequest(); r.open(method, url, false); \
               r.setRequestHeader('X-Edgecd-Csrf', '1'); r.setRequestHeader('Content-Type', 'application/json'); \
               r.send(body); const j = JSON.parse(r.responseText); return [r.status, j.code, j.message]; }; \
             return [call('GET', '/api/v1/apps?limit=many'), call('POST', '/api/v1/bulk', '{\"kind\": '), \
               call('POST', '/api/v1/bulk', '{\"kind\": \"sync\", \"apps\": []}'), \
               call('GET', '/api/v1/apps?health=Great')]",
        )
        .await
        .unwrap();
    let errors: Vec<(u16, String, String)> = serde_json::from_value(errors).unwrap();
    for (status, code, message) in &errors {
        assert_eq!(
            (*status, code.as_str()),
            (400, "invalid_argument"),
            "{errors:?}"
        );
        assert!(!message.is_empty(), "{errors:?}");
    }
    assert!(errors[0].2.contains("limit"), "{errors:?}");
    assert!(
        errors[2].2.contains("select at least one application"),
        "{errors:?}"
    );
    assert!(errors[3].2.contains("Great"), "{errors:?}");

    // --- delete asks for the app's name, says what cascades, then the app is gone ---
    browser
        .goto(&format!("{base}/#/apps/default/cluster-2.gen-1"))
        .await
        .unwrap();
    browser.wait_for("#delete-button", WAIT).await.unwrap();
    browser.click("#delete-button").await.unwrap();
    browser
        .wait_for("#delete-dialog[open]", WAIT)
        .await
        .unwrap();
    let text = browser.text("#delete-dialog").await.unwrap().unwrap();
    assert!(text.contains("Cascade"), "{text}");
    assert_eq!(
        browser
            .eval("return document.querySelector('#delete-dialog-confirm').disabled")
            .await
            .unwrap(),
        true,
        "nothing is deleted before the name is typed"
    );
    browser
        .eval(
            "const i = document.querySelector('#delete-dialog input[name=confirm-name]'); \
             i.value = 'cluster-2.gen-1'; i.dispatchEvent(new Event('input', {bubbles: true})); return true",
        )
        .await
        .unwrap();
    browser.click("#delete-dialog-confirm").await.unwrap();
    apps_status(&browser, "8 applications, showing 1–8").await;
    assert!(
        !app_rows(&browser)
            .await
            .contains(&"default/cluster-2.gen-1".to_owned())
    );

    browser.close().await.unwrap();
    fleet.shutdown().await;
}
