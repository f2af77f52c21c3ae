//! Operator authentication: local accounts (argon2id), expiring session tokens from `Login`, API tokens scoped to projects and roles, OIDC ID tokens checked against the provider's JWKS; the hub's real `Authenticator`.
//!
//! ```text
//!   Login(password) ─► argon2id verify ─┐
//!   Login(oidc ID token) ─► JWKS verify ─┴─► session "ecs_…" (SHA-256 stored, expires) ─► Bearer
//!   CreateApiToken ─► "ect_<id>_…" (SHA-256 stored, grants project:role, revocable)   ─► Bearer
//!   Bearer ─► authenticate ─► Principal { subject, groups, admin, grants } ─► core::access::decide
//! ```
//!
//! Tokens are 256-bit random strings, so a plain SHA-256 is enough to store
//! them; passwords get argon2id. No token, password or hash is ever logged.

pub mod oidc;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use futures::future::BoxFuture;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use edgecd_core::project::ProjectRole;

pub use self::oidc::{OidcConfig, OidcVerifier};
use crate::access::{AuthError, AuthMethod, Authenticator, Credentials, Grant, Principal};
pub use crate::limit::{AttemptLimits, Limited, ManualClock, Rate};
use crate::store::model::Redacted;
use crate::store::security::SessionRecord;
use crate::store::{SecurityStore, Store, StoreError, TokenRecord, UserRecord};

const SESSION_PREFIX: &str = "ecs_";
const API_TOKEN_PREFIX: &str = "ect_";
/// Role string that makes an API token (or user) a global admin.
pub const ADMIN_ROLE: &str = "admin";

/// Settings of operator authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Lifetime of a login session (default 12 h).
    pub session_ttl: Duration,
    pub oidc: Option<OidcConfig>,
    /// Rate limits on failed `Login` attempts, per peer IP and per account name.
    pub login_limits: AttemptLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            oidc: None,
            login_limits: AttemptLimits::login_default(),
        }
    }
}

/// Why an account operation failed. Never contains a password or token.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid username or password")]
    BadLogin,
    #[error("OIDC login failed: {0}")]
    Oidc(String),
    #[error("OIDC login is not configured on this hub")]
    NoOidc,
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Limited(#[from] Limited),
}

/// A new session or API token, shown once.
#[derive(Clone)]
pub struct IssuedToken {
    /// The bearer token; a secret.
    pub token: String,
    pub id: String,
    pub expires_at: Option<OffsetDateTime>,
    pub principal: Principal,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// Accounts, sessions and tokens; implements [`Authenticator`].
#[derive(Debug)]
pub struct Accounts {
    fleet: Arc<dyn Store>,
    security: Arc<dyn SecurityStore>,
    config: AuthConfig,
    oidc: Option<OidcVerifier>,
    /// Failed logins per IP and per account.
    login_limiter: crate::limit::AttemptLimiter,
    /// Argon2 hash checked when a user does not exist, so that timing does
    /// not reveal which names exist.
    decoy: String,
}

fn random_token(prefix: &str) -> Result<String, AccountError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AccountError::Hash("no system randomness".into()))?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// SHA-256 hex of a bearer token, the only form stored.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AccountError::Hash("no system randomness".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Parses `project:role` (role: viewer, deployer, owner) or `admin`.
pub fn parse_grant(text: &str) -> Result<Option<Grant>, AccountError> {
    if text == ADMIN_ROLE {
        return Ok(None);
    }
    let invalid = || AccountError::Invalid {
        what: "role",
        reason: format!("{text:?}: expected <project>:<viewer|deployer|owner> or admin"),
    };
    let (project, role) = text.rsplit_once(':').ok_or_else(invalid)?;
    let role = match role {
        "viewer" => ProjectRole::Viewer,
        "deployer" => ProjectRole::Deployer,
        "owner" => ProjectRole::Owner,
        _ => return Err(invalid()),
    };
    if project.is_empty() {
        return Err(invalid());
    }
    Ok(Some(Grant {
        project: project.to_owned(),
        role,
    }))
}

/// `project:role` text of a grant.
pub fn grant_text(grant: &Grant) -> String {
    let role = match grant.role {
        ProjectRole::Viewer => "viewer",
        ProjectRole::Deployer => "deployer",
        ProjectRole::Owner => "owner",
    };
    format!("{}:{role}", grant.project)
}

