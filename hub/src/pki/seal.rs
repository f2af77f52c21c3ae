//! The master key and authenticated encryption at rest (ChaCha20-Poly1305 from `ring`) for the hub CA key and repository credentials.
//!
//! ```text
//!   sealed = base64( 0x01 ‖ nonce[12] ‖ ChaCha20-Poly1305(key, nonce, aad = purpose, plaintext) )
//! ```
//!
//! The purpose string (e.g. `hub-ca-key`, `repo-credential:<prefix>`) is the
//! associated data, so a sealed value moved to another row does not open.

use std::path::Path;

use base64::Engine as _;
use ring::aead::{self, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const VERSION: u8 = 1;
/// Environment variable that may hold the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "EDGECD_MASTER_KEY";

/// Why the master key could not be loaded or a value not sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key {source_name}: {reason}")]
    BadKey { source_name: String, reason: String },
    #[error("cannot open sealed {purpose}: wrong master key or corrupted data")]
    Open { purpose: String },
    #[error("cannot seal {purpose}: {reason}")]
    Seal { purpose: String, reason: String },
}

/// The 32-byte key that seals secrets at rest, and during a rotation the key it replaces (which only opens:
/// values it opens are sealed again with the current key, see `pki::reseal`). Never printed.
pub struct MasterKey {
    key: LessSafeKey,
    previous: Option<LessSafeKey>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.previous.is_some() {
            "MasterKey(<redacted>, previous <redacted>)"
        } else {
            "MasterKey(<redacted>)"
        })
    }
}

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let bad = |reason: &str| SealError::BadKey {
            source_name: "bytes".into(),
            reason: reason.into(),
        };
        if bytes.len() != 32 {
            return Err(bad("must be exactly 32 bytes"));
        }
        let unbound = UnboundKey::new(&aead::CHACHA20_POLY1305, bytes)
            .map_err(|_| bad("rejected by the cipher"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            previous: None,
        })
    }

    /// This key, opening also what `previous` sealed (a master-key rotation: `--previous-master-key-file`).
    pub fn with_previous(self, previous: MasterKey) -> Self {
        Self {
            key: self.key,
            previous: Some(previous.key),
        }
    }

    /// Whether a previous key is kept for opening.
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }

    /// Parses text holding 32 bytes as 64 hex digits or base64.
    pub fn from_text(text: &str, source_name: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()
        } else {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        };
        let bytes = bytes.ok_or_else(|| SealError::BadKey {
            source_name: source_name.into(),
            reason: "not 64 hex digits or base64".into(),
        })?;
        Self::from_bytes(&bytes).map_err(|_| SealError::BadKey {
            source_name: source_name.into(),
            reason: format!("decodes to {} bytes, need 32", bytes.len()),
        })
    }

    /// Reads a key file: 32 raw bytes, or 64 hex digits, or base64 text.
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| SealError::BadKey {
            source_name: name.clone(),
            reason: error.to_string(),
        })?;
        if bytes.len() == 32 {
            return Self::from_bytes(&bytes);
        }
        let text = String::from_utf8(bytes).map_err(|_| SealError::BadKey {
            source_name: name.clone(),
            reason: "neither 32 raw bytes nor text".into(),
        })?;
        Self::from_text(&text, &name)
    }

    /// The key from `EDGECD_MASTER_KEY`, if set.
    pub fn from_env() -> Result<Option<Self>, SealError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => Self::from_text(&text, MASTER_KEY_ENV).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// A fresh random key (tests and `edgecd-dev`); returns it with its base64 text.
    pub fn generate() -> Result<(Self, String), SealError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Seal {
                purpose: "master key".into(),
                reason: "no system randomness".into(),
            })?;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok((Self::from_bytes(&bytes)?, text))
    }

    /// Encrypts and authenticates `plaintext`, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal {
                purpose: purpose.into(),
                reason: "no system randomness".into(),
            })?;
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| SealError::Seal {
                purpose: purpose.into(),
                reason: "encryption failed".into(),
            })?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Decrypts a value sealed for `purpose` (with the current key, or else the previous one).
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        self.open_noting_key(purpose, sealed)
            .map(|(plain, _)| plain)
    }

    /// Decrypts a value sealed for `purpose`; the flag says whether only the previous key opened it (it is to
    /// be sealed again with the current one).
    pub fn open_noting_key(
        &self,
        purpose: &str,
        sealed: &str,
    ) -> Result<(Vec<u8>, bool), SealError> {
        if let Some(plain) = open_with(&self.key, purpose, sealed) {
            return Ok((plain, false));
        }
        if let Some(plain) = self
            .previous
            .as_ref()
            .and_then(|previous| open_with(previous, purpose, sealed))
        {
            return Ok((plain, true));
        }
        Err(SealError::Open {
            purpose: purpose.into(),
        })
    }
}

fn open_with(key: &LessSafeKey, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sealed.trim())
        .ok()?;
    if raw.len() < 1 + NONCE_LEN || raw[0] != VERSION {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&raw[1..=NONCE_LEN]);
    let mut buffer = raw[1 + NONCE_LEN..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.as_bytes()),
            &mut buffer,
        )
        .ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_purpose() {
        let (key, text) = MasterKey::generate().unwrap();
        let sealed = key.seal("hub-ca-key", b"secret key").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(key.open("hub-ca-key", &sealed).unwrap(), b"secret key");
        assert!(key.open("repo-credential:x", &sealed).is_err());
        let (other, _) = MasterKey::generate().unwrap();
        let err = other.open("hub-ca-key", &sealed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot open sealed hub-ca-key: wrong master key or corrupted data"
        );
        let same = MasterKey::from_text(&text, "test").unwrap();
        assert_eq!(same.open("hub-ca-key", &sealed).unwrap(), b"secret key");
    }

    #[test]
    fn a_rotated_key_opens_what_the_previous_one_sealed_and_says_so() {
        let (old, _) = MasterKey::generate().unwrap();
        let sealed_old = old.seal("hub-ca-key", b"secret key").unwrap();
        let (new, _) = MasterKey::generate().unwrap();
        assert!(new.open("hub-ca-key", &sealed_old).is_err());
        let (old_again, _) = (MasterKey::from_bytes(&[7; 32]).unwrap(), ());
        let rotated = new.with_previous(old);
        assert!(rotated.has_previous());
        assert_eq!(
            rotated.open_noting_key("hub-ca-key", &sealed_old).unwrap(),
            (b"secret key".to_vec(), true)
        );
        let sealed_new = rotated.seal("hub-ca-key", b"secret key").unwrap();
        assert_eq!(
            rotated.open_noting_key("hub-ca-key", &sealed_new).unwrap(),
            (b"secret key".to_vec(), false)
        );
        // Neither key: refused, as before.
        let foreign = old_again.seal("hub-ca-key", b"x").unwrap();
        assert!(rotated.open("hub-ca-key", &foreign).is_err());
        assert_eq!(
            format!("{rotated:?}"),
            "MasterKey(<redacted>, previous <redacted>)"
        );
    }

    #[test]
    fn rejects_short_keys() {
        assert!(MasterKey::from_text("abcd", "flag").is_err());
        assert!(MasterKey::from_bytes(&[0; 16]).is_err());
    }
}
