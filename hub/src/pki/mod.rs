//! The hub's PKI: the CA (generated on first start and sealed in the store, or supplied by the operator), one-time bootstrap tokens, enrollment, renewal, revocation, and the certificate checks of the spoke link.
//!
//! ```text
//!   CreateCluster ─► create_bootstrap_token ─► "<id>.<secret>.sha256:<ca>"  (hash stored, shown once)
//!   spoke ─Enroll(token, CSR)─► enroll: token checked ─► CSR signed for the token's cluster
//!                               └─ one transaction: token used + certificate recorded (any replica)
//!   spoke ─Connect (mTLS)─► authorize_peer: chain (rustls) + serial known, live, unexpired, cluster's
//!   RenewRequest on the stream ─► renew ─► RenewResponse
//!   revoke_cluster ─► cluster + certificates revoked ─► REVOKED_CHANNEL ─► streams closed everywhere
//! ```

pub mod ca;
pub mod repos;
pub mod seal;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

pub use self::ca::{CaError, CertIdentity, HubCa, Issued, cert_identity, sha256_pin};
pub use self::seal::{MASTER_KEY_ENV, MasterKey, SealError};
pub use self::token::{BootstrapToken, TokenFormatError, parse_ca_hash};
use crate::store::model::Redacted;
use crate::store::security::{BootstrapTokenRecord, CertificateRecord, StoredCa};
use crate::store::{SecurityStore, Store, StoreError};

/// Purpose (associated data) of the sealed CA key.
const CA_KEY_PURPOSE: &str = "hub-ca-key";
/// Clock skew tolerated on a new certificate's `not_before` (at most a
/// tenth of the lifetime, so that renewal at two thirds stays ahead).
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// Lifetimes of what the PKI issues.
#[derive(Debug, Clone)]
pub struct PkiConfig {
    /// Client certificate lifetime (default 24 h).
    pub client_cert_lifetime: Duration,
    /// Default bootstrap token lifetime (1 h).
    pub token_ttl: Duration,
    /// Rate limits on failed `Enroll` attempts, per peer IP and per bootstrap-token id.
    pub enroll_limits: crate::limit::AttemptLimits,
}

impl Default for PkiConfig {
    fn default() -> Self {
        Self {
            client_cert_lifetime: Duration::from_secs(24 * 3600),
            token_ttl: Duration::from_secs(3600),
            enroll_limits: crate::limit::AttemptLimits::enroll_default(),
        }
    }
}