/// (admin, grants) from role strings; unparsable entries are skipped with a warning.
fn roles_to_grants(roles: &[String]) -> (bool, Vec<Grant>) {
    let mut admin = false;
    let mut grants = Vec::new();
    for role in roles {
        match parse_grant(role) {
            Ok(None) => admin = true,
            Ok(Some(grant)) => grants.push(grant),
            Err(error) => tracing::warn!(%error, "Ignoring a stored role."),
        }
    }
    (admin, grants)
}

fn store_unavailable(error: StoreError) -> AuthError {
    tracing::warn!(%error, "Cannot read credentials.");
    AuthError::Unavailable("the hub's database is unavailable".into())
}

impl Accounts {
    pub fn new(
        fleet: Arc<dyn Store>,
        security: Arc<dyn SecurityStore>,
        config: AuthConfig,
    ) -> Result<Self, AccountError> {
        let oidc = config.oidc.clone().map(OidcVerifier::new);
        let login_limiter =
            crate::limit::AttemptLimiter::new("login", "account", &config.login_limits);
        Ok(Self {
            fleet,
            security,
            config,
            oidc,
            login_limiter,
            decoy: hash_password("edgecd decoy password")?,
        })
    }

    pub fn fleet(&self) -> &Arc<dyn Store> {
        &self.fleet
    }

    pub fn security(&self) -> &Arc<dyn SecurityStore> {
        &self.security
    }

    pub fn oidc(&self) -> Option<&OidcConfig> {
        self.config.oidc.as_ref()
    }

    /// Creates a local user; `roles` are `project:role` strings or `admin`.
    #[tracing::instrument(skip(self, password))]
    pub async fn create_user(
        &self,
        name: &str,
        password: Option<&str>,
        admin: bool,
        roles: &[String],
    ) -> Result<UserRecord, AccountError> {
        if name.is_empty() || name.starts_with("token:") || name.len() > 253 {
            return Err(AccountError::Invalid {
                what: "user name",
                reason: format!("{name:?}"),
            });
        }
        for role in roles {
            parse_grant(role)?;
        }
        let password_hash = match password {
            Some(password) if password.len() < 8 => {
                return Err(AccountError::Invalid {
                    what: "password",
                    reason: "at least 8 characters".into(),
                });
            }
            Some(password) => {
                let password = password.to_owned();
                Some(Redacted(
                    tokio::task::spawn_blocking(move || hash_password(&password))
                        .await
                        .map_err(|e| AccountError::Hash(e.to_string()))??,
                ))
            }
            None => None,
        };
        let user = UserRecord {
            name: name.to_owned(),
            password_hash,
            admin,
            roles: roles.to_vec(),
            created_at: OffsetDateTime::now_utc(),
            version: 1,
        };
        Ok(self.fleet.create_user(&user).await?)
    }

