//! Repository credentials from Kubernetes Secrets (Argo CD compatible): watches labelled Secrets in the state namespace and keeps the git cache's credential set equal to them.
//!
//! A Secret counts when it is labelled `edgecd.io/secret-type` or `argocd.argoproj.io/secret-type` with value
//! `repository` (one repository, `url` is its URL) or `repo-creds` (a template, `url` is a prefix). Data keys:
//! `url`, `username`, `password`, `sshPrivateKey`, `sshKnownHosts`, and Argo CD's `type` (only `git` is used).
//! Values are never logged; a Secret that cannot be used is skipped with a warning naming it and the key.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use secrecy::SecretString;

use crate::git::{CredentialStore, Credentials, RepoCredential, RepoUrl};

/// edgecd's label marking repository Secrets.
pub const SECRET_TYPE_LABEL: &str = "edgecd.io/secret-type";
/// Argo CD's label, accepted as well.
pub const ARGOCD_SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

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
    #[error("Secret {secret}: repository type `{kind}` is not supported (only git)")]
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
    if let Some(kind) = values.get("type").map(|t| t.trim())
        && !kind.is_empty()
        && kind != "git"
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
    // Match on the URL in the git layer's form (a bare prefix that is no URL stays as written).
    let url_prefix = RepoUrl::parse(url).map_or_else(|_| url.to_owned(), |u| u.as_str().to_owned());
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

/// Watches the repository Secrets of `namespace` and replaces `store`'s set after every change, until the
/// returned future is dropped.
pub async fn watch(client: kube::Client, namespace: String, store: CredentialStore) {
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
        store.replace(credentials);
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
            secret(
                "helm",
                &[("type", "helm"), ("url", "https://charts.example")],
            ),
            secret(
                "good",
                &[("url", "https://git.example.com/"), ("password", "hunter2")],
            ),
        ]);
        assert_eq!(set.len(), 1);
        assert_eq!(
            errors,
            [
                SecretError::MissingUrl {
                    secret: "no-url".into()
                },
                SecretError::UnsupportedType {
                    secret: "helm".into(),
                    kind: "helm".into()
                }
            ]
        );
        let printed = format!("{errors:?} {set:?}");
        assert!(!printed.contains("hunter2"));
    }

    #[test]
    fn a_secret_with_both_labels_counts_once() {
        let s = secret("both", &[("url", "https://git.example.com/")]);
        let (set, errors) = credentials_from_secrets([&s, &s]);
        assert_eq!(set.len(), 1);
        assert!(errors.is_empty());
    }
}
