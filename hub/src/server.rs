//! The `edgecd-hub serve` process as a library: opens the store, serves `SpokeService` and `HubService` on the gRPC port and `/live`, `/ready`, `/metrics` on the HTTP port, runs the background tasks, and drains on shutdown.
//!
//! ```text
//!   Server::start(ServerConfig) ─► RunningServer { grpc_addr, http_addr }
//!     gRPC  : SpokeService (link) + HubService (api)   [TLS: ServerConfig::tls]
//!             a connection without a call within grpc_handshake_timeout is closed,
//!             at most grpc_max_handshakes wait for their first call
//!     HTTP  : admin + console (axum, HTTP/1.1)   [header timeout, connection cap: HttpLimits]
//!     tasks : notification router (link), change feed (Watch), command expiry
//!   RunningServer::shutdown: GoAway(draining) to spokes ─► stop accepting ─► drain ─► stop
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};

use edgecd_proto::v1::hub_service_server::HubServiceServer;
use edgecd_proto::v1::spoke_service_server::SpokeServiceServer;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::access::{Authenticator, OpenAccess};
use crate::api::{ApiConfig, HubApi};
use crate::link::{LinkConfig, SpokeLink};
use crate::metrics::Metrics;
use crate::store::{PgStore, SqliteStore, Store, StoreError};

/// Where the fleet store lives.
#[derive(Clone)]
pub enum Database {
    /// An embedded SQLite file (single replica).
    Sqlite(PathBuf),
    /// A `postgres://` URL (any number of replicas).
    Postgres(String),
    /// An already opened store (tests, `edgecd-dev`).
    Store(Arc<dyn Store>),
}

impl std::fmt::Debug for Database {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.write_str("Postgres(<url>)"),
            Self::Store(store) => f.debug_tuple("Store").field(store).finish(),
        }
    }
}

/// Everything a hub replica needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub database: Database,
    /// Turns callers' credentials into principals. `OpenAccess` (every caller
    /// an admin) is only for `--insecure-disable-auth`.
    pub authenticator: Arc<dyn Authenticator>,
    /// TLS for the gRPC port; `None` serves plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// This replica's name (in cluster records and `GetServerInfo`).
    pub replica_id: String,
    /// The link's settings (`replica` is overwritten by `replica_id`).
    pub link: LinkConfig,
    /// The API's settings (`replica` is overwritten by `replica_id`).
    pub api: ApiConfig,
    /// How long shutdown waits for calls and streams to finish.
    pub drain_timeout: Duration,
    /// Spokes told to go away on shutdown come back no sooner than this.
    pub drain_retry_after: Duration,
    /// The hub CA, spoke enrollment and mTLS; `None`: no CA (spokes trusted
    /// by the name in Hello, development only).
    pub security: Option<crate::security::SecuritySettings>,
    /// Hub-scoped application sets: evaluation interval.
    pub appsets: crate::appsets::AppSetConfig,
    /// Where the hub caches git repositories (application-set git
    /// generators); `None`: a temporary directory removed at shutdown.
    pub git_cache_dir: Option<std::path::PathBuf>,
    /// The `helm` that renders app-of-apps parents that are Helm charts (an absolute path, or a name looked
    /// up on `PATH`); its home and chart cache live under the git cache directory.
    pub helm_binary: std::path::PathBuf,
    /// Bounds on the HTTP port's connections (header timeout, cap).
    pub http: crate::admin::HttpLimits,
    /// A gRPC connection that has not sent a request this long after it
    /// was accepted (TLS handshake, HTTP/2 preface, first call) is closed.
    pub grpc_handshake_timeout: Duration,
    /// Connections that may wait for their first call at once; while that
    /// many do, no new one is accepted (it waits in the listen backlog, then
    /// in the client's connect), and established connections are not
    /// counted: a flood of silent connections cannot take every file
    /// descriptor, and a reconnect storm is slowed down, not turned away.
    pub grpc_max_handshakes: usize,
    /// Start a new fleet even where there is evidence of an existing one:
    /// a SQLite database whose marker says it existed, or issued spoke
    /// certificates without a CA (`--init-new-fleet`). See [`Server::start`].
    pub init_new_fleet: bool,
    /// The host other replicas reach this one's gRPC port at (a pod IP, a headless Service name); with it,
    /// live reads and exec about a cluster another replica holds are relayed there, and this replica registers
    /// `scheme://peer_host:grpc-port` for its peers. With TLS, the serving certificate must name it
    /// (`--tls-name`). `None`: no relaying (such calls are answered UNAVAILABLE naming the holder).
    pub peer_host: Option<String>,
    /// Mark the console's session cookie `Secure`: browsers reach the console over HTTPS (an Ingress or load
    /// balancer terminating TLS in front of the HTTP port), so the cookie never travels in clear text.
    pub console_secure_cookies: bool,
    /// The CA certificate (PEM) of the PostgreSQL server: the hub connects over TLS and verifies the server's
    /// certificate and name against it (`--database-ca-file`).
    pub database_ca_file: Option<PathBuf>,
}

