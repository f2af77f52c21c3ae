//! Enrollment and renewal at the spoke: a key pair generated here (it never leaves), a CSR, `Enroll` with the bootstrap token over TLS pinned to the hub CA hash, the identity kept in a Secret of the spoke's namespace and reused on restart, and renewal over the live stream.
//!
//! ```text
//!   start ─► Secret edgecd-spoke-identity? ──yes, unexpired──► use it
//!                      └─no─► key+CSR ─Enroll(token)─► verify CA pin, key match ─► Secret ─► use it
//!   stream: renew_at (2/3 of lifetime) ─► RenewRequest(new CSR) ─► RenewResponse ─► Secret, next connection uses it
//!   before a connection (or at start) with a certificate expired or in its last sixth:
//!           RenewCertificate(certificate, CSR of the same key) over server-auth TLS ─► Secret, connect with it
//!           (the hub accepts a certificate expired less than its grace ago; beyond: a new bootstrap token)
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use edgecd_proto::v1::spoke_service_client::SpokeServiceClient;
use edgecd_proto::v1::{EnrollRequest, RenewCertificateRequest, RenewResponse};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use time::OffsetDateTime;

use super::tls::{self, SpokeIdentity, TlsError};

/// Name of the Secret holding the spoke's key, certificate and hub CA.
pub const IDENTITY_SECRET: &str = "edgecd-spoke-identity";
const FIELD_MANAGER: &str = "edgecd-spoke";

