//! A tiny shell process that runs a cleanup command once the test process has exited, even after a panic or abort.

use std::process::{Command, Stdio};

use crate::{Result, io_error};

/// Starts `sh` in its own session: it polls for the current process and,
/// when it is gone, runs `cleanup` (a shell snippet).
pub(crate) fn spawn(cleanup: &str) -> Result<()> {
    let parent = std::process::id();
    let script = format!("while kill -0 {parent} 2>/dev/null; do sleep 1; done; {cleanup}");
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_error("starting the cleanup watchdog"))?;
    Ok(())
}
