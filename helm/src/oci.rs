//! Helm charts and other artifacts in OCI registries (`oci://registry/path` + chart, Argo CD's and Helm's spelling; `oci://registry/path/name` alone, Argo CD's OCI sources, one content layer): the version resolved (an exact tag, or a semver range over the repository's paginated tag list, Helm's `_` for `+`), the image manifest checked to be a Helm chart, the chart layer downloaded, verified against its digest and cached by digest like chart repository packages; anonymous, basic and Bearer-token auth; every response bounded in bytes and time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use edgecd_git::{Credentials, RepoCredential};
use http_body_util::BodyExt as _;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use crate::repo::{self, ChartRepos, ChartVersion, FetchedChart, RepoError};

/// The config media type of a Helm chart artifact.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// The media type of the chart layer (the packaged chart, `.tgz`).
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer's media type of Helm 3.0–3.7's experimental OCI support.
const LEGACY_CHART_LAYER_MEDIA_TYPE: &str = "application/tar+gzip";
/// The one manifest media type accepted (what `helm push` writes).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Bounds of the OCI registry client, besides [`RepoLimits`](crate::RepoLimits)' per-request timeout and
/// largest chart.
#[derive(Debug, Clone, Copy)]
pub struct OciLimits {
    /// Largest manifest accepted (the distribution spec's recommended limit is 4 MiB).
    pub max_manifest_bytes: usize,
    /// Bytes of one repository's tag list, all pages together.
    pub max_tags_bytes: usize,
    /// Pages of a tag list followed (`Link: <…>; rel="next"`).
    pub max_tag_pages: usize,
    /// Tags of one repository.
    pub max_tags: usize,
    /// Largest token endpoint response.
    pub max_token_bytes: usize,
    /// Time for everything one chart needs: token, tags, manifest and the chart layer.
    pub max_fetch_time: Duration,
}

impl Default for OciLimits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_tags_bytes: 16 * 1024 * 1024,
            max_tag_pages: 64,
            max_tags: 100_000,
            max_token_bytes: 64 * 1024,
            max_fetch_time: Duration::from_secs(120),
        }
    }
}

/// Why a chart could not be had from an OCI registry. Names the registry (`oci://host/path`), the chart and
/// the cause; never a credential or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OciError {
    #[error("OCI registry {registry}: {reason}")]
    Reference { registry: String, reason: String },
    #[error("OCI registry {registry}: {subject}: fetching {url}: {reason}")]
    Fetch {
        registry: String,
        /// `chart web`, or `artifact my-image` (an OCI artifact source).
        subject: String,
        url: String,
        reason: String,
    },
    #[error("OCI registry {registry}: {subject}: no tag matches {wanted:?} (latest: {latest})")]
    NoVersion {
        registry: String,
        subject: String,
        wanted: String,
        latest: String,
    },
    #[error("OCI registry {registry}: {subject}:{tag}: {reason}")]
    Manifest {
        registry: String,
        subject: String,
        tag: String,
        reason: String,
    },
    #[error(
        "OCI registry {registry}: {subject} {version}: digest mismatch (manifest: sha256:{expected}, downloaded: sha256:{actual}); not used"
    )]
    Digest {
        registry: String,
        subject: String,
        version: String,
        expected: String,
        actual: String,
    },
    #[error("OCI registry {registry}: {subject}: no answer within {limit:?}")]
    Timeout {
        registry: String,
        subject: String,
        limit: Duration,
    },
}

impl From<OciError> for RepoError {
    fn from(error: OciError) -> Self {
        Self::Oci(Box::new(error))
    }
}

/// Whether `url` names an OCI registry (`oci://…`).
pub fn is_oci(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("oci://"))
}

/// A chart's repository in a registry: `oci://host[:port]/path` + chart is `host[:port]`, `path/chart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference {
    /// `host[:port]` (host lower-cased).
    pub authority: String,
    /// `https`, or `http` for a loopback registry.
    pub scheme: &'static str,
    /// The repository name (`path/chart`).
    pub repository: String,
}

impl OciReference {
    /// Parses `oci://host[:port][/path]` and the chart name; the repository name follows the distribution
    /// spec (lower-case components of letters and digits joined by `.`, `_`, `__` or dashes).
    pub fn parse(repo_url: &str, chart: &str) -> Result<Self, String> {
        if !is_oci(repo_url) {
            return Err("not an oci:// URL".into());
        }
        let rest = repo_url.get(6..).unwrap_or_default().trim_end_matches('/');
        if rest.chars().any(|c| c.is_control() || c.is_whitespace()) || rest.contains(['?', '#']) {
            return Err("not a registry URL (no query, fragment or whitespace)".into());
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not used; store them as repository credentials".into(),
            );
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty() || !host_ok(host) {
            return Err(format!("{authority:?} is not a registry host"));
        }
        let mut components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        if !chart.is_empty() {
            components.push(chart);
        }
        if components.is_empty() {
            return Err("names no repository (expected oci://host[:port]/path)".into());
        }
        for component in &components {
            if !component_ok(component) {
                return Err(format!(
                    "{component:?} is not a repository name component (lower-case letters and digits, joined by '.', '_', '__' or '-')"
                ));
            }
        }
        let repository = components.join("/");
        if repository.len() > 255 {
            return Err("the repository name is longer than 255 characters".into());
        }
        let host = host.to_ascii_lowercase();
        let scheme = if is_loopback(&host) { "http" } else { "https" };
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(Self {
            authority,
            scheme,
            repository,
        })
    }

