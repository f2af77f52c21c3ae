//! `edgecd repo add|list|rm`: repository credentials, kept sealed by the hub and sent to the spokes of the projects allowed to use them (never shown again).

use std::io::BufRead as _;

use anyhow::Context as _;
use edgecd_proto::v1;
use serde::Serialize;

use crate::args::RepoCommand;
use crate::exit::Exit;
use crate::output::{Table, natural_cmp, or_dash, print_structured, time_text};
use crate::session::Session;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RepoView {
    url_prefix: String,
    kind: String,
    /// Empty: every project.
    projects: Vec<String>,
    updated_at: String,
}

impl From<&v1::RepositoryInfo> for RepoView {
    fn from(r: &v1::RepositoryInfo) -> Self {
        Self {
            url_prefix: r.url_prefix.clone(),
            kind: r.kind.clone(),
            projects: r.projects.clone(),
            updated_at: time_text(r.updated_at.as_ref()),
        }
    }
}

fn projects_text(projects: &[String]) -> String {
    if projects.is_empty() {
        "all".to_owned()
    } else {
        projects.join(",")
    }
}

fn read_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

pub async fn run(session: &Session, command: RepoCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    match command {
        RepoCommand::Add {
            url_prefix,
            username,
            password,
            password_stdin,
            ssh_private_key_file,
            ssh_known_hosts_file,
            projects,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), _) => p,
                (None, true) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\n', '\r']).to_owned()
                }
                (None, false) => String::new(),
            };
            let ssh_private_key = ssh_private_key_file
                .as_deref()
                .map(|p| read_file(p, "SSH private key"))
                .transpose()?
                .unwrap_or_default();
            let ssh_known_hosts = ssh_known_hosts_file
                .as_deref()
                .map(|p| read_file(p, "known_hosts file"))
                .transpose()?
                .unwrap_or_default();
            if password.is_empty() && ssh_private_key.is_empty() {
                anyhow::bail!(Exit::usage(
                    "a credential needs --password/--password-stdin (HTTPS, with --username) or --ssh-private-key-file"
                ));
            }
            let client = session.client().await?;
            let info = client
                .set_repository_credential(v1::SetRepositoryCredentialRequest {
                    url_prefix: url_prefix.clone(),
                    projects,
                    username: username.unwrap_or_default(),
                    password,
                    ssh_private_key,
                    ssh_known_hosts,
                })
                .await?;
            let view = RepoView::from(&info);
            if !print_structured(output, &view)? {
                outln!(
                    "repository credential for {} saved ({}; projects: {})",
                    view.url_prefix,
                    view.kind,
                    projects_text(&view.projects)
                )?;
            }
        }
        RepoCommand::List => {
            let client = session.client().await?;
            let mut views: Vec<RepoView> = client
                .list_repositories()
                .await?
                .items
                .iter()
                .map(RepoView::from)
                .collect();
            views.sort_by(|a, b| natural_cmp(&a.url_prefix, &b.url_prefix));
            if !print_structured(output, &views)? {
                if views.is_empty() {
                    noteln!("No repository credentials.");
                } else {
                    let mut table = Table::new(vec!["URL PREFIX", "KIND", "PROJECTS", "UPDATED"]);
                    for v in views {
                        table.row(vec![
                            v.url_prefix,
                            or_dash(&v.kind),
                            projects_text(&v.projects),
                            v.updated_at,
                        ]);
                    }
                    out!("{}", table.render())?;
                }
            }
        }
        RepoCommand::Rm { url_prefix } => {
            let client = session.client().await?;
            client
                .delete_repository_credential(v1::DeleteRepositoryCredentialRequest {
                    url_prefix: url_prefix.clone(),
                })
                .await?;
            outln!("repository credential for {url_prefix} deleted")?;
        }
    }
    Ok(())
}
