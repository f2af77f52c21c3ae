//! Who may do what: principals, actions and the pure RBAC decision shared by the hub's API and console.
//!
//! ```text
//!   caller ──authenticate (hub::access)──► Principal ──decide(action, project)──► Ok | Denied
//! ```
//!
//! Roles: a global admin may do everything; inside a project a principal holds
//! the strongest of the roles the project's bindings give its subject or
//! groups and the grants it carries itself (API tokens are scoped by grants).
//! Viewer reads, Deployer also operates (sync, refresh, rollback, terminate),
//! Owner also edits apps and the project. Cluster and account management need
//! admin. Nothing here does IO: the caller loads the project spec.

use std::fmt;

use crate::project::{ProjectRole, ProjectSpec};

/// How the principal proved who it is (for audit and `WhoAmI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Authentication is disabled (`--insecure-disable-auth`, dev fleets only).
    Disabled,
    /// A session token obtained by logging in with a local account.
    Password,
    /// A session token obtained through OIDC.
    Oidc,
    /// A long-lived API token.
    ApiToken,
}

/// A role held in one project (or `*` for every project), carried by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A project name, or `*`.
    pub project: String,
    pub role: ProjectRole,
}

impl Grant {
    fn covers(&self, project: &str) -> bool {
        self.project == "*" || self.project == project
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name, or `token:<id>` for an API token.
    pub subject: String,
    pub groups: Vec<String>,
    pub admin: bool,
    pub grants: Vec<Grant>,
    pub method: AuthMethod,
    /// For an API token: its owner as the hub knows them now. The token never
    /// holds more than its owner does (a role lost by the owner is lost by
    /// their tokens at their next call). `admin` is already the conjunction.
    pub on_behalf_of: Option<Box<Principal>>,
}

impl Principal {
    /// The caller when authentication is disabled: an admin named `anonymous`.
    pub fn anonymous_admin() -> Self {
        Principal {
            subject: "anonymous".into(),
            groups: Vec::new(),
            admin: true,
            grants: Vec::new(),
            method: AuthMethod::Disabled,
            on_behalf_of: None,
        }
    }

    /// The strongest role held in `project` (`Owner` for admins), capped by
    /// the role of the owner it acts for, if any.
    pub fn role_in(&self, project: &str, spec: &ProjectSpec) -> Option<ProjectRole> {
        let own = if self.admin {
            Some(ProjectRole::Owner)
        } else {
            let bound = spec.role_of(&self.subject, &self.groups);
            let granted = self
                .grants
                .iter()
                .filter(|g| g.covers(project))
                .map(|g| g.role)
                .max();
            bound.max(granted)
        };
        match &self.on_behalf_of {
            // `None` (no role) is the smallest: either side lacking a role denies.
            Some(owner) => own.min(owner.role_in(project, spec)),
            None => own,
        }
    }
}

/// What a call wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read apps, status, diffs, history, events of a project.
    Read,
    /// Sync, refresh, rollback, terminate.
    Operate,
    /// Create, update, delete apps and appsets; edit the project.
    Edit,
    /// Clusters, projects (create/delete), users, repositories, audit.
    Admin,
    /// Read pod logs through the spoke: the project's `live.logs` role (Deployer by default).
    ReadLogs,
    /// Run a command in a container (exec, the web terminal): the project's `live.exec` role; with none set,
    /// exec is off in the project for everyone, admins included.
    Exec,
}

impl Action {
    fn required(self, spec: &ProjectSpec) -> Option<ProjectRole> {
        match self {
            Action::Read => Some(ProjectRole::Viewer),
            Action::Operate => Some(ProjectRole::Deployer),
            Action::Edit => Some(ProjectRole::Owner),
            Action::Admin => None,
            Action::ReadLogs => Some(spec.live.logs),
            Action::Exec => spec.live.exec,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Read => "read",
            Action::Operate => "operate (sync, refresh, rollback, terminate)",
            Action::Edit => "edit",
            Action::Admin => "administer",
            Action::ReadLogs => "read pod logs",
            Action::Exec => "exec into containers",
        })
    }
}

/// A refused call; the message names subject, action and project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject} may not {action}{}", .project.as_deref().map(|p| format!(" in project {p}")).unwrap_or_default())]
pub struct Denied {
    pub subject: String,
    pub action: Action,
    pub project: Option<String>,
}

