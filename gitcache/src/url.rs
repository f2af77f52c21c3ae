//! `RepoUrl`: a repository URL that carries no secret, and its normalised form for cache keys.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::error::{GitError, Result};

/// A parsed repository URL, safe to log: it never carries a password or token.
///
/// Accepted forms: `https://`, `http://`, `ssh://`, `git://`, `file://`, scp-like `user@host:path`, and absolute
/// local paths (turned into `file://`).
/// Credentials belong in a [`RepoCredential`](super::RepoCredential), never in the URL (URLs end up in
/// Application specs, logs and the hub): user info is refused, except an ssh login name (`git@host`), which is
/// no secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RepoUrl {
    /// What libgit2 is given; also what logs, errors and credential matching see.
    url: String,
    /// Lower-case scheme and host, ssh user kept, no trailing `/` or `.git`: the cache identity.
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
            url: redact_user_info(input),
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
            return Ok(Self {
                url: format!("file://{path}"),
                normalized: normalize_path_part("file://", path),
                scheme: Scheme::File,
            });
        }
        if let Some((scheme_text, rest)) = input.split_once("://") {
            let scheme_text = scheme_text.to_ascii_lowercase();
            let scheme = match scheme_text.as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "git" => Scheme::Git,
                "file" => Scheme::File,
                _ => return Err(invalid("unsupported scheme")),
            };
            if scheme == Scheme::File {
                if !rest.starts_with('/') {
                    return Err(invalid("file:// URLs need an absolute path"));
                }
                return Ok(Self {
                    url: input.to_owned(),
                    normalized: normalize_path_part("file://", rest),
                    scheme,
                });
            }
            let (authority, path) = match rest.find('/') {
                Some(index) => rest.split_at(index),
                None => (rest, ""),
            };
            let (user, host) = match authority.rsplit_once('@') {
                Some((userinfo, host)) => (Some(userinfo), host),
                None => (None, authority),
            };
            if host.is_empty() {
                return Err(invalid("missing host"));
            }
            let user_part = match (scheme, user) {
                (_, None) => String::new(),
                (Scheme::Ssh, Some(user)) if !user.is_empty() && !user.contains(':') => {
                    format!("{user}@")
                }
                (_, Some(_)) => return Err(invalid(CREDENTIALS_IN_URL)),
            };
            return Ok(Self {
                url: input.to_owned(),
                normalized: normalize_path_part(
                    &format!("{scheme_text}://{user_part}{}", host.to_ascii_lowercase()),
                    path,
                ),
                scheme,
            });
        }
        // scp-like syntax: [user@]host:path (a colon before any slash).
        if let Some((authority, path)) = input.split_once(':')
            && !authority.contains('/')
            && !authority.is_empty()
            && !path.is_empty()
        {
            if path
                .split('/')
                .next()
                .is_some_and(|first| first.contains('@'))
            {
                return Err(invalid(CREDENTIALS_IN_URL));
            }
            let (user_part, host) = match authority.rsplit_once('@') {
                Some((user, host)) => (format!("{user}@"), host),
                None => (String::new(), authority),
            };
            return Ok(Self {
                url: input.to_owned(),
                normalized: normalize_path_part(
                    &format!("ssh://{user_part}{}", host.to_ascii_lowercase()),
                    &format!("/{}", path.trim_start_matches('/')),
                ),
                scheme: Scheme::Ssh,
            });
        }
        Err(invalid(
            "not a URL (expected https://, http://, ssh://, git://, file://, user@host:path or an absolute path)",
        ))
    }

    /// The URL as given (absolute paths as `file://`); carries no secret.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The cache identity: lower-case scheme and host, ssh user kept, no trailing `/` or `.git`.
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
        f.write_str(&self.url)
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.url).finish()
    }
}

const CREDENTIALS_IN_URL: &str =
    "credentials in the URL are not accepted; put them in a repository credential";

fn normalize_path_part(prefix: &str, path: &str) -> String {
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{prefix}{}", path.trim_end_matches('/'))
}

/// Removes user info from a URL that failed to parse, for the error message.
fn redact_user_info(input: &str) -> String {
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
        None => match input.rsplit_once('@') {
            Some((_, rest)) => format!("[redacted]@{rest}"),
            None => input.to_owned(),
        },
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
    fn same_repository_spelt_differently_shares_a_cache_key() {
        let a = parse("https://github.com/org/repo.git");
        let b = parse("HTTPS://GITHUB.com/org/repo/");
        assert_eq!(a.normalized(), "https://github.com/org/repo");
        assert_eq!(a.cache_key(), b.cache_key());
        assert_ne!(
            a.cache_key(),
            parse("https://github.com/org/other").cache_key()
        );
        assert_ne!(
            a.cache_key(),
            parse("https://github.com/Org/repo").cache_key()
        );
    }

    #[test]
    fn credentials_in_urls_are_refused_without_being_echoed() {
        for bad in [
            "https://user:s3cret@github.com/org/repo.git",
            "https://s3cret@github.com/org/repo.git",
            "ssh://git:s3cret@example.com/r.git",
            "git://s3cret@example.com/r.git",
            "git:s3cret@example.com:org/r.git",
        ] {
            let Err(error) = RepoUrl::parse(bad) else {
                panic!("{bad} accepted");
            };
            assert!(matches!(error, GitError::InvalidUrl { .. }), "{error:?}");
            assert!(!format!("{error} {error:?}").contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn ssh_login_names_are_kept_and_part_of_the_identity() {
        let url = parse("ssh://git@example.com:2222/r.git");
        assert_eq!(url.as_str(), "ssh://git@example.com:2222/r.git");
        assert_eq!(url.scheme(), Scheme::Ssh);
        let scp = parse("git@Example.com:org/r.git");
        assert_eq!(scp.scheme(), Scheme::Ssh);
        assert_eq!(scp.normalized(), "ssh://git@example.com/org/r");
        assert_eq!(
            scp.cache_key(),
            parse("ssh://git@example.com/org/r").cache_key()
        );
        assert_ne!(
            scp.cache_key(),
            parse("deploy@example.com:org/r").cache_key()
        );
    }

    #[test]
    fn local_paths_become_file_urls() {
        let url = parse("/srv/git/r.git");
        assert_eq!(url.as_str(), "file:///srv/git/r.git");
        assert_eq!(url.scheme(), Scheme::File);
        assert_eq!(url.normalized(), parse("file:///srv/git/r/").normalized());
    }

    #[test]
    fn malformed_urls_are_refused() {
        for bad in [
            "",
            "ftp://x/y",
            "relative/path",
            "file://relative",
            "https://",
            "a\nb",
        ] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad:?}");
        }
    }
}
