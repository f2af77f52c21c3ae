//! Unit tests of the API edge: store-error mapping, authorization scoping of list filters, offset pages.

use edgecd_core::access::{AuthMethod, Grant};
use edgecd_core::project::{ProjectRole, ProjectSpec, RoleBinding};

use super::apps::scope_filter;
use super::clusters::offset_page;
use super::*;
use crate::store::AppFilter;

#[test]
fn not_found_names_the_object() {
    let status = store_error(
        StoreError::NotFound { what: "row".into() },
        "application team-a/nginx",
    );
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "application team-a/nginx not found");
}

#[test]
fn conflicts_abort_and_duplicates_already_exist() {
    let status = store_error(
        StoreError::Conflict {
            what: "x".into(),
            expected: 3,
            actual: 4,
        },
        "application a/b",
    );
    assert_eq!(status.code(), tonic::Code::Aborted);
    assert!(status.message().contains("expected version 3, found 4"));
    let status = store_error(StoreError::AlreadyExists { what: "x".into() }, "project p");
    assert_eq!(status.code(), tonic::Code::AlreadyExists);
    assert_eq!(status.message(), "project p already exists");
    let status = store_error(
        StoreError::InUse {
            what: "x".into(),
            reason: "apps target it".into(),
        },
        "cluster c",
    );
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "cluster c is still referenced: apps target it"
    );
}

#[test]
fn driver_errors_never_reach_the_client() {
    let secret = "password authentication failed for user hub at 10.0.0.7";
    let status = store_error(
        StoreError::Unavailable(sqlx::Error::Protocol(secret.into())),
        "applications",
    );
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(!status.message().contains("10.0.0.7"));
    assert_eq!(
        status
            .metadata()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let status = store_error(
        StoreError::Database(sqlx::Error::Protocol(secret.into())),
        "applications",
    );
    assert_eq!(status.code(), tonic::Code::Internal);
    assert!(!status.message().contains("password"));
    let status = store_error(StoreError::InvalidCursor, "applications");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[test]
fn admins_see_every_project() {
    let mut filter = AppFilter::default();
    assert!(scope_filter(&mut filter, None));
    assert!(filter.projects.is_empty());
}

#[test]
fn readers_are_scoped_to_their_projects_in_the_query() {
    let readable = vec!["team-a".to_owned(), "team-b".to_owned()];
    let mut filter = AppFilter::default();
    assert!(scope_filter(&mut filter, Some(readable.clone())));
    assert_eq!(filter.projects, readable);

    // A requested project outside the readable set is dropped...
    let mut filter = AppFilter {
        projects: vec!["team-a".into(), "team-c".into()],
        ..AppFilter::default()
    };
    assert!(scope_filter(&mut filter, Some(readable.clone())));
    assert_eq!(filter.projects, vec!["team-a".to_owned()]);

    // ... and if nothing is left, nothing matches (no query at all).
    let mut filter = AppFilter {
        projects: vec!["team-c".into()],
        ..AppFilter::default()
    };
    assert!(!scope_filter(&mut filter, Some(readable)));
    let mut filter = AppFilter::default();
    assert!(!scope_filter(&mut filter, Some(vec![])));
}

#[tokio::test]
async fn readable_projects_follow_bindings_and_grants() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store: Arc<dyn Store> = Arc::new(
        crate::store::SqliteStore::open(&dir.path().join("hub.db"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let bound = ProjectSpec {
        roles: vec![RoleBinding {
            role: ProjectRole::Viewer,
            users: vec!["vic".into()],
            groups: vec![],
        }],
        ..ProjectSpec::default()
    };
    for (name, spec) in [("team-a", &bound), ("team-b", &ProjectSpec::default())] {
        store
            .create_project(name, spec)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let metrics = Arc::new(Metrics::new(&crate::link::LinkCounters::default()));
    let api = HubApi::new(
        ApiConfig::default(),
        Arc::clone(&store),
        Arc::new(crate::access::OpenAccess),
        metrics,
    );
    let call = |principal: Principal| Call {
        method: "Test",
        principal,
        peer: String::new(),
        bearer: None,
        trace: None,
        relayed: false,
        started: Instant::now(),
        _permit: None,
    };
    let vic = Principal {
        subject: "vic".into(),
        groups: vec![],
        admin: false,
        grants: vec![],
        method: AuthMethod::Password,
        on_behalf_of: None,
    };
    let readable = api
        .projects_with(&call(vic.clone()), ProjectRole::Viewer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(readable, Some(vec!["team-a".to_owned()]));
    let operable = api
        .projects_with(&call(vic.clone()), ProjectRole::Deployer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(operable, Some(vec![]));
    let token = Principal {
        subject: "token:t1".into(),
        grants: vec![Grant {
            project: "team-b".into(),
            role: ProjectRole::Deployer,
        }],
        method: AuthMethod::ApiToken,
        ..vic.clone()
    };
    let operable = api
        .projects_with(&call(token), ProjectRole::Deployer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(operable, Some(vec!["team-b".to_owned()]));
    // Authorization of a single project says who and what.
    let denied = api
        .authorize(&call(vic), Action::Operate, "team-a")
        .await
        .err()
        .unwrap_or_else(|| panic!("vic may not operate"));
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        "vic may not operate (sync, refresh, rollback, terminate) in project team-a"
    );
}

#[test]
fn offset_pages_walk_a_bounded_list() {
    let items: Vec<u32> = (0..5).collect();
    let (page, next) = offset_page(items.clone(), 2, "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((page, next.as_str()), (vec![0, 1], "o:2"));
    let (page, next) = offset_page(items.clone(), 2, "o:4").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((page, next.as_str()), (vec![4], ""));
    assert!(offset_page(items, 2, "garbage").is_err());
}