/// Decide whether `principal` may do `action`, in `project` when the action
/// is project-scoped (`Admin` ignores it).
pub fn decide(
    principal: &Principal,
    action: Action,
    project: Option<(&str, &ProjectSpec)>,
) -> Result<(), Denied> {
    let denied = || Denied {
        subject: principal.subject.clone(),
        action,
        project: project.map(|(name, _)| name.to_owned()),
    };
    if action == Action::Exec && project.is_none_or(|(_, spec)| spec.live.exec.is_none()) {
        // Off in the project: nobody's role turns it on, only the project's setting.
        return Err(denied());
    }
    if principal.admin {
        return Ok(());
    }
    let Some((name, spec)) = project else {
        return Err(denied());
    };
    match (action.required(spec), principal.role_in(name, spec)) {
        (Some(required), Some(held)) if held >= required => Ok(()),
        _ => Err(denied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::RoleBinding;

    fn spec() -> ProjectSpec {
        ProjectSpec {
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
            ..ProjectSpec::default()
        }
    }

    fn user(name: &str, groups: &[&str]) -> Principal {
        Principal {
            subject: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            admin: false,
            grants: vec![],
            method: AuthMethod::Password,
            on_behalf_of: None,
        }
    }

    #[test]
    fn viewer_reads_but_cannot_sync() {
        let vic = user("vic", &[]);
        assert!(decide(&vic, Action::Read, Some(("a", &spec()))).is_ok());
        let err = decide(&vic, Action::Operate, Some(("a", &spec()))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "vic may not operate (sync, refresh, rollback, terminate) in project a"
        );
    }

    #[test]
    fn logs_need_the_projects_log_role() {
        let vic = user("vic", &[]);
        let olga = user("olga", &["ops"]);
        let err = decide(&vic, Action::ReadLogs, Some(("a", &spec()))).unwrap_err();
        assert_eq!(err.to_string(), "vic may not read pod logs in project a");
        assert!(decide(&olga, Action::ReadLogs, Some(("a", &spec()))).is_ok());
        let open = ProjectSpec {
            live: crate::project::LiveAccess {
                logs: ProjectRole::Viewer,
                exec: None,
            },
            ..spec()
        };
        assert!(decide(&vic, Action::ReadLogs, Some(("a", &open))).is_ok());
        let closed = ProjectSpec {
            live: crate::project::LiveAccess {
                logs: ProjectRole::Owner,
                exec: None,
            },
            ..spec()
        };
        assert!(decide(&olga, Action::ReadLogs, Some(("a", &closed))).is_err());
    }

    #[test]
    fn exec_is_off_until_the_project_names_a_role_even_for_admins() {
        let olga = user("olga", &["ops"]);
        let admin = Principal::anonymous_admin();
        let err = decide(&olga, Action::Exec, Some(("a", &spec()))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "olga may not exec into containers in project a"
        );
        assert!(decide(&admin, Action::Exec, Some(("a", &spec()))).is_err());
        assert!(decide(&admin, Action::Exec, None).is_err());
        let on = ProjectSpec {
            live: crate::project::LiveAccess {
                exec: Some(ProjectRole::Deployer),
                ..crate::project::LiveAccess::default()
            },
            ..spec()
        };
        assert!(decide(&olga, Action::Exec, Some(("a", &on))).is_ok());
        assert!(decide(&admin, Action::Exec, Some(("a", &on))).is_ok());
        assert!(decide(&user("vic", &[]), Action::Exec, Some(("a", &on))).is_err());
    }

    #[test]
    fn group_binding_gives_deployer_not_owner() {
        let olga = user("olga", &["ops"]);
        assert!(decide(&olga, Action::Operate, Some(("a", &spec()))).is_ok());
        assert!(decide(&olga, Action::Edit, Some(("a", &spec()))).is_err());
        assert!(decide(&olga, Action::Admin, None).is_err());
    }

    #[test]
    fn strangers_and_other_projects_are_refused() {
        let eve = user("eve", &[]);
        assert!(decide(&eve, Action::Read, Some(("a", &spec()))).is_err());
        assert!(decide(&eve, Action::Read, None).is_err());
    }

    #[test]
    fn token_grants_are_scoped_to_their_project() {
        let mut token = user("token:t1", &[]);
        token.method = AuthMethod::ApiToken;
        token.grants = vec![Grant {
            project: "a".into(),
            role: ProjectRole::Deployer,
        }];
        let empty = ProjectSpec::default();
        assert!(decide(&token, Action::Operate, Some(("a", &empty))).is_ok());
        assert!(decide(&token, Action::Read, Some(("b", &empty))).is_err());
        token.grants[0].project = "*".into();
        assert!(decide(&token, Action::Read, Some(("b", &empty))).is_ok());
    }

    /// A token holds no more than its owner holds now: an owner demoted from
    /// deployer to viewer leaves the token read-only, removed leaves it nothing.
    #[test]
    fn a_token_is_capped_by_its_owners_current_role() {
        let mut token = user("token:t1", &[]);
        token.method = AuthMethod::ApiToken;
        token.grants = vec![Grant {
            project: "*".into(),
            role: ProjectRole::Owner,
        }];
        // vic is bound as viewer in `spec()`; olga is deployer through her group.
        token.on_behalf_of = Some(Box::new(user("vic", &[])));
        assert!(decide(&token, Action::Read, Some(("a", &spec()))).is_ok());
        assert!(decide(&token, Action::Operate, Some(("a", &spec()))).is_err());
        token.on_behalf_of = Some(Box::new(user("olga", &["ops"])));
        assert!(decide(&token, Action::Operate, Some(("a", &spec()))).is_ok());
        assert!(decide(&token, Action::Edit, Some(("a", &spec()))).is_err());
        token.on_behalf_of = Some(Box::new(user("eve", &[])));
        assert!(decide(&token, Action::Read, Some(("a", &spec()))).is_err());
    }

    #[test]
    fn admin_may_do_everything() {
        let root = Principal::anonymous_admin();
        assert!(decide(&root, Action::Admin, None).is_ok());
        assert!(decide(&root, Action::Edit, Some(("a", &ProjectSpec::default()))).is_ok());
    }
}
