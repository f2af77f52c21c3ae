//! Project policies enforced at the edge: the hub sends the policies of the projects whose apps this spoke runs; the spoke keeps them durably in a ConfigMap of its state namespace (so a restart without the hub still enforces them) and checks every rendered object against them before anything is applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use edgecd_core::project::{PolicyViolation, ProjectDestination, ProjectSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

/// The ConfigMap (in the state namespace) holding the policies: one key per project, `<project>.json`.
pub const POLICY_CONFIGMAP: &str = "edgecd-project-policies";
/// Field manager of the policy ConfigMap.
const POLICY_MANAGER: &str = "edgecd-hub-link";

/// Errors reading or writing the stored policies.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("ConfigMap {namespace}/{POLICY_CONFIGMAP}: {source}")]
    Api {
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("ConfigMap {namespace}/{POLICY_CONFIGMAP} key {key}: {reason}")]
    Invalid {
        namespace: String,
        key: String,
        reason: String,
    },
}

/// The policies known to this spoke, by project name. A project without a policy here is not checked at the
/// edge (the hub checked the app when it was created).
#[derive(Debug, Default)]
pub struct Policies {
    projects: RwLock<HashMap<String, ProjectSpec>>,
    /// Bumped on every update: a comparison remembered under an older generation is not reused.
    generation: std::sync::atomic::AtomicU64,
}

