//! Repository credentials from Kubernetes Secrets (Argo CD compatible) and from the hub, merged into the git cache's credential set: watches labelled Secrets in the state namespace, takes the hub's `RepositoryCredentials` and keeps the last hub set in a Secret so a restart without the hub still has it.
//!
//! Precedence: for the same URL prefix a local Secret wins over the hub's credential; otherwise the longest
//! matching prefix decides, whichever source it came from. A complete set from the hub replaces the previous
//! hub set; the local Secrets are never touched by it.
//!
//! A Secret counts when it is labelled `edgecd.io/secret-type` or `argocd.argoproj.io/secret-type` with value
//! `repository` (one repository, `url` is its URL) or `repo-creds` (a template, `url` is a prefix). Data keys:
//! `url`, `username`, `password`, `sshPrivateKey`, `sshKnownHosts`, and Argo CD's `type` (`git`, or `helm` for a chart repository).
//! Values are never logged; a Secret that cannot be used is skipped with a warning naming it and the key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use secrecy::{ExposeSecret as _, SecretString};

use crate::git::{CredentialStore, Credentials, RepoCredential, RepoUrl};

/// edgecd's label marking repository Secrets.
pub const SECRET_TYPE_LABEL: &str = "edgecd.io/secret-type";
/// Argo CD's label, accepted as well.
pub const ARGOCD_SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// The Secret (in the state namespace) holding the last complete set of repository credentials the hub sent.
pub const HUB_CREDENTIALS_SECRET: &str = "edgecd-hub-repo-credentials";
/// Its data key: a JSON list of [`StoredCredential`].
const HUB_CREDENTIALS_KEY: &str = "credentials.json";
/// `edgecd.io/secret-type` of that Secret: not a value the repository-Secret watch selects.
const HUB_CREDENTIALS_TYPE: &str = "hub-repo-credentials";
/// Field manager of that Secret.
const MANAGER: &str = "edgecd-hub-link";

/// Label selectors of the watched Secrets (one watch each).
pub fn selectors() -> [String; 2] {
    [SECRET_TYPE_LABEL, ARGOCD_SECRET_TYPE_LABEL]
        .map(|label| format!("{label} in (repository,repo-creds)"))
}

/// Why a Secret was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Secret {secret}: missing key `url`")]
    MissingUrl { secret: String },
    #[error("Secret {secret}: key `{key}` is not UTF-8")]
    NotUtf8 { secret: String, key: String },
    #[error("Secret {secret}: repository type `{kind}` is not supported (only git, helm and oci)")]
    UnsupportedType { secret: String, kind: String },
}

/// Reads one Secret's credential (`data`, or `stringData` as written by some tools).
pub fn credential_from_secret(secret: &Secret) -> Result<RepoCredential, SecretError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    if let Some(data) = &secret.data {
        for (key, value) in data {
            let text = String::from_utf8(value.0.clone()).map_err(|_| SecretError::NotUtf8 {
                secret: name.clone(),
                key: key.clone(),
            })?;
            values.insert(key.as_str(), text);
        }
    }
    if let Some(data) = &secret.string_data {
        for (key, value) in data {
            values.insert(key.as_str(), value.clone());
        }
    }
    // `helm`: a chart repository (basic auth, CA), matched by URL prefix like a git repository; `oci`: an OCI
    // registry of artifacts (Argo CD 3.1's OCI sources), matched like an OCI Helm registry.
    if let Some(kind) = values.get("type").map(|t| t.trim())
        && !kind.is_empty()
        && !["git", "helm", "oci"].contains(&kind)
    {
        return Err(SecretError::UnsupportedType {
            secret: name,
            kind: kind.to_owned(),
        });
    }
    let url = values
        .get("url")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| SecretError::MissingUrl {
            secret: name.clone(),
        })?;
    let url_prefix = normalize_prefix(url);
    let text = |key: &str| {
        values
            .get(key)
            .map(|v| v.trim_end_matches(['\n', '\r']).to_owned())
            .filter(|v| !v.is_empty())
    };
    let secret_text = |key: &str| {
        values
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .map(|v| SecretString::from(v.clone()))
    };
    Ok(RepoCredential {
        url_prefix,
        username: text("username"),
        password: secret_text("password"),
        ssh_private_key: secret_text("sshPrivateKey"),
        ssh_passphrase: secret_text("sshPassphrase"),
        ssh_known_hosts: text("sshKnownHosts"),
        ca_cert_pem: text("caCert"),
    })
}

/// A URL prefix in the git layer's form, so that it matches repository URLs (a bare prefix that is no URL
/// stays as written).
pub fn normalize_prefix(url: &str) -> String {
    RepoUrl::parse(url).map_or_else(|_| url.to_owned(), |u| u.as_str().to_owned())
}

