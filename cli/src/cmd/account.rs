//! `edgecd user create|list|delete` (local accounts, admins) and `edgecd token create|list|revoke` (API tokens).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use edgecd_proto::v1;
use serde::Serialize;

use crate::args::{RoleArg, RoleGrant, TokenCommand, UserCommand};
use crate::exit::Exit;
use crate::output::{Table, natural_cmp, or_dash, print_structured, time_text};
use crate::session::Session;

pub fn role_kind(role: RoleArg) -> v1::ProjectRoleKind {
    match role {
        RoleArg::Owner => v1::ProjectRoleKind::Owner,
        RoleArg::Deployer => v1::ProjectRoleKind::Deployer,
        RoleArg::Viewer => v1::ProjectRoleKind::Viewer,
    }
}

pub fn role_name(code: i32) -> &'static str {
    match v1::ProjectRoleKind::try_from(code) {
        Ok(v1::ProjectRoleKind::Owner) => "owner",
        Ok(v1::ProjectRoleKind::Deployer) => "deployer",
        Ok(v1::ProjectRoleKind::Viewer) => "viewer",
        _ => "-",
    }
}

fn roles(grants: &[RoleGrant]) -> Vec<v1::ProjectRole> {
    grants
        .iter()
        .map(|g| v1::ProjectRole {
            project: g.project.clone(),
            role: role_kind(g.role) as i32,
        })
        .collect()
}

/// `team-a:deployer,team-b:viewer`, sorted.
fn roles_text(roles: &[v1::ProjectRole]) -> Vec<String> {
    let mut texts: Vec<String> = roles
        .iter()
        .map(|r| format!("{}:{}", r.project, role_name(r.role)))
        .collect();
    texts.sort_by(|a, b| natural_cmp(a, b));
    texts
}

fn read_line_stdin(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView {
    name: String,
    admin: bool,
    roles: Vec<String>,
    source: String,
}

impl From<&v1::UserInfo> for UserView {
    fn from(u: &v1::UserInfo) -> Self {
        Self {
            name: u.name.clone(),
            admin: u.admin,
            roles: roles_text(&u.roles),
            source: u.source.clone(),
        }
    }
}

pub async fn user(session: &Session, command: UserCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    match command {
        UserCommand::Create {
            name,
            password,
            password_stdin,
            no_password,
            admin,
            roles: grants,
        } => {
            let password = match (password, password_stdin, no_password) {
                (Some(p), _, _) => p,
                (None, true, _) => read_line_stdin("password")?,
                (None, false, true) => String::new(),
                (None, false, false) => {
                    if !std::io::stdin().is_terminal() {
                        anyhow::bail!(Exit::usage(
                            "no password: pass --password-stdin, --password, or --no-password (OIDC only)"
                        ));
                    }
                    note!("Password for {name}: ");
                    std::io::stderr().flush().ok();
                    read_line_stdin("password")?
                }
            };
            let client = session.client().await?;
            let created = client
                .create_user(v1::CreateUserRequest {
                    name: name.clone(),
                    password,
                    admin,
                    roles: roles(&grants),
                })
                .await?;
            let view = UserView::from(&created);
            if !print_structured(output, &view)? {
                outln!(
                    "user {} created{}{}",
                    view.name,
                    if view.admin { " (admin)" } else { "" },
                    if view.roles.is_empty() {
                        String::new()
                    } else {
                        format!(" with roles {}", view.roles.join(", "))
                    }
                )?;
            }
        }
        UserCommand::List => {
            let client = session.client().await?;
            let mut views: Vec<UserView> = client
                .list_users()
                .await?
                .items
                .iter()
                .map(UserView::from)
                .collect();
            views.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            if !print_structured(output, &views)? {
                let mut table = Table::new(vec!["NAME", "ADMIN", "ROLES"]);
                for v in views {
                    table.row(vec![
                        v.name,
                        if v.admin { "yes" } else { "no" }.into(),
                        or_dash(&v.roles.join(",")),
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
        UserCommand::Delete { name, yes } => {
            crate::confirm::confirm(
                &format!(
                    "Delete user {name}? Their sessions end and their API tokens are revoked."
                ),
                yes,
            )?;
            let client = session.client().await?;
            let deleted = client
                .delete_user(v1::DeleteUserRequest { name: name.clone() })
                .await?;
            outln!(
                "user {name} deleted ({} session{} ended, {} API token{} revoked)",
                deleted.sessions_ended,
                if deleted.sessions_ended == 1 { "" } else { "s" },
                deleted.tokens_revoked,
                if deleted.tokens_revoked == 1 { "" } else { "s" },
            )?;
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    id: String,
    name: String,
    owner: String,
    admin: bool,
    roles: Vec<String>,
    created_at: String,
    expires_at: String,
    revoked_at: String,
}

impl From<&v1::ApiTokenInfo> for TokenView {
    fn from(t: &v1::ApiTokenInfo) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            owner: t.owner.clone(),
            admin: t.admin,
            roles: roles_text(&t.roles),
            created_at: time_text(t.created_at.as_ref()),
            expires_at: time_text(t.expires_at.as_ref()),
            revoked_at: time_text(t.revoked_at.as_ref()),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedTokenView {
    id: String,
    token: String,
    expires_at: String,
}

pub async fn token(session: &Session, command: TokenCommand) -> anyhow::Result<()> {
    let output = session.global.output;
    let client = session.client().await?;
    match command {
        TokenCommand::Create {
            name,
            ttl,
            roles: grants,
            admin,
        } => {
            let created = client
                .create_api_token(v1::CreateApiTokenRequest {
                    name: name.clone(),
                    roles: roles(&grants),
                    admin,
                    ttl: ttl.map(edgecd_proto::convert::duration),
                })
                .await?;
            let view = CreatedTokenView {
                id: created.id,
                token: created.token,
                expires_at: time_text(created.expires_at.as_ref()),
            };
            // The token is the point of this command: printed once, on purpose.
            if !print_structured(output, &view)? {
                outln!("{}", view.token)?;
                noteln!(
                    "API token {name} created (id {}, expires {}); it is shown once: store it now. \
                     Use it with `edgecd login SERVER --with-token TOKEN` or EDGECD_TOKEN.",
                    view.id,
                    if view.expires_at == "-" {
                        "never"
                    } else {
                        &view.expires_at
                    }
                );
            }
        }
        TokenCommand::List { owner } => {
            let response = client
                .list_api_tokens_of(owner.as_deref().unwrap_or_default())
                .await?;
            let mut views: Vec<TokenView> = response.items.iter().map(TokenView::from).collect();
            views.sort_by(|a, b| natural_cmp(&a.name, &b.name).then(a.id.cmp(&b.id)));
            if !print_structured(output, &views)? {
                if views.is_empty() {
                    noteln!("No API tokens.");
                    return Ok(());
                }
                let mut table = Table::new(vec![
                    "ID", "NAME", "OWNER", "ROLES", "CREATED", "EXPIRES", "REVOKED",
                ]);
                for v in views {
                    let mut roles = v.roles.clone();
                    if v.admin {
                        roles.insert(0, "admin".into());
                    }
                    table.row(vec![
                        v.id,
                        v.name,
                        v.owner,
                        or_dash(&roles.join(",")),
                        v.created_at,
                        v.expires_at,
                        v.revoked_at,
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
        TokenCommand::Revoke { id } => {
            client
                .revoke_api_token(v1::RevokeApiTokenRequest { id: id.clone() })
                .await?;
            outln!("API token {id} revoked")?;
        }
    }
    Ok(())
}
