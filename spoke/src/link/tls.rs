//! TLS of the hub link (rustls): the spoke's identity (key, certificate, hub CA), the mTLS client configuration, the CA-pinning verifier used on first contact, and channels built per connection from the current identity.
//!
//! ```text
//!   Enroll : TLS, hub verified by the pinned CA hash (the CA travels in the hub's chain)
//!   Connect: mTLS, hub verified against the CA, spoke presents its current certificate
//! ```

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tonic::transport::{Channel, Endpoint};

/// Why a TLS setting or connection failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("invalid hub address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot reach the hub at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// What the spoke holds after enrollment. `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SpokeIdentity {
    /// The cluster the certificate is bound to.
    pub cluster: String,
    /// PKCS#8 private key, PEM; generated here, never sent anywhere.
    pub key_pem: String,
    pub cert_pem: String,
    /// The hub CA, PEM.
    pub ca_pem: String,
}

impl std::fmt::Debug for SpokeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpokeIdentity")
            .field("cluster", &self.cluster)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `sha256:<hex>` of DER bytes.
pub fn sha256_pin(der: &[u8]) -> String {
    let hex: String = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid {
            what,
            reason: "no PEM certificate".into(),
        });
    }
    Ok(certs)
}

impl SpokeIdentity {
    /// Validity of the certificate.
    pub fn validity(&self) -> Result<(OffsetDateTime, OffsetDateTime), TlsError> {
        let der = certs(&self.cert_pem, "spoke certificate")?;
        let (_, cert) = x509_parser::parse_x509_certificate(der[0].as_ref()).map_err(|e| {
            TlsError::Invalid {
                what: "spoke certificate",
                reason: e.to_string(),
            }
        })?;
        let validity = cert.validity();
        Ok((
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
        ))
    }

    /// When to renew: two thirds into the certificate's lifetime.
    pub fn renew_at(&self) -> Result<OffsetDateTime, TlsError> {
        let (not_before, not_after) = self.validity()?;
        Ok(not_before + (not_after - not_before) * 2 / 3)
    }

    /// Whether the certificate must be renewed before connecting: it expired, or less than a sixth of its
    /// lifetime is left (renewal on the stream, due at two thirds, did not happen in time).
    pub fn needs_renewal_before_connect(&self, now: OffsetDateTime) -> Result<bool, TlsError> {
        let (not_before, not_after) = self.validity()?;
        Ok(now >= not_after - (not_after - not_before) / 6)
    }

    /// `sha256:<hex>` of the hub CA.
    pub fn ca_hash(&self) -> Result<String, TlsError> {
        let ca = certs(&self.ca_pem, "hub CA")?;
        Ok(sha256_pin(ca[0].as_ref()))
    }

    /// Whether the certificate's public key is the key's (a certificate
    /// for another key is useless, and a sign of tampering).
    pub fn key_matches(&self) -> Result<bool, TlsError> {
        let key = rcgen::KeyPair::from_pem(&self.key_pem).map_err(|e| TlsError::Invalid {
            what: "spoke key",
            reason: e.to_string(),
        })?;
        let der = certs(&self.cert_pem, "spoke certificate")?;
        let (_, cert) = x509_parser::parse_x509_certificate(der[0].as_ref()).map_err(|e| {
            TlsError::Invalid {
                what: "spoke certificate",
                reason: e.to_string(),
            }
        })?;
        Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: &'static str) -> impl FnOnce(rustls::Error) -> TlsError {
    move |e| TlsError::Invalid {
        what,
        reason: e.to_string(),
    }
}

/// mTLS to the hub: the hub verified against the CA, the spoke's certificate presented.
pub fn mtls_config(identity: &SpokeIdentity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certs(&identity.ca_pem, "hub CA")? {
        roots.add(ca).map_err(invalid("hub CA"))?;
    }
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| {
        TlsError::Invalid {
            what: "spoke key",
            reason: e.to_string(),
        }
    })?;
    let chain = certs(&identity.cert_pem, "spoke certificate")?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid("TLS versions"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(invalid("spoke certificate"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Server-authenticated TLS to the hub, without a client certificate: the hub verified against the
/// identity's CA. For `RenewCertificate`, whose certificate (possibly expired) travels as request data.
pub fn server_auth_config(identity: &SpokeIdentity) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in certs(&identity.ca_pem, "hub CA")? {
        roots.add(ca).map_err(invalid("hub CA"))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid("TLS versions"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// First contact: trust the hub only if its chain carries the CA whose
/// SHA-256 is `ca_hash` and its certificate is valid under that CA.
pub fn pinned_config(ca_hash: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let verifier = PinnedCaVerifier {
        pin: ca_hash.to_owned(),
        provider: provider(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid("TLS versions"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Verifies the hub against a CA found in its own chain by hash.
#[derive(Debug)]
struct PinnedCaVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| sha256_pin(c.as_ref()) == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the hub's certificate chain does not contain the pinned CA {}",
                    self.pin
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel to `address` (`https://host:port`) over TLS with `config`,
/// built now: a renewed certificate is used from the next connection on.
pub async fn channel(
    address: &str,
    config: Arc<rustls::ClientConfig>,
    connect_timeout: Duration,
) -> Result<Channel, TlsError> {
    let bad = |reason: String| TlsError::Address {
        address: address.to_owned(),
        reason,
    };
    let uri: http::Uri = address.parse().map_err(|e| bad(format!("{e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| bad("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let server_name =
        ServerName::try_from(host.clone()).map_err(|e| bad(format!("server name: {e}")))?;
    // The connector below does TLS itself, so tonic sees a plain URI.
    let endpoint = Endpoint::from_shared(format!("http://{}:{port}", uri.host().unwrap_or("")))
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let connector = tokio_rustls::TlsConnector::from(config);
    let target = (host, port);
    let service = tower::service_fn(move |_: http::Uri| {
        let connector = connector.clone();
        let server_name = server_name.clone();
        let target = target.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect((target.0.as_str(), target.1)).await?;
            let _ = tcp.set_nodelay(true);
            let tls = connector.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    endpoint
        .connect_with_connector(service)
        .await
        .map_err(|source| TlsError::Connect {
            address: address.to_owned(),
            source,
        })
}
