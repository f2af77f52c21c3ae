//! The spoke's custom resources in the edge cluster: `applications.edgecd.io` (v1alpha1) holds each app's desired spec and status, so the cluster itself is the spoke's durable store.

use edgecd_core::app::{AppOrigin, ApplicationSpec, ApplicationStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "edgecd.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "edgecd.io/v1alpha1";

/// Label marking an Application CR written by the spoke on the hub's behalf.
pub const ORIGIN_LABEL: &str = "edgecd.io/origin";
/// Annotation with the hub's spec version of a managed app.
pub const SPEC_VERSION_ANNOTATION: &str = "edgecd.io/spec-version";
/// Annotation with the app's project on hub-managed CRs (also in spec).
pub const PROJECT_LABEL: &str = "edgecd.io/project";

/// An edgecd Application as stored in the edge cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ApplicationSpec,
    /// A requested operation (sync, rollback), written by the spoke's hub
    /// link or by a user, cleared by the engine when it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
}

/// A requested operation, as Argo CD's `operation` field.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRequest {
    /// The hub command this comes from, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub initiated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackRequest>,
    /// Argo CD's `operation.info` (name/value pairs); edgecd keeps the W3C `traceparent` and `tracestate`
    /// of the command behind the operation here, so the reconcile that runs it joins the operator's trace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<OperationInfo>,
}

/// One `operation.info` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OperationInfo {
    pub name: String,
    pub value: String,
}

impl OperationRequest {
    /// The trace context recorded in `info`, when valid.
    pub fn trace_context(&self) -> Option<edgecd_telemetry::TraceContext> {
        let get = |key: &str| {
            self.info
                .iter()
                .find(|i| i.name == key)
                .map_or("", |i| i.value.as_str())
        };
        edgecd_telemetry::TraceContext::parse(
            get(edgecd_telemetry::propagation::TRACEPARENT),
            get(edgecd_telemetry::propagation::TRACESTATE),
        )
    }

    /// `info` entries recording `trace`.
    pub fn trace_info(trace: Option<&edgecd_telemetry::TraceContext>) -> Vec<OperationInfo> {
        let Some(trace) = trace else {
            return Vec::new();
        };
        let mut info = vec![OperationInfo {
            name: edgecd_telemetry::propagation::TRACEPARENT.to_owned(),
            value: trace.traceparent.clone(),
        }];
        if !trace.tracestate.is_empty() {
            info.push(OperationInfo {
                name: edgecd_telemetry::propagation::TRACESTATE.to_owned(),
                value: trace.tracestate.clone(),
            });
        }
        info
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// Revision to sync to; empty means the target revision.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Only these resources (Argo CD's `operation.sync.resources`); empty means all. A selective sync is not
    /// recorded in the history (nothing to roll back to), as in Argo CD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<SyncResource>,
    /// Replace what cannot be patched: an object the server refuses to change in place (an immutable field) is
    /// deleted and created again (Argo CD's `--force`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Argo CD sync options for this operation only, e.g. `ApplyOutOfSyncOnly=true`; they add to the app's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
}

/// One resource of a selective sync, as Argo CD's `SyncOperationResource`: the version does not matter, and an
/// empty namespace matches cluster-scoped objects (and namespaced ones in the app's namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl SyncResource {
    /// Whether `key` is this resource; `default_namespace` stands for an empty namespace here.
    pub fn matches(&self, key: &edgecd_core::app::ResourceKey, default_namespace: &str) -> bool {
        let namespace = if self.namespace.is_empty() && !key.namespace.is_empty() {
            default_namespace
        } else {
            self.namespace.as_str()
        };
        self.group == key.group
            && self.kind == key.kind
            && self.name == key.name
            && namespace == key.namespace
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRequest {
    pub id: i64,
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub dry_run: bool,
}

/// The sync option applying only what is out of sync (Argo CD's spelling).
pub const APPLY_OUT_OF_SYNC_ONLY: &str = "ApplyOutOfSyncOnly=true";

/// Annotation asking for a refresh: `normal` or `hard` (bypass caches).
pub const REFRESH_ANNOTATION: &str = "edgecd.io/refresh";

fn api_version() -> String {
    API_VERSION.to_owned()
}

fn kind() -> String {
    "Application".to_owned()
}

impl Application {
    pub fn new(name: &str, namespace: &str, spec: ApplicationSpec) -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            operation: None,
            status: None,
        }
    }

