//! The exact-name filter (`AppFilter::names`, #19): `nginx` selects the hub app `nginx` and every edge app `nginx@<cluster>`, nothing else that starts with `nginx`; and at fleet scale the name and cluster filters are answered from indexes on both backends (`explain_list_apps`: no full scan of `applications`).

use std::collections::BTreeSet;

use edgecd_core::{Health, SyncStatus};
use edgecd_hub::store::*;

use crate::fixtures::*;

fn by_names(names: &[&str]) -> AppFilter {
    AppFilter {
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        ..AppFilter::default()
    }
}

/// Every page of the filter, by name, two rows a page: `project/name` of each row.
async fn names_of(store: &dyn Store, filter: AppFilter) -> BTreeSet<String> {
    let mut query = AppQuery {
        filter,
        sort: AppSort::default(),
        page_size: 2,
        cursor: None,
    };
    let mut out = BTreeSet::new();
    let mut total = None;
    loop {
        let page = store.list_apps(&query).await.unwrap();
        if query.cursor.is_none() {
            total = page.total;
        }
        for row in page.items {
            assert!(out.insert(format!("{}/{}", row.project, row.name)));
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(total, Some(out.len() as u64), "the first page's total");
    out
}

/// Edge apps of `cluster` (`name@cluster`, project `default`) as its spoke reports them, in one batch.
async fn report_edge_apps(store: &dyn Store, cluster: &str, names: &[String]) {
    let batch = StatusBatch {
        reports: names
            .iter()
            .map(|name| {
                autonomous_report(
                    "default",
                    name,
                    cluster,
                    status(SyncStatus::Synced, Health::Healthy, 1),
                )
            })
            .collect(),
        ..StatusBatch::default()
    };
    let outcome = store
        .ingest_status_batch(cluster, &at("e1", 1), &batch)
        .await
        .unwrap();
    assert_eq!(outcome.created as usize, names.len(), "{outcome:?}");
}

/// Hub apps from `(project, name, cluster)`, Synced and Healthy.
async fn import_hub_apps(store: &dyn Store, apps: &[(&str, String, String)]) {
    let apps: Vec<ImportedApp> = apps
        .iter()
        .map(|(project, name, cluster)| ImportedApp {
            app: new_app(project, name, cluster),
            status: Some(status(SyncStatus::Synced, Health::Healthy, 1)),
        })
        .collect();
    assert_eq!(store.import_apps(&apps).await.unwrap(), apps.len() as u64);
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// A hub app `nginx` in two projects, edge apps `nginx@c1` and `nginx@c2`, and names that share
/// the prefix on either side of `@` in byte order (`nginx-ingress`, `nginx.x`, `nginx0`, `nginxa`,
/// `nginxa@c1` after it): only the exact name and its edge apps match.
pub async fn names_select_the_hub_app_and_every_edge_app(store: &dyn Store) {
    store
        .create_project("team", &edgecd_core::project::ProjectSpec::permissive())
        .await
        .unwrap();
    for name in ["c1", "c2"] {
        store.create_cluster(&cluster(name, &[])).await.unwrap();
    }
    let hub: Vec<(&str, String, String)> = [
        ("default", "nginx", "c1"),
        ("team", "nginx", "c2"),
        ("default", "nginx-ingress", "c1"),
        ("default", "nginx.x", "c1"),
        ("default", "nginx0", "c1"),
        ("default", "nginxa", "c1"),
        ("default", "xnginx", "c1"),
        ("default", "guestbook", "c2"),
    ]
    .iter()
    .map(|(p, n, c)| (*p, (*n).to_owned(), (*c).to_owned()))
    .collect();
    import_hub_apps(store, &hub).await;
    let edge = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    report_edge_apps(
        store,
        "c1",
        &edge(&["nginx@c1", "nginx-ingress@c1", "nginxa@c1", "guestbook@c1"]),
    )
    .await;
    report_edge_apps(store, "c2", &edge(&["nginx@c2"])).await;

    let nginx = set(&[
        "default/nginx",
        "team/nginx",
        "default/nginx@c1",
        "default/nginx@c2",
    ]);
    assert_eq!(names_of(store, by_names(&["nginx"])).await, nginx);
    let mut both = nginx.clone();
    both.extend(set(&["default/guestbook", "default/guestbook@c1"]));
    assert_eq!(
        names_of(store, by_names(&["nginx", "guestbook"])).await,
        both
    );
    // An edge app's own name selects it alone; a prefix selects nothing.
    assert_eq!(
        names_of(store, by_names(&["nginx@c1"])).await,
        set(&["default/nginx@c1"])
    );
    assert!(names_of(store, by_names(&["ngin"])).await.is_empty());
    assert_eq!(
        names_of(store, by_names(&["nginx-ingress"])).await,
        set(&["default/nginx-ingress", "default/nginx-ingress@c1"])
    );
    // With other filters: one cluster's, one project's.
    assert_eq!(
        names_of(
            store,
            AppFilter {
                clusters: vec!["c2".into()],
                ..by_names(&["nginx"])
            }
        )
        .await,
        set(&["team/nginx", "default/nginx@c2"])
    );
    assert_eq!(
        names_of(
            store,
            AppFilter {
                projects: vec!["default".into()],
                ..by_names(&["nginx"])
            }
        )
        .await,
        set(&["default/nginx", "default/nginx@c1", "default/nginx@c2"])
    );
    // Counts agree.
    let counts = store.count_apps(&by_names(&["nginx"])).await.unwrap();
    assert_eq!(counts.total, 4);
}

/// A fleet as the #19 scale check sees it, a hundred times over in apps: 100 clusters with
/// `guestbook`, `minecraft` and `nginx` generated at each (`name@cluster`) and 17 more edge apps
/// each, plus a hub app `cluster-N.nginx` per cluster: 2,100 apps.
async fn scale_fleet(store: &dyn Store) {
    let mut hub = Vec::new();
    for c in 1..=100 {
        let name = format!("cluster-{c}");
        store.create_cluster(&cluster(&name, &[])).await.unwrap();
        let mut edge: Vec<String> = ["guestbook", "minecraft", "nginx"]
            .iter()
            .map(|a| format!("{a}@{name}"))
            .collect();
        edge.extend((1..=17).map(|i| format!("addon-{i:02}@{name}")));
        report_edge_apps(store, &name, &edge).await;
        hub.push(("default", format!("{name}.nginx"), name));
    }
    import_hub_apps(store, &hub).await;
}

fn first_page(filter: AppFilter) -> AppQuery {
    AppQuery {
        filter,
        sort: AppSort::default(),
        page_size: 500,
        cursor: None,
    }
}

fn by_cluster(cluster: &str) -> AppFilter {
    AppFilter {
        clusters: vec![cluster.into()],
        ..AppFilter::default()
    }
}

/// The two filters of the scale check return what they should (100 nginx, 21 apps of cluster-42).
async fn scale_answers(store: &dyn Store) {
    let nginx = store
        .list_apps(&first_page(by_names(&["nginx"])))
        .await
        .unwrap();
    assert_eq!(nginx.total, Some(100));
    assert!(nginx.items.iter().all(|a| a.name.starts_with("nginx@")));
    let cluster = store
        .list_apps(&first_page(by_cluster("cluster-42")))
        .await
        .unwrap();
    assert_eq!(cluster.total, Some(21));
}

#[tokio::test]
async fn sqlite_answers_name_and_cluster_filters_from_indexes() {
    let (store, _dir) = crate::sqlite_store().await;
    scale_fleet(&store).await;
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    scale_answers(&store).await;
    // SQLite: a `SEARCH` of `applications a` by an index range, never a `SCAN` of it (a `SCAN a
    // USING INDEX` walks the whole index).
    let cases = [
        (
            "names",
            by_names(&["nginx"]),
            "SEARCH a USING INDEX applications_name (name>? AND name<?)",
        ),
        (
            "cluster",
            by_cluster("cluster-42"),
            "SEARCH a USING INDEX applications_cluster (cluster=?)",
        ),
    ];
    for (what, filter, wanted) in cases {
        let plan = store.explain_list_apps(&first_page(filter)).await.unwrap();
        let text = plan.join("\n");
        eprintln!("{what}:\n{text}");
        assert!(
            plan.iter().any(|line| line.starts_with(wanted)),
            "{what}: no {wanted:?} in\n{text}"
        );
        assert!(
            !plan.iter().any(|line| line.starts_with("SCAN a")),
            "{what}: a scan of applications in\n{text}"
        );
    }
}

#[tokio::test]
async fn postgres_answers_name_and_cluster_filters_from_indexes() {
    let store = crate::pg_store().await;
    scale_fleet(&store).await;
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    scale_answers(&store).await;
    let cases = [
        ("names", by_names(&["nginx"]), "applications_name"),
        ("cluster", by_cluster("cluster-42"), "applications_cluster"),
    ];
    for (what, filter, index) in cases {
        let plan = store.explain_list_apps(&first_page(filter)).await.unwrap();
        let text = plan.join("\n");
        eprintln!("{what}:\n{text}");
        assert!(
            plan.iter().any(|line| line.contains(index)),
            "{what}: {index} is not used in\n{text}"
        );
        assert!(
            !plan
                .iter()
                .any(|line| line.contains("Seq Scan on applications")),
            "{what}: a sequential scan of applications in\n{text}"
        );
    }
}
