//! Repository credentials matched by URL prefix (longest wins), replaceable at runtime; secrets never print.

use std::sync::{Arc, PoisonError, RwLock};

use secrecy::SecretString;

use super::url::RepoUrl;

/// Credentials for every repository whose URL starts with `url_prefix`.
///
/// Secrets are [`SecretString`]s: `Debug` prints `[REDACTED]`.
/// For https, `password` is the password or token (with `username` defaulting to `git`); for ssh,
/// `ssh_private_key` is a PEM/OpenSSH private key and `ssh_known_hosts` (OpenSSH `known_hosts` lines) pins the
/// server keys: when it is set, unknown host keys are refused.
/// `ca_cert_pem` pins the https server certificate to a CA (the server's leaf must be signed by it directly).
#[derive(Debug, Clone, Default)]
pub struct RepoCredential {
    pub url_prefix: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub ssh_private_key: Option<SecretString>,
    pub ssh_passphrase: Option<SecretString>,
    pub ssh_known_hosts: Option<String>,
    pub ca_cert_pem: Option<String>,
}

/// A set of credentials; [`Credentials::find`] picks the longest matching prefix.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    entries: Vec<Arc<RepoCredential>>,
}

/// The live credential set shared by the git layer and whoever fills it (Kubernetes Secrets, the hub).
///
/// Cloning shares the same set; [`CredentialStore::replace`] swaps it atomically for later operations.
#[derive(Debug, Clone, Default)]
pub struct CredentialStore {
    current: Arc<RwLock<Arc<Credentials>>>,
}

/// Whether a credential for `prefix` covers the URL `url`: `url` starts with `prefix` **on a boundary** — the
/// prefix ends with `/` or `:` (`http://127.0.0.1:` covers every port of that host, `git@host:` every path of
/// an scp-like URL), or what follows it in `url` is
/// nothing, `/`, `?`, `#`, or a `.git` suffix (`https://git.example/team/app` covers `…/app.git`). So
/// `https://github.com/org` covers `https://github.com/org/repo` (Argo CD's repo-creds templates) but
/// `https://charts.corp.example` does not cover `https://charts.corp.example.evil.io/`, nor
/// `https://github.com/org` cover `https://github.com/organisation`.
///
/// This is the one rule every credential lookup uses (git, Helm chart repositories; OCI registries add an
/// authority check, see `edgecd_helm::oci::find_credential`). An empty prefix covers nothing.
pub fn prefix_covers(prefix: &str, url: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    if prefix.ends_with(['/', ':']) {
        return true;
    }
    let rest = rest.strip_prefix(".git").map_or(rest, |after| {
        if after.is_empty() || after.starts_with(['/', '?', '#']) {
            after
        } else {
            rest
        }
    });
    rest.is_empty() || rest.starts_with(['/', '?', '#'])
}

// === impl Credentials ===

impl Credentials {
    pub fn new(entries: impl IntoIterator<Item = RepoCredential>) -> Self {
        Self {
            entries: entries.into_iter().map(Arc::new).collect(),
        }
    }

    /// The credential with the longest `url_prefix` that the repository URL starts with.
    pub fn find(&self, url: &RepoUrl) -> Option<Arc<RepoCredential>> {
        self.entries
            .iter()
            .filter(|entry| prefix_covers(&entry.url_prefix, url.as_str()))
            .max_by_key(|entry| entry.url_prefix.len())
            .cloned()
    }

