//! Security records of the fleet store: the hub CA, bootstrap tokens, issued spoke certificates, operator sessions and sealed repository credentials.
//!
//! A separate trait from `Store` so that the security layer (`crate::pki`,
//! `crate::auth`) evolves without touching the fleet store's surface; both
//! backends implement it in `security_sql.rs` (written once). Secrets never reach this
//! layer in clear: tokens arrive as hashes, keys and credentials sealed.

use time::OffsetDateTime;

use super::StoreFuture;
use super::model::Redacted;

/// The hub CA as stored: the certificate and its key sealed with the master key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCa {
    pub cert_pem: String,
    /// `crate::pki::MasterKey::seal` output, base64.
    pub key_sealed: Redacted,
    pub created_at: OffsetDateTime,
}

/// A one-time bootstrap token; only the hash of its secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapTokenRecord {
    pub id: String,
    pub cluster: String,
    pub secret_hash: Redacted,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// A client certificate issued to a spoke.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    pub cluster: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// An operator session (from `Login`); only the token's hash is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub token_hash: Redacted,
    pub subject: String,
    pub groups: Vec<String>,
    pub admin: bool,
    /// Grants as `project:role` strings (OIDC group mappings).
    pub grants: Vec<String>,
    /// `password` or `oidc`.
    pub method: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A repository credential, sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoCredentialRecord {
    pub url_prefix: String,
    /// Projects allowed to use it; empty means every project.
    pub projects: Vec<String>,
    /// Sealed JSON of the secret fields, base64.
    pub sealed: Redacted,
    pub updated_at: OffsetDateTime,
}

/// Storage of the security layer. Every method is one statement or one transaction.
pub trait SecurityStore: Send + Sync + std::fmt::Debug {
    fn get_hub_ca(&self) -> StoreFuture<'_, Option<StoredCa>>;
    /// Stores the CA unless one exists; returns whether this call stored it
    /// (two replicas starting at once: the first wins, both use its CA).
    fn insert_hub_ca<'a>(&'a self, ca: &'a StoredCa) -> StoreFuture<'a, bool>;
    /// Replaces the CA key's sealed form with `new` if it is still `old` (sealed again under a new master key);
    /// returns whether it did (another replica may have done it first).
    fn reseal_hub_ca<'a>(&'a self, old: &'a str, new: &'a str) -> StoreFuture<'a, bool>;

    fn create_bootstrap_token<'a>(&'a self, token: &'a BootstrapTokenRecord)
    -> StoreFuture<'a, ()>;
    fn get_bootstrap_token<'a>(&'a self, id: &'a str) -> StoreFuture<'a, BootstrapTokenRecord>;
    /// In one transaction: marks the token used if it is unused, unexpired
    /// at `now` and its secret hash matches, and records the certificate.
    /// Returns `false` (and changes nothing) if the token was not usable —
    /// e.g. another replica consumed it first.
    fn consume_bootstrap_token<'a>(
        &'a self,
        id: &'a str,
        secret_hash: &'a str,
        now: OffsetDateTime,
        certificate: &'a CertificateRecord,
    ) -> StoreFuture<'a, bool>;

    fn record_certificate<'a>(&'a self, certificate: &'a CertificateRecord) -> StoreFuture<'a, ()>;
    fn get_certificate<'a>(&'a self, serial: &'a str) -> StoreFuture<'a, CertificateRecord>;
    fn list_certificates<'a>(&'a self, cluster: &'a str)
    -> StoreFuture<'a, Vec<CertificateRecord>>;
    /// Revokes every certificate of a cluster; returns how many were live.
    fn revoke_certificates<'a>(
        &'a self,
        cluster: &'a str,
        at: OffsetDateTime,
    ) -> StoreFuture<'a, u64>;

    fn create_session<'a>(&'a self, session: &'a SessionRecord) -> StoreFuture<'a, ()>;
    fn find_session<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, SessionRecord>;
    fn delete_session<'a>(&'a self, token_hash: &'a str) -> StoreFuture<'a, ()>;
    /// Ends every session of `subject` (logout).
    fn delete_sessions_of<'a>(&'a self, subject: &'a str) -> StoreFuture<'a, u64>;

    /// Creates or replaces the credential of a URL prefix.
    fn put_repo_credential<'a>(
        &'a self,
        credential: &'a RepoCredentialRecord,
    ) -> StoreFuture<'a, ()>;
    fn list_repo_credentials(&self) -> StoreFuture<'_, Vec<RepoCredentialRecord>>;
    fn delete_repo_credential<'a>(&'a self, url_prefix: &'a str) -> StoreFuture<'a, ()>;
    /// Replaces a credential's sealed form with `new` if it is still `old` (sealed again under a new master
    /// key), leaving a credential changed meanwhile alone; returns whether it did.
    fn reseal_repo_credential<'a>(
        &'a self,
        url_prefix: &'a str,
        old: &'a str,
        new: &'a str,
    ) -> StoreFuture<'a, bool>;
}
