//! `edgecd login`, `logout`, `context …`, `whoami`, `version`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use edgecd_proto::client::{Client, ClientConfig, Error as SdkError};
use serde::Serialize;

use crate::args::{ContextCommand, LoginArgs};
use crate::config::{self, Context};
use crate::exit::Exit;
use crate::output::{Table, print_structured};
use crate::session::{self, Session};

pub async fn login(session: &mut Session, args: LoginArgs) -> anyhow::Result<()> {
    let mut context = Context {
        server: args.server.clone(),
        plaintext: args.plaintext || args.server.starts_with("http://"),
        ca_file: args.ca_file.clone(),
        user: None,
        token: None,
    };
    let config = session::client_config(&context, session.global.request_timeout)?;
    let client = Client::connect(ClientConfig {
        token: None,
        ..config
    })
    .await?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| config::context_name(&args.server));

    if let Some(token) = args.with_token {
        let authed = client.with_token(Some(&token.clone().into()))?;
        let user = authed.who_am_i().await.context("checking the token")?;
        context.user = Some(user.name.clone());
        context.token = Some(token);
        noteln!("Token accepted: {} ({}).", user.name, user.source);
    } else if args.password.is_none()
        && !args.password_stdin
        && client.get_server_info().await?.login_methods.is_empty()
    {
        // A hub that offers no login method runs without authentication (the dev fleet, or
        // --insecure-disable-auth): save the context without a token if it serves calls.
        let user = client
            .who_am_i()
            .await
            .context("this hub offers no login, and refuses calls without one")?;
        context.user = Some(user.name.clone());
        noteln!(
            "warning: this hub has no login (authentication is disabled); saved the context without a token"
        );
    } else {
        let password = match (args.password, args.password_stdin) {
            (Some(password), _) => password,
            (None, true) => read_password_stdin()?,
            (None, false) => prompt_password(&args.username)?,
        };
        match client.login_password(&args.username, &password).await {
            Ok(response) => {
                context.user = response
                    .user
                    .as_ref()
                    .map(|u| u.name.clone())
                    .or(Some(args.username.clone()));
                context.token = Some(response.token);
                noteln!("Logged in as {}.", args.username);
            }
            Err(SdkError::Unimplemented { .. }) => {
                // A hub without accounts (run with --insecure-disable-auth): save the context without a token
                // if it serves calls anyway.
                let user = client
                    .who_am_i()
                    .await
                    .context("this hub offers no login, and refuses calls without one")?;
                context.user = Some(user.name.clone());
                noteln!(
                    "warning: this hub has no login (authentication is disabled); saved the context without a token"
                );
            }
            Err(error) => return Err(error.into()),
        }
    }
    if context.plaintext && context.token.is_some() {
        noteln!("warning: plaintext connection: only use it for a hub on loopback");
    }
    session.config.contexts.insert(name.clone(), context);
    session.config.current_context = Some(name.clone());
    session.config.save(&session.path)?;
    noteln!(
        "Context {name:?} saved in {} and made current.",
        session.path.display()
    );
    Ok(())
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn prompt_password(user: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(Exit::usage(
            "no password: pass --password-stdin, --password, or --with-token"
        ));
    }
    // Without a terminal library the prompt echoes; prefer --password-stdin in scripts.
    note!("Password for {user}: ");
    std::io::stderr().flush().ok();
    read_password_stdin()
}

pub async fn logout(session: &mut Session, name: Option<String>) -> anyhow::Result<()> {
    let (name, context) = {
        let (name, context) = session.config.context(name.as_deref())?;
        (name.to_owned(), context.clone())
    };
    if context.token.is_some() {
        // End the session at the hub; forget the token locally whatever the hub says.
        match session::connect(&context, session.global.request_timeout).await {
            Ok(client) => match client.logout().await {
                Ok(_) | Err(SdkError::Unimplemented { .. } | SdkError::Unauthenticated(_)) => {}
                Err(error) => noteln!("warning: the hub did not end the session: {error}"),
            },
            Err(error) => noteln!("warning: the hub did not end the session: {error:#}"),
        }
    }
    if let Some(saved) = session.config.contexts.get_mut(&name) {
        saved.token = None;
    }
    session.config.save(&session.path)?;
    noteln!("Logged out of {name:?}.");
    Ok(())
}

