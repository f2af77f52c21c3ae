//! The spoke's adapter to its own cluster through kube-rs: resolves kinds by discovery (cached, refreshed on a miss), prepares rendered objects (namespace, tracking), applies them server-side (optionally dry-run), reads and deletes them.

use std::collections::HashMap;
use std::sync::Arc;

use edgecd_core::app::ResourceKey;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    PropagationPolicy, ValidationDirective,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::plan::{APP_LABEL, TRACKING_ANNOTATION, tracking_id};

/// The field manager of everything the spoke applies.
pub const FIELD_MANAGER: &str = "edgecd";

/// Errors talking to the cluster, naming the object concerned.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: the server does not know kind {kind} in {api_version}")]
    UnknownKind {
        what: String,
        api_version: String,
        kind: String,
    },
    #[error("{what}: {reason}")]
    InvalidObject { what: String, reason: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
}

impl ClusterError {
    /// Whether retrying later may help (network, server errors, conflicts).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { source, .. } => match source.as_ref() {
                kube::Error::Api(status) => {
                    status.code >= 500 || status.code == 409 || status.code == 429
                }
                _ => true,
            },
            _ => false,
        }
    }
}

/// A kind the server serves.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// Take over fields owned by other managers.
    pub force: bool,
    /// Ask the API server to drop unknown or duplicate fields without a warning (`fieldValidation=Ignore`,
    /// Argo CD's `Validate=false`). Otherwise the server's default applies (`Warn`: dropped, with a warning).
    pub skip_field_validation: bool,
}

/// How a delete propagates to the object's dependents (Argo CD's `PrunePropagationPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted first; the object stays (with a deletion timestamp) until they are gone.
    Foreground,
    /// The object goes at once; the garbage collector deletes its dependents afterwards.
    #[default]
    Background,
    /// Dependents stay, without the owner reference.
    Orphan,
}

impl Propagation {
    /// Parses Argo CD's option value (`foreground`, `background`, `orphan`, any case).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "foreground" => Some(Self::Foreground),
            "background" => Some(Self::Background),
            "orphan" => Some(Self::Orphan),
            _ => None,
        }
    }

    fn policy(self) -> PropagationPolicy {
        match self {
            Self::Foreground => PropagationPolicy::Foreground,
            Self::Background => PropagationPolicy::Background,
            Self::Orphan => PropagationPolicy::Orphan,
        }
    }
}

/// How long the list of namespaced kinds found by discovery is reused.
const LISTABLE_KINDS_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// The namespaced kinds the server lists, found by discovery, and when.
type ListableKinds = Option<(std::time::Instant, Arc<Vec<ApiResource>>)>;

/// (group, version, kind).
type KindKey = (String, String, String);

/// A cluster reached with one kube client.
#[derive(Clone)]
pub struct LiveCluster {
    client: kube::Client,
    kinds: Arc<RwLock<HashMap<KindKey, Resolved>>>,
    listable: Arc<RwLock<ListableKinds>>,
    capabilities: Arc<RwLock<CachedCapabilities>>,
}

/// The cluster's Helm capabilities found by discovery, and when.
type CachedCapabilities = Option<(std::time::Instant, Arc<edgecd_helm::Capabilities>)>;

/// Splits `group/version` (or `version` for the core group).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

fn describe(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

impl std::fmt::Debug for LiveCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCluster").finish_non_exhaustive()
    }
}

