//! Test harnesses shared by the workspace: real PostgreSQL, git servers, a Kubernetes control plane, Helm and headless Chromium.
//!
//! The database and git harnesses start real servers from the machine's packages (PostgreSQL 15 from
//! Debian, `git daemon`) in a temporary directory, on a free loopback port,
//! and clean up when dropped. A watchdog process also cleans up if the test
//! process dies without running destructors.

pub mod binaries;
pub mod browser;
pub mod chart_repo;
pub mod git;
pub mod git_http;
mod gobuilt;
pub mod helm;
pub mod net;
pub mod oci_registry;
pub mod otlp;
pub mod postgres;
pub mod realkube;
pub mod stream_vectors;
mod watchdog;

pub use git::{GitRepo, GitServer};
pub use git_http::{GitHttpServer, HTTP_PASSWORD, HTTP_USER, TestCa};
pub use postgres::PgServer;
pub use realkube::RealCluster;

/// The repository's `testdata/` folder: the fixtures that the tests, the benchmarks and the dev fleet read (one copy, in the repository).
pub fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

/// Errors starting or driving a harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Runs a command to completion and fails with its stderr if it fails.
pub(crate) fn run(command: &mut std::process::Command) -> Result<String> {
    let description = format!("{command:?}");
    let output = command
        .output()
        .map_err(io_error(format!("running {description}")))?;
    if !output.status.success() {
        return Err(Error::Command {
            command: description,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Caps this process's address space at `bytes` (`RLIMIT_AS`, set with
/// util-linux's `prlimit`), so that a test of an amplification attack fails
/// with an allocation failure instead of exhausting the machine. Set it once,
/// early, in a test binary of its own: it applies to every thread.
pub fn limit_address_space(bytes: u64) -> Result<(), Error> {
    let pid = std::process::id().to_string();
    let limit = format!("--as={bytes}");
    let output = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &limit])
        .output()
        .map_err(|source| Error::Io {
            what: "running prlimit".into(),
            source,
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("prlimit --pid {pid} {limit}"),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}
