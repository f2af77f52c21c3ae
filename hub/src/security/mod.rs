//! How a hub replica sets up its security: where the CA comes from, the server certificate's names, the PKI's settings and the operator accounts' (`SecuritySettings`, from the flags in `args`). Above both `pki` and `auth`, so that neither needs the other.

pub mod args;

use std::sync::Arc;

use crate::auth::AuthConfig;
use crate::pki::{CaSource, MasterKey, Pki, PkiConfig, PkiError};
use crate::store::{SecurityStore, Store};

/// How a hub replica sets up its PKI (`ServerConfig::security`).
#[derive(Clone)]
pub struct SecuritySettings {
    /// Where the CA comes from.
    pub ca: CaSettings,
    /// Names (DNS or IP) of the hub's server certificate, as spokes and
    /// clients dial it.
    pub tls_names: Vec<String>,
    pub pki: PkiConfig,
    /// The security store when `Database::Store` is used (tests, dev fleets).
    pub store: Option<Arc<dyn SecurityStore>>,
    /// Operator accounts (`crate::auth::Accounts` becomes the API's
    /// authenticator); `None` keeps `ServerConfig::authenticator`.
    pub auth: Option<AuthConfig>,
    /// Password of the first admin (`admin`), created when there are no users.
    pub initial_admin_password: Option<String>,
}

/// Owned form of [`CaSource`].
#[derive(Clone)]
pub enum CaSettings {
    /// Generate on first start, sealed in the store with this master key.
    Stored(Arc<MasterKey>),
    /// Operator-supplied PEM certificate and key; `master` (if given) seals repository credentials,
    /// which are unavailable without it.
    Supplied {
        cert_pem: String,
        key_pem: String,
        master: Option<Arc<MasterKey>>,
    },
}

impl std::fmt::Debug for CaSettings {
    // The supplied key is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Stored(_) => "CaSettings::Stored(<sealed>)",
            Self::Supplied { master: None, .. } => "CaSettings::Supplied(<pem>)",
            Self::Supplied {
                master: Some(_), ..
            } => "CaSettings::Supplied(<pem>, master key)",
        })
    }
}

impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuritySettings")
            .field("ca", &self.ca)
            .field("tls_names", &self.tls_names)
            .field("pki", &self.pki)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl SecuritySettings {
    /// A CA sealed in the store with `master`, a server certificate for `tls_names`.
    pub fn stored(master: MasterKey, tls_names: Vec<String>) -> Self {
        Self {
            ca: CaSettings::Stored(Arc::new(master)),
            tls_names,
            pki: PkiConfig::default(),
            store: None,
            auth: Some(AuthConfig::default()),
            initial_admin_password: None,
        }
    }

    /// Opens the PKI over `fleet` and `security`.
    pub async fn open(
        &self,
        fleet: Arc<dyn Store>,
        security: Arc<dyn SecurityStore>,
    ) -> Result<Pki, PkiError> {
        let source = match &self.ca {
            CaSettings::Stored(master) => CaSource::Store(master),
            CaSettings::Supplied {
                cert_pem, key_pem, ..
            } => CaSource::Supplied { cert_pem, key_pem },
        };
        let master = match &self.ca {
            CaSettings::Stored(master)
            | CaSettings::Supplied {
                master: Some(master),
                ..
            } => Some(master),
            CaSettings::Supplied { master: None, .. } => None,
        };
        // A master-key rotation: what the previous key sealed is sealed again with the new one first, so the
        // previous key can be dropped once every replica has run with both.
        if let Some(master) = master.filter(|m| m.has_previous()) {
            let report = crate::pki::reseal(security.as_ref(), master).await?;
            tracing::info!(
                ca_key = report.ca_key,
                credentials = report.credentials,
                unopened = report.unopened.len(),
                "Sealed again with the new master key what the previous one sealed."
            );
            for prefix in &report.unopened {
                tracing::warn!(url_prefix = %prefix, "Neither master key opens this repository credential; set it again.");
            }
        }
        let pki = Pki::open(fleet, security, source, self.pki.clone()).await?;
        Ok(match &self.ca {
            CaSettings::Stored(master)
            | CaSettings::Supplied {
                master: Some(master),
                ..
            } => pki.with_sealer(Arc::clone(master)),
            CaSettings::Supplied { master: None, .. } => pki,
        })
    }
}
