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

/// The helm binary, or `None` after printing `SKIPPED: …` where it cannot be had (no `EDGECD_HELM_BIN`, no Go).
pub fn binary_or_skip() -> Option<PathBuf> {
    if !available() {
        eprintln!(
            "SKIPPED: neither EDGECD_HELM_BIN is set nor Go installed, so helm cannot be built"
        );
        return None;
    }
    match helm_binary() {
        Ok(bin) => Some(bin),
        Err(error) => panic!("building helm: {error}"),
    }
}

/// The helm binary and a real control plane started for the test, or `None` after printing `SKIPPED: …`
/// where either cannot be had.
pub fn binary_and_real_cluster() -> Option<(PathBuf, realkube::RealCluster)> {
    let bin = binary_or_skip()?;
    if std::env::var_os("EDGECD_REALKUBE_BIN").is_none() && !realkube::go_available() {
        eprintln!(
            "SKIPPED: Go is not installed, so the real control plane (testkit/realkube) cannot be built"
        );
        return None;
    }
    let real = match realkube::RealCluster::start() {
        Ok(real) => real,
        Err(error) => panic!("starting the real control plane: {error}"),
    };
    eprintln!(
        "realkube ready in {:?} ({})",
        real.started_in(),
        real.dir().display()
    );
    Some((bin, real))
}

/// Runs `bin` with `args`, its cache, config and data homes in a private temp dir (nothing read from or
/// written to the user's), with no KUBECONFIG of the environment.
pub fn run(bin: &std::path::Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    static HOME: OnceLock<std::result::Result<tempfile::TempDir, String>> = OnceLock::new();
    let home = HOME
        .get_or_init(|| tempfile::tempdir().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))?
        .path();
    std::process::Command::new(bin)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .output()
}

/// Runs helm as [`run`] does and returns its stdout, panicking with its output when it fails (tests only).
pub fn stdout(bin: &std::path::Path, args: &[&str]) -> String {
    let output = match run(bin, args) {
        Ok(output) => output,
        Err(error) => panic!("running helm {}: {error}", args.join(" ")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "helm {} failed ({}):\n{stdout}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Compares a render with its golden file, or rewrites the file when `EDGECD_UPDATE_GOLDEN=1` (tests only:
/// panics naming the first differing line).
pub fn check_golden(path: &std::path::Path, rendered: &str) {
    if std::env::var_os("EDGECD_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent()
            && let Err(error) = std::fs::create_dir_all(dir)
        {
            panic!("creating {}: {error}", dir.display());
        }
        if let Err(error) = std::fs::write(path, rendered) {
            panic!("writing {}: {error}", path.display());
        }
        eprintln!("rewrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (EDGECD_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    if rendered != expected {
        let line = rendered
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| rendered.lines().count().min(expected.lines().count()));
        panic!(
            "helm template differs from {} at line {}:\n  rendered: {:?}\n  golden:   {:?}\n\
             If the change is intended, rerun with EDGECD_UPDATE_GOLDEN=1 and commit the golden file.",
            path.display(),
            line + 1,
            rendered.lines().nth(line),
            expected.lines().nth(line),
        );
    }
}
