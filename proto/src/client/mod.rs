//! The Rust client SDK for the hub's `HubService`: connect with TLS and a token, typed calls, paginated list streams, watch.
//!
//! ```no_run
//! use edgecd_proto::client::{Client, ClientConfig, Tls};
//! use futures::TryStreamExt as _;
//!
//! # async fn demo() -> Result<(), edgecd_proto::client::Error> {
//! let client = Client::connect(
//!     ClientConfig::new("https://hub.example.com:8443")
//!         .with_token(std::env::var("EDGECD_TOKEN").unwrap_or_default())
//!         .with_tls(Tls::SystemRoots),
//! )
//! .await?;
//! let mut apps = client.applications(Default::default());
//! while let Some(app) = apps.try_next().await? {
//!     println!("{}/{} on {}", app.project, app.name, app.cluster);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every call carries `authorization: Bearer <token>` when a token is configured. Errors are
//! [`Error`]s that say what went wrong (hub unreachable, unauthenticated, `application team-a/nginx
//! not found`, the server's message for an invalid argument, ...).

mod calls;
mod error;
mod exec;
mod paging;

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

pub use self::error::{Error, ErrorKind};
pub use self::exec::{ExecInput, MAX_STDIN_CHUNK};
pub use self::paging::ItemStream;
use crate::v1::hub_service_client::HubServiceClient;

/// Result of an SDK call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the connection to the hub is secured.
#[derive(Debug, Clone, Default)]
pub enum Tls {
    /// TLS, trusting the operating system's root certificates.
    #[default]
    SystemRoots,
    /// TLS, trusting only this CA certificate (PEM), e.g. the hub's own CA.
    CaPem(String),
    /// No TLS at all (`http://`). Insecure: only for a hub on loopback (the dev fleet). A token is
    /// never sent in plaintext to a host that is not a loopback address.
    InsecurePlaintext,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host:port`, `http://127.0.0.1:port` (with [`Tls::InsecurePlaintext`]), or `host:port`
    /// (the scheme follows `tls`).
    pub endpoint: String,
    /// Bearer token (a session token from [`Client::login`] or an API token).
    pub token: Option<SecretString>,
    pub tls: Tls,
    /// Server name to verify instead of the endpoint's host.
    pub tls_server_name: Option<String>,
    /// Timeout for establishing the connection.
    pub connect_timeout: Duration,
    /// Timeout for each unary call (watch streams are not cut by it).
    pub request_timeout: Duration,
    /// W3C trace context sent with every call (`traceparent`, `tracestate` metadata), so the hub and the
    /// spokes continue the caller's trace; see [`ClientConfig::with_trace_context`].
    pub trace_context: Option<TraceHeaders>,
}

/// The W3C trace-context headers of the caller's span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceHeaders {
    /// `00-<trace id>-<span id>-<flags>`.
    pub traceparent: String,
    /// Vendor state; empty for none.
    pub tracestate: String,
}

impl ClientConfig {
    /// A configuration for `endpoint` with system roots, no token, and default timeouts (10 s to
    /// connect, 60 s per call).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            token: None,
            tls: Tls::default(),
            tls_server_name: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            trace_context: None,
        }
    }

    /// Sends `traceparent` (and `tracestate` when not empty) with every call: the hub's span for the call
    /// becomes a child of that span, and so does what the call sets off (a sync on a spoke, even one that
    /// connects later).
    pub fn with_trace_context(
        mut self,
        traceparent: impl Into<String>,
        tracestate: impl Into<String>,
    ) -> Self {
        self.trace_context = Some(TraceHeaders {
            traceparent: traceparent.into(),
            tracestate: tracestate.into(),
        });
        self
    }

    /// Sets the bearer token; an empty string means none.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        let token: String = token.into();
        self.token = (!token.is_empty()).then(|| SecretString::from(token));
        self
    }

    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// The endpoint as a URI with a scheme that matches `tls`.
    pub fn uri(&self) -> Result<String> {
        let endpoint = self.endpoint.trim().trim_end_matches('/');
        if endpoint.is_empty() {
            return Err(Error::Config("the hub endpoint is empty".into()));
        }
        let plaintext = matches!(self.tls, Tls::InsecurePlaintext);
        match endpoint.split_once("://") {
            Some(("http", _)) if !plaintext => Err(Error::Config(format!(
                "{endpoint} is plaintext http but TLS is configured (use https://, or insecure plaintext for a loopback hub)"
            ))),
            Some(("https", _)) if plaintext => Err(Error::Config(format!(
                "{endpoint} is https but insecure plaintext is configured"
            ))),
            Some(("http" | "https", _)) => Ok(endpoint.to_owned()),
            Some((scheme, _)) => Err(Error::Config(format!(
                "unsupported scheme {scheme:?} in {endpoint} (use https:// or http://)"
            ))),
            None if plaintext => Ok(format!("http://{endpoint}")),
            None => Ok(format!("https://{endpoint}")),
        }
    }
}

