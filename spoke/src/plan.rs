//! Sync planning: tracking identity of managed objects, apply order (namespaces and CRDs first, then sync waves in kind order) and what to prune.

use std::collections::{BTreeMap, BTreeSet};

use edgecd_core::app::ResourceKey;
use serde_json::Value;

/// Annotation naming the app that manages an object (and the object itself,
/// so a copied annotation never makes another object look managed).
pub const TRACKING_ANNOTATION: &str = "edgecd.io/tracking-id";
/// Label with the app's project/name, for cheap label-selector queries.
pub const APP_LABEL: &str = "edgecd.io/app";
pub const SYNC_WAVE_ANNOTATION: &str = "edgecd.io/sync-wave";
pub const ARGO_SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// `Prune=false` on an object keeps it when it leaves git.
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";
pub const EDGECD_SYNC_OPTIONS_ANNOTATION: &str = "edgecd.io/sync-options";

/// Kubernetes kinds in the order they are applied within a wave, so that
/// what others depend on comes first (the order Helm and Argo CD use).
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// The tracking value of an object managed by `app` (`project/name`).
pub fn tracking_id(app: &str, key: &ResourceKey) -> String {
    format!(
        "{app}:{}/{}:{}/{}",
        key.group, key.kind, key.namespace, key.name
    )
}

/// Whether a live object is managed by `app`, judged by its tracking annotation.
pub fn is_managed_by(obj: &Value, app: &str, key: &ResourceKey) -> bool {
    annotation(obj, TRACKING_ANNOTATION).is_some_and(|v| v == tracking_id(app, key))
}

/// The app named in an object's tracking annotation, if any.
pub fn tracking_app(obj: &Value) -> Option<&str> {
    annotation(obj, TRACKING_ANNOTATION)?
        .split_once(':')
        .map(|(app, _)| app)
}

pub fn annotation<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(name)?.as_str()
}

pub fn label<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(name)?.as_str()
}

/// The sync wave of an object (edgecd's annotation first, then Argo CD's).
pub fn sync_wave(obj: &Value) -> i32 {
    annotation(obj, SYNC_WAVE_ANNOTATION)
        .or_else(|| annotation(obj, ARGO_SYNC_WAVE_ANNOTATION))
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether an object's own sync options contain `option` (e.g. `Prune=false`).
pub fn has_object_sync_option(obj: &Value, option: &str) -> bool {
    [EDGECD_SYNC_OPTIONS_ANNOTATION, SYNC_OPTIONS_ANNOTATION]
        .iter()
        .filter_map(|a| annotation(obj, a))
        .flat_map(|v| v.split(','))
        .any(|o| o.trim().eq_ignore_ascii_case(option))
}

/// One object to apply, with its identity resolved.
#[derive(Debug, Clone)]
pub struct Planned {
    pub key: ResourceKey,
    pub wave: i32,
    pub object: Value,
}

/// The order of a sync.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Namespaces and CRDs, applied (and CRDs awaited) before anything else.
    pub prerequisites: Vec<Planned>,
    /// Waves in ascending order; each is applied, then awaited healthy.
    pub waves: Vec<(i32, Vec<Planned>)>,
    /// Live objects of this app no longer rendered, in reverse apply order.
    pub prune: Vec<ResourceKey>,
}

