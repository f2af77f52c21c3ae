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
    /// Cluster names (globs); `*` means every cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    /// Namespace glob.
    #[serde(default)]
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKind {
    #[serde(default)]
    pub group: String,
    pub kind: String,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleBinding>,
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
    #[error("project {project} does not allow cluster-scoped {group_kind}")]
    ClusterKind { project: String, group_kind: String },
    #[error("project {project} does not allow {group_kind}")]
    NamespacedKind { project: String, group_kind: String },
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

fn kind_matches(rule: &GroupKind, group: &str, kind: &str) -> bool {
    glob_matches(&rule.group, group) && glob_matches(&rule.kind, kind)
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
            }],
            ..Self::default()
        }
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
        let allowed = self.destinations.iter().any(|d| {
            let cluster_ok = d.clusters.iter().any(|c| glob_matches(c, cluster))
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
        if namespaced {
            if self
                .namespace_resource_blacklist
                .iter()
                .any(|r| kind_matches(r, group, kind))
            {
                return Err(PolicyViolation::NamespacedKind {
                    project: project.to_owned(),
                    group_kind: group_kind(group, kind),
                });
            }
            return Ok(());
        }
        let allowed = self
            .cluster_resource_whitelist
            .iter()
            .any(|r| kind_matches(r, group, kind))
            && !self
                .cluster_resource_blacklist
                .iter()
                .any(|r| kind_matches(r, group, kind));
        if allowed {
            Ok(())
        } else {
            Err(PolicyViolation::ClusterKind {
                project: project.to_owned(),
                group_kind: group_kind(group, kind),
            })
        }
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