#[derive(Debug, Serialize)]
struct ContextView {
    name: String,
    current: bool,
    server: String,
    user: String,
    logged_in: bool,
}

pub fn context(session: &mut Session, command: ContextCommand) -> anyhow::Result<()> {
    match command {
        ContextCommand::List => {
            let mut views: Vec<ContextView> = session
                .config
                .contexts
                .iter()
                .map(|(name, c)| ContextView {
                    name: name.clone(),
                    current: session.config.current_context.as_deref() == Some(name),
                    server: c.server.clone(),
                    user: c.user.clone().unwrap_or_default(),
                    logged_in: c.token.is_some(),
                })
                .collect();
            views.sort_by(|a, b| crate::output::natural_cmp(&a.name, &b.name));
            if !print_structured(session.global.output, &views)? {
                let mut table = Table::new(vec!["CURRENT", "NAME", "SERVER", "USER"]);
                for v in views {
                    table.row(vec![
                        if v.current { "*" } else { "" }.into(),
                        v.name,
                        v.server,
                        v.user,
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
        ContextCommand::Use { name } => {
            session.config.context(Some(&name))?;
            session.config.current_context = Some(name.clone());
            session.config.save(&session.path)?;
            noteln!("Switched to context {name:?}.");
        }
        ContextCommand::Current => {
            let (name, _) = session.config.context(None)?;
            outln!("{name}")?;
        }
        ContextCommand::Delete { name } => {
            if session.config.contexts.remove(&name).is_none() {
                anyhow::bail!(Exit::new(
                    crate::exit::NOT_FOUND,
                    format!("no context named {name:?}")
                ));
            }
            if session.config.current_context.as_deref() == Some(&name) {
                session.config.current_context = None;
            }
            session.config.save(&session.path)?;
            noteln!("Deleted context {name:?}.");
        }
    }
    Ok(())
}

pub async fn whoami(session: &Session) -> anyhow::Result<()> {
    let user = session.client().await?.who_am_i().await?;
    #[derive(Serialize)]
    struct View {
        name: String,
        admin: bool,
        source: String,
        groups: Vec<String>,
    }
    let view = View {
        name: user.name,
        admin: user.admin,
        source: user.source,
        groups: user.groups,
    };
    if !print_structured(session.global.output, &view)? {
        outln!(
            "{} ({}{})",
            view.name,
            view.source,
            if view.admin { ", admin" } else { "" }
        )?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct VersionView {
    client: ClientVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    hub: Option<HubVersion>,
}

#[derive(Debug, Serialize)]
struct ClientVersion {
    version: &'static str,
}

#[derive(Debug, Serialize)]
struct HubVersion {
    version: String,
    protocol: String,
    replica: String,
}

/// `edgecd version [-o json|yaml]`: the CLI's version, and the hub's when one is configured.
pub async fn version(session: &Session) -> anyhow::Result<()> {
    let client = ClientVersion {
        version: env!("CARGO_PKG_VERSION"),
    };
    // No hub configured at all: the CLI's version alone. A context named with --context that does
    // not exist is an error (exit 3), as everywhere else.
    let configured = session.global.server.is_some()
        || session.global.context.is_some()
        || session.config.current_context.is_some();
    let hub = if configured {
        let info = session.client().await?.get_server_info().await?;
        let protocol = info.protocol.unwrap_or_default();
        Some(HubVersion {
            version: info.version,
            protocol: format!("{}.{}", protocol.major, protocol.minor),
            replica: info.replica,
        })
    } else {
        None
    };
    let view = VersionView { client, hub };
    if !print_structured(session.global.output, &view)? {
        outln!("edgecd {}", view.client.version)?;
        if let Some(hub) = &view.hub {
            outln!(
                "hub {} (protocol {}, replica {})",
                hub.version,
                hub.protocol,
                hub.replica
            )?;
        }
    }
    Ok(())
}
