//! The resource types a simulated cluster serves: the built-in table and types registered from CRDs.

use std::sync::Arc;

use serde_json::Value;

use super::schema::{CrdNode, Schema};
use super::status::GroupResource;

/// One served resource (group, version, plural) and what the emulator knows about it.
#[derive(Debug)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// Version served.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for discovery.
    pub short_names: Vec<String>,
    /// Categories for discovery.
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists.
    pub status: bool,
    /// Whether a `/scale` subresource exists.
    pub scale: bool,
    /// `metadata.generation` is tracked (bumped on spec changes).
    pub generation: bool,
    /// DELETE returns the object instead of a Status.
    pub return_deleted: bool,
    /// Schema used for merge strategies.
    pub schema: Schema,
    /// Name of the CRD defining this type, for custom resources.
    pub crd: Option<String>,
}

/// The types served by one cluster.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

struct Builtin {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    generation: bool,
}

const fn b(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        kind,
        plural,
        namespaced,
        short,
        all: false,
        status: false,
        scale: false,
        generation: false,
    }
}

const fn with(mut t: Builtin, all: bool, status: bool, scale: bool, generation: bool) -> Builtin {
    t.all = all;
    t.status = status;
    t.scale = scale;
    t.generation = generation;
    t
}

const BUILTINS: &[Builtin] = &[
    with(
        b("", "Namespace", "namespaces", false, &["ns"]),
        false,
        true,
        false,
        false,
    ),
    b("", "ConfigMap", "configmaps", true, &["cm"]),
    b("", "Secret", "secrets", true, &[]),
    with(
        b("", "Service", "services", true, &["svc"]),
        true,
        true,
        false,
        false,
    ),
    b("", "ServiceAccount", "serviceaccounts", true, &["sa"]),
    with(
        b("", "Pod", "pods", true, &["po"]),
        true,
        true,
        false,
        false,
    ),
    with(
        b(
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
        ),
        false,
        true,
        false,
        false,
    ),
    with(
        b("", "PersistentVolume", "persistentvolumes", false, &["pv"]),
        false,
        true,
        false,
        false,
    ),
    with(
        b("", "Node", "nodes", false, &["no"]),
        false,
        true,
        false,
        false,
    ),
    b("", "Event", "events", true, &["ev"]),
    b("", "Endpoints", "endpoints", true, &["ep"]),
    with(
        b("apps", "Deployment", "deployments", true, &["deploy"]),
        true,
        true,
        true,
        true,
    ),
    with(
        b("apps", "ReplicaSet", "replicasets", true, &["rs"]),
        true,
        true,
        true,
        true,
    ),
    with(
        b("apps", "StatefulSet", "statefulsets", true, &["sts"]),
        true,
        true,
        true,
        true,
    ),
    with(
        b("apps", "DaemonSet", "daemonsets", true, &["ds"]),
        true,
        true,
        false,
        true,
    ),
    b(
        "apps",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
    ),
    with(
        b("batch", "Job", "jobs", true, &[]),
        true,
        true,
        false,
        true,
    ),
    with(
        b("batch", "CronJob", "cronjobs", true, &["cj"]),
        true,
        true,
        false,
        true,
    ),
    with(
        b("networking.k8s.io", "Ingress", "ingresses", true, &["ing"]),
        false,
        true,
        false,
        true,
    ),
    with(
        b(
            "networking.k8s.io",
            "NetworkPolicy",
            "networkpolicies",
            true,
            &["netpol"],
        ),
        false,
        false,
        false,
        true,
    ),
    b(
        "networking.k8s.io",
        "IngressClass",
        "ingressclasses",
        false,
        &[],
    ),
    b("rbac.authorization.k8s.io", "Role", "roles", true, &[]),
    b(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
    ),
    b(
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
    ),
    b("coordination.k8s.io", "Lease", "leases", true, &[]),
    with(
        b(
            "policy",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
        ),
        false,
        true,
        false,
        true,
    ),
    with(
        b(
            "autoscaling",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
            &["hpa"],
        ),
        true,
        true,
        false,
        true,
    ),
    with(
        b(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
        ),
        false,
        true,
        false,
        true,
    ),
];

