//! One typed method per `HubService` call, each mapping failures to [`Error`] with the object it is about.

use secrecy::SecretString;

use super::{Client, Error, Result, app_name};
use crate::v1::*;

/// Defines `Client` methods that forward one request to one RPC.
///
/// `what` computes, from the request, the object named in a NOT_FOUND error.
macro_rules! unary {
    ($(
        $(#[$doc:meta])*
        $name:ident($req:ty) -> $resp:ty, $method:literal, |$r:ident| $what:expr;
    )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $name(&self, request: $req) -> Result<$resp> {
                    let what: Option<String> = { let $r = &request; $what };
                    self.raw()
                        .$name(request)
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(|status| Error::from_status(status, $method, &self.endpoint, what))
                }
            )*
        }
    };
}

/// Defines `Client` methods for RPCs whose request has no fields.
macro_rules! nullary {
    ($(
        $(#[$doc:meta])*
        $name:ident($req:expr) -> $resp:ty, $method:literal;
    )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $name(&self) -> Result<$resp> {
                    self.raw()
                        .$name($req)
                        .await
                        .map(tonic::Response::into_inner)
                        .map_err(|status| Error::from_status(status, $method, &self.endpoint, None))
                }
            )*
        }
    };
}

impl Client {
    /// API tokens of `owner` (admins may name anyone; others only themselves).
    pub async fn list_api_tokens_of(&self, owner: &str) -> Result<ListApiTokensResponse> {
        self.raw()
            .list_api_tokens(ListApiTokensRequest {
                owner: owner.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::from_status(status, "ListApiTokens", &self.endpoint, None))
    }
}

fn named(kind: &str, name: &str) -> Option<String> {
    Some(format!("{kind} {name}"))
}

fn in_project(kind: &str, project: &str, name: &str) -> Option<String> {
    let project = if project.is_empty() {
        "default"
    } else {
        project
    };
    Some(format!("{kind} {project}/{name}"))
}

nullary! {
    /// The hub's version, protocol and login methods (no token needed).
    get_server_info(GetServerInfoRequest {}) -> ServerInfo, "GetServerInfo";
    /// Ends the current session (the token stops working).
    logout(LogoutRequest {}) -> LogoutResponse, "Logout";
    /// Who the token belongs to and what it may do.
    who_am_i(WhoAmIRequest {}) -> UserInfo, "WhoAmI";
    /// Repository credentials (their secrets are never returned).
    list_repositories(ListRepositoriesRequest {}) -> ListRepositoriesResponse, "ListRepositories";
    /// The caller's API tokens.
    list_api_tokens(ListApiTokensRequest::default()) -> ListApiTokensResponse, "ListApiTokens";
    /// Local users.
    list_users(ListUsersRequest {}) -> ListUsersResponse, "ListUsers";
}

unary! {
    /// One page of applications; see [`Client::applications`] for all of them as a stream.
    list_applications(ListApplicationsRequest) -> ListApplicationsResponse, "ListApplications", |_r| None;
    /// Counts of the apps matching a filter, by sync, health, connection and project.
    count_applications(CountApplicationsRequest) -> ApplicationCounts, "CountApplications", |_r| None;
    /// One application with its spec and full status.
    ///
    /// ```no_run
    /// # async fn demo(client: edgecd_proto::client::Client) -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::v1::{AppRef, GetApplicationRequest};
    /// let app = client
    ///     .get_application(GetApplicationRequest { app: Some(AppRef::new("team-a", "nginx")) })
    ///     .await?;
    /// println!("{:?}", app.status.and_then(|s| s.health));
    /// # Ok(())
    /// # }
    /// ```
    get_application(GetApplicationRequest) -> Application, "GetApplication", |r| Some(app_name(r.app.as_ref()));
    /// Creates an application (or updates it with `upsert`).
    create_application(CreateApplicationRequest) -> Application, "CreateApplication", |_r| None;
    /// Updates an application's labels and spec.
    update_application(UpdateApplicationRequest) -> Application, "UpdateApplication", |r| r.meta.as_ref().and_then(|m| in_project("application", &m.project, &m.name));
    /// Deletes an application (and, with `cascade`, its resources in the cluster).
    delete_application(DeleteApplicationRequest) -> DeleteApplicationResponse, "DeleteApplication", |r| Some(app_name(r.app.as_ref()));
    /// The app's live resources as last reported by its spoke.
    get_resource_tree(GetResourceTreeRequest) -> ResourceTreeResponse, "GetResourceTree", |r| Some(app_name(r.app.as_ref()));
    /// The app's sync history.
    list_history(ListHistoryRequest) -> ListHistoryResponse, "ListHistory", |r| Some(app_name(r.app.as_ref()));
    /// Queues a sync; returns at once with the command's status.
    sync_application(SyncApplicationRequest) -> CommandStatus, "SyncApplication", |r| Some(app_name(r.app.as_ref()));
    /// Queues a refresh (re-read git, compare again).
    refresh_application(RefreshApplicationRequest) -> CommandStatus, "RefreshApplication", |r| Some(app_name(r.app.as_ref()));
    /// Queues a rollback to a history entry.
    rollback_application(RollbackApplicationRequest) -> CommandStatus, "RollbackApplication", |r| Some(app_name(r.app.as_ref()));
    /// Stops the app's running operation.
    terminate_operation(TerminateOperationRequest) -> CommandStatus, "TerminateOperation", |r| Some(app_name(r.app.as_ref()));
    /// Live-versus-desired diff, computed by the spoke within the call's deadline.
    get_application_diff(GetApplicationDiffRequest) -> DiffResult, "GetApplicationDiff", |r| Some(app_name(r.app.as_ref()));
    /// The rendered manifests, computed by the spoke within the call's deadline.
    get_application_manifests(GetApplicationManifestsRequest) -> ManifestsResult, "GetApplicationManifests", |r| Some(app_name(r.app.as_ref()));
    /// One command for every app matching a filter.
    bulk_command(BulkCommandRequest) -> BulkCommandResponse, "BulkCommand", |_r| None;
    /// A command's current status.
    get_command(GetCommandRequest) -> CommandStatus, "GetCommand", |r| named("command", &r.command_id);
    /// One page of commands; see [`Client::commands`].
    list_commands(ListCommandsRequest) -> ListCommandsResponse, "ListCommands", |r| r.app.as_ref().map(|a| app_name(Some(a)));
    /// One page of clusters; see [`Client::clusters`].
    list_clusters(ListClustersRequest) -> ListClustersResponse, "ListClusters", |_r| None;
    /// One cluster.
    get_cluster(GetClusterRequest) -> Cluster, "GetCluster", |r| named("cluster", &r.name);
    /// Registers a cluster; the response carries its one-time bootstrap token.
    create_cluster(CreateClusterRequest) -> CreateClusterResponse, "CreateCluster", |r| named("cluster", &r.name);
    /// Updates a cluster's labels, annotations or server URL.
    update_cluster(UpdateClusterRequest) -> Cluster, "UpdateCluster", |r| named("cluster", &r.name);
    /// Removes a cluster from the fleet.
    delete_cluster(DeleteClusterRequest) -> DeleteClusterResponse, "DeleteCluster", |r| named("cluster", &r.name);
    /// Revokes a cluster's certificate: its spoke is refused from now on.
    revoke_cluster(RevokeClusterRequest) -> Cluster, "RevokeCluster", |r| named("cluster", &r.name);
    /// A new bootstrap token for an existing cluster.
    create_bootstrap_token(CreateBootstrapTokenRequest) -> CreateClusterResponse, "CreateBootstrapToken", |r| named("cluster", &r.cluster);
    /// One page of projects; see [`Client::projects`].
    list_projects(ListProjectsRequest) -> ListProjectsResponse, "ListProjects", |_r| None;
    /// One project.
    get_project(GetProjectRequest) -> Project, "GetProject", |r| named("project", &r.name);
    /// Creates a project (or updates it with `upsert`).
    create_project(CreateProjectRequest) -> Project, "CreateProject", |_r| None;
    /// Updates a project.
    update_project(UpdateProjectRequest) -> Project, "UpdateProject", |r| r.project.as_ref().and_then(|p| named("project", &p.name));
    /// Deletes a project.
    delete_project(DeleteProjectRequest) -> DeleteProjectResponse, "DeleteProject", |r| named("project", &r.name);
    /// One page of application sets; see [`Client::application_sets`].
    list_application_sets(ListApplicationSetsRequest) -> ListApplicationSetsResponse, "ListApplicationSets", |_r| None;
    /// One application set.
    get_application_set(GetApplicationSetRequest) -> ApplicationSet, "GetApplicationSet", |r| in_project("application set", &r.project, &r.name);
    /// Creates an application set (or updates it with `upsert`).
    create_application_set(CreateApplicationSetRequest) -> ApplicationSet, "CreateApplicationSet", |_r| None;
    /// Updates an application set.
    update_application_set(UpdateApplicationSetRequest) -> ApplicationSet, "UpdateApplicationSet", |r| r.application_set.as_ref().and_then(|s| in_project("application set", &s.project, &s.name));
    /// Deletes an application set.
    delete_application_set(DeleteApplicationSetRequest) -> DeleteApplicationSetResponse, "DeleteApplicationSet", |r| in_project("application set", &r.project, &r.name);
    /// Creates or updates every document of edgecd or Argo CD YAML (Application, ApplicationSet, AppProject).
    apply_manifests(ApplyManifestsRequest) -> ApplyManifestsResponse, "ApplyManifests", |_r| None;
    /// Stores a repository credential (write-only).
    set_repository_credential(SetRepositoryCredentialRequest) -> RepositoryInfo, "SetRepositoryCredential", |_r| None;
    /// Deletes a repository credential.
    delete_repository_credential(DeleteRepositoryCredentialRequest) -> DeleteRepositoryCredentialResponse, "DeleteRepositoryCredential", |r| named("repository credential", &r.url_prefix);
    /// Creates an API token; its secret is in the response only.
    create_api_token(CreateApiTokenRequest) -> CreateApiTokenResponse, "CreateApiToken", |_r| None;
    /// Revokes an API token.
    revoke_api_token(RevokeApiTokenRequest) -> RevokeApiTokenResponse, "RevokeApiToken", |r| named("API token", &r.id);
    /// Creates a local user.
    create_user(CreateUserRequest) -> UserInfo, "CreateUser", |_r| None;
    /// Removes a local user (admins): their sessions end and their API tokens are revoked.
    delete_user(DeleteUserRequest) -> DeleteUserResponse, "DeleteUser", |r| named("user", &r.name);
    /// One page of events; see [`Client::events`].
    list_events(ListEventsRequest) -> ListEventsResponse, "ListEvents", |_r| None;
    /// A resource's live manifest, read from its cluster through the app's spoke.
    get_live_manifest(GetLiveManifestRequest) -> LiveManifest, "GetLiveManifest", |r| Some(app_name(r.app.as_ref()));
    /// A resource's events (and its pods'), read from its cluster through the app's spoke.
    list_live_events(ListLiveEventsRequest) -> ListLiveEventsResponse, "ListLiveEvents", |r| Some(app_name(r.app.as_ref()));
    /// One page of the fleet's deployment record; see [`Client::deployments`].
    list_deployments(ListDeploymentsRequest) -> ListDeploymentsResponse, "ListDeployments", |_r| None;
    /// One page of the audit log; see [`Client::audit_log`].
    list_audit_log(ListAuditLogRequest) -> ListAuditLogResponse, "ListAuditLog", |_r| None;
}

impl Client {
    /// Logs in with a username and password and returns the session (its `token` is the bearer
    /// token for [`ClientConfig::with_token`](super::ClientConfig::with_token)).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::client::{Client, ClientConfig, Tls};
    /// let client = Client::connect(
    ///     ClientConfig::new("http://127.0.0.1:50051").with_tls(Tls::InsecurePlaintext),
    /// )
    /// .await?;
    /// let session = client.login_password("admin", "secret").await?;
    /// let client = client.with_token(Some(&session.token.into()))?;
    /// println!("logged in as {}", client.who_am_i().await?.name);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn login_password(&self, username: &str, password: &str) -> Result<LoginResponse> {
        self.login(LoginRequest {
            method: Some(login_request::Method::Password(PasswordLogin {
                username: username.to_owned(),
                password: password.to_owned(),
            })),
        })
        .await
    }

    /// Logs in with any method of [`LoginRequest`] (password or an OIDC ID token).
    pub async fn login(&self, request: LoginRequest) -> Result<LoginResponse> {
        let user = match &request.method {
            Some(login_request::Method::Password(p)) => Some(p.username.clone()),
            _ => None,
        };
        self.raw()
            .login(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(
                |status| match Error::from_status(status, "Login", &self.endpoint, None) {
                    Error::NotFound { .. } => Error::Unauthenticated(match user {
                        Some(user) => format!("wrong username or password for {user}"),
                        None => "login refused".into(),
                    }),
                    other => other,
                },
            )
    }

    /// A copy of this client that sends `token` (e.g. the one from [`Client::login_password`]).
    pub fn with_session(&self, response: &LoginResponse) -> Result<Self> {
        self.with_token(Some(&SecretString::from(response.token.clone())))
    }
}

impl AppRef {
    /// `AppRef { project, name }`.
    pub fn new(project: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            project: project.into(),
            name: name.into(),
        }
    }
}