/// Builds the credential set from the Secrets, skipping (and reporting) unusable ones.
/// The same Secret seen through both labels counts once.
pub fn credentials_from_secrets<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
) -> (Credentials, Vec<SecretError>) {
    let mut by_name: BTreeMap<String, RepoCredential> = BTreeMap::new();
    let mut errors = Vec::new();
    for secret in secrets {
        match credential_from_secret(secret) {
            Ok(credential) => {
                by_name.insert(secret.metadata.name.clone().unwrap_or_default(), credential);
            }
            Err(error) => errors.push(error),
        }
    }
    (Credentials::new(by_name.into_values()), errors)
}

/// The two sources of repository credentials (local Secrets, the hub) and the git cache's store that holds
/// their merge. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    store: CredentialStore,
    sets: Arc<Mutex<Sets>>,
}

#[derive(Debug, Default)]
struct Sets {
    local: Credentials,
    hub: Credentials,
}

impl CredentialSources {
    /// Sources feeding `store` (both empty until set).
    pub fn new(store: CredentialStore) -> Self {
        Self {
            store,
            sets: Arc::default(),
        }
    }

    /// The merged store the git layer reads.
    pub fn store(&self) -> &CredentialStore {
        &self.store
    }

    /// Replaces the credentials from local Secrets.
    pub fn set_local(&self, credentials: Credentials) {
        self.update(|sets| sets.local = credentials);
    }

    /// Replaces the credentials from the hub.
    pub fn set_hub(&self, credentials: Credentials) {
        self.update(|sets| sets.hub = credentials);
    }

    /// The hub's current set (URL prefixes only are meant for display).
    pub fn hub(&self) -> Credentials {
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hub
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut Sets)) {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut sets);
        // A local Secret for the same prefix wins over the hub's credential.
        self.store
            .replace(Credentials::merged(&sets.local, &sets.hub));
    }
}

/// One hub-delivered credential as kept in the Secret [`HUB_CREDENTIALS_SECRET`].
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCredential {
    pub url_prefix: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_private_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_known_hosts: String,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("url_prefix", &self.url_prefix)
            .finish_non_exhaustive()
    }
}

impl From<&edgecd_proto::v1::RepositoryCredential> for StoredCredential {
    fn from(c: &edgecd_proto::v1::RepositoryCredential) -> Self {
        Self {
            url_prefix: c.url_prefix.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
            ssh_private_key: c.ssh_private_key.clone(),
            ssh_known_hosts: c.ssh_known_hosts.clone(),
        }
    }
}

impl StoredCredential {
    /// The git layer's form; empty fields are absent.
    pub fn to_credential(&self) -> RepoCredential {
        let text = |v: &str| {
            let v = v.trim_end_matches(['\n', '\r']);
            (!v.is_empty()).then(|| v.to_owned())
        };
        let secret = |v: &str| (!v.trim().is_empty()).then(|| SecretString::from(v.to_owned()));
        RepoCredential {
            url_prefix: normalize_prefix(self.url_prefix.trim()),
            username: text(&self.username),
            password: secret(&self.password),
            ssh_private_key: secret(&self.ssh_private_key),
            ssh_passphrase: None,
            ssh_known_hosts: text(&self.ssh_known_hosts),
            ca_cert_pem: None,
        }
    }

    fn from_credential(c: &RepoCredential) -> Self {
        let secret = |v: &Option<SecretString>| {
            v.as_ref()
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default()
        };
        Self {
            url_prefix: c.url_prefix.clone(),
            username: c.username.clone().unwrap_or_default(),
            password: secret(&c.password),
            ssh_private_key: secret(&c.ssh_private_key),
            ssh_known_hosts: c.ssh_known_hosts.clone().unwrap_or_default(),
        }
    }
}

/// The hub's credentials as a set (entries without a URL prefix are skipped).
pub fn credentials_from_hub(stored: &[StoredCredential]) -> Credentials {
    Credentials::new(
        stored
            .iter()
            .filter(|c| !c.url_prefix.trim().is_empty())
            .map(StoredCredential::to_credential),
    )
}

/// Why the hub's credentials could not be kept in or read from their Secret. Never contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreHubError {
    #[error("Secret {namespace}/{HUB_CREDENTIALS_SECRET}: {source}")]
    Kube {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "Secret {namespace}/{HUB_CREDENTIALS_SECRET}: key {HUB_CREDENTIALS_KEY} is not a JSON list of credentials"
    )]
    Corrupt { namespace: String },
}