/// Why a PKI call failed. Messages name the object and the cause and never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    TokenFormat(#[from] TokenFormatError),
    #[error("bootstrap token {id} is unknown")]
    UnknownToken { id: String },
    #[error("bootstrap token {id} was already used")]
    TokenUsed { id: String },
    #[error("bootstrap token {id} expired at {at}")]
    TokenExpired { id: String, at: OffsetDateTime },
    #[error("bootstrap token {id}: wrong secret")]
    TokenSecret { id: String },
    #[error("bootstrap token {id} pins CA {pinned}, but this hub's CA is {actual}")]
    TokenCaMismatch {
        id: String,
        pinned: String,
        actual: String,
    },
    #[error("cluster {cluster} is not registered at this hub")]
    UnknownCluster { cluster: String },
    #[error("cluster {cluster} has been revoked")]
    ClusterRevoked { cluster: String },
    #[error("no client certificate: the stream needs the spoke's certificate (mTLS)")]
    NoClientCertificate,
    #[error("certificate {serial} of cluster {cluster} was not issued by this hub")]
    UnknownCertificate { serial: String, cluster: String },
    #[error("certificate {serial} of cluster {cluster} has been revoked")]
    CertificateRevoked { serial: String, cluster: String },
    #[error("certificate {serial} of cluster {cluster} expired at {at}")]
    CertificateExpired {
        serial: String,
        cluster: String,
        at: OffsetDateTime,
    },
    #[error(
        "certificate {serial} of cluster {cluster} expired at {at}, more than the renewal grace of {grace_secs}s ago: enroll again with a new bootstrap token"
    )]
    CertificateExpiredBeyondGrace {
        serial: String,
        cluster: String,
        at: OffsetDateTime,
        grace_secs: u64,
    },
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("the hub's database failed: {0}")]
    Store(#[from] StoreError),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error(transparent)]
    Limited(#[from] crate::limit::Limited),
}

impl PkiError {
    /// The gRPC status for a peer; store details stay in the logs.
    pub fn into_status(self) -> tonic::Status {
        use tonic::Status;
        match &self {
            Self::TokenFormat(_) | Self::Ca(CaError::Csr(_)) => {
                Status::invalid_argument(self.to_string())
            }
            Self::UnknownToken { .. }
            | Self::TokenUsed { .. }
            | Self::TokenExpired { .. }
            | Self::TokenSecret { .. }
            | Self::NoClientCertificate
            | Self::Ca(CaError::BadCertificate(_)) => Status::unauthenticated(self.to_string()),
            Self::TokenCaMismatch { .. } => Status::failed_precondition(self.to_string()),
            Self::Limited(limited) => {
                let mut status = Status::resource_exhausted(self.to_string());
                let seconds = limited.retry_after.as_secs().max(1).to_string();
                if let Ok(value) = seconds.parse() {
                    status.metadata_mut().insert("retry-after", value);
                }
                status
            }
            Self::UnknownCluster { .. }
            | Self::ClusterRevoked { .. }
            | Self::UnknownCertificate { .. }
            | Self::CertificateRevoked { .. }
            | Self::CertificateExpired { .. }
            | Self::CertificateExpiredBeyondGrace { .. } => {
                Status::permission_denied(self.to_string())
            }
            Self::Store(error) if error.is_transient() => crate::retry::database_unavailable(),
            Self::Store(_) | Self::Ca(_) | Self::Seal(_) | Self::Tls(_) => {
                Status::internal("the hub could not complete the request; see the hub's logs")
            }
        }
    }
}

/// A new bootstrap token, shown once.
#[derive(Clone)]
pub struct NewBootstrapToken {
    /// The whole token text (`<id>.<secret>.sha256:<hex>`); a secret.
    pub token: String,
    pub id: String,
    pub cluster: String,
    pub expires_at: OffsetDateTime,
    pub ca_hash: String,
}

impl std::fmt::Debug for NewBootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewBootstrapToken")
            .field("id", &self.id)
            .field("cluster", &self.cluster)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The answer to a successful enrollment or renewal.
#[derive(Debug, Clone)]
pub struct IssuedClient {
    pub cluster: String,
    pub certificate_pem: String,
    pub ca_pem: String,
    pub serial: String,
    pub not_after: OffsetDateTime,
}

/// Where the CA comes from.
#[derive(Debug)]
pub enum CaSource<'a> {
    /// Load the CA from the store, or generate and store one (sealed with the master key).
    Store(&'a MasterKey),
    /// Operator-supplied certificate and key (PEM); nothing is stored.
    Supplied { cert_pem: &'a str, key_pem: &'a str },
}

/// The hub's PKI service, shared by the link and the API.
#[derive(Debug)]
pub struct Pki {
    ca: HubCa,
    /// Seals repository credentials (the master key); `None` with a supplied CA and no key.
    sealer: Option<Arc<MasterKey>>,
    fleet: Arc<dyn Store>,
    security: Arc<dyn SecurityStore>,
    config: PkiConfig,
    /// Failed enrollments per IP and per token id.
    enroll_limiter: crate::limit::AttemptLimiter,
}

impl Pki {
    /// Opens the PKI: loads or creates the CA.
    pub async fn open(
        fleet: Arc<dyn Store>,
        security: Arc<dyn SecurityStore>,
        source: CaSource<'_>,
        config: PkiConfig,
    ) -> Result<Self, PkiError> {
        let ca = match source {
            CaSource::Supplied { cert_pem, key_pem } => HubCa::from_pem(cert_pem, key_pem)?,
            CaSource::Store(master) => load_or_create_ca(security.as_ref(), master).await?,
        };
        tracing::info!(ca_hash = %ca.ca_hash(), "Hub CA ready.");
        let enroll_limiter = crate::limit::AttemptLimiter::new(
            "enrollment",
            "bootstrap token",
            &config.enroll_limits,
        );
        Ok(Self {
            ca,
            sealer: None,
            fleet,
            security,
            config,
            enroll_limiter,
        })
    }

    /// Seals repository credentials with `master`.
    pub fn with_sealer(mut self, master: Arc<MasterKey>) -> Self {
        self.sealer = Some(master);
        self
    }

    /// The master key, for repository credentials.
    pub fn sealer(&self) -> Option<&MasterKey> {
        self.sealer.as_deref()
    }

    pub fn fleet(&self) -> &Arc<dyn Store> {
        &self.fleet
    }

    pub fn ca(&self) -> &HubCa {
        &self.ca
    }

    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    pub fn ca_hash(&self) -> String {
        self.ca.ca_hash()
    }

    pub fn config(&self) -> &PkiConfig {
        &self.config
    }

    pub fn security(&self) -> &Arc<dyn SecurityStore> {
        &self.security
    }

    /// A one-time token for `cluster` (which must be registered), valid for
    /// `ttl` (default from the config).
    #[tracing::instrument(skip(self), fields(cluster))]
    pub async fn create_bootstrap_token(
        &self,
        cluster: &str,
        ttl: Option<Duration>,
    ) -> Result<NewBootstrapToken, PkiError> {
        self.registered(cluster).await?;
        let token = BootstrapToken::generate(&self.ca_hash())?;
        let now = OffsetDateTime::now_utc();
        let expires_at = now + ttl.unwrap_or(self.config.token_ttl);
        self.security
            .create_bootstrap_token(&BootstrapTokenRecord {
                id: token.id.clone(),
                cluster: cluster.to_owned(),
                secret_hash: Redacted(token.secret_hash()),
                created_at: now,
                expires_at,
                used_at: None,
            })
            .await?;
        tracing::info!(token_id = %token.id, %expires_at, "Bootstrap token created.");
        Ok(NewBootstrapToken {
            token: token.to_text(),
            id: token.id.clone(),
            cluster: cluster.to_owned(),
            expires_at,
            ca_hash: self.ca_hash(),
        })
    }

    /// `Enroll` from `peer`, rate-limited: failed attempts are limited per peer IP and per token id
    /// ([`PkiError::Limited`], even for the right token, until the bucket refills); a successful
    /// enrollment costs nothing.
    pub async fn enroll_from(
        &self,
        peer: Option<std::net::IpAddr>,
        token_text: &str,
        csr_pem: &str,
    ) -> Result<IssuedClient, PkiError> {
        // The id as written (never the secret); a malformed token is limited per IP only.
        let token_id = BootstrapToken::parse(token_text)
            .map(|t| t.id)
            .unwrap_or_default();
        self.enroll_limiter.admit(peer, &token_id).inspect_err(
            |limited| tracing::warn!(%limited, "Enrollment refused by the rate limit."),
        )?;
        let issued = self.enroll(token_text, csr_pem).await?;
        self.enroll_limiter.succeeded(peer, &token_id);
        Ok(issued)
    }

    /// `Enroll`: checks the token, signs the CSR for the token's cluster, and
    /// consumes the token and records the certificate in one transaction.
    #[tracing::instrument(skip_all, fields(token_id, cluster))]
    pub async fn enroll(&self, token_text: &str, csr_pem: &str) -> Result<IssuedClient, PkiError> {
        let token = BootstrapToken::parse(token_text)?;
        tracing::Span::current().record("token_id", token.id.as_str());
        if let Some(pinned) = &token.ca_hash
            && *pinned != self.ca_hash()
        {
            return Err(PkiError::TokenCaMismatch {
                id: token.id.clone(),
                pinned: pinned.clone(),
                actual: self.ca_hash(),
            });
        }
        let record = match self.security.get_bootstrap_token(&token.id).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => {
                return Err(PkiError::UnknownToken { id: token.id });
            }
            Err(error) => return Err(error.into()),
        };
        tracing::Span::current().record("cluster", record.cluster.as_str());
        let now = OffsetDateTime::now_utc();
        check_token(&token, &record, now)?;
        self.registered(&record.cluster).await?;
        let issued = self.issue(csr_pem, &record.cluster, now)?;
        let certificate = certificate_record(&record.cluster, &issued, now);
        let consumed = self
            .security
            .consume_bootstrap_token(&token.id, &token.secret_hash(), now, &certificate)
            .await?;
        if !consumed {
            // Lost a race with another enrollment (on any replica): say why.
            let record = self.security.get_bootstrap_token(&token.id).await?;
            check_token(&token, &record, now)?;
            return Err(PkiError::TokenUsed { id: token.id });
        }
        tracing::info!(serial = %issued.serial, not_after = %issued.not_after, "Spoke enrolled.");
        Ok(self.answer(&record.cluster, issued))
    }

    /// Renewal over a live, authenticated stream of `cluster`.
    #[tracing::instrument(skip(self, csr_pem))]
    pub async fn renew(&self, cluster: &str, csr_pem: &str) -> Result<IssuedClient, PkiError> {
        self.registered(cluster).await?;
        let now = OffsetDateTime::now_utc();
        let issued = self.issue(csr_pem, cluster, now)?;
        self.security
            .record_certificate(&certificate_record(cluster, &issued, now))
            .await?;
        tracing::info!(serial = %issued.serial, not_after = %issued.not_after, "Spoke certificate renewed.");
        Ok(self.answer(cluster, issued))
    }

    /// `RenewCertificate`: the way back for a spoke whose certificate expired while it could not renew on
    /// the stream. `certificate_pem` is its current certificate and `csr_pem` a CSR for the same key (the
    /// CSR's signature proves possession of that key; this call has no client certificate at the TLS level).
    /// The certificate must be signed by this hub's CA (checked as of its own expiry, the only check relaxed),
    /// recorded as issued to its cluster, not revoked, the cluster registered and not revoked, and it must
    /// have expired less than `grace` ago (an unexpired one is accepted too). A foreign, unknown, revoked
    /// certificate, or one expired longer ago, never renews. Issues a fresh certificate for the same cluster.
    #[tracing::instrument(skip_all, fields(cluster, serial))]
    pub async fn renew_expired(
        &self,
        certificate_pem: &str,
        csr_pem: &str,
        grace: Duration,
    ) -> Result<IssuedClient, PkiError> {
        let now = OffsetDateTime::now_utc();
        let identity = self.verify_issued_ignoring_expiry(certificate_pem, now)?;
        tracing::Span::current().record("cluster", identity.cluster.as_str());
        tracing::Span::current().record("serial", identity.serial.as_str());
        let grace_time = time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO);
        if identity.not_after + grace_time <= now {
            return Err(PkiError::CertificateExpiredBeyondGrace {
                serial: identity.serial,
                cluster: identity.cluster,
                at: identity.not_after,
                grace_secs: grace.as_secs(),
            });
        }
        // Proof of possession: the CSR (its signature verified) is for the certificate's own key.
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::Csr(e.to_string()))?;
        if rcgen::PublicKeyData::der_bytes(&csr.public_key)
            != identity_key(certificate_pem)?.as_slice()
        {
            return Err(PkiError::Ca(CaError::Csr(
                "the CSR is not for the key of the presented certificate".into(),
            )));
        }
        self.check_still_valid(&identity).await?;
        let issued = self.issue(csr_pem, &identity.cluster, now)?;
        self.security
            .record_certificate(&certificate_record(&identity.cluster, &issued, now))
            .await?;
        tracing::info!(
            expired_at = %identity.not_after,
            new_serial = %issued.serial,
            not_after = %issued.not_after,
            "Spoke certificate renewed through the expiry grace."
        );
        Ok(self.answer(&identity.cluster, issued))
    }

    /// The identity of a PEM client certificate that this hub's CA signed (chain, signature, client-auth
    /// usage), checked as of the certificate's own validity so that an expired one passes; the caller
    /// decides about expiry.
    fn verify_issued_ignoring_expiry(
        &self,
        certificate_pem: &str,
        now: OffsetDateTime,
    ) -> Result<CertIdentity, PkiError> {
        use rustls_pki_types::pem::PemObject as _;
        let bad = |reason: String| PkiError::Ca(CaError::BadCertificate(reason));
        let leaf = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| bad(format!("no PEM certificate: {e}")))?;
        let identity = cert_identity(leaf.as_ref())?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.cert_der().to_vec()))
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| PkiError::Tls(e.to_string()))?;
        // The moment the chain is checked at: now, or the last second of the certificate's validity.
        let at = now.min(identity.not_after - time::Duration::SECOND);
        let at = Duration::try_from(at - OffsetDateTime::UNIX_EPOCH).unwrap_or_default();
        verifier
            .verify_client_cert(&leaf, &[], rustls_pki_types::UnixTime::since_unix_epoch(at))
            .map_err(|e| bad(format!("not issued by this hub's CA: {e}")))?;
        Ok(identity)
    }

    /// The cluster a verified client chain belongs to. rustls has checked
    /// the chain against the CA; this checks the hub's own records: the
    /// serial was issued to that cluster, is not revoked or expired, and
    /// the cluster is registered and not revoked.
    pub async fn authorize_peer(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Result<CertIdentity, PkiError> {
        let leaf = chain
            .and_then(|c| c.first())
            .ok_or(PkiError::NoClientCertificate)?;
        let identity = cert_identity(leaf.as_ref())?;
        if identity.not_after <= OffsetDateTime::now_utc() {
            return Err(PkiError::CertificateExpired {
                serial: identity.serial,
                cluster: identity.cluster,
                at: identity.not_after,
            });
        }
        self.check_still_valid(&identity).await?;
        Ok(identity)
    }

    /// Checks the records again: the serial was issued to the cluster and
    /// is not revoked, and the cluster is registered and not revoked.
    pub async fn check_still_valid(&self, identity: &CertIdentity) -> Result<(), PkiError> {
        let unknown = || PkiError::UnknownCertificate {
            serial: identity.serial.clone(),
            cluster: identity.cluster.clone(),
        };
        let record = match self.security.get_certificate(&identity.serial).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => return Err(unknown()),
            Err(error) => return Err(error.into()),
        };
        if record.cluster != identity.cluster {
            return Err(unknown());
        }
        if record.revoked_at.is_some() {
            return Err(PkiError::CertificateRevoked {
                serial: identity.serial.clone(),
                cluster: identity.cluster.clone(),
            });
        }
        self.registered(&identity.cluster).await
    }

    /// Revokes a cluster: the cluster record, every certificate it holds,
    /// and a notification that ends its stream on every replica.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_cluster(&self, cluster: &str) -> Result<(), PkiError> {
        let now = OffsetDateTime::now_utc();
        match self.fleet.revoke_cluster(cluster, now).await {
            Ok(()) => {}
            Err(StoreError::NotFound { .. }) => {
                return Err(PkiError::UnknownCluster {
                    cluster: cluster.to_owned(),
                });
            }
            Err(error) => return Err(error.into()),
        }
        let revoked = self.security.revoke_certificates(cluster, now).await?;
        self.fleet
            .notify(crate::store::REVOKED_CHANNEL, cluster)
            .await?;
        tracing::warn!(certificates = revoked, "Cluster revoked.");
        Ok(())
    }

    /// The rustls-backed TLS configuration of the hub's gRPC server: a
    /// server certificate for `names` signed by the hub CA, and client
    /// certificates verified against the CA but optional at the TLS level
    /// (`Enroll` has none; `Connect` requires one).
    pub fn server_tls_config(
        &self,
        names: &[String],
    ) -> Result<tonic::transport::ServerTlsConfig, PkiError> {
        let (chain, key) = self.ca.server_identity(names)?;
        Ok(tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(chain, key))
            .client_ca_root(tonic::transport::Certificate::from_pem(self.ca_pem()))
            .client_auth_optional(true))
    }

    async fn registered(&self, cluster: &str) -> Result<(), PkiError> {
        match self.fleet.get_cluster(cluster).await {
            Ok(record) if record.revoked_at.is_some() => Err(PkiError::ClusterRevoked {
                cluster: cluster.to_owned(),
            }),
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => Err(PkiError::UnknownCluster {
                cluster: cluster.to_owned(),
            }),
            Err(error) => Err(error.into()),
        }
    }

    fn issue(&self, csr_pem: &str, cluster: &str, now: OffsetDateTime) -> Result<Issued, PkiError> {
        let lifetime = time::Duration::try_from(self.config.client_cert_lifetime)
            .unwrap_or(time::Duration::DAY);
        let backdate = BACKDATE.min(lifetime / 10);
        Ok(self
            .ca
            .sign_client(csr_pem, cluster, now - backdate, now + lifetime)?)
    }

    fn answer(&self, cluster: &str, issued: Issued) -> IssuedClient {
        IssuedClient {
            cluster: cluster.to_owned(),
            certificate_pem: issued.pem,
            ca_pem: self.ca_pem().to_owned(),
            serial: issued.serial,
            not_after: issued.not_after,
        }
    }
}

