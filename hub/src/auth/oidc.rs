//! OIDC ID tokens: signature checked against the provider's JWKS (fetched over HTTP(S), cached, refreshed on an unknown key id), issuer, audience and expiry checked, the groups claim mapped to admin and project roles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::Mutex;

use crate::access::{AuthMethod, Grant, Principal};

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Minimum time between two JWKS fetches (an unknown `kid` triggers one).
const REFRESH_FLOOR: Duration = Duration::from_secs(10);

/// The provider and how its claims map to edgecd roles.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (the client id).
    pub client_id: String,
    /// The provider's JWKS URL (`jwks_uri` of its discovery document).
    pub jwks_url: String,
    /// Extra CA certificates (PEM) trusted for an `https` JWKS URL.
    pub ca_pem: Option<String>,
    /// Claim holding the user's groups (default `groups`).
    pub groups_claim: String,
    /// Members of these groups are global admins.
    pub admin_groups: Vec<String>,
    /// Grants given to members of a group, beyond project role bindings.
    pub group_grants: Vec<(String, Grant)>,
}

impl OidcConfig {
    pub fn new(issuer: &str, client_id: &str, jwks_url: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            jwks_url: jwks_url.to_owned(),
            ca_pem: None,
            groups_claim: "groups".into(),
            admin_groups: Vec::new(),
            group_grants: Vec::new(),
        }
    }
}

/// Why an ID token was refused. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("malformed ID token: {0}")]
    Malformed(String),
    #[error("ID token algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("ID token signed by unknown key {0:?}")]
    UnknownKey(String),
    #[error("ID token rejected: {0}")]
    Rejected(String),
    #[error("cannot fetch the provider's keys from {url}: {reason}")]
    Jwks { url: String, reason: String },
}

/// Verifies ID tokens of one provider.
#[derive(Debug)]
pub struct OidcVerifier {
    config: OidcConfig,
    keys: Mutex<Option<(Instant, Arc<JwkSet>)>>,
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl OidcVerifier {
    pub fn new(config: OidcConfig) -> Self {
        Self {
            config,
            keys: Mutex::new(None),
        }
    }

    /// The principal an ID token proves.
    pub async fn verify(&self, id_token: &str) -> Result<Principal, OidcError> {
        let header = jsonwebtoken::decode_header(id_token)
            .map_err(|e| OidcError::Malformed(e.to_string()))?;
        // Only asymmetric algorithms: never HS* (a public key as an HMAC
        // secret) and never `none`.
        if !ACCEPTED.contains(&header.alg) {
            return Err(OidcError::Algorithm(header.alg));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let jwk = self.key(&kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::Rejected(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.leeway = 60;
        let data = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
            .map_err(|e| OidcError::Rejected(e.to_string()))?;
        let claims = data.claims;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let subject = text("email")
            .or_else(|| text("preferred_username"))
            .or_else(|| text("sub"))
            .ok_or_else(|| OidcError::Rejected("no sub, email or preferred_username".into()))?;
        let groups: Vec<String> = match claims.get(&self.config.groups_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let admin = groups.iter().any(|g| self.config.admin_groups.contains(g));
        let grants = self
            .config
            .group_grants
            .iter()
            .filter(|(group, _)| groups.contains(group))
            .map(|(_, grant)| grant.clone())
            .collect();
        Ok(Principal {
            subject,
            groups,
            admin,
            grants,
            method: AuthMethod::Oidc,
            on_behalf_of: None,
        })
    }

    /// The JWK with `kid`, fetching the set if it is unknown (rate-limited).
    async fn key(&self, kid: &str) -> Result<jsonwebtoken::jwk::Jwk, OidcError> {
        let mut cached = self.keys.lock().await;
        let find = |set: &JwkSet| {
            if kid.is_empty() && set.keys.len() == 1 {
                return set.keys.first().cloned();
            }
            set.find(kid).cloned()
        };
        if let Some((_, set)) = cached.as_ref()
            && let Some(jwk) = find(set)
        {
            return Ok(jwk);
        }
        let stale = cached
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= REFRESH_FLOOR);
        if stale {
            let set = Arc::new(self.fetch().await?);
            *cached = Some((Instant::now(), set));
        }
        cached
            .as_ref()
            .and_then(|(_, set)| find(set))
            .ok_or_else(|| OidcError::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<JwkSet, OidcError> {
        let url = &self.config.jwks_url;
        let fail = |reason: String| OidcError::Jwks {
            url: url.clone(),
            reason,
        };
        let body = http_get(url, self.config.ca_pem.as_deref())
            .await
            .map_err(fail)?;
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a JWKS: {e}")))
    }
}

/// A small HTTP/1.1 GET (plain or TLS with the given extra roots).
async fn http_get(url: &str, ca_pem: Option<&str>) -> Result<Vec<u8>, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_owned();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("only http and https URLs".into()),
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let request = http::Request::get(path)
        .header(http::header::HOST, host.as_str())
        .header(http::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| e.to_string())?;
    if https {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = ca_pem {
            use rustls_pki_types::pem::PemObject as _;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots
                    .add(cert.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name =
            rustls_pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        send(hyper_util::rt::TokioIo::new(tls), request).await
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), request).await
    }
}

async fn send<T>(
    io: T,
    request: http::Request<http_body_util::Empty<hyper::body::Bytes>>,
) -> Result<Vec<u8>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .map_err(|_| "request timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body.to_bytes().to_vec())
}
