//! HTTPS listener, bearer-token authentication and request routing onto the stores of the simulated clusters.
//!
//! Every cluster is served under `/clusters/<name>`; when only one cluster is hosted it is also served at
//! the root. Paths follow the Kubernetes layout (`/api/v1/...`, `/apis/{group}/{version}/...`).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::discovery;
use super::exec::{self, ExecLimits};
use super::openapi;
use super::protobuf;
use super::resources::ResourceType;
use super::selectors::{FieldSelector, LabelSelector};
use super::stages;
use super::status::{ApiError, ApiResult, Cause};
use super::store::{DeleteOptions, ListQuery, PatchBody, Store, Subresource, WriteOptions};
use super::table;
use super::watch::{self as watching, WatchParams};

/// The response body type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

const MAX_BODY: usize = 3 * 1024 * 1024;

/// One hosted cluster as the router sees it.
#[derive(Debug)]
pub struct ClusterEntry {
    /// Bearer token accepted by this cluster.
    pub token: String,
    /// The store.
    pub store: Arc<Store>,
    /// Errors to answer matching requests with, instead of serving them.
    pub injections: Arc<std::sync::Mutex<Vec<InjectedError>>>,
}

/// A canned error for requests matching a method and a path fragment (fault injection for client tests).
#[derive(Debug, Clone)]
pub struct InjectedError {
    /// Method to match, or any.
    pub method: Option<Method>,
    /// Substring the request path (below the cluster prefix) must contain.
    pub path_contains: String,
    /// The error to return.
    pub error: ApiError,
    /// How many matching requests get the error.
    pub times: usize,
}

/// Everything the router needs.
#[derive(Debug)]
pub struct Host {
    /// Clusters by name.
    pub clusters: BTreeMap<String, ClusterEntry>,
    /// `host:port` of the listener, for `/api`.
    pub server_address: String,
    /// Interval of periodic watch bookmarks.
    pub bookmark_interval: Duration,
    /// Pace of followed pod logs: this many lines every interval.
    pub log_follow_interval: Duration,
    pub log_follow_lines: usize,
    /// Limits of `pods/exec` sessions.
    pub exec: ExecLimits,
    /// Flips to true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// Accepts TLS connections until shutdown.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, host: Arc<Host>) {
    let mut shutdown = host.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let acceptor = acceptor.clone();
        let host = host.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut shutdown = host.shutdown.clone();
            let service = hyper::service::service_fn(move |req| {
                let host = host.clone();
                async move { Ok::<_, Infallible>(handle(&host, req).await) }
            });
            // Upgrades: `pods/exec` switches the connection to WebSocket (the listener offers only HTTP/1.1 by
            // ALPN, as kube-apiserver's clients use for exec: client-go's WebSocket dialer and kube-rs, which
            // speaks HTTP/1.1 only).
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            tokio::select! {
                _ = conn => {}
                _ = shutdown.changed() => {}
            }
        });
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &err.to_status())
}

fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

fn take_injection(cluster: &ClusterEntry, method: &Method, path: &str) -> Option<ApiError> {
    let mut injections = cluster
        .injections
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let hit = injections.iter_mut().find(|i| {
        i.times > 0
            && i.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&i.path_contains)
    })?;
    hit.times -= 1;
    let err = hit.error.clone();
    injections.retain(|i| i.times > 0);
    Some(err)
}

async fn handle(host: &Host, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let (cluster, rest) = match path.strip_prefix("/clusters/") {
        Some(after) => {
            let (name, rest) = after.split_once('/').map_or((after, ""), |(n, r)| (n, r));
            match host.clusters.get(name) {
                Some(c) => (c, format!("/{rest}")),
                None => return error_response(&ApiError::path_not_found()),
            }
        }
        None => match host.clusters.values().next() {
            Some(c) if host.clusters.len() == 1 => (c, path.clone()),
            _ => return error_response(&ApiError::path_not_found()),
        },
    };
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == cluster.token);
    if !authorized {
        return error_response(&ApiError::unauthorized());
    }
    if let Some(err) = take_injection(cluster, req.method(), &rest) {
        return error_response(&err);
    }
    match route(host, cluster, req, &rest).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    }
}

struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
    fn list_query(&self) -> ApiResult<ListQuery> {
        Ok(ListQuery {
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())?,
            limit: match self.get("limit") {
                Some(l) => Some(
                    l.parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid limit: {l}")))?,
                ),
                None => None,
            },
            continue_token: self
                .get("continue")
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        })
    }
}

