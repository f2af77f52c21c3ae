//! `edgecd project list|get|create|delete`, the sources and destinations a project allows (`add-source`, `add-destination`, …; nothing by default), and its role bindings (`project role list|add|remove`).

use edgecd_proto::client::Client;
use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;

use super::account::{role_kind, role_name};
use crate::args::{ExecRoleArg, ProjectCommand, ProjectRoleCommand, RoleArg};
use crate::exit::Exit;
use crate::output::{Table, natural_cmp, or_dash, print_structured, time_text};
use crate::session::Session;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProjectView {
    name: String,
    description: String,
    source_repos: Vec<String>,
    destinations: Vec<String>,
    roles: Vec<RoleView>,
    /// The least role that reads pod logs.
    log_role: String,
    /// The least role that execs into containers, or `off`.
    exec_role: String,
    version: u64,
    created_at: String,
}

#[derive(Debug, Serialize)]
struct RoleView {
    role: String,
    users: Vec<String>,
    groups: Vec<String>,
}

impl From<&v1::Project> for ProjectView {
    fn from(p: &v1::Project) -> Self {
        Self {
            name: p.name.clone(),
            description: p.description.clone(),
            source_repos: p.source_repos.clone(),
            destinations: p.destinations.iter().map(destination_text).collect(),
            roles: p
                .roles
                .iter()
                .map(|r| RoleView {
                    role: role_name(r.role).to_owned(),
                    users: r.users.clone(),
                    groups: r.groups.clone(),
                })
                .collect(),
            log_role: match p.logs_role {
                0 => "deployer".to_owned(),
                code => role_name(code).to_owned(),
            },
            exec_role: match p.exec_role {
                0 => "off".to_owned(),
                code => role_name(code).to_owned(),
            },
            version: p.version,
            created_at: time_text(p.created_at.as_ref()),
        }
    }
}

fn destination_text(d: &v1::ProjectDestination) -> String {
    let mut clusters: Vec<String> = d.cluster_names.clone();
    if d.all_clusters {
        clusters.insert(0, "*".to_owned());
    }
    if let Some(selector) = &d.cluster_selector
        && let Ok(parsed) = edgecd_proto::convert::from_label_selector(selector)
    {
        clusters.push(format!("{{{parsed}}}"));
    }
    let clusters = if clusters.is_empty() {
        "-".to_owned()
    } else {
        clusters.join("|")
    };
    format!(
        "{clusters}:{}",
        if d.namespace.is_empty() {
            "*"
        } else {
            &d.namespace
        }
    )
}

/// `cluster:namespace`, `*` for every cluster.
fn parse_destination(text: &str) -> anyhow::Result<v1::ProjectDestination> {
    let (cluster, namespace) = text.split_once(':').unwrap_or((text, "*"));
    if cluster.is_empty() {
        anyhow::bail!(Exit::usage(format!(
            "invalid destination {text:?}: expected CLUSTER:NAMESPACE (`*` for any)"
        )));
    }
    Ok(v1::ProjectDestination {
        cluster_selector: None,
        all_clusters: cluster == "*",
        cluster_names: if cluster == "*" {
            Vec::new()
        } else {
            vec![cluster.to_owned()]
        },
        namespace: if namespace.is_empty() { "*" } else { namespace }.to_owned(),
    })
}

/// What to say after creating a project: how to allow what it does not allow yet.
fn deny_by_default_note(name: &str, sources: bool, destinations: bool) -> Option<String> {
    let missing = match (sources, destinations) {
        (true, true) => return None,
        (false, false) => "no source repositories and no destinations",
        (false, true) => "no source repositories",
        (true, false) => "no destinations",
    };
    let mut text = format!(
        "project {name} allows {missing} yet (deny by default, as Argo CD): its apps are refused until you allow them:\n"
    );
    if !sources {
        text.push_str(&format!(
            "  edgecd project add-source {name} 'https://git.example.com/team/*'   # a repository URL glob, '*' for any\n"
        ));
    }
    if !destinations {
        text.push_str(&format!(
            "  edgecd project add-destination {name} 'cluster-1:team-*'          # CLUSTER:NAMESPACE globs, '*:*' for any\n"
        ));
    }
    Some(text)
}

async fn get(client: &Client, name: &str) -> anyhow::Result<v1::Project> {
    Ok(client
        .get_project(v1::GetProjectRequest {
            name: name.to_owned(),
        })
        .await?)
}

