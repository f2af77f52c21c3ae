//! Turns the global flags and the config file into a connected SDK client.

use std::path::PathBuf;

use anyhow::Context as _;
use edgecd_proto::client::{Client, ClientConfig, Tls};

use crate::args::Global;
use crate::config::{self, Config, Context};

/// The resolved config file and what the global flags asked for.
#[derive(Debug)]
pub struct Session {
    pub path: PathBuf,
    pub config: Config,
    pub global: Global,
}

impl Session {
    pub fn load(global: Global) -> anyhow::Result<Self> {
        let path = match &global.config {
            Some(path) => path.clone(),
            None => config::default_path()?,
        };
        let config = Config::load(&path)?;
        Ok(Self {
            path,
            config,
            global,
        })
    }

    /// The context to use: --server (with --token) wins over the config file.
    pub fn target(&self) -> anyhow::Result<Context> {
        let mut context = match &self.global.server {
            Some(server) => {
                let named = self
                    .config
                    .context(self.global.context.as_deref())
                    .ok()
                    .filter(|(_, c)| c.server == *server)
                    .map(|(_, c)| c.clone());
                named.unwrap_or_else(|| Context {
                    server: server.clone(),
                    plaintext: server.starts_with("http://"),
                    ..Context::default()
                })
            }
            None => self
                .config
                .context(self.global.context.as_deref())?
                .1
                .clone(),
        };
        if let Some(token) = &self.global.token {
            context.token = Some(token.clone());
        }
        Ok(context)
    }

    /// Connects to the target hub.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let context = self.target()?;
        connect(&context, self.global.request_timeout).await
    }
}

/// The SDK configuration for a context.
pub fn client_config(
    context: &Context,
    timeout: std::time::Duration,
) -> anyhow::Result<ClientConfig> {
    let tls = if context.plaintext {
        Tls::InsecurePlaintext
    } else if let Some(path) = &context.ca_file {
        Tls::CaPem(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?,
        )
    } else {
        Tls::SystemRoots
    };
    let mut config = ClientConfig::new(context.server.clone())
        .with_tls(tls)
        .with_token(context.token.clone().unwrap_or_default());
    config.request_timeout = timeout;
    config.trace_context = crate::trace::headers().cloned();
    Ok(config)
}

pub async fn connect(context: &Context, timeout: std::time::Duration) -> anyhow::Result<Client> {
    Ok(Client::connect(client_config(context, timeout)?).await?)
}
