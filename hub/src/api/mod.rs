//! The fleet API (`HubService`): credentials and authorization at the gRPC edge, admission (pushback), spans, metrics, audit and store-error mapping; the RPC bodies live in one module per area.
//!
//! ```text
//!   tonic ─► HubService impl (this file: one line per RPC)
//!              └─ rpc!: admit (RESOURCE_EXHAUSTED + retry-after) ─► authenticate ─► area fn ─► metrics
//!   area fns: apps · commands · clusters · projects · events · deployments · watch · accounts (owned by security)
//!   each: authorize (core::access::decide, project spec from a TTL cache) ─► store ─► convert ─► audit
//! ```

mod accounts;
mod apply;
pub(crate) mod apps;
mod appsets;
mod clusters;
mod commands;
mod convert;
mod deployments;
mod events;
mod live;
mod projects;
pub mod relay;
mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_core::access::{Action, Principal, decide};
use edgecd_core::project::ProjectRole;
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_server::HubService;
use edgecd_telemetry::propagation::{self, TraceContext};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::access::{AuthError, Authenticator, Credentials};
use crate::metrics::Metrics;
use crate::store::{AuditEntry, ProjectRecord, Store, StoreError};

pub use self::watch::Change;

/// Behaviour of the API, fixed at start-up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// This replica's name (reported by `GetServerInfo`).
    pub replica: String,
    /// Calls served at once; beyond it calls wait up to `queue_wait`, then
    /// are refused with RESOURCE_EXHAUSTED and `retry-after`.
    pub max_in_flight: usize,
    pub queue_wait: Duration,
    /// Suggested back-off returned with RESOURCE_EXHAUSTED and UNAVAILABLE.
    pub retry_after: Duration,
    /// How long a diff or manifests query waits for the spoke's answer.
    pub query_timeout: Duration,
    /// How long a project's spec is reused for authorization.
    pub project_cache_ttl: Duration,
    /// A link to a trace in the operator's tracing UI (`{trace_id}` replaced), reported by `GetServerInfo`.
    pub trace_url_template: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            replica: String::new(),
            max_in_flight: 512,
            queue_wait: Duration::from_millis(250),
            retry_after: Duration::from_secs(1),
            query_timeout: Duration::from_secs(30),
            project_cache_ttl: Duration::from_secs(5),
            trace_url_template: String::new(),
        }
    }
}

/// The `HubService` implementation.
#[derive(Debug, Clone)]
pub struct HubApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    auth: Arc<dyn Authenticator>,
    config: ApiConfig,
    limiter: Arc<Semaphore>,
    projects: Mutex<HashMap<String, (Instant, ProjectRecord)>>,
    metrics: Arc<Metrics>,
    changes: broadcast::Sender<Change>,
    /// Set on shutdown: `Watch` streams end.
    closing: tokio::sync::watch::Sender<bool>,
    /// Evaluates hub-scoped application sets (dry runs preview through it).
    appsets: std::sync::OnceLock<crate::appsets::AppSetController>,
    /// The hub CA, for bootstrap tokens and sealed repository credentials (set when the hub has operator
    /// accounts and a CA).
    pki: std::sync::OnceLock<Arc<crate::pki::Pki>>,
    /// The spoke streams this replica holds, for live sessions (set by the server that runs the link).
    live: std::sync::OnceLock<Arc<crate::link::Registry>>,
    /// The way to peer replicas, for live calls about clusters another replica holds (set when this replica
    /// has a peer address).
    relay: std::sync::OnceLock<Arc<relay::Relay>>,
}

/// One admitted, authenticated call.
#[derive(Debug)]
pub(crate) struct Call {
    method: &'static str,
    pub principal: Principal,
    /// The peer address, for audit.
    pub peer: String,
    /// The bearer token the call presented (`Logout` ends exactly that session); never printed.
    pub bearer: Option<crate::store::model::Redacted>,
    /// The trace to continue in what the call leaves behind (a stored command): the RPC span's when this
    /// hub exports traces, else the caller's unchanged.
    pub trace: Option<TraceContext>,
    /// Another replica relayed this call here: it is not relayed again.
    pub relayed: bool,
    started: Instant,
    _permit: Option<OwnedSemaphorePermit>,
}

