//! Projects: which repositories, destinations and kinds a team's apps may use, and who may do what.

use std::collections::BTreeMap;

use globset::Glob;
use serde::{Deserialize, Serialize};

use crate::selector::LabelSelector;

/// A destination a project may deploy to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDestination {
    /// Clusters by label; combined with `clusters` by OR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// Cluster names (globs); `*` means every cluster. An entry holding `://` is an API server URL (a glob over
    /// the server URL a cluster reports: Argo CD's `destination.server`), matched now or once such a cluster
    /// enrolls; [`IN_CLUSTER_SERVER`] (Argo CD's `in-cluster`) matches every cluster: the cluster an app is
    /// applied on is its own `in-cluster`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Namespace glob.
    #[serde(default)]
    pub namespace: String,
}

/// Argo CD's `https://kubernetes.default.svc`: in a project destination, whichever cluster the app runs on.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKind {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    /// Object name glob (Argo CD's cluster resource restrictions by name); empty matches every name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Argo CD's `orphanedResources`: report namespaced objects no app manages in the app's namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanedResources {
    /// Whether an app with orphans gets an `OrphanedResourceWarning` condition (Argo CD: absent means true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<bool>,
    /// Objects never reported (`group`, `kind`, `name` globs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<GroupKind>,
}

impl OrphanedResources {
    pub fn warns(&self) -> bool {
        self.warn.unwrap_or(true)
    }

    /// Whether an object of `group`/`kind` named `name` is never reported (an empty kind is any kind, as in
    /// Argo CD).
    pub fn ignores(&self, group: &str, kind: &str, name: &str) -> bool {
        self.ignore.iter().any(|r| {
            (r.kind.is_empty() || glob_matches(&r.kind, kind))
                && glob_matches(&r.group, group)
                && (r.name.is_empty() || glob_matches(&r.name, name))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProjectRole {
    Viewer,
    Deployer,
    Owner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBinding {
    pub role: ProjectRole,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Repository URL globs; empty allows none.
    #[serde(default)]
    pub source_repos: Vec<String>,
    #[serde(default)]
    pub destinations: Vec<ProjectDestination>,
    /// Cluster-scoped kinds allowed (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_whitelist: Vec<GroupKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_resource_blacklist: Vec<GroupKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Namespaced kinds allowed; `None` allows every kind, an empty list none (as Argo CD's nil and `[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_resource_whitelist: Option<Vec<GroupKind>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleBinding>,
    /// Orphaned-resource monitoring, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orphaned_resources: Option<OrphanedResources>,
    /// Argo CD sync windows, kept as given: accepted, not enforced yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_windows: Vec<serde_json::Value>,
    /// Who may read pod logs and exec into containers through the spoke (the live manifest and events need only
    /// `Read`).
    #[serde(default, skip_serializing_if = "LiveAccess::is_default")]
    pub live: LiveAccess,
}

/// Live access to a project's clusters through their spokes: separate permissions, as Argo CD keeps logs and
/// exec apart from reading an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveAccess {
    /// The least role that reads pod logs (logs can carry what a manifest does not): Deployer by default.
    #[serde(default = "LiveAccess::default_logs")]
    pub logs: ProjectRole,
    /// The least role that runs commands in containers (exec, the web terminal); `None`, the default: exec is
    /// off in the project, for admins too, as Argo CD's `exec.enabled: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ProjectRole>,
}

impl LiveAccess {
    fn default_logs() -> ProjectRole {
        ProjectRole::Deployer
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for LiveAccess {
    fn default() -> Self {
        Self {
            logs: Self::default_logs(),
            exec: None,
        }
    }
}

/// Why a project refuses something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("project {project} does not allow source repository {repo}")]
    SourceRepo { project: String, repo: String },
    #[error(
        "project {project} does not allow destination cluster {cluster} namespace {namespace:?}"
    )]
    Destination {
        project: String,
        cluster: String,
        namespace: String,
    },
    #[error("project {project} does not allow cluster-scoped {group_kind}{rule}")]
    ClusterKind {
        project: String,
        group_kind: String,
        /// The rule that decided, as ` (clusterResourceBlacklist: …)`, or "".
        rule: String,
    },
    #[error("project {project} does not allow {group_kind}{rule}")]
    NamespacedKind {
        project: String,
        group_kind: String,
        rule: String,
    },
}

/// Glob match where `*` in a pattern also crosses `/` (repository URLs).
fn glob_matches(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    Glob::new(pattern)
        .map(|g| g.compile_matcher().is_match(text))
        .unwrap_or(pattern == text)
}

fn kind_matches(rule: &GroupKind, group: &str, kind: &str, name: &str) -> bool {
    glob_matches(&rule.group, group)
        && glob_matches(&rule.kind, kind)
        && (rule.name.is_empty() || glob_matches(&rule.name, name))
}

fn rule_text(list: &str, rule: &GroupKind) -> String {
    let name = if rule.name.is_empty() {
        String::new()
    } else {
        format!(" name {}", rule.name)
    };
    format!(
        " (rule {list}: group {:?} kind {}{name})",
        rule.group, rule.kind
    )
}

/// Whether destination entry `pattern` (a cluster name glob, a server URL glob, or `in-cluster`'s URL)
/// names the cluster `cluster` whose API server URL is `server` (empty when unknown).
pub fn destination_entry_matches(pattern: &str, cluster: &str, server: &str) -> bool {
    if pattern.contains("://") {
        let pattern = pattern.trim_end_matches('/');
        pattern == IN_CLUSTER_SERVER
            || !server.is_empty() && glob_matches(pattern, server.trim_end_matches('/'))
    } else {
        glob_matches(pattern, cluster)
    }
}

fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    }
}

impl ProjectSpec {
    /// Argo CD's permissive `default` project.
    pub fn permissive() -> Self {
        Self {
            description: "Default project: any repository, any destination".into(),
            source_repos: vec!["*".into()],
            destinations: vec![ProjectDestination {
                cluster_selector: None,
                clusters: vec!["*".into()],
                namespace: "*".into(),
            }],
            cluster_resource_whitelist: vec![GroupKind {
                group: "*".into(),
                kind: "*".into(),
                name: String::new(),
            }],
            ..Self::default()
        }
    }

