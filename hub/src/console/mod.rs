//! The web console: embedded static files plus a JSON/HTTP face of `HubService`, with live updates over server-sent events.
//!
//! ```text
//!   browser ── GET /, /js/*          ──► assets (compiled in)
//!           ── /api/v1/* (JSON)      ──► handlers ──► HubService (same impl as gRPC:
//!           ── /api/v1/watch (SSE)   ──► Watch      authn, authz, audit, metrics)
//! ```
//!
//! Every JSON call is turned into the corresponding `HubService` request,
//! carrying the caller's session token and address, so authentication,
//! authorization, audit and pushback are exactly those of the gRPC API:
//! the console cannot do anything its user could not do with the CLI.
//! Sessions: `POST /api/v1/login` stores the hub's session token in an
//! `HttpOnly; SameSite=Strict` cookie; scripts may instead send
//! `Authorization: Bearer`. State-changing calls must carry the
//! `X-Edgecd-Csrf` header, which a cross-site form cannot send.

pub mod assets;
pub mod json;
mod terminal;

use edgecd_telemetry::propagation::{self, TraceContext};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use edgecd_core::access::{Action, AuthMethod, Grant, Principal, decide};
use edgecd_core::selector::LabelSelector;
use edgecd_core::{Health, SyncStatus};
use edgecd_proto::convert;
use edgecd_proto::v1;
use edgecd_proto::v1::hub_service_server::HubService;
use tokio::sync::broadcast;

use crate::appsets::{APPSET_STATUS_CHANNEL, APPSETS_CHANNEL};
use crate::store::{ListenEvent, Store};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "edgecd_session";
/// Header every state-changing console call must carry.
pub const CSRF_HEADER: &str = "x-edgecd-csrf";

/// Console settings.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure` (browsers reach the console over HTTPS, through a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The hub's store, for the notifications of application-set changes
    /// (`appset` events of `/api/v1/watch`); without it the application
    /// sets page follows only the app events of the sets' apps.
    pub store: Option<Arc<dyn Store>>,
}

struct Inner<S> {
    api: Arc<S>,
    config: ConsoleConfig,
    /// The application-set change feed while some console stream uses it.
    appsets: std::sync::Mutex<Weak<AppSetFeed>>,
}

/// Shared state of the console's handlers.
pub struct Console<S> {
    inner: Arc<Inner<S>>,
}

impl<S> std::fmt::Debug for Console<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl<S> Clone for Console<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// The console's routes (static files and `/api/v1`), over the given
/// `HubService` implementation. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the audit log
/// records callers' addresses.
pub fn router<S: HubService>(api: Arc<S>, config: ConsoleConfig) -> Router {
    let state = Console {
        inner: Arc::new(Inner {
            api,
            config,
            appsets: std::sync::Mutex::new(Weak::new()),
        }),
    };
    Router::new()
        .route("/api/v1/whoami", get(whoami::<S>))
        .route("/api/v1/login", post(login::<S>))
        .route("/api/v1/logout", post(logout::<S>))
        .route("/api/v1/apps", get(list_apps::<S>))
        .route("/api/v1/counts", get(counts::<S>))
        .route(
            "/api/v1/apps/{project}/{name}",
            get(get_app::<S>).delete(delete_app::<S>),
        )
        .route("/api/v1/apps/{project}/{name}/tree", get(tree::<S>))
        .route("/api/v1/apps/{project}/{name}/diff", get(diff::<S>))
        .route(
            "/api/v1/apps/{project}/{name}/manifests",
            get(manifests::<S>),
        )
        .route("/api/v1/apps/{project}/{name}/events", get(app_events::<S>))
        .route(
            "/api/v1/apps/{project}/{name}/live",
            get(live_manifest::<S>),
        )
        .route("/api/v1/apps/{project}/{name}/logs", get(pod_logs::<S>))
        .route(
            "/api/v1/apps/{project}/{name}/exec",
            get(terminal::exec::<S>),
        )
        .route(
            "/api/v1/apps/{project}/{name}/{command}",
            post(command::<S>),
        )
        .route("/api/v1/bulk", post(bulk::<S>))
        .route("/api/v1/commands/{id}", get(get_command::<S>))
        .route("/api/v1/clusters", get(clusters::<S>))
        .route("/api/v1/clusters/{name}", get(get_cluster::<S>))
        .route("/api/v1/projects", get(projects::<S>))
        .route("/api/v1/appsets", get(appsets::<S>))
        .route("/api/v1/appsets/{project}/{name}", get(get_appset::<S>))
        .route("/api/v1/events", get(events::<S>))
        .route("/api/v1/deployments", get(deployments::<S>))
        .route("/api/v1/watch", get(watch::<S>))
        .fallback(get(asset))
        .with_state(state)
}

// === callers, errors ===

/// Who is calling: the session token (cookie or bearer) and address.
#[derive(Clone)]
pub struct Caller {
    token: Option<String>,
    peer: Option<SocketAddr>,
    /// The W3C trace context the browser sent with an action (validated), passed on to the API call.
    trace: Option<TraceContext>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("peer", &self.peer)
            .field("trace", &self.trace)
            .finish()
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl<T: Send + Sync> FromRequestParts<T> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &T) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).or_else(|| cookie_token(&parts.headers));
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let trace = TraceContext::parse(
            header(propagation::TRACEPARENT),
            header(propagation::TRACESTATE),
        );
        Ok(Caller { token, peer, trace })
    }
}

impl Caller {
    /// The gRPC request the same call would be, with this caller's
    /// credentials and address.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token
            && let Ok(value) = format!("Bearer {token}").parse()
        {
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(trace) = &self.trace {
            trace.inject(request.metadata_mut());
        }
        if let Some(peer) = self.peer {
            request
                .extensions_mut()
                .insert(tonic::transport::server::TcpConnectInfo {
                    local_addr: None,
                    remote_addr: Some(peer),
                });
        }
        request
    }
}

