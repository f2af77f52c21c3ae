//! The workspace's own binaries for tests that run them as processes: built (or found up to date) by cargo into the test's target directory and profile, once per test process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use crate::{Error, Result};

/// The path of binary `bin` of workspace package `package`, as `cargo build --locked -p PACKAGE --bin BIN`
/// builds it for the running test's profile and target directory (a test runs from
/// `<target>/<profile>/deps/`). Later calls in the process reuse the first build.
pub fn workspace_binary(package: &str, bin: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    // Held across the build: cargo would serialise two builds on its lock anyway.
    let mut built = built.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get(bin) {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Setup(format!("the test executable's path: {e}")))?;
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or_else(|| {
            Error::Setup(format!(
                "{} is not in <target>/<profile>/deps",
                exe.display()
            ))
        })?
        .to_path_buf();
    let target_dir = profile_dir.parent().ok_or_else(|| {
        Error::Setup(format!("{} has no target directory", profile_dir.display()))
    })?;
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["build", "--locked", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null());
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let start = Instant::now();
    let status = cargo
        .status()
        .map_err(|e| Error::Setup(format!("running cargo to build {bin}: {e}")))?;
    if !status.success() {
        return Err(Error::Setup(format!("building {bin} failed ({status})")));
    }
    eprintln!("{bin} built (or up to date) in {:?}", start.elapsed());
    let path = profile_dir.join(bin);
    if !path.exists() {
        return Err(Error::Setup(format!(
            "{} is missing after the build",
            path.display()
        )));
    }
    built.insert(bin.to_owned(), path.clone());
    Ok(path)
}