    /// `oci://host[:port]/repository`: what the package cache is scoped by.
    pub fn origin(&self) -> String {
        format!("oci://{}/{}", self.authority, self.repository)
    }

    /// `scheme://host[:port]`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// `host` and the port of `host[:port]` (`[v6]:port` too).
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        match authority.split_once(']') {
            Some((v6, rest)) => (
                authority.get(..v6.len() + 1).unwrap_or_default(),
                rest.strip_prefix(':'),
            ),
            None => return Err(format!("{authority:?} is not a registry host")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{authority:?} has an invalid port"))?,
        ),
    };
    Ok((host, port))
}

fn host_ok(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether the host is this machine: `localhost`, `127.0.0.0/8` or `[::1]` (plain HTTP is used there).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback())
}

/// One path component of a repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag as the distribution spec allows it: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
fn tag_ok(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The credential for the registry URL `url` (`oci://host/path`): the longest URL prefix, written with
/// `oci://` or without a scheme (Argo CD's `enableOCI` repository Secrets have `url: host/path`), that covers
/// the URL without its scheme (compared without case) by [`prefix_covers_oci`].
pub fn find_credential(credentials: &Credentials, url: &str) -> Option<Arc<RepoCredential>> {
    credentials
        .entries()
        .filter(|entry| prefix_covers_oci(&entry.url_prefix, url))
        .max_by_key(|entry| entry.url_prefix.trim().len())
        .map(|entry| Arc::new(entry.clone()))
}

/// Whether a credential's `prefix` (`oci://host[:port]/path` or `host[:port]/path`) covers the registry URL
/// `url` (`oci://…`): the prefix's authority (host and port) is the URL's, without case, and the rest matches
/// on a boundary ([`edgecd_git::prefix_covers`]). `ghcr.io` covers `oci://ghcr.io/org/chart`, never
/// `oci://ghcr.io.attacker.net/x` nor `oci://ghcr.io:8443/x`.
pub fn prefix_covers_oci(prefix: &str, url: &str) -> bool {
    let Some(target) = url.get(6..).filter(|_| is_oci(url)) else {
        return false;
    };
    let target = target.to_ascii_lowercase();
    let prefix = prefix.trim();
    let prefix = if is_oci(prefix) {
        prefix.get(6..).unwrap_or_default()
    } else {
        prefix
    };
    if prefix.is_empty() || prefix.contains("://") {
        return false;
    }
    let prefix = prefix.to_ascii_lowercase();
    let authority = |text: &str| {
        text.split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    authority(&prefix) == authority(&target) && edgecd_git::prefix_covers(&prefix, &target)
}

/// A repository's tags, when they were listed.
type ListedTags = (Instant, Arc<Vec<String>>);
/// When a version was resolved, the version, its content layer's digest and media type.
type ResolvedTag = (Instant, String, String, &'static str, String);

/// The media types of an OCI artifact's content layer that a source may have (Argo CD's default
/// `--oci-layer-media-types`): a tar, a gzipped tar, or a Helm chart.
pub const ARTIFACT_LAYER_MEDIA_TYPES: [&str; 3] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    CHART_LAYER_MEDIA_TYPE,
];

/// Most layers an artifact's manifest may list (content and others, such as provenance), as Argo CD.
const MAX_ARTIFACT_LAYERS: usize = 10;

/// What is pulled from a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull<'a> {
    /// The Helm chart `name` of the registry path (`oci://host/path` + `chart`).
    Chart(&'a str),
    /// The artifact the URL itself names (`oci://host/path/name`, Argo CD's OCI sources): an image manifest
    /// with exactly one content layer of [`ARTIFACT_LAYER_MEDIA_TYPES`].
    Artifact,
}

impl<'a> Pull<'a> {
    /// The chart name joined to the registry path (empty for an artifact).
    fn chart(self) -> &'a str {
        match self {
            Self::Chart(chart) => chart,
            Self::Artifact => "",
        }
    }

    /// What messages call it: `chart web`, `artifact my-image`.
    fn subject(self, reference: &OciReference) -> String {
        match self {
            Self::Chart(chart) => format!("chart {chart}"),
            Self::Artifact => format!(
                "artifact {}",
                reference.repository.rsplit('/').next().unwrap_or_default()
            ),
        }
    }
}

/// What the registry client keeps between renders: tag lists and tag resolutions (reused like indexes).
#[derive(Debug, Default)]
pub(crate) struct OciCache {
    /// Tags by credential and `authority/repository`.
    tags: Mutex<HashMap<String, ListedTags>>,
    /// `(credential and authority/repository, wanted)` → the version and chart layer digest it resolved to.
    resolved: Mutex<HashMap<(String, String), ResolvedTag>>,
}

/// A manifest, as far as a Helm chart goes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
}

/// The chart layer of a manifest: its hex SHA-256 and size. Checks that the manifest is an OCI image
/// manifest of a Helm chart (config media type) with exactly one chart layer.
fn chart_layer(body: &[u8], max_chart_bytes: usize) -> Result<(String, u64), String> {
    let manifest = image_manifest(body, "of a Helm chart")?;
    let config = manifest
        .config
        .as_ref()
        .map_or("none", |c| c.media_type.as_str());
    if config != HELM_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "not a Helm chart (config media type {}, expected {HELM_CONFIG_MEDIA_TYPE})",
            shown(config)
        ));
    }
    let mut layers = manifest.layers.iter().filter(|l| {
        l.media_type == CHART_LAYER_MEDIA_TYPE || l.media_type == LEGACY_CHART_LAYER_MEDIA_TYPE
    });
    let (Some(layer), None) = (layers.next(), layers.next()) else {
        return Err(format!(
            "the manifest does not have exactly one {CHART_LAYER_MEDIA_TYPE} layer"
        ));
    };
    let hex = layer_hex(&layer.digest, "chart")?;
    if layer.size > max_chart_bytes as u64 {
        return Err(format!(
            "the chart layer has {} bytes; at most {max_chart_bytes} are accepted",
            layer.size
        ));
    }
    Ok((hex, layer.size))
}