    /// Creates the admin `admin` with `password` when the hub has no users
    /// yet; returns whether it did.
    pub async fn ensure_admin(&self, password: &str) -> Result<bool, AccountError> {
        if !self.fleet.list_users().await?.is_empty() {
            return Ok(false);
        }
        match self.create_user("admin", Some(password), true, &[]).await {
            Ok(_) => {
                tracing::info!("Created the first admin, `admin`.");
                Ok(true)
            }
            // Another replica created it first.
            Err(AccountError::Store(StoreError::AlreadyExists { .. })) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// `Login` with a password from `ip`: a session token. Failed attempts are limited per IP and per
    /// account name (refused with [`AccountError::Limited`], even with the right password, until the
    /// bucket refills); a successful one costs nothing.
    #[tracing::instrument(skip(self, password))]
    pub async fn login_password(
        &self,
        ip: Option<IpAddr>,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, AccountError> {
        self.login_limiter
            .admit(ip, username)
            .inspect_err(|limited| {
                tracing::warn!(%limited, "Password login refused by the rate limit.");
            })?;
        let issued = self.check_password(username, password).await?;
        self.login_limiter.succeeded(ip, username);
        Ok(issued)
    }

    async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<IssuedToken, AccountError> {
        let user = match self.fleet.get_user(username).await {
            Ok(user) => Some(user),
            Err(StoreError::NotFound { .. }) => None,
            Err(error) => return Err(error.into()),
        };
        let phc = user
            .as_ref()
            .and_then(|u| u.password_hash.as_ref())
            .map_or_else(|| self.decoy.clone(), |h| h.0.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        let Some(user) = user.filter(|u| ok && u.password_hash.is_some()) else {
            tracing::warn!("Password login refused.");
            return Err(AccountError::BadLogin);
        };
        let (admin, grants) = roles_to_grants(&user.roles);
        let principal = Principal {
            subject: user.name.clone(),
            groups: Vec::new(),
            admin: admin || user.admin,
            grants,
            method: AuthMethod::Password,
            on_behalf_of: None,
        };
        self.new_session(principal).await
    }

    /// `Login` with an OIDC ID token from `ip`: a session token. Failed attempts are limited per IP.
    #[tracing::instrument(skip(self, id_token))]
    pub async fn login_oidc(
        &self,
        ip: Option<IpAddr>,
        id_token: &str,
    ) -> Result<IssuedToken, AccountError> {
        let oidc = self.oidc.as_ref().ok_or(AccountError::NoOidc)?;
        self.login_limiter.admit(ip, "").inspect_err(|limited| {
            tracing::warn!(%limited, "OIDC login refused by the rate limit.");
        })?;
        let principal = oidc.verify(id_token).await.map_err(|error| {
            tracing::warn!(%error, "OIDC login refused.");
            AccountError::Oidc(error.to_string())
        })?;
        self.login_limiter.succeeded(ip, "");
        self.new_session(principal).await
    }

    async fn new_session(&self, principal: Principal) -> Result<IssuedToken, AccountError> {
        let token = random_token(SESSION_PREFIX)?;
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.config.session_ttl;
        let mut grants: Vec<String> = principal.grants.iter().map(grant_text).collect();
        if principal.admin {
            grants.push(ADMIN_ROLE.to_owned());
        }
        self.security
            .create_session(&SessionRecord {
                token_hash: Redacted(token_hash(&token)),
                subject: principal.subject.clone(),
                groups: principal.groups.clone(),
                admin: principal.admin,
                grants,
                method: match principal.method {
                    AuthMethod::Oidc => "oidc",
                    _ => "password",
                }
                .to_owned(),
                created_at: now,
                expires_at,
            })
            .await?;
        tracing::info!(subject = %principal.subject, %expires_at, "Session started.");
        Ok(IssuedToken {
            id: String::new(),
            token,
            expires_at: Some(expires_at),
            principal,
        })
    }

    /// `Logout`: ends the session of `token` only (the caller's other sessions go on; API tokens are
    /// revoked instead, so for them this does nothing).
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        if token.starts_with(SESSION_PREFIX) {
            match self.security.delete_session(&token_hash(token)).await {
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// An API token owned by user `owner`, with `roles` (`project:role`, or
    /// `admin` for admins only), expiring after `ttl` if given.
    #[tracing::instrument(skip(self, creator))]
    pub async fn create_api_token(
        &self,
        creator: &Principal,
        owner: &str,
        description: &str,
        roles: &[String],
        ttl: Option<Duration>,
    ) -> Result<IssuedToken, AccountError> {
        for role in roles {
            parse_grant(role)?;
        }
        if roles.is_empty() {
            return Err(AccountError::Invalid {
                what: "roles",
                reason: "a token needs at least one project:role (or admin)".into(),
            });
        }
        let id = random_token("")?.chars().take(12).collect::<String>();
        let token = format!("{API_TOKEN_PREFIX}{id}_{}", random_token("")?);
        let now = OffsetDateTime::now_utc();
        let expires_at = ttl.map(|ttl| now + ttl);
        let record = TokenRecord {
            id: id.clone(),
            owner: owner.to_owned(),
            description: description.to_owned(),
            token_hash: Redacted(token_hash(&token)),
            roles: roles.to_vec(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.fleet.create_token(&record).await?;
        tracing::info!(token_id = %id, creator = %creator.subject, "API token created.");
        let (admin, grants) = roles_to_grants(roles);
        Ok(IssuedToken {
            token,
            id: id.clone(),
            expires_at,
            principal: Principal {
                subject: format!("token:{id}"),
                groups: Vec::new(),
                admin,
                grants,
                method: AuthMethod::ApiToken,
                on_behalf_of: None,
            },
        })
    }

    pub async fn revoke_api_token(&self, id: &str) -> Result<(), AccountError> {
        self.fleet
            .revoke_token(id, OffsetDateTime::now_utc())
            .await?;
        tracing::info!(token_id = %id, "API token revoked.");
        Ok(())
    }

    async fn authenticate_session(&self, token: &str) -> Result<Principal, AuthError> {
        let session = match self.security.find_session(&token_hash(token)).await {
            Ok(session) => session,
            Err(StoreError::NotFound { .. }) => {
                return Err(AuthError::Invalid(
                    "unknown or ended session; log in again".into(),
                ));
            }
            Err(error) => return Err(store_unavailable(error)),
        };
        if session.expires_at <= OffsetDateTime::now_utc() {
            return Err(AuthError::Expired);
        }
        if session.method == "oidc" {
            // The provider is the source of an OIDC user's groups; they are
            // learned at login and kept for the session's life.
            let (admin, grants) = roles_to_grants(&session.grants);
            return Ok(Principal {
                subject: session.subject,
                groups: session.groups,
                admin: admin || session.admin,
                grants,
                method: AuthMethod::Oidc,
                on_behalf_of: None,
            });
        }
        // A local user's session carries what the account holds now: a user
        // removed or demoted is so at their next call, not at the session's end.
        match self.local_user(&session.subject).await? {
            Some(user) => Ok(Principal {
                method: AuthMethod::Password,
                ..user
            }),
            None => Err(AuthError::Invalid(format!(
                "user {} no longer exists; log in again",
                session.subject
            ))),
        }
    }

    /// A local account as it is now (`None`: there is no such account).
    async fn local_user(&self, name: &str) -> Result<Option<Principal>, AuthError> {
        let user = match self.fleet.get_user(name).await {
            Ok(user) => user,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(store_unavailable(error)),
        };
        let (admin, grants) = roles_to_grants(&user.roles);
        Ok(Some(Principal {
            subject: user.name,
            groups: Vec::new(),
            admin: admin || user.admin,
            grants,
            method: AuthMethod::Password,
            on_behalf_of: None,
        }))
    }

    async fn authenticate_api_token(&self, token: &str) -> Result<Principal, AuthError> {
        let record = match self.fleet.find_token_by_hash(&token_hash(token)).await {
            Ok(record) => record,
            Err(StoreError::NotFound { .. }) => {
                return Err(AuthError::Invalid("unknown API token".into()));
            }
            Err(error) => return Err(store_unavailable(error)),
        };
        if record.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        if record
            .expires_at
            .is_some_and(|at| at <= OffsetDateTime::now_utc())
        {
            return Err(AuthError::Expired);
        }
        let (admin, grants) = roles_to_grants(&record.roles);
        // The token acts for its owner as the owner is now: never more than
        // they hold at this call. A local owner's account must still exist
        // (deleting a user also revokes their tokens); an owner without a
        // local account (OIDC) is bounded by the project bindings that name
        // them, since the hub learns their groups only when they log in.
        let owner = match self.local_user(&record.owner).await? {
            Some(owner) => owner,
            None => Principal {
                subject: record.owner.clone(),
                groups: Vec::new(),
                admin: false,
                grants: Vec::new(),
                method: AuthMethod::Oidc,
                on_behalf_of: None,
            },
        };
        Ok(Principal {
            subject: format!("token:{}", record.id),
            groups: Vec::new(),
            admin: admin && owner.admin,
            grants,
            method: AuthMethod::ApiToken,
            on_behalf_of: Some(Box::new(owner)),
        })
    }
}

impl Authenticator for Accounts {
    fn authenticate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            let token = credentials.bearer.as_deref().ok_or(AuthError::Missing)?;
            if token.starts_with(SESSION_PREFIX) {
                self.authenticate_session(token).await
            } else if token.starts_with(API_TOKEN_PREFIX) {
                self.authenticate_api_token(token).await
            } else {
                Err(AuthError::Invalid("not an edgecd token".into()))
            }
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }

    #[test]
    fn grants_parse_and_print() {
        let grant = parse_grant("team-a:deployer").unwrap().unwrap();
        assert_eq!(grant.project, "team-a");
        assert_eq!(grant.role, ProjectRole::Deployer);
        assert_eq!(grant_text(&grant), "team-a:deployer");
        assert!(parse_grant("admin").unwrap().is_none());
        assert!(parse_grant("team-a:god").is_err());
        assert!(parse_grant(":viewer").is_err());
    }
}
