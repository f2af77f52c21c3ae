//! The CLI's config file: contexts (hub address, TLS, token) and the current one; written with mode 0600.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One hub and how to reach it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Context {
    pub server: String,
    /// No TLS (loopback dev hubs only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plaintext: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("server", &self.server)
            .field("plaintext", &self.plaintext)
            .field("ca_file", &self.ca_file)
            .field("user", &self.user)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `$EDGECD_CONFIG` is handled by clap; otherwise `$XDG_CONFIG_HOME/edgecd/config.yaml`, else
/// `~/.config/edgecd/config.yaml`.
pub fn default_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("edgecd/config.yaml"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("cannot find the config file: HOME is not set (use --config or EDGECD_CONFIG)")?;
    Ok(PathBuf::from(home).join(".config/edgecd/config.yaml"))
}

impl Config {
    /// Reads the file; a missing file is an empty config.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())));
            }
        };
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: invalid config file: {e}", path.display()))
    }

    /// Writes the file atomically with mode 0600 (it holds tokens), creating its directory (0700).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting {}", dir.display()))?;
        }
        let text = serde_saphyr::to_string(self).context("encoding the config")?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The context named `name`, or the current one.
    pub fn context(&self, name: Option<&str>) -> anyhow::Result<(&str, &Context)> {
        let name = match name.or(self.current_context.as_deref()) {
            Some(name) => name,
            None => anyhow::bail!(NoContext),
        };
        self.contexts
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                let known = self.names();
                anyhow::Error::new(crate::exit::Exit::new(
                    crate::exit::NOT_FOUND,
                    if known.is_empty() {
                        format!("no context named {name:?} (none saved yet: `edgecd login SERVER` saves one)")
                    } else {
                        format!("no context named {name:?} (known: {})", known.join(", "))
                    },
                ))
            })
    }

    /// Names of the saved contexts, in natural order (`hub-2` before `hub-10`).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.contexts.keys().cloned().collect();
        names.sort_by(|a, b| crate::output::natural_cmp(a, b));
        names
    }
}

/// No hub configured: neither --server nor a context.
#[derive(Debug, thiserror::Error)]
#[error("no hub configured: run `edgecd login <server>` first, or pass --server")]
pub struct NoContext;

/// The default context name for a server: its `host:port`.
pub fn context_name(server: &str) -> String {
    let rest = server.split_once("://").map_or(server, |(_, rest)| rest);
    rest.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("sub/config.yaml");
        let mut config = Config::default();
        config.contexts.insert(
            "dev".into(),
            Context {
                server: "http://127.0.0.1:50051".into(),
                plaintext: true,
                token: Some("s3cret".into()),
                user: Some("admin".into()),
                ..Context::default()
            },
        );
        config.current_context = Some("dev".into());
        config.save(&path).unwrap_or_else(|e| panic!("{e:#}"));
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap_or(dir.path()))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(dir_mode, 0o700);
        let loaded = Config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(loaded, config);
        let (name, context) = loaded.context(None).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(name, "dev");
        assert!(context.plaintext);
    }

    #[test]
    fn missing_file_is_empty_and_has_no_context() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = Config::load(&dir.path().join("nope.yaml")).unwrap_or_default();
        assert_eq!(config, Config::default());
        let error = config.context(None).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("no hub configured: run `edgecd login <server>` first, or pass --server")
        );
    }

    #[test]
    fn unknown_context_lists_the_known_ones() {
        let mut config = Config::default();
        config.contexts.insert("a".into(), Context::default());
        let error = config.context(Some("b")).err();
        assert_eq!(
            error.as_ref().map(ToString::to_string).as_deref(),
            Some("no context named \"b\" (known: a)")
        );
        // Exit 3, as for any other name that does not exist.
        assert_eq!(
            error.as_ref().map(crate::exit::code),
            Some(crate::exit::NOT_FOUND)
        );
    }

    #[test]
    fn tokens_are_not_debug_printed() {
        let context = Context {
            token: Some("s3cret".into()),
            ..Context::default()
        };
        assert!(!format!("{context:?}").contains("s3cret"));
    }

    #[test]
    fn context_names_drop_the_scheme() {
        assert_eq!(context_name("http://127.0.0.1:50051/"), "127.0.0.1:50051");
        assert_eq!(context_name("hub:8443"), "hub:8443");
    }

    #[test]
    fn invalid_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "contexts: [1, 2").unwrap_or_else(|e| panic!("{e}"));
        let error = Config::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("invalid config file"), "{error}");
    }
}
