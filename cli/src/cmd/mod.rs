//! Command implementations, one module per noun, and the dispatcher.

mod account;
mod app;
mod appref;
mod appset;
mod auth;
mod bulk;
mod cluster;
mod exec;
mod history;
mod live;
mod project;
mod repo;
mod wait;

use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::args::{Cli, Command};
use crate::session::Session;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { global, command } = cli;
    if let Command::Completion { shell } = command {
        let mut command = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "edgecd", &mut script);
        out!("{}", String::from_utf8_lossy(&script))?;
        return Ok(());
    }
    let mut session = Session::load(global)?;
    let login_server = match &command {
        Command::Login(args) => Some(args.server.clone()),
        _ => None,
    };
    let result = match command {
        Command::Login(args) => auth::login(&mut session, args).await,
        Command::Logout { name } => auth::logout(&mut session, name).await,
        Command::Context(command) => auth::context(&mut session, command),
        Command::Whoami => auth::whoami(&session).await,
        Command::Version => auth::version(&session).await,
        Command::App(command) => app::run(&session, command).await,
        Command::Cluster(command) => cluster::run(&session, command).await,
        Command::Project(command) => project::run(&session, command).await,
        Command::Appset(command) => appset::run(&session, command).await,
        Command::Repo(command) => repo::run(&session, command).await,
        Command::User(command) => account::user(&session, command).await,
        Command::Token(command) => account::token(&session, command).await,
        Command::History(args) => history::run(&session, args).await,
        Command::Apply(args) => appset::apply(&session, &args).await,
        Command::Import(crate::args::ImportCommand::Argocd(args)) => {
            appset::apply(&session, &args).await
        }
        Command::Completion { .. } => Ok(()),
    };
    result.map_err(|error| with_hint(error, &session, login_server.as_deref()))
}

/// Adds a hint for the failures users get stuck on: a hub certificate from an unknown CA (pass
/// `--ca-file`), and a refused or missing token (log in again).
fn with_hint(error: anyhow::Error, session: &Session, login_server: Option<&str>) -> anyhow::Error {
    let target = session.target().ok();
    let server = login_server
        .map(str::to_owned)
        .or_else(|| target.as_ref().map(|c| c.server.clone()))
        .unwrap_or_else(|| "SERVER".to_owned());
    let hint = if crate::exit::is_unknown_issuer(&error) {
        Some(format!(
            "the hub's TLS certificate is not signed by a CA this machine trusts: pass the hub's CA \
             certificate with --ca-file (`edgecd login {server} --ca-file hub-ca.pem`; edgecd-dev \
             prints its path)"
        ))
    } else if login_server.is_none()
        && matches!(
            crate::exit::sdk_error(&error),
            Some(edgecd_proto::client::Error::Unauthenticated(_))
        )
    {
        Some(if session.global.token.is_some() {
            "the hub refused the token given with --token or EDGECD_TOKEN (expired or revoked?)"
                .to_owned()
        } else if target.as_ref().is_some_and(|c| c.token.is_none()) {
            format!("you are not logged in to {server} (logged out?): run `edgecd login {server}`")
        } else {
            format!(
                "the hub refused this context's token (expired, revoked, or ended by a logout elsewhere): \
                 run `edgecd login {server}`"
            )
        })
    } else {
        None
    };
    match hint {
        Some(hint) => anyhow::Error::new(crate::exit::Hinted { error, hint }),
        None => error,
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Parses `key=value` pairs.
pub fn parse_pairs(pairs: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    anyhow::Error::new(crate::exit::Exit::usage(format!(
                        "invalid {what} {pair:?}: expected key=value"
                    )))
                })
        })
        .collect()
}

/// A label selector in kubectl syntax, as the protocol message.
pub fn selector(text: &str, flag: &str) -> anyhow::Result<edgecd_proto::v1::LabelSelector> {
    let parsed = edgecd_core::selector::LabelSelector::parse(text).map_err(|e| {
        anyhow::Error::new(crate::exit::Exit::usage(format!(
            "invalid {flag} {text:?}: {e}"
        )))
    })?;
    Ok(edgecd_proto::convert::label_selector(&parsed))
}
