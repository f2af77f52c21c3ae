//! `ExecPod` for SDK users: a command in a container of an app's pod, with its input as a handle (stdin, terminal sizes, end of stdin) and its output as a stream ending with the exit code.

use futures::channel::mpsc;
use futures::{SinkExt as _, StreamExt as _, TryStreamExt as _};

use super::{Client, Error, ItemStream, Result};
use crate::v1::{ExecPodRequest, ExecPodResponse, ExecStart, TerminalSize, exec_pod_request};

/// The session is over: its input is no longer taken.
fn ended() -> Error {
    Error::Status {
        code: tonic::Code::Cancelled,
        message: "the exec session ended".into(),
    }
}

/// Stdin bytes in one request at most (the hub refuses larger ones); [`ExecInput::stdin`] splits.
pub const MAX_STDIN_CHUNK: usize = 32 * 1024;

/// The input side of an exec session; cloneable. Dropping every clone ends stdin.
#[derive(Debug, Clone)]
pub struct ExecInput {
    tx: mpsc::Sender<ExecPodRequest>,
}

impl ExecInput {
    async fn send(&mut self, request: exec_pod_request::Request) -> Result<()> {
        self.tx
            .send(ExecPodRequest {
                request: Some(request),
            })
            .await
            .map_err(|_| ended())
    }

    /// Writes to the command's stdin (in pieces the hub takes).
    pub async fn stdin(&mut self, data: &[u8]) -> Result<()> {
        for piece in data.chunks(MAX_STDIN_CHUNK) {
            self.send(exec_pod_request::Request::Stdin(piece.to_vec()))
                .await?;
        }
        Ok(())
    }

    /// The terminal's new size (with a TTY).
    pub async fn resize(&mut self, width: u32, height: u32) -> Result<()> {
        self.send(exec_pod_request::Request::Resize(TerminalSize {
            width,
            height,
        }))
        .await
    }

    /// Ends the command's stdin (it reads EOF); its output keeps coming.
    pub async fn close_stdin(&mut self) -> Result<()> {
        self.send(exec_pod_request::Request::StdinClosed(true))
            .await
    }
}

impl Client {
    /// Runs `start.command` in a container of an app's pod through its spoke (the project's exec permission
    /// is needed; every session is audited at the hub). Returns the input handle and the output: first
    /// `started` (where it runs), then `stdout`/`stderr` as they come, last `exit` with the exit code.
    /// Dropping the output stream cancels the command at the spoke.
    ///
    /// ```no_run
    /// # async fn demo(client: edgecd_proto::client::Client) -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::v1::{exec_pod_response::Response, AppRef, ExecStart, ResourceKey};
    /// use futures::TryStreamExt as _;
    /// let (mut input, mut output) = client
    ///     .exec_pod(ExecStart {
    ///         app: Some(AppRef::new("default", "web")),
    ///         resource: Some(ResourceKey { kind: "Deployment".into(), group: "apps".into(), version: "v1".into(), namespace: "web".into(), name: "web".into() }),
    ///         command: vec!["cat".into()],
    ///         stdin: true,
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// input.stdin(b"hello\n").await?;
    /// input.close_stdin().await?;
    /// while let Some(answer) = output.try_next().await? {
    ///     match answer.response {
    ///         Some(Response::Stdout(data)) => print!("{}", String::from_utf8_lossy(&data)),
    ///         Some(Response::Exit(exit)) => println!("exit code {}", exit.code),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn exec_pod(
        &self,
        start: ExecStart,
    ) -> Result<(ExecInput, ItemStream<ExecPodResponse>)> {
        let endpoint = self.endpoint.clone();
        let what = Some(super::app_name(start.app.as_ref()));
        // A few requests ahead at most: the hub takes them at the spoke's pace.
        let (mut tx, rx) = mpsc::channel(8);
        tx.send(ExecPodRequest {
            request: Some(exec_pod_request::Request::Start(start)),
        })
        .await
        .map_err(|_| ended())?;
        let stream = self
            .raw()
            .exec_pod(rx)
            .await
            .map_err(|status| Error::from_status(status, "ExecPod", &endpoint, what))?
            .into_inner();
        let output = stream
            .map_err(move |status| Error::from_status(status, "ExecPod", &endpoint, None))
            .boxed();
        Ok((ExecInput { tx }, output))
    }
}