/// A failed console call: HTTP status and a JSON body `{code, message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_argument",
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let (status, code) = match s.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                (StatusCode::BAD_REQUEST, "invalid_argument")
            }
            Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            Code::Aborted => (StatusCode::CONFLICT, "conflict"),
            Code::FailedPrecondition => (StatusCode::PRECONDITION_FAILED, "failed_precondition"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "unimplemented"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self {
            status,
            code,
            message: s.message().to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// A query string whose errors are the console's own `{code, message}` (400
/// `invalid_argument` naming the bad parameter), not axum's plain text.
#[derive(Debug)]
struct ApiQuery<T>(T);

impl<T, St> FromRequestParts<St> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
    }
}

/// A JSON request body whose errors are the console's own `{code, message}`
/// (400 `invalid_argument` naming what is wrong), not axum's plain text; an
/// empty body is the type's default.
#[derive(Debug)]
struct JsonBody<T>(T);

impl<T, St> axum::extract::FromRequest<St> for JsonBody<T>
where
    T: serde::de::DeserializeOwned + Default,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &St) -> Result<Self, ApiError> {
        let bytes = <axum::body::Bytes as axum::extract::FromRequest<St>>::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(T::default()));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::bad_request(format!("the request body is not what this call takes: {e}"))
        })
    }
}

/// Refuse a state-changing call without the CSRF header.
fn require_csrf(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.contains_key(CSRF_HEADER) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "csrf",
            message: format!("missing {CSRF_HEADER} header (cross-site request refused)"),
        })
    }
}

// === static files ===

async fn asset(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let Some(file) = assets::find(uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let etag = assets::etag(file);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = file.body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            // Inline styles for the terminal: xterm.js colours its rows with a `<style>` element it writes.
            // Scripts stay `'self'` only.
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

// === session ===

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

fn user_json(u: &v1::UserInfo) -> Value {
    let roles: Vec<Value> = u
        .roles
        .iter()
        .map(|r| json!({"project": r.project, "role": r.role}))
        .collect();
    let auth_enabled = !matches!(u.source.as_str(), "" | "disabled" | "none");
    json!({
        "subject": u.name, "admin": u.admin, "groups": u.groups, "roles": roles,
        "source": u.source, "authEnabled": auth_enabled,
    })
}

async fn whoami<S: HubService>(State(c): State<Console<S>>, caller: Caller) -> ApiResult {
    let user = c
        .inner
        .api
        .who_am_i(caller.request(v1::WhoAmIRequest {}))
        .await?
        .into_inner();
    let info = c
        .inner
        .api
        .get_server_info(caller.request(v1::GetServerInfoRequest {}))
        .await?
        .into_inner();
    let mut json = user_json(&user);
    // The console links trace ids (operations, history) with the hub's --trace-url-template.
    json["traceUrlTemplate"] = Value::String(info.trace_url_template);
    Ok(Json(json))
}

async fn login<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
    body: Json<LoginBody>,
) -> Result<Response, ApiError> {
    require_csrf(&headers)?;
    let request = v1::LoginRequest {
        method: Some(v1::login_request::Method::Password(v1::PasswordLogin {
            username: body.username.clone(),
            password: body.password.clone(),
        })),
    };
    let session = c
        .inner
        .api
        .login(caller.request(request))
        .await?
        .into_inner();
    let max_age = session
        .expires_at
        .as_ref()
        .and_then(convert::from_timestamp)
        .map(|t| (t - time::OffsetDateTime::now_utc()).whole_seconds().max(0))
        .unwrap_or(3600);
    let secure = if c.inner.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        session.token
    );
    let user = session.user.as_ref().map(user_json).unwrap_or(Value::Null);
    let mut response = Json(json!({"user": user})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn logout<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_csrf(&headers)?;
    // The session may already be gone; clearing the cookie is what matters.
    let _ = c
        .inner
        .api
        .logout(caller.request(v1::LogoutRequest {}))
        .await;
    let mut response = Json(json!({})).into_response();
    // Cleared with the attributes it was set with (a browser keeps a Secure cookie a plain one cannot replace).
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(if c.inner.config.secure_cookies {
            "edgecd_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"
        } else {
            "edgecd_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        }),
    );
    Ok(response)
}

// === applications ===

/// Query string of the application list and counts.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppListQuery {
    project: Option<String>,
    cluster: Option<String>,
    cluster_label: Option<String>,
    label: Option<String>,
    health: Option<String>,
    sync: Option<String>,
    search: Option<String>,
    /// `name=nginx[,guestbook]`: apps named exactly so, at the hub or at any edge (`nginx@cluster`).
    name: Option<String>,
    origin: Option<String>,
    owner: Option<String>,
    owner_scope: Option<String>,
    sort: Option<String>,
    desc: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn split(v: &Option<String>) -> impl Iterator<Item = &str> {
    v.as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn selector(v: &Option<String>, what: &str) -> Result<Option<v1::LabelSelector>, ApiError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => LabelSelector::parse(text)
            .map(|s| Some(convert::label_selector(&s)))
            .map_err(|e| ApiError::bad_request(format!("{what} {text:?}: {e}"))),
    }
}

fn health_of(name: &str) -> Result<v1::HealthStatusCode, ApiError> {
    let h = match name {
        "Healthy" => Health::Healthy,
        "Progressing" => Health::Progressing,
        "Degraded" => Health::Degraded,
        "Suspended" => Health::Suspended,
        "Missing" => Health::Missing,
        "Unknown" => Health::Unknown,
        other => return Err(ApiError::bad_request(format!("unknown health {other:?}"))),
    };
    Ok(convert::health_code(h))
}

fn sync_of(name: &str) -> Result<v1::SyncStatusCode, ApiError> {
    let s = match name {
        "Synced" => SyncStatus::Synced,
        "OutOfSync" => SyncStatus::OutOfSync,
        "Unknown" => SyncStatus::Unknown,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown sync status {other:?}"
            )));
        }
    };
    Ok(convert::sync_code(s))
}

