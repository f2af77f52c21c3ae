//! `edgecd project list|get|create|delete`.

use edgecd_proto::v1;
use futures::TryStreamExt as _;
use serde::Serialize;

use crate::args::ProjectCommand;
use crate::exit::Exit;
use crate::output::{Table, or_dash, print_structured, time_text};
use crate::session::Session;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProjectView {
    name: String,
    description: String,
    source_repos: Vec<String>,
    destinations: Vec<String>,
    version: u64,
    created_at: String,
}

impl From<&v1::Project> for ProjectView {
    fn from(p: &v1::Project) -> Self {
        Self {
            name: p.name.clone(),
            description: p.description.clone(),
            source_repos: p.source_repos.clone(),
            destinations: p.destinations.iter().map(destination_text).collect(),
            version: p.version,
            created_at: time_text(p.created_at.as_ref()),
        }
    }
}

fn destination_text(d: &v1::ProjectDestination) -> String {
    let clusters = if d.all_clusters {
        "*".to_owned()
    } else if !d.cluster_names.is_empty() {
        d.cluster_names.join("|")
    } else if d.cluster_selector.is_some() {
        "<selector>".to_owned()
    } else {
        "-".to_owned()
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
            "invalid --dest {text:?}: expected CLUSTER:NAMESPACE (`*` for any)"
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
            let views: Vec<ProjectView> = projects.iter().map(ProjectView::from).collect();
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
            let project = client.get_project(v1::GetProjectRequest { name }).await?;
            let view = ProjectView::from(&project);
            if !print_structured(output, &view)? {
                outln!("Name:          {}", view.name)?;
                outln!("Description:   {}", or_dash(&view.description))?;
                outln!("Sources:       {}", or_dash(&view.source_repos.join(", ")))?;
                outln!("Destinations:  {}", or_dash(&view.destinations.join(", ")))?;
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
            let destinations = if destinations.is_empty() {
                vec!["*:*".to_owned()]
            } else {
                destinations
            };
            let project = v1::Project {
                name: name.clone(),
                description,
                source_repos: if source_repos.is_empty() {
                    vec!["*".into()]
                } else {
                    source_repos
                },
                destinations: destinations
                    .iter()
                    .map(|d| parse_destination(d))
                    .collect::<anyhow::Result<_>>()?,
                ..Default::default()
            };
            client
                .create_project(v1::CreateProjectRequest {
                    project: Some(project),
                    upsert,
                })
                .await?;
            outln!("project {name} created")?;
        }
        ProjectCommand::Delete { name } => {
            client
                .delete_project(v1::DeleteProjectRequest { name: name.clone() })
                .await?;
            outln!("project {name} deleted")?;
        }
    }
    Ok(())
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
    }
}