/// The content layer of an artifact's manifest: its hex SHA-256, size and media type. As Argo CD: at most
/// ten layers; the content layers are those of a tar or gzipped tar media type, and there must be exactly one,
/// of [`ARTIFACT_LAYER_MEDIA_TYPES`]; other layers (provenance, attestations) are ignored. The config media
/// type is not checked (an artifact may have any).
fn artifact_layer(body: &[u8], max_bytes: usize) -> Result<(String, u64, &'static str), String> {
    let manifest = image_manifest(body, "(an image index or another media type is not used)")?;
    if manifest.layers.len() > MAX_ARTIFACT_LAYERS {
        return Err(format!(
            "the manifest lists {} layers; at most {MAX_ARTIFACT_LAYERS} are accepted",
            manifest.layers.len()
        ));
    }
    let mut content = Vec::new();
    for layer in &manifest.layers {
        if !(layer.media_type.ends_with("tar+gzip") || layer.media_type.ends_with("tar")) {
            continue;
        }
        let known = ARTIFACT_LAYER_MEDIA_TYPES
            .iter()
            .find(|t| **t == layer.media_type)
            .ok_or_else(|| {
                format!(
                    "the content layer's media type {} is not one of {}",
                    shown(&layer.media_type),
                    ARTIFACT_LAYER_MEDIA_TYPES.join(", ")
                )
            })?;
        content.push((layer, *known));
    }
    let [(layer, media_type)] = content.as_slice() else {
        return Err(format!(
            "the manifest has {} content layers (tar or gzipped tar); exactly one is expected",
            content.len()
        ));
    };
    let hex = layer_hex(&layer.digest, "content")?;
    if layer.size > max_bytes as u64 {
        return Err(format!(
            "the content layer has {} bytes; at most {max_bytes} are accepted",
            layer.size
        ));
    }
    Ok((hex, layer.size, media_type))
}

/// `(tag, hex)` of a revision pinned by a manifest digest: `sha256:<hex>` (no tag) or `<tag>@sha256:<hex>`.
fn pinned_digest(wanted: &str) -> Option<(String, String)> {
    let (tag, digest) = match wanted.rsplit_once('@') {
        Some((tag, digest)) => (tag, digest),
        None => ("", wanted),
    };
    let hex = digest.strip_prefix("sha256:")?;
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (ok && (tag.is_empty() || tag_ok(tag))).then(|| (tag.to_owned(), hex.to_owned()))
}

/// A manifest's body read as a schema 2 OCI image manifest; `what` ends the message refusing another media
/// type.
fn image_manifest(body: &[u8], what: &str) -> Result<Manifest, String> {
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if manifest.schema_version != Some(2) {
        return Err("the manifest is not schemaVersion 2".into());
    }
    if let Some(media_type) = &manifest.media_type
        && media_type != OCI_MANIFEST_MEDIA_TYPE
    {
        return Err(format!(
            "the manifest is {}, not an OCI image manifest {what}",
            shown(media_type)
        ));
    }
    Ok(manifest)
}

/// The hex of a layer's `sha256:` digest.
fn layer_hex(digest: &str, what: &str) -> Result<String, String> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "the {what} layer's digest {} is not sha256:<64 hex digits>",
                shown(digest)
            )
        })
}

/// A registry's text for messages: quoted, at most 100 characters, control characters escaped.
fn shown(text: &str) -> String {
    let head: String = text.chars().take(100).collect();
    if head.len() < text.len() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// The tags of a `{"name": …, "tags": […]}` page.
fn page_tags(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct TagList {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let list: TagList =
        serde_json::from_slice(body).map_err(|e| format!("the tag list is not JSON: {e}"))?;
    Ok(list.tags.unwrap_or_default())
}

/// The target of a `Link: <url>; rel="next"` header.
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            })
            .then_some(target)
    })
}

/// A `WWW-Authenticate` challenge: the scheme (lower-cased) and its parameters (keys lower-cased).
fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let header = header.trim();
    let (scheme, mut rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let mut params = HashMap::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, quoted.get(end?..).unwrap_or_default())
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.insert(key.to_ascii_lowercase(), value);
        rest = tail;
    }
    Some((scheme.to_ascii_lowercase(), params))
}

/// Percent-encodes a query value (unreserved characters kept).
fn query_escape(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What one request brought back.
struct Answer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// One chart's fetch: the registry, the credential, the Authorization header won so far (basic, or a Bearer
/// token for the repository's pull scope, kept for this fetch only).
struct Session<'a> {
    reference: &'a OciReference,
    credential: Option<&'a RepoCredential>,
    timeout: Duration,
    max_token_bytes: usize,
    authorization: Option<String>,
}

