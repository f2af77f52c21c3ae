//! Name-reference fix-ups (kustomize's name reference transformer): after all renames, every field that
//! names another object of the build follows that object's new name (and, for `{name, namespace}` maps, its
//! namespace).
//!
//! The referring fields are kustomize's built-in `nameReference` table plus the entries of `configurations`
//! and `crds` files. A field value names a candidate when the candidate was known by that name before (its
//! earlier ids, recorded whenever kustomize records them: namespace, prefix and suffix transformers, hash
//! suffixes and JSON6902 patches); candidates are narrowed the way kustomize narrows them (kind, `roleRef`,
//! namespace, prefix/suffix lineage), and several different survivors are an error.

use std::collections::HashMap;

use serde_json::Value;

use crate::fieldspec::{FieldSpec, NameBackRef, TransformerConfig, merge_one};
use crate::resource::{Resource, str_at};

/// Referring fields in pod specs, relative to the pod spec.
const CONFIG_MAP_IN_POD: &[&str] = &[
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
];

const SECRET_IN_POD: &[&str] = &[
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
];

/// Workloads and where their pod spec is, for the ConfigMap and Secret references (with `PodTemplate`).
const POD_SPECS_WITH_TEMPLATE: &[(&str, &str, &str)] = &[
    ("v1", "Pod", "spec"),
    ("", "PodTemplate", "template/spec"),
    ("", "Deployment", "spec/template/spec"),
    ("", "ReplicaSet", "spec/template/spec"),
    ("", "DaemonSet", "spec/template/spec"),
    ("", "StatefulSet", "spec/template/spec"),
    ("", "Job", "spec/template/spec"),
    ("", "CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// Workloads and their pod spec, for service accounts, claims and priority classes.
const POD_SPECS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
];

const RBAC: &str = "rbac.authorization.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";

/// A referrer field spec: (group, version, kind, path).
type ReferrerSpec = (&'static str, &'static str, &'static str, String);

/// kustomize's built-in name references: the referred kind (group, version, kind) and its referrers.
fn builtin_back_refs() -> Vec<NameBackRef> {
    let pods = |table: &[&str]| -> Vec<ReferrerSpec> {
        POD_SPECS_WITH_TEMPLATE
            .iter()
            .flat_map(|(version, kind, base)| {
                table
                    .iter()
                    .map(move |path| ("", *version, *kind, format!("{base}/{path}")))
            })
            .collect()
    };
    let workloads = |field: &str| -> Vec<ReferrerSpec> {
        POD_SPECS
            .iter()
            .map(|(kind, base)| ("", "", *kind, format!("{base}/{field}")))
            .collect()
    };
    let fixed = |list: &[(&'static str, &'static str, &str)]| -> Vec<ReferrerSpec> {
        list.iter()
            .map(|(group, kind, path)| (*group, "", *kind, path.to_string()))
            .collect()
    };
    let scale_target = || fixed(&[("", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name")]);
    let mut config_map = pods(CONFIG_MAP_IN_POD);
    config_map.extend(fixed(&[
        ("", "Node", "spec/configSource/configMap"),
        ("", "Role", "rules/resourceNames"),
        ("", "ClusterRole", "rules/resourceNames"),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
        ),
    ]));
    let mut secret = pods(SECRET_IN_POD);
    secret.extend(fixed(&[
        ("", "Ingress", "spec/tls/secretName"),
        (
            "",
            "Ingress",
            "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
        ),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
        ),
        (
            "",
            "Ingress",
            "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
        ),
        ("", "ServiceAccount", "imagePullSecrets/name"),
        ("", "StorageClass", "parameters/secretName"),
        ("", "StorageClass", "parameters/adminSecretName"),
        ("", "StorageClass", "parameters/userSecretName"),
        ("", "StorageClass", "parameters/secretRef"),
        ("", "Role", "rules/resourceNames"),
        ("", "ClusterRole", "rules/resourceNames"),
    ]));
    secret.push((
        "serving.knative.dev",
        "v1",
        "Service",
        "spec/template/spec/containers/env/valueFrom/secretKeyRef/name".into(),
    ));
    secret.extend(fixed(&[(
        "",
        "PersistentVolume",
        "spec/azureFile/secretName",
    )]));
    let mut service_account = fixed(&[
        (RBAC, "RoleBinding", "subjects"),
        (RBAC, "ClusterRoleBinding", "subjects"),
    ]);
    service_account.extend(workloads("serviceAccountName"));
    let table: Vec<(&str, &str, &str, Vec<ReferrerSpec>)> = vec![
        ("", "", "Deployment", scale_target()),
        ("", "", "ReplicationController", scale_target()),
        ("", "", "ReplicaSet", scale_target()),
        ("", "", "StatefulSet", scale_target()),
        ("", "v1", "ConfigMap", config_map),
        ("", "v1", "Secret", secret),
        (
            "",
            "v1",
            "Service",
            fixed(&[
                ("apps", "StatefulSet", "spec/serviceName"),
                ("", "Ingress", "spec/rules/http/paths/backend/serviceName"),
                ("", "Ingress", "spec/backend/serviceName"),
                ("", "Ingress", "spec/rules/http/paths/backend/service/name"),
                ("", "Ingress", "spec/defaultBackend/service/name"),
                ("apiregistration.k8s.io", "APIService", "spec/service/name"),
                (
                    ADMISSION,
                    "ValidatingWebhookConfiguration",
                    "webhooks/clientConfig/service",
                ),
                (
                    ADMISSION,
                    "MutatingWebhookConfiguration",
                    "webhooks/clientConfig/service",
                ),
            ]),
        ),
        (
            RBAC,
            "",
            "Role",
            fixed(&[(RBAC, "RoleBinding", "roleRef/name")]),
        ),
        (
            RBAC,
            "",
            "ClusterRole",
            fixed(&[
                (RBAC, "RoleBinding", "roleRef/name"),
                (RBAC, "ClusterRoleBinding", "roleRef/name"),
            ]),
        ),
        ("", "v1", "ServiceAccount", service_account),
        (
            "",
            "v1",
            "PersistentVolumeClaim",
            workloads("volumes/persistentVolumeClaim/claimName"),
        ),
        (
            "",
            "v1",
            "PersistentVolume",
            fixed(&[
                ("", "PersistentVolumeClaim", "spec/volumeName"),
                ("", "ClusterRole", "rules/resourceNames"),
            ]),
        ),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            fixed(&[
                ("", "PersistentVolume", "spec/storageClassName"),
                ("", "PersistentVolumeClaim", "spec/storageClassName"),
                (
                    "",
                    "StatefulSet",
                    "spec/volumeClaimTemplates/spec/storageClassName",
                ),
            ]),
        ),
        (
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            workloads("priorityClassName"),
        ),
        // kustomize 5.5 spells this group with its version, so no IngressClass ever matches it.
        (
            "networking.k8s.io/v1",
            "v1",
            "IngressClass",
            fixed(&[("", "Ingress", "spec/ingressClassName")]),
        ),
        (
            ADMISSION,
            "",
            "ValidatingAdmissionPolicy",
            fixed(&[(
                ADMISSION,
                "ValidatingAdmissionPolicyBinding",
                "spec/policyName",
            )]),
        ),
    ];
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    table
        .into_iter()
        .map(|(group, version, kind, referrers)| NameBackRef {
            group: opt(group),
            version: opt(version),
            kind: kind.to_string(),
            specs: referrers
                .into_iter()
                .map(|(g, v, k, path)| FieldSpec::with_version(g, v, k, &path, false))
                .collect(),
        })
        .collect()
}

/// The built-in references merged with the configured ones (same kind: referrers joined), in kustomize's
/// order (the legacy kind order of the referred kinds).
fn back_refs(config: &TransformerConfig) -> Result<Vec<NameBackRef>, String> {
    let mut all = builtin_back_refs();
    for extra in &config.name_reference {
        match all
            .iter_mut()
            .find(|b| b.kind == extra.kind && b.group == extra.group && b.version == extra.version)
        {
            Some(existing) => {
                for spec in &extra.specs {
                    merge_one(&mut existing.specs, spec.clone())?;
                }
            }
            None => all.push(extra.clone()),
        }
    }
    all.sort_by_cached_key(|b| {
        let or = |v: &Option<String>, p: &str| v.clone().unwrap_or_else(|| p.to_string());
        (
            crate::sort::default_rank(&b.kind),
            format!("{}_{}_{}", or(&b.group, "~G"), or(&b.version, "~V"), b.kind),
        )
    });
    Ok(all)
}

/// Whether a (group, version, kind) is selected by a back reference's (unset parts match anything).
fn selects(back: &NameBackRef, group: &str, version: &str, kind: &str) -> bool {
    back.group.as_deref().is_none_or(|g| g == group)
        && back.version.as_deref().is_none_or(|v| v == version)
        && back.kind == kind
}

/// What the sieves need to know about a possible referral, taken before any referrer changes.
#[derive(Debug)]
struct Candidate {
    group: String,
    version: String,
    /// Kinds the object had in its earlier ids.
    earlier_kinds: Vec<String>,
    name: String,
    namespace: String,
    /// Current namespace with "" as `default`, or `None` when cluster-scoped.
    effective_namespace: Option<String>,
    original_namespace: Option<String>,
    kind: String,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Candidate {
    fn id(&self) -> String {
        let group = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let namespace = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        format!(
            "{}.{}.{}/{}.{}",
            self.kind, self.version, group, self.name, namespace
        )
    }
}

/// The referrer's side of a match.
struct Referrer<'a> {
    kind: &'a str,
    name: &'a str,
    effective_namespace: Option<&'a str>,
    /// Namespaces of a RoleBinding's ServiceAccount subjects (objects there may be referred to).
    binding_namespaces: Vec<String>,
    role_ref: Option<(String, String)>,
    prefixes: &'a [String],
    suffixes: &'a [String],
}

fn effective(namespace: &str) -> String {
    if namespace.is_empty() {
        "default".to_string()
    } else {
        namespace.to_string()
    }
}

/// Rewrites references to renamed objects. Fails when a reference is ambiguous.
pub(crate) fn fix(resources: &mut [Resource], config: &TransformerConfig) -> Result<(), String> {
    // Only objects with earlier ids can be referrals.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut by_earlier_name: HashMap<String, Vec<usize>> = HashMap::new();
    for resource in resources.iter() {
        if resource.earlier_ids.is_empty() {
            continue;
        }
        let (group, version) = resource.group_version();
        let cluster_scoped = crate::transformers::is_cluster_scoped(resource);
        let namespace = resource.namespace().to_string();
        let index = candidates.len();
        for id in &resource.earlier_ids {
            let list = by_earlier_name.entry(id.name.clone()).or_default();
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
        let original_namespace = resource
            .earlier_ids
            .first()
            .map_or(namespace.as_str(), |id| id.namespace.as_str());
        candidates.push(Candidate {
            group: group.to_string(),
            version: version.to_string(),
            earlier_kinds: resource
                .earlier_ids
                .iter()
                .map(|i| i.kind.clone())
                .collect(),
            name: resource.name().to_string(),
            effective_namespace: (!cluster_scoped).then(|| effective(&namespace)),
            original_namespace: (!cluster_scoped).then(|| effective(original_namespace)),
            namespace,
            kind: resource.kind().to_string(),
            prefixes: resource.prefixes.clone(),
            suffixes: resource.suffixes.clone(),
        });
    }
    if candidates.is_empty() {
        return Ok(());
    }
    // Original (effective) namespace -> current namespaces of the objects that started there.
    let mut by_original_namespace: HashMap<String, Vec<String>> = HashMap::new();
    for resource in resources.iter() {
        if crate::transformers::is_cluster_scoped(resource) {
            continue;
        }
        let original = resource.earlier_ids.first().map_or_else(
            || effective(resource.namespace()),
            |id| id.namespace.clone(),
        );
        let current = effective(resource.namespace());
        let list = by_original_namespace.entry(original).or_default();
        if !list.contains(&current) {
            list.push(current);
        }
    }
    let back_refs = back_refs(config)?;
    for resource in resources.iter_mut() {
        let original = resource.original.clone();
        let filters: Vec<(&NameBackRef, &FieldSpec)> = back_refs
            .iter()
            .flat_map(|back| back.specs.iter().map(move |spec| (back, spec)))
            .filter(|(_, spec)| {
                spec.matches_gvk(&original.group, &original.version, &original.kind)
            })
            .collect();
        if filters.is_empty() {
            continue;
        }
        let cluster_scoped = crate::transformers::is_cluster_scoped(resource);
        let kind = resource.kind().to_string();
        let name = resource.name().to_string();
        let namespace = effective(resource.namespace());
        let binding_namespaces = if kind == "RoleBinding" {
            binding_namespaces(&resource.object)
        } else {
            Vec::new()
        };
        let role_ref = str_at(&resource.object, &["roleRef", "apiGroup"]).and_then(|group| {
            str_at(&resource.object, &["roleRef", "kind"])
                .map(|k| (group.to_string(), k.to_string()))
        });
        let prefixes = resource.prefixes.clone();
        let suffixes = resource.suffixes.clone();
        let referrer = Referrer {
            kind: &kind,
            name: &name,
            effective_namespace: (!cluster_scoped).then_some(namespace.as_str()),
            binding_namespaces,
            role_ref,
            prefixes: &prefixes,
            suffixes: &suffixes,
        };
        let mut error = None;
        for (back, spec) in filters {
            let role_ref_field = spec.path.last().is_some_and(|l| l == "name")
                && spec.path.len() >= 2
                && spec.path[spec.path.len() - 2] == "roleRef";
            let context = Context {
                candidates: &candidates,
                by_earlier_name: &by_earlier_name,
                by_original_namespace: &by_original_namespace,
                back,
                referrer: &referrer,
                role_ref_field,
            };
            let mut lookup = spec.clone();
            lookup.create = false;
            lookup.visit(&mut resource.object, &mut |node| {
                if error.is_none()
                    && let Err(message) = context.set(node)
                {
                    error = Some(message);
                }
            });
        }
        if let Some(message) = error {
            return Err(message);
        }
    }
    Ok(())
}

/// Namespaces of a RoleBinding's ServiceAccount subjects that name one.
fn binding_namespaces(object: &Value) -> Vec<String> {
    object
        .get("subjects")
        .and_then(Value::as_array)
        .map(|subjects| {
            subjects
                .iter()
                .filter(|s| str_at(s, &["kind"]) == Some("ServiceAccount"))
                .filter_map(|s| str_at(s, &["namespace"]).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

struct Context<'a> {
    candidates: &'a [Candidate],
    by_earlier_name: &'a HashMap<String, Vec<usize>>,
    by_original_namespace: &'a HashMap<String, Vec<String>>,
    back: &'a NameBackRef,
    referrer: &'a Referrer<'a>,
    role_ref_field: bool,
}

impl Context<'_> {
    /// The node found at the referrer's path: a name, a `{name, namespace}` map, or a list of either.
    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::Object(_) => self.set_mapping(node),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(_) => self.set_mapping(item)?,
                        Value::Array(_) | Value::Null => {}
                        _ => self.set_scalar(item)?,
                    }
                }
                Ok(())
            }
            _ => self.set_scalar(node),
        }
    }

    fn set_scalar(&self, node: &mut Value) -> Result<(), String> {
        let Some(old) = scalar_text(node) else {
            return Ok(());
        };
        let pool = self.reachable(&old);
        if let Some(found) = self.select(&old, pool, false)?
            && found.name != old
        {
            *node = Value::String(found.name.clone());
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value) -> Result<(), String> {
        let Value::Object(map) = node else {
            return Ok(());
        };
        let Some(old) = map.get("name").and_then(scalar_text) else {
            return Err("path config error; no 'name' field in node".into());
        };
        let mut pool = self.reachable(&old);
        if let Some(namespace) = map.get("namespace") {
            let namespace = scalar_text(namespace).unwrap_or_default();
            let by_original: Vec<usize> = pool
                .iter()
                .copied()
                .filter(|i| self.candidates[*i].original_namespace.as_deref() == Some(&namespace))
                .collect();
            // kustomize groups the objects the referrer can reach by original namespace and uses that
            // group when it exists, else the group by current namespace.
            let in_original = self
                .by_original_namespace
                .get(&namespace)
                .is_some_and(|currents| currents.iter().any(|c| self.can_reach(c)));
            pool = if in_original {
                by_original
            } else {
                pool.into_iter()
                    .filter(|i| {
                        self.candidates[*i].effective_namespace.as_deref() == Some(&namespace)
                    })
                    .collect()
            };
        }
        let Some(found) = self.select(&old, pool, true)? else {
            return Ok(());
        };
        if found.name == old && found.namespace.is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(found.name.clone()));
        if !found.namespace.is_empty() {
            map.insert("namespace".into(), Value::String(found.namespace.clone()));
        }
        Ok(())
    }

    /// Whether the referrer can refer to an object in this (effective) namespace.
    fn can_reach(&self, namespace: &str) -> bool {
        match self.referrer.effective_namespace {
            None => true,
            Some(mine) => {
                mine == namespace
                    || self
                        .referrer
                        .binding_namespaces
                        .iter()
                        .any(|b| b == namespace)
            }
        }
    }

    /// Candidates once named `old` that the referrer can refer to (kustomize's
    /// `SubsetThatCouldBeReferencedByResource`).
    fn reachable(&self, old: &str) -> Vec<usize> {
        let Some(indexes) = self.by_earlier_name.get(old) else {
            return Vec::new();
        };
        indexes
            .iter()
            .copied()
            .filter(|i| {
                let candidate = &self.candidates[*i];
                match &candidate.effective_namespace {
                    None => true,
                    Some(theirs) => {
                        self.referrer.effective_namespace.is_none()
                            || self.referrer.effective_namespace == Some(theirs.as_str())
                            || self
                                .referrer
                                .binding_namespaces
                                .contains(&candidate.namespace)
                    }
                }
            })
            .collect()
    }

    /// kustomize's `selectReferral` over candidates already known by `old`.
    fn select(
        &self,
        old: &str,
        pool: Vec<usize>,
        with_namespace: bool,
    ) -> Result<Option<&Candidate>, String> {
        let referrer = self.referrer;
        let mut chosen: Vec<&Candidate> = pool
            .into_iter()
            .map(|i| &self.candidates[i])
            .filter(|c| {
                c.earlier_kinds
                    .iter()
                    .any(|kind| selects(self.back, &c.group, &c.version, kind))
            })
            .filter(|c| {
                !self.role_ref_field
                    || self.referrer.role_ref.as_ref().is_none_or(|(group, kind)| {
                        c.group == *group && c.earlier_kinds.iter().any(|k| k == kind)
                    })
            })
            .filter(
                |c| match (referrer.effective_namespace, &c.effective_namespace) {
                    (None, _) | (_, None) => true,
                    _ if c.kind == "ServiceAccount" => true,
                    (Some(mine), Some(theirs)) => mine == theirs,
                },
            )
            .collect();
        if chosen.len() == 1 {
            return Ok(chosen.pop());
        }
        chosen.retain(|c| lineage_matches(c, referrer, true));
        if chosen.len() > 1 {
            chosen.retain(|c| lineage_matches(c, referrer, false));
        }
        match chosen.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            [first, rest @ ..] => {
                let identical = rest.iter().all(|c| {
                    c.name == first.name && (!with_namespace || c.namespace == first.namespace)
                });
                if identical {
                    return Ok(Some(first));
                }
                let ids: Vec<String> = chosen.iter().map(|c| c.id()).collect();
                Err(format!(
                    "found multiple possible referrals: {} (for '{old}' in {} {})",
                    ids.join(", "),
                    referrer.kind,
                    referrer.name
                ))
            }
        }
    }
}

/// kustomize's `PrefixesSuffixesEquals`: one list of prefixes ends with the other (or, with `allow_empty`,
/// either is empty), and the same for suffixes.
fn lineage_matches(candidate: &Candidate, referrer: &Referrer<'_>, allow_empty: bool) -> bool {
    let ends = |a: &[String], b: &[String]| {
        (allow_empty && (a.is_empty() || b.is_empty())) || same_ending(a, b)
    };
    ends(&candidate.prefixes, referrer.prefixes) && ends(&candidate.suffixes, referrer.suffixes)
}

/// Whether the shorter list is the end of the longer one.
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long[long.len() - short.len()..] == *short
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(crate::yaml::format_number_plain(n)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
