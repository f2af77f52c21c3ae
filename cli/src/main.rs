//! `edgecd`: the operator command-line interface, on the Rust SDK (`edgecd_proto::client`).

#[macro_use]
mod macros;
mod args;
mod cmd;
mod config;
mod confirm;
mod exit;
mod output;
mod session;
mod trace;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            noteln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(async {
        let invocation = trace::start(&trace::command_path());
        let result = cmd::run(cli).await;
        if let Some(invocation) = invocation {
            let failed = result
                .as_ref()
                .err()
                .filter(|e| !e.is::<exit::PassThrough>());
            invocation.finish(failed).await;
        }
        result
    });
    match result {
        Err(error) if error.is::<exit::PassThrough>() => ExitCode::from(
            error
                .downcast_ref::<exit::PassThrough>()
                .map_or(exit::FAILURE, |p| p.0),
        ),
        Ok(()) => ExitCode::from(exit::OK),
        // The reader of stdout went away (`edgecd app list | head -1`): nothing more to say to it, and
        // nothing went wrong; exit 0 quietly, as ripgrep does.
        Err(error) if exit::is_broken_pipe(&error) => ExitCode::from(exit::OK),
        Err(error) => {
            noteln!("error: {}", exit::render(&error));
            if let Some(hint) = exit::hint(&error) {
                noteln!("hint: {hint}");
            }
            ExitCode::from(exit::code(&error))
        }
    }
}
