//! Revisions (branch, tag, commit id, `HEAD`) and their resolution against advertised refs or the local cache.

use std::fmt;

use git2::{Oid, Repository};

/// What an application asks for: a branch, a tag, a full or abbreviated commit id, or `HEAD` (also empty).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Revision(String);

/// A full commit id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(Oid);

/// The ref name `ls-remote` style resolution of the default branch records in the cache.
pub(crate) const REMOTE_HEAD_REF: &str = "refs/edgecd/remote-head";

// === impl Revision ===

impl Revision {
    /// Any text; surrounding whitespace is ignored, empty means `HEAD`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into().trim().to_owned())
    }

    pub fn head() -> Self {
        Self(String::new())
    }

    pub fn as_str(&self) -> &str {
        if self.0.is_empty() { "HEAD" } else { &self.0 }
    }

    pub fn is_head(&self) -> bool {
        self.0.is_empty() || self.0 == "HEAD"
    }

    /// 4 to 40 hex digits: may be a commit id (a ref of that name still wins).
    pub fn looks_like_commit(&self) -> bool {
        (4..=40).contains(&self.0.len()) && self.0.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// The commit id if this is a full 40-hex-digit id.
    pub fn full_commit(&self) -> Option<CommitId> {
        (self.0.len() == 40 && self.looks_like_commit())
            .then(|| Oid::from_str(&self.0).ok().map(CommitId))
            .flatten()
    }

    /// Ref names this revision may denote, most specific first (`refs/heads/x`, then tags, then `x` if a full ref).
    pub(crate) fn candidate_refs(&self) -> Vec<String> {
        let name = self.0.as_str();
        if name.starts_with("refs/") {
            return vec![name.to_owned()];
        }
        vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Revision {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

// === impl CommitId ===

impl CommitId {
    /// Parses a full 40-hex-digit commit id.
    pub fn parse(text: &str) -> Option<Self> {
        Revision::new(text).full_commit()
    }

    pub(crate) fn oid(self) -> Oid {
        self.0
    }

    pub(crate) fn from_oid(oid: Oid) -> Self {
        Self(oid)
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({})", self.0)
    }
}

/// Resolves `revision` in a cache repository; `Ok(None)` when it is not there (yet).
pub(crate) fn resolve_local(
    repo: &Repository,
    revision: &Revision,
) -> Result<Option<Oid>, git2::Error> {
    if revision.is_head() {
        return match repo.find_reference(REMOTE_HEAD_REF) {
            Ok(reference) => Ok(Some(reference.peel_to_commit()?.id())),
            Err(error) if error.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(error) => Err(error),
        };
    }
    for name in revision.candidate_refs() {
        match repo.find_reference(&name) {
            Ok(reference) => return Ok(Some(reference.peel_to_commit()?.id())),
            Err(error)
                if matches!(
                    error.code(),
                    git2::ErrorCode::NotFound | git2::ErrorCode::InvalidSpec
                ) => {}
            Err(error) => return Err(error),
        }
    }
    if !revision.looks_like_commit() {
        return Ok(None);
    }
    let found = match revision.full_commit() {
        Some(commit) => repo.find_object(commit.oid(), None),
        None => repo.revparse_single(&revision.0),
    };
    match found {
        Ok(object) => match object.peel_to_commit() {
            Ok(commit) => Ok(Some(commit.id())),
            Err(_) => Ok(None),
        },
        Err(error)
            if matches!(
                error.code(),
                git2::ErrorCode::NotFound
                    | git2::ErrorCode::Ambiguous
                    | git2::ErrorCode::InvalidSpec
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Refs a remote advertises (`ls-remote`), with peeled tags.
#[derive(Debug, Clone, Default)]
pub(crate) struct RemoteRefs {
    pub(crate) refs: Vec<(String, Oid)>,
}

impl RemoteRefs {
    /// The commit `revision` names on the remote: `Some` for `HEAD`, a branch or a tag; `None` otherwise.
    pub(crate) fn lookup(&self, revision: &Revision) -> Option<Oid> {
        let find = |name: &str| {
            self.refs
                .iter()
                .find(|(ref_name, _)| ref_name == name)
                .map(|(_, oid)| *oid)
        };
        if revision.is_head() {
            return find("HEAD");
        }
        for name in revision.candidate_refs() {
            // An annotated tag is advertised twice: the tag object, and `^{}` peeled to the commit.
            if let Some(oid) = find(&format!("{name}^{{}}")).or_else(|| find(&name)) {
                return Some(oid);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_kinds() {
        assert!(Revision::new("").is_head());
        assert!(Revision::new(" HEAD ").is_head());
        assert_eq!(Revision::head().to_string(), "HEAD");
        assert!(Revision::new("abc1234").looks_like_commit());
        assert!(!Revision::new("main").looks_like_commit());
        assert!(Revision::new("abc1234").full_commit().is_none());
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            CommitId::parse(full).map(|c| c.to_string()).as_deref(),
            Some(full)
        );
        assert_eq!(
            Revision::new("refs/heads/x").candidate_refs(),
            vec!["refs/heads/x".to_owned()]
        );
    }

    #[test]
    fn remote_lookup_prefers_branches_and_peeled_tags() {
        let oid = |n: u8| Oid::from_bytes(&[n; 20]).unwrap_or(Oid::ZERO_SHA1);
        let refs = RemoteRefs {
            refs: vec![
                ("HEAD".into(), oid(1)),
                ("refs/heads/main".into(), oid(1)),
                ("refs/tags/v1".into(), oid(2)),
                ("refs/tags/v1^{}".into(), oid(3)),
                ("refs/tags/light".into(), oid(4)),
            ],
        };
        assert_eq!(refs.lookup(&Revision::head()), Some(oid(1)));
        assert_eq!(refs.lookup(&"main".into()), Some(oid(1)));
        assert_eq!(refs.lookup(&"v1".into()), Some(oid(3)));
        assert_eq!(refs.lookup(&"light".into()), Some(oid(4)));
        assert_eq!(refs.lookup(&"nope".into()), None);
    }
}
