//! A git server on loopback (`git daemon`) and a helper that builds repositories in tests: write files, commit, push, tag.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result, io_error, net, run};

/// `git daemon` serving every repository under a temp dir, read-write, on a
/// free loopback port. Killed when dropped.
#[derive(Debug)]
pub struct GitServer {
    base: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl GitServer {
    pub fn start() -> Result<Self> {
        let base = tempfile::Builder::new()
            .prefix("edgecd-git-")
            .tempdir()
            .map_err(io_error("creating the git server dir"))?;
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = net::free_port()?;
            // Run `git-daemon` itself: `git daemon` would fork it as a
            // child that outlives a kill of the `git` wrapper.
            let mut child = Command::new(git_daemon_path()?)
                .arg(format!("--base-path={}", base.path().display()))
                .args(["--export-all", "--reuseaddr", "--enable=receive-pack"])
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(base.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(io_error("starting git daemon"))?;
            if wait_for_port(port, Duration::from_secs(10)) {
                // Stop the daemon even if the test process dies first.
                // (Only if the pid is still our daemon: pids are reused.)
                let (pid, dir) = (child.id(), base.path().display());
                crate::watchdog::spawn(&format!(
                    "grep -q {dir} /proc/{pid}/cmdline 2>/dev/null && kill {pid}; rm -rf {dir}"
                ))?;
                return Ok(Self { base, port, child });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error = format!("git daemon did not listen on port {port}");
        }
        Err(Error::Setup(last_error))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `git://` URL of repository `name` (without `.git`).
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}.git", self.port)
    }

    /// Creates an empty bare repository `name` on the server and a working
    /// copy to fill it from.
    pub fn create_repo(&self, name: &str) -> Result<GitRepo> {
        let bare = self.base.path().join(format!("{name}.git"));
        run(Command::new("git")
            .args(["init", "--bare", "--quiet", "-b", "main"])
            .arg(&bare))?;
        GitRepo::new(bare, self.url(name))
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$(git --exec-path)/git-daemon`.
fn git_daemon_path() -> Result<PathBuf> {
    let exec_path = run(Command::new("git").arg("--exec-path"))?;
    let path = PathBuf::from(exec_path.trim()).join("git-daemon");
    if path.exists() {
        Ok(path)
    } else {
        Err(Error::Setup(format!(
            "git-daemon not found at {}",
            path.display()
        )))
    }
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A working copy whose commits are pushed to a bare repository.
#[derive(Debug)]
pub struct GitRepo {
    work: tempfile::TempDir,
    bare: PathBuf,
    /// Owns the bare repository of a standalone repo (removed on drop).
    bare_dir: Option<tempfile::TempDir>,
    url: String,
}

impl GitRepo {
    /// A standalone repository (no server): reachable as `file://`.
    pub fn local() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("edgecd-bare-")
            .tempdir()
            .map_err(io_error("creating a bare repo dir"))?;
        let bare = dir.path().to_path_buf();
        run(Command::new("git")
            .args(["init", "--bare", "--quiet", "-b", "main"])
            .arg(&bare))?;
        let url = format!("file://{}", bare.display());
        let mut repo = Self::new(bare, url)?;
        repo.bare_dir = Some(dir);
        Ok(repo)
    }

    fn new(bare: PathBuf, url: String) -> Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("edgecd-work-")
            .tempdir()
            .map_err(io_error("creating a working copy dir"))?;
        let repo = Self {
            work,
            bare,
            bare_dir: None,
            url,
        };
        repo.git(&["init", "--quiet", "-b", "main"])?;
        repo.git(&["config", "user.email", "test@edgecd.invalid"])?;
        repo.git(&["config", "user.name", "edgecd test"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        let bare = repo.bare.display().to_string();
        repo.git(&["remote", "add", "origin", &bare])?;
        Ok(repo)
    }

    /// URL clients clone from.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn bare_path(&self) -> &Path {
        &self.bare
    }

    pub fn work_path(&self) -> &Path {
        self.work.path()
    }

    /// Writes a file (creating parent directories).
    pub fn write(&self, path: &str, contents: &str) -> Result<()> {
        let full = self.work.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(format!("creating {parent:?}")))?;
        }
        std::fs::write(&full, contents).map_err(io_error(format!("writing {full:?}")))
    }

    pub fn remove(&self, path: &str) -> Result<()> {
        self.git(&["rm", "-r", "--quiet", path]).map(|_| ())
    }

    /// Copies a directory tree into the working copy at `dest` (relative).
    pub fn copy_dir(&self, from: &Path, dest: &str) -> Result<()> {
        copy_tree(from, &self.work.path().join(dest))
    }

    /// Commits everything and pushes `main`; returns the commit id.
    pub fn commit(&self, message: &str) -> Result<String> {
        self.git(&["add", "-A"])?;
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message])?;
        self.git(&["push", "--quiet", "origin", "HEAD:refs/heads/main"])?;
        self.head()
    }

    /// Creates and pushes a tag at HEAD.
    pub fn tag(&self, name: &str) -> Result<()> {
        self.git(&["tag", name])?;
        self.git(&["push", "--quiet", "origin", &format!("refs/tags/{name}")])?;
        Ok(())
    }

    /// Pushes HEAD to another branch.
    pub fn push_branch(&self, branch: &str) -> Result<()> {
        self.git(&[
            "push",
            "--quiet",
            "origin",
            &format!("HEAD:refs/heads/{branch}"),
        ])?;
        Ok(())
    }

    pub fn head(&self) -> Result<String> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        run(Command::new("git")
            .arg("-C")
            .arg(self.work.path())
            .args(args))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(io_error(format!("creating {to:?}")))?;
    for entry in std::fs::read_dir(from).map_err(io_error(format!("reading {from:?}")))? {
        let entry = entry.map_err(io_error(format!("reading {from:?}")))?;
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(io_error(format!("inspecting {:?}", entry.path())))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(io_error(format!("copying {:?}", entry.path())))?;
        }
    }
    Ok(())
}