impl HubApi {
    pub fn new(
        config: ApiConfig,
        store: Arc<dyn Store>,
        auth: Arc<dyn Authenticator>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                store,
                auth,
                limiter: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
                config,
                projects: Mutex::default(),
                metrics,
                changes,
                closing: tokio::sync::watch::Sender::new(false),
                appsets: std::sync::OnceLock::new(),
                pki: std::sync::OnceLock::new(),
                live: std::sync::OnceLock::new(),
                relay: std::sync::OnceLock::new(),
            }),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Lets dry runs of application sets preview what they generate.
    pub fn set_appset_controller(&self, controller: crate::appsets::AppSetController) {
        let _ = self.inner.appsets.set(controller);
    }

    pub(crate) fn appset_controller(&self) -> Option<&crate::appsets::AppSetController> {
        self.inner.appsets.get()
    }

    /// Gives the API the hub's CA: bootstrap tokens (`CreateCluster`, `CreateBootstrapToken`) and sealed
    /// repository credentials become available.
    pub fn set_pki(&self, pki: Arc<crate::pki::Pki>) {
        let _ = self.inner.pki.set(pki);
    }

    pub(crate) fn pki(&self) -> Option<&Arc<crate::pki::Pki>> {
        self.inner.pki.get()
    }

    /// Gives the API the streams this replica holds: live reads (`GetLiveManifest`, `ListLiveEvents`,
    /// `StreamPodLogs`) become available for their clusters.
    /// Lets live calls about clusters another replica holds be relayed there.
    pub fn set_relay(&self, relay: Arc<relay::Relay>) {
        let _ = self.inner.relay.set(relay);
    }

    pub(crate) fn relay(&self) -> Option<&Arc<relay::Relay>> {
        self.inner.relay.get()
    }

    pub fn set_live(&self, registry: Arc<crate::link::Registry>) {
        let _ = self.inner.live.set(registry);
    }

    pub(crate) fn live(&self) -> Option<&Arc<crate::link::Registry>> {
        self.inner.live.get()
    }

    /// The operator accounts, when the authenticator is `auth::Accounts`.
    pub(crate) fn accounts(&self) -> Option<&crate::auth::Accounts> {
        self.inner
            .auth
            .as_any()
            .and_then(|any| any.downcast_ref::<crate::auth::Accounts>())
    }

    pub(crate) fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Spawns the task that turns store notifications (from any replica)
    /// into `Watch` wake-ups, restarting it on failure.
    pub fn spawn_change_feed(&self) -> tokio::task::JoinHandle<()> {
        watch::spawn_feed(Arc::clone(&self.inner.store), self.inner.changes.clone())
    }

    /// Ends every `Watch` stream (shutdown).
    pub fn close(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Admits and authenticates a call; on failure, records it and returns the status.
    async fn begin<T>(
        &self,
        method: &'static str,
        request: &Request<T>,
        authenticate: bool,
    ) -> Result<Call, Status> {
        let started = Instant::now();
        let fail = |status: Status| {
            self.observe(method, status.code(), started);
            status
        };
        let limiter = Arc::clone(&self.inner.limiter);
        let permit = match Arc::clone(&limiter).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                match tokio::time::timeout(self.inner.config.queue_wait, limiter.acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        self.inner.metrics.rpc_shed.inc();
                        tracing::debug!("Refusing a call: at the concurrency limit.");
                        return Err(fail(with_retry_after(
                            Status::resource_exhausted(
                                "the hub is at its concurrency limit; retry later",
                            ),
                            self.inner.config.retry_after,
                        )));
                    }
                }
            }
        };
        let credentials = credentials(request);
        let principal = if authenticate {
            self.inner
                .auth
                .authenticate(&credentials)
                .await
                .map_err(|e| fail(auth_status(e)))?
        } else {
            Principal {
                subject: String::new(),
                groups: vec![],
                admin: false,
                grants: vec![],
                method: edgecd_core::access::AuthMethod::Disabled,
                on_behalf_of: None,
            }
        };
        tracing::Span::current().record("subject", principal.subject.as_str());
        let peer = credentials.peer.map(|p| p.to_string()).unwrap_or_default();
        Ok(Call {
            method,
            principal,
            peer: relay::audit_source(request.metadata(), &peer),
            bearer: credentials.bearer.map(crate::store::model::Redacted),
            trace: None,
            relayed: request.metadata().contains_key(relay::RELAYED_BY),
            started,
            _permit: Some(permit),
        })
    }

    fn finish<R>(&self, call: Call, result: Result<R, Status>) -> Result<Response<R>, Status> {
        let result = result.map_err(|status| saturation(status, self.store()));
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        tracing::Span::current().record("code", crate::metrics::code_name(code));
        if let Err(status) = &result {
            tracing::debug!(code = ?status.code(), message = status.message(), "Call failed.");
        }
        self.observe(call.method, code, call.started);
        result.map(Response::new)
    }

    fn observe(&self, method: &str, code: tonic::Code, started: Instant) {
        self.inner
            .metrics
            .observe_rpc(method, code, started.elapsed());
    }

    // --- authorization ---

    /// The project, from a short-lived cache.
    pub(crate) async fn project(&self, name: &str) -> Result<ProjectRecord, StoreError> {
        let ttl = self.inner.config.project_cache_ttl;
        if let Some((at, record)) = self
            .inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            && at.elapsed() < ttl
        {
            return Ok(record.clone());
        }
        let record = self.store().get_project(name).await?;
        let mut cache = self
            .inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(name.to_owned(), (Instant::now(), record.clone()));
        Ok(record)
    }

    pub(crate) fn forget_project(&self, name: &str) {
        self.inner
            .projects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Authorizes a project-scoped action and returns the project.
    pub(crate) async fn authorize(
        &self,
        call: &Call,
        action: Action,
        project: &str,
    ) -> Result<ProjectRecord, Status> {
        let record = match self.project(project).await {
            Ok(record) => record,
            // Do not reveal to strangers which projects exist.
            Err(StoreError::NotFound { .. }) if !call.principal.admin => {
                return Err(denied(&call.principal, action, Some(project)));
            }
            Err(error) => return Err(store_error(error, format!("project {project}"))),
        };
        decide(&call.principal, action, Some((project, &record.spec))).map_err(|d| {
            let reader = decide(&call.principal, Action::Read, Some((project, &record.spec))).is_ok();
            if action == Action::Exec && record.spec.live.exec.is_none() && reader {
                // Say why to those who may see the project: no role would do.
                return Status::permission_denied(format!(
                    "exec is off in project {project}: an admin turns it on with `edgecd project set-exec-role {project} <role>`"
                ));
            }
            Status::permission_denied(d.to_string())
        })?;
        Ok(record)
    }

    pub(crate) fn authorize_admin(&self, call: &Call) -> Result<(), Status> {
        decide(&call.principal, Action::Admin, None)
            .map_err(|d| Status::permission_denied(d.to_string()))
    }

    /// The projects in which the caller holds at least `role`; `None` means
    /// every project (admins).
    pub(crate) async fn projects_with(
        &self,
        call: &Call,
        role: ProjectRole,
    ) -> Result<Option<Vec<String>>, Status> {
        if call.principal.admin {
            return Ok(None);
        }
        let projects = self
            .store()
            .list_projects()
            .await
            .map_err(|e| store_error(e, "projects"))?;
        Ok(Some(
            projects
                .iter()
                .filter(|p| {
                    call.principal
                        .role_in(&p.name, &p.spec)
                        .is_some_and(|held| held >= role)
                })
                .map(|p| p.name.clone())
                .collect(),
        ))
    }

    // --- audit ---

    /// Appends an audit entry for a mutating call; a failure to write it is logged.
    pub(crate) async fn audit<T>(&self, call: &Call, target: &str, result: &Result<T, Status>) {
        let (outcome, message) = match result {
            Ok(_) => ("ok".to_owned(), String::new()),
            Err(status) => (
                crate::metrics::code_name(status.code()).to_owned(),
                status.message().to_owned(),
            ),
        };
        let entry = AuditEntry {
            actor: call.principal.subject.clone(),
            action: call.method.to_owned(),
            target: target.to_owned(),
            source: call.peer.clone(),
            result: outcome,
            message,
            time: OffsetDateTime::now_utc(),
        };
        if let Err(error) = self.store().append_audit(&entry).await {
            tracing::warn!(%error, target, "Cannot write the audit entry.");
        }
    }

    /// Announces a change for `Watch` streams on every replica (best effort).
    pub(crate) async fn announce(&self, channel: &str, payload: &str) {
        if let Err(error) = self.store().notify(channel, payload).await {
            tracing::warn!(%error, channel, "Cannot announce a change.");
        }
    }
}

