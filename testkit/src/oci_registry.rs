//! An OCI registry on loopback for tests: `testkit/ociregistry` (go-containerregistry's in-memory distribution registry, built by `scripts/ociregistry-build`), optionally behind basic auth or the Bearer token flow, and `helm push` into it with the real helm.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use crate::{Error, Result, io_error};

/// The build script, relative to this crate.
const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ociregistry-build");

/// How the registry authenticates `/v2/` requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OciAuth {
    /// Anyone may pull and push.
    #[default]
    Anonymous,
    /// HTTP basic auth with this user and password (401 with `WWW-Authenticate: Basic` otherwise).
    Basic { user: String, password: String },
    /// The Bearer token flow: a 401 names the token endpoint `/token` (realm, service, scope), which hands out
    /// tokens for basic auth with this user and password.
    Token { user: String, password: String },
}

impl OciAuth {
    /// Basic auth for `user` and `password`.
    pub fn basic(user: &str, password: &str) -> Self {
        Self::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The token flow for `user` and `password`.
    pub fn token(user: &str, password: &str) -> Self {
        Self::Token {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Self::Anonymous => None,
            Self::Basic { user, password } | Self::Token { user, password } => {
                Some((user, password))
            }
        }
    }
}

/// How to start the registry.
#[derive(Debug, Clone, Default)]
pub struct OciRegistryOptions {
    pub auth: OciAuth,
    /// Tags per page of a tag list (with a `Link` header to the next page); 0 serves them all at once.
    pub tags_page: usize,
    /// Every blob is served with its last byte flipped (for digest checks).
    pub corrupt_blobs: bool,
}

/// One request the registry answered, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `none`, `basic`, `bearer` (valid credentials of that kind) or `invalid`.
    pub auth: String,
    pub status: u16,
}

