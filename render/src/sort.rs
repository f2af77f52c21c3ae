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
    resources: &mut Vec<Resource>,
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
    // The comparison keys, computed once per object rather than once per comparison.
    struct Key {
        rank: i64,
        gvk: String,
        namespace_kind_without_group: Option<bool>,
        name_key: String,
    }
    let keys: Vec<Key> = resources
        .iter()
        .map(|r| {
            let id = r.id();
            Key {
                rank: rank(&id.kind),
                gvk: format!(
                    "{}_{}_{}",
                    or_tilde(&id.group, "~G"),
                    or_tilde(&id.version, "~V"),
                    or_tilde(&id.kind, "~K")
                ),
                namespace_kind_without_group: (id.kind == "Namespace")
                    .then_some(id.group.is_empty()),
                // kustomize compares `namespace|name` as one string, so `kubeflow-system|x` sorts before
                // `kubeflow|y`.
                name_key: format!(
                    "{}|{}",
                    or_tilde(&id.namespace, "~X"),
                    or_tilde(&id.name, "~N")
                ),
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (&keys[a], &keys[b]);
        if ka.rank != kb.rank {
            return ka.rank.cmp(&kb.rank);
        }
        if ka.gvk != kb.gvk {
            if let (Some(a_core), Some(b_core)) = (
                ka.namespace_kind_without_group,
                kb.namespace_kind_without_group,
            ) && (a_core || b_core)
            {
                return kb.gvk.cmp(&ka.gvk);
            }
            return ka.gvk.cmp(&kb.gvk);
        }
        ka.name_key.cmp(&kb.name_key)
    });
    let mut taken: Vec<Option<Resource>> = resources.drain(..).map(Some).collect();
    resources.extend(order.iter().filter_map(|&i| taken[i].take()));
}

fn or_tilde<'a>(value: &'a str, placeholder: &'a str) -> &'a str {
    if value.is_empty() { placeholder } else { value }
}