/// What the caller presented, read from the request metadata.
fn credentials<T>(request: &Request<T>) -> Credentials {
    let bearer = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    Credentials {
        bearer,
        peer: request.remote_addr(),
    }
}

fn auth_status(error: AuthError) -> Status {
    match error {
        AuthError::Unavailable(_) => {
            // The accounts live in the store: an outage of the database
            // reaches every authenticated call here first.
            tracing::warn!(%error, "Authentication backend unavailable.");
            with_retry_after(
                Status::unavailable(
                    "authentication is unavailable: the hub's database is unavailable; retry later",
                ),
                Duration::from_secs(1),
            )
        }
        other => Status::unauthenticated(other.to_string()),
    }
}

pub(crate) fn denied(principal: &Principal, action: Action, project: Option<&str>) -> Status {
    Status::permission_denied(
        edgecd_core::access::Denied {
            subject: principal.subject.clone(),
            action,
            project: project.map(str::to_owned),
        }
        .to_string(),
    )
}

pub(crate) use crate::retry::with_retry_after;

/// Maps a store error to a gRPC status whose message names `what` (e.g.
/// "application team-a/nginx"); driver text goes to the log, never to the client.
/// A refusal for an unavailable database, when every connection of the pool was in use: the database is
/// slow or the replica has more calls than connections, so this is pushback (RESOURCE_EXHAUSTED, with the
/// same `retry-after`), not an outage. The pool's state is read when the call ends, just after its wait
/// timed out.
fn saturation(status: Status, store: &dyn crate::store::Store) -> Status {
    if status.code() == tonic::Code::Unavailable
        && status.message() == crate::retry::DATABASE_UNAVAILABLE
        && store.pool_saturated()
    {
        return with_retry_after(
            Status::resource_exhausted(
                "every database connection of this hub replica is in use (the database is slow or \
                 the replica overloaded); retry later",
            ),
            Duration::from_secs(1),
        );
    }
    status
}