impl ServerConfig {
    /// Loopback ports chosen by the OS, the given database, no authentication.
    pub fn insecure_local(database: Database) -> Self {
        let replica_id = format!("hub-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            authenticator: Arc::new(OpenAccess),
            tls: None,
            replica_id,
            link: LinkConfig::default(),
            api: ApiConfig::default(),
            drain_timeout: Duration::from_secs(10),
            drain_retry_after: Duration::from_secs(1),
            security: None,
            appsets: crate::appsets::AppSetConfig::default(),
            git_cache_dir: None,
            helm_binary: "helm".into(),
            http: crate::admin::HttpLimits::default(),
            grpc_handshake_timeout: Duration::from_secs(30),
            grpc_max_handshakes: 512,
            init_new_fleet: false,
            peer_host: None,
            console_secure_cookies: false,
            database_ca_file: None,
        }
    }
}

/// Why a hub could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the fleet store")]
    Store(#[source] StoreError),
    #[error(
        "the fleet database {} is missing, but {} shows that it held this hub's fleet; \
         starting would create an empty database and a new CA and lock out every enrolled spoke. \
         Restore the database from a backup, or start with --init-new-fleet \
         (EDGECD_HUB_INIT_NEW_FLEET=true) to create a new, empty fleet deliberately",
        database.display(),
        marker.display()
    )]
    FleetDatabaseMissing { database: PathBuf, marker: PathBuf },
    #[error(
        "the fleet store has no CA, but spoke certificates were issued by one (cluster {cluster}); \
         minting a new CA would lock out every enrolled spoke. Restore the database, or start \
         with --init-new-fleet (EDGECD_HUB_INIT_NEW_FLEET=true) to mint a new CA deliberately \
         (every spoke must then enroll again)"
    )]
    FleetWithoutCa { cluster: String },
    #[error("cannot open the hub's git cache")]
    GitCache(#[source] std::io::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid TLS configuration")]
    Tls(#[source] tonic::transport::Error),
    #[error("cannot set up the hub CA")]
    Pki(#[source] crate::pki::PkiError),
    #[error("cannot set up operator accounts: {0}")]
    Auth(String),
    #[error("the gRPC server failed")]
    Grpc(#[source] tonic::transport::Error),
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
}

/// The hub entry point.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Opens the store, binds both ports and starts serving.
    #[tracing::instrument(skip_all, fields(replica = %config.replica_id))]
    pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
        // The concrete stores serve both the fleet and the security records.
        let (store, security): (Arc<dyn Store>, Option<Arc<dyn crate::store::SecurityStore>>) =
            match &config.database {
                Database::Sqlite(path) => {
                    check_fleet_database(path, config.init_new_fleet)?;
                    let store =
                        Arc::new(SqliteStore::open(path).await.map_err(ServerError::Store)?);
                    (store.clone(), Some(store))
                }
                Database::Postgres(url) => {
                    let store = Arc::new(
                        PgStore::connect_url_with_ca(url, config.database_ca_file.as_deref())
                            .await
                            .map_err(ServerError::Store)?,
                    );
                    (store.clone(), Some(store))
                }
                Database::Store(store) => (
                    Arc::clone(store),
                    config.security.as_ref().and_then(|s| s.store.clone()),
                ),
            };
        let mut tls = config.tls.clone();
        let mut authenticator = Arc::clone(&config.authenticator);
        // The API issues bootstrap tokens and seals repository credentials only with operator accounts.
        let mut api_pki = None;
        let pki = match (&config.security, security) {
            (Some(settings), Some(security)) => {
                if matches!(settings.ca, crate::security::CaSettings::Stored(_))
                    && !config.init_new_fleet
                {
                    refuse_ca_over_fleet(store.as_ref(), security.as_ref()).await?;
                }
                let pki = Arc::new(
                    settings
                        .open(Arc::clone(&store), Arc::clone(&security))
                        .await
                        .map_err(ServerError::Pki)?,
                );
                if tls.is_none() {
                    tls = Some(
                        pki.server_tls_config(&settings.tls_names)
                            .map_err(ServerError::Pki)?,
                    );
                }
                if let Some(auth) = &settings.auth {
                    let accounts =
                        crate::auth::Accounts::new(Arc::clone(&store), security, auth.clone())
                            .map_err(|e| ServerError::Auth(e.to_string()))?;
                    if let Some(password) = &settings.initial_admin_password {
                        accounts
                            .ensure_admin(password)
                            .await
                            .map_err(|e| ServerError::Auth(e.to_string()))?;
                    }
                    authenticator = Arc::new(accounts);
                    api_pki = Some(Arc::clone(&pki));
                }
                Some(pki)
            }
            _ => None,
        };
        if let Database::Sqlite(path) = &config.database {
            mark_fleet_database(path, pki.as_deref(), config.init_new_fleet);
        }
        let link_config = LinkConfig {
            replica: config.replica_id.clone(),
            ..config.link.clone()
        };
        let metrics = Arc::new(Metrics::new(&link_config.counters));
        let mut link = SpokeLink::new(link_config, Arc::clone(&store));
        if let Some(pki) = &pki {
            link = link.with_pki(Arc::clone(pki));
        }
        let api = HubApi::new(
            ApiConfig {
                replica: config.replica_id.clone(),
                ..config.api.clone()
            },
            Arc::clone(&store),
            authenticator,
            Arc::clone(&metrics),
        );
        if let Some(pki) = api_pki {
            api.set_pki(pki);
        }
        api.set_live(Arc::clone(link.registry()));

        let grpc_listener = TcpListener::bind(config.grpc_listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.grpc_listen,
                source,
            })?;
        let http_listener = TcpListener::bind(config.http_listen)
            .await
            .map_err(|source| ServerError::Listen {
                addr: config.http_listen,
                source,
            })?;
        let grpc_addr = local_addr(&grpc_listener, config.grpc_listen)?;
        let http_addr = local_addr(&http_listener, config.http_listen)?;
        let registration = config.peer_host.as_deref().and_then(|host| {
            let ca = pki.as_ref().map(|p| p.ca_pem().to_owned());
            if tls.is_some() && ca.is_none() {
                tracing::warn!(
                    "--peer-host is set but the gRPC port's TLS is not the hub CA's: live calls are not relayed \
                     between replicas"
                );
                return None;
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            let address = format!("{scheme}://{host}:{}", grpc_addr.port());
            api.set_relay(Arc::new(crate::api::relay::Relay::new(
                config.replica_id.clone(),
                ca.filter(|_| tls.is_some()),
            )));
            Some(spawn_registration(
                Arc::clone(&store),
                config.replica_id.clone(),
                address,
            ))
        });

        let (git_dir, git_temp) = match &config.git_cache_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("edgecd-hub-git-")
                    .tempdir()
                    .map_err(ServerError::GitCache)?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        // Filled from the hub's sealed repository credentials by the controller.
        let git = edgecd_git::GitCache::new(
            edgecd_git::GitConfig::new(git_dir.clone()),
            edgecd_git::CredentialStore::new(edgecd_git::Credentials::default()),
        )
        .map_err(|e| ServerError::GitCache(std::io::Error::other(e.to_string())))?;
        let helm = Arc::new(edgecd_helm::HelmRenderer::new(
            edgecd_helm::HelmConfig::new(config.helm_binary.clone(), git_dir.join("helm")),
        ));
        let mut appsets =
            crate::appsets::AppSetController::new(Arc::clone(&store), git, config.appsets.clone())
                .with_helm(helm);
        if let Some(pki) = &pki {
            appsets = appsets.with_pki(Arc::clone(pki));
        }
        appsets = appsets.with_leader_gauge(metrics.appsets_leader.clone());
        api.set_appset_controller(appsets.clone());

        let mut background = vec![
            link.spawn_router(),
            link.spawn_sweeper(),
            link.spawn_watch(),
            api.spawn_change_feed(),
        ];
        background.push(appsets.spawn());
        background.extend(registration);

        let (stop_tx, stop_rx) = watch::channel(false);
        let handshakes = Arc::new(Handshakes::default());
        let served = Arc::clone(&handshakes);
        let mut builder = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            // The first call on a connection ends its handshake deadline.
            .layer(tonic::service::InterceptorLayer::new(
                move |request: tonic::Request<()>| {
                    if let Some(peer) = request.remote_addr() {
                        served.served(peer);
                    }
                    Ok(request)
                },
            ));
        let tls_enabled = tls.is_some();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).map_err(ServerError::Tls)?;
        }
        let router = builder
            .add_service(SpokeServiceServer::new(link.clone()))
            .add_service(HubServiceServer::new(api.clone()));
        let mut grpc_stop = stop_rx.clone();
        let (kill, killed) = watch::channel(false);
        let handshake_timeout = config.grpc_handshake_timeout;
        // At least one, or nothing would ever be accepted.
        let max_handshakes = config.grpc_max_handshakes.max(1);
        // While `max_handshakes` connections wait for their first call, accepting pauses: a new connection
        // waits in the listen backlog instead of being closed, so a reconnect storm (every spoke dialling at
        // once, the hub busy) is served at the pace the hub can, not turned away to come back into the same
        // crowd.
        let incoming = futures::stream::unfold(
            (TcpListenerStream::new(grpc_listener), handshakes),
            move |(mut listener, handshakes)| {
                let killed = killed.clone();
                async move {
                    handshakes.room(max_handshakes).await;
                    let conn = listener.next().await?.map(|io| {
                        Killable::new(io, killed).with_handshake(&handshakes, handshake_timeout)
                    });
                    Some((conn, (listener, handshakes)))
                }
            },
        );
        let grpc = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = grpc_stop.wait_for(|stop| *stop).await;
                })
                .await
                .map_err(ServerError::Grpc)
        });
        let admin = crate::admin::router(crate::admin::AdminState {
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            link: link.clone(),
        });
        // The console shares the HTTP port; its JSON face calls the same
        // `HubApi` as gRPC clients (authn, authz, audit, pushback).
        let admin = admin.merge(crate::console::router(
            Arc::new(api.clone()),
            crate::console::ConsoleConfig {
                store: Some(Arc::clone(&store)),
                secure_cookies: config.console_secure_cookies,
            },
        ));
        let mut http_stop = stop_rx;
        let http_limits = config.http.clone();
        let http = tokio::spawn(async move {
            crate::admin::serve(http_listener, admin, http_limits, async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(ServerError::Http)
        });
        tracing::info!(%grpc_addr, %http_addr, tls = tls_enabled, "Hub serving.");
        Ok(RunningServer {
            grpc_addr,
            http_addr,
            store,
            pki,
            link,
            api,
            stop: stop_tx,
            kill,
            grpc: Some(grpc),
            http: Some(http),
            background,
            drain_timeout: config.drain_timeout,
            drain_retry_after: config.drain_retry_after,
            _git_temp: git_temp,
        })
    }
}

