//! Helm v4 for tests: the binary that `scripts/helm-build` builds from the Go module proxy (or `EDGECD_HELM_BIN`), to lint, render and install the spoke's chart.

use std::path::PathBuf;
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
        .get_or_init(|| crate::gobuilt::binary("EDGECD_HELM_BIN", BUILD_SCRIPT))
        .clone()
        .map_err(Error::Setup)
}
