//! One bounded run of the helm binary: an empty environment apart from helm's home directories, its own process group killed on timeout, stdout and stderr capped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    pub timeout: Duration,
    /// Bytes of rendered output accepted; more fails the run.
    pub max_stdout: usize,
    /// Bytes of stderr kept (the rest is read and dropped).
    pub max_stderr: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_stdout: 64 * 1024 * 1024,
            max_stderr: 64 * 1024,
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start helm ({binary}): {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("helm did not finish within {0:?} (killed)")]
    Timeout(Duration),
    #[error("helm printed more than {0} bytes of manifests (killed)")]
    OutputTooLarge(usize),
    #[error("reading helm's output: {0}")]
    Io(#[source] std::io::Error),
    #[error("{message}")]
    Failed { message: String },
}

/// The environment helm gets: its home, cache, config and data directories under `home`, nothing else (no
/// `PATH`, no proxies, no kubeconfig).
pub fn environment(home: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("HOME", home.to_path_buf()),
        ("HELM_CACHE_HOME", home.join("cache")),
        ("HELM_CONFIG_HOME", home.join("config")),
        ("HELM_DATA_HOME", home.join("data")),
        // No kubeconfig: `helm template` never talks to a cluster.
        ("KUBECONFIG", home.join("no-kubeconfig")),
    ]
}

/// Runs `binary args…` in `cwd` with `env` only; returns stdout. A failure's message is helm's stderr
/// (its `Error: ` lines), else the exit status.
pub async fn run(
    binary: &Path,
    args: &[OsString],
    env: &[(&'static str, PathBuf)],
    cwd: &Path,
    limits: RunLimits,
) -> Result<Vec<u8>, RunError> {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        binary: binary.display().to_string(),
        source,
    })?;
    let pid = child.id();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_group(pid);
        return Err(RunError::Io(std::io::Error::other("no pipes to helm")));
    };
    let work = async {
        let (out, err) = tokio::join!(
            read_capped(stdout, limits.max_stdout, true),
            read_capped(stderr, limits.max_stderr, false)
        );
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(limits.timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            kill_group(pid);
            return Err(RunError::Timeout(limits.timeout));
        }
    };
    let out = match out {
        Ok(Some(out)) => out,
        Ok(None) => {
            kill_group(pid);
            return Err(RunError::OutputTooLarge(limits.max_stdout));
        }
        Err(e) => {
            kill_group(pid);
            return Err(RunError::Io(e));
        }
    };
    let status = status.map_err(RunError::Io)?;
    if status.success() {
        return Ok(out);
    }
    let stderr = err.ok().flatten().unwrap_or_default();
    Err(RunError::Failed {
        message: failure_message(&String::from_utf8_lossy(&stderr), &status.to_string()),
    })
}

/// helm's own error lines (`Error: …`), else the last lines of stderr, else the exit status.
pub fn failure_message(stderr: &str, status: &str) -> String {
    let errors: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Error: "))
        .collect();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return format!("helm failed ({status})");
    }
    lines[lines.len().saturating_sub(5)..].join("; ")
}

/// Reads to the end, keeping at most `cap` bytes. With `strict`, more than `cap` is `Ok(None)` (and reading
/// stops); otherwise the rest is read and dropped.
async fn read_capped(
    mut reader: impl AsyncRead + Unpin,
    cap: usize,
    strict: bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            return Ok(Some(kept));
        }
        let room = cap.saturating_sub(kept.len());
        if n > room {
            if strict {
                return Ok(None);
            }
            kept.extend_from_slice(&buffer[..room]);
        } else {
            kept.extend_from_slice(&buffer[..n]);
        }
    }
}

/// Kills the process group helm leads (helm and anything it started).
fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn failures_show_helms_error_lines() {
        let stderr = "walk.go:74: found symbolic link\nError: template: web/templates/cm.yaml:4:11: executing \"web/templates/cm.yaml\" at <required \"x\" .Values.x>: error calling required: x is required\n";
        assert_eq!(
            failure_message(stderr, "exit status: 1"),
            "template: web/templates/cm.yaml:4:11: executing \"web/templates/cm.yaml\" at <required \"x\" .Values.x>: error calling required: x is required"
        );
        assert_eq!(
            failure_message("", "exit status: 2"),
            "helm failed (exit status: 2)"
        );
    }

    /// A process that outlives the timeout is killed with its group (a child it started too), and the
    /// environment is empty but for what is given.
    #[cfg(unix)]
    #[tokio::test]
    async fn timeouts_kill_the_process_group_and_env_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-alive");
        let script = format!(
            "(/bin/sleep 2; /usr/bin/touch {}) & /bin/sleep 30",
            marker.display()
        );
        let started = std::time::Instant::now();
        let err = run(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            &[],
            dir.path(),
            RunLimits {
                timeout: Duration::from_millis(300),
                ..RunLimits::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "the grandchild survived the kill");

        let env = environment(dir.path());
        let out = run(
            Path::new("/usr/bin/env"),
            &[],
            &env,
            dir.path(),
            RunLimits::default(),
        )
        .await
        .unwrap();
        let mut names: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "HELM_CACHE_HOME",
                "HELM_CONFIG_HOME",
                "HELM_DATA_HOME",
                "HOME",
                "KUBECONFIG"
            ]
        );

        let err = run(
            Path::new("/bin/sh"),
            &["-c".into(), "/usr/bin/head -c 5000 /dev/zero".into()],
            &[],
            dir.path(),
            RunLimits {
                max_stdout: 1000,
                ..RunLimits::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::OutputTooLarge(1000)), "{err}");
    }
}
