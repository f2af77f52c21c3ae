//! Command implementations, one module per noun, and the dispatcher.

mod app;
mod appset;
mod auth;
mod cluster;
mod project;
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
    match command {
        Command::Login(args) => auth::login(&mut session, args).await,
        Command::Logout { name } => auth::logout(&mut session, name).await,
        Command::Context(command) => auth::context(&mut session, command),
        Command::Whoami => auth::whoami(&session).await,
        Command::Version => auth::version(&session).await,
        Command::App(command) => app::run(&session, command).await,
        Command::Cluster(command) => cluster::run(&session, command).await,
        Command::Project(command) => project::run(&session, command).await,
        Command::Appset(command) => appset::run(&session, command).await,
        Command::Apply(args) => appset::apply(&session, &args).await,
        Command::Import(crate::args::ImportCommand::Argocd(args)) => {
            appset::apply(&session, &args).await
        }
        Command::Completion { .. } => Ok(()),
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
