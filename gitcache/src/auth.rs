//! libgit2 callbacks: credentials (attempts capped, never looping), ssh host keys and https CA pinning.

use std::cell::RefCell;
use std::sync::Arc;

use base64::Engine as _;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use secrecy::ExposeSecret as _;

use super::credentials::RepoCredential;
use super::error::AuthOutcome;
use super::url::RepoUrl;

/// libgit2 asks again after a rejected credential; more calls than this means the server keeps refusing.
const MAX_CREDENTIAL_CALLS: u32 = 4;

/// Username for https when a credential has a password/token but no username.
const DEFAULT_HTTPS_USER: &str = "git";

/// Builds the callbacks of one remote operation on `repo`; `outcome` records why authentication or trust failed.
///
/// A credential is only handed out for a URL its prefix covers: a server redirecting elsewhere gets nothing.
pub(crate) fn callbacks<'a>(
    repo: &'a RepoUrl,
    credential: Option<&'a Arc<RepoCredential>>,
    outcome: &'a RefCell<AuthOutcome>,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let mut calls = 0u32;
    let mut tried = CredentialType::empty();
    callbacks.credentials(move |url, username_from_url, allowed| {
        calls += 1;
        let refuse = |reason: String| {
            outcome.borrow_mut().refused = Some(reason.clone());
            Err(git2::Error::from_str(&reason))
        };
        let Some(credential) = credential else {
            return refuse("the server asks for credentials and none match this repository".into());
        };
        if calls > MAX_CREDENTIAL_CALLS {
            return refuse("credentials rejected by the server".into());
        }
        if url != repo.as_str() {
            let covered = RepoUrl::parse(url)
                .is_ok_and(|seen| crate::prefix_covers(&credential.url_prefix, seen.as_str()));
            if !covered {
                return refuse(
                    "the server redirected to a URL the matching credential does not cover".into(),
                );
            }
        }
        let user = credential
            .username
            .as_deref()
            .or(username_from_url)
            .unwrap_or(DEFAULT_HTTPS_USER);
        if allowed.contains(CredentialType::USERNAME) && !tried.contains(CredentialType::USERNAME) {
            tried |= CredentialType::USERNAME;
            return Cred::username(user);
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            if tried.contains(CredentialType::SSH_KEY) {
                return refuse("ssh key rejected by the server".into());
            }
            if let Some(key) = &credential.ssh_private_key {
                tried |= CredentialType::SSH_KEY;
                let passphrase = credential
                    .ssh_passphrase
                    .as_ref()
                    .map(|p| p.expose_secret());
                return Cred::ssh_key_from_memory(user, None, key.expose_secret(), passphrase);
            }
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if tried.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return refuse("username or password rejected by the server".into());
            }
            if let Some(password) = &credential.password {
                tried |= CredentialType::USER_PASS_PLAINTEXT;
                return Cred::userpass_plaintext(user, password.expose_secret());
            }
        }
        refuse(format!(
            "the matching credential ({:?}) has no secret of an accepted kind ({allowed:?})",
            credential.url_prefix
        ))
    });
    let known_hosts = credential.and_then(|c| c.ssh_known_hosts.clone());
    let ca_pem = credential.and_then(|c| c.ca_cert_pem.clone());
    callbacks.certificate_check(move |cert, host| {
        if let Some(hostkey) = cert.as_hostkey() {
            let Some(known_hosts) = &known_hosts else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let Some(key) = hostkey.hostkey() else {
                let reason = format!("ssh host {host} sent no host key");
                outcome.borrow_mut().untrusted = Some(reason.clone());
                return Err(git2::Error::from_str(&reason));
            };
            return match check_known_hosts(known_hosts, host, key) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(reason) => {
                    outcome.borrow_mut().untrusted = Some(reason.clone());
                    Err(git2::Error::from_str(&reason))
                }
            };
        }
        if let Some(x509) = cert.as_x509() {
            let Some(ca_pem) = &ca_pem else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            return match check_pinned_ca(ca_pem, x509.data(), host) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(reason) => {
                    outcome.borrow_mut().untrusted = Some(reason.clone());
                    Err(git2::Error::from_str(&reason))
                }
            };
        }
        Ok(CertificateCheckStatus::CertificatePassthrough)
    });
    callbacks
}