impl Policies {
    /// Replaces every policy (a full snapshot) or updates the given ones.
    pub fn update(&self, projects: HashMap<String, ProjectSpec>, full_snapshot: bool) {
        let mut known = self
            .projects
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if full_snapshot {
            *known = projects;
        } else {
            known.extend(projects);
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Changes with every [`update`](Self::update).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The policy of `project`, if the hub sent one.
    pub fn get(&self, project: &str) -> Option<ProjectSpec> {
        self.projects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(project)
            .cloned()
    }

    /// All known policies.
    pub fn all(&self) -> HashMap<String, ProjectSpec> {
        self.projects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether `destination` may be this cluster: named by a glob, chosen by a label selector or given by an API
/// server URL (the spoke knows neither its own labels nor the URL the hub has for it; the hub checked those
/// when it placed the app). `in-cluster` is every cluster's own.
fn names_this_cluster(destination: &ProjectDestination, cluster: &str) -> bool {
    if destination.cluster_selector.is_some()
        || destination.clusters.iter().any(|c| c.contains("://"))
    {
        return true;
    }
    let probe = ProjectSpec {
        destinations: vec![ProjectDestination {
            namespace: "*".into(),
            ..destination.clone()
        }],
        ..ProjectSpec::default()
    };
    probe
        .check_destination("", cluster, &BTreeMap::new(), "any")
        .is_ok()
}

/// Whether `namespace` matches the namespace glob of `destination`.
fn allows_namespace(destination: &ProjectDestination, namespace: &str) -> bool {
    let probe = ProjectSpec {
        destinations: vec![ProjectDestination {
            cluster_selector: None,
            clusters: vec!["*".into()],
            namespace: destination.namespace.clone(),
        }],
        ..ProjectSpec::default()
    };
    probe
        .check_destination("", "any", &BTreeMap::new(), namespace)
        .is_ok()
}

/// Checks the app's source repository against the project.
pub fn check_source(spec: &ProjectSpec, project: &str, repo: &str) -> Result<(), PolicyViolation> {
    spec.check_source(project, repo)
}

/// The check of the repositories a render of an app of `project` may fetch charts from (a Helm chart's
/// dependencies, a kustomization's `helmCharts` repos, OCI registries): the project's `sourceRepos`, by
/// `policy` as the hub sent it. `None` (every repository) when no policy is known for the project.
pub fn repo_check(
    policy: Option<ProjectSpec>,
    project: &str,
) -> Option<std::sync::Arc<edgecd_helm::RepoCheck>> {
    let spec = policy?;
    let project = project.to_owned();
    Some(std::sync::Arc::new(move |url: &str| {
        check_source(&spec, &project, url).map_err(|v| v.to_string())
    }))
}

/// Checks one object the app would apply: its kind and name against the project's resource white- and
/// blacklists (cluster-scoped kinds must be allowed, namespaced kinds allowed when a whitelist is set and not
/// denied; the error names the rule) and, for a namespaced object, its namespace against the project's
/// destinations for this cluster.
pub fn check_object(
    spec: &ProjectSpec,
    project: &str,
    cluster: &str,
    group: &str,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Result<(), PolicyViolation> {
    spec.check_resource(project, group, kind, name, namespace.is_some())?;
    if let Some(namespace) = namespace {
        let allowed = spec
            .destinations
            .iter()
            .any(|d| names_this_cluster(d, cluster) && allows_namespace(d, namespace));
        if !allowed {
            return Err(PolicyViolation::Destination {
                project: project.to_owned(),
                cluster: cluster.to_owned(),
                namespace: namespace.to_owned(),
            });
        }
    }
    Ok(())
}

/// Reads the stored policies; an absent ConfigMap means none.
pub async fn load(
    client: &kube::Client,
    namespace: &str,
) -> Result<HashMap<String, ProjectSpec>, PolicyError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = api
        .get_opt(POLICY_CONFIGMAP)
        .await
        .map_err(|e| PolicyError::Api {
            namespace: namespace.to_owned(),
            source: Box::new(e),
        })?;
    let mut projects = HashMap::new();
    for (key, value) in found.and_then(|c| c.data).unwrap_or_default() {
        let Some(project) = key.strip_suffix(".json") else {
            continue;
        };
        let spec: ProjectSpec = serde_json::from_str(&value).map_err(|e| PolicyError::Invalid {
            namespace: namespace.to_owned(),
            key: key.clone(),
            reason: e.to_string(),
        })?;
        projects.insert(project.to_owned(), spec);
    }
    Ok(projects)
}

/// Stores `projects` as the complete set (server-side apply of the whole ConfigMap, so keys of projects no
/// longer sent disappear).
pub async fn store(
    client: &kube::Client,
    namespace: &str,
    projects: &HashMap<String, ProjectSpec>,
) -> Result<(), PolicyError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut data = BTreeMap::new();
    for (project, spec) in projects {
        let text = serde_json::to_string(spec).map_err(|e| PolicyError::Invalid {
            namespace: namespace.to_owned(),
            key: format!("{project}.json"),
            reason: e.to_string(),
        })?;
        data.insert(format!("{project}.json"), text);
    }
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": POLICY_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "edgecd-spoke"},
        },
        "data": data,
    });
    api.patch(
        POLICY_CONFIGMAP,
        &PatchParams::apply(POLICY_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| PolicyError::Api {
        namespace: namespace.to_owned(),
        source: Box::new(e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use edgecd_core::project::GroupKind;

    use super::*;

    #[test]
    fn every_update_moves_the_generation() {
        let policies = Policies::default();
        let before = policies.generation();
        policies.update(HashMap::from([("team".to_owned(), team())]), false);
        let after = policies.generation();
        assert_ne!(before, after);
        policies.update(HashMap::new(), true);
        assert_ne!(policies.generation(), after);
    }

    fn team() -> ProjectSpec {
        ProjectSpec {
            source_repos: vec!["https://git.example.com/team/*".into()],
            destinations: vec![ProjectDestination {
                cluster_selector: None,
                clusters: vec!["edge-*".into()],
                namespace: "team-*".into(),
            }],
            cluster_resource_whitelist: vec![GroupKind {
                group: String::new(),
                kind: "Namespace".into(),
                name: String::new(),
            }],
            ..ProjectSpec::default()
        }
    }

    #[test]
    fn kinds_and_namespaces_are_checked_for_this_cluster() {
        let spec = team();
        let ok = |group: &str, kind: &str, ns: Option<&str>| {
            check_object(&spec, "team", "edge-1", group, kind, "x", ns)
        };
        assert!(ok("", "ConfigMap", Some("team-a")).is_ok());
        assert!(ok("", "Namespace", None).is_ok());
        let refused = ok("rbac.authorization.k8s.io", "ClusterRole", None).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "project team does not allow cluster-scoped ClusterRole.rbac.authorization.k8s.io x"
        );
        assert!(matches!(
            ok("", "ConfigMap", Some("kube-system")),
            Err(PolicyViolation::Destination { .. })
        ));
        // A cluster the project's destinations do not name allows no namespace at all.
        assert!(
            check_object(
                &spec,
                "team",
                "core-1",
                "",
                "ConfigMap",
                "x",
                Some("team-a")
            )
            .is_err()
        );
        // A namespaced whitelist admits only its kinds; a name rule only its names.
        let mut listed = team();
        listed.namespace_resource_whitelist = Some(vec![GroupKind {
            group: "apps".into(),
            kind: "Deployment".into(),
            name: String::new(),
        }]);
        listed.cluster_resource_blacklist = vec![GroupKind {
            group: String::new(),
            kind: "Namespace".into(),
            name: "kube-*".into(),
        }];
        let check = |group: &str, kind: &str, name: &str, ns: Option<&str>| {
            check_object(&listed, "team", "edge-1", group, kind, name, ns)
        };
        assert!(check("apps", "Deployment", "web", Some("team-a")).is_ok());
        assert_eq!(
            check("", "ConfigMap", "cfg", Some("team-a"))
                .unwrap_err()
                .to_string(),
            "project team does not allow ConfigMap cfg (not in namespaceResourceWhitelist)"
        );
        assert!(check("", "Namespace", "team-a", None).is_ok());
        assert!(
            check("", "Namespace", "kube-public", None)
                .unwrap_err()
                .to_string()
                .contains("rule clusterResourceBlacklist")
        );
        // A destination by server URL or in-cluster is trusted at the edge (the hub placed the app).
        let mut by_url = team();
        by_url.destinations[0].clusters = vec![edgecd_core::project::IN_CLUSTER_SERVER.into()];
        assert!(
            check_object(
                &by_url,
                "team",
                "core-1",
                "",
                "ConfigMap",
                "x",
                Some("team-a")
            )
            .is_ok()
        );
        assert!(check_source(&spec, "team", "https://git.example.com/other/x.git").is_err());
    }

    #[test]
    fn full_snapshots_replace_and_deltas_extend() {
        let policies = Policies::default();
        policies.update(HashMap::from([("a".into(), team())]), true);
        policies.update(HashMap::from([("b".into(), team())]), false);
        assert!(policies.get("a").is_some() && policies.get("b").is_some());
        policies.update(HashMap::from([("b".into(), team())]), true);
        assert!(policies.get("a").is_none());
    }
}