impl Session<'_> {
    /// GET `path` of the registry: the request answered with the Authorization won so far, a 401 answered by
    /// its challenge (basic credentials, or a token from the realm) and the request sent once more;
    /// redirects followed (the Authorization only to the registry itself), the body at most `max_bytes`.
    /// Anything but a 2xx is an error naming the status and the registry's error code.
    async fn get(&mut self, path: &str, accept: &str, max_bytes: usize) -> Result<Answer, String> {
        let url = format!("{}{path}", self.reference.base());
        let mut retried = false;
        loop {
            let answer = self
                .get_url(&url, accept, self.authorization.clone(), max_bytes)
                .await?;
            if answer.status == http::StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                let challenge = answer
                    .headers
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                self.authorization = Some(self.authorize(&challenge).await?);
                continue;
            }
            if !answer.status.is_success() {
                return Err(status_error(&answer, self.credential.is_some()));
            }
            return Ok(answer);
        }
    }

    /// The Authorization header that answers `challenge`.
    async fn authorize(&self, challenge: &str) -> Result<String, String> {
        let unauthorized = || {
            if self.credential.is_some() {
                "HTTP 401 Unauthorized".to_owned()
            } else {
                "HTTP 401 Unauthorized (no repository credential matches this registry)".to_owned()
            }
        };
        let Some((scheme, params)) = parse_challenge(challenge) else {
            return Err(unauthorized());
        };
        match scheme.as_str() {
            "basic" => basic_header(self.credential).ok_or_else(unauthorized),
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or("HTTP 401 Unauthorized with a Bearer challenge naming no realm")?;
                let realm_uri: http::Uri = realm
                    .parse()
                    .map_err(|_| format!("the token realm {} is not a URL", shown(realm)))?;
                let (realm_scheme, realm_host, _) = repo::origin(&realm_uri);
                let plain_ok = transport_allowed(self.reference, &realm_scheme, &realm_host)
                    && realm_scheme == "http";
                if realm_scheme != "https" && !plain_ok {
                    return Err(format!(
                        "the token realm {} is not https:// (credentials are sent there)",
                        shown(realm)
                    ));
                }
                let mut query = Vec::new();
                if let Some(service) = params.get("service") {
                    query.push(format!("service={}", query_escape(service)));
                }
                let scope = format!("repository:{}:pull", self.reference.repository);
                query.push(format!("scope={}", query_escape(&scope)));
                let separator = if realm.contains('?') { '&' } else { '?' };
                let token_url = format!("{realm}{separator}{}", query.join("&"));
                let shown_realm = realm.split('?').next().unwrap_or_default().to_owned();
                let answer = self
                    .get_url(
                        &token_url,
                        "application/json",
                        basic_header(self.credential),
                        self.max_token_bytes,
                    )
                    .await
                    .map_err(|e| format!("token endpoint {shown_realm}: {e}"))?;
                if !answer.status.is_success() {
                    return Err(format!(
                        "token endpoint {shown_realm}: {}",
                        status_error(&answer, self.credential.is_some())
                    ));
                }
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let response: TokenResponse =
                    serde_json::from_slice(&answer.body).map_err(|_| {
                        format!("token endpoint {shown_realm}: the answer is not a token (JSON)")
                    })?;
                let token = response
                    .token
                    .filter(|t| !t.is_empty())
                    .or(response.access_token)
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
                    .ok_or_else(|| {
                        format!("token endpoint {shown_realm}: the answer holds no usable token")
                    })?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(unauthorized()),
        }
    }

    /// GET `url` (redirects followed, at most five) within the session's per-request timeout. The
    /// Authorization goes only to the origin of `url`; a redirect may go to https://, or http:// on loopback
    /// when the registry itself is on loopback.
    async fn get_url(
        &self,
        url: &str,
        accept: &str,
        authorization: Option<String>,
        max_bytes: usize,
    ) -> Result<Answer, String> {
        let ca = self.credential.and_then(|c| c.ca_cert_pem.as_deref());
        let work = async {
            let first: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
            let home = repo::origin(&first);
            let mut uri = first;
            for _ in 0..6 {
                let here = repo::origin(&uri);
                if !transport_allowed(self.reference, &here.0, &here.1) {
                    return Err(format!(
                        "refusing {}://{}: only https://, or http:// on loopback for a registry on loopback",
                        here.0, here.1
                    ));
                }
                let auth = authorization.as_deref().filter(|_| here == home);
                let response = request(&uri, accept, auth, ca).await?;
                let status = response.status();
                if status.is_redirection() {
                    let location = response
                        .headers()
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| format!("HTTP {status} without a Location"))?;
                    uri = repo::join_url(&uri, location)?;
                    continue;
                }
                let headers = response.headers().clone();
                // Error bodies are read only for the registry's error code: a few KiB.
                let limit = if status.is_success() { max_bytes } else { 4096 };
                let body = match http_body_util::Limited::new(response.into_body(), limit)
                    .collect()
                    .await
                {
                    Ok(collected) => collected.to_bytes().to_vec(),
                    Err(e) if status.is_success() => {
                        return Err(if e.is::<http_body_util::LengthLimitError>() {
                            format!("larger than {max_bytes} bytes")
                        } else {
                            e.to_string()
                        });
                    }
                    Err(_) => Vec::new(),
                };
                return Ok(Answer {
                    status,
                    headers,
                    body,
                });
            }
            Err("too many redirects".to_owned())
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}

/// Whether a request of a fetch from the registry `reference` may go to `scheme://host` (a token realm, a
/// redirect): `https`; plain `http` only on loopback, and only when the registry itself is on loopback (a remote
/// registry never sends the spoke to a plain-HTTP service on its own loopback).
fn transport_allowed(reference: &OciReference, scheme: &str, host: &str) -> bool {
    scheme == "https" || (scheme == "http" && reference.scheme == "http" && is_loopback(host))
}