    /// [`check_source`](Self::check_source) for every source of an app (a multi-source app's refs included:
    /// a values repository is a source too).
    pub fn check_sources(
        &self,
        project: &str,
        spec: &crate::app::ApplicationSpec,
    ) -> Result<(), PolicyViolation> {
        spec.sources()
            .iter()
            .try_for_each(|s| self.check_source(project, &s.repo_url))
    }

    pub fn check_source(&self, project: &str, repo: &str) -> Result<(), PolicyViolation> {
        let normalized = repo.trim_end_matches('/');
        if self
            .source_repos
            .iter()
            .any(|p| glob_matches(p, repo) || glob_matches(p, normalized))
        {
            Ok(())
        } else {
            Err(PolicyViolation::SourceRepo {
                project: project.to_owned(),
                repo: repo.to_owned(),
            })
        }
    }

    pub fn check_destination(
        &self,
        project: &str,
        cluster: &str,
        cluster_labels: &BTreeMap<String, String>,
        namespace: &str,
    ) -> Result<(), PolicyViolation> {
        self.check_destination_at(project, cluster, "", cluster_labels, namespace)
    }

    /// [`check_destination`](Self::check_destination) for a cluster whose API server URL is `server` (empty
    /// when unknown), so destinations given by server URL match it.
    pub fn check_destination_at(
        &self,
        project: &str,
        cluster: &str,
        server: &str,
        cluster_labels: &BTreeMap<String, String>,
        namespace: &str,
    ) -> Result<(), PolicyViolation> {
        let allowed = self.destinations.iter().any(|d| {
            let cluster_ok = d
                .clusters
                .iter()
                .any(|c| destination_entry_matches(c, cluster, server))
                || d.cluster_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(cluster_labels));
            let ns_ok = d.namespace.is_empty() && namespace.is_empty()
                || glob_matches(&d.namespace, namespace);
            cluster_ok && ns_ok
        });
        if allowed {
            Ok(())
        } else {
            Err(PolicyViolation::Destination {
                project: project.to_owned(),
                cluster: cluster.to_owned(),
                namespace: namespace.to_owned(),
            })
        }
    }