impl AppListQuery {
    fn filter(&self) -> Result<v1::ApplicationFilter, ApiError> {
        let origins = split(&self.origin)
            .map(|o| match o {
                "Managed" => Ok(v1::AppOrigin::Managed as i32),
                "Autonomous" => Ok(v1::AppOrigin::Autonomous as i32),
                other => Err(ApiError::bad_request(format!("unknown origin {other:?}"))),
            })
            .collect::<Result<_, _>>()?;
        // `owner=PROJECT/NAME` (or a bare NAME in the `project` filter's
        // project): apps generated by that application set; `ownerScope`
        // narrows to where it was evaluated ("hub" or a cluster).
        let owner = self
            .owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|owner| {
                let (project, name) = match owner.split_once('/') {
                    Some((p, n)) => (p.to_owned(), n.to_owned()),
                    None => (self.project.clone().unwrap_or_default(), owner.to_owned()),
                };
                v1::OwnerRef {
                    kind: "ApplicationSet".into(),
                    project,
                    name,
                    scope: self.owner_scope.clone().unwrap_or_default(),
                }
            });
        Ok(v1::ApplicationFilter {
            projects: split(&self.project).map(str::to_owned).collect(),
            clusters: split(&self.cluster).map(str::to_owned).collect(),
            cluster_selector: selector(&self.cluster_label, "cluster label selector")?,
            app_selector: selector(&self.label, "label selector")?,
            sync: split(&self.sync)
                .map(|s| sync_of(s).map(|c| c as i32))
                .collect::<Result<_, _>>()?,
            health: split(&self.health)
                .map(|h| health_of(h).map(|c| c as i32))
                .collect::<Result<_, _>>()?,
            search: self.search.clone().unwrap_or_default(),
            names: split(&self.name).map(str::to_owned).collect(),
            origins,
            owner,
            ..Default::default()
        })
    }

    fn sort(&self) -> Result<v1::ApplicationSort, ApiError> {
        use v1::ApplicationSortField as F;
        let field = match self.sort.as_deref().unwrap_or("name") {
            "name" | "" => F::Name,
            "project" => F::Project,
            "cluster" => F::Cluster,
            "sync" => F::Sync,
            "health" => F::Health,
            "updated" => F::UpdatedAt,
            other => return Err(ApiError::bad_request(format!("unknown sort {other:?}"))),
        };
        Ok(v1::ApplicationSort {
            field: field as i32,
            descending: matches!(self.desc.as_deref(), Some("1" | "true")),
        })
    }
}

async fn list_apps<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AppListQuery>,
) -> ApiResult {
    let filter = q.filter()?;
    let later_page = q.cursor.as_deref().is_some_and(|c| !c.is_empty());
    let request = v1::ListApplicationsRequest {
        filter: Some(filter.clone()),
        sort: Some(q.sort()?),
        page_size: q.limit.unwrap_or(100).clamp(1, 1000),
        page_token: q.cursor.clone().unwrap_or_default(),
    };
    let page = c
        .inner
        .api
        .list_applications(caller.request(request))
        .await?
        .into_inner();
    // The API counts the total with the first page only; a later page (Next,
    // a copied link, Back) asks for the count beside it (one aggregate query),
    // so it never reads "0 applications". Unknown (null) if that fails.
    let total = if later_page {
        match c
            .inner
            .api
            .count_applications(caller.request(v1::CountApplicationsRequest {
                filter: Some(filter),
            }))
            .await
        {
            Ok(counts) => json!(counts.into_inner().total),
            Err(status) => {
                tracing::debug!(code = ?status.code(), "Console: no total for a later page of apps.");
                Value::Null
            }
        }
    } else {
        json!(page.total)
    };
    let items: Vec<Value> = page.items.iter().map(json::app_summary).collect();
    let next = (!page.next_page_token.is_empty()).then_some(page.next_page_token);
    Ok(Json(
        json!({"items": items, "nextCursor": next, "total": total}),
    ))
}

async fn counts<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AppListQuery>,
) -> ApiResult {
    let request = v1::CountApplicationsRequest {
        filter: Some(q.filter()?),
    };
    let counts = c
        .inner
        .api
        .count_applications(caller.request(request))
        .await?
        .into_inner();
    Ok(Json(json::counts(&counts)))
}

fn app_ref(project: String, name: String) -> Option<v1::AppRef> {
    Some(v1::AppRef { project, name })
}

/// What the caller may do with apps of `project`: (operate, edit). Only
/// decides which buttons to show; the hub checks every call itself.
async fn permissions<S: HubService>(
    c: &Console<S>,
    caller: &Caller,
    project: &str,
) -> (bool, bool) {
    let Ok(user) = c
        .inner
        .api
        .who_am_i(caller.request(v1::WhoAmIRequest {}))
        .await
    else {
        return (false, false);
    };
    let user = user.into_inner();
    if user.admin {
        return (true, true);
    }
    let principal = Principal {
        subject: user.name.clone(),
        groups: user.groups.clone(),
        admin: false,
        grants: user
            .roles
            .iter()
            .filter_map(|r| {
                convert::from_project_role_kind(r.role).map(|role| Grant {
                    project: r.project.clone(),
                    role,
                })
            })
            .collect(),
        method: AuthMethod::Password,
        on_behalf_of: None,
    };
    let spec = match c
        .inner
        .api
        .get_project(caller.request(v1::GetProjectRequest {
            name: project.to_owned(),
        }))
        .await
    {
        Ok(p) => convert::from_project(&p.into_inner()).unwrap_or_default(),
        Err(_) => Default::default(),
    };
    let may = |action| decide(&principal, action, Some((project, &spec))).is_ok();
    (may(Action::Operate), may(Action::Edit))
}

