//! Helm chart repositories: `index.yaml` fetched over HTTP(S) (bounded in size and time, briefly cached), the version resolved (exact or a semver range), the packaged chart downloaded, checked against the index's digest and cached by digest; `oci://` repositories are handed to [`crate::oci`], which shares the package cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use edgecd_git::RepoCredential;
use http_body_util::BodyExt as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

/// Bounds of the chart repository client.
#[derive(Debug, Clone, Copy)]
pub struct RepoLimits {
    /// Largest `index.yaml` accepted.
    pub max_index_bytes: usize,
    /// Largest packaged chart accepted.
    pub max_chart_bytes: usize,
    /// Time for one request (connect, headers and body).
    pub timeout: Duration,
    /// How long a fetched index is reused (a hard refresh fetches it again); also an OCI repository's tags.
    pub index_ttl: Duration,
    /// OCI registries (`oci://`).
    pub oci: crate::oci::OciLimits,
}

impl Default for RepoLimits {
    fn default() -> Self {
        Self {
            max_index_bytes: 64 * 1024 * 1024,
            max_chart_bytes: 32 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            index_ttl: Duration::from_secs(60),
            oci: crate::oci::OciLimits::default(),
        }
    }
}

/// Why a chart could not be had from its repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error("chart repository {repo}: fetching {url}: {reason}")]
    Fetch {
        repo: String,
        url: String,
        reason: String,
    },
    #[error("chart repository {repo}: index.yaml: {reason}")]
    Index { repo: String, reason: String },
    #[error("chart repository {repo}: no chart {chart:?} in its index")]
    NoChart { repo: String, chart: String },
    #[error(
        "chart repository {repo}: chart {chart}: no version matches {wanted:?} (latest: {latest})"
    )]
    NoVersion {
        repo: String,
        chart: String,
        wanted: String,
        latest: String,
    },
    #[error(
        "chart repository {repo}: chart {chart} {version}: digest mismatch (index: sha256:{expected}, downloaded: sha256:{actual}); not used"
    )]
    Digest {
        repo: String,
        chart: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error("chart cache {path}: {reason}")]
    Cache { path: String, reason: String },
    /// An OCI registry's (boxed: it is the largest).
    #[error(transparent)]
    Oci(Box<crate::oci::OciError>),
}

/// One chart version of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartVersion {
    pub version: String,
    pub urls: Vec<String>,
    /// Hex SHA-256 of the package, when the index gives one.
    pub digest: Option<String>,
}

/// A chart repository's index: versions by chart name.
pub type Index = HashMap<String, Vec<ChartVersion>>;

/// A chart ready to render: its version and the verified package in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedChart {
    pub version: String,
    /// Hex SHA-256 of the package.
    pub digest: String,
    pub package: PathBuf,
    /// What the package is: a Helm chart ([`CHART_LAYER_MEDIA_TYPE`](crate::oci::CHART_LAYER_MEDIA_TYPE)), or
    /// another of an OCI artifact's [content layer types](crate::oci::ARTIFACT_LAYER_MEDIA_TYPES).
    pub media_type: &'static str,
    /// Hex SHA-256 of the OCI manifest the package was found through (empty for a chart repository).
    pub manifest_digest: String,
}

/// The chart repository client of one process: indexes reused for a while, packages cached by digest.
#[derive(Debug)]
pub struct ChartRepos {
    dir: PathBuf,
    limits: RepoLimits,
    indexes: Mutex<HashMap<String, (Instant, Arc<Index>)>>,
    oci: crate::oci::OciCache,
}