/// What a resource path names.
struct Target {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

async fn route(
    host: &Host,
    cluster: &ClusterEntry,
    req: Request<Incoming>,
    path: &str,
) -> ApiResult<Response<Body>> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let store = &cluster.store;
    let registry = store.registry();
    let is_get = req.method() == Method::GET;
    match segs.as_slice() {
        ["version"] if is_get => return Ok(ok(&discovery::version())),
        ["healthz" | "livez" | "readyz"] if is_get => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")).boxed_unsync());
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return Ok(resp);
        }
        ["api"] if is_get => {
            return Ok(if discovery::wants_aggregated(&accept) {
                aggregated_response(&discovery::aggregated(&registry, true))
            } else {
                ok(&discovery::core_versions(&host.server_address))
            });
        }
        ["apis"] if is_get => {
            return Ok(if discovery::wants_aggregated(&accept) {
                aggregated_response(&discovery::aggregated(&registry, false))
            } else {
                ok(&discovery::group_list(&registry))
            });
        }
        ["api", "v1"] if is_get => {
            return discovery::resource_list(&registry, "", "v1")
                .map(|v| ok(&v))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", group] if is_get => {
            return discovery::group(&registry, group)
                .map(|v| ok(&v))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", group, version] if is_get => {
            return discovery::resource_list(&registry, group, version)
                .map(|v| ok(&v))
                .ok_or_else(ApiError::path_not_found);
        }
        ["openapi", "v3"] if is_get => return Ok(ok(&openapi::root(&registry))),
        ["openapi", "v3", "api", version] if is_get => {
            return openapi::group_version(&registry, "", version)
                .map(|v| ok(&v))
                .ok_or_else(ApiError::path_not_found);
        }
        ["openapi", "v3", "apis", group, version] if is_get => {
            return openapi::group_version(&registry, group, version)
                .map(|v| ok(&v))
                .ok_or_else(ApiError::path_not_found);
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let find = |plural: &str| {
        registry
            .find(group, version, plural)
            .ok_or_else(ApiError::path_not_found)
    };
    let target = match rest {
        ["namespaces", ns, plural, more @ ..] if !matches!(*plural, "status" | "finalize") => {
            let rt = find(plural)?;
            if !rt.namespaced {
                return Err(ApiError::path_not_found());
            }
            match more {
                [] => Target {
                    rt,
                    namespace: Some((*ns).to_string()),
                    name: None,
                    sub: None,
                },
                [name] => Target {
                    rt,
                    namespace: Some((*ns).to_string()),
                    name: Some((*name).to_string()),
                    sub: None,
                },
                [name, sub] => Target {
                    rt,
                    namespace: Some((*ns).to_string()),
                    name: Some((*name).to_string()),
                    sub: Some((*sub).to_string()),
                },
                _ => return Err(ApiError::path_not_found()),
            }
        }
        [plural, more @ ..] => {
            let rt = find(plural)?;
            let (name, sub) = match more {
                [] => (None, None),
                [name] => (Some((*name).to_string()), None),
                [name, sub] => (Some((*name).to_string()), Some((*sub).to_string())),
                _ => return Err(ApiError::path_not_found()),
            };
            if rt.namespaced && name.is_some() {
                return Err(ApiError::path_not_found());
            }
            Target {
                rt,
                namespace: None,
                name,
                sub,
            }
        }
        [] => return Err(ApiError::path_not_found()),
    };
    let query = Query::parse(req.uri().query());
    serve_resource(host, store, req, target, &query).await
}

fn aggregated_response(value: &Value) -> Response<Body> {
    let mut resp = ok(value);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
    );
    resp
}

async fn read_body(req: Request<Incoming>) -> ApiResult<(http::request::Parts, Bytes)> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: "the request body is too large or could not be read".into(),
            details: None,
        })?
        .to_bytes();
    Ok((parts, bytes))
}

/// The body of a create or update, decoded by its `Content-Type` as the real server does: JSON (also when
/// the type is missing) or YAML; anything else (protobuf, CBOR, ...) is answered `415` with the real
/// server's message. Protobuf is decoded for the kinds kubectl's typed `create` commands send (see
/// `protobuf`); client-go does not resend a request answered `415` as JSON.
fn parse_object(parts: &http::request::Parts, bytes: &[u8]) -> ApiResult<Value> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match content_type.split(';').next().unwrap_or_default().trim() {
        "" | "application/json" | "*/*" => parse_json(bytes),
        "application/yaml" => parse_apply(bytes),
        "application/vnd.kubernetes.protobuf" => protobuf::decode(bytes).map_err(|e| match e {
            protobuf::Error::Unsupported(what) => {
                tracing::debug!("answering 415 to a protobuf body: {what} is not decoded");
                ApiError::unsupported_body_media_type()
            }
            protobuf::Error::Malformed(why) => {
                ApiError::bad_request(format!("the protobuf request body is malformed: {why}"))
            }
        }),
        _ => Err(ApiError::unsupported_body_media_type()),
    }
}