async fn get_app<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult {
    let app = c
        .inner
        .api
        .get_application(caller.request(v1::GetApplicationRequest {
            app: app_ref(project.clone(), name),
        }))
        .await?
        .into_inner();
    let (operate, edit) = permissions(&c, &caller, &project).await;
    // An app created at the edge is read-only here (its spoke owns the
    // spec); commands still go to it, and deleting it asks its spoke.
    let autonomous = app
        .meta
        .as_ref()
        .is_some_and(|m| m.origin == v1::AppOrigin::Autonomous as i32);
    let may = json::Permissions {
        operate,
        edit: edit && !autonomous,
        delete: edit,
    };
    Ok(Json(json::application(&app, may)))
}

#[derive(Debug, Default, Deserialize)]
struct DeleteQuery {
    cascade: Option<String>,
}

/// `DELETE /api/v1/apps/P/N?cascade=true|false` (cascade by default, as the CLI).
async fn delete_app<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult {
    require_csrf(&headers)?;
    let cascade = match q.cascade.as_deref() {
        None | Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "cascade must be true or false, not {other:?}"
            )));
        }
    };
    c.inner
        .api
        .delete_application(caller.request(v1::DeleteApplicationRequest {
            app: app_ref(project, name),
            cascade,
        }))
        .await?;
    Ok(Json(json!({"deleted": true, "cascade": cascade})))
}

async fn tree<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult {
    let tree = c
        .inner
        .api
        .get_resource_tree(caller.request(v1::GetResourceTreeRequest {
            app: app_ref(project, name),
        }))
        .await?
        .into_inner();
    Ok(Json(json::tree(&tree)))
}

/// `?group&kind&namespace&name` names one resource; the spoke computes the
/// whole app's diff and the console keeps that resource's.
fn resource_filter(q: &json::ResourceFilter) -> Result<Option<&json::ResourceFilter>, ApiError> {
    if q.is_set() {
        Ok(Some(q))
    } else if q.kind.is_empty() && q.name.is_empty() {
        Ok(None)
    } else {
        Err(ApiError::bad_request(
            "a resource is named by kind and name (and group, namespace when it has them)",
        ))
    }
}

async fn diff<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<json::ResourceFilter>,
) -> ApiResult {
    let only = resource_filter(&q)?;
    let diff = c
        .inner
        .api
        .get_application_diff(caller.request(v1::GetApplicationDiffRequest {
            app: app_ref(project, name),
            resources: Vec::new(),
        }))
        .await?
        .into_inner();
    Ok(Json(json::diff(&diff, only)))
}