/// Parses an `index.yaml` document.
pub fn parse_index(text: &str, max_bytes: usize) -> Result<Index, String> {
    let budget = edgecd_render::yaml::Budget::new(max_bytes as u64);
    let doc = edgecd_render::yaml::load_one_within(text, &budget).map_err(|e| e.to_string())?;
    let entries = doc
        .get("entries")
        .and_then(serde_json::Value::as_object)
        .ok_or("no `entries` mapping")?;
    let mut index = Index::new();
    for (name, versions) in entries {
        let Some(versions) = versions.as_array() else {
            continue;
        };
        let list = versions
            .iter()
            .filter_map(|v| {
                let version = v.get("version")?.as_str()?.to_owned();
                let urls = v
                    .get("urls")
                    .and_then(serde_json::Value::as_array)
                    .map(|u| {
                        u.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let digest = v
                    .get("digest")
                    .and_then(serde_json::Value::as_str)
                    .map(|d| d.trim_start_matches("sha256:").to_ascii_lowercase())
                    .filter(|d| !d.is_empty());
                Some(ChartVersion {
                    version,
                    urls,
                    digest,
                })
            })
            .collect();
        index.insert(name.clone(), list);
    }
    Ok(index)
}

/// The version `wanted` names: an exact version (as written in the index, a leading `v` aside), else the
/// highest version a semver range accepts (Helm's syntax: `^1.2`, `~1.2.0`, `>=1.0 <2.0`, `1.2.x`, `*`,
/// alternatives with `||`); empty is the latest stable version. Pre-releases only match a range that names
/// one.
pub fn resolve_version<'i>(versions: &'i [ChartVersion], wanted: &str) -> Option<&'i ChartVersion> {
    let wanted = wanted.trim();
    let bare = |v: &str| v.trim_start_matches('v').to_owned();
    if !wanted.is_empty()
        && let Some(exact) = versions.iter().find(|v| bare(&v.version) == bare(wanted))
    {
        return Some(exact);
    }
    // A plain version is exact in Helm (not a caret range as in Cargo).
    if semver::Version::parse(&bare(wanted)).is_ok() {
        return None;
    }
    let wanted = if wanted.is_empty() { "*" } else { wanted };
    let alternatives: Vec<semver::VersionReq> = wanted
        .split("||")
        .filter_map(|alt| semver::VersionReq::parse(&to_cargo_req(alt)).ok())
        .collect();
    versions
        .iter()
        .filter_map(|v| Some((semver::Version::parse(&bare(&v.version)).ok()?, v)))
        .filter(|(parsed, _)| alternatives.iter().any(|req| req.matches(parsed)))
        .max_by(|(a, _), (b, _)| a.cmp(b))
        .map(|(_, v)| v)
}

/// A Helm (Masterminds) constraint in the `semver` crate's syntax: comparators separated by commas, an
/// operator written apart from its version joined to it, `v` prefixes dropped.
fn to_cargo_req(constraint: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut pending = String::new();
    for token in constraint
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if token
            .chars()
            .all(|c| matches!(c, '<' | '>' | '=' | '~' | '^' | '!'))
        {
            pending.push_str(token);
            continue;
        }
        let op_end = token
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^' | '!'))
            .unwrap_or(token.len());
        let (op, version) = token.split_at(op_end);
        let version = version.trim_start_matches('v');
        // A bare version inside a range is exact, as in Helm.
        let op = match (pending.as_str(), op) {
            ("", "")
                if version.chars().any(|c| c.is_ascii_digit())
                    && !version.contains(['x', 'X', '*']) =>
            {
                "=".to_owned()
            }
            (p, o) => format!("{p}{o}"),
        };
        out.push(format!("{op}{version}"));
        pending.clear();
    }
    out.join(", ")
}

/// Roots for https: the system's (read once) and a repository credential's CA.
pub(crate) fn tls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    static SYSTEM: OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> = OnceLock::new();
    let system = SYSTEM.get_or_init(|| rustls_native_certs::load_native_certs().certs);
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system.iter().cloned());
    if let Some(pem) = ca_pem {
        use rustls_pki_types::pem::PemObject as _;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| format!("the credential's CA: {e}"))?)
                .map_err(|e| format!("the credential's CA: {e}"))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Scheme, host and port of a URL: where credentials may be sent.
