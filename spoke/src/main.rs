//! `edgecd-spoke` command line: `run` starts the spoke (see `runtime`), `render DIR` prints a directory rendered like `kustomize build DIR`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Run the spoke: reconcile the Application CRs of this cluster until SIGTERM.
    Run(Box<edgecd_spoke::runtime::RunArgs>),
    /// Render a kustomization or plain manifest directory to YAML on stdout.
    Render {
        /// The directory to render.
        dir: PathBuf,
        /// Directory all file access must stay in (default: the enclosing git work tree).
        #[arg(long, env = "SPOKE_REPO_ROOT")]
        repo_root: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Command::Render { dir, repo_root } => render(&dir, repo_root),
        // The whole error chain: "starting X: reading Y: cause".
        Command::Run(args) => run(*args).map_err(|error| anyhow::anyhow!("{error:#}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: edgecd_spoke::runtime::RunArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(edgecd_spoke::runtime::run(args))
}

fn render(dir: &Path, repo_root: Option<PathBuf>) -> anyhow::Result<()> {
    let options = edgecd_render::RenderOptions {
        repo_root,
        ..Default::default()
    };
    let objects = edgecd_render::render(dir, &options)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(edgecd_render::to_yaml(&objects).as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}
