//! ssh transport tests against a throwaway OpenSSH `sshd` on loopback (skipped when `/usr/sbin/sshd` is absent).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgecd_git::{Credentials, GitError, RepoCredential};
use edgecd_testkit::GitRepo;
use secrecy::SecretString;

use super::{fixture_with, read, resolve, url};

const SSHD: &str = "/usr/sbin/sshd";

/// `sshd` accepting one client key for the current user, killed when dropped.
struct SshServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl SshServer {
    /// `None` when this machine has no OpenSSH server.
    fn start() -> Option<Self> {
        if !Path::new(SSHD).exists() {
            eprintln!("skipping: {SSHD} is not installed (package openssh-server)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        let port = edgecd_testkit::net::free_port().unwrap();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\n",
            dir = dir.path().display()
        );
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { dir, port, child })
    }

    fn user(&self) -> String {
        String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned()
    }

    fn url(&self, bare: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user(),
            self.port,
            bare.display()
        )
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `known_hosts` line for this server's host key.
    fn known_hosts(&self) -> String {
        let public = std::fs::read_to_string(self.file("host_key.pub")).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    fn credential(&self, known_hosts: Option<String>) -> RepoCredential {
        let key = std::fs::read_to_string(self.file("client_key")).unwrap();
        RepoCredential {
            url_prefix: format!("ssh://{}@127.0.0.1:{}/", self.user(), self.port),
            ssh_private_key: Some(SecretString::from(key)),
            ssh_known_hosts: known_hosts,
            ..RepoCredential::default()
        }
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn ssh_key_auth_with_known_hosts() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let repo = GitRepo::local().unwrap();
    repo.write("a.yaml", "a: 1\n").unwrap();
    let commit = repo.commit("one").unwrap();
    let remote = url(&server.url(repo.bare_path()));

    let trusted = fixture_with(
        |_| {},
        Credentials::new([server.credential(Some(server.known_hosts()))]),
    );
    let resolved = resolve(&trusted.cache, &remote, "main").await.unwrap();
    assert_eq!(resolved.to_string(), commit);
    let checkout = trusted
        .cache
        .materialise(&remote, resolved, "")
        .await
        .unwrap();
    assert_eq!(read(checkout.root(), "a.yaml"), "a: 1\n");

    // Another server's key for this host: refused before authenticating.
    let other = tempfile::tempdir().unwrap();
    keygen(&other.path().join("k"));
    let other_key = std::fs::read_to_string(other.path().join("k.pub")).unwrap();
    let mut fields = other_key.split_whitespace();
    let wrong_hosts = format!(
        "[127.0.0.1]:{} {} {}\n",
        server.port,
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    let spoofed = fixture_with(
        |_| {},
        Credentials::new([server.credential(Some(wrong_hosts))]),
    );
    let error = resolve(&spoofed.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::UntrustedHost { .. }), "{error:?}");

    // A host missing from known_hosts is refused too.
    let unknown = fixture_with(
        |_| {},
        Credentials::new([server.credential(Some("other.example ssh-ed25519 AAAA\n".into()))]),
    );
    let error = resolve(&unknown.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::UntrustedHost { .. }), "{error:?}");

    // Without known_hosts in the credential, libgit2's own check of ~/.ssh/known_hosts applies, and that file
    // does not list this throwaway server: refused as well, never trusted on first use.
    let passthrough = fixture_with(|_| {}, Credentials::new([server.credential(None)]));
    let error = resolve(&passthrough.cache, &remote, "main")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::UntrustedHost { .. }), "{error:?}");

    // A key the server does not accept: an auth error, not a hang.
    let wrong_key = RepoCredential {
        ssh_private_key: Some(SecretString::from(
            std::fs::read_to_string(other.path().join("k")).unwrap(),
        )),
        ..server.credential(Some(server.known_hosts()))
    };
    let rejected = fixture_with(|_| {}, Credentials::new([wrong_key]));
    let error = resolve(&rejected.cache, &remote, "main").await.unwrap_err();
    assert!(matches!(error, GitError::AuthFailed { .. }), "{error:?}");
}