/// The version served for each built-in group.
fn builtin_version(group: &str) -> &'static str {
    match group {
        "autoscaling" => "v2",
        _ => "v1",
    }
}

// === impl ResourceType ===

impl ResourceType {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group/resource pair for error messages.
    pub fn gr(&self) -> GroupResource<'_> {
        GroupResource {
            group: &self.group,
            resource: &self.plural,
        }
    }

    /// Whether this is the Namespace type.
    pub fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.plural == "namespaces"
    }

    /// Whether this type is (group, plural).
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }
}

// === impl Registry ===

impl Registry {
    /// The built-in types.
    pub fn builtin() -> Self {
        let types = BUILTINS
            .iter()
            .map(|t| {
                let version = builtin_version(t.group);
                Arc::new(ResourceType {
                    group: t.group.into(),
                    version: version.into(),
                    kind: t.kind.into(),
                    plural: t.plural.into(),
                    singular: t.kind.to_ascii_lowercase(),
                    namespaced: t.namespaced,
                    short_names: t.short.iter().map(|s| (*s).to_string()).collect(),
                    categories: if t.all {
                        vec!["all".into()]
                    } else {
                        Vec::new()
                    },
                    status: t.status,
                    scale: t.scale,
                    generation: t.generation,
                    return_deleted: t.group.is_empty()
                        && matches!(
                            t.plural,
                            "pods"
                                | "persistentvolumeclaims"
                                | "persistentvolumes"
                                | "serviceaccounts"
                        ),
                    schema: Schema::builtin(t.group, version, t.kind),
                    crd: None,
                })
            })
            .collect();
        Self { types }
    }

    /// All types, built-ins first, in registration order.
    pub fn types(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Finds a type by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Finds a type by group and kind (any version).
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// Finds any served version of (group, plural).
    pub fn find_any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.is(group, plural)).cloned()
    }

    /// Whether a group/version is served.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// Groups in order of first registration, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// The types of one group/version.
    pub fn group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// Registers (or re-registers) the served versions of an established CRD.
    pub fn register_crd(&mut self, crd: &Value) {
        let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        self.unregister_crd(name);
        let spec = &crd["spec"];
        let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let (Some(group), Some(kind), Some(plural)) = (
            str_at(spec, "/group"),
            str_at(spec, "/names/kind"),
            str_at(spec, "/names/plural"),
        ) else {
            return;
        };
        let singular = str_at(spec, "/names/singular").unwrap_or_else(|| kind.to_ascii_lowercase());
        let strings = |p: &str| -> Vec<String> {
            spec.pointer(p)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let namespaced = str_at(spec, "/scope").as_deref() != Some("Cluster");
        let Some(versions) = spec.get("versions").and_then(Value::as_array) else {
            return;
        };
        let mut served: Vec<&Value> = versions
            .iter()
            .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
            .collect();
        // The storage version is listed first so that it becomes the preferred version.
        served.sort_by_key(|v| !v.get("storage").and_then(Value::as_bool).unwrap_or(false));
        for v in served {
            let Some(version) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            let schema = v
                .pointer("/schema/openAPIV3Schema")
                .map(|s| Schema::Crd(CrdNode::parse_root(s)))
                .unwrap_or(Schema::Unknown);
            self.types.push(Arc::new(ResourceType {
                group: group.clone(),
                version: version.to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings("/names/shortNames"),
                categories: strings("/names/categories"),
                status: v.pointer("/subresources/status").is_some(),
                scale: v.pointer("/subresources/scale").is_some(),
                generation: true,
                return_deleted: false,
                schema,
                crd: Some(name.to_string()),
            }));
        }
    }

    /// Removes the types registered from a CRD.
    pub fn unregister_crd(&mut self, name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(name));
    }
}