/// Keeps `credentials` (the hub's complete set) in the Secret [`HUB_CREDENTIALS_SECRET`] of `namespace`.
pub async fn store_hub(
    client: &kube::Client,
    namespace: &str,
    credentials: &Credentials,
) -> Result<(), StoreHubError> {
    let stored: Vec<StoredCredential> = credentials
        .entries()
        .map(StoredCredential::from_credential)
        .collect();
    let corrupt = || StoreHubError::Corrupt {
        namespace: namespace.to_owned(),
    };
    let json = serde_json::to_vec(&stored).map_err(|_| corrupt())?;
    let body = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(HUB_CREDENTIALS_SECRET.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                SECRET_TYPE_LABEL.to_owned(),
                HUB_CREDENTIALS_TYPE.to_owned(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            HUB_CREDENTIALS_KEY.to_owned(),
            k8s_openapi::ByteString(json),
        )])),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.patch(
        HUB_CREDENTIALS_SECRET,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| StoreHubError::Kube {
        namespace: namespace.to_owned(),
        source,
    })?;
    Ok(())
}

/// The hub's last complete set from the Secret [`HUB_CREDENTIALS_SECRET`] of `namespace` (`None` when the
/// hub never sent one).
pub async fn load_hub(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<Vec<StoredCredential>>, StoreHubError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(HUB_CREDENTIALS_SECRET)
        .await
        .map_err(|source| StoreHubError::Kube {
            namespace: namespace.to_owned(),
            source,
        })?;
    let Some(secret) = secret else {
        return Ok(None);
    };
    let corrupt = || StoreHubError::Corrupt {
        namespace: namespace.to_owned(),
    };
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(HUB_CREDENTIALS_KEY))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(HUB_CREDENTIALS_KEY))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(corrupt)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| corrupt())
}

/// Watches the repository Secrets of `namespace` and replaces `store`'s set after every change, until the
/// returned future is dropped.
pub async fn watch(client: kube::Client, namespace: String, store: CredentialStore) {
    watch_sources(client, namespace, CredentialSources::new(store)).await;
}