pub(crate) fn store_error(error: StoreError, what: impl Into<String>) -> Status {
    let what = what.into();
    match error {
        StoreError::NotFound { .. } => Status::not_found(format!("{what} not found")),
        StoreError::AlreadyExists { .. } => {
            Status::already_exists(format!("{what} already exists"))
        }
        StoreError::Conflict {
            expected, actual, ..
        } => Status::aborted(format!(
            "{what} was changed concurrently: expected version {expected}, found {actual}"
        )),
        StoreError::ReadOnly { .. } => Status::failed_precondition(format!(
            "{what} is read-only at the hub (created at the edge)"
        )),
        StoreError::InUse { reason, .. } => {
            Status::failed_precondition(format!("{what} is still referenced: {reason}"))
        }
        StoreError::InvalidCursor => Status::invalid_argument(
            "invalid page token (expired, malformed, or used with another filter or sort)",
        ),
        StoreError::Invalid { reason } => Status::invalid_argument(reason),
        StoreError::Corrupt { reason } => {
            tracing::error!(%reason, what, "Stored data is corrupt.");
            Status::internal(format!(
                "stored data of {what} is corrupt; see the hub's log"
            ))
        }
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, what, "Database unavailable.");
            crate::retry::database_unavailable()
        }
        StoreError::Lost { reason } => {
            tracing::error!(%reason, what, "The database cannot be written.");
            // Not a blip: only an operator (restore, restart) ends it.
            with_retry_after(
                Status::unavailable(format!(
                    "the hub's database is unavailable: {reason}; \
                     writes are refused until an operator restores it and restarts the hub"
                )),
                Duration::from_secs(30),
            )
        }
        StoreError::Superseded { .. } => {
            Status::aborted(format!("{what} was taken over by a newer stream"))
        }
        StoreError::Database(source) => {
            tracing::error!(error = %source, what, "Database error.");
            Status::internal(format!(
                "database error while accessing {what}; see the hub's log"
            ))
        }
        StoreError::Migrate(source) => {
            tracing::error!(error = %source, "Database migration error.");
            Status::internal("database schema error; see the hub's log")
        }
    }
}