    /// `preferred` plus the entries of `other` whose `url_prefix` no entry of `preferred` has: for the
    /// same prefix, `preferred` wins; otherwise the longest prefix still decides per repository.
    pub fn merged(preferred: &Credentials, other: &Credentials) -> Self {
        let mut entries = preferred.entries.clone();
        entries.extend(
            other
                .entries
                .iter()
                .filter(|entry| {
                    !preferred
                        .entries
                        .iter()
                        .any(|p| p.url_prefix == entry.url_prefix)
                })
                .cloned(),
        );
        Self { entries }
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &RepoCredential> {
        self.entries.iter().map(AsRef::as_ref)
    }

    /// The URL prefixes of the set, in order (no secrets).
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|entry| entry.url_prefix.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// === impl CredentialStore ===

impl CredentialStore {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(credentials))),
        }
    }

    /// Replaces the whole set; operations already running keep the credential they started with.
    pub fn replace(&self, credentials: Credentials) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(credentials);
    }

    pub fn snapshot(&self) -> Arc<Credentials> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn find(&self, url: &RepoUrl) -> Option<Arc<RepoCredential>> {
        self.snapshot().find(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(prefix: &str, user: &str) -> RepoCredential {
        RepoCredential {
            url_prefix: prefix.to_owned(),
            username: Some(user.to_owned()),
            password: Some(SecretString::from("hunter2".to_owned())),
            ..RepoCredential::default()
        }
    }

    fn url(text: &str) -> RepoUrl {
        match RepoUrl::parse(text) {
            Ok(url) => url,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let store = CredentialStore::new(Credentials::new([
            credential("https://git.example.com/", "host"),
            credential("https://git.example.com/team/", "team"),
            credential("https://other.example.com/", "other"),
        ]));
        let found = store.find(&url("https://git.example.com/team/app.git"));
        assert_eq!(
            found.and_then(|c| c.username.clone()).as_deref(),
            Some("team")
        );
        let found = store.find(&url("https://git.example.com/infra.git"));
        assert_eq!(
            found.and_then(|c| c.username.clone()).as_deref(),
            Some("host")
        );
        assert!(store.find(&url("https://nowhere.example.com/x")).is_none());
    }

    #[test]
    fn ssh_urls_match_by_their_login() {
        let store = CredentialStore::new(Credentials::new([credential(
            "ssh://git@git.example.com/",
            "git",
        )]));
        assert!(
            store
                .find(&url("ssh://git@git.example.com/x.git"))
                .is_some()
        );
        assert!(
            store
                .find(&url("ssh://deploy@git.example.com/x.git"))
                .is_none()
        );
    }

    #[test]
    fn prefixes_match_only_on_a_boundary() {
        let store = CredentialStore::new(Credentials::new([
            credential("https://charts.corp.example", "corp"),
            credential("https://github.com/org", "org"),
            credential("https://git.example.com/team/app", "app"),
        ]));
        let user = |text: &str| store.find(&url(text)).and_then(|c| c.username.clone());
        assert_eq!(user("https://charts.corp.example.evil.io/x"), None);
        assert_eq!(user("https://charts.corp.example:8443.evil.io/x"), None);
        assert_eq!(user("https://github.com/organisation/repo"), None);
        assert_eq!(user("https://git.example.com/team/application.git"), None);
        assert_eq!(
            user("https://charts.corp.example/stable").as_deref(),
            Some("corp")
        );
        assert_eq!(user("https://charts.corp.example").as_deref(), Some("corp"));
        assert_eq!(user("https://github.com/org/repo").as_deref(), Some("org"));
        assert_eq!(
            user("https://git.example.com/team/app.git").as_deref(),
            Some("app")
        );
        assert_eq!(
            user("https://git.example.com/team/app").as_deref(),
            Some("app")
        );
        assert!(prefix_covers("git@github.com:", "git@github.com:org/x.git"));
        assert!(!prefix_covers(
            "git@github.com",
            "git@github.com.evil.io:x.git"
        ));
        assert!(!prefix_covers("", "https://a.example/"));
    }

    #[test]
    fn replace_swaps_the_set() {
        let store = CredentialStore::default();
        let shared = store.clone();
        assert!(store.find(&url("https://a.example/x")).is_none());
        shared.replace(Credentials::new([credential("https://a.example/", "a")]));
        assert!(store.find(&url("https://a.example/x")).is_some());
    }

    #[test]
    fn merged_prefers_the_first_set_for_the_same_prefix_only() {
        let local = Credentials::new([credential("https://git.example.com/team/", "local")]);
        let hub = Credentials::new([
            credential("https://git.example.com/team/", "hub"),
            credential("https://git.example.com/", "hub-host"),
        ]);
        let merged = Credentials::merged(&local, &hub);
        assert_eq!(merged.len(), 2);
        let user = |text: &str| merged.find(&url(text)).and_then(|c| c.username.clone());
        assert_eq!(
            user("https://git.example.com/team/app.git").as_deref(),
            Some("local")
        );
        assert_eq!(
            user("https://git.example.com/infra.git").as_deref(),
            Some("hub-host")
        );
        assert_eq!(
            merged.prefixes().collect::<Vec<_>>(),
            ["https://git.example.com/team/", "https://git.example.com/"]
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut entry = credential("https://a.example/", "a");
        entry.ssh_private_key = Some(SecretString::from("PRIVATE KEY".to_owned()));
        let printed = format!("{:?}", Credentials::new([entry]));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    }
}
