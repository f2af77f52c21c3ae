//! The hub CA: generate or load it, sign spoke client certificates from CSRs (identity fixed by the hub, never by the CSR), issue the hub's server certificate, and read a cluster identity back from a certificate.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};

/// URI SAN prefix naming a cluster: `spiffe://edgecd/cluster/<name>`.
pub const CLUSTER_URI_PREFIX: &str = "spiffe://edgecd/cluster/";

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("invalid certificate signing request: {0}")]
    Csr(String),
    #[error("invalid CA {what}: {reason}")]
    BadCa { what: &'static str, reason: String },
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
    #[error("invalid client certificate: {0}")]
    BadCertificate(String),
}

/// A certificate the CA issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub pem: String,
    pub der: Vec<u8>,
    /// Lowercase hex.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// What a client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub cluster: String,
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The hub's certificate authority. The key stays in memory; it is stored only sealed.
pub struct HubCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    key_pem: String,
}

impl std::fmt::Debug for HubCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubCa")
            .field("ca_hash", &self.ca_hash())
            .finish_non_exhaustive()
    }
}

fn rcgen_issue(error: rcgen::Error) -> CaError {
    CaError::Issue(error.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of DER bytes: the pin of a CA certificate.
pub fn sha256_pin(der: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(der)))
}

/// A random positive serial of 16 bytes (minimal DER: the first byte is non-zero and < 0x80).
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Issue("no system randomness".into()))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn pem_to_der(pem_text: &str, what: &'static str) -> Result<Vec<u8>, CaError> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pem_text.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| CaError::BadCa {
            what,
            reason: format!("no PEM certificate: {e}"),
        })
}

impl HubCa {
    /// A new CA (ECDSA P-256, ten years).
    pub fn generate(name: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate().map_err(rcgen_issue)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_issue)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "edgecd");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(rcgen_issue)?;
        let key_pem = key.serialize_pem();
        Self::from_pem(&cert.pem(), &key_pem)
    }

    /// A CA from its certificate and PKCS#8 key, both PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::BadCa {
            what: "key",
            reason: e.to_string(),
        })?;
        let cert_der = pem_to_der(cert_pem, "certificate")?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| CaError::BadCa {
                what: "certificate",
                reason: e.to_string(),
            })?;
        if !parsed.is_ca() {
            return Err(CaError::BadCa {
                what: "certificate",
                reason: "not a CA certificate (basicConstraints CA:false)".into(),
            });
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::BadCa {
                what: "key",
                reason: "does not belong to the CA certificate".into(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key).map_err(|e| {
            CaError::BadCa {
                what: "certificate",
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            cert_pem: cert_pem.trim().to_owned() + "\n",
            cert_der,
            issuer,
            key_pem: key_pem.to_owned(),
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA key, PEM: only for sealing it into the store.
    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// `sha256:<hex>` of the CA certificate (DER), as pinned by bootstrap tokens.
    pub fn ca_hash(&self) -> String {
        sha256_pin(&self.cert_der)
    }

    /// Signs a spoke's CSR for `cluster`, valid from `not_before` to `not_after`.
    /// Only the CSR's public key is used: subject, SANs, usages and
    /// lifetime are set here, so a CSR cannot ask for another identity.
    pub fn sign_client(
        &self,
        csr_pem: &str,
        cluster: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Issued, CaError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::Csr(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cluster);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "edgecd spoke");
        let uri = format!("{CLUSTER_URI_PREFIX}{cluster}");
        params.subject_alt_names = vec![SanType::URI(uri.try_into().map_err(rcgen_issue)?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let serial = random_serial()?;
        let serial_hex = hex(&serial.to_bytes());
        params.serial_number = Some(serial);
        csr.params = params;
        let cert = csr.signed_by(&self.issuer).map_err(rcgen_issue)?;
        Ok(Issued {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            serial: serial_hex,
            not_before,
            not_after,
        })
    }

    /// A server certificate for the hub's TLS endpoints, for `names` (DNS
    /// names or IP addresses), with a fresh key. Returns (chain PEM: leaf
    /// then CA, key PEM); the key is never stored.
    pub fn server_identity(&self, names: &[String]) -> Result<(String, String), CaError> {
        let key = KeyPair::generate().map_err(rcgen_issue)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "edgecd hub");
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(rcgen_issue)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(365);
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_issue)?;
        Ok((
            format!("{}{}", cert.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }
}

/// Reads the cluster identity of a client certificate (DER): the
/// `spiffe://edgecd/cluster/<name>` URI SAN, which must agree with the CN.
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, CaError> {
    let bad = |reason: String| CaError::BadCertificate(reason);
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| bad(format!("unparsable: {e}")))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("bad subjectAltName: {e}")))?
        .ok_or_else(|| bad("no subjectAltName naming a cluster".into()))?;
    let mut clusters = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => uri.strip_prefix(CLUSTER_URI_PREFIX),
            _ => None,
        });
    let cluster = clusters
        .next()
        .ok_or_else(|| bad(format!("no {CLUSTER_URI_PREFIX}<name> URI")))?;
    if clusters.next().is_some() {
        return Err(bad("names more than one cluster".into()));
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    if cn != Some(cluster) {
        return Err(bad(format!(
            "common name {cn:?} does not match cluster {cluster}"
        )));
    }
    let validity = cert.validity();
    Ok(CertIdentity {
        cluster: cluster.to_owned(),
        serial: hex(cert.raw_serial()),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr() -> (KeyPair, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "cluster-other");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        (key, csr)
    }

    #[test]
    fn the_hub_sets_the_identity_not_the_csr() {
        let ca = HubCa::generate("test CA").unwrap();
        let (_key, csr) = csr();
        let now = OffsetDateTime::now_utc();
        let issued = ca
            .sign_client(&csr, "cluster-1", now, now + Duration::hours(24))
            .unwrap();
        let identity = cert_identity(&issued.der).unwrap();
        assert_eq!(identity.cluster, "cluster-1");
        assert_eq!(identity.serial, issued.serial);
        assert!(ca.ca_hash().starts_with("sha256:"));
        assert_eq!(ca.ca_hash().len(), 7 + 64);
    }

    #[test]
    fn reloads_from_pem_and_refuses_a_foreign_key() {
        let ca = HubCa::generate("test CA").unwrap();
        let again = HubCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(again.ca_hash(), ca.ca_hash());
        let other = HubCa::generate("other").unwrap();
        let err = HubCa::from_pem(ca.cert_pem(), other.key_pem()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn a_garbage_csr_is_refused() {
        let ca = HubCa::generate("test CA").unwrap();
        let now = OffsetDateTime::now_utc();
        let err = ca
            .sign_client("not a csr", "c", now, now + Duration::hours(1))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid certificate signing request")
        );
    }
}