/// A running registry on `127.0.0.1`; stops when dropped (and when the test process dies: it exits when its
/// stdin closes).
#[derive(Debug)]
pub struct OciRegistry {
    child: Child,
    _stdin: ChildStdin,
    address: String,
    auth: OciAuth,
    dir: tempfile::TempDir,
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OciRegistry {
    /// Builds (or finds the cached) registry binary and starts it on a free loopback port.
    pub fn start(options: OciRegistryOptions) -> Result<Self> {
        Self::start_with(&binary()?, options)
    }

    /// Starts the registry binary `bin`.
    pub fn start_with(bin: &Path, options: OciRegistryOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("edgecd-ociregistry-")
            .tempdir()
            .map_err(io_error("creating the registry's temp dir"))?;
        let log = std::fs::File::create(dir.path().join("registry.log"))
            .map_err(io_error("creating registry.log"))?;
        let mut command = Command::new(bin);
        command.args(["-addr", "127.0.0.1:0"]);
        match &options.auth {
            OciAuth::Anonymous => {}
            OciAuth::Basic { user, password } => {
                command.arg("-basic").arg(format!("{user}:{password}"));
            }
            OciAuth::Token { user, password } => {
                command.arg("-token").arg(format!("{user}:{password}"));
            }
        }
        if options.tags_page > 0 {
            command.arg("-tags-page").arg(options.tags_page.to_string());
        }
        if options.corrupt_blobs {
            command.arg("-corrupt-blobs");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(io_error(format!("starting {}", bin.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Setup("the registry's stdio was not piped".into()));
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let Some(address) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
            return Err(Error::Setup(format!(
                "the registry did not start ({read:?}, printed {line:?}): {log}"
            )));
        };
        Ok(Self {
            child,
            _stdin: stdin,
            address,
            auth: options.auth,
            dir,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `oci://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("oci://{}/{}", self.address, path.trim_matches('/'))
    }

    /// The requests answered so far, oldest first.
    pub fn requests(&self) -> Vec<OciRequest> {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines().filter_map(parse_request).collect()
    }

    /// `helm push <package> oci://127.0.0.1:PORT/<path> --plain-http`, with the registry's credentials when it
    /// has any (as flags: nothing is written to a registry config), helm's homes private; returns helm's
    /// output (`Pushed: …`, `Digest: sha256:…`).
    pub fn push(&self, helm: &Path, package: &Path, path: &str) -> Result<String> {
        let home = self.dir.path().join("helm-home");
        std::fs::create_dir_all(&home).map_err(io_error(home.display().to_string()))?;
        let package = package.display().to_string();
        let url = self.url(path);
        let mut args = vec!["push", &package, &url, "--plain-http"];
        if let Some((user, password)) = self.auth.credentials() {
            args.extend(["--username", user, "--password", password]);
        }
        let output = Command::new(helm)
            .args(&args)
            .env("HOME", &home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .map_err(io_error(format!("running {}", helm.display())))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            return Err(Error::Setup(format!("helm push {package} {url}: {text}")));
        }
        Ok(text)
    }

    /// Pushes an OCI artifact as `oras push` would: the blobs `config` (of `config_media_type`) and each
    /// `(media type, bytes)` layer (monolithic uploads), then an OCI image manifest tagged `tag` in the
    /// repository `repository` (`team/manifests`). Basic auth is sent when the registry has it (a token
    /// registry is not pushed to here). Returns the manifest's digest (`sha256:…`).
    pub fn push_artifact(
        &self,
        repository: &str,
        tag: &str,
        config_media_type: &str,
        config: &[u8],
        layers: &[(&str, &[u8])],
    ) -> Result<String> {
        let authorization = self.authorization()?;
        let auth = authorization.as_deref();
        let mut descriptors = Vec::new();
        let blob = |media_type: &str, bytes: &[u8]| -> Result<serde_json::Value> {
            let digest = format!("sha256:{}", sha256_hex(bytes));
            let path = format!("/v2/{repository}/blobs/uploads/");
            let (status, headers, body) = http(&self.address, "POST", &path, auth, None, &[])?;
            if status != 202 {
                return Err(Error::Setup(format!(
                    "POST {path}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            let location = header(&headers, "location")
                .ok_or_else(|| Error::Setup(format!("POST {path}: no Location")))?;
            let location = location
                .strip_prefix(&format!("http://{}", self.address))
                .unwrap_or(&location)
                .to_owned();
            let separator = if location.contains('?') { '&' } else { '?' };
            let put = format!("{location}{separator}digest={digest}");
            let (status, _, body) = http(
                &self.address,
                "PUT",
                &put,
                auth,
                Some("application/octet-stream"),
                bytes,
            )?;
            if status != 201 {
                return Err(Error::Setup(format!(
                    "PUT {put}: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                )));
            }
            Ok(serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}))
        };
        let config = blob(config_media_type, config)?;
        for (media_type, bytes) in layers {
            descriptors.push(blob(media_type, bytes)?);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": descriptors,
        });
        self.push_manifest(repository, tag, &manifest)
    }

    /// PUTs `manifest` (an OCI image manifest) as `repository:tag`, its blobs not uploaded (a hostile registry
    /// naming blobs it does not hold). Returns its digest (`sha256:…`).
    pub fn push_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &serde_json::Value,
    ) -> Result<String> {
        let authorization = self.authorization()?;
        let auth = authorization.as_deref();
        let bytes = serde_json::to_vec(manifest)
            .map_err(|e| Error::Setup(format!("encoding the manifest: {e}")))?;
        let path = format!("/v2/{repository}/manifests/{tag}");
        let (status, _, body) = http(
            &self.address,
            "PUT",
            &path,
            auth,
            Some("application/vnd.oci.image.manifest.v1+json"),
            &bytes,
        )?;
        if status != 201 {
            return Err(Error::Setup(format!(
                "PUT {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(format!("sha256:{}", sha256_hex(&bytes)))
    }

    /// The Authorization of a push: none, or basic auth (a token registry is not pushed to here).
    fn authorization(&self) -> Result<Option<String>> {
        match &self.auth {
            OciAuth::Anonymous => Ok(None),
            OciAuth::Basic { user, password } => {
                use base64::Engine as _;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(Some(format!("Basic {pair}")))
            }
            OciAuth::Token { .. } => Err(Error::Setup(
                "pushes go to an anonymous or basic-auth registry".into(),
            )),
        }
    }

    /// The registry's temp dir (its log, helm's homes for pushes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A gzipped tar of the directory `dir` (every file and directory under it, paths relative to it), what
/// `oras push` writes for a directory: the content layer of an OCI artifact.
pub fn tar_gz_dir(dir: &Path) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error::Setup(format!("archiving {}: {e}", dir.display()));
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).map_err(fail)?;
    builder.into_inner().map_err(fail)?.finish().map_err(fail)
}

/// Lower-case hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A header's value (names compared without case).
fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// An HTTP answer: the status, the headers and the body.
type HttpAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request to the loopback registry (`Connection: close`): the status, headers and body.
fn http(
    address: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HttpAnswer> {
    use std::io::{Read as _, Write as _};
    let fail = |e: std::io::Error| Error::Setup(format!("{method} {path}: {e}"));
    let mut stream = std::net::TcpStream::connect(address).map_err(fail)?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(fail)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(authorization) = authorization {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(fail)?;
    stream.write_all(body).map_err(fail)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(fail)?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::Setup(format!("{method} {path}: no HTTP answer")))?;
    let text = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Setup(format!("{method} {path}: no HTTP status")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut rest = answer[split + 4..].to_vec();
    if header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        rest = dechunk(&rest);
    }
    Ok((status, headers, rest))
}

/// The body of a chunked answer (error texts only; malformed input ends it).
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || data.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
    out
}

/// `2026/01/02 03:04:05 GET /v2/… auth=bearer status=200` as a request.
fn parse_request(line: &str) -> Option<OciRequest> {
    let mut words = line.split_whitespace().skip(2);
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let auth = words.next()?.strip_prefix("auth=")?.to_owned();
    let status = words.next()?.strip_prefix("status=")?.parse().ok()?;
    Some(OciRequest {
        method,
        path,
        auth,
        status,
    })
}

/// The registry binary: `EDGECD_OCIREGISTRY_BIN`, or what `scripts/ociregistry-build` builds or finds in its
/// cache (once per process).
pub fn binary() -> Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| crate::gobuilt::binary("EDGECD_OCIREGISTRY_BIN", BUILD_SCRIPT))
        .clone()
        .map_err(Error::Setup)
}

/// Whether the registry can be had: `EDGECD_OCIREGISTRY_BIN` is set, or Go is installed to build it.
pub fn available() -> bool {
    std::env::var_os("EDGECD_OCIREGISTRY_BIN").is_some() || crate::realkube::go_available()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_as_requests() {
        assert_eq!(
            parse_request(
                "2026/12/06 01:10:22 GET /v2/charts/web/tags/list?n=1 auth=bearer status=200"
            ),
            Some(OciRequest {
                method: "GET".into(),
                path: "/v2/charts/web/tags/list?n=1".into(),
                auth: "bearer".into(),
                status: 200,
            })
        );
        assert_eq!(parse_request("listening"), None);
    }
}