/// The desired manifests (rendered from git by the spoke), or one resource's.
async fn manifests<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<json::ResourceFilter>,
) -> ApiResult {
    let only = resource_filter(&q)?;
    let manifests = c
        .inner
        .api
        .get_application_manifests(caller.request(v1::GetApplicationManifestsRequest {
            app: app_ref(project, name),
            revision: String::new(),
        }))
        .await?
        .into_inner();
    Ok(Json(json::manifests(&manifests, only)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveQuery {
    // Not flattened from `json::ResourceFilter`: a flattened query reads every value as text.
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    managed_fields: bool,
    #[serde(default)]
    container: String,
    tail: Option<i64>,
    since: Option<i64>,
    #[serde(default)]
    previous: bool,
    #[serde(default)]
    follow: bool,
}

impl LiveQuery {
    fn key(&self) -> Result<v1::ResourceKey, ApiError> {
        if self.kind.is_empty() || self.name.is_empty() {
            return Err(ApiError::bad_request(
                "a resource is named by kind and name (and group, namespace when it has them)",
            ));
        }
        Ok(v1::ResourceKey {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        })
    }
}

/// `GET /api/v1/apps/P/N/live?group&version&kind&namespace&name[&managedFields=true]`: a resource's live
/// manifest, read from its cluster through the app's spoke.
async fn live_manifest<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> ApiResult {
    let manifest = c
        .inner
        .api
        .get_live_manifest(caller.request(v1::GetLiveManifestRequest {
            app: app_ref(project, name),
            resource: Some(q.key()?),
            managed_fields: q.managed_fields,
        }))
        .await?
        .into_inner();
    Ok(Json(json!({ "yaml": manifest.yaml })))
}

/// `GET /api/v1/apps/P/N/logs?…resource…&container&tail&since&previous[&follow=true]`: the logs of a pod or of
/// a workload's pods through the app's spoke: `{items: [{pod, container, text}]}`, or with `follow` server-sent
/// events (`log` with `{pod, container, text}`, then `end` with `{message}` when the session ends early).
async fn pod_logs<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    if q.tail.is_some_and(|t| t < 0) || q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request("tail and since cannot be negative"));
    }
    let mut stream = Box::pin(
        c.inner
            .api
            .stream_pod_logs(caller.request(v1::StreamPodLogsRequest {
                app: app_ref(project, name),
                resource: Some(q.key()?),
                container: q.container.clone(),
                since_seconds: q.since.unwrap_or(0),
                tail_lines: q.tail.unwrap_or(0),
                previous: q.previous,
                follow: q.follow,
            }))
            .await?
            .into_inner(),
    );
    let text = |chunk: &v1::PodLogChunk| {
        json!({
            "pod": chunk.pod,
            "container": chunk.container,
            "text": String::from_utf8_lossy(&chunk.data),
        })
    };
    if !q.follow {
        let mut items = Vec::new();
        while let Some(chunk) = stream.next().await {
            items.push(text(&chunk?));
        }
        return Ok(Json(json!({ "items": items })).into_response());
    }
    // The browser closing the EventSource drops this stream, which cancels the session at the spoke.
    let events = stream.map(move |item| {
        Ok::<_, Infallible>(match item {
            Ok(chunk) => Event::default().event("log").data(text(&chunk).to_string()),
            Err(status) => Event::default()
                .event("end")
                .data(json!({ "message": status.message() }).to_string()),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn app_events<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult {
    let events = c
        .inner
        .api
        .list_events(caller.request(v1::ListEventsRequest {
            app: app_ref(project, name),
            page_size: 100,
            ..Default::default()
        }))
        .await?
        .into_inner();
    let items: Vec<Value> = events.items.iter().map(json::event).collect();
    Ok(Json(json!({ "items": items })))
}

/// A resource named in a sync's `resources`.
#[derive(Debug, Default, Deserialize)]
struct ResourceBody {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
}

/// Options of a command (those that do not apply to it are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommandBody {
    /// Rollback target.
    id: Option<i64>,
    prune: Option<bool>,
    hard: Option<bool>,
    revision: Option<String>,
    dry_run: Option<bool>,
    force: Option<bool>,
    apply_out_of_sync_only: Option<bool>,
    /// Sync only these resources (Argo CD's selective sync); all when empty.
    resources: Option<Vec<ResourceBody>>,
}

impl CommandBody {
    /// The sync these options ask for.
    fn sync(&self) -> Result<v1::SyncCommand, ApiError> {
        let resources = self
            .resources
            .iter()
            .flatten()
            .map(|r| {
                if r.kind.is_empty() || r.name.is_empty() {
                    return Err(ApiError::bad_request(
                        "each resource to sync needs its kind and name",
                    ));
                }
                Ok(v1::ResourceKey {
                    group: r.group.clone(),
                    version: r.version.clone(),
                    kind: r.kind.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(v1::SyncCommand {
            revision: self.revision.clone().unwrap_or_default().trim().to_owned(),
            prune: self.prune.unwrap_or(false),
            dry_run: self.dry_run.unwrap_or(false),
            resources,
            force: self.force.unwrap_or(false),
            apply_out_of_sync_only: self.apply_out_of_sync_only.unwrap_or(false),
        })
    }
}

async fn command<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
    Path((project, name, command)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<CommandBody>,
) -> ApiResult {
    require_csrf(&headers)?;
    let app = app_ref(project, name);
    let api = &c.inner.api;
    let status = match command.as_str() {
        "sync" => {
            api.sync_application(caller.request(v1::SyncApplicationRequest {
                request_id: String::new(),
                app,
                sync: Some(body.sync()?),
                ttl: None,
            }))
            .await?
        }
        "refresh" => {
            api.refresh_application(caller.request(v1::RefreshApplicationRequest {
                request_id: String::new(),
                app,
                hard: body.hard.unwrap_or(false),
                ttl: None,
            }))
            .await?
        }
        "rollback" => {
            let Some(id) = body.id else {
                return Err(ApiError::bad_request("rollback needs the history id"));
            };
            api.rollback_application(caller.request(v1::RollbackApplicationRequest {
                request_id: String::new(),
                app,
                history_id: id,
                prune: body.prune.unwrap_or(false),
                dry_run: false,
                ttl: None,
            }))
            .await?
        }
        "terminate" => {
            api.terminate_operation(caller.request(v1::TerminateOperationRequest {
                request_id: String::new(),
                app,
            }))
            .await?
        }
        other => {
            return Err(ApiError {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                message: format!("unknown command {other:?}: sync, refresh, rollback or terminate"),
            });
        }
    };
    Ok(Json(json::command_status(&status.into_inner())))
}

/// `GET /api/v1/commands/ID`: where a command stands (the console follows
/// the commands it issued until they end).
async fn get_command<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let status = c
        .inner
        .api
        .get_command(caller.request(v1::GetCommandRequest { command_id: id }))
        .await?
        .into_inner();
    Ok(Json(json::command_status(&status)))
}

/// Apps one console bulk call may name (a page of the table; the exact-name
/// filter takes at most 100 names).
const BULK_APPS: usize = 100;

#[derive(Debug, Default, Deserialize)]
struct BulkApp {
    project: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct BulkBody {
    /// `sync` or `refresh`.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    apps: Vec<BulkApp>,
    #[serde(flatten)]
    options: CommandBody,
}

/// `POST /api/v1/bulk`: Sync or Refresh the apps selected in the table.
/// They are named exactly (`ApplicationFilter.names` within their
/// projects) and sent as one `BulkCommand`. A name also matches edge apps
/// `NAME@cluster` and same-named apps of the other listed projects; when
/// the filter matches more apps than were selected, each selected app gets
/// its own command instead, so nothing unselected is touched.
async fn bulk<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody<BulkBody>,
) -> ApiResult {
    require_csrf(&headers)?;
    let mut selected: Vec<(String, String)> = body
        .apps
        .iter()
        .filter(|a| !a.project.is_empty() && !a.name.is_empty())
        .map(|a| (a.project.clone(), a.name.clone()))
        .collect();
    selected.sort();
    selected.dedup();
    if selected.is_empty() {
        return Err(ApiError::bad_request("select at least one application"));
    }
    if selected.len() > BULK_APPS {
        return Err(ApiError::bad_request(format!(
            "at most {BULK_APPS} applications at once ({} selected)",
            selected.len()
        )));
    }
    let kind = match body.kind.as_str() {
        "sync" => v1::bulk_command_request::Kind::Sync(body.options.sync()?),
        "refresh" => v1::bulk_command_request::Kind::Refresh(v1::RefreshCommand {
            hard: body.options.hard.unwrap_or(false),
        }),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown bulk command {other:?}: sync or refresh"
            )));
        }
    };
    let mut names: Vec<String> = selected.iter().map(|(_, n)| n.clone()).collect();
    names.sort();
    names.dedup();
    let mut projects: Vec<String> = selected.iter().map(|(p, _)| p.clone()).collect();
    projects.sort();
    projects.dedup();
    let filter = v1::ApplicationFilter {
        projects,
        names,
        ..Default::default()
    };
    let api = &c.inner.api;
    let matched = api
        .count_applications(caller.request(v1::CountApplicationsRequest {
            filter: Some(filter.clone()),
        }))
        .await?
        .into_inner()
        .total;
    if matched == selected.len() as u64 {
        let response = api
            .bulk_command(caller.request(v1::BulkCommandRequest {
                filter: Some(filter),
                kind: Some(kind),
                ttl: None,
            }))
            .await?
            .into_inner();
        let commands: Vec<Value> = response.commands.iter().map(json::command_status).collect();
        return Ok(Json(
            json!({"selected": selected.len(), "commands": commands, "failed": []}),
        ));
    }
    // The names match more than the selection: one command per selected app.
    let mut commands = Vec::new();
    let mut failed = Vec::new();
    for (project, name) in &selected {
        let app = app_ref(project.clone(), name.clone());
        let result = match &kind {
            v1::bulk_command_request::Kind::Sync(sync) => {
                api.sync_application(caller.request(v1::SyncApplicationRequest {
                    request_id: String::new(),
                    app,
                    sync: Some(sync.clone()),
                    ttl: None,
                }))
                .await
            }
            v1::bulk_command_request::Kind::Refresh(refresh) => {
                api.refresh_application(caller.request(v1::RefreshApplicationRequest {
                    request_id: String::new(),
                    app,
                    hard: refresh.hard,
                    ttl: None,
                }))
                .await
            }
        };
        match result {
            Ok(status) => {
                let mut value = json::command_status(&status.into_inner());
                value["app"] = json!(format!("{project}/{name}"));
                commands.push(value);
            }
            Err(status) => failed.push(json!({
                "app": format!("{project}/{name}"),
                "message": status.message(),
            })),
        }
    }
    Ok(Json(
        json!({"selected": selected.len(), "commands": commands, "failed": failed}),
    ))
}

// === clusters, projects, appsets, events ===

#[derive(Debug, Default, Deserialize)]
struct ClustersQuery {
    /// A label selector (`env=dev,region in (eu,us)`): only the clusters it matches.
    selector: Option<String>,
}

async fn clusters<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ClustersQuery>,
) -> ApiResult {
    let filter = selector(&q.selector, "cluster label selector")?.map(|s| v1::ClusterFilter {
        selector: Some(s),
        ..Default::default()
    });
    let mut items = Vec::new();
    let mut token = String::new();
    // Clusters are bounded (hundreds to a few thousand): the console shows
    // them all, a page of 1,000 at a time.
    loop {
        let page = c
            .inner
            .api
            .list_clusters(caller.request(v1::ListClustersRequest {
                filter: filter.clone(),
                page_size: 1000,
                page_token: token,
            }))
            .await?
            .into_inner();
        items.extend(page.items.iter().map(json::cluster));
        if page.next_page_token.is_empty() || items.len() >= 20_000 {
            break;
        }
        token = page.next_page_token;
    }
    Ok(Json(json!({ "items": items })))
}

async fn get_cluster<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    let cluster = c
        .inner
        .api
        .get_cluster(caller.request(v1::GetClusterRequest { name }))
        .await?
        .into_inner();
    Ok(Json(json::cluster(&cluster)))
}

async fn projects<S: HubService>(State(c): State<Console<S>>, caller: Caller) -> ApiResult {
    let page = c
        .inner
        .api
        .list_projects(caller.request(v1::ListProjectsRequest {
            page_size: 1000,
            page_token: String::new(),
        }))
        .await?
        .into_inner();
    let items: Vec<Value> = page.items.iter().map(json::project).collect();
    Ok(Json(json!({ "items": items })))
}

async fn appsets<S: HubService>(State(c): State<Console<S>>, caller: Caller) -> ApiResult {
    let page = c
        .inner
        .api
        .list_application_sets(caller.request(v1::ListApplicationSetsRequest {
            page_size: 1000,
            ..Default::default()
        }))
        .await;
    match page {
        Ok(page) => {
            let mut items = Vec::new();
            for set in &page.into_inner().items {
                items.push(appset_json(&c, &caller, set).await);
            }
            Ok(Json(json!({ "items": items })))
        }
        // Application sets are not served by every hub yet: show none.
        Err(s) if s.code() == tonic::Code::Unimplemented => Ok(Json(json!({ "items": [] }))),
        Err(s) => Err(s.into()),
    }
}

async fn get_appset<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult {
    let set = c
        .inner
        .api
        .get_application_set(caller.request(v1::GetApplicationSetRequest { project, name }))
        .await?
        .into_inner();
    Ok(Json(appset_json(&c, &caller, &set).await))
}

/// A set as the console shows it. The apps of a set evaluated at a spoke
/// are known at the hub from the spoke's reports (each autonomous app names
/// its owner), not from an evaluation of the hub's own, so they are counted
/// there (one aggregate query per such set).
async fn appset_json<S: HubService>(
    c: &Console<S>,
    caller: &Caller,
    set: &v1::ApplicationSet,
) -> Value {
    let mut value = json::appset(set);
    if set.scope.is_empty() || set.scope == "hub" {
        return value;
    }
    let filter = v1::ApplicationFilter {
        // Each spoke names its own cluster as the owner's scope: a set evaluated at several (a list or a
        // selector) counts every cluster's apps.
        owner: Some(v1::OwnerRef {
            kind: "ApplicationSet".into(),
            project: set.project.clone(),
            name: set.name.clone(),
            scope: String::new(),
        }),
        ..Default::default()
    };
    match c
        .inner
        .api
        .count_applications(caller.request(v1::CountApplicationsRequest {
            filter: Some(filter),
        }))
        .await
    {
        Ok(counts) => value["generated"] = json!(counts.into_inner().total),
        // The set is still shown, without its count.
        Err(status) => tracing::warn!(
            project = %set.project,
            set = %set.name,
            code = ?status.code(),
            message = status.message(),
            "Console: cannot count the apps a spoke reported for an application set."
        ),
    }
    value
}

#[derive(Debug, Default, Deserialize)]
struct EventsQuery {
    limit: Option<u32>,
    cluster: Option<String>,
    /// `Warning`: only warnings.
    severity: Option<String>,
}

async fn events<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult {
    let min_severity = match q.severity.as_deref().unwrap_or_default() {
        "" | "Normal" => v1::EventSeverity::Unspecified,
        "Warning" => v1::EventSeverity::Warning,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown severity {other:?}: Normal or Warning"
            )));
        }
    };
    let events = c
        .inner
        .api
        .list_events(caller.request(v1::ListEventsRequest {
            cluster: q.cluster.unwrap_or_default(),
            min_severity: min_severity as i32,
            page_size: q.limit.unwrap_or(50).clamp(1, 500),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let items: Vec<Value> = events.items.iter().map(json::event).collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
struct DeploymentsQuery {
    limit: Option<u32>,
    cluster: Option<String>,
    project: Option<String>,
    app: Option<String>,
    user: Option<String>,
    /// `Succeeded`, `Failed` or `Error`, comma-separated.
    result: Option<String>,
    /// RFC 3339: finished at or after.
    since: Option<String>,
    /// RFC 3339: finished before.
    until: Option<String>,
    /// The `next` of the previous page.
    page: Option<String>,
}

/// An RFC 3339 query parameter.
fn query_time(
    value: Option<&str>,
    name: &str,
) -> Result<Option<edgecd_proto::Timestamp>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(edgecd_proto::convert::timestamp(t)))
        .map_err(|_| ApiError::bad_request(format!("{name}: {value:?} is not an RFC 3339 time")))
}

/// `GET /api/v1/deployments`: the fleet's deployment record, newest first, a page at a time (`next`).
async fn deployments<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeploymentsQuery>,
) -> ApiResult {
    let mut results = Vec::new();
    for name in q.result.as_deref().unwrap_or_default().split(',') {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        match edgecd_core::app::OperationPhase::parse(name).filter(|p| p.is_finished()) {
            Some(phase) => results.push(edgecd_proto::convert::phase_code(phase) as i32),
            None => {
                return Err(ApiError::bad_request(format!(
                    "unknown result {name:?}: Succeeded, Failed or Error"
                )));
            }
        }
    }
    let page = c
        .inner
        .api
        .list_deployments(caller.request(v1::ListDeploymentsRequest {
            cluster: q.cluster.unwrap_or_default(),
            project: q.project.unwrap_or_default(),
            app: q.app.unwrap_or_default(),
            initiated_by: q.user.unwrap_or_default(),
            results,
            since: query_time(q.since.as_deref(), "since")?,
            until: query_time(q.until.as_deref(), "until")?,
            page_size: q.limit.unwrap_or(100).clamp(1, 500),
            page_token: q.page.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    let items: Vec<Value> = page.items.iter().map(json::deployment).collect();
    Ok(Json(
        json!({ "items": items, "next": page.next_page_token }),
    ))
}

// === live updates ===

#[derive(Debug, Default, Deserialize)]
struct WatchQuery {
    resume: Option<String>,
}

/// `GET /api/v1/watch`: app and cluster changes as server-sent events
/// (`app`, `app-deleted`, `cluster`), each with the hub's resume token as
/// its id, so a reconnecting browser (`Last-Event-ID`) misses nothing.
async fn watch<S: HubService>(
    State(c): State<Console<S>>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WatchQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // The browser's own reconnect sends Last-Event-ID; a stream reopened
    // by the console (after the tab was hidden) passes `?resume=`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.resume)
        .unwrap_or_default();
    let request = v1::WatchRequest {
        kinds: vec![
            v1::WatchKind::Applications as i32,
            v1::WatchKind::Clusters as i32,
        ],
        app_filter: None,
        resume_token: resume,
    };
    let stream = c
        .inner
        .api
        .watch(caller.request(request))
        .await?
        .into_inner();
    let events = stream
        .filter_map(|item| async move {
            let event = item.ok()?;
            sse_event(&event).map(Ok)
        })
        .boxed();
    let events = match c.appset_feed() {
        // The stream ends when Watch's does (the browser then reconnects
        // and resumes), whatever the application-set feed does.
        Some(feed) => {
            let watch = events
                .map(Some)
                .chain(futures::stream::once(async { None }));
            let appsets = appset_events(c.clone(), caller, feed).map(Some);
            futures::stream::select(watch, appsets)
                .take_while(|event| futures::future::ready(event.is_some()))
                .filter_map(futures::future::ready)
                .boxed()
        }
        None => events,
    };
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Application-set changes announced on the store's notification channels
/// (a set applied or deleted through the API, a new status from the hub's
/// evaluation; payload `project/name`, or `*` when notifications may have
/// been missed), shared by every console stream of this process. The task
/// listening for them ends with the last stream using it.
#[derive(Debug)]
struct AppSetFeed {
    changes: broadcast::Sender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AppSetFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S> Console<S> {
    /// The running application-set feed, started if no stream uses one;
    /// `None` without a store.
    fn appset_feed(&self) -> Option<Arc<AppSetFeed>> {
        let store = self.inner.config.store.clone()?;
        let mut slot = self
            .inner
            .appsets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(feed) = slot.upgrade() {
            return Some(feed);
        }
        let (changes, _) = broadcast::channel(256);
        let sender = changes.clone();
        let task = tokio::spawn(async move {
            let mut events = crate::store::follow(
                store,
                &[APPSETS_CHANNEL, APPSET_STATUS_CHANNEL],
                "console application sets",
            );
            while let Some(event) = events.next().await {
                let payload = match event {
                    ListenEvent::Notification { payload, .. } => payload,
                    ListenEvent::Lagged => "*".to_owned(),
                };
                let _ = sender.send(payload);
            }
        });
        let feed = Arc::new(AppSetFeed { changes, task });
        *slot = Arc::downgrade(&feed);
        Some(feed)
    }
}

/// One console stream's `appset` events: for each announced set the caller
/// may read, the set as `GET /api/v1/appsets/P/N` shows it; `appset-deleted`
/// (`{project, name}`) when it no longer exists; `{"all": true}` when the
/// page should re-read the list (missed notifications). Sets of projects
/// the caller may not read are not announced.
fn appset_events<S: HubService>(
    c: Console<S>,
    caller: Caller,
    feed: Arc<AppSetFeed>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let changes = feed.changes.subscribe();
    futures::stream::unfold(
        (changes, feed, c, caller),
        |(mut changes, feed, c, caller)| async move {
            loop {
                let payload = match changes.recv().await {
                    Ok(payload) => payload,
                    Err(broadcast::error::RecvError::Lagged(_)) => "*".to_owned(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                if let Some(event) = appset_event(&c, &caller, &payload).await {
                    return Some((Ok(event), (changes, feed, c, caller)));
                }
            }
        },
    )
}

async fn appset_event<S: HubService>(
    c: &Console<S>,
    caller: &Caller,
    payload: &str,
) -> Option<Event> {
    let Some((project, name)) = payload.split_once('/') else {
        return Some(
            Event::default()
                .event("appset")
                .data(json!({"all": true}).to_string()),
        );
    };
    let request = v1::GetApplicationSetRequest {
        project: project.to_owned(),
        name: name.to_owned(),
    };
    match c
        .inner
        .api
        .get_application_set(caller.request(request))
        .await
    {
        Ok(set) => {
            let value = appset_json(c, caller, &set.into_inner()).await;
            Some(Event::default().event("appset").data(value.to_string()))
        }
        // Authorization comes first, so NotFound means a readable set is gone.
        Err(status) if status.code() == tonic::Code::NotFound => Some(
            Event::default()
                .event("appset-deleted")
                .data(json!({"project": project, "name": name}).to_string()),
        ),
        // A set the caller may not read is not announced.
        Err(status) if status.code() == tonic::Code::PermissionDenied => None,
        Err(status) => {
            tracing::warn!(
                project,
                set = name,
                code = ?status.code(),
                message = status.message(),
                "Console: cannot read a changed application set; not announced."
            );
            None
        }
    }
}

fn sse_event(e: &v1::WatchEvent) -> Option<Event> {
    let deleted = e.r#type == v1::WatchEventType::Deleted as i32;
    let (name, data) = match e.object.as_ref()? {
        v1::watch_event::Object::Application(a) => (
            if deleted { "app-deleted" } else { "app" },
            json::app_summary(a),
        ),
        v1::watch_event::Object::Cluster(cl) => ("cluster", json::cluster(cl)),
        _ => return None,
    };
    let mut event = Event::default().event(name).data(data.to_string());
    if !e.resume_token.is_empty() {
        event = event.id(e.resume_token.clone());
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; edgecd_session=tok; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("tok"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(bearer_token(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn list_query_maps_to_a_filter() {
        let q = AppListQuery {
            cluster: Some("cluster-1,cluster-2".into()),
            health: Some("Degraded".into()),
            cluster_label: Some("region=eu".into()),
            sort: Some("updated".into()),
            desc: Some("1".into()),
            ..Default::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(f.clusters, vec!["cluster-1", "cluster-2"]);
        assert_eq!(f.health, vec![v1::HealthStatusCode::Degraded as i32]);
        assert!(f.cluster_selector.is_some());
        let s = q.sort().unwrap();
        assert!(s.descending);
        assert_eq!(s.field, v1::ApplicationSortField::UpdatedAt as i32);
    }

    #[test]
    fn owner_filter_names_the_set() {
        let q = AppListQuery {
            owner: Some("default/nginx".into()),
            owner_scope: Some("hub".into()),
            ..Default::default()
        };
        let owner = q.filter().unwrap().owner.unwrap();
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.project.as_str(),
                owner.name.as_str()
            ),
            ("ApplicationSet", "default", "nginx")
        );
        assert_eq!(owner.scope, "hub");
        let q = AppListQuery {
            project: Some("edge".into()),
            owner: Some("addons".into()),
            ..Default::default()
        };
        let owner = q.filter().unwrap().owner.unwrap();
        assert_eq!((owner.project.as_str(), owner.scope.as_str()), ("edge", ""));
    }

    #[test]
    fn bad_filters_are_named() {
        let q = AppListQuery {
            health: Some("Great".into()),
            ..Default::default()
        };
        let err = q.filter().unwrap_err();
        assert_eq!(err.message, "unknown health \"Great\"");
        let q = AppListQuery {
            cluster_label: Some("region in (".into()),
            ..Default::default()
        };
        assert!(
            q.filter()
                .unwrap_err()
                .message
                .contains("cluster label selector")
        );
    }
}
