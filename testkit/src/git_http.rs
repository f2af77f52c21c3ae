//! A git smart-HTTP(S) server on loopback: `git http-backend` as CGI behind Basic auth, optionally over TLS.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::oneshot;

use crate::git::GitRepo;
use crate::{Error, Result, io_error};

/// The only user the server accepts.
pub const HTTP_USER: &str = "edgecd";
/// Its password.
pub const HTTP_PASSWORD: &str = "s3cret-pass";

/// Serves every bare repository under a temp dir through `git http-backend`, read-only, on a free loopback
/// port. Every request needs Basic auth with [`HTTP_USER`]/[`HTTP_PASSWORD`]; otherwise the answer is `401`
/// with `WWW-Authenticate: Basic`. Stopped when dropped.
#[derive(Debug)]
pub struct GitHttpServer {
    base: tempfile::TempDir,
    addr: SocketAddr,
    tls: Option<TestCa>,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A test CA and the PEM of its certificate (what a client pins).
#[derive(Debug, Clone)]
pub struct TestCa {
    pub ca_pem: String,
    /// The server certificate and its key (PKCS#8), PEM: for servers configured by files.
    pub server_cert_pem: String,
    pub server_key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl GitHttpServer {
    /// Plain `http://`.
    pub fn start() -> Result<Self> {
        Self::start_with(None)
    }

    /// `https://` with a certificate for `localhost` and `127.0.0.1` signed by a fresh CA ([`Self::ca_pem`]).
    pub fn start_tls() -> Result<Self> {
        Self::start_with(Some(TestCa::generate()?))
    }

    fn start_with(tls: Option<TestCa>) -> Result<Self> {
        let base = tempfile::Builder::new()
            .prefix("edgecd-git-http-")
            .tempdir()
            .map_err(io_error("creating the git http server dir"))?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(io_error("binding the git http server"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("configuring the git http listener"))?;
        let addr = listener
            .local_addr()
            .map_err(io_error("reading the git http server address"))?;
        let acceptor = match &tls {
            Some(ca) => Some(ca.acceptor()?),
            None => None,
        };
        let shared = Arc::new(Shared {
            root: base.path().to_path_buf(),
            redirects: Mutex::new(Vec::new()),
        });
        let serving = shared.clone();
        let (shutdown, stop) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(io_error("starting the git http server runtime"))?;
        let thread = std::thread::Builder::new()
            .name("git-http-server".into())
            .spawn(move || runtime.block_on(serve(listener, acceptor, serving, stop)))
            .map_err(io_error("starting the git http server thread"))?;
        Ok(Self {
            base,
            addr,
            tls,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of repository `name` (without credentials), `https://localhost:…` when serving TLS.
    pub fn url(&self, name: &str) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}/{name}.git", self.addr.port()),
            None => format!("http://127.0.0.1:{}/{name}.git", self.addr.port()),
        }
    }

    /// The PEM of the CA that signed the server certificate (TLS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|ca| ca.ca_pem.as_str())
    }

    /// Answers every request for repository `name` with a `302` to the same path under `target` (a URL
    /// such as `http://127.0.0.1:1234/other.git`), before any authentication.
    pub fn redirect(&self, name: &str, target: &str) -> String {
        self.shared
            .redirects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((
                format!("/{name}.git"),
                target.trim_end_matches('/').to_owned(),
            ));
        self.url(name)
    }

    /// Serves the bare repository of `repo` (e.g. a [`GitRepo::local`]) as `name` and returns its URL.
    ///
    /// The server sees later commits of `repo` immediately (the repository is linked, not copied).
    pub fn serve(&self, name: &str, repo: &GitRepo) -> Result<String> {
        let link = self.base.path().join(format!("{name}.git"));
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(format!("creating {parent:?}")))?;
        }
        std::os::unix::fs::symlink(repo.bare_path(), &link)
            .map_err(io_error(format!("linking {link:?}")))?;
        Ok(self.url(name))
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What every connection task sees.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    /// (path prefix, target URL) pairs.
    redirects: Mutex<Vec<(String, String)>>,
}

impl Shared {
    fn redirect_for(&self, uri: &hyper::Uri) -> Option<String> {
        let redirects = self
            .redirects
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let path = uri.path();
        redirects.iter().find_map(|(prefix, target)| {
            let rest = path.strip_prefix(prefix.as_str())?;
            let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
            Some(format!("{target}{rest}{query}"))
        })
    }
}

async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, shared.clone()));
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    }
                }
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    if let Some(location) = shared.redirect_for(request.uri()) {
        return Ok(Response::builder()
            .status(StatusCode::FOUND)
            .header(hyper::header::LOCATION, location)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default());
    }
    if !authorized(&request) {
        return Ok(Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"edgecd-test\"")
            .body(Full::new(Bytes::from_static(b"authentication required\n")))
            .unwrap_or_default());
    }
    Ok(match cgi(request, &shared.root).await {
        Ok(response) => response,
        Err(message) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Full::new(Bytes::from(message)))
            .unwrap_or_default(),
    })
}

fn authorized(request: &Request<Incoming>) -> bool {
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{HTTP_USER}:{HTTP_PASSWORD}"));
    request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .is_some_and(|given| given.trim() == expected)
}

/// Runs `git http-backend` for one request (RFC 3875 CGI) and turns its output into a response.
async fn cgi(
    request: Request<Incoming>,
    root: &Path,
) -> std::result::Result<Response<Full<Bytes>>, String> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| format!("reading the request body: {error}"))?
        .to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", HTTP_USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("AUTH_TYPE", "Basic")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|error| format!("starting git http-backend: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&body)
            .await
            .map_err(|error| format!("writing to git http-backend: {error}"))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| format!("running git http-backend: {error}"))?;
    parse_cgi_output(&output.stdout)
}

fn parse_cgi_output(output: &[u8]) -> std::result::Result<Response<Full<Bytes>>, String> {
    let (head, body) = match find(output, b"\r\n\r\n") {
        Some(index) => (&output[..index], &output[index + 4..]),
        None => match find(output, b"\n\n") {
            Some(index) => (&output[..index], &output[index + 2..]),
            None => return Err("git http-backend wrote no CGI header".into()),
        },
    };
    let mut response = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            let code = code.parse::<u16>().unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    response
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|error| format!("bad CGI header: {error}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// === impl TestCa ===

impl TestCa {
    /// A fresh CA and a server certificate for `localhost` and `127.0.0.1` it signed.
    pub fn generate() -> Result<Self> {
        let setup =
            |error: rcgen::Error| Error::Setup(format!("generating test certificates: {error}"));
        let ca_key = rcgen::KeyPair::generate().map_err(setup)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(setup)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "edgecd test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(setup)?;
        let server_key = rcgen::KeyPair::generate().map_err(setup)?;
        let mut server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(setup)?;
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server = server_params.signed_by(&server_key, &ca).map_err(setup)?;
        Ok(Self {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            cert_der: server.der().to_vec(),
            key_der: server_key.serialize_der(),
        })
    }

    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor> {
        let setup = |error: rustls::Error| Error::Setup(format!("configuring TLS: {error}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(setup)?
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(
                    self.cert_der.clone(),
                )],
                key,
            )
            .map_err(setup)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
