//! Shared by the CLI's end-to-end tests: a dev fleet started in-process, the `edgecd` binary run against it (plainly, with stdin, or under a pseudo-terminal), polling until something holds.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use edgecd_dev::{Fleet, FleetConfig};
use serde_json::Value;

/// With `EDGECD_TEST_ECHO=1` (and `--nocapture`), every run is printed: to read what users see.
fn echo(args: &[&str], run: &Run) {
    if std::env::var_os("EDGECD_TEST_ECHO").is_some() {
        eprintln!(
            "$ edgecd {}\n{}{}[exit {}]\n",
            args.join(" "),
            run.stdout,
            run.stderr,
            run.code
        );
    }
}

/// The result of one `edgecd` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "edgecd failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit code, showing everything on failure.
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "edgecd exited {} (wanted {code}):\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// The `edgecd` binary with its own config file.
pub struct Cli {
    pub config: PathBuf,
    /// Environment variables set for every run.
    pub env: Vec<(String, String)>,
    _home: tempfile::TempDir,
}

impl Cli {
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        Self {
            config: home.path().join("edgecd/config.yaml"),
            env: Vec::new(),
            _home: home,
        }
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "").await
    }

    /// Runs with `stdin` written to a pipe (so standard input is not a terminal).
    pub async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_edgecd"))
            .args(args)
            .env("EDGECD_CONFIG", &self.config)
            .env_remove("EDGECD_SERVER")
            .env_remove("EDGECD_TOKEN")
            .env_remove("EDGECD_CONTEXT")
            .env_remove("EDGECD_PASSWORD")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running edgecd");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await.unwrap();
        }
        let output = child.wait_with_output().await.expect("running edgecd");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        echo(args, &run);
        run
    }

    /// Runs with standard input (and output) a pseudo-terminal, as a person at a shell, typing
    /// `typed`: through util-linux `script`. Everything the command wrote is in `stdout`.
    pub async fn run_tty(&self, args: &[&str], typed: &str) -> Run {
        self.run_tty_sized(args, typed, None).await
    }

    /// As [`Cli::run_tty`], in a terminal of `(rows, columns)` when given.
    pub async fn run_tty_sized(&self, args: &[&str], typed: &str, size: Option<(u16, u16)>) -> Run {
        use tokio::io::AsyncWriteExt as _;
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut line = size
            .map(|(rows, cols)| format!("stty rows {rows} cols {cols}; "))
            .unwrap_or_default();
        line.push_str(&quote(env!("CARGO_BIN_EXE_edgecd")));
        for arg in args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        let mut child = tokio::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("EDGECD_CONFIG", &self.config)
            .env_remove("EDGECD_SERVER")
            .env_remove("EDGECD_TOKEN")
            .env_remove("EDGECD_CONTEXT")
            .env_remove("EDGECD_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running edgecd under script(1)");
        if let Some(mut input) = child.stdin.take() {
            // Typed once the prompt is up; `script` forwards it to the terminal.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            input.write_all(typed.as_bytes()).await.unwrap();
        }
        let output = child.wait_with_output().await.expect("running script");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        echo(args, &run);
        run
    }

    /// Logs in to the fleet's hub over TLS as its admin.
    pub async fn login(&self, fleet: &Fleet) {
        let ca_file = fleet.ca_file().to_string_lossy().into_owned();
        self.run_with_stdin(
            &[
                "login",
                &fleet.grpc_url(),
                "--ca-file",
                &ca_file,
                "--username",
                "admin",
                "--password-stdin",
            ],
            fleet.admin_password(),
        )
        .await
        .ok();
    }
}

/// Starts a dev fleet of `clusters` clusters and waits until its apps are Synced and Healthy.
pub async fn fleet(clusters: usize) -> Fleet {
    let fleet = Fleet::start(
        FleetConfig {
            clusters,
            poll_interval: Duration::from_secs(5),
            stale_after: Duration::from_secs(4),
            ..FleetConfig::default()
        },
        |p| eprintln!("[{}/{}] {}", p.step, p.steps, p.message),
    )
    .await
    .unwrap();
    fleet.wait_synced(Duration::from_secs(180)).await.unwrap();
    fleet
}

/// Retries `check` every 500 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// How many times `needle` occurs in `text`.
pub fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Adds a commit to the fleet's repository (a file outside every app's path): HEAD moves, so a
/// sync records a new revision.
pub fn new_commit(fleet: &Fleet, message: &str) -> String {
    let path = fleet.repo().work_path().join("NOTES.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(message);
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    fleet.repo().commit(message).unwrap()
}

/// `app create` arguments for an app of the fleet's repository in its own namespace.
pub fn app_args<'a>(name: &'a str, repo: &'a str, cluster: &'a str, ns: &'a str) -> Vec<&'a str> {
    vec![
        "app",
        "create",
        name,
        "--repo",
        repo,
        "--path",
        "deploy/generated",
        "--dest-cluster",
        cluster,
        "--dest-namespace",
        ns,
        "--sync-option",
        "CreateNamespace=true",
    ]
}