pub(crate) fn origin(uri: &http::Uri) -> (String, String, u16) {
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    (
        scheme,
        uri.host().unwrap_or_default().to_ascii_lowercase(),
        port,
    )
}

/// Credentials for one fetch: sent to `origin` only, or everywhere with `pass_credentials`.
struct Auth<'a> {
    credential: Option<&'a RepoCredential>,
    origin: (String, String, u16),
    pass_credentials: bool,
}

impl Auth<'_> {
    fn header_for(&self, uri: &http::Uri) -> Option<String> {
        let credential = self.credential?;
        if !self.pass_credentials && origin(uri) != self.origin {
            return None;
        }
        let password = credential.password.as_ref()?;
        let user = credential.username.as_deref().unwrap_or_default();
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose_secret()));
        Some(format!("Basic {token}"))
    }
}

/// GET with redirects (at most five), a size limit and a deadline.
async fn get(
    url: &str,
    auth: &Auth<'_>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let ca = auth.credential.and_then(|c| c.ca_cert_pem.as_deref());
    let work = async {
        let mut uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        for _ in 0..6 {
            match get_once(&uri, auth, ca, max_bytes).await? {
                Fetched::Body(body) => return Ok(body),
                Fetched::Redirect(location) => {
                    uri = join_url(&uri, &location)?;
                }
            }
        }
        Err("too many redirects".to_owned())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

enum Fetched {
    Body(Vec<u8>),
    Redirect(String),
}

async fn get_once(
    uri: &http::Uri,
    auth: &Auth<'_>,
    ca: Option<&str>,
    max_bytes: usize,
) -> Result<Fetched, String> {
    let (scheme, host, port) = origin(uri);
    if host.is_empty() {
        return Err("no host".into());
    }
    let https = match scheme.as_str() {
        "https" => true,
        "http" => false,
        other => return Err(format!("unsupported scheme {other:?}")),
    };
    let path = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let host_header = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
        None => uri.host().unwrap_or_default().to_owned(),
    };
    let mut request = http::Request::get(path)
        .header(http::header::HOST, host_header)
        .header(http::header::USER_AGENT, "edgecd-helm");
    if let Some(header) = auth.header_for(uri) {
        request = request.header(http::header::AUTHORIZATION, header);
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let connect_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((connect_host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let response = if https {
        let name = rustls_pki_types::ServerName::try_from(connect_host.clone())
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(tls_config(ca)?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        send(hyper_util::rt::TokioIo::new(tls), request).await?
    } else {
        send(hyper_util::rt::TokioIo::new(tcp), request).await?
    };
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("HTTP {status} without a Location"))?;
        return Ok(Fetched::Redirect(location.to_owned()));
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let body = http_body_util::Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                format!("larger than {max_bytes} bytes")
            } else {
                e.to_string()
            }
        })?;
    Ok(Fetched::Body(body.to_bytes().to_vec()))
}

pub(crate) async fn send<T>(
    io: T,
    request: http::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// `reference` (absolute, or relative to `base` as a browser resolves it) as a URI.
pub(crate) fn join_url(base: &http::Uri, reference: &str) -> Result<http::Uri, String> {
    if reference.contains("://") {
        return reference.parse().map_err(|e| format!("{reference:?}: {e}"));
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let path = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        let base_path = base.path();
        let dir = base_path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{reference}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| format!("{reference:?}: {e}"))
}

/// `repo_url` as the base of its `index.yaml` (with a trailing slash).
fn repo_base(repo_url: &str) -> String {
    format!("{}/", repo_url.trim_end_matches('/'))
}

impl ChartRepos {
    /// A client caching packages under `dir`.
    pub fn new(dir: impl Into<PathBuf>, limits: RepoLimits) -> Self {
        Self {
            dir: dir.into(),
            limits,
            indexes: Mutex::default(),
            oci: crate::oci::OciCache::default(),
        }
    }

    /// The client's bounds.
    pub(crate) fn limits(&self) -> RepoLimits {
        self.limits
    }

    /// The package cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index of `repo_url` (reused within its TTL unless `hard`).
    pub async fn index(
        &self,
        repo_url: &str,
        credential: Option<&RepoCredential>,
        hard: bool,
    ) -> Result<Arc<Index>, RepoError> {
        let base_url = repo_base(repo_url);
        // Per credential: an index fetched with one is never handed to a render without it (a hub parent whose
        // project may not use the credential, another credential of the same repository).
        let identity = credential.map(|c| {
            format!(
                "{}\u{0}{}",
                c.url_prefix,
                c.username.as_deref().unwrap_or_default()
            )
        });
        let key = format!("{}\u{0}{base_url}", identity.unwrap_or_default());
        if !hard
            && let Some((at, index)) = self
                .indexes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
            && at.elapsed() < self.limits.index_ttl
        {
            return Ok(Arc::clone(index));
        }
        let url = format!("{base_url}index.yaml");
        let base: http::Uri = url.parse().map_err(|e| RepoError::Fetch {
            repo: repo_url.to_owned(),
            url: url.clone(),
            reason: format!("not a URL: {e}"),
        })?;
        let auth = Auth {
            credential,
            origin: origin(&base),
            pass_credentials: false,
        };
        let body = get(
            &url,
            &auth,
            self.limits.max_index_bytes,
            self.limits.timeout,
        )
        .await
        .map_err(|reason| RepoError::Fetch {
            repo: repo_url.to_owned(),
            url: url.clone(),
            reason,
        })?;
        let text = String::from_utf8(body).map_err(|_| RepoError::Index {
            repo: repo_url.to_owned(),
            reason: "not UTF-8".into(),
        })?;
        let index = Arc::new(parse_index(&text, self.limits.max_index_bytes).map_err(
            |reason| RepoError::Index {
                repo: repo_url.to_owned(),
                reason,
            },
        )?);
        let mut indexes = self.indexes.lock().unwrap_or_else(PoisonError::into_inner);
        if indexes.len() >= 32 {
            indexes.clear();
        }
        indexes.insert(key, (Instant::now(), Arc::clone(&index)));
        Ok(index)
    }

    /// The package of `chart` at the version `wanted` resolves to, from the cache when its digest is there,
    /// else downloaded and verified against the index's digest. An `oci://` repository is an OCI registry
    /// ([`crate::oci`]: tags, manifest, chart layer verified against its digest).
    pub async fn fetch(
        &self,
        repo_url: &str,
        chart: &str,
        wanted: &str,
        credential: Option<&RepoCredential>,
        pass_credentials: bool,
        hard: bool,
    ) -> Result<FetchedChart, RepoError> {
        if crate::oci::is_oci(repo_url) {
            return self
                .oci
                .fetch(
                    self,
                    repo_url,
                    crate::oci::Pull::Chart(chart),
                    wanted,
                    credential,
                    hard,
                )
                .await;
        }
        let index = self.index(repo_url, credential, hard).await?;
        let versions = index.get(chart).ok_or_else(|| RepoError::NoChart {
            repo: repo_url.to_owned(),
            chart: chart.to_owned(),
        })?;
        let found = resolve_version(versions, wanted).ok_or_else(|| RepoError::NoVersion {
            repo: repo_url.to_owned(),
            chart: chart.to_owned(),
            wanted: wanted.to_owned(),
            latest: resolve_version(versions, "")
                .map_or_else(|| "none".to_owned(), |v| v.version.clone()),
        })?;
        if let Some(digest) = &found.digest
            && let Some(package) = self.cached(repo_url, digest)
        {
            return Ok(FetchedChart {
                version: found.version.clone(),
                digest: digest.clone(),
                package,
                media_type: crate::oci::CHART_LAYER_MEDIA_TYPE,
                manifest_digest: String::new(),
            });
        }
        let fetch_error = |url: &str, reason: String| RepoError::Fetch {
            repo: repo_url.to_owned(),
            url: url.to_owned(),
            reason,
        };
        let first = found.urls.first().ok_or_else(|| {
            fetch_error(
                repo_url,
                format!("chart {chart} {} has no URL", found.version),
            )
        })?;
        let index_uri: http::Uri = format!("{}index.yaml", repo_base(repo_url))
            .parse()
            .map_err(|e| fetch_error(repo_url, format!("not a URL: {e}")))?;
        let url = join_url(&index_uri, first).map_err(|e| fetch_error(first, e))?;
        let auth = Auth {
            credential,
            origin: origin(&index_uri),
            pass_credentials,
        };
        let url_text = url.to_string();
        let body = get(
            &url_text,
            &auth,
            self.limits.max_chart_bytes,
            self.limits.timeout,
        )
        .await
        .map_err(|reason| fetch_error(&url_text, reason))?;
        let actual = hex(&Sha256::digest(&body));
        if let Some(expected) = &found.digest
            && *expected != actual
        {
            return Err(RepoError::Digest {
                repo: repo_url.to_owned(),
                chart: chart.to_owned(),
                version: found.version.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        let package = self.store(repo_url, &actual, &body)?;
        Ok(FetchedChart {
            version: found.version.clone(),
            digest: actual,
            package,
            media_type: crate::oci::CHART_LAYER_MEDIA_TYPE,
            manifest_digest: String::new(),
        })
    }

    /// The content layer of the OCI artifact `repo_url` names (Argo CD's OCI sources) at the tag `wanted`
    /// resolves to (any tag as it is, else a semver range over the tags), cached by digest like packages.
    pub async fn fetch_artifact(
        &self,
        repo_url: &str,
        wanted: &str,
        credential: Option<&RepoCredential>,
        hard: bool,
    ) -> Result<FetchedChart, RepoError> {
        self.oci
            .fetch(
                self,
                repo_url,
                crate::oci::Pull::Artifact,
                wanted,
                credential,
                hard,
            )
            .await
    }

    /// Where a package of `origin` (a chart repository's URL, or `oci://registry/repository`) with this digest
    /// is cached: one directory per origin. A digest is no secret, so what was downloaded from one origin is
    /// never handed to a render that named another: a registry or index that names another's digest gets a
    /// cache miss and must serve the bytes itself.
    fn package_path(&self, origin: &str, digest: &str) -> PathBuf {
        let scope = hex(&Sha256::digest(origin.trim_end_matches('/').as_bytes()));
        self.dir
            .join(scope.get(..16).unwrap_or(&scope))
            .join(format!("sha256-{digest}.tgz"))
    }

    /// The cached package of `origin` with this digest, when present and intact.
    pub(crate) fn cached(&self, origin: &str, digest: &str) -> Option<PathBuf> {
        if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = self.package_path(origin, digest);
        let bytes = std::fs::read(&path).ok()?;
        (hex(&Sha256::digest(&bytes)) == digest).then_some(path)
    }

    pub(crate) fn store(
        &self,
        origin: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, RepoError> {
        let cache_error = |path: &Path, e: std::io::Error| RepoError::Cache {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let path = self.package_path(origin, digest);
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| cache_error(&dir, e))?;
        let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| cache_error(&dir, e))?;
        std::io::Write::write_all(&mut temp, bytes).map_err(|e| cache_error(&path, e))?;
        temp.persist(&path)
            .map_err(|e| cache_error(&path, e.error))?;
        Ok(path)
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn versions(list: &[&str]) -> Vec<ChartVersion> {
        list.iter()
            .map(|v| ChartVersion {
                version: (*v).to_owned(),
                urls: vec![format!("web-{v}.tgz")],
                digest: None,
            })
            .collect()
    }

    #[test]
    fn versions_resolve_exactly_or_by_range() {
        let all = versions(&[
            "1.0.0",
            "1.2.0",
            "1.2.5",
            "1.10.0",
            "2.0.0-rc.1",
            "2.0.0",
            "v3.1.0",
        ]);
        let pick = |wanted: &str| resolve_version(&all, wanted).map(|v| v.version.clone());
        assert_eq!(pick("1.2.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("v1.2.0").as_deref(), Some("1.2.0"));
        assert_eq!(pick("3.1.0").as_deref(), Some("v3.1.0"));
        assert_eq!(pick("1.3.0"), None, "a plain version is exact");
        assert_eq!(pick("^1.2").as_deref(), Some("1.10.0"));
        assert_eq!(pick("~1.2.0").as_deref(), Some("1.2.5"));
        assert_eq!(pick(">=1.0.0 <1.5.0").as_deref(), Some("1.2.5"));
        assert_eq!(pick(">= 1.0.0, < 1.5.0").as_deref(), Some("1.2.5"));
        assert_eq!(pick("1.2.x").as_deref(), Some("1.2.5"));
        assert_eq!(pick("*").as_deref(), Some("v3.1.0"));
        assert_eq!(pick("").as_deref(), Some("v3.1.0"));
        assert_eq!(pick("<2.0.0").as_deref(), Some("1.10.0"), "no pre-release");
        assert_eq!(pick("^1.0 || ^2.0").as_deref(), Some("2.0.0"));
        assert_eq!(pick(">=9"), None);
    }

    #[test]
    fn indexes_parse_and_keep_digests() {
        let index = parse_index(
            "apiVersion: v1\nentries:\n  web:\n  - version: 0.1.0\n    urls: [web-0.1.0.tgz]\n    digest: ABCDEF\n  - version: 0.2.0\n    urls: [https://cdn.example/web-0.2.0.tgz]\n",
            1 << 20,
        )
        .unwrap();
        let web = &index["web"];
        assert_eq!(web[0].digest.as_deref(), Some("abcdef"));
        assert_eq!(web[1].urls, ["https://cdn.example/web-0.2.0.tgz"]);
        assert!(parse_index("apiVersion: v1\n", 1 << 20).is_err());
    }

    #[test]
    fn relative_chart_urls_resolve_against_the_index() {
        let base: http::Uri = "https://charts.example/stable/index.yaml".parse().unwrap();
        assert_eq!(
            join_url(&base, "web-1.0.0.tgz").unwrap().to_string(),
            "https://charts.example/stable/web-1.0.0.tgz"
        );
        assert_eq!(
            join_url(&base, "/other/web.tgz").unwrap().to_string(),
            "https://charts.example/other/web.tgz"
        );
        assert_eq!(
            join_url(&base, "https://cdn.example/x.tgz")
                .unwrap()
                .to_string(),
            "https://cdn.example/x.tgz"
        );
    }

    /// Credentials go to the repository's own origin; elsewhere only with `passCredentials`.
    #[test]
    fn credentials_stay_on_the_repository_origin() {
        let credential = RepoCredential {
            url_prefix: "https://charts.example".into(),
            username: Some("u".into()),
            password: Some("p".to_owned().into()),
            ..RepoCredential::default()
        };
        let repo: http::Uri = "https://charts.example/stable/index.yaml".parse().unwrap();
        let other: http::Uri = "https://cdn.example/x.tgz".parse().unwrap();
        let mut auth = Auth {
            credential: Some(&credential),
            origin: origin(&repo),
            pass_credentials: false,
        };
        assert_eq!(auth.header_for(&repo).as_deref(), Some("Basic dTpw"));
        assert_eq!(auth.header_for(&other), None);
        auth.pass_credentials = true;
        assert!(auth.header_for(&other).is_some());
    }
}