impl LiveCluster {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            kinds: Arc::default(),
            listable: Arc::default(),
            capabilities: Arc::default(),
        }
    }

    /// What Helm charts see as `.Capabilities`: the server's version and every `group/version` and
    /// `group/version/Kind` it serves (all versions of every group), by discovery; reused for ten minutes,
    /// forgotten with the kinds (after the spoke's own sync applies CRDs) and at a hard refresh.
    pub async fn capabilities(&self) -> Result<Arc<edgecd_helm::Capabilities>, ClusterError> {
        if let Some((at, capabilities)) = self.capabilities.read().await.as_ref()
            && at.elapsed() < LISTABLE_KINDS_TTL
        {
            return Ok(Arc::clone(capabilities));
        }
        let kube_version = self.server_version().await?;
        let discovery = kube::discovery::Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| ClusterError::Api {
                what: "discovering the served API versions".into(),
                source: Box::new(e),
            })?;
        let mut api_versions = std::collections::BTreeSet::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, _) in group.versioned_resources(version) {
                    api_versions.insert(resource.api_version.clone());
                    api_versions.insert(format!("{}/{}", resource.api_version, resource.kind));
                }
            }
        }
        let capabilities = Arc::new(edgecd_helm::Capabilities {
            kube_version,
            api_versions: api_versions.into_iter().collect(),
        });
        *self.capabilities.write().await =
            Some((std::time::Instant::now(), Arc::clone(&capabilities)));
        Ok(capabilities)
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The server's version, e.g. `v1.33.0`.
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        self.client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .map_err(|e| ClusterError::Api {
                what: "reading the server version".into(),
                source: Box::new(e),
            })
    }

    /// Resolves `apiVersion` + `kind`, asking the server when not cached
    /// (a CRD created moments ago is found on the next call).
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, ClusterError> {
        let (group, version) = split_api_version(api_version);
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        if let Some(found) = self.kinds.read().await.get(&key) {
            return Ok(found.clone());
        }
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk).await;
        let (resource, capabilities): (ApiResource, ApiCapabilities) = match found {
            Ok(found) => found,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(ClusterError::UnknownKind {
                    what: format!("{kind} ({api_version})"),
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                });
            }
            Err(kube::Error::Discovery(_)) => {
                return Err(ClusterError::UnknownKind {
                    what: format!("{kind} ({api_version})"),
                    api_version: api_version.to_owned(),
                    kind: kind.to_owned(),
                });
            }
            Err(e) => {
                return Err(ClusterError::Api {
                    what: format!("discovering {kind} ({api_version})"),
                    source: Box::new(e),
                });
            }
        };
        let resolved = Resolved {
            resource,
            namespaced: capabilities.scope == Scope::Namespaced,
        };
        self.kinds.write().await.insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Forgets cached kinds (after CRDs change).
    /// Forgets the discovered Helm capabilities only (a hard refresh: a CRD another actor installed is seen by
    /// the next render, not ten minutes later).
    pub async fn forget_capabilities(&self) {
        *self.capabilities.write().await = None;
    }

    pub async fn forget_kinds(&self) {
        self.kinds.write().await.clear();
        *self.listable.write().await = None;
        *self.capabilities.write().await = None;
    }

    /// Every namespaced kind the server can list (the preferred version of each group), by discovery: one call
    /// per group version, reused for ten minutes.
    pub async fn listable_namespaced_kinds(&self) -> Result<Arc<Vec<ApiResource>>, ClusterError> {
        if let Some((at, kinds)) = self.listable.read().await.as_ref()
            && at.elapsed() < LISTABLE_KINDS_TTL
        {
            return Ok(Arc::clone(kinds));
        }
        let discovery = kube::discovery::Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| ClusterError::Api {
                what: "discovering the served kinds".into(),
                source: Box::new(e),
            })?;
        let mut kinds = Vec::new();
        for group in discovery.groups() {
            for (resource, capabilities) in group.recommended_resources() {
                if capabilities.scope == Scope::Namespaced
                    && capabilities.supports_operation(kube::discovery::verbs::LIST)
                {
                    kinds.push(resource);
                }
            }
        }
        let kinds = Arc::new(kinds);
        *self.listable.write().await = Some((std::time::Instant::now(), Arc::clone(&kinds)));
        Ok(kinds)
    }

    /// The metadata of the objects of one kind in `namespace`, at most `limit` of them; the flag says
    /// whether the server has more.
    pub async fn list_metadata(
        &self,
        resource: &ApiResource,
        namespace: &str,
        limit: u32,
    ) -> Result<(Vec<kube::core::ObjectMeta>, bool), ClusterError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, resource);
        let list = api
            .list_metadata(&ListParams::default().limit(limit))
            .await
            .map_err(|e| ClusterError::Api {
                what: format!("listing {} in namespace {namespace}", resource.kind),
                source: Box::new(e),
            })?;
        let more = list
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty());
        Ok((list.items.into_iter().map(|o| o.metadata).collect(), more))
    }

    /// Resolves a rendered object and makes it ready to apply for `app`:
    /// namespaced objects without a namespace get `default_namespace`,
    /// cluster-scoped ones lose any namespace, and the tracking annotation
    /// and app label are set.
    pub async fn prepare(
        &self,
        app: &str,
        app_label: &str,
        default_namespace: &str,
        mut obj: Value,
    ) -> Result<(ResourceKey, Value), ClusterError> {
        let what = describe(&obj);
        let invalid = |reason: &str| ClusterError::InvalidObject {
            what: what.clone(),
            reason: reason.to_owned(),
        };
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("missing apiVersion"))?
            .to_owned();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("missing kind"))?
            .to_owned();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("missing metadata.name"))?
            .to_owned();
        let resolved = self
            .resolve(&api_version, &kind)
            .await
            .map_err(|e| match e {
                ClusterError::UnknownKind {
                    api_version, kind, ..
                } => ClusterError::UnknownKind {
                    what: what.clone(),
                    api_version,
                    kind,
                },
                other => other,
            })?;
        let metadata = obj
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| invalid("metadata is not a mapping"))?;
        let namespace = if resolved.namespaced {
            let ns = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    if default_namespace.is_empty() {
                        "default".to_owned()
                    } else {
                        default_namespace.to_owned()
                    }
                });
            metadata.insert("namespace".into(), Value::String(ns.clone()));
            ns
        } else {
            metadata.remove("namespace");
            String::new()
        };
        let (group, version) = split_api_version(&api_version);
        let key = ResourceKey {
            group: group.to_owned(),
            version: version.to_owned(),
            kind,
            namespace,
            name,
        };
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(
                TRACKING_ANNOTATION.into(),
                Value::String(tracking_id(app, &key)),
            );
        }
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(map) = labels.as_object_mut() {
            map.insert(APP_LABEL.into(), Value::String(app_label.to_owned()));
        }
        Ok((key, obj))
    }

    async fn api_for(&self, key: &ResourceKey) -> Result<Api<DynamicObject>, ClusterError> {
        let api_version = if key.group.is_empty() {
            key.version.clone()
        } else {
            format!("{}/{}", key.group, key.version)
        };
        let resolved = self.resolve(&api_version, &key.kind).await?;
        Ok(if resolved.namespaced {
            Api::namespaced_with(self.client.clone(), &key.namespace, &resolved.resource)
        } else {
            Api::all_with(self.client.clone(), &resolved.resource)
        })
    }

    /// Server-side apply with field manager `edgecd`; returns the object as
    /// the server has it (or would have it, for a dry run).
    #[tracing::instrument(skip_all, fields(object = %key, dry_run = options.dry_run))]
    pub async fn apply(
        &self,
        key: &ResourceKey,
        obj: &Value,
        options: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        let api = self.api_for(key).await?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = options.force;
        params.dry_run = options.dry_run;
        if options.skip_field_validation {
            params.field_validation = Some(ValidationDirective::Ignore);
        }
        let applied = api
            .patch(&key.name, &params, &Patch::Apply(obj))
            .await
            .map_err(|e| ClusterError::Api {
                what: format!("applying {key}"),
                source: Box::new(e),
            })?;
        serde_json::to_value(applied).map_err(|e| ClusterError::InvalidObject {
            what: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Replaces the object with `obj` (an HTTP PUT over the live object's `resourceVersion`, Argo CD's
    /// `Replace=true`), or creates it when it does not exist; field manager `edgecd`. Fields `obj` does not set
    /// are dropped, whoever set them.
    #[tracing::instrument(skip_all, fields(object = %key, dry_run = options.dry_run))]
    pub async fn replace(
        &self,
        key: &ResourceKey,
        obj: &Value,
        options: ApplyOptions,
    ) -> Result<Value, ClusterError> {
        let api = self.api_for(key).await?;
        let params = PostParams {
            dry_run: options.dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let mut data: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| ClusterError::InvalidObject {
                what: key.to_string(),
                reason: e.to_string(),
            })?;
        let api_error = |verb: &str| {
            let what = format!("{verb} {key}");
            move |e| ClusterError::Api {
                what,
                source: Box::new(e),
            }
        };
        let live = api.get_opt(&key.name).await.map_err(api_error("reading"))?;
        let written = match live {
            None => api
                .create(&params, &data)
                .await
                .map_err(api_error("creating"))?,
            Some(live) => {
                data.metadata.resource_version = live.metadata.resource_version;
                api.replace(&key.name, &params, &data)
                    .await
                    .map_err(api_error("replacing"))?
            }
        };
        serde_json::to_value(written).map_err(|e| ClusterError::InvalidObject {
            what: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads one object; `None` if it does not exist.
    pub async fn get(&self, key: &ResourceKey) -> Result<Option<Value>, ClusterError> {
        let api = self.api_for(key).await?;
        let found = api
            .get_opt(&key.name)
            .await
            .map_err(|e| ClusterError::Api {
                what: format!("reading {key}"),
                source: Box::new(e),
            })?;
        found
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ClusterError::InvalidObject {
                what: key.to_string(),
                reason: e.to_string(),
            })
    }

    /// Deletes one object only if its tracking annotation names `app` (`project/name`): an app
    /// being removed never deletes an object another app (or nobody) manages, nor one that carries the sync
    /// option `Delete=false` (Argo CD's way to keep a resource when its app is deleted). `false` if the
    /// object was gone, is not the app's or is kept.
    #[tracing::instrument(skip_all, fields(object = %key, app))]
    pub async fn delete_managed(&self, app: &str, key: &ResourceKey) -> Result<bool, ClusterError> {
        match self.get(key).await? {
            Some(live)
                if crate::plan::is_managed_by(&live, app, key)
                    && crate::plan::has_object_sync_option(&live, "Delete=false") =>
            {
                tracing::info!("Keeping an object marked Delete=false.");
                Ok(false)
            }
            Some(live) if crate::plan::is_managed_by(&live, app, key) => self.delete(key).await,
            Some(_) => {
                tracing::info!("Not deleting an object the app does not manage.");
                Ok(false)
            }
            None => Ok(false),
        }
    }

    /// Deletes one object (background propagation); `false` if it was gone.
    pub async fn delete(&self, key: &ResourceKey) -> Result<bool, ClusterError> {
        self.delete_with(key, Propagation::Background).await
    }

    /// Deletes one object with the given propagation to its dependents; `false` if it was gone.
    #[tracing::instrument(skip_all, fields(object = %key, propagation = ?propagation))]
    pub async fn delete_with(
        &self,
        key: &ResourceKey,
        propagation: Propagation,
    ) -> Result<bool, ClusterError> {
        let api = self.api_for(key).await?;
        let params = DeleteParams {
            propagation_policy: Some(propagation.policy()),
            ..DeleteParams::default()
        };
        match api.delete(&key.name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(ClusterError::Api {
                what: format!("deleting {key}"),
                source: Box::new(e),
            }),
        }
    }
}