/// The marker next to a SQLite database (`hub.db` -> `hub.db.fleet`): the
/// path held a fleet's database. Outside the database, so that it survives
/// the database's removal; `hub.db*` globs include it on purpose (removing
/// everything is a deliberate reset).
pub fn fleet_marker_path(database: &Path) -> PathBuf {
    let mut name = database
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".fleet");
    database.with_file_name(name)
}

/// Refuses to create a new SQLite database where the marker says one
/// existed, unless `init_new_fleet`.
fn check_fleet_database(database: &Path, init_new_fleet: bool) -> Result<(), ServerError> {
    let missing = matches!(
        std::fs::symlink_metadata(database),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound
    );
    let marker = fleet_marker_path(database);
    if missing && marker.exists() {
        if !init_new_fleet {
            return Err(ServerError::FleetDatabaseMissing {
                database: database.to_path_buf(),
                marker,
            });
        }
        tracing::warn!(
            database = %database.display(),
            "The fleet database is missing: creating a new, empty fleet (--init-new-fleet)."
        );
    }
    Ok(())
}

/// Writes the marker of [`check_fleet_database`] (with the CA's hash) if it
/// is absent or a new fleet was started. Best effort: a hub that cannot
/// write it runs, without that protection, and says so.
fn mark_fleet_database(database: &Path, pki: Option<&crate::pki::Pki>, init_new_fleet: bool) {
    let marker = fleet_marker_path(database);
    if marker.exists() && !init_new_fleet {
        return;
    }
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = format!(
        "# edgecd hub: {name} next to this file holds a fleet's database.\n\
         # If {name} is missing, edgecd-hub refuses to start (it would create an empty\n\
         # database and a new CA): restore {name}, or start with --init-new-fleet.\n\
         database={name}\n\
         marked_at={}\n\
         ca={}\n",
        OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        pki.map(crate::pki::Pki::ca_hash).unwrap_or_default(),
    );
    if let Err(error) = std::fs::write(&marker, text) {
        tracing::warn!(
            marker = %marker.display(),
            %error,
            "Cannot write the fleet marker: a lost database would not be noticed at the next start."
        );
    }
}

