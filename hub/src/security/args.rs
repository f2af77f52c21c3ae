//! The security flags of `edgecd-hub serve` (`#[command(flatten)] security: SecurityArgs`), turned into `SecuritySettings`: master key, CA source, TLS names, lifetimes, the first admin, OIDC.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{CaSettings, SecuritySettings};
use crate::auth::{AttemptLimits, AuthConfig, OidcConfig, Rate};
use crate::pki::{MasterKey, PkiConfig, SealError};

/// A rate limit flag: `BURST/PERIOD` (e.g. `20/1m`: 20 failed attempts at once, then one every 3 s) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitArg(pub Option<Rate>);

fn parse_limit(text: &str) -> Result<LimitArg, String> {
    Rate::parse(text).map(LimitArg).map_err(|e| e.to_string())
}

/// Security flags; every flag also reads an `EDGECD_HUB_*` variable
/// (the master key itself may also come from `EDGECD_MASTER_KEY`).
#[derive(Debug, Clone, clap::Args)]
pub struct SecurityArgs {
    /// File holding the 32-byte master key that seals the CA key and
    /// repository credentials (raw, 64 hex digits or base64). Keep it out of
    /// the database and its backups.
    #[arg(long, env = "EDGECD_HUB_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// During a master-key rotation: the key being replaced. What it sealed is opened and sealed again with
    /// the master key at start; once every replica has started with both, drop this flag
    /// (docs/operations.md#master-key).
    #[arg(long, env = "EDGECD_HUB_PREVIOUS_MASTER_KEY_FILE")]
    pub previous_master_key_file: Option<PathBuf>,
    /// Operator-supplied CA certificate (PEM) instead of the generated one.
    #[arg(long, env = "EDGECD_HUB_CA_CERT", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// Key of --ca-cert (PKCS#8 PEM).
    #[arg(long, env = "EDGECD_HUB_CA_KEY", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
    /// DNS names or IP addresses of the hub's server certificate, as spokes
    /// and clients dial it (repeatable; comma-separated in the variable).
    #[arg(long = "tls-name", env = "EDGECD_HUB_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,
    /// Lifetime of spoke client certificates, in seconds.
    #[arg(long, env = "EDGECD_HUB_CLIENT_CERT_TTL", default_value_t = 24 * 3600)]
    pub client_cert_ttl_secs: u64,
    /// Default lifetime of bootstrap tokens, in seconds.
    #[arg(long, env = "EDGECD_HUB_BOOTSTRAP_TOKEN_TTL", default_value_t = 3600)]
    pub bootstrap_token_ttl_secs: u64,
    /// Lifetime of login sessions, in seconds.
    #[arg(long, env = "EDGECD_HUB_SESSION_TTL", default_value_t = 12 * 3600)]
    pub session_ttl_secs: u64,
    /// File with the password of the first admin (`admin`), created when the
    /// hub has no users yet.
    #[arg(long, env = "EDGECD_HUB_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// OIDC issuer (`iss`); enables OIDC login with the flags below.
    #[arg(long, env = "EDGECD_HUB_OIDC_ISSUER", requires_all = ["oidc_client_id", "oidc_jwks_url"])]
    pub oidc_issuer: Option<String>,
    /// OIDC client id (the expected `aud`).
    #[arg(long, env = "EDGECD_HUB_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The provider's JWKS URL.
    #[arg(long, env = "EDGECD_HUB_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// CA bundle (PEM) trusted for an https JWKS URL.
    #[arg(long, env = "EDGECD_HUB_OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// Claim holding the groups.
    #[arg(long, env = "EDGECD_HUB_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// Groups whose members are admins (repeatable).
    #[arg(
        long = "oidc-admin-group",
        env = "EDGECD_HUB_OIDC_ADMIN_GROUPS",
        value_delimiter = ','
    )]
    pub oidc_admin_groups: Vec<String>,
    /// Failed `Login` attempts allowed per client IP, as BURST/PERIOD (then one per PERIOD/BURST), or
    /// `off`. Successful logins cost nothing.
    #[arg(long, env = "EDGECD_HUB_LOGIN_LIMIT_PER_IP", default_value = "20/1m", value_parser = parse_limit)]
    pub login_limit_per_ip: LimitArg,
    /// Failed `Login` attempts allowed per account name, as BURST/PERIOD, or `off`.
    #[arg(long, env = "EDGECD_HUB_LOGIN_LIMIT_PER_ACCOUNT", default_value = "10/10m", value_parser = parse_limit)]
    pub login_limit_per_account: LimitArg,
    /// Failed `Enroll` attempts allowed per spoke IP, as BURST/PERIOD, or `off`.
    #[arg(long, env = "EDGECD_HUB_ENROLL_LIMIT_PER_IP", default_value = "20/1m", value_parser = parse_limit)]
    pub enroll_limit_per_ip: LimitArg,
    /// Failed `Enroll` attempts allowed per bootstrap-token id, as BURST/PERIOD, or `off`.
    #[arg(long, env = "EDGECD_HUB_ENROLL_LIMIT_PER_TOKEN", default_value = "5/10m", value_parser = parse_limit)]
    pub enroll_limit_per_token: LimitArg,
}