/// Accepts `key` (the raw ssh host key blob) only if a `known_hosts` line for `host` carries exactly it.
///
/// Plain host patterns (`host`, `[host]:port`, comma-separated) are supported; hashed (`|1|…`) and
/// wildcard entries are ignored, `@revoked` lines reject the key.
pub(crate) fn check_known_hosts(known_hosts: &str, host: &str, key: &[u8]) -> Result<(), String> {
    let mut host_listed = false;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let mut revoked = false;
        if first.starts_with('@') {
            revoked = first == "@revoked";
            first = fields.next().unwrap_or_default();
        }
        let (Some(_key_type), Some(encoded)) = (fields.next(), fields.next()) else {
            continue;
        };
        let matches_host = first.split(',').any(|pattern| {
            let pattern = pattern
                .strip_prefix('[')
                .and_then(|p| p.split_once("]:"))
                .map_or(pattern, |(name, _port)| name);
            pattern.eq_ignore_ascii_case(host)
        });
        if !matches_host {
            continue;
        }
        host_listed = true;
        let Ok(listed) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        if listed == key {
            if revoked {
                return Err(format!("the host key of {host} is revoked in known_hosts"));
            }
            return Ok(());
        }
    }
    if host_listed {
        Err(format!(
            "the host key of {host} does not match known_hosts (possible man-in-the-middle)"
        ))
    } else {
        Err(format!("host {host} is not in known_hosts"))
    }
}

/// Accepts the server's leaf certificate only if the pinned CA signed it and it is valid for `host`.
///
/// libgit2 hands over the leaf only, so the CA must sign the leaf directly (pin an intermediate if needed).
pub(crate) fn check_pinned_ca(ca_pem: &str, leaf_der: &[u8], host: &str) -> Result<(), String> {
    let anchors_der: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(ca_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|error| format!("the pinned CA is not valid PEM: {error}"))?;
    if anchors_der.is_empty() {
        return Err("the pinned CA PEM holds no certificate".into());
    }
    let anchors = anchors_der
        .iter()
        .map(|der| webpki::anchor_from_trusted_cert(der).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("the pinned CA is not a usable certificate: {error}"))?;
    let leaf_der = CertificateDer::from(leaf_der);
    let leaf = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|error| format!("the server certificate of {host} is unreadable: {error}"))?;
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|error| {
        format!("the server certificate of {host} is not signed by the pinned CA: {error}")
    })?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|error| format!("{host:?} is not a valid server name: {error}"))?;
    leaf.verify_is_valid_for_subject_name(&name)
        .map_err(|error| format!("the server certificate is not valid for {host}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_matches_exact_key_for_host() {
        let key = b"ssh-ed25519-blob";
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        let known = format!(
            "# comment\nother.example ssh-ed25519 AAAA\n[git.example]:2222,10.0.0.1 ssh-ed25519 {encoded}\n"
        );
        assert!(check_known_hosts(&known, "git.example", key).is_ok());
        assert!(check_known_hosts(&known, "10.0.0.1", key).is_ok());
        let wrong = check_known_hosts(&known, "git.example", b"other");
        assert!(wrong.is_err_and(|e| e.contains("does not match")));
        let unknown = check_known_hosts(&known, "new.example", key);
        assert!(unknown.is_err_and(|e| e.contains("not in known_hosts")));
        let revoked = format!("@revoked git.example ssh-ed25519 {encoded}\n");
        assert!(check_known_hosts(&revoked, "git.example", key).is_err());
    }

    #[test]
    fn pinned_ca_rejects_garbage() {
        assert!(check_pinned_ca("not pem", b"x", "localhost").is_err());
    }
}