/// `Basic …` for a credential with a password.
fn basic_header(credential: Option<&RepoCredential>) -> Option<String> {
    let credential = credential?;
    let password = credential.password.as_ref()?;
    let user = credential.username.as_deref().unwrap_or_default();
    use base64::Engine as _;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose_secret()))
    ))
}

/// `HTTP 404 Not Found (MANIFEST_UNKNOWN)`: the status and the registry's first error code.
fn status_error(answer: &Answer, had_credential: bool) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
    }
    let code = serde_json::from_slice::<Errors>(&answer.body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| e.code)
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        });
    let mut text = format!("HTTP {}", answer.status);
    if let Some(code) = code.filter(|_| answer.status != http::StatusCode::UNAUTHORIZED) {
        text.push_str(&format!(" ({code})"));
    }
    if answer.status == http::StatusCode::UNAUTHORIZED && !had_credential {
        text.push_str(" (no repository credential matches this registry)");
    }
    text
}

/// One GET on a fresh connection (TLS for https with the system's roots and the credential's CA).
async fn request(
    uri: &http::Uri,
    accept: &str,
    authorization: Option<&str>,
    ca: Option<&str>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let (scheme, host, port) = repo::origin(uri);
    if host.is_empty() {
        return Err("no host".into());
    }
    let path = uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
        .to_owned();
    let host_header = match uri.port_u16() {
        Some(p) => format!("{}:{p}", uri.host().unwrap_or_default()),
        None => uri.host().unwrap_or_default().to_owned(),
    };
    let mut builder = http::Request::get(path)
        .header(http::header::HOST, host_header)
        .header(http::header::USER_AGENT, "edgecd-helm")
        .header(http::header::ACCEPT, accept);
    if let Some(authorization) = authorization {
        builder = builder.header(http::header::AUTHORIZATION, authorization);
    }
    let request = builder
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|_| "an invalid request header".to_owned())?;
    let connect_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((connect_host.as_str(), port))
        .await
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    if scheme == "https" {
        let name = rustls_pki_types::ServerName::try_from(connect_host.clone())
            .map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(repo::tls_config(ca)?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        repo::send(hyper_util::rt::TokioIo::new(tls), request).await
    } else {
        repo::send(hyper_util::rt::TokioIo::new(tcp), request).await
    }
}