/// Refuses to mint a CA when the store has none but records certificates
/// issued to spokes (by a CA that is gone): evidence of an enrolled fleet.
async fn refuse_ca_over_fleet(
    store: &dyn Store,
    security: &dyn crate::store::SecurityStore,
) -> Result<(), ServerError> {
    let io = |error| ServerError::Pki(crate::pki::PkiError::Store(error));
    if security.get_hub_ca().await.map_err(io)?.is_some() {
        return Ok(());
    }
    let clusters = store
        .list_clusters(&edgecd_core::selector::LabelSelector::default())
        .await
        .map_err(ServerError::Store)?;
    for cluster in clusters {
        if !security
            .list_certificates(&cluster.name)
            .await
            .map_err(io)?
            .is_empty()
        {
            return Err(ServerError::FleetWithoutCa {
                cluster: cluster.name,
            });
        }
    }
    Ok(())
}

fn local_addr(listener: &TcpListener, wanted: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Listen {
        addr: wanted,
        source,
    })
}

/// Registers this replica's peer address now and every minute (a replica's row says where it answers).
fn spawn_registration(store: Arc<dyn Store>, replica: String, address: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match store.register_replica(&replica, &address).await {
                Ok(()) => tracing::debug!(%address, "Peer address registered."),
                Err(error) => {
                    tracing::warn!(%error, "Cannot register this replica's peer address.")
                }
            }
        }
    })
}

