//! The hub's authentication seam: turn a caller's credentials into a `Principal` (the decision itself is `edgecd_core::access::decide`).
//!
//! The gRPC API and the console's HTTP face extract `Credentials` at their
//! edge (bearer token from the `authorization` header, peer address) and ask
//! an `Authenticator`. `OpenAccess` makes every caller an admin and exists
//! only for `--insecure-disable-auth` (dev fleets, tests that are not about
//! security); the real authenticator (accounts, sessions, API tokens, OIDC)
//! implements the same trait.

use std::net::SocketAddr;

use futures::future::BoxFuture;

pub use edgecd_core::access::{Action, AuthMethod, Denied, Grant, Principal, decide};

/// What a caller presented, extracted at the transport edge.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The bearer token of the `authorization` header, without `Bearer `.
    pub bearer: Option<String>,
    /// Where the call came from (for audit).
    pub peer: Option<SocketAddr>,
}

impl std::fmt::Debug for Credentials {
    // The token is a secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("peer", &self.peer)
            .finish()
    }
}

/// Why a caller could not be authenticated. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("authentication backend unavailable: {0}")]
    Unavailable(String),
}

/// Turns credentials into a principal.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Principal, AuthError>>;

    /// The authenticator as `Any`, for the API to find the account service behind it (its login, user and
    /// token calls use `auth::Accounts`) without this module naming the module above it.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Authentication disabled: every caller is `anonymous`, an admin.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAccess;

impl Authenticator for OpenAccess {
    fn authenticate<'a>(
        &'a self,
        _credentials: &'a Credentials,
    ) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async { Ok(Principal::anonymous_admin()) })
    }
}