impl OciCache {
    /// What `pull` names in the registry `repo_url` (a chart of it, or the artifact it names) at the version
    /// `wanted` resolves to: from the cache when the tag's resolution is recent and its layer is cached, else
    /// the manifest fetched and the content layer downloaded and verified against the manifest's digest.
    pub(crate) async fn fetch(
        &self,
        repos: &ChartRepos,
        repo_url: &str,
        pull: Pull<'_>,
        wanted: &str,
        credential: Option<&RepoCredential>,
        hard: bool,
    ) -> Result<FetchedChart, RepoError> {
        let registry = crate::deps::redacted(repo_url).trim_matches('"').to_owned();
        let reference =
            OciReference::parse(repo_url, pull.chart()).map_err(|reason| OciError::Reference {
                registry: registry.clone(),
                reason,
            })?;
        let subject = pull.subject(&reference);
        let limits = repos.limits();
        // Per credential: what one credential could list or resolve is not handed to a render without it.
        let identity = credential.map_or_else(String::new, |c| {
            format!(
                "{}\u{0}{}",
                c.url_prefix,
                c.username.as_deref().unwrap_or_default()
            )
        });
        // Per kind too: a chart and an artifact of one repository resolve and are checked differently.
        let kind = match pull {
            Pull::Chart(_) => "chart",
            Pull::Artifact => "artifact",
        };
        let key = (
            format!(
                "{kind}\u{0}{identity}\u{0}{}/{}",
                reference.authority, reference.repository
            ),
            wanted.trim().to_owned(),
        );
        if !hard
            && let Some((at, version, digest, media_type, manifest_digest)) = self
                .resolved
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned()
            && at.elapsed() < limits.index_ttl
            && let Some(package) = repos.cached(&reference.origin(), &digest)
        {
            return Ok(FetchedChart {
                version,
                digest,
                package,
                media_type,
                manifest_digest,
            });
        }
        let mut session = Session {
            reference: &reference,
            credential,
            timeout: limits.timeout,
            max_token_bytes: limits.oci.max_token_bytes,
            authorization: None,
        };
        let work = self.fetch_in(
            repos,
            &mut session,
            &registry,
            (pull, &subject),
            wanted,
            &key,
            hard,
        );
        let fetched = tokio::time::timeout(limits.oci.max_fetch_time, work)
            .await
            .map_err(|_| OciError::Timeout {
                registry: registry.clone(),
                subject: subject.clone(),
                limit: limits.oci.max_fetch_time,
            })??;
        let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        if resolved.len() >= 256 {
            resolved.clear();
        }
        resolved.insert(
            key,
            (
                Instant::now(),
                fetched.version.clone(),
                fetched.digest.clone(),
                fetched.media_type,
                fetched.manifest_digest.clone(),
            ),
        );
        Ok(fetched)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_in(
        &self,
        repos: &ChartRepos,
        session: &mut Session<'_>,
        registry: &str,
        (pull, subject): (Pull<'_>, &str),
        wanted: &str,
        key: &(String, String),
        hard: bool,
    ) -> Result<FetchedChart, RepoError> {
        let limits = repos.limits();
        let repository = session.reference.repository.clone();
        let base = session.reference.base();
        let fetch_error = |path: &str, reason: String| OciError::Fetch {
            registry: registry.to_owned(),
            subject: subject.to_owned(),
            url: format!("{base}{path}"),
            reason,
        };
        let wanted = wanted.trim();
        let bare = wanted.trim_start_matches('v');
        let exact = !wanted.is_empty() && semver::Version::parse(bare).is_ok();
        // An exact version is asked for as its tag (Helm writes `+` as `_`); a range, or an exact version
        // whose tag is missing, is resolved over the tag list.
        let mut manifest = None;
        let mut tag = wanted.replace('+', "_");
        // An artifact pinned by its manifest's digest (`sha256:…`, or `tag@sha256:…` as edgecd reports an
        // artifact's revision): that manifest, checked against the digest.
        let pinned = match pull {
            Pull::Artifact => pinned_digest(wanted),
            Pull::Chart(_) => None,
        };
        if let Some((_, hex)) = &pinned {
            let path = format!("/v2/{repository}/manifests/sha256:{hex}");
            let answer = session
                .get(
                    &path,
                    OCI_MANIFEST_MEDIA_TYPE,
                    limits.oci.max_manifest_bytes,
                )
                .await
                .map_err(|reason| fetch_error(&path, reason))?;
            let actual = repo::hex(&Sha256::digest(&answer.body));
            if actual != *hex {
                return Err(fetch_error(
                    &path,
                    format!(
                        "the manifest's digest is sha256:{actual}, not the sha256:{hex} asked for"
                    ),
                )
                .into());
            }
            manifest = Some(answer);
            tag = format!("sha256:{hex}");
        }
        // An artifact's target revision may be any tag (`latest`, `main`), asked for as it is first.
        let direct = exact || (pull == Pull::Artifact && !wanted.is_empty());
        if manifest.is_none() && direct && tag_ok(&tag) {
            let path = format!("/v2/{repository}/manifests/{tag}");
            match session
                .get(
                    &path,
                    OCI_MANIFEST_MEDIA_TYPE,
                    limits.oci.max_manifest_bytes,
                )
                .await
            {
                Ok(answer) => manifest = Some(answer),
                Err(reason) if reason.starts_with("HTTP 404") => {}
                Err(reason) => return Err(fetch_error(&path, reason).into()),
            }
        }
        let version = match (&manifest, &pinned) {
            (Some(_), Some((pinned_tag, _))) => pinned_tag.clone(),
            (Some(_), None) => wanted.to_owned(),
            (None, _) => {
                let tags = self
                    .tags(session, &key.0, limits, hard)
                    .await
                    .map_err(|(path, reason)| fetch_error(&path, reason))?;
                let versions: Vec<ChartVersion> = tags
                    .iter()
                    .map(|t| ChartVersion {
                        version: t.replace('_', "+"),
                        urls: vec![t.clone()],
                        digest: None,
                    })
                    .collect();
                let found = repo::resolve_version(&versions, wanted).ok_or_else(|| {
                    OciError::NoVersion {
                        registry: registry.to_owned(),
                        subject: subject.to_owned(),
                        wanted: wanted.to_owned(),
                        latest: repo::resolve_version(&versions, "")
                            .map_or_else(|| "none".to_owned(), |v| v.version.clone()),
                    }
                })?;
                tag = found.urls.first().cloned().unwrap_or_default();
                found.version.clone()
            }
        };
        let answer = match manifest {
            Some(answer) => answer,
            None => {
                let path = format!("/v2/{repository}/manifests/{tag}");
                session
                    .get(
                        &path,
                        OCI_MANIFEST_MEDIA_TYPE,
                        limits.oci.max_manifest_bytes,
                    )
                    .await
                    .map_err(|reason| fetch_error(&path, reason))?
            }
        };
        let manifest_error = |reason: String| OciError::Manifest {
            registry: registry.to_owned(),
            subject: subject.to_owned(),
            tag: tag.clone(),
            reason,
        };
        if let Some(sent) = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("sha256:"))
        {
            let actual = repo::hex(&Sha256::digest(&answer.body));
            if !sent.eq_ignore_ascii_case(&actual) {
                return Err(manifest_error(format!(
                    "the manifest's digest is sha256:{actual}, not the sha256:{} the registry sent",
                    shown(sent).trim_matches('"')
                ))
                .into());
            }
        }
        let manifest_digest = repo::hex(&Sha256::digest(&answer.body));
        let (digest, size, media_type) = match pull {
            Pull::Chart(_) => chart_layer(&answer.body, limits.max_chart_bytes)
                .map(|(digest, size)| (digest, size, CHART_LAYER_MEDIA_TYPE)),
            Pull::Artifact => artifact_layer(&answer.body, limits.max_chart_bytes),
        }
        .map_err(manifest_error)?;
        if let Some(package) = repos.cached(&session.reference.origin(), &digest) {
            return Ok(FetchedChart {
                version,
                digest,
                package,
                media_type,
                manifest_digest,
            });
        }
        let path = format!("/v2/{repository}/blobs/sha256:{digest}");
        let max = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(limits.max_chart_bytes);
        let blob = session
            .get(&path, "*/*", max)
            .await
            .map_err(|reason| fetch_error(&path, reason))?;
        let actual = repo::hex(&Sha256::digest(&blob.body));
        if actual != digest {
            return Err(OciError::Digest {
                registry: registry.to_owned(),
                subject: subject.to_owned(),
                version,
                expected: digest,
                actual,
            }
            .into());
        }
        let package = repos.store(&session.reference.origin(), &actual, &blob.body)?;
        Ok(FetchedChart {
            version,
            digest: actual,
            package,
            media_type,
            manifest_digest,
        })
    }

    /// The repository's tags (reused within the index TTL unless `hard`), every page followed within the
    /// limits. Errors carry the path that failed.
    async fn tags(
        &self,
        session: &mut Session<'_>,
        key: &str,
        repo_limits: crate::RepoLimits,
        hard: bool,
    ) -> Result<Arc<Vec<String>>, (String, String)> {
        let limits = repo_limits.oci;
        if !hard
            && let Some((at, tags)) = self
                .tags
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
            && at.elapsed() < repo_limits.index_ttl
        {
            return Ok(Arc::clone(tags));
        }
        let first = format!("/v2/{}/tags/list", session.reference.repository);
        let mut path = first.clone();
        let mut tags = Vec::new();
        let mut bytes_left = limits.max_tags_bytes;
        for page in 0.. {
            if page >= limits.max_tag_pages {
                return Err((
                    first,
                    format!("the tag list has more than {} pages", limits.max_tag_pages),
                ));
            }
            let answer = session
                .get(&path, "application/json", bytes_left)
                .await
                .map_err(|reason| (path.clone(), reason))?;
            bytes_left = bytes_left.saturating_sub(answer.body.len());
            let page_tags = page_tags(&answer.body).map_err(|reason| (path.clone(), reason))?;
            tags.extend(page_tags.into_iter().filter(|t| tag_ok(t)));
            if tags.len() > limits.max_tags {
                return Err((
                    first,
                    format!("the repository has more than {} tags", limits.max_tags),
                ));
            }
            let Some(next) = answer
                .headers
                .get(http::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
            else {
                break;
            };
            path = same_origin_path(session.reference, next)
                .map_err(|reason| (path.clone(), reason))?;
            if bytes_left == 0 {
                return Err((
                    first,
                    format!(
                        "the tag list is larger than {} bytes",
                        limits.max_tags_bytes
                    ),
                ));
            }
        }
        let tags = Arc::new(tags);
        let mut cache = self.tags.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(key.to_owned(), (Instant::now(), Arc::clone(&tags)));
        Ok(tags)
    }
}

/// The path and query of a `Link` target: `/v2/…` of the registry itself (an absolute URL only on the same
/// origin: the session's credentials go there).
fn same_origin_path(reference: &OciReference, next: &str) -> Result<String, String> {
    let base = reference.base();
    let path = if let Some(rest) = next.strip_prefix(&base) {
        rest.to_owned()
    } else if next.starts_with('/') && !next.starts_with("//") {
        next.to_owned()
    } else {
        return Err(format!(
            "the next page {} is not on the registry",
            shown(next)
        ));
    };
    if !path.starts_with("/v2/") || path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "the next page {} is not a registry path",
            shown(&path)
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn references_parse_with_the_chart_and_pick_https_except_on_loopback() {
        let r = OciReference::parse("oci://GHCR.io/org/charts/", "web").unwrap();
        assert_eq!(
            (r.base().as_str(), r.repository.as_str()),
            ("https://ghcr.io", "org/charts/web")
        );
        let r = OciReference::parse("OCI://127.0.0.1:5000/charts", "web").unwrap();
        assert_eq!(r.base(), "http://127.0.0.1:5000");
        let r = OciReference::parse("oci://[::1]:5000", "web").unwrap();
        assert_eq!(
            (r.base().as_str(), r.repository.as_str()),
            ("http://[::1]:5000", "web")
        );
        assert_eq!(
            OciReference::parse("oci://localhost/a", "b")
                .unwrap()
                .scheme,
            "http"
        );
        for bad in [
            "oci://user:pw@ghcr.io/x",
            "oci:///x",
            "oci://ghcr.io/Org",
            "oci://ghcr.io/a//b?x=1",
            "oci://ghcr.io:0/x",
            "oci://gh cr.io/x",
            "https://ghcr.io/x",
            "oci://ghcr.io/a--b_-c",
        ] {
            let result = OciReference::parse(bad, "web");
            assert!(result.is_err(), "{bad}: {result:?}");
        }
        let err = OciReference::parse("oci://user:hunter2@ghcr.io/x", "web").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(OciReference::parse("oci://ghcr.io/x", "Web").is_err());
        assert!(component_ok("a.b_c__d---e9"));
        assert!(!component_ok("a___b") && !component_ok("-a") && !component_ok("a."));
    }

    #[test]
    fn credentials_match_with_or_without_the_scheme() {
        let credential = |prefix: &str, user: &str| RepoCredential {
            url_prefix: prefix.into(),
            username: Some(user.into()),
            password: Some("p".to_owned().into()),
            ..RepoCredential::default()
        };
        let set = Credentials::new([
            credential("ghcr.io/org", "bare"),
            credential("oci://ghcr.io/org/charts", "oci"),
            credential("https://ghcr.io/org/charts/web", "https"),
            credential("Registry.example", "host"),
        ]);
        let user = |url: &str| find_credential(&set, url).and_then(|c| c.username.clone());
        assert_eq!(user("oci://ghcr.io/org/charts").as_deref(), Some("oci"));
        assert_eq!(user("oci://ghcr.io/org/other").as_deref(), Some("bare"));
        assert_eq!(user("oci://registry.example/x").as_deref(), Some("host"));
        assert_eq!(user("oci://quay.io/org"), None);
        assert_eq!(user("oci://registry.example:5000/x"), None);
    }

    #[test]
    fn plain_http_on_loopback_only_for_a_registry_on_loopback() {
        let remote = OciReference::parse("oci://ghcr.io/org", "web").unwrap();
        let local = OciReference::parse("oci://127.0.0.1:5000/org", "web").unwrap();
        assert!(transport_allowed(&remote, "https", "cdn.example"));
        assert!(!transport_allowed(&remote, "http", "127.0.0.1"));
        assert!(!transport_allowed(&remote, "http", "localhost"));
        assert!(!transport_allowed(&remote, "http", "[::1]"));
        assert!(transport_allowed(&local, "http", "127.0.0.1"));
        assert!(transport_allowed(&local, "https", "cdn.example"));
        assert!(!transport_allowed(&local, "http", "cdn.example"));
    }

    #[test]
    fn credentials_never_match_another_host_or_a_longer_name() {
        let credential = |prefix: &str, user: &str| RepoCredential {
            url_prefix: prefix.into(),
            username: Some(user.into()),
            password: Some("p".to_owned().into()),
            ..RepoCredential::default()
        };
        let set = Credentials::new([
            credential("ghcr.io", "argo"),
            credential("oci://registry.example/team", "team"),
        ]);
        let user = |url: &str| find_credential(&set, url).and_then(|c| c.username.clone());
        assert_eq!(user("oci://ghcr.io.attacker.net/x"), None);
        assert_eq!(user("oci://ghcr.io:444/x"), None);
        assert_eq!(user("oci://registry.example/teamster/x"), None);
        assert_eq!(user("oci://ghcr.io/org/x").as_deref(), Some("argo"));
        assert_eq!(
            user("oci://registry.example/team/x").as_deref(),
            Some("team")
        );
    }

    #[test]
    fn manifests_must_be_helm_charts_with_one_verified_layer() {
        let digest = "a".repeat(64);
        let manifest = |config: &str, layers: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"{config}","digest":"sha256:{digest}","size":1}},"layers":[{layers}]}}"#
            )
        };
        let layer = |media: &str, digest: &str, size: u64| {
            format!(r#"{{"mediaType":"{media}","digest":"{digest}","size":{size}}}"#)
        };
        let good = manifest(
            HELM_CONFIG_MEDIA_TYPE,
            &layer(CHART_LAYER_MEDIA_TYPE, &format!("sha256:{digest}"), 900),
        );
        assert_eq!(
            chart_layer(good.as_bytes(), 1 << 20).unwrap(),
            (digest.clone(), 900)
        );
        let image = manifest(
            "application/vnd.oci.image.config.v1+json",
            &layer(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &format!("sha256:{digest}"),
                9,
            ),
        );
        assert!(
            chart_layer(image.as_bytes(), 1 << 20)
                .unwrap_err()
                .contains("not a Helm chart")
        );
        let sha512 = manifest(
            HELM_CONFIG_MEDIA_TYPE,
            &layer(CHART_LAYER_MEDIA_TYPE, "sha512:abc", 9),
        );
        assert!(
            chart_layer(sha512.as_bytes(), 1 << 20)
                .unwrap_err()
                .contains("sha256")
        );
        assert!(
            chart_layer(good.as_bytes(), 100)
                .unwrap_err()
                .contains("at most 100")
        );
        let two = manifest(
            HELM_CONFIG_MEDIA_TYPE,
            &format!(
                "{},{}",
                layer(CHART_LAYER_MEDIA_TYPE, &format!("sha256:{digest}"), 9),
                layer(CHART_LAYER_MEDIA_TYPE, &format!("sha256:{digest}"), 9)
            ),
        );
        assert!(
            chart_layer(two.as_bytes(), 1 << 20)
                .unwrap_err()
                .contains("exactly one")
        );
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(
            chart_layer(index.as_bytes(), 1 << 20)
                .unwrap_err()
                .contains("image.index")
        );
        assert!(chart_layer(b"<html>", 1 << 20).is_err());
    }

    #[test]
    fn challenges_links_and_tags_parse() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(scheme, "bearer");
        assert_eq!(params["realm"], "https://auth.example/token");
        assert_eq!(params["service"], "registry.example");
        assert_eq!(params["scope"], "repository:a/b:pull,push");
        let (scheme, params) = parse_challenge(r#"Basic realm="a \"q\" b""#).unwrap();
        assert_eq!(
            (scheme.as_str(), params["realm"].as_str()),
            ("basic", "a \"q\" b")
        );
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=1.0.0&n=1>; rel="next""#),
            Some("/v2/a/tags/list?last=1.0.0&n=1")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        let reference = OciReference::parse("oci://r.example/a", "web").unwrap();
        assert!(same_origin_path(&reference, "https://evil.example/v2/x").is_err());
        assert!(same_origin_path(&reference, "//evil.example/v2/x").is_err());
        assert_eq!(
            same_origin_path(&reference, "https://r.example/v2/a/web/tags/list?last=b").unwrap(),
            "/v2/a/web/tags/list?last=b"
        );
        assert_eq!(
            page_tags(br#"{"name":"a","tags":["1.0.0","1.2.0_build.1"]}"#).unwrap(),
            ["1.0.0", "1.2.0_build.1"]
        );
        assert!(
            page_tags(br#"{"name":"a","tags":null}"#)
                .unwrap()
                .is_empty()
        );
        assert!(tag_ok("1.2.0_build.1") && !tag_ok("1.2.0+b") && !tag_ok(".x"));
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