/// Why enrollment, renewal or identity storage failed. Never contains the token or key.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("malformed bootstrap token: {0}")]
    Token(&'static str),
    #[error("no hub CA hash: the bootstrap token carries none and --hub-ca-hash was not given")]
    NoCaHash,
    #[error("the hub CA hash of --hub-ca-hash ({flag}) differs from the token's ({token})")]
    CaHashConflict { flag: String, token: String },
    #[error("the hub sent CA {actual}, but the bootstrap token pins {pinned}")]
    CaMismatch { pinned: String, actual: String },
    #[error("the hub issued a certificate for another key")]
    KeyMismatch,
    #[error("the hub refused enrollment: {0}")]
    Refused(String),
    #[error("the hub refused renewal: {0}")]
    RenewalRefused(String),
    #[error("the hub does not offer renewal of an expired certificate: {0}")]
    RenewalUnsupported(String),
    #[error("no renewal was requested")]
    NoPendingRenewal,
    #[error("cannot generate a key or CSR: {0}")]
    Key(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("identity Secret {namespace}/{name}: {reason}")]
    Secret {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// A secret flag value (the bootstrap token): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for SecretText {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// What `Enroll` needs.
#[derive(Clone)]
pub struct EnrollParams {
    /// `https://host:port` of the hub.
    pub hub_address: String,
    /// `<id>.<secret>[.sha256:<hex>]`; a secret.
    pub bootstrap_token: String,
    /// `sha256:<hex>` of the hub CA, if not in the token.
    pub ca_hash: Option<String>,
    pub spoke_version: String,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for EnrollParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollParams")
            .field("hub_address", &self.hub_address)
            .field("bootstrap_token", &"<redacted>")
            .field("ca_hash", &self.ca_hash)
            .finish_non_exhaustive()
    }
}

fn normalise_hash(text: &str) -> Result<String, EnrollError> {
    let hex = text
        .trim()
        .strip_prefix("sha256:")
        .ok_or(EnrollError::Token("the CA hash must start with sha256:"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EnrollError::Token("the CA hash must be 64 hex digits"));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// The CA pin to use: from the token, the flag, or both if they agree.
pub fn pinned_ca_hash(token: &str, flag: Option<&str>) -> Result<String, EnrollError> {
    let mut parts = token.trim().splitn(3, '.');
    let (_id, secret) = (parts.next(), parts.next());
    if secret.is_none() {
        return Err(EnrollError::Token("expected <id>.<secret>.sha256:<hex>"));
    }
    let from_token = parts.next().map(normalise_hash).transpose()?;
    let from_flag = flag
        .filter(|f| !f.trim().is_empty())
        .map(normalise_hash)
        .transpose()?;
    match (from_token, from_flag) {
        (Some(token), Some(flag)) if token != flag => {
            Err(EnrollError::CaHashConflict { flag, token })
        }
        (Some(hash), _) | (None, Some(hash)) => Ok(hash),
        (None, None) => Err(EnrollError::NoCaHash),
    }
}

/// A fresh key pair and a CSR for it: (key PEM, CSR PEM).
pub fn new_key_and_csr() -> Result<(String, String), EnrollError> {
    let key = rcgen::KeyPair::generate().map_err(|e| EnrollError::Key(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "edgecd-spoke");
    let csr = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| EnrollError::Key(e.to_string()))?;
    Ok((key.serialize_pem(), csr))
}

/// First contact with the hub: generates the key, sends the CSR with the
/// token over TLS pinned to the hub CA, and checks the answer.
#[tracing::instrument(skip_all, fields(hub = %params.hub_address))]
pub async fn enroll(params: &EnrollParams) -> Result<SpokeIdentity, EnrollError> {
    let pin = pinned_ca_hash(&params.bootstrap_token, params.ca_hash.as_deref())?;
    let (key_pem, csr_pem) = new_key_and_csr()?;
    let channel = tls::channel(
        &params.hub_address,
        tls::pinned_config(&pin)?,
        params.connect_timeout,
    )
    .await?;
    let response = SpokeServiceClient::new(channel)
        .enroll(EnrollRequest {
            bootstrap_token: params.bootstrap_token.trim().to_owned(),
            csr_pem,
            spoke_version: params.spoke_version.clone(),
        })
        .await
        .map_err(|status| EnrollError::Refused(status.message().to_owned()))?
        .into_inner();
    let identity = SpokeIdentity {
        cluster: response.cluster_name,
        key_pem,
        cert_pem: response.certificate_pem,
        ca_pem: response.ca_bundle_pem,
    };
    let actual = identity.ca_hash()?;
    if actual != pin {
        return Err(EnrollError::CaMismatch {
            pinned: pin,
            actual,
        });
    }
    if !identity.key_matches()? {
        return Err(EnrollError::KeyMismatch);
    }
    tracing::info!(cluster = %identity.cluster, "Enrolled with the hub.");
    Ok(identity)
}

/// Where and how to reach the hub for `RenewCertificate`.
#[derive(Debug, Clone)]
pub struct RenewParams {
    /// `https://host:port` of the hub.
    pub hub_address: String,
    pub spoke_version: String,
    pub connect_timeout: Duration,
}

/// A CSR for the key of `identity` (its signature proves possession of the certificate's key).
pub fn csr_for_key(identity: &SpokeIdentity) -> Result<String, EnrollError> {
    let key =
        rcgen::KeyPair::from_pem(&identity.key_pem).map_err(|e| EnrollError::Key(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "edgecd-spoke");
    params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| EnrollError::Key(e.to_string()))
}

/// `RenewCertificate`: presents the current (possibly expired) certificate and a CSR for its key over
/// TLS that verifies the hub against the identity's CA, and checks the answer (same cluster, same CA, the
/// same key). The hub accepts it for a certificate expired less than its renewal grace ago.
#[tracing::instrument(skip_all, fields(hub = %params.hub_address, cluster = %identity.cluster))]
pub async fn renew_certificate(
    params: &RenewParams,
    identity: &SpokeIdentity,
) -> Result<SpokeIdentity, EnrollError> {
    let csr_pem = csr_for_key(identity)?;
    let channel = tls::channel(
        &params.hub_address,
        tls::server_auth_config(identity)?,
        params.connect_timeout,
    )
    .await?;
    let response = SpokeServiceClient::new(channel)
        .renew_certificate(RenewCertificateRequest {
            certificate_pem: identity.cert_pem.clone(),
            csr_pem,
            spoke_version: params.spoke_version.clone(),
        })
        .await
        .map_err(|status| match status.code() {
            tonic::Code::Unimplemented => {
                EnrollError::RenewalUnsupported(status.message().to_owned())
            }
            _ => EnrollError::RenewalRefused(status.message().to_owned()),
        })?
        .into_inner();
    if response.cluster_name != identity.cluster {
        return Err(EnrollError::RenewalRefused(format!(
            "the hub renewed the certificate for cluster {}, but this spoke is {}",
            response.cluster_name, identity.cluster
        )));
    }
    let next = SpokeIdentity {
        cluster: identity.cluster.clone(),
        key_pem: identity.key_pem.clone(),
        cert_pem: response.certificate_pem,
        ca_pem: if response.ca_bundle_pem.is_empty() {
            identity.ca_pem.clone()
        } else {
            response.ca_bundle_pem
        },
    };
    if next.ca_hash()? != identity.ca_hash()? {
        return Err(EnrollError::CaMismatch {
            pinned: identity.ca_hash()?,
            actual: next.ca_hash()?,
        });
    }
    if !next.key_matches()? {
        return Err(EnrollError::KeyMismatch);
    }
    tracing::info!("Hub certificate renewed with RenewCertificate.");
    Ok(next)
}

/// The identity Secret in the spoke's namespace.
#[derive(Clone)]
pub struct IdentitySecret {
    api: Api<Secret>,
    namespace: String,
}

impl std::fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySecret")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl IdentitySecret {
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> EnrollError {
        EnrollError::Secret {
            namespace: self.namespace.clone(),
            name: IDENTITY_SECRET.into(),
            reason: reason.to_string(),
        }
    }

    /// The stored identity, if there is a complete one.
    pub async fn load(&self) -> Result<Option<SpokeIdentity>, EnrollError> {
        let Some(secret) = self
            .api
            .get_opt(IDENTITY_SECRET)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let field = |name: &str| {
            data.get(name)
                .and_then(|v| String::from_utf8(v.0.clone()).ok())
                .filter(|v| !v.is_empty())
        };
        match (
            field("cluster"),
            field("tls.key"),
            field("tls.crt"),
            field("ca.crt"),
        ) {
            (Some(cluster), Some(key_pem), Some(cert_pem), Some(ca_pem)) => {
                Ok(Some(SpokeIdentity {
                    cluster,
                    key_pem,
                    cert_pem,
                    ca_pem,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Writes the identity (server-side apply).
    pub async fn save(&self, identity: &SpokeIdentity) -> Result<(), EnrollError> {
        let data: BTreeMap<String, ByteString> = [
            ("cluster", &identity.cluster),
            ("tls.key", &identity.key_pem),
            ("tls.crt", &identity.cert_pem),
            ("ca.crt", &identity.ca_pem),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect();
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(IDENTITY_SECRET.into()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_owned(),
                    "edgecd-spoke".to_owned(),
                )])),
                ..Default::default()
            },
            type_: Some("Opaque".into()),
            data: Some(data),
            ..Default::default()
        };
        self.api
            .patch(
                IDENTITY_SECRET,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

/// The stored identity if it is still valid and bound to `cluster`, else a
/// new one from `Enroll` (then stored).
pub async fn ensure_identity(
    secret: &IdentitySecret,
    cluster: &str,
    params: Option<&EnrollParams>,
) -> Result<SpokeIdentity, EnrollError> {
    let renew = params.map(|p| RenewParams {
        hub_address: p.hub_address.clone(),
        spoke_version: p.spoke_version.clone(),
        connect_timeout: p.connect_timeout,
    });
    obtain_identity(secret, cluster, renew.as_ref(), params).await
}

/// The stored identity if it is still valid and bound to `cluster`; if it expired, a renewed one from
/// `RenewCertificate` (with `renew`: the hub's grace path, no token needed); else a new one from `Enroll`
/// (with `params`). A new identity is stored in the Secret.
pub async fn obtain_identity(
    secret: &IdentitySecret,
    cluster: &str,
    renew: Option<&RenewParams>,
    params: Option<&EnrollParams>,
) -> Result<SpokeIdentity, EnrollError> {
    let mut renewal_error = None;
    if let Some(identity) = secret.load().await? {
        let ours = identity.cluster == cluster && identity.key_matches().unwrap_or(false);
        let fresh = identity
            .validity()
            .is_ok_and(|(_, not_after)| not_after > OffsetDateTime::now_utc());
        if ours && fresh {
            tracing::info!(%cluster, "Reusing the stored hub identity.");
            return Ok(identity);
        }
        if ours && let Some(renew) = renew {
            tracing::warn!(%cluster, "The stored hub certificate expired; renewing it through the hub's grace.");
            match renew_certificate(renew, &identity).await {
                Ok(next) => {
                    secret.save(&next).await?;
                    return Ok(next);
                }
                Err(error) => {
                    tracing::warn!(%error, "Cannot renew the expired hub certificate.");
                    renewal_error = Some(error);
                }
            }
        } else {
            tracing::warn!(%cluster, "The stored hub identity is expired or for another cluster; enrolling again.");
        }
    }
    let Some(params) = params else {
        return Err(renewal_error.unwrap_or_else(|| {
            EnrollError::Refused(
                "no valid stored identity and no --bootstrap-token to enroll with".into(),
            )
        }));
    };
    let identity = enroll(params).await?;
    if identity.cluster != cluster {
        return Err(EnrollError::Refused(format!(
            "the bootstrap token is for cluster {}, but this spoke is {cluster}",
            identity.cluster
        )));
    }
    secret.save(&identity).await?;
    Ok(identity)
}

/// The current identity of a running spoke, renewed over the stream.
pub struct IdentityManager {
    current: Mutex<SpokeIdentity>,
    /// Key of a renewal in flight.
    pending_key: Mutex<Option<String>>,
    secret: Option<IdentitySecret>,
}

impl std::fmt::Debug for IdentityManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityManager")
            .field("cluster", &self.current().cluster)
            .finish_non_exhaustive()
    }
}

impl IdentityManager {
    /// `secret`: where renewed identities are stored (`None`: memory only).
    pub fn new(identity: SpokeIdentity, secret: Option<IdentitySecret>) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(identity),
            pending_key: Mutex::new(None),
            secret,
        })
    }

    pub fn current(&self) -> SpokeIdentity {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the current certificate should be renewed.
    pub fn renew_at(&self) -> Result<OffsetDateTime, EnrollError> {
        Ok(self.current().renew_at()?)
    }

    /// Renews the certificate with `RenewCertificate` if it expired or is in the last sixth of its lifetime
    /// (before connecting: an expired certificate cannot open the stream). Returns whether it renewed.
    #[tracing::instrument(skip_all, fields(cluster = %self.current().cluster))]
    pub async fn renew_before_connect(&self, params: &RenewParams) -> Result<bool, EnrollError> {
        let identity = self.current();
        if !identity.needs_renewal_before_connect(OffsetDateTime::now_utc())? {
            return Ok(false);
        }
        let next = renew_certificate(params, &identity).await?;
        if let Some(secret) = &self.secret {
            secret.save(&next).await?;
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(true)
    }

    /// A CSR for a fresh key, remembered until the answer arrives.
    pub fn renewal_csr(&self) -> Result<String, EnrollError> {
        let (key, csr) = new_key_and_csr()?;
        *self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(csr)
    }

    /// Takes the hub's answer: the new certificate replaces the current one
    /// (and the Secret) if it is for the pending key and the same CA.
    pub async fn renewed(&self, response: &RenewResponse) -> Result<(), EnrollError> {
        if !response.error.is_empty() {
            return Err(EnrollError::RenewalRefused(response.error.clone()));
        }
        let key_pem = self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(EnrollError::NoPendingRenewal)?;
        let old = self.current();
        let next = SpokeIdentity {
            cluster: old.cluster.clone(),
            key_pem,
            cert_pem: response.certificate_pem.clone(),
            ca_pem: if response.ca_bundle_pem.is_empty() {
                old.ca_pem.clone()
            } else {
                response.ca_bundle_pem.clone()
            },
        };
        if next.ca_hash()? != old.ca_hash()? {
            return Err(EnrollError::CaMismatch {
                pinned: old.ca_hash()?,
                actual: next.ca_hash()?,
            });
        }
        if !next.key_matches()? {
            return Err(EnrollError::KeyMismatch);
        }
        if let Some(secret) = &self.secret {
            secret.save(&next).await?;
        }
        *self
            .pending_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = next;
        tracing::info!("Hub certificate renewed; the next connection uses it.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_comes_from_the_token_or_the_flag() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        let other = format!("sha256:{}", "cd".repeat(32));
        let token = format!("abcdefgh.{}.{hash}", "s".repeat(32));
        assert_eq!(pinned_ca_hash(&token, None).unwrap(), hash);
        assert_eq!(pinned_ca_hash(&token, Some(&hash)).unwrap(), hash);
        assert!(matches!(
            pinned_ca_hash(&token, Some(&other)),
            Err(EnrollError::CaHashConflict { .. })
        ));
        let bare = format!("abcdefgh.{}", "s".repeat(32));
        assert_eq!(pinned_ca_hash(&bare, Some(&other)).unwrap(), other);
        assert!(matches!(
            pinned_ca_hash(&bare, None),
            Err(EnrollError::NoCaHash)
        ));
    }
}
