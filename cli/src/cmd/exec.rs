//! `edgecd app exec`: a command in a container of an app's pod through its spoke, as `kubectl exec` runs one: stdin passed with `-i`, a raw terminal with `-t` (resized with the window), the command's exit code as the CLI's.

use std::io::{IsTerminal as _, Read as _, Write as _};

use edgecd_proto::client::{Client, ExecInput};
use edgecd_proto::v1;
use futures::StreamExt as _;

use crate::args::ExecArgs;
use crate::exit::PassThrough;

use super::appref::{app_ref, display};

/// The terminal in raw mode while it lives; restored when dropped.
struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    fn enter() -> std::io::Result<Self> {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// The terminal's size (columns, rows), if stdout is one.
fn window_size() -> Option<v1::TerminalSize> {
    let size = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then(|| v1::TerminalSize {
        width: u32::from(size.ws_col),
        height: u32::from(size.ws_row),
    })
}

/// The pod or workload named on the command line (a bare name is a pod, as kubectl takes it).
fn target(args: &ExecArgs) -> Option<String> {
    args.resource.as_ref().map(|r| {
        if r.contains('/') {
            r.clone()
        } else {
            format!("pod/{r}")
        }
    })
}

/// Reads local stdin on a thread of its own (a blocking read the process does not wait for when it exits, unlike
/// the runtime's blocking pool), a few chunks ahead.
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Copies local stdin to the session, then ends it (stdin's EOF is the command's).
async fn pump_stdin(mut input: ExecInput) {
    let mut stdin = read_stdin();
    while let Some(data) = stdin.recv().await {
        if input.stdin(&data).await.is_err() {
            return;
        }
    }
    let _ = input.close_stdin().await;
}

/// Sends the window's size whenever it changes.
async fn follow_resizes(mut input: ExecInput) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return;
    };
    while changes.recv().await.is_some() {
        if let Some(size) = window_size()
            && input.resize(size.width, size.height).await.is_err()
        {
            return;
        }
    }
}

pub async fn exec(client: &Client, args: ExecArgs) -> anyhow::Result<()> {
    let app = app_ref(&args.app.name, args.project.as_deref())?;
    let nodes = super::live::tree(client, &app).await?;
    let key = match target(&args) {
        Some(resource) => super::live::resolve(&nodes, &app, &resource, args.namespace.as_deref())?,
        None => super::live::only_workload(&nodes, &app)?,
    };
    let mut tty = args.tty;
    if tty && !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!("Unable to use a TTY: stdin or stdout is not a terminal");
        tty = false;
    }
    if tty && !args.stdin {
        eprintln!("Unable to use a TTY without -i: running without one");
        tty = false;
    }
    let (input, mut output) = client
        .exec_pod(v1::ExecStart {
            app: Some(app.clone()),
            resource: Some(key),
            container: args.container.clone().unwrap_or_default(),
            command: args.command.clone(),
            stdin: args.stdin,
            tty,
            size: if tty { window_size() } else { None },
        })
        .await?;
    let _raw = if tty {
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    let mut tasks = Vec::new();
    if args.stdin {
        tasks.push(tokio::spawn(pump_stdin(input.clone())));
    }
    if tty {
        tasks.push(tokio::spawn(follow_resizes(input.clone())));
    }
    // Only the tasks hold the input now: without stdin, the command's stdin is never opened.
    drop(input);
    let mut code = None;
    while let Some(answer) = output.next().await {
        let written = match answer?.response {
            Some(v1::exec_pod_response::Response::Stdout(data)) => {
                let mut out = std::io::stdout().lock();
                out.write_all(&data).and_then(|()| out.flush())
            }
            Some(v1::exec_pod_response::Response::Stderr(data)) => {
                let mut err = std::io::stderr().lock();
                err.write_all(&data).and_then(|()| err.flush())
            }
            Some(v1::exec_pod_response::Response::Exit(exit)) => {
                code = Some(exit.code);
                Ok(())
            }
            Some(v1::exec_pod_response::Response::Started(_)) | None => Ok(()),
        };
        if let Err(error) = written {
            // A closed pipe ends the command here; the session is cancelled at the spoke.
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(error.into());
        }
    }
    for task in tasks {
        task.abort();
    }
    drop(_raw);
    match code {
        Some(0) => Ok(()),
        Some(code) => {
            eprintln!("command terminated with exit code {code}");
            Err(PassThrough(u8::try_from(code).unwrap_or(1)).into())
        }
        None => anyhow::bail!(
            "the exec session in {} ended without the command's exit code",
            display(&app)
        ),
    }
}