    /// Checks one object kind; `namespaced` says whether the kind is namespaced.
    pub fn check_kind(
        &self,
        project: &str,
        group: &str,
        kind: &str,
        namespaced: bool,
    ) -> Result<(), PolicyViolation> {
        self.check_resource(project, group, kind, "", namespaced)
    }

    /// Checks one object as Argo CD does: a namespaced kind must be in `namespaceResourceWhitelist` (when
    /// set) and not in `namespaceResourceBlacklist`; a cluster-scoped one in `clusterResourceWhitelist` and not
    /// in `clusterResourceBlacklist` (rules by group, kind and name globs). The error names the deciding rule.
    pub fn check_resource(
        &self,
        project: &str,
        group: &str,
        kind: &str,
        name: &str,
        namespaced: bool,
    ) -> Result<(), PolicyViolation> {
        let shown = if name.is_empty() {
            group_kind(group, kind)
        } else {
            format!("{} {name}", group_kind(group, kind))
        };
        let matching = |list: &[GroupKind]| {
            list.iter()
                .find(|r| kind_matches(r, group, kind, name))
                .cloned()
        };
        if namespaced {
            if let Some(rule) = matching(&self.namespace_resource_blacklist) {
                return Err(PolicyViolation::NamespacedKind {
                    project: project.to_owned(),
                    group_kind: shown,
                    rule: rule_text("namespaceResourceBlacklist", &rule),
                });
            }
            if let Some(whitelist) = &self.namespace_resource_whitelist
                && matching(whitelist).is_none()
            {
                return Err(PolicyViolation::NamespacedKind {
                    project: project.to_owned(),
                    group_kind: shown,
                    rule: " (not in namespaceResourceWhitelist)".into(),
                });
            }
            return Ok(());
        }
        if let Some(rule) = matching(&self.cluster_resource_blacklist) {
            return Err(PolicyViolation::ClusterKind {
                project: project.to_owned(),
                group_kind: shown,
                rule: rule_text("clusterResourceBlacklist", &rule),
            });
        }
        if matching(&self.cluster_resource_whitelist).is_none() {
            return Err(PolicyViolation::ClusterKind {
                project: project.to_owned(),
                group_kind: shown,
                rule: String::new(),
            });
        }
        Ok(())
    }

