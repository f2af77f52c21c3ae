//! A throwaway PostgreSQL server: `initdb` and `pg_ctl` in a temp dir on a free loopback port, run as the `postgres` user when we are root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Error, Result, io_error, net, run, watchdog};

/// Where Debian installs PostgreSQL's server binaries (off the PATH).
const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// A running PostgreSQL server owned by the test. Dropping it stops the
/// server and removes its data directory.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
    running: bool,
    /// Serving TLS only (`start_tls`): the CA certificate clients verify it with.
    tls_ca: Option<PathBuf>,
}

static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgServer {
    /// Starts a fresh server. `EDGECD_PG_BIN` overrides the binary directory.
    pub fn start() -> Result<Self> {
        Self::start_with(false)
    }

    /// Starts a fresh server that accepts TCP connections over TLS only (`hostssl` in `pg_hba.conf`, no plain
    /// `host` line), with a certificate for `127.0.0.1` and `localhost` issued by a CA of its own
    /// ([`Self::tls_ca_file`]).
    pub fn start_tls() -> Result<Self> {
        Self::start_with(true)
    }

    /// The CA certificate (PEM) a TLS server's certificate verifies against; `None` without TLS.
    pub fn tls_ca_file(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    fn start_with(tls: bool) -> Result<Self> {
        let bin = find_bin_dir()?;
        let as_postgres_user = is_root();
        let dir = tempfile::Builder::new()
            .prefix("edgecd-pg-")
            .tempdir()
            .map_err(io_error("creating the PostgreSQL temp dir"))?;
        if as_postgres_user {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let mut server = Self {
            bin,
            dir,
            port: 0,
            as_postgres_user,
            running: false,
            tls_ca: None,
        };
        server.initdb()?;
        if tls {
            server.configure_tls()?;
        }
        // A port may be taken between probing and binding: try a few.
        let mut last_error = None;
        for _ in 0..5 {
            server.port = net::free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.running = true;
                    server.spawn_watchdog()?;
                    return Ok(server);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Setup("PostgreSQL did not start".into())))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connection URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a new, empty database with a unique name and returns its URL.
    pub fn create_database(&self) -> Result<String> {
        let n = DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("edgecd_test_{}_{n}", std::process::id());
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name))?;
        Ok(self.database_url(&name))
    }

    /// Runs SQL with `psql` in database `database` and returns its unaligned, tuples-only output.
    pub fn query(&self, database: &str, sql: &str) -> Result<String> {
        psql(self.port, database, sql)
    }

    /// Starts a hot standby of this server on a port of its own: a base backup (`pg_basebackup -R`, which
    /// leaves the standby streaming from this server), started, and waited for until it streams. With
    /// `synchronous`, this server then waits for the standby to confirm every commit
    /// (`synchronous_standby_names = '*'`, set after the backup so the standby, once promoted, waits for
    /// nobody), so a failover to it loses no committed transaction.
    pub fn start_standby(&self, synchronous: bool) -> Result<PgServer> {
        let dir = tempfile::Builder::new()
            .prefix("edgecd-pg-standby-")
            .tempdir()
            .map_err(io_error("creating the standby's temp dir"))?;
        if self.as_postgres_user {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let mut standby = Self {
            bin: self.bin.clone(),
            dir,
            port: 0,
            as_postgres_user: self.as_postgres_user,
            running: false,
            tls_ca: None,
        };
        run(standby
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "-c",
                "fast",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg("-D")
            .arg(standby.data_dir()))?;
        let mut last_error = None;
        for _ in 0..5 {
            standby.port = net::free_port()?;
            match standby.pg_ctl_start() {
                Ok(()) => {
                    standby.running = true;
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(error) = last_error {
            return Err(error);
        }
        standby.spawn_watchdog()?;
        let start = std::time::Instant::now();
        loop {
            let streaming = self.query(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            )?;
            if streaming.trim() != "0" {
                break;
            }
            if start.elapsed() > std::time::Duration::from_secs(60) {
                return Err(Error::Setup(
                    "the standby did not stream within 60 s".into(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if synchronous {
            self.query(
                "postgres",
                "ALTER SYSTEM SET synchronous_standby_names = '*'",
            )?;
            self.query("postgres", "SELECT pg_reload_conf()")?;
        }
        Ok(standby)
    }

    /// Promotes a standby to primary (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self) -> Result<()> {
        self.pg_ctl(&["promote", "-w", "-t", "60"])
    }

    /// Stops the server abruptly (as a crash would), keeping its data.
    pub fn stop(&mut self) -> Result<()> {
        if self.running {
            self.pg_ctl(&["stop", "-m", "immediate", "-w"])?;
            self.running = false;
        }
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&mut self) -> Result<()> {
        if !self.running {
            self.pg_ctl_start()?;
            self.running = true;
        }
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn initdb(&self) -> Result<()> {
        run(self.command("initdb").arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        Ok(())
    }

    /// A CA and a server certificate in the data directory, `ssl=on`, and TCP clients accepted over TLS only.
    fn configure_tls(&mut self) -> Result<()> {
        let certs = crate::git_http::TestCa::generate()?;
        let data = self.data_dir();
        let write = |name: &str, text: &str| {
            let path = data.join(name);
            std::fs::write(&path, text).map_err(io_error(&format!("writing {}", path.display())))
        };
        write("server.crt", &certs.server_cert_pem)?;
        write("server.key", &certs.server_key_pem)?;
        // TCP clients only over TLS (libpq tools such as createdb prefer TLS, so they still connect).
        write(
            "pg_hba.conf",
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )?;
        let key_path = data.join("server.key").display().to_string();
        if self.as_postgres_user {
            for name in ["server.crt", "server.key", "pg_hba.conf"] {
                run(Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join(name)))?;
            }
        }
        run(Command::new("chmod").args(["0600", &key_path]))?;
        let ca_path = self.dir.path().join("ca.crt");
        std::fs::write(&ca_path, &certs.ca_pem)
            .map_err(io_error(&format!("writing {}", ca_path.display())))?;
        self.tls_ca = Some(ca_path);
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let data = self.data_dir();
        let tls = if self.tls_ca.is_some() {
            " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
        } else {
            ""
        };
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off -c max_connections=300{tls}",
            self.port,
            data.display()
        );
        // For profiling a run by hand (the faults bench's database, say): e.g.
        // `-c shared_preload_libraries=pg_stat_statements`. Tests never set it.
        if let Ok(extra) = std::env::var("EDGECD_TEST_PG_OPTIONS")
            && !extra.trim().is_empty()
        {
            options.push(' ');
            options.push_str(extra.trim());
        }
        let log = self.dir.path().join("postgres.log");
        let result = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.display().to_string(),
            "-o",
            &options,
        ]);
        if let Err(Error::Command {
            command, status, ..
        }) = result
        {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(Error::Command {
                command,
                status,
                stderr: log_text,
            });
        }
        result
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(args))?;
        Ok(())
    }

    fn spawn_watchdog(&self) -> Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = if self.as_postgres_user {
            "runuser -u postgres -- "
        } else {
            ""
        };
        watchdog::spawn(&format!(
            "{prefix}{} -D {} stop -m immediate >/dev/null 2>&1; rm -rf {}",
            pg_ctl.display(),
            self.data_dir().display(),
            self.dir.path().display()
        ))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Best effort: the watchdog catches what this misses.
        let _ = self.stop();
    }
}

/// Runs SQL with `psql` as `postgres` against the server on loopback port `port`, in database `database`;
/// returns its unaligned, tuples-only output.
pub fn psql(port: u16, database: &str, sql: &str) -> Result<String> {
    let output = run(Command::new(find_bin_dir()?.join("psql"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "-At", "-p"])
        .arg(port.to_string())
        .args(["-d", database, "-c", sql]))?;
    Ok(output.trim().to_owned())
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || run(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn find_bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("EDGECD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new(DEBIAN_PG_ROOT);
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| {
            Error::Setup(format!(
                "PostgreSQL server binaries not found under {DEBIAN_PG_ROOT} ({e}); install the `postgresql` package or set EDGECD_PG_BIN"
            ))
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| Error::Setup(format!("no initdb under {DEBIAN_PG_ROOT}/*/bin")))
}