    /// The app's project (`default` when unset).
    pub fn project(&self) -> &str {
        if self.spec.project.is_empty() {
            "default"
        } else {
            &self.spec.project
        }
    }

    /// The app's name as the hub knows it (see [`cr_name`]).
    pub fn app_name(&self) -> String {
        let name = self.metadata.name.as_deref().unwrap_or_default();
        let prefix = format!("{}.", self.project());
        if self.project() != "default" && self.origin() == AppOrigin::Managed {
            name.strip_prefix(&prefix).unwrap_or(name).to_owned()
        } else {
            name.to_owned()
        }
    }

    /// `project/name`, the app's identity.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.project(), self.app_name())
    }

    pub fn origin(&self) -> AppOrigin {
        let hub = self
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ORIGIN_LABEL))
            .is_some_and(|v| v == "hub");
        if hub {
            AppOrigin::Managed
        } else {
            AppOrigin::Autonomous
        }
    }
}

/// The CR name of a hub-managed app: its name in project `default`, and
/// `project.name` in any other project, so two teams' `nginx` never collide
/// in the spoke's namespace.
pub fn cr_name(project: &str, name: &str) -> String {
    if project.is_empty() || project == "default" {
        name.to_owned()
    } else {
        format!("{project}.{name}")
    }
}

/// The Application CR of the app the hub names `project/name`: its CR by [`cr_name`], or an app created at the
/// edge, which keeps its own CR name whatever its project.
pub async fn find_app(
    apps: &kube::Api<Application>,
    project: &str,
    name: &str,
) -> Result<Option<Application>, kube::Error> {
    let cr = cr_name(project, name);
    let found = apps.get_opt(&cr).await?;
    if found.is_some() || cr == name {
        return Ok(found);
    }
    Ok(apps.get_opt(name).await?.filter(|a| {
        a.origin() == edgecd_core::app::AppOrigin::Autonomous && a.project() == project
    }))
}

/// Implements `kube::Resource` for one of the spoke's namespaced `edgecd.io/v1alpha1` kinds.
macro_rules! edgecd_resource {
    ($ty:ty, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($kind)
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::crd::GROUP)
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::crd::VERSION)
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($plural)
            }

            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use edgecd_resource;

edgecd_resource!(Application, "Application", "applications");

/// The CustomResourceDefinition of `applications.edgecd.io`.
pub const APPLICATION_CRD_YAML: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: applications.edgecd.io
spec:
  group: edgecd.io
  names:
    kind: Application
    listKind: ApplicationList
    plural: applications
    singular: application
    shortNames:
    - eapp
    - eapps
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Sync
      type: string
      jsonPath: .status.sync.status
    - name: Health
      type: string
      jsonPath: .status.health.status
    - name: Revision
      type: string
      jsonPath: .status.sync.revision
      priority: 1
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          operation:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

/// The CRD as JSON, ready to apply.
pub fn application_crd() -> serde_json::Value {
    // The constant is valid YAML; a failure here is a programming error
    // caught by the unit test below, so fall back to an empty object.
    edgecd_render::yaml::load_one(APPLICATION_CRD_YAML).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_parses() {
        let crd = application_crd();
        assert_eq!(crd["metadata"]["name"], "applications.edgecd.io");
        assert_eq!(
            crd["spec"]["versions"][0]["subresources"]["status"],
            serde_json::json!({})
        );
    }

    #[test]
    fn names_map_between_hub_and_cr() {
        assert_eq!(cr_name("default", "cluster-3.nginx"), "cluster-3.nginx");
        assert_eq!(cr_name("team-a", "nginx"), "team-a.nginx");
        let mut app = Application::new(
            "team-a.nginx",
            "edgecd-system",
            ApplicationSpec {
                project: "team-a".into(),
                ..Default::default()
            },
        );
        app.metadata.labels = Some([(ORIGIN_LABEL.to_owned(), "hub".to_owned())].into());
        assert_eq!(app.qualified_name(), "team-a/nginx");
        let local = Application::new("guestbook", "edgecd-system", ApplicationSpec::default());
        assert_eq!(local.qualified_name(), "default/guestbook");
        assert_eq!(local.origin(), AppOrigin::Autonomous);
    }
}