/// Runs one unary RPC: span (a child of the caller's W3C `traceparent`, if it sent one), admission,
/// authentication, handler, metrics.
macro_rules! rpc {
    ($api:expr, $method:literal, $request:expr, $handler:path) => {
        rpc!($api, $method, $request, $handler, true)
    };
    ($api:expr, $method:literal, $request:expr, $handler:path, $authenticate:expr) => {{
        let request = $request;
        let span = tracing::info_span!(
            "rpc",
            otel.name = $method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = "edgecd.v1.HubService",
            method = $method,
            subject = tracing::field::Empty,
            code = tracing::field::Empty
        );
        let received = TraceContext::from_metadata(request.metadata());
        if let Some(parent) = &received {
            propagation::set_parent(&span, parent);
        }
        let trace = propagation::pass_on(&span, received.as_ref());
        async {
            let mut call = $api.begin($method, &request, $authenticate).await?;
            call.trace = trace;
            let result = $handler($api, &call, request.into_inner()).await;
            $api.finish(call, result)
        }
        .instrument(span)
        .await
    }};
}

type Res<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl HubService for HubApi {
    async fn get_server_info(&self, r: Request<v1::GetServerInfoRequest>) -> Res<v1::ServerInfo> {
        rpc!(self, "GetServerInfo", r, accounts::server_info, false)
    }
    async fn login(&self, r: Request<v1::LoginRequest>) -> Res<v1::LoginResponse> {
        rpc!(self, "Login", r, accounts::login, false)
    }
    async fn logout(&self, r: Request<v1::LogoutRequest>) -> Res<v1::LogoutResponse> {
        rpc!(self, "Logout", r, accounts::logout)
    }
    async fn who_am_i(&self, r: Request<v1::WhoAmIRequest>) -> Res<v1::UserInfo> {
        rpc!(self, "WhoAmI", r, accounts::who_am_i)
    }

    async fn list_applications(
        &self,
        r: Request<v1::ListApplicationsRequest>,
    ) -> Res<v1::ListApplicationsResponse> {
        rpc!(self, "ListApplications", r, apps::list)
    }
    async fn count_applications(
        &self,
        r: Request<v1::CountApplicationsRequest>,
    ) -> Res<v1::ApplicationCounts> {
        rpc!(self, "CountApplications", r, apps::count)
    }
    async fn get_application(&self, r: Request<v1::GetApplicationRequest>) -> Res<v1::Application> {
        rpc!(self, "GetApplication", r, apps::get)
    }
    async fn create_application(
        &self,
        r: Request<v1::CreateApplicationRequest>,
    ) -> Res<v1::Application> {
        rpc!(self, "CreateApplication", r, apps::create)
    }
    async fn update_application(
        &self,
        r: Request<v1::UpdateApplicationRequest>,
    ) -> Res<v1::Application> {
        rpc!(self, "UpdateApplication", r, apps::update)
    }
    async fn delete_application(
        &self,
        r: Request<v1::DeleteApplicationRequest>,
    ) -> Res<v1::DeleteApplicationResponse> {
        rpc!(self, "DeleteApplication", r, apps::delete)
    }
    async fn get_resource_tree(
        &self,
        r: Request<v1::GetResourceTreeRequest>,
    ) -> Res<v1::ResourceTreeResponse> {
        rpc!(self, "GetResourceTree", r, apps::resource_tree)
    }
    async fn list_history(
        &self,
        r: Request<v1::ListHistoryRequest>,
    ) -> Res<v1::ListHistoryResponse> {
        rpc!(self, "ListHistory", r, apps::history)
    }

    async fn sync_application(
        &self,
        r: Request<v1::SyncApplicationRequest>,
    ) -> Res<v1::CommandStatus> {
        rpc!(self, "SyncApplication", r, commands::sync)
    }
    async fn refresh_application(
        &self,
        r: Request<v1::RefreshApplicationRequest>,
    ) -> Res<v1::CommandStatus> {
        rpc!(self, "RefreshApplication", r, commands::refresh)
    }
    async fn rollback_application(
        &self,
        r: Request<v1::RollbackApplicationRequest>,
    ) -> Res<v1::CommandStatus> {
        rpc!(self, "RollbackApplication", r, commands::rollback)
    }
    async fn terminate_operation(
        &self,
        r: Request<v1::TerminateOperationRequest>,
    ) -> Res<v1::CommandStatus> {
        rpc!(self, "TerminateOperation", r, commands::terminate)
    }
    async fn get_application_diff(
        &self,
        r: Request<v1::GetApplicationDiffRequest>,
    ) -> Res<v1::DiffResult> {
        rpc!(self, "GetApplicationDiff", r, commands::diff)
    }
    async fn get_application_manifests(
        &self,
        r: Request<v1::GetApplicationManifestsRequest>,
    ) -> Res<v1::ManifestsResult> {
        rpc!(self, "GetApplicationManifests", r, commands::manifests)
    }
    async fn bulk_command(
        &self,
        r: Request<v1::BulkCommandRequest>,
    ) -> Res<v1::BulkCommandResponse> {
        rpc!(self, "BulkCommand", r, commands::bulk)
    }
    async fn get_command(&self, r: Request<v1::GetCommandRequest>) -> Res<v1::CommandStatus> {
        rpc!(self, "GetCommand", r, commands::get)
    }
    async fn list_commands(
        &self,
        r: Request<v1::ListCommandsRequest>,
    ) -> Res<v1::ListCommandsResponse> {
        rpc!(self, "ListCommands", r, commands::list)
    }

    async fn list_clusters(
        &self,
        r: Request<v1::ListClustersRequest>,
    ) -> Res<v1::ListClustersResponse> {
        rpc!(self, "ListClusters", r, clusters::list)
    }
    async fn get_cluster(&self, r: Request<v1::GetClusterRequest>) -> Res<v1::Cluster> {
        rpc!(self, "GetCluster", r, clusters::get)
    }
    async fn create_cluster(
        &self,
        r: Request<v1::CreateClusterRequest>,
    ) -> Res<v1::CreateClusterResponse> {
        rpc!(self, "CreateCluster", r, clusters::create)
    }
    async fn update_cluster(&self, r: Request<v1::UpdateClusterRequest>) -> Res<v1::Cluster> {
        rpc!(self, "UpdateCluster", r, clusters::update)
    }
    async fn delete_cluster(
        &self,
        r: Request<v1::DeleteClusterRequest>,
    ) -> Res<v1::DeleteClusterResponse> {
        rpc!(self, "DeleteCluster", r, clusters::delete)
    }
    async fn revoke_cluster(&self, r: Request<v1::RevokeClusterRequest>) -> Res<v1::Cluster> {
        rpc!(self, "RevokeCluster", r, clusters::revoke)
    }
    async fn create_bootstrap_token(
        &self,
        r: Request<v1::CreateBootstrapTokenRequest>,
    ) -> Res<v1::CreateClusterResponse> {
        rpc!(
            self,
            "CreateBootstrapToken",
            r,
            accounts::create_bootstrap_token
        )
    }

    async fn list_projects(
        &self,
        r: Request<v1::ListProjectsRequest>,
    ) -> Res<v1::ListProjectsResponse> {
        rpc!(self, "ListProjects", r, projects::list)
    }
    async fn get_project(&self, r: Request<v1::GetProjectRequest>) -> Res<v1::Project> {
        rpc!(self, "GetProject", r, projects::get)
    }
    async fn create_project(&self, r: Request<v1::CreateProjectRequest>) -> Res<v1::Project> {
        rpc!(self, "CreateProject", r, projects::create)
    }
    async fn update_project(&self, r: Request<v1::UpdateProjectRequest>) -> Res<v1::Project> {
        rpc!(self, "UpdateProject", r, projects::update)
    }
    async fn delete_project(
        &self,
        r: Request<v1::DeleteProjectRequest>,
    ) -> Res<v1::DeleteProjectResponse> {
        rpc!(self, "DeleteProject", r, projects::delete)
    }

    async fn list_application_sets(
        &self,
        r: Request<v1::ListApplicationSetsRequest>,
    ) -> Res<v1::ListApplicationSetsResponse> {
        rpc!(self, "ListApplicationSets", r, appsets::list)
    }
    async fn get_application_set(
        &self,
        r: Request<v1::GetApplicationSetRequest>,
    ) -> Res<v1::ApplicationSet> {
        rpc!(self, "GetApplicationSet", r, appsets::get)
    }
    async fn create_application_set(
        &self,
        r: Request<v1::CreateApplicationSetRequest>,
    ) -> Res<v1::ApplicationSet> {
        rpc!(self, "CreateApplicationSet", r, appsets::create)
    }
    async fn update_application_set(
        &self,
        r: Request<v1::UpdateApplicationSetRequest>,
    ) -> Res<v1::ApplicationSet> {
        rpc!(self, "UpdateApplicationSet", r, appsets::update)
    }
    async fn delete_application_set(
        &self,
        r: Request<v1::DeleteApplicationSetRequest>,
    ) -> Res<v1::DeleteApplicationSetResponse> {
        rpc!(self, "DeleteApplicationSet", r, appsets::delete)
    }
    async fn apply_manifests(
        &self,
        r: Request<v1::ApplyManifestsRequest>,
    ) -> Res<v1::ApplyManifestsResponse> {
        rpc!(self, "ApplyManifests", r, apply::apply)
    }

    async fn set_repository_credential(
        &self,
        r: Request<v1::SetRepositoryCredentialRequest>,
    ) -> Res<v1::RepositoryInfo> {
        rpc!(
            self,
            "SetRepositoryCredential",
            r,
            accounts::set_repository_credential
        )
    }
    async fn list_repositories(
        &self,
        r: Request<v1::ListRepositoriesRequest>,
    ) -> Res<v1::ListRepositoriesResponse> {
        rpc!(self, "ListRepositories", r, accounts::list_repositories)
    }
    async fn delete_repository_credential(
        &self,
        r: Request<v1::DeleteRepositoryCredentialRequest>,
    ) -> Res<v1::DeleteRepositoryCredentialResponse> {
        rpc!(
            self,
            "DeleteRepositoryCredential",
            r,
            accounts::delete_repository_credential
        )
    }
    async fn create_api_token(
        &self,
        r: Request<v1::CreateApiTokenRequest>,
    ) -> Res<v1::CreateApiTokenResponse> {
        rpc!(self, "CreateApiToken", r, accounts::create_api_token)
    }
    async fn list_api_tokens(
        &self,
        r: Request<v1::ListApiTokensRequest>,
    ) -> Res<v1::ListApiTokensResponse> {
        rpc!(self, "ListApiTokens", r, accounts::list_api_tokens)
    }
    async fn revoke_api_token(
        &self,
        r: Request<v1::RevokeApiTokenRequest>,
    ) -> Res<v1::RevokeApiTokenResponse> {
        rpc!(self, "RevokeApiToken", r, accounts::revoke_api_token)
    }
    async fn create_user(&self, r: Request<v1::CreateUserRequest>) -> Res<v1::UserInfo> {
        rpc!(self, "CreateUser", r, accounts::create_user)
    }
    async fn list_users(&self, r: Request<v1::ListUsersRequest>) -> Res<v1::ListUsersResponse> {
        rpc!(self, "ListUsers", r, accounts::list_users)
    }
    async fn delete_user(&self, r: Request<v1::DeleteUserRequest>) -> Res<v1::DeleteUserResponse> {
        rpc!(self, "DeleteUser", r, accounts::delete_user)
    }

    async fn list_events(&self, r: Request<v1::ListEventsRequest>) -> Res<v1::ListEventsResponse> {
        rpc!(self, "ListEvents", r, events::list_events)
    }
    async fn list_deployments(
        &self,
        r: Request<v1::ListDeploymentsRequest>,
    ) -> Res<v1::ListDeploymentsResponse> {
        rpc!(self, "ListDeployments", r, deployments::list)
    }
    async fn list_audit_log(
        &self,
        r: Request<v1::ListAuditLogRequest>,
    ) -> Res<v1::ListAuditLogResponse> {
        rpc!(self, "ListAuditLog", r, events::list_audit)
    }

    async fn get_live_manifest(
        &self,
        r: Request<v1::GetLiveManifestRequest>,
    ) -> Res<v1::LiveManifest> {
        rpc!(self, "GetLiveManifest", r, live::manifest)
    }
    async fn list_live_events(
        &self,
        r: Request<v1::ListLiveEventsRequest>,
    ) -> Res<v1::ListLiveEventsResponse> {
        rpc!(self, "ListLiveEvents", r, live::events)
    }

    type StreamPodLogsStream = live::LogStream;

    async fn stream_pod_logs(
        &self,
        r: Request<v1::StreamPodLogsRequest>,
    ) -> Res<Self::StreamPodLogsStream> {
        rpc!(self, "StreamPodLogs", r, live::logs)
    }

    type ExecPodStream = live::ExecStream;

    async fn exec_pod(
        &self,
        r: Request<tonic::Streaming<v1::ExecPodRequest>>,
    ) -> Res<Self::ExecPodStream> {
        rpc!(self, "ExecPod", r, live::exec)
    }

    type WatchStream = watch::WatchStream;

    async fn watch(&self, r: Request<v1::WatchRequest>) -> Res<Self::WatchStream> {
        rpc!(self, "Watch", r, watch::watch)
    }
}

#[cfg(test)]
mod tests;
