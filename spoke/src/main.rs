//! `edgecd-spoke` command line: `render DIR` prints a directory rendered like `kustomize build DIR`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "edgecd-spoke", version, about = "edgecd spoke")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render a kustomization or plain manifest directory to YAML on stdout.
    Render {
        /// The directory to render.
        dir: PathBuf,
        /// Directory all file access must stay in (default: the enclosing git work tree, or DIR).
        #[arg(long, env = "SPOKE_REPO_ROOT")]
        repo_root: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Render { dir, repo_root } => {
            let options = edgecd_render::RenderOptions {
                repo_root,
                ..Default::default()
            };
            let objects = edgecd_render::render(&dir, &options)
                .with_context(|| format!("rendering {}", dir.display()))?;
            std::io::stdout()
                .write_all(edgecd_render::to_yaml(&objects).as_bytes())
                .context("writing to stdout")?;
            Ok(())
        }
    }
}