/// A started hub replica.
#[derive(Debug)]
pub struct RunningServer {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    store: Arc<dyn Store>,
    pki: Option<Arc<crate::pki::Pki>>,
    link: SpokeLink,
    api: HubApi,
    stop: watch::Sender<bool>,
    /// Closes every accepted gRPC connection at once.
    kill: watch::Sender<bool>,
    /// The git cache directory when none was configured.
    _git_temp: Option<tempfile::TempDir>,
    grpc: Option<JoinHandle<Result<(), ServerError>>>,
    http: Option<JoinHandle<Result<(), ServerError>>>,
    background: Vec<JoinHandle<()>>,
    drain_timeout: Duration,
    drain_retry_after: Duration,
}

impl RunningServer {
    /// The bound gRPC address (`SpokeService` and `HubService`).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address (`/live`, `/ready`, `/metrics`).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The hub CA and enrollment (bootstrap tokens), when configured.
    pub fn pki(&self) -> Option<&Arc<crate::pki::Pki>> {
        self.pki.as_ref()
    }

    /// Clusters whose spoke stream this replica holds.
    pub fn connected_clusters(&self) -> Vec<String> {
        self.link.registry().connected()
    }

    /// Waits until the gRPC or HTTP server stops on its own (an error).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        let (Some(grpc), Some(http)) = (self.grpc.as_mut(), self.http.as_mut()) else {
            return Ok(());
        };
        let result = tokio::select! {
            r = grpc => r,
            r = http => r,
        };
        match result {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }

    /// Graceful shutdown: tells connected spokes to reconnect elsewhere
    /// (`GoAway`, draining, with a retry-after), ends `Watch` streams, stops
    /// accepting, and waits up to the drain timeout for calls in flight.
    #[tracing::instrument(skip_all, fields(grpc = %self.grpc_addr))]
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        tracing::info!("Draining the hub replica.");
        self.link.drain(self.drain_retry_after);
        self.api.close();
        // Sessions send GoAway and end their streams on their own.
        let wait_sessions = async {
            while !self.link.registry().connected().is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout(self.drain_timeout, wait_sessions).await;
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for task in [self.grpc.take(), self.http.take()].into_iter().flatten() {
            let abort = task.abort_handle();
            match tokio::time::timeout(self.drain_timeout, task).await {
                Ok(Ok(Err(error))) => result = Err(error),
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("Drain timed out; closing remaining connections.");
                    let _ = self.kill.send(true);
                    abort.abort();
                }
            }
        }
        let _ = self.kill.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
        tracing::info!("Hub replica stopped.");
        result
    }

    /// Stops at once, like a crashed process: no GoAway, no drain.
    pub fn abort(mut self) {
        let _ = self.kill.send(true);
        for task in [self.grpc.take(), self.http.take()].into_iter().flatten() {
            task.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.kill.send(true);
        for task in [self.grpc.take(), self.http.take()].into_iter().flatten() {
            task.abort();
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

/// gRPC connections still waiting for their first call, by peer address
/// (unique among a listener's open connections): the call's interceptor
/// marks the connection, which then drops its handshake deadline.
#[derive(Debug, Default)]
struct Handshakes {
    waiting: std::sync::Mutex<HashMap<SocketAddr, Arc<AtomicBool>>>,
    /// Told when a connection stops waiting.
    freed: tokio::sync::Notify,
}

impl Handshakes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<AtomicBool>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Returns once fewer than `max` connections wait for their first call.
    async fn room(&self, max: usize) {
        let mut paused = false;
        loop {
            // Made before the check: a connection freed in between still wakes it.
            let freed = self.freed.notified();
            let waiting = self.waiting();
            if waiting < max {
                return;
            }
            if !paused {
                paused = true;
                tracing::warn!(
                    waiting,
                    max_handshakes = max,
                    "Too many gRPC connections without a call: accepting paused until one makes its first call or is closed."
                );
            }
            // A connection's deadline passing wakes it too (`forget`); the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_millis(100), freed).await;
        }
    }

    fn register(&self, peer: SocketAddr) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().insert(peer, Arc::clone(&flag));
        flag
    }

    fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn served(&self, peer: SocketAddr) {
        let removed = self.lock().remove(&peer);
        if let Some(flag) = removed {
            flag.store(true, Ordering::Release);
            self.freed.notify_waiters();
        }
    }

    fn forget(&self, peer: SocketAddr, flag: &Arc<AtomicBool>) {
        let removed = {
            let mut waiting = self.lock();
            waiting.get(&peer).is_some_and(|f| Arc::ptr_eq(f, flag))
                && waiting.remove(&peer).is_some()
        };
        if removed {
            self.freed.notify_waiters();
        }
    }
}

/// A connection's deadline for its first call.
struct Handshake {
    peer: SocketAddr,
    served: Arc<AtomicBool>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    registry: Arc<Handshakes>,
}

/// An accepted connection that fails as soon as the server is killed, so
/// that `abort` (and the end of a drain) leaves no connection served, or
/// when it has not sent a call by its handshake deadline (a client that
/// never finishes TLS or never sends the HTTP/2 preface).
struct Killable {
    io: tokio::net::TcpStream,
    killed: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
    handshake: Option<Handshake>,
}

impl Killable {
    fn new(io: tokio::net::TcpStream, mut killed: watch::Receiver<bool>) -> Self {
        Self {
            io,
            killed: Box::pin(async move {
                let _ = killed.wait_for(|k| *k).await;
            }),
            handshake: None,
        }
    }

    fn with_handshake(mut self, registry: &Arc<Handshakes>, timeout: Duration) -> Self {
        if let Ok(peer) = self.io.peer_addr() {
            self.handshake = Some(Handshake {
                peer,
                served: registry.register(peer),
                deadline: Box::pin(tokio::time::sleep(timeout)),
                registry: Arc::clone(registry),
            });
        }
        self
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        if let Poll::Ready(()) = self.killed.as_mut().poll(cx) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "hub replica stopped",
            ));
        }
        if let Some(handshake) = &mut self.handshake {
            if handshake.served.load(Ordering::Acquire) {
                self.handshake = None;
            } else if handshake.deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!(peer = %handshake.peer, "No gRPC call before the handshake deadline: closing.");
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no call within the handshake timeout",
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        if let Some(handshake) = &self.handshake {
            handshake.registry.forget(handshake.peer, &handshake.served);
        }
    }
}

impl std::fmt::Debug for Killable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Killable").field("io", &self.io).finish()
    }
}

impl AsyncRead for Killable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Killable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Killable {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