/// Orders `desired` objects for applying and finds what to prune among
/// `live` managed objects (keys of live objects that carry this app's
/// tracking id). Objects carrying `Prune=false` are left out of `prune`.
pub fn plan(desired: Vec<Planned>, live_managed: &BTreeMap<ResourceKey, Value>) -> Plan {
    let desired_keys: BTreeSet<&ResourceKey> = desired.iter().map(|p| &p.key).collect();
    let mut prune: Vec<(&ResourceKey, &Value)> = live_managed
        .iter()
        .filter(|(key, obj)| {
            !desired_keys.contains(key) && !has_object_sync_option(obj, "Prune=false")
        })
        .collect();
    prune.sort_by(|(a, ao), (b, bo)| {
        (sync_wave(bo), kind_rank(&b.kind), *b).cmp(&(sync_wave(ao), kind_rank(&a.kind), *a))
    });
    let prune = prune.into_iter().map(|(k, _)| k.clone()).collect();

    let (mut prerequisites, rest): (Vec<Planned>, Vec<Planned>) =
        desired.into_iter().partition(|p| {
            (p.key.group.is_empty() && p.key.kind == "Namespace")
                || (p.key.group == "apiextensions.k8s.io"
                    && p.key.kind == "CustomResourceDefinition")
        });
    prerequisites
        .sort_by(|a, b| (kind_rank(&a.key.kind), &a.key).cmp(&(kind_rank(&b.key.kind), &b.key)));
    let mut waves: BTreeMap<i32, Vec<Planned>> = BTreeMap::new();
    for planned in rest {
        waves.entry(planned.wave).or_default().push(planned);
    }
    let waves = waves
        .into_iter()
        .map(|(wave, mut objects)| {
            objects.sort_by(|a, b| {
                (kind_rank(&a.key.kind), &a.key).cmp(&(kind_rank(&b.key.kind), &b.key))
            });
            (wave, objects)
        })
        .collect();
    Plan {
        prerequisites,
        waves,
        prune,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(group: &str, kind: &str, ns: &str, name: &str) -> ResourceKey {
        ResourceKey {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    fn planned(group: &str, kind: &str, name: &str, wave: i32) -> Planned {
        Planned {
            key: key(group, kind, "web", name),
            wave,
            object: json!({}),
        }
    }

    #[test]
    fn namespaces_and_crds_first_then_waves_in_kind_order() {
        let desired = vec![
            planned("apps", "Deployment", "web", 0),
            planned("", "Service", "web", 0),
            planned("", "ConfigMap", "cfg", -1),
            planned("", "Namespace", "web", 0),
            planned(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                "caches.example.com",
                0,
            ),
            planned("batch", "Job", "migrate", 5),
        ];
        let plan = plan(desired, &BTreeMap::new());
        let kinds = |v: &[Planned]| v.iter().map(|p| p.key.kind.clone()).collect::<Vec<_>>();
        assert_eq!(
            kinds(&plan.prerequisites),
            ["Namespace", "CustomResourceDefinition"]
        );
        let waves: Vec<(i32, Vec<String>)> =
            plan.waves.iter().map(|(w, v)| (*w, kinds(v))).collect();
        assert_eq!(
            waves,
            [
                (-1, vec!["ConfigMap".to_owned()]),
                (0, vec!["Service".to_owned(), "Deployment".to_owned()]),
                (5, vec!["Job".to_owned()]),
            ]
        );
    }

    #[test]
    fn prunes_what_left_git_in_reverse_order_except_prune_false() {
        let live: BTreeMap<ResourceKey, Value> = [
            (key("", "Service", "web", "old"), json!({})),
            (key("apps", "Deployment", "web", "old"), json!({})),
            (key("apps", "Deployment", "web", "keep"), json!({})),
            (
                key("", "ConfigMap", "web", "sticky"),
                json!({"metadata": {"annotations": {SYNC_OPTIONS_ANNOTATION: "Prune=false"}}}),
            ),
        ]
        .into();
        let plan = plan(vec![planned("apps", "Deployment", "keep", 0)], &live);
        let names: Vec<String> = plan
            .prune
            .iter()
            .map(|k| format!("{}/{}", k.kind, k.name))
            .collect();
        assert_eq!(names, ["Deployment/old", "Service/old"]);
    }

    #[test]
    fn tracking_and_waves() {
        let k = key("apps", "Deployment", "web", "nginx");
        let id = tracking_id("team-a/nginx", &k);
        assert_eq!(id, "team-a/nginx:apps/Deployment:web/nginx");
        let obj = json!({"metadata": {"annotations": {TRACKING_ANNOTATION: id, ARGO_SYNC_WAVE_ANNOTATION: "-2"}}});
        assert!(is_managed_by(&obj, "team-a/nginx", &k));
        assert!(!is_managed_by(&obj, "team-b/nginx", &k));
        assert!(!is_managed_by(
            &obj,
            "team-a/nginx",
            &key("apps", "Deployment", "web", "copy")
        ));
        assert_eq!(tracking_app(&obj), Some("team-a/nginx"));
        assert_eq!(sync_wave(&obj), -2);
    }
}
