//! Bootstrap token text: `<id>.<secret>.sha256:<hex>` — a lookup id, a 160-bit secret (stored only as its SHA-256) and the pin of the hub CA, like kubeadm's discovery hash.

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest as _, Sha256};

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ID_LEN: usize = 8;
const SECRET_LEN: usize = 32;

/// A malformed token; the message never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bootstrap token: {0}")]
pub struct TokenFormatError(pub &'static str);

/// A parsed bootstrap token. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    secret: String,
    /// `sha256:<hex>` of the hub CA certificate, when the token carries it.
    pub ca_hash: Option<String>,
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("ca_hash", &self.ca_hash)
            .finish()
    }
}

fn random_text(len: usize) -> Result<String, TokenFormatError> {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut byte = [0u8; 1];
        rng.fill(&mut byte)
            .map_err(|_| TokenFormatError("no system randomness"))?;
        // Rejection sampling keeps the alphabet uniform.
        if usize::from(byte[0]) < ALPHABET.len() * 7 {
            out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

/// SHA-256 hex of a secret (tokens are random and long, so a fast hash suffices).
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_part(part: &str, len: usize) -> bool {
    part.len() == len && part.bytes().all(|b| ALPHABET.contains(&b))
}

impl BootstrapToken {
    /// A fresh token pinning `ca_hash`.
    pub fn generate(ca_hash: &str) -> Result<Self, TokenFormatError> {
        Ok(Self {
            id: random_text(ID_LEN)?,
            secret: random_text(SECRET_LEN)?,
            ca_hash: Some(ca_hash.to_owned()),
        })
    }

    /// Parses `<id>.<secret>[.sha256:<hex>]`.
    pub fn parse(text: &str) -> Result<Self, TokenFormatError> {
        let mut parts = text.trim().splitn(3, '.');
        let id = parts.next().unwrap_or_default();
        let secret = parts
            .next()
            .ok_or(TokenFormatError("expected <id>.<secret>.sha256:<hex>"))?;
        if !valid_part(id, ID_LEN) {
            return Err(TokenFormatError("the id must be 8 characters [a-z0-9]"));
        }
        if !valid_part(secret, SECRET_LEN) {
            return Err(TokenFormatError(
                "the secret must be 32 characters [a-z0-9]",
            ));
        }
        let ca_hash = match parts.next() {
            None => None,
            Some(hash) => Some(parse_ca_hash(hash)?),
        };
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
            ca_hash,
        })
    }

    /// The token without the CA pin (`<id>.<secret>`); a secret.
    pub fn credential(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The whole token text; a secret, shown once.
    pub fn to_text(&self) -> String {
        match &self.ca_hash {
            Some(hash) => format!("{}.{}.{hash}", self.id, self.secret),
            None => self.credential(),
        }
    }

    pub fn secret_hash(&self) -> String {
        hash_secret(&self.secret)
    }
}

/// Validates and normalises `sha256:<64 hex>` (upper-case hex accepted).
pub fn parse_ca_hash(text: &str) -> Result<String, TokenFormatError> {
    let hex = text
        .trim()
        .strip_prefix("sha256:")
        .ok_or(TokenFormatError("the CA hash must start with sha256:"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenFormatError("the CA hash must be 64 hex digits"));
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_secret() {
        let hash = format!("sha256:{}", "ab".repeat(32));
        let token = BootstrapToken::generate(&hash).unwrap();
        let text = token.to_text();
        let parsed = BootstrapToken::parse(&text).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.ca_hash.as_deref(), Some(hash.as_str()));
        assert!(!format!("{token:?}").contains(&token.secret));
        assert_eq!(parsed.secret_hash(), token.secret_hash());
    }

    #[test]
    fn refuses_malformed_tokens() {
        assert!(BootstrapToken::parse("abc").is_err());
        assert!(BootstrapToken::parse("abcdefgh.short").is_err());
        let secret = "a".repeat(32);
        assert!(BootstrapToken::parse(&format!("abcdefgh.{secret}.md5:00")).is_err());
        assert!(BootstrapToken::parse(&format!("abcdefgh.{secret}")).is_ok());
    }
}