/// Watches the repository Secrets of `namespace` and replaces the local part of `sources` after every
/// change, until the returned future is dropped.
pub async fn watch_sources(client: kube::Client, namespace: String, sources: CredentialSources) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let mut readers: Vec<Store<Secret>> = Vec::new();
    let mut streams = Vec::new();
    for selector in selectors() {
        let (reader, writer) = reflector::store();
        readers.push(reader);
        let config = watcher::Config::default().labels(&selector);
        streams.push(
            reflector(writer, watcher(api.clone(), config))
                .default_backoff()
                .boxed(),
        );
    }
    let mut events = futures::stream::select_all(streams);
    let mut last_names: Vec<String> = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::InitApply(_) | watcher::Event::Init) => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, namespace, "Watching repository Secrets failed; retrying.");
                continue;
            }
        }
        let secrets: Vec<Arc<Secret>> = readers.iter().flat_map(Store::state).collect();
        let (credentials, errors) = credentials_from_secrets(secrets.iter().map(AsRef::as_ref));
        for error in &errors {
            tracing::warn!(%error, "Skipping a repository Secret.");
        }
        let mut names: Vec<String> = secrets
            .iter()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        names.sort();
        names.dedup();
        if names != last_names {
            tracing::info!(
                namespace,
                secrets = ?names,
                credentials = credentials.len(),
                "Repository credentials changed."
            );
            last_names = names;
        }
        sources.set_local(credentials);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use k8s_openapi::ByteString;
    use secrecy::ExposeSecret;

    fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn https_secret() {
        let c = credential_from_secret(&secret(
            "repo",
            &[
                ("type", "git"),
                ("url", "https://git.example.com/team/app.git"),
                ("username", "bot"),
                ("password", "hunter2"),
                (
                    "caCert",
                    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                ),
            ],
        ))
        .unwrap();
        assert_eq!(c.url_prefix, "https://git.example.com/team/app.git");
        assert_eq!(c.username.as_deref(), Some("bot"));
        assert_eq!(c.password.unwrap().expose_secret(), "hunter2");
        assert!(c.ssh_private_key.is_none());
        assert_eq!(
            c.ca_cert_pem.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
        );
    }

    #[test]
    fn ssh_secret_with_known_hosts() {
        let c = credential_from_secret(&secret(
            "repo",
            &[
                ("url", "ssh://git@git.example.com/"),
                ("sshPrivateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                ("sshKnownHosts", "git.example.com ssh-ed25519 AAAA\n"),
                ("sshPassphrase", "open sesame"),
            ],
        ))
        .unwrap();
        assert_eq!(c.url_prefix, "ssh://git@git.example.com/");
        assert!(c.ssh_private_key.is_some());
        assert_eq!(c.ssh_passphrase.unwrap().expose_secret(), "open sesame");
        assert!(c.ca_cert_pem.is_none());
        assert_eq!(
            c.ssh_known_hosts.as_deref(),
            Some("git.example.com ssh-ed25519 AAAA")
        );
    }

    #[test]
    fn unusable_secrets_are_reported_by_name() {
        let (set, errors) = credentials_from_secrets(&[
            secret("no-url", &[("password", "x")]),
            secret("svn", &[("type", "svn"), ("url", "https://charts.example")]),
            secret(
                "oci",
                &[
                    ("type", "oci"),
                    ("url", "oci://registry.example/team"),
                    ("password", "p"),
                ],
            ),
            secret(
                "helm",
                &[
                    ("type", "helm"),
                    ("url", "https://charts.example/stable"),
                    ("password", "p"),
                ],
            ),
            secret(
                "good",
                &[("url", "https://git.example.com/"), ("password", "hunter2")],
            ),
        ]);
        // A chart repository (`type: helm`) and an OCI registry (`type: oci`) count, matched by URL prefix.
        assert_eq!(set.len(), 3);
        assert!(set.find(&url("https://charts.example/stable")).is_some());
        assert!(
            set.entries()
                .any(|c| c.url_prefix.starts_with("oci://registry.example/team"))
        );
        assert_eq!(
            errors,
            [
                SecretError::MissingUrl {
                    secret: "no-url".into()
                },
                SecretError::UnsupportedType {
                    secret: "svn".into(),
                    kind: "svn".into()
                }
            ]
        );
        let printed = format!("{errors:?} {set:?}");
        assert!(!printed.contains("hunter2"));
    }

    fn url(text: &str) -> RepoUrl {
        RepoUrl::parse(text).unwrap()
    }

    #[test]
    fn a_local_secret_wins_over_the_hub_for_the_same_prefix_and_a_hub_set_replaces_the_last() {
        let sources = CredentialSources::new(CredentialStore::default());
        let hub = |password: &str, prefixes: &[&str]| {
            let stored: Vec<StoredCredential> = prefixes
                .iter()
                .map(|p| StoredCredential {
                    url_prefix: (*p).to_owned(),
                    username: "hub".into(),
                    password: password.into(),
                    ..StoredCredential::default()
                })
                .collect();
            credentials_from_hub(&stored)
        };
        sources.set_hub(hub(
            "from-hub",
            &[
                "https://git.example.com/team/",
                "https://other.example.com/",
            ],
        ));
        let (local, _) = credentials_from_secrets(&[secret(
            "team",
            &[
                ("url", "https://git.example.com/team/"),
                ("username", "local"),
                ("password", "from-secret"),
            ],
        )]);
        sources.set_local(local);
        let store = sources.store();
        let user = |u: &str| store.find(&url(u)).and_then(|c| c.username.clone());
        assert_eq!(
            user("https://git.example.com/team/app.git").as_deref(),
            Some("local")
        );
        assert_eq!(
            user("https://other.example.com/x.git").as_deref(),
            Some("hub")
        );
        // A new complete hub set replaces the previous one; the local Secret stays.
        sources.set_hub(hub("from-hub", &["https://third.example.com/"]));
        assert!(
            store
                .find(&url("https://other.example.com/x.git"))
                .is_none()
        );
        assert_eq!(
            user("https://third.example.com/x.git").as_deref(),
            Some("hub")
        );
        assert_eq!(
            user("https://git.example.com/team/app.git").as_deref(),
            Some("local")
        );
        sources.set_hub(Credentials::default());
        assert!(
            store
                .find(&url("https://third.example.com/x.git"))
                .is_none()
        );
        assert_eq!(store.snapshot().len(), 1);
    }

    #[test]
    fn hub_credentials_round_trip_through_their_stored_form_without_printing_secrets() {
        let message = edgecd_proto::v1::RepositoryCredential {
            url_prefix: "ssh://git@git.example.com/".into(),
            username: String::new(),
            password: String::new(),
            ssh_private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\n".into(),
            ssh_known_hosts: "git.example.com ssh-ed25519 AAAA\n".into(),
        };
        let stored = StoredCredential::from(&message);
        assert!(!format!("{stored:?}").contains("PRIVATE KEY"));
        let set = credentials_from_hub(std::slice::from_ref(&stored));
        let back: Vec<StoredCredential> = set
            .entries()
            .map(StoredCredential::from_credential)
            .collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].ssh_private_key, stored.ssh_private_key);
        assert_eq!(back[0].ssh_known_hosts, "git.example.com ssh-ed25519 AAAA");
        let json = serde_json::to_string(&back).unwrap();
        assert!(
            json.contains("sshPrivateKey") && !json.contains("password"),
            "{json}"
        );
        // Entries without a prefix are skipped.
        assert!(credentials_from_hub(&[StoredCredential::default()]).is_empty());
    }

    #[test]
    fn a_secret_with_both_labels_counts_once() {
        let s = secret("both", &[("url", "https://git.example.com/")]);
        let (set, errors) = credentials_from_secrets([&s, &s]);
        assert_eq!(set.len(), 1);
        assert!(errors.is_empty());
    }
}
