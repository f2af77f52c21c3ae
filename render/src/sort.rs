//! kustomize's "legacy" output order: kinds by a fixed priority, then group/version/kind, namespace and name.

use crate::resource::Resource;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The rank of a kind in the default legacy order (negative first, 0 unlisted, positive last).
pub(crate) fn default_rank(kind: &str) -> i64 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i64 - ORDER_FIRST.len() as i64;
    }
    ORDER_LAST
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| i as i64 + 1)
}

/// Sorts resources in legacy order, with optional custom first/last kind lists.
pub(crate) fn legacy(
    resources: &mut [Resource],
    first: Option<&[String]>,
    last: Option<&[String]>,
) {
    let first: Vec<&str> = first.map_or_else(
        || ORDER_FIRST.to_vec(),
        |f| f.iter().map(String::as_str).collect(),
    );
    let last: Vec<&str> = last.map_or_else(
        || ORDER_LAST.to_vec(),
        |l| l.iter().map(String::as_str).collect(),
    );
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| *k == kind) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|k| *k == kind) {
            return i as i64 + 1;
        }
        0
    };
    resources.sort_by(|a, b| {
        let (ra, rb) = (rank(a.kind()), rank(b.kind()));
        if ra != rb {
            return ra.cmp(&rb);
        }
        let (ia, ib) = (a.id(), b.id());
        let gvk = |id: &crate::resource::ResId| {
            format!(
                "{}_{}_{}",
                or_tilde(&id.group, "~G"),
                or_tilde(&id.version, "~V"),
                or_tilde(&id.kind, "~K")
            )
        };
        let (ga, gb) = (gvk(&ia), gvk(&ib));
        if ga != gb {
            if ia.kind == "Namespace"
                && ib.kind == "Namespace"
                && (ia.group.is_empty() || ib.group.is_empty())
            {
                return gb.cmp(&ga);
            }
            return ga.cmp(&gb);
        }
        // kustomize compares `namespace|name` as one string, so `kubeflow-system|x` sorts before `kubeflow|y`.
        let key = |id: &crate::resource::ResId| {
            format!(
                "{}|{}",
                or_tilde(&id.namespace, "~X"),
                or_tilde(&id.name, "~N")
            )
        };
        key(&ia).cmp(&key(&ib))
    });
}

fn or_tilde<'a>(value: &'a str, placeholder: &'a str) -> &'a str {
    if value.is_empty() { placeholder } else { value }
}
