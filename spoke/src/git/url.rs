//! `RepoUrl`: a repository URL, its sanitised form for logs and errors, and its normalised form for cache keys.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::error::{GitError, Result};

/// A parsed repository URL.
///
/// Accepted forms: `https://`, `http://`, `ssh://`, `git://`, `file://`, scp-like `user@host:path`, and absolute
/// local paths (turned into `file://`).
/// [`Display`](fmt::Display) shows the sanitised URL: user info is removed (for `ssh` only the user name is kept,
/// it is not a secret), so a URL is safe to log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RepoUrl {
    /// What libgit2 is given (may carry user info).
    raw: String,
    /// The URL without secrets: logs, errors, credential matching.
    sanitized: String,
    /// Lower-case scheme and host, no user info, no trailing `/` or `.git`: the cache identity.
    normalized: String,
    scheme: Scheme,
}

/// Transport of a repository URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
    Ssh,
    Git,
    File,
}

impl RepoUrl {
    /// Parses and normalises a repository URL.
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        let invalid = |reason: &str| GitError::InvalidUrl {
            url: sanitize_for_error(input),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(invalid("empty URL"));
        }
        if input.chars().any(char::is_control) {
            return Err(invalid("control characters in URL"));
        }
        if input.starts_with('/') {
            let path = input.trim_end_matches('/');
            let raw = format!("file://{path}");
            return Ok(Self {
                sanitized: raw.clone(),
                normalized: normalize_path_part("file://", path),
                raw,
                scheme: Scheme::File,
            });
        }
        if let Some((scheme_text, rest)) = input.split_once("://") {
            let scheme = match scheme_text.to_ascii_lowercase().as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "git" => Scheme::Git,
                "file" => Scheme::File,
                _ => return Err(invalid("unsupported scheme")),
            };
            let scheme_prefix = format!("{}://", scheme_text.to_ascii_lowercase());
            if scheme == Scheme::File {
                if !rest.starts_with('/') {
                    return Err(invalid("file:// URLs need an absolute path"));
                }
                return Ok(Self {
                    raw: input.to_owned(),
                    sanitized: input.to_owned(),
                    normalized: normalize_path_part("file://", rest.trim_end_matches('/')),
                    scheme,
                });
            }
            let (authority, path) = match rest.find('/') {
                Some(index) => rest.split_at(index),
                None => (rest, ""),
            };
            let (userinfo, host) = match authority.rsplit_once('@') {
                Some((userinfo, host)) => (Some(userinfo), host),
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(invalid("missing host"));
            }
            let kept_user = match (scheme, userinfo) {
                (Scheme::Ssh, Some(userinfo)) => {
                    let user = userinfo.split(':').next().unwrap_or_default();
                    format!("{user}@")
                }
                _ => String::new(),
            };
            let sanitized = format!("{scheme_prefix}{kept_user}{host}{path}");
            let normalized = normalize_path_part(
                &format!("{scheme_prefix}{}", host.to_ascii_lowercase()),
                path.trim_end_matches('/'),
            );
            return Ok(Self {
                raw: input.to_owned(),
                sanitized,
                normalized,
                scheme,
            });
        }
        // scp-like syntax: [user@]host:path (a colon before any slash).
        if let Some((authority, path)) = input.split_once(':')
            && !authority.contains('/')
            && !authority.is_empty()
            && !path.is_empty()
        {
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            let normalized = normalize_path_part(
                &format!("ssh://{}", host.to_ascii_lowercase()),
                &format!("/{}", path.trim_start_matches('/').trim_end_matches('/')),
            );
            return Ok(Self {
                raw: input.to_owned(),
                sanitized: input.to_owned(),
                normalized,
                scheme: Scheme::Ssh,
            });
        }
        Err(invalid(
            "not a URL (expected https://, http://, ssh://, git://, file://, user@host:path or an absolute path)",
        ))
    }

    /// The URL handed to libgit2 (may carry user info; never log it).
    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }

    /// The URL without user info: safe to log, used for credential prefix matching.
    pub fn sanitized(&self) -> &str {
        &self.sanitized
    }

    /// The cache identity: lower-case scheme and host, no user info, no trailing `/` or `.git`.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Directory name of this repository's cache: a hash of the normalised URL (hex, 128 bits).
    pub fn cache_key(&self) -> String {
        let digest = Sha256::digest(self.normalized.as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sanitized)
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.sanitized).finish()
    }
}

fn normalize_path_part(prefix: &str, path: &str) -> String {
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{prefix}{}", path.trim_end_matches('/'))
}

/// Best-effort removal of user info from a string that failed to parse, for the error message.
fn sanitize_for_error(input: &str) -> String {
    match input.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(index) => rest.split_at(index),
                None => (rest, ""),
            };
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> RepoUrl {
        match RepoUrl::parse(input) {
            Ok(url) => url,
            Err(error) => panic!("{input}: {error}"),
        }
    }

    #[test]
    fn https_user_info_is_stripped_from_display_and_key() {
        let url = parse("https://user:s3cret@GitHub.com/Org/Repo.git/");
        assert_eq!(url.sanitized(), "https://GitHub.com/Org/Repo.git/");
        assert_eq!(url.normalized(), "https://github.com/Org/Repo");
        assert!(!format!("{url} {url:?}").contains("s3cret"));
        assert_eq!(url.raw(), "https://user:s3cret@GitHub.com/Org/Repo.git/");
    }

    #[test]
    fn same_repository_spelt_differently_shares_a_cache_key() {
        let a = parse("https://github.com/org/repo.git");
        let b = parse("https://token@GITHUB.com/org/repo/");
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(
            a.cache_key(),
            parse("https://github.com/org/other").cache_key()
        );
    }

    #[test]
    fn ssh_keeps_the_user_but_not_a_password() {
        let url = parse("ssh://git:pw@example.com:2222/r.git");
        assert_eq!(url.sanitized(), "ssh://git@example.com:2222/r.git");
        assert_eq!(url.scheme(), Scheme::Ssh);
        let scp = parse("git@example.com:org/r.git");
        assert_eq!(scp.scheme(), Scheme::Ssh);
        assert_eq!(scp.normalized(), "ssh://example.com/org/r");
    }

    #[test]
    fn local_paths_become_file_urls() {
        let url = parse("/srv/git/r.git");
        assert_eq!(url.raw(), "file:///srv/git/r.git");
        assert_eq!(url.scheme(), Scheme::File);
        assert_eq!(url.normalized(), parse("file:///srv/git/r").normalized());
    }

    #[test]
    fn bad_urls_are_refused_without_leaking_secrets() {
        for bad in ["", "ftp://x/y", "relative/path", "file://relative"] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad}");
        }
        let Err(error) = RepoUrl::parse("ftp://u:hunter2@host/x") else {
            panic!("ftp accepted");
        };
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