/// Adds the bearer token, and the trace-context headers when set, to every call.
#[derive(Clone)]
pub struct BearerToken(
    Option<MetadataValue<Ascii>>,
    Vec<(&'static str, MetadataValue<Ascii>)>,
);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BearerToken(<redacted>)"
        } else {
            "BearerToken(None)"
        })
    }
}

impl BearerToken {
    /// A header value for `token` (marked sensitive, so it is never logged by the transport).
    pub fn new(token: Option<&SecretString>) -> Result<Self> {
        let Some(token) = token else {
            return Ok(Self(None, Vec::new()));
        };
        let mut value = MetadataValue::try_from(format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                Error::Config("the token contains characters not allowed in a header".into())
            })?;
        value.set_sensitive(true);
        Ok(Self(Some(value), Vec::new()))
    }

    /// Also sends `trace`'s headers.
    fn with_trace(mut self, trace: Option<&TraceHeaders>) -> Result<Self> {
        let Some(trace) = trace else {
            return Ok(self);
        };
        let header = |name: &'static str, value: &str| {
            MetadataValue::try_from(value)
                .map(|v| (name, v))
                .map_err(|_| {
                    Error::Config(format!(
                        "the {name} holds characters not allowed in a header"
                    ))
                })
        };
        self.1.push(header("traceparent", &trace.traceparent)?);
        if !trace.tracestate.is_empty() {
            self.1.push(header("tracestate", &trace.tracestate)?);
        }
        Ok(self)
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        for (name, value) in &self.1 {
            request.metadata_mut().insert(*name, value.clone());
        }
        Ok(request)
    }
}

type Inner = HubServiceClient<InterceptedService<Channel, BearerToken>>;

/// A connection to the hub. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Inner,
    channel: Channel,
    endpoint: String,
    headers: BearerToken,
    trace: Option<TraceHeaders>,
}