/// Why the security flags are unusable. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum SecurityArgsError {
    #[error(transparent)]
    Key(#[from] SealError),
    #[error("no master key: give --master-key-file or {env}", env = crate::pki::MASTER_KEY_ENV)]
    NoMasterKey,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("--previous-master-key-file needs the new master key (--master-key-file or {env})", env = crate::pki::MASTER_KEY_ENV)]
    PreviousWithoutMaster,
}

fn read(path: &PathBuf) -> Result<String, SecurityArgsError> {
    std::fs::read_to_string(path).map_err(|e| SecurityArgsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

impl SecurityArgs {
    /// The settings of `ServerConfig::security`.
    pub fn into_settings(self) -> Result<SecuritySettings, SecurityArgsError> {
        let master = match &self.master_key_file {
            Some(path) => Some(MasterKey::from_file(path)?),
            None => MasterKey::from_env()?,
        };
        let master = match (master, &self.previous_master_key_file) {
            (Some(master), Some(previous)) => {
                Some(master.with_previous(MasterKey::from_file(previous)?))
            }
            (None, Some(_)) => return Err(SecurityArgsError::PreviousWithoutMaster),
            (master, None) => master,
        };
        let ca = match (&self.ca_cert, &self.ca_key, master) {
            // The master key, when given, still seals repository credentials.
            (Some(cert), Some(key), master) => CaSettings::Supplied {
                cert_pem: read(cert)?,
                key_pem: read(key)?,
                master: master.map(Arc::new),
            },
            (_, _, Some(master)) => CaSettings::Stored(Arc::new(master)),
            (_, _, None) => return Err(SecurityArgsError::NoMasterKey),
        };
        let oidc = match (&self.oidc_issuer, &self.oidc_client_id, &self.oidc_jwks_url) {
            (Some(issuer), Some(client_id), Some(jwks)) => {
                let mut oidc = OidcConfig::new(issuer, client_id, jwks);
                oidc.groups_claim = self.oidc_groups_claim.clone();
                oidc.admin_groups = self.oidc_admin_groups.clone();
                oidc.ca_pem = self.oidc_ca_file.as_ref().map(read).transpose()?;
                Some(oidc)
            }
            _ => None,
        };
        let tls_names = if self.tls_names.is_empty() {
            vec!["localhost".into(), "127.0.0.1".into()]
        } else {
            self.tls_names
        };
        Ok(SecuritySettings {
            ca,
            tls_names,
            pki: PkiConfig {
                client_cert_lifetime: Duration::from_secs(self.client_cert_ttl_secs.max(60)),
                token_ttl: Duration::from_secs(self.bootstrap_token_ttl_secs.max(60)),
                enroll_limits: AttemptLimits::new(
                    self.enroll_limit_per_ip.0,
                    self.enroll_limit_per_token.0,
                ),
            },
            store: None,
            auth: Some(AuthConfig {
                session_ttl: Duration::from_secs(self.session_ttl_secs.max(60)),
                oidc,
                login_limits: AttemptLimits::new(
                    self.login_limit_per_ip.0,
                    self.login_limit_per_account.0,
                ),
            }),
            initial_admin_password: self
                .admin_password_file
                .as_ref()
                .map(read)
                .transpose()?
                .map(|p| p.trim().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        security: SecurityArgs,
    }

    #[test]
    fn flags_become_settings_and_the_master_key_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        let cli = Cli::try_parse_from([
            "hub",
            "--master-key-file",
            key.to_str().unwrap(),
            "--tls-name",
            "hub.example.com",
            "--tls-name",
            "10.0.0.1",
        ])
        .unwrap();
        let settings = cli.security.into_settings().unwrap();
        assert!(matches!(settings.ca, CaSettings::Stored(_)));
        assert_eq!(settings.tls_names, vec!["hub.example.com", "10.0.0.1"]);
        assert_eq!(
            settings.pki.client_cert_lifetime,
            Duration::from_secs(86_400)
        );

        let auth = settings.auth.as_ref().unwrap();
        assert_eq!(
            auth.login_limits.per_ip,
            Some(Rate::new(20, Duration::from_secs(60)))
        );
        assert_eq!(
            auth.login_limits.per_name,
            Some(Rate::new(10, Duration::from_secs(600)))
        );
        assert_eq!(
            settings.pki.enroll_limits.per_name,
            Some(Rate::new(5, Duration::from_secs(600)))
        );

        std::fs::write(&key, b"short").unwrap();
        let cli = Cli::try_parse_from(["hub", "--master-key-file", key.to_str().unwrap()]).unwrap();
        let err = cli.security.into_settings().unwrap_err();
        assert!(err.to_string().starts_with("master key"), "{err}");
    }

    #[test]
    fn a_supplied_ca_keeps_the_master_key_for_repository_credentials_and_limits_are_configurable() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        let ca = crate::pki::HubCa::generate("operator CA").unwrap();
        let cert = dir.path().join("ca.pem");
        let ca_key = dir.path().join("ca.key");
        std::fs::write(&cert, ca.cert_pem()).unwrap();
        std::fs::write(&ca_key, ca.key_pem()).unwrap();
        let args = |with_master: bool| {
            let mut argv = vec![
                "hub".to_owned(),
                "--ca-cert".into(),
                cert.display().to_string(),
                "--ca-key".into(),
                ca_key.display().to_string(),
                "--login-limit-per-ip".into(),
                "off".into(),
                "--enroll-limit-per-token".into(),
                "3/1h".into(),
            ];
            if with_master {
                argv.extend(["--master-key-file".into(), key.display().to_string()]);
            }
            Cli::try_parse_from(argv)
                .unwrap()
                .security
                .into_settings()
                .unwrap()
        };
        let settings = args(true);
        assert!(matches!(
            settings.ca,
            CaSettings::Supplied {
                master: Some(_),
                ..
            }
        ));
        assert_eq!(settings.auth.as_ref().unwrap().login_limits.per_ip, None);
        assert_eq!(
            settings.pki.enroll_limits.per_name,
            Some(Rate::new(3, Duration::from_secs(3600)))
        );
        // Without a master key file (and no variable) the supplied CA runs without one.
        if std::env::var_os(crate::pki::MASTER_KEY_ENV).is_none() {
            assert!(matches!(
                args(false).ca,
                CaSettings::Supplied { master: None, .. }
            ));
        }
        let err = Cli::try_parse_from(["hub", "--login-limit-per-account", "10"]).unwrap_err();
        assert!(err.to_string().contains("expected BURST/PERIOD"), "{err}");
    }
}
