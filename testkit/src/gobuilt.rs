//! Tools the tests build from the Go module proxy (realkube with kubectl, helm): a binary named by an environment variable, or the path a build script prints after building it into its cache.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The binary named by `env`, else the one `script` builds or finds in its cache and prints on stdout (its
/// build output goes to stderr).
pub(crate) fn binary(env: &str, script: &str) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os(env) {
        return Ok(PathBuf::from(bin));
    }
    let output = Command::new(script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running {script}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{script} failed ({}); it needs Go >= 1.25 and the Go module proxy (or set {env})",
            output.status
        ));
    }
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if path.is_empty() {
        return Err(format!("{script} printed no binary path"));
    }
    Ok(PathBuf::from(path))
}