/// The subject public key (bit string contents) of a PEM certificate.
fn identity_key(certificate_pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::pem::PemObject as _;
    let bad = |reason: String| PkiError::Ca(CaError::BadCertificate(reason));
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .map_err(|e| bad(format!("no PEM certificate: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| bad(format!("unparsable: {e}")))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

fn certificate_record(cluster: &str, issued: &Issued, now: OffsetDateTime) -> CertificateRecord {
    CertificateRecord {
        serial: issued.serial.clone(),
        cluster: cluster.to_owned(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        issued_at: now,
        revoked_at: None,
    }
}

fn check_token(
    token: &BootstrapToken,
    record: &BootstrapTokenRecord,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    if record.secret_hash.0 != token.secret_hash() {
        return Err(PkiError::TokenSecret {
            id: token.id.clone(),
        });
    }
    if record.used_at.is_some() {
        return Err(PkiError::TokenUsed {
            id: token.id.clone(),
        });
    }
    if record.expires_at <= now {
        return Err(PkiError::TokenExpired {
            id: token.id.clone(),
            at: record.expires_at,
        });
    }
    Ok(())
}

/// What [`reseal`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// The stored CA key was sealed again with the current key.
    pub ca_key: bool,
    /// Repository credentials sealed again.
    pub credentials: usize,
    /// URL prefixes of credentials neither key opens (to be set again by an operator).
    pub unopened: Vec<String>,
}

/// A master-key rotation's second step (docs/operations.md#master-key): every value at rest that only
/// `master`'s previous key opens (the stored CA key, repository credentials) is sealed again with the current
/// key. Each value is replaced only if it is still what was read, so replicas doing it at once, or an operator
/// changing a credential meanwhile, lose nothing. Values the current key already opens are left alone.
pub async fn reseal(
    security: &dyn SecurityStore,
    master: &MasterKey,
) -> Result<ResealReport, PkiError> {
    let mut report = ResealReport::default();
    if let Some(stored) = security.get_hub_ca().await? {
        let (key, by_previous) = master.open_noting_key(CA_KEY_PURPOSE, &stored.key_sealed.0)?;
        if by_previous {
            let sealed = master.seal(CA_KEY_PURPOSE, &key)?;
            report.ca_key = security
                .reseal_hub_ca(&stored.key_sealed.0, &sealed)
                .await?;
        }
    }
    for record in security.list_repo_credentials().await? {
        let purpose = repos::purpose(&record.url_prefix);
        match master.open_noting_key(&purpose, &record.sealed.0) {
            Ok((_, false)) => {}
            Ok((secret, true)) => {
                let sealed = master.seal(&purpose, &secret)?;
                if security
                    .reseal_repo_credential(&record.url_prefix, &record.sealed.0, &sealed)
                    .await?
                {
                    report.credentials += 1;
                }
            }
            Err(_) => report.unopened.push(record.url_prefix.clone()),
        }
    }
    Ok(report)
}

async fn load_or_create_ca(
    security: &dyn SecurityStore,
    master: &MasterKey,
) -> Result<HubCa, PkiError> {
    if let Some(stored) = security.get_hub_ca().await? {
        return open_stored(&stored, master);
    }
    let ca = HubCa::generate("edgecd hub CA")?;
    let stored = StoredCa {
        cert_pem: ca.cert_pem().to_owned(),
        key_sealed: Redacted(master.seal(CA_KEY_PURPOSE, ca.key_pem().as_bytes())?),
        created_at: OffsetDateTime::now_utc(),
    };
    if security.insert_hub_ca(&stored).await? {
        tracing::info!("Generated the hub CA; its key is sealed in the store.");
        return Ok(ca);
    }
    // Another replica stored one first: use that.
    let stored = security
        .get_hub_ca()
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            reason: "the hub CA vanished after a conflicting insert".into(),
        })?;
    open_stored(&stored, master)
}

fn open_stored(stored: &StoredCa, master: &MasterKey) -> Result<HubCa, PkiError> {
    let key = master.open(CA_KEY_PURPOSE, &stored.key_sealed.0)?;
    let key = String::from_utf8(key).map_err(|_| SealError::Open {
        purpose: CA_KEY_PURPOSE.into(),
    })?;
    Ok(HubCa::from_pem(&stored.cert_pem, &key)?)
}