/// Reads the project, changes it with `change`, and writes it back with optimistic concurrency;
/// returns the stored project and whether anything changed.
async fn modify(
    client: &Client,
    name: &str,
    change: impl FnOnce(&mut v1::Project) -> anyhow::Result<()>,
) -> anyhow::Result<(v1::Project, bool)> {
    let current = get(client, name).await?;
    let mut wanted = current.clone();
    change(&mut wanted)?;
    if wanted == current {
        return Ok((current, false));
    }
    let updated = client
        .update_project(v1::UpdateProjectRequest {
            expected_version: current.version,
            project: Some(wanted),
        })
        .await?;
    Ok((updated, true))
}

fn changed_word(changed: bool) -> &'static str {
    if changed { "updated" } else { "unchanged" }
}

pub async fn run(session: &Session, command: ProjectCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    let client = session.client().await?;
    match command {
        ProjectCommand::List => {
            let projects: Vec<v1::Project> = client
                .projects(v1::ListProjectsRequest {
                    page_size: 500,
                    page_token: String::new(),
                })
                .try_collect()
                .await?;
            let mut views: Vec<ProjectView> = projects.iter().map(ProjectView::from).collect();
            views.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            if !print_structured(output, &views)? {
                let mut table = Table::new(vec!["NAME", "DESCRIPTION", "SOURCES", "DESTINATIONS"]);
                for v in views {
                    table.row(vec![
                        v.name,
                        or_dash(&v.description),
                        or_dash(&v.source_repos.join(",")),
                        or_dash(&v.destinations.join(",")),
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
        ProjectCommand::Get { name } => {
            let project = get(&client, &name).await?;
            let view = ProjectView::from(&project);
            if !print_structured(output, &view)? {
                outln!("Name:          {}", view.name)?;
                outln!("Description:   {}", or_dash(&view.description))?;
                outln!(
                    "Sources:       {}",
                    if view.source_repos.is_empty() {
                        "none allowed".to_owned()
                    } else {
                        view.source_repos.join(", ")
                    }
                )?;
                outln!(
                    "Destinations:  {}",
                    if view.destinations.is_empty() {
                        "none allowed".to_owned()
                    } else {
                        view.destinations.join(", ")
                    }
                )?;
                for role in &view.roles {
                    outln!("Role:          {}", role_text(role))?;
                }
                outln!("Pod logs:      {} and above", view.log_role)?;
                if view.exec_role == "off" {
                    outln!("Exec:          off")?;
                } else {
                    outln!("Exec:          {} and above", view.exec_role)?;
                }
                outln!("Created:       {}", view.created_at)?;
            }
        }
        ProjectCommand::Create {
            name,
            description,
            source_repos,
            destinations,
            upsert,
        } => {
            let project = v1::Project {
                name: name.clone(),
                description,
                // Nothing given, nothing allowed: the hub refuses every app of a project with
                // empty lists until sources and destinations are added.
                source_repos: source_repos.clone(),
                destinations: destinations
                    .iter()
                    .map(|d| parse_destination(d))
                    .collect::<anyhow::Result<_>>()?,
                ..Default::default()
            };
            let existed = upsert && get(&client, &name).await.is_ok();
            let stored = client
                .create_project(v1::CreateProjectRequest {
                    project: Some(project),
                    upsert,
                })
                .await?;
            if !print_structured(output, &ProjectView::from(&stored))? {
                outln!(
                    "project {name} {}",
                    if existed { "updated" } else { "created" }
                )?;
            }
            if let Some(note) = deny_by_default_note(
                &name,
                !stored.source_repos.is_empty(),
                !stored.destinations.is_empty(),
            ) {
                note!("{note}");
            }
        }
        ProjectCommand::Delete { name } => {
            client
                .delete_project(v1::DeleteProjectRequest { name: name.clone() })
                .await?;
            outln!("project {name} deleted")?;
        }
        ProjectCommand::SetLogRole { name, role } => {
            let kind = role_kind(role) as i32;
            let (_, changed) = modify(&client, &name, |p| {
                p.logs_role = kind;
                Ok(())
            })
            .await?;
            outln!(
                "project {name} {}: pod logs for {} and above",
                changed_word(changed),
                role_name(kind)
            )?;
        }
        ProjectCommand::SetExecRole { name, role } => {
            let kind = match role {
                ExecRoleArg::Off => 0,
                ExecRoleArg::Owner => role_kind(RoleArg::Owner) as i32,
                ExecRoleArg::Deployer => role_kind(RoleArg::Deployer) as i32,
                ExecRoleArg::Viewer => role_kind(RoleArg::Viewer) as i32,
            };
            let (_, changed) = modify(&client, &name, |p| {
                p.exec_role = kind;
                Ok(())
            })
            .await?;
            if kind == 0 {
                outln!("project {name} {}: exec off", changed_word(changed))?;
            } else {
                outln!(
                    "project {name} {}: exec for {} and above",
                    changed_word(changed),
                    role_name(kind)
                )?;
            }
        }
        ProjectCommand::AddSource { name, repo } => {
            let (_, changed) = modify(&client, &name, |p| {
                if !p.source_repos.contains(&repo) {
                    p.source_repos.push(repo.clone());
                }
                Ok(())
            })
            .await?;
            outln!(
                "project {name} {}: source {repo} allowed",
                changed_word(changed)
            )?;
        }
        ProjectCommand::RemoveSource { name, repo } => {
            let (_, changed) = modify(&client, &name, |p| {
                if !p.source_repos.contains(&repo) {
                    anyhow::bail!(Exit::new(
                        crate::exit::NOT_FOUND,
                        format!("project {name} does not allow source {repo}")
                    ));
                }
                p.source_repos.retain(|r| *r != repo);
                Ok(())
            })
            .await?;
            outln!(
                "project {name} {}: source {repo} no longer allowed",
                changed_word(changed)
            )?;
        }
        ProjectCommand::AddDestination { name, destination } => {
            let wanted = parse_destination(&destination)?;
            let (_, changed) = modify(&client, &name, |p| {
                if !p.destinations.contains(&wanted) {
                    p.destinations.push(wanted.clone());
                }
                Ok(())
            })
            .await?;
            outln!(
                "project {name} {}: destination {} allowed",
                changed_word(changed),
                destination_text(&wanted)
            )?;
        }
        ProjectCommand::RemoveDestination { name, destination } => {
            let wanted = parse_destination(&destination)?;
            let (_, changed) = modify(&client, &name, |p| {
                if !p.destinations.contains(&wanted) {
                    anyhow::bail!(Exit::new(
                        crate::exit::NOT_FOUND,
                        format!(
                            "project {name} has no destination {}",
                            destination_text(&wanted)
                        )
                    ));
                }
                p.destinations.retain(|d| *d != wanted);
                Ok(())
            })
            .await?;
            outln!(
                "project {name} {}: destination {} no longer allowed",
                changed_word(changed),
                destination_text(&wanted)
            )?;
        }
        ProjectCommand::Role(command) => role(&client, output, command).await?,
    }
    Ok(())
}

fn role_text(role: &RoleView) -> String {
    let mut members: Vec<String> = role.users.iter().map(|u| format!("user:{u}")).collect();
    members.extend(role.groups.iter().map(|g| format!("group:{g}")));
    format!(
        "{} {}",
        role.role,
        if members.is_empty() {
            "-".to_owned()
        } else {
            members.join(", ")
        }
    )
}

/// Adds `users` and `groups` to the binding of `role` (creating it), keeping each member once.
fn grant(project: &mut v1::Project, role: RoleArg, users: &[String], groups: &[String]) {
    let kind = role_kind(role) as i32;
    let index = match project.roles.iter().position(|r| r.role == kind) {
        Some(i) => i,
        None => {
            project.roles.push(v1::ProjectRoleBinding {
                role: kind,
                users: Vec::new(),
                groups: Vec::new(),
            });
            project.roles.len() - 1
        }
    };
    let binding = &mut project.roles[index];
    for user in users {
        if !binding.users.contains(user) {
            binding.users.push(user.clone());
        }
    }
    for group in groups {
        if !binding.groups.contains(group) {
            binding.groups.push(group.clone());
        }
    }
}

/// Takes `role` from `users` and `groups` (from everyone when both are empty); drops empty bindings.
fn revoke(project: &mut v1::Project, role: RoleArg, users: &[String], groups: &[String]) -> bool {
    let kind = role_kind(role) as i32;
    let before = project.roles.clone();
    for binding in project.roles.iter_mut().filter(|r| r.role == kind) {
        if users.is_empty() && groups.is_empty() {
            binding.users.clear();
            binding.groups.clear();
        } else {
            binding.users.retain(|u| !users.contains(u));
            binding.groups.retain(|g| !groups.contains(g));
        }
    }
    project
        .roles
        .retain(|r| !(r.users.is_empty() && r.groups.is_empty()));
    project.roles != before
}

async fn role(
    client: &Client,
    output: crate::args::Output,
    command: ProjectRoleCommand,
) -> anyhow::Result<()> {
    match command {
        ProjectRoleCommand::List { project } => {
            let view = ProjectView::from(&get(client, &project).await?);
            if !print_structured(output, &view.roles)? {
                if view.roles.is_empty() {
                    noteln!(
                        "project {project} has no role bindings (only admins act in it); add one with \
                         `edgecd project role add {project} deployer --user NAME`"
                    );
                    return Ok(());
                }
                let mut table = Table::new(vec!["ROLE", "USERS", "GROUPS"]);
                for r in &view.roles {
                    table.row(vec![
                        r.role.clone(),
                        or_dash(&r.users.join(",")),
                        or_dash(&r.groups.join(",")),
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
        ProjectRoleCommand::Add {
            project,
            role,
            users,
            groups,
        } => {
            if users.is_empty() && groups.is_empty() {
                anyhow::bail!(Exit::usage("name at least one --user or --group"));
            }
            let (_, changed) = modify(client, &project, |p| {
                grant(p, role, &users, &groups);
                Ok(())
            })
            .await?;
            outln!(
                "project {project} {}: {} role held by {}",
                changed_word(changed),
                role_name(role_kind(role) as i32),
                members(&users, &groups)
            )?;
        }
        ProjectRoleCommand::Remove {
            project,
            role,
            users,
            groups,
        } => {
            let (_, changed) = modify(client, &project, |p| {
                if !revoke(p, role, &users, &groups) {
                    anyhow::bail!(Exit::new(
                        crate::exit::NOT_FOUND,
                        format!(
                            "project {project}: no {} role binding for {}",
                            role_name(role_kind(role) as i32),
                            if users.is_empty() && groups.is_empty() {
                                "anyone".to_owned()
                            } else {
                                members(&users, &groups)
                            }
                        )
                    ));
                }
                Ok(())
            })
            .await?;
            outln!(
                "project {project} {}: {} role taken from {}",
                changed_word(changed),
                role_name(role_kind(role) as i32),
                if users.is_empty() && groups.is_empty() {
                    "everyone".to_owned()
                } else {
                    members(&users, &groups)
                }
            )?;
        }
    }
    Ok(())
}

fn members(users: &[String], groups: &[String]) -> String {
    let mut all: Vec<String> = users.iter().map(|u| format!("user:{u}")).collect();
    all.extend(groups.iter().map(|g| format!("group:{g}")));
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let d = parse_destination("*:team-a-*").unwrap();
        assert!(d.all_clusters);
        assert_eq!(destination_text(&d), "*:team-a-*");
        let d = parse_destination("cluster-1").unwrap();
        assert_eq!(destination_text(&d), "cluster-1:*");
        assert!(parse_destination(":x").is_err());
        let d = v1::ProjectDestination {
            cluster_selector: Some(v1::LabelSelector {
                match_labels: [("region".to_owned(), "eu".to_owned())].into(),
                match_expressions: Vec::new(),
            }),
            namespace: "web".into(),
            ..Default::default()
        };
        assert_eq!(destination_text(&d), "{region=eu}:web");
    }

    #[test]
    fn a_new_project_says_how_to_allow_what_it_does_not() {
        let note = deny_by_default_note("team-a", false, false).unwrap_or_default();
        assert!(
            note.contains("no source repositories and no destinations"),
            "{note}"
        );
        assert!(note.contains("edgecd project add-source team-a"), "{note}");
        assert!(
            note.contains("edgecd project add-destination team-a"),
            "{note}"
        );
        let note = deny_by_default_note("team-a", true, false).unwrap_or_default();
        assert!(!note.contains("add-source"), "{note}");
        assert!(deny_by_default_note("team-a", true, true).is_none());
    }

    #[test]
    fn roles_are_granted_and_revoked() {
        let mut project = v1::Project::default();
        grant(&mut project, RoleArg::Deployer, &["ann".into()], &[]);
        grant(
            &mut project,
            RoleArg::Deployer,
            &["ann".into(), "bob".into()],
            &["ops".into()],
        );
        assert_eq!(project.roles.len(), 1);
        assert_eq!(project.roles[0].users, ["ann", "bob"]);
        assert_eq!(project.roles[0].groups, ["ops"]);
        assert!(revoke(
            &mut project,
            RoleArg::Deployer,
            &["ann".into()],
            &[]
        ));
        assert_eq!(project.roles[0].users, ["bob"]);
        assert!(!revoke(&mut project, RoleArg::Viewer, &["bob".into()], &[]));
        assert!(revoke(&mut project, RoleArg::Deployer, &[], &[]));
        assert!(project.roles.is_empty());
    }
}