    /// The strongest role a user (or any of their groups) has here.
    pub fn role_of(&self, user: &str, groups: &[String]) -> Option<ProjectRole> {
        self.roles
            .iter()
            .filter(|b| {
                b.users.iter().any(|u| u == user) || b.groups.iter().any(|g| groups.contains(g))
            })
            .map(|b| b.role)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_ignore_rules_match_as_argo_cd_does() {
        let rule = |group: &str, kind: &str, name: &str| GroupKind {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        };
        let orphans = OrphanedResources {
            warn: None,
            ignore: vec![rule("", "ConfigMap", "keep-*"), rule("apps", "", "")],
        };
        assert!(orphans.warns());
        assert!(orphans.ignores("", "ConfigMap", "keep-me"));
        assert!(!orphans.ignores("", "ConfigMap", "stray"));
        // An empty kind is any kind; an empty group is the core group only.
        assert!(orphans.ignores("apps", "Deployment", "web"));
        assert!(!orphans.ignores("batch", "Job", "web"));
        assert!(!orphans.ignores("other", "ConfigMap", "keep-me"));
    }

    fn team_a() -> ProjectSpec {
        ProjectSpec {
            source_repos: vec!["https://git.example/team-a/*".into()],
            destinations: vec![ProjectDestination {
                cluster_selector: Some(LabelSelector::parse("tier=edge").unwrap()),
                clusters: vec![],
                namespace: "team-a-*".into(),
            }],
            cluster_resource_whitelist: vec![GroupKind {
                group: "".into(),
                kind: "Namespace".into(),
                name: String::new(),
            }],
            roles: vec![
                RoleBinding {
                    role: ProjectRole::Viewer,
                    users: vec!["vic".into()],
                    groups: vec![],
                },
                RoleBinding {
                    role: ProjectRole::Deployer,
                    users: vec![],
                    groups: vec!["ops".into()],
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn sources_destinations_and_kinds() {
        let p = team_a();
        assert!(
            p.check_source("a", "https://git.example/team-a/web.git")
                .is_ok()
        );
        let err = p
            .check_source("a", "https://git.example/team-b/web.git")
            .unwrap_err();
        assert!(err.to_string().contains("team-b"), "{err}");
        let edge: BTreeMap<_, _> = [("tier".to_owned(), "edge".to_owned())].into();
        assert!(p.check_destination("a", "c1", &edge, "team-a-web").is_ok());
        assert!(
            p.check_destination("a", "c1", &edge, "kube-system")
                .is_err()
        );
        assert!(
            p.check_destination("a", "c1", &BTreeMap::new(), "team-a-web")
                .is_err()
        );
        assert!(p.check_kind("a", "", "Namespace", false).is_ok());
        let err = p
            .check_kind("a", "rbac.authorization.k8s.io", "ClusterRole", false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "project a does not allow cluster-scoped ClusterRole.rbac.authorization.k8s.io"
        );
        assert!(p.check_kind("a", "apps", "Deployment", true).is_ok());
    }

    #[test]
    fn whitelists_blacklists_by_name_and_server_destinations() {
        let gk = |group: &str, kind: &str, name: &str| GroupKind {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        };
        let p = ProjectSpec {
            destinations: vec![ProjectDestination {
                clusters: vec!["https://10.0.0.1:6443".into(), IN_CLUSTER_SERVER.into()],
                namespace: "web".into(),
                ..Default::default()
            }],
            cluster_resource_whitelist: vec![gk("", "Namespace", "")],
            cluster_resource_blacklist: vec![gk("", "Namespace", "kube-*")],
            namespace_resource_whitelist: Some(vec![gk("apps", "*", "")]),
            ..Default::default()
        };
        assert!(p.check_resource("a", "", "Namespace", "web", false).is_ok());
        let err = p
            .check_resource("a", "", "Namespace", "kube-system", false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "project a does not allow cluster-scoped Namespace kube-system (rule clusterResourceBlacklist: group \"\" kind Namespace name kube-*)"
        );
        assert!(
            p.check_resource("a", "apps", "Deployment", "x", true)
                .is_ok()
        );
        let err = p
            .check_resource("a", "", "ConfigMap", "x", true)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "project a does not allow ConfigMap x (not in namespaceResourceWhitelist)"
        );
        // An empty whitelist allows no namespaced kind; none allows every one.
        let none = ProjectSpec {
            namespace_resource_whitelist: Some(vec![]),
            ..Default::default()
        };
        assert!(none.check_kind("a", "apps", "Deployment", true).is_err());
        assert!(
            ProjectSpec::default()
                .check_kind("a", "apps", "Deployment", true)
                .is_ok()
        );
        // Server URLs match the cluster reporting them; in-cluster matches any cluster.
        let labels = BTreeMap::new();
        let only_url = ProjectSpec {
            destinations: vec![ProjectDestination {
                clusters: vec!["https://10.0.0.1:6443".into()],
                namespace: "*".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(
            only_url
                .check_destination_at("a", "paris", "https://10.0.0.1:6443/", &labels, "x")
                .is_ok()
        );
        assert!(
            only_url
                .check_destination_at("a", "paris", "https://10.0.0.2:6443", &labels, "x")
                .is_err()
        );
        assert!(
            only_url
                .check_destination("a", "https:", &labels, "x")
                .is_err()
        );
        assert!(p.check_destination("a", "anything", &labels, "web").is_ok());
    }

    #[test]
    fn strongest_role_wins() {
        let p = team_a();
        assert_eq!(p.role_of("vic", &[]), Some(ProjectRole::Viewer));
        assert_eq!(
            p.role_of("vic", &["ops".into()]),
            Some(ProjectRole::Deployer)
        );
        assert_eq!(p.role_of("eve", &[]), None);
        assert!(
            ProjectSpec::permissive()
                .check_kind("default", "x", "Y", false)
                .is_ok()
        );
    }
}