impl Client {
    /// Connects to the hub (eagerly, so an unreachable hub is reported here).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), edgecd_proto::client::Error> {
    /// use edgecd_proto::client::{Client, ClientConfig, Tls};
    /// let pem = std::fs::read_to_string("hub-ca.pem").unwrap_or_default();
    /// let client = Client::connect(
    ///     ClientConfig::new("hub.example.com:8443").with_tls(Tls::CaPem(pem)),
    /// )
    /// .await?;
    /// println!("hub version {}", client.get_server_info().await?.version);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let (endpoint, uri) = endpoint(&config)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Error::from_transport(&e, &uri))?;
        Self::with_channel(channel, uri, config.token.as_ref())?
            .traced(config.trace_context.as_ref())
    }

    /// Builds a client that connects on first use (and reconnects as needed).
    pub fn connect_lazy(config: ClientConfig) -> Result<Self> {
        let (endpoint, uri) = endpoint(&config)?;
        Self::with_channel(endpoint.connect_lazy(), uri, config.token.as_ref())?
            .traced(config.trace_context.as_ref())
    }

    /// A client on an existing channel; `endpoint` is only used in error messages.
    pub fn with_channel(
        channel: Channel,
        endpoint: impl Into<String>,
        token: Option<&SecretString>,
    ) -> Result<Self> {
        let headers = BearerToken::new(token)?;
        let inner = HubServiceClient::with_interceptor(channel.clone(), headers.clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        Ok(Self {
            inner,
            channel,
            endpoint: endpoint.into(),
            headers,
            trace: None,
        })
    }

    /// The same connection sending `trace`'s headers with every call (none: no trace headers).
    pub fn traced(self, trace: Option<&TraceHeaders>) -> Result<Self> {
        let headers = BearerToken(self.headers.0.clone(), Vec::new()).with_trace(trace)?;
        let inner = HubServiceClient::with_interceptor(self.channel.clone(), headers.clone())
            .max_decoding_message_size(64 * 1024 * 1024);
        Ok(Self {
            inner,
            headers,
            trace: trace.cloned(),
            ..self
        })
    }

    /// The hub's address as configured.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The same connection with a different token (e.g. after [`Client::login`]).
    pub fn with_token(&self, token: Option<&SecretString>) -> Result<Self> {
        // Rebuild the interceptor only; the channel is shared.
        Self::with_channel(self.channel.clone(), self.endpoint.clone(), token)?
            .traced(self.trace.as_ref())
    }

    fn raw(&self) -> Inner {
        self.inner.clone()
    }
}

fn endpoint(config: &ClientConfig) -> Result<(Endpoint, String)> {
    let uri = config.uri()?;
    let mut endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| Error::Config(format!("invalid hub endpoint {uri:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .timeout(config.request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    match &config.tls {
        Tls::InsecurePlaintext => {
            if config.token.is_some() && !is_loopback(endpoint.uri().host().unwrap_or_default()) {
                return Err(Error::Config(format!(
                    "refusing to send a token in plaintext to {uri}: plaintext is only for a hub on loopback; use TLS"
                )));
            }
        }
        Tls::SystemRoots | Tls::CaPem(_) => {
            let mut tls = ClientTlsConfig::new();
            tls = match &config.tls {
                Tls::CaPem(pem) => {
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        return Err(Error::Config("the CA file holds no PEM certificate".into()));
                    }
                    tls.ca_certificate(Certificate::from_pem(pem))
                }
                _ => tls.with_native_roots(),
            };
            if let Some(name) = &config.tls_server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::Config(format!("TLS settings for {uri}: {e}")))?;
        }
    }
    Ok((endpoint, uri))
}

/// `localhost`, `127.0.0.0/8`, `::1`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `team-a/nginx` for an app in a project.
pub(crate) fn app_name(app: Option<&crate::v1::AppRef>) -> String {
    match app {
        Some(app) if app.project.is_empty() => format!("application default/{}", app.name),
        Some(app) => format!("application {}/{}", app.project, app.name),
        None => "application".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_follows_tls() {
        let config = ClientConfig::new("hub:8443");
        assert_eq!(config.uri().unwrap_or_default(), "https://hub:8443");
        let config = ClientConfig::new("127.0.0.1:9000").with_tls(Tls::InsecurePlaintext);
        assert_eq!(config.uri().unwrap_or_default(), "http://127.0.0.1:9000");
        assert!(ClientConfig::new("http://hub:80").uri().is_err());
        assert!(ClientConfig::new("ftp://hub").uri().is_err());
    }

    #[test]
    fn no_token_in_plaintext_to_remote_hosts() {
        let config = ClientConfig::new("http://hub.example.com:80")
            .with_tls(Tls::InsecurePlaintext)
            .with_token("secret");
        let error = endpoint(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("refusing to send a token in plaintext"),
            "{error}"
        );
        let config = ClientConfig::new("http://127.0.0.1:80")
            .with_tls(Tls::InsecurePlaintext)
            .with_token("secret");
        assert!(endpoint(&config).is_ok());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn the_token_is_not_printed() {
        let token = BearerToken::new(Some(&SecretString::from("hunter2"))).ok();
        assert!(!format!("{token:?}").contains("hunter2"));
    }
}
