//! Name-reference fix-ups: after all renames, fields that refer to a renamed object follow its new name.

use serde_json::Value;

use crate::fieldspec::TransformerConfig;
use crate::resource::{Resource, ns_eq, str_at, visit_path};

/// Where pod specs live, per kind.
const POD_SPECS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("PodTemplate", "template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

const CONFIG_MAP_IN_POD: &[&str] = &[
    "volumes[]/configMap/name",
    "volumes[]/projected/sources[]/configMap/name",
    "containers[]/env[]/valueFrom/configMapKeyRef/name",
    "initContainers[]/env[]/valueFrom/configMapKeyRef/name",
    "ephemeralContainers[]/env[]/valueFrom/configMapKeyRef/name",
    "containers[]/envFrom[]/configMapRef/name",
    "initContainers[]/envFrom[]/configMapRef/name",
    "ephemeralContainers[]/envFrom[]/configMapRef/name",
];

const SECRET_IN_POD: &[&str] = &[
    "volumes[]/secret/secretName",
    "volumes[]/projected/sources[]/secret/name",
    "containers[]/env[]/valueFrom/secretKeyRef/name",
    "initContainers[]/env[]/valueFrom/secretKeyRef/name",
    "ephemeralContainers[]/env[]/valueFrom/secretKeyRef/name",
    "containers[]/envFrom[]/secretRef/name",
    "initContainers[]/envFrom[]/secretRef/name",
    "ephemeralContainers[]/envFrom[]/secretRef/name",
    "imagePullSecrets[]/name",
];

/// A referring field: (referrer kind or `*`, path).
type Referrer = (&'static str, String);

fn referrers(kind: &str) -> Vec<Referrer> {
    let in_pods = |paths: &[&str]| -> Vec<Referrer> {
        POD_SPECS
            .iter()
            .flat_map(|(k, base)| paths.iter().map(move |p| (*k, format!("{base}/{p}"))))
            .collect()
    };
    let fixed = |list: &[(&'static str, &str)]| -> Vec<Referrer> {
        list.iter().map(|(k, p)| (*k, p.to_string())).collect()
    };
    match kind {
        "ConfigMap" => in_pods(CONFIG_MAP_IN_POD),
        "Secret" => {
            let mut out = in_pods(SECRET_IN_POD);
            out.extend(fixed(&[
                ("Ingress", "spec/tls[]/secretName"),
                ("ServiceAccount", "imagePullSecrets[]/name"),
                ("ServiceAccount", "secrets[]/name"),
            ]));
            out
        }
        "Service" => fixed(&[
            ("Ingress", "spec/rules[]/http/paths[]/backend/service/name"),
            ("Ingress", "spec/rules[]/http/paths[]/backend/serviceName"),
            ("Ingress", "spec/defaultBackend/service/name"),
            ("Ingress", "spec/backend/serviceName"),
            ("StatefulSet", "spec/serviceName"),
            ("APIService", "spec/service/name"),
            (
                "MutatingWebhookConfiguration",
                "webhooks[]/clientConfig/service/name",
            ),
            (
                "ValidatingWebhookConfiguration",
                "webhooks[]/clientConfig/service/name",
            ),
        ]),
        "Role" | "ClusterRole" => fixed(&[
            ("RoleBinding", "roleRef/name"),
            ("ClusterRoleBinding", "roleRef/name"),
        ]),
        "ServiceAccount" => {
            let mut out = in_pods(&["serviceAccountName", "serviceAccount"]);
            out.extend(fixed(&[
                ("RoleBinding", "subjects[]"),
                ("ClusterRoleBinding", "subjects[]"),
            ]));
            out
        }
        "PersistentVolumeClaim" => in_pods(&["volumes[]/persistentVolumeClaim/claimName"]),
        "PersistentVolume" => fixed(&[("PersistentVolumeClaim", "spec/volumeName")]),
        "StorageClass" => fixed(&[
            ("PersistentVolumeClaim", "spec/storageClassName"),
            ("PersistentVolume", "spec/storageClassName"),
            (
                "StatefulSet",
                "spec/volumeClaimTemplates[]/spec/storageClassName",
            ),
        ]),
        "PriorityClass" => in_pods(&["priorityClassName"]),
        "IngressClass" => fixed(&[("Ingress", "spec/ingressClassName")]),
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            fixed(&[("HorizontalPodAutoscaler", "spec/scaleTargetRef/name")])
        }
        _ => Vec::new(),
    }
}

/// Rewrites references to renamed objects. Fails when a reference is ambiguous.
pub(crate) fn fix(resources: &mut [Resource], config: &TransformerConfig) -> Result<(), String> {
    let referral_kinds: Vec<String> = {
        let mut kinds: Vec<String> = resources
            .iter()
            .filter(|r| !r.previous_names.is_empty() || !r.previous_namespaces.is_empty())
            .map(|r| r.kind().to_string())
            .collect();
        kinds.sort();
        kinds.dedup();
        kinds
    };
    // Snapshot of candidates: (kind, all names, current name, namespace, prefixes, suffixes).
    let snapshot: Vec<Candidate> = resources
        .iter()
        .map(|r| Candidate {
            kind: r.kind().to_string(),
            names: r.all_names().map(String::from).collect(),
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            namespaces: r.all_namespaces().map(String::from).collect(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
            cluster_scoped: crate::transformers::is_cluster_scoped(r),
        })
        .collect();
    let mut error = None;
    for referral_kind in &referral_kinds {
        for (referrer_kind, path) in referrers(referral_kind) {
            for resource in resources.iter_mut() {
                if resource.kind() != referrer_kind {
                    continue;
                }
                let referrer = Candidate::of_referrer(resource);
                let is_binding_subjects = path == "subjects[]";
                let is_role_ref = path == "roleRef/name";
                if is_role_ref
                    && str_at(&resource.object, &["roleRef", "kind"])
                        != Some(referral_kind.as_str())
                {
                    continue;
                }
                if is_binding_subjects {
                    visit_path(&mut resource.object, "subjects[]", false, &mut |subject| {
                        if str_at(subject, &["kind"]) != Some("ServiceAccount") {
                            return;
                        }
                        let name = str_at(subject, &["name"]).unwrap_or_default().to_string();
                        let ns = str_at(subject, &["namespace"])
                            .unwrap_or_default()
                            .to_string();
                        // The subject names the account by any of its names and namespaces; it follows
                        // both (kustomize sets the subject's name and namespace from the account).
                        let found = snapshot.iter().find(|c| {
                            c.kind == "ServiceAccount"
                                && c.names.contains(&name)
                                && (c.name != name || !ns_eq(&c.namespace, &ns))
                                && c.namespaces.iter().any(|n| ns_eq(n, &ns))
                        });
                        if let (Some(found), Value::Object(map)) = (found, subject) {
                            map.insert("name".into(), Value::String(found.name.clone()));
                            if !ns_eq(&found.namespace, &ns) {
                                map.insert(
                                    "namespace".into(),
                                    Value::String(found.namespace.clone()),
                                );
                            }
                        }
                    });
                    continue;
                }
                visit_path(&mut resource.object, &path, false, &mut |field| {
                    let Value::String(current) = field else {
                        return;
                    };
                    match select(&snapshot, referral_kind, current, &referrer) {
                        Ok(Some(name)) => *current = name,
                        Ok(None) => {}
                        Err(message) => error = Some(message),
                    }
                });
            }
        }
    }
    // Referrers added by `configurations:` files.
    for back in &config.name_reference {
        if !referral_kinds.contains(&back.kind) {
            continue;
        }
        for spec in &back.specs {
            for resource in resources.iter_mut() {
                if !spec.matches(resource) {
                    continue;
                }
                let referrer = Candidate::of_referrer(resource);
                spec.visit(&mut resource.object, &mut |field| {
                    let Value::String(current) = field else {
                        return;
                    };
                    match select(&snapshot, &back.kind, current, &referrer) {
                        Ok(Some(name)) => *current = name,
                        Ok(None) => {}
                        Err(message) => error = Some(message),
                    }
                });
            }
        }
    }
    error.map_or(Ok(()), Err)
}

#[derive(Debug)]
struct Candidate {
    kind: String,
    names: Vec<String>,
    name: String,
    namespace: String,
    /// The current and every earlier namespace.
    namespaces: Vec<String>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    cluster_scoped: bool,
}

impl Candidate {
    fn of_referrer(resource: &Resource) -> Candidate {
        Candidate {
            kind: resource.kind().to_string(),
            names: Vec::new(),
            name: resource.name().to_string(),
            namespace: resource.namespace().to_string(),
            namespaces: Vec::new(),
            prefixes: resource.prefixes.clone(),
            suffixes: resource.suffixes.clone(),
            cluster_scoped: crate::transformers::is_cluster_scoped(resource),
        }
    }
}

/// Picks the referral a field value names; `None` when nothing was renamed from it.
fn select(
    snapshot: &[Candidate],
    kind: &str,
    value: &str,
    referrer: &Candidate,
) -> Result<Option<String>, String> {
    let mut candidates: Vec<&Candidate> = snapshot
        .iter()
        .filter(|c| c.kind == kind && c.names.iter().any(|n| n == value))
        .collect();
    if candidates.is_empty()
        || candidates
            .iter()
            .any(|c| c.name == value && c.names.len() == 1)
    {
        return Ok(None);
    }
    if !referrer.cluster_scoped {
        let same_ns: Vec<&Candidate> = candidates
            .iter()
            .copied()
            .filter(|c| c.cluster_scoped || ns_eq(&c.namespace, &referrer.namespace))
            .collect();
        if !same_ns.is_empty() {
            candidates = same_ns;
        } else {
            return Ok(None);
        }
    }
    if candidates.len() > 1 {
        let lineage: Vec<&Candidate> = candidates
            .iter()
            .copied()
            .filter(|c| c.prefixes == referrer.prefixes && c.suffixes == referrer.suffixes)
            .collect();
        if !lineage.is_empty() {
            candidates = lineage;
        }
    }
    let first = candidates[0].name.clone();
    if candidates.iter().any(|c| c.name != first) {
        let names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "found multiple possible referrals for {kind} '{value}' in {} '{}': {}",
            referrer.kind,
            referrer.name,
            names.join(", ")
        ));
    }
    Ok((first != value).then_some(first))
}
