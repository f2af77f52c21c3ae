//! Helm v4 for tests: the binary that `scripts/helm-build` builds from the Go module proxy (or `EDGECD_HELM_BIN`), to lint, render and install the spoke's chart.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::{Error, Result, realkube};

/// The build script, relative to this crate.
const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/helm-build");

/// Whether a helm binary can be had: `EDGECD_HELM_BIN` is set, or Go is
/// installed so that `scripts/helm-build` can build one.
pub fn available() -> bool {
    std::env::var_os("EDGECD_HELM_BIN").is_some() || realkube::go_available()
}

/// The `helm` binary: `EDGECD_HELM_BIN`, or what `scripts/helm-build`
/// builds or finds in its cache (once per process).
pub fn helm_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("EDGECD_HELM_BIN") {
                return Ok(PathBuf::from(bin));
            }
            let output = Command::new(BUILD_SCRIPT)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("running {BUILD_SCRIPT}: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "{BUILD_SCRIPT} failed ({}); it needs Go and the Go module proxy",
                    output.status
                ));
            }
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            if path.is_empty() {
                return Err(format!("{BUILD_SCRIPT} printed no binary path"));
            }
            Ok(PathBuf::from(path))
        })
        .clone()
        .map_err(Error::Setup)
}