fn parse_json(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn write_options(parts: &http::request::Parts, q: &Query) -> ApiResult<WriteOptions> {
    let dry_run = match q.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![Cause {
                    reason: "FieldValueNotSupported",
                    message: format!("Unsupported value: \"{other}\": supported values: \"All\""),
                    field: "dryRun".into(),
                }],
            ));
        }
    };
    let field_manager = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .or_else(|| {
            parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
        });
    if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::invalid_patch_options(Cause {
            reason: "FieldValueTooLong",
            message: "Too long: may not be more than 128 bytes".into(),
            field: "fieldManager".into(),
        }));
    }
    Ok(WriteOptions {
        dry_run,
        field_manager,
        force: q.flag("force"),
    })
}

fn subresource(target: &Target) -> ApiResult<Subresource> {
    match target.sub.as_deref() {
        None => Ok(Subresource::Main),
        Some("status") if target.rt.status => Ok(Subresource::Status),
        Some("scale") if target.rt.scale => Ok(Subresource::Scale),
        _ => Err(ApiError::path_not_found()),
    }
}

async fn serve_resource(
    host: &Host,
    store: &Arc<Store>,
    req: Request<Incoming>,
    target: Target,
    q: &Query,
) -> ApiResult<Response<Body>> {
    let rt = target.rt.clone();
    let ns = target.namespace.clone().unwrap_or_default();
    let method = req.method().clone();
    if target.sub.as_deref() == Some("exec") && rt.is("", "pods") {
        // kubectl's WebSocket attempt is a GET, its SPDY fallback a POST (answered with the same checks).
        return match (&method, target.name.as_deref()) {
            (&Method::GET | &Method::POST, Some(name)) => {
                exec::serve(
                    &host.exec,
                    host.shutdown.clone(),
                    store,
                    &rt,
                    req,
                    &ns,
                    name,
                )
                .await
            }
            (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
        };
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let metadata_only = accept.contains("as=PartialObjectMetadata");
    let as_table = table::wants_table(accept);
    match (&method, target.name.as_deref()) {
        (&Method::GET, None) => {
            if q.flag("watch") {
                return watch_response(host, store, rt, target.namespace, q, metadata_only);
            }
            if as_table {
                let list = store.list(&rt, target.namespace.as_deref(), &q.list_query()?)?;
                return Ok(ok(&table::table(&rt, &list, q.get("includeObject"))));
            }
            if metadata_only {
                let list = store.list(&rt, target.namespace.as_deref(), &q.list_query()?)?;
                return Ok(ok(&watching::partial_metadata_list(&list)));
            }
            Ok(ok(&store.list(
                &rt,
                target.namespace.as_deref(),
                &q.list_query()?,
            )?))
        }
        (&Method::GET, Some(name)) => match target.sub.as_deref() {
            None | Some("status") => {
                subresource(&target)?;
                let obj = store.get(&rt, &ns, name)?;
                if as_table && target.sub.is_none() {
                    return Ok(ok(&table::table(&rt, &obj, q.get("includeObject"))));
                }
                if metadata_only {
                    return Ok(ok(&watching::partial_metadata(&obj)));
                }
                Ok(ok(&obj))
            }
            Some("scale") => Ok(ok(&store.get_scale(&rt, &ns, name)?)),
            Some("log") if rt.is("", "pods") => {
                let pod = store.get(&rt, &ns, name)?;
                stages::check_log_container(&pod, q.get("container"))?;
                let tail = q.get("tailLines").and_then(|t| t.parse().ok());
                let text = stages::pod_logs(&pod, q.get("container"), tail);
                if !q.flag("follow") {
                    let mut resp = Response::new(Full::new(Bytes::from(text)).boxed_unsync());
                    resp.headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    return Ok(resp);
                }
                // Follow: the log so far, then more lines at the configured pace until the client goes away.
                let (tx, rx) = mpsc::channel::<Bytes>(4);
                let (interval, burst) = (host.log_follow_interval, host.log_follow_lines);
                let follow = store.log_follow();
                let container = q.get("container").map(str::to_owned);
                let mut shutdown = host.shutdown.clone();
                tokio::spawn(async move {
                    let _follow = follow;
                    if tx.send(Bytes::from(text)).await.is_err() {
                        return;
                    }
                    let mut tick = 0u64;
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep(interval) => {}
                            () = tx.closed() => return,
                            _ = shutdown.changed() => return,
                        }
                        let mut lines = String::new();
                        for _ in 0..burst {
                            tick += 1;
                            lines.push_str(&stages::follow_line(&pod, container.as_deref(), tick));
                        }
                        if tx.send(Bytes::from(lines)).await.is_err() {
                            return;
                        }
                    }
                });
                let stream = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
                let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                Ok(resp)
            }
            _ => Err(ApiError::path_not_found()),
        },
        (&Method::POST, None) => {
            let (parts, body) = read_body(req).await?;
            let opts = write_options(&parts, q)?;
            let created = store.create(&rt, &ns, parse_object(&parts, &body)?, &opts)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::PUT, Some(name)) => {
            let sub = subresource(&target)?;
            let (parts, body) = read_body(req).await?;
            let opts = write_options(&parts, q)?;
            Ok(ok(&store.replace(
                &rt,
                &ns,
                name,
                parse_object(&parts, &body)?,
                &opts,
                sub,
            )?))
        }
        (&Method::PATCH, Some(name)) => {
            let sub = subresource(&target)?;
            let (parts, body) = read_body(req).await?;
            let opts = write_options(&parts, q)?;
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let media = content_type.split(';').next().unwrap_or_default().trim();
            let is_apply =
                media == "application/apply-patch+yaml" || media == "application/apply-patch+cbor";
            if !is_apply && q.get("force").is_some() {
                return Err(ApiError::invalid_patch_options(Cause {
                    reason: "FieldValueForbidden",
                    message: "Forbidden: may not be specified for non-apply patch".into(),
                    field: "force".into(),
                }));
            }
            if is_apply && q.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid_patch_options(Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }));
            }
            let patch = match media {
                "application/apply-patch+yaml" => PatchBody::Apply(parse_apply(&body)?),
                "application/merge-patch+json" => PatchBody::Merge(parse_json(&body)?),
                "application/strategic-merge-patch+json" => {
                    PatchBody::Strategic(parse_json(&body)?)
                }
                "application/json-patch+json" => {
                    let ops: json_patch::Patch = serde_json::from_slice(&body)
                        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                    if ops.0.len() > 10_000 {
                        return Err(ApiError {
                            code: 413,
                            reason: "RequestEntityTooLarge",
                            message: "The allowed maximum operations in a JSON patch is 10000"
                                .into(),
                            details: None,
                        });
                    }
                    PatchBody::Json(ops)
                }
                _ => return Err(ApiError::unsupported_patch_media_type()),
            };
            let (obj, created) = store.patch(&rt, &ns, name, patch, &opts, sub)?;
            Ok(json_response(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &obj,
            ))
        }
        (&Method::DELETE, Some(name)) => {
            if target.sub.is_some() {
                return Err(ApiError::method_not_allowed("DELETE"));
            }
            let (_, body) = read_body(req).await?;
            let opts = delete_options(&body, q)?;
            Ok(ok(&store.delete(&rt, &ns, name, &opts)?))
        }
        (&Method::DELETE, None) => {
            let (_, body) = read_body(req).await?;
            let opts = delete_options(&body, q)?;
            Ok(ok(&store.delete_collection(
                &rt,
                target.namespace.as_deref(),
                &q.list_query()?,
                &opts,
            )?))
        }
        (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

fn parse_apply(body: &[u8]) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

fn delete_options(body: &[u8], q: &Query) -> ApiResult<DeleteOptions> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        parse_json(body)?
    };
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let dry_run = v
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == "All"))
        || q.get("dryRun") == Some("All");
    let orphan = v.get("orphanDependents").and_then(Value::as_bool);
    let propagation = s("/propagationPolicy")
        .or_else(|| q.get("propagationPolicy").map(str::to_string))
        .or_else(|| {
            orphan.map(|o| {
                if o {
                    "Orphan".to_string()
                } else {
                    "Background".to_string()
                }
            })
        });
    Ok(DeleteOptions {
        propagation,
        dry_run,
        grace_period: v
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or_else(|| q.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
        precondition_uid: s("/preconditions/uid"),
        precondition_rv: s("/preconditions/resourceVersion"),
    })
}

fn watch_response(
    host: &Host,
    store: &Arc<Store>,
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    q: &Query,
    metadata_only: bool,
) -> ApiResult<Response<Body>> {
    let params = WatchParams {
        namespace,
        metadata_only,
        resource_version: q.get("resourceVersion").map(str::to_string),
        resource_version_match: q.get("resourceVersionMatch").map(str::to_string),
        send_initial_events: q.flag("sendInitialEvents"),
        bookmarks: q.flag("allowWatchBookmarks"),
        timeout: q
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs),
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?,
    };
    let start = watching::validate(&params)?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(watching::run(
        store.clone(),
        rt,
        params,
        start,
        host.bookmark_interval,
        tx,
        host.shutdown.clone(),
    ));
    let stream = ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
